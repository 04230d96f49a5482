package sync

import (
	"bytes"
	"context"
	"fmt"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tollgate-pdp/tollgate"
)

// eventTemplate is a signed-ready subscription event built from the basil fixture, with
// placeholders for the event id, subscription id and vendor.
func eventTemplate(b *testing.B) []byte {
	sub := subObject(b, eraBasil, "SUBID", "cus_SUBID", "active", "price_pro_m", "VENDOR", tPeriodStart, tPeriodEnd)
	return mustJSON(b, event(b, eraBasil, "EVTID", "customer.subscription.updated", 1_767_225_700, sub))
}

func fill(tmpl []byte, evt, sub, vendor string) []byte {
	out := bytes.ReplaceAll(tmpl, []byte("EVTID"), []byte(evt))
	out = bytes.ReplaceAll(out, []byte("SUBID"), []byte(sub))
	return bytes.ReplaceAll(out, []byte("VENDOR"), []byte(vendor))
}

// BenchmarkWebhookIngest measures durable ingest: signed deliveries from many concurrent
// senders, each verified, applied and fsynced before it returns (the store groups commits).
func BenchmarkWebhookIngest(b *testing.B) {
	e := newEnv(b)
	tmpl := eventTemplate(b)
	var seq atomic.Int64
	b.SetParallelism(32) // 32 × GOMAXPROCS senders
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			n := seq.Add(1)
			id := strconv.FormatInt(n, 10)
			payload := fill(tmpl, "evt_"+id, "sub_"+strconv.FormatInt(n%5000, 10), "v"+strconv.FormatInt(n%5000, 10))
			res, err := e.syncer.Receive(context.Background(), payload, SignatureHeader(payload, e.now, testSecret))
			if err != nil || res.Outcome != tollgate.OutcomeProcessed && res.Outcome != tollgate.OutcomeIgnored {
				b.Errorf("deliver %s: %v %+v", id, err, res)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "events/s")
}

// BenchmarkReplay100k replays a file of 100,000 events for 5,000 subscriptions into a fresh
// store per iteration.
func BenchmarkReplay100k(b *testing.B) {
	const events = 100_000
	tmpl := eventTemplate(b)
	var file bytes.Buffer
	for i := range events {
		file.Write(fill(tmpl, fmt.Sprintf("evt_%d", i), fmt.Sprintf("sub_%d", i%5000), fmt.Sprintf("v%d", i%5000)))
		file.WriteByte('\n')
	}
	b.SetBytes(int64(file.Len()))
	b.ResetTimer()
	var elapsed time.Duration
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		st := openStore(b, filepath.Join(b.TempDir(), fmt.Sprintf("replay-%d.db", i)))
		e := &env{t: b, store: st, now: time.Unix(tPeriodStart+3600, 0)}
		e.syncer = e.newSyncer()
		b.StartTimer()
		start := time.Now()
		sum, err := e.syncer.Replay(context.Background(), bytes.NewReader(file.Bytes()))
		elapsed += time.Since(start)
		if err != nil || sum.Lines != events {
			b.Fatalf("replay: %+v %v", sum, err)
		}
		b.StopTimer()
		_ = st.Close()
		b.StartTimer()
	}
	b.ReportMetric(float64(events*b.N)/elapsed.Seconds(), "events/s")
}
