package main

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"math"
	"runtime/debug"
	"testing"
)

// AUTOMEMLIMIT=off leaves the limit as the runtime has it; a limit from GOMEMLIMIT is kept.
func TestSetMemoryLimitKeepsTheOperatorsSetting(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	prev := debug.SetMemoryLimit(-1)
	t.Cleanup(func() { debug.SetMemoryLimit(prev) })
	for _, tc := range []struct {
		name, env, val string
		limit          int64
	}{
		{"AUTOMEMLIMIT=off", "AUTOMEMLIMIT", "off", 1 << 30},
		{"GOMEMLIMIT set", "GOMEMLIMIT", "768MiB", 768 << 20},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv(tc.env, tc.val)
			// The runtime reads GOMEMLIMIT at process start; stand in for it.
			debug.SetMemoryLimit(tc.limit)
			if got := setMemoryLimit(t.Context(), log); got != tc.limit {
				t.Fatalf("limit = %d, want %d", got, tc.limit)
			}
			if got := debug.SetMemoryLimit(-1); got != tc.limit {
				t.Fatalf("runtime limit = %d, want %d", got, tc.limit)
			}
		})
	}
}

// Without GOMEMLIMIT the limit comes from the cgroup; a machine without a cgroup memory limit
// gets none (math.MaxInt64) rather than an error.
func TestSetMemoryLimitFromTheCgroup(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	prev := debug.SetMemoryLimit(-1)
	t.Cleanup(func() { debug.SetMemoryLimit(prev) })
	t.Setenv("GOMEMLIMIT", "")
	t.Setenv("AUTOMEMLIMIT", "0.5")
	got := setMemoryLimit(t.Context(), log)
	if got <= 0 {
		t.Fatalf("limit = %d", got)
	}
	if rt := debug.SetMemoryLimit(-1); rt != got {
		t.Fatalf("runtime limit = %d, setMemoryLimit reported %d", rt, got)
	}
	if got != math.MaxInt64 && got > prev {
		t.Fatalf("limit %d above the previous %d with a share of 0.5", got, prev)
	}
}

func TestWithGCPaused(t *testing.T) {
	prev := debug.SetGCPercent(75)
	t.Cleanup(func() { debug.SetGCPercent(prev) })
	var during int
	want := errors.New("load failed")
	err := withGCPaused(func() error {
		during = debug.SetGCPercent(-1)
		return want
	})
	if !errors.Is(err, want) {
		t.Fatalf("err = %v, want the load's", err)
	}
	if during != -1 {
		t.Fatalf("GC percent during the load = %d, want -1 (off)", during)
	}
	if after := debug.SetGCPercent(75); after != 75 {
		t.Fatalf("GC percent after the load = %d, want the operator's 75", after)
	}
}

func TestReleaseAfterBuild(t *testing.T) {
	closed := make(chan struct{})
	close(closed)
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	for _, tc := range []struct {
		name    string
		ctx     context.Context
		built   chan struct{}
		vendors int
		want    int
	}{
		{"large store after its build", context.Background(), closed, bigStore, 1},
		{"small store", context.Background(), closed, bigStore - 1, 0},
		{"shut down before the build", cancelled, make(chan struct{}), bigStore, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			freed := 0
			releaseAfterBuild(tc.ctx, tc.built, func() int { return tc.vendors }, func() { freed++ })
			if freed != tc.want {
				t.Fatalf("freed %d times, want %d", freed, tc.want)
			}
		})
	}
}

// --gc-headroom-mib, from before the memory limit, still parses (existing command lines start)
// but is hidden and marked deprecated.
func TestGCHeadroomFlagIsAcceptedAndDeprecated(t *testing.T) {
	cmd := newServeCommand()
	if err := cmd.ParseFlags([]string{"--gc-headroom-mib", "128"}); err != nil {
		t.Fatalf("parse: %v", err)
	}
	f := cmd.Flags().Lookup("gc-headroom-mib")
	if f == nil || !f.Changed || !f.Hidden || f.Deprecated == "" {
		t.Fatalf("flag = %+v, want set, hidden and deprecated", f)
	}
}

func TestSetGCPercent(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	prev := debug.SetGCPercent(100)
	t.Cleanup(func() { debug.SetGCPercent(prev) })
	for _, tc := range []struct {
		name    string
		gogc    string
		runtime int // the percent the runtime has from GOGC at start
		want    int
	}{
		{"no GOGC: the default", "", 100, defaultGCPercent},
		{"the operator's GOGC is kept", "200", 200, 200},
		{"GOGC=off is kept", "off", -1, -1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			debug.SetGCPercent(tc.runtime)
			got := setGCPercent(func(k string) string {
				if k == "GOGC" {
					return tc.gogc
				}
				return ""
			}, log)
			if got != tc.want {
				t.Fatalf("reported %d, want %d", got, tc.want)
			}
			if rt := debug.SetGCPercent(100); rt != tc.want {
				t.Fatalf("runtime percent %d, want %d", rt, tc.want)
			}
		})
	}
}
