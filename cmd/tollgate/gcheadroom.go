package main

import (
	"context"
	"log/slog"
	"runtime/debug"
	"runtime/metrics"
	"time"
)

// gcHeadroom keeps the garbage the Go heap may hold above its live heap near a fixed size
// instead of Go's default, which lets the heap grow to twice the live heap (GOGC=100) before
// collecting. Nearly all of tollgate's live heap is the store's read model, which lives as long
// as the process, so the default doubles memory that is never garbage: at 1,000,000 vendors a
// server under steady checks settled at ~1.2 KiB resident per vendor for ~0.64 KiB live
// (BENCHMARKS.md, Scale). With a headroom the GC percent becomes 100 × headroom / live heap,
// between minGCPercent and 100: a small store keeps Go's default, a large one collects more
// often (its GC CPU grows with 1/percent; the figures are in BENCHMARKS.md).
//
// An operator who sets GOGC or GOMEMLIMIT (the Kubernetes manifests set GOMEMLIMIT from the
// container's memory limit) keeps their setting: the tuner then does nothing.
type gcHeadroom struct {
	headroom uint64                // bytes; 0 disables the tuner
	interval time.Duration         // how often the live heap is re-read (the store grows)
	live     func() uint64         // the live heap after the last GC
	set      func(percent int) int // debug.SetGCPercent
	log      *slog.Logger
	percent  int // the percent last set, 0 before the first
}

// minGCPercent bounds how often a very large store is collected.
const minGCPercent = 10

func newGCHeadroom(mib int, getenv func(string) string, log *slog.Logger) *gcHeadroom {
	t := &gcHeadroom{interval: 10 * time.Second, live: liveHeap, set: debug.SetGCPercent, log: log}
	switch {
	case mib <= 0:
		log.Info("gc headroom off: Go's default GC pacing")
	case getenv("GOGC") != "" || getenv("GOMEMLIMIT") != "":
		log.Info("gc headroom off: GOGC or GOMEMLIMIT is set")
	default:
		t.headroom = uint64(mib) << 20
	}
	return t
}

// gcPercent is the percent that leaves headroom bytes of garbage above live.
func gcPercent(headroom, live uint64) int {
	if live == 0 {
		return 100
	}
	return int(max(minGCPercent, min(100, 100*headroom/live)))
}

// Run applies the headroom now and every interval until ctx ends.
func (t *gcHeadroom) Run(ctx context.Context) error {
	if t.headroom == 0 {
		return nil
	}
	tick := time.NewTicker(t.interval)
	defer tick.Stop()
	for {
		t.apply()
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}

func (t *gcHeadroom) apply() {
	live := t.live()
	if live == 0 {
		return // no GC has run yet
	}
	p := gcPercent(t.headroom, live)
	if p == t.percent {
		return
	}
	t.set(p)
	t.percent = p
	t.log.Info("gc percent set", "percent", p, "live_heap_bytes", live, "headroom_bytes", t.headroom)
}

// liveHeap is the heap the last GC found live (0 before the first GC).
func liveHeap() uint64 {
	s := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindUint64 {
		return 0
	}
	return s[0].Value.Uint64()
}
