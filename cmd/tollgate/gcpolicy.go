package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"runtime/debug"
	"time"

	"github.com/KimMachineGun/automemlimit/memlimit"
)

// The process's one garbage-collection policy. It is decided here, in the command, and nowhere
// else: library packages never touch the collector.
//
//   - A soft memory limit paces the collector: GOMEMLIMIT when the operator sets it, otherwise
//     90% of the cgroup's memory limit (automemlimit; AUTOMEMLIMIT=0.8 sets another share,
//     AUTOMEMLIMIT=off none), re-read every minute so an in-place resize is followed. Nearly all
//     of the live heap is the store's read model, which lives as long as the process, so Go's
//     default pacing alone (GOGC=100) would let the heap grow to twice it; under a limit the
//     collector runs before the heap crosses it instead. Without any limit (a bare machine, no
//     GOMEMLIMIT) GOGC alone paces it: set GOMEMLIMIT there.
//   - GOGC defaults to 50 instead of Go's 100 (an operator's GOGC is kept): with 100 the heap's
//     goal at a large store (twice the live read model) lies above a limit sized at 1 KiB per
//     vendor, so the process would sit at the limit with the collector and the scavenger
//     running all the time (the decision p50 at 1,000,000 vendors rose 14-17% over 10,000, the
//     target being 10%); at 50 the goal stays under it (+8%, BENCHMARKS.md).
//   - The collector is paused while the store loads: a load allocates almost only what stays
//     live, so collections during it would mark a growing heap again and again for little
//     garbage (a quarter of the load's CPU at 200,000 vendors). A limit still holds meanwhile:
//     the runtime collects when the heap reaches it even with GOGC off.
//   - Once a large store's first capacity build is done, the pages the load's garbage and the
//     build's policy evaluations used go back to the OS.

// defaultGCPercent is GOGC when the operator sets none (see above).
const defaultGCPercent = 50

// setGCPercent applies defaultGCPercent unless GOGC is set, and reports the percent in force.
func setGCPercent(getenv func(string) string, log *slog.Logger) int {
	if v := getenv("GOGC"); v != "" {
		log.Info("gc policy: GOGC from the environment", "gogc", v)
		p := debug.SetGCPercent(100)
		debug.SetGCPercent(p)
		return p
	}
	debug.SetGCPercent(defaultGCPercent)
	log.Info("gc policy: GOGC", "gogc", defaultGCPercent)
	return defaultGCPercent
}

// memoryLimitRefresh is how often the cgroup's limit is re-read.
const memoryLimitRefresh = time.Minute

// setMemoryLimit applies the memory limit and reports it; it returns the limit in bytes,
// math.MaxInt64 when there is none.
func setMemoryLimit(ctx context.Context, log *slog.Logger) int64 {
	limit, err := memlimit.Set(
		memlimit.WithProvider(cgroupLimit),
		memlimit.WithRefreshInterval(ctx, memoryLimitRefresh),
		memlimit.WithLogger(log.With("component", "memlimit")),
	)
	if err != nil {
		log.Warn("memory limit not set", "err", err)
	}
	if limit == math.MaxInt64 {
		log.Info("gc policy: no memory limit, GOGC alone paces the collector (set GOMEMLIMIT to bound the heap)")
	} else {
		log.Info("gc policy: memory limit", "limit_bytes", limit)
	}
	return limit
}

// cgroupLimit is the cgroup's memory limit. A process outside any cgroup memory controller has
// no limit (memlimit.ErrNoLimit, which Set takes as "none") rather than an error at every start.
func cgroupLimit() (uint64, error) {
	limit, err := memlimit.FromCgroup()
	if err != nil && !errors.Is(err, memlimit.ErrNoLimit) {
		return 0, fmt.Errorf("%w: %w", memlimit.ErrNoLimit, err)
	}
	return limit, err
}

// withGCPaused runs load with the collector paused (see the policy above) and restores the
// operator's GOGC afterwards.
func withGCPaused(load func() error) error {
	defer debug.SetGCPercent(debug.SetGCPercent(-1))
	return load()
}

// bigStore is the vendor count from which the load's garbage goes back to the OS after the
// first capacity build.
const bigStore = 10_000

// releaseAfterBuild waits for built (the store's first capacity build) and then calls free when
// the store holds at least bigStore vendors. It returns early when ctx ends.
func releaseAfterBuild(ctx context.Context, built <-chan struct{}, vendors func() int, free func()) {
	select {
	case <-ctx.Done():
	case <-built:
		if vendors() >= bigStore {
			free()
		}
	}
}
