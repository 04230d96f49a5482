package main

import (
	"io"
	"log/slog"
	"testing"
)

func TestGCPercent(t *testing.T) {
	const mib = 1 << 20
	for _, tc := range []struct {
		name           string
		headroom, live uint64
		want           int
	}{
		{"small store keeps Go's default", 128 * mib, 30 * mib, 100},
		{"live heap equal to the headroom", 128 * mib, 128 * mib, 100},
		{"a million vendors", 128 * mib, 614 * mib, 20},
		{"bounded below", 128 * mib, 4096 * mib, minGCPercent},
		{"before the first GC", 128 * mib, 0, 100},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := gcPercent(tc.headroom, tc.live); got != tc.want {
				t.Fatalf("gcPercent(%d MiB, %d MiB) = %d, want %d", tc.headroom/mib, tc.live/mib, got, tc.want)
			}
		})
	}
}

// The tuner is off when the flag is 0 or the operator set GOGC or GOMEMLIMIT.
func TestGCHeadroomRespectsOperator(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	for _, tc := range []struct {
		name string
		mib  int
		env  map[string]string
		want uint64
	}{
		{"default", 128, nil, 128 << 20},
		{"flag 0", 0, nil, 0},
		{"GOGC set", 128, map[string]string{"GOGC": "200"}, 0},
		{"GOMEMLIMIT set", 128, map[string]string{"GOMEMLIMIT": "256MiB"}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := newGCHeadroom(tc.mib, func(k string) string { return tc.env[k] }, log)
			if g.headroom != tc.want {
				t.Fatalf("headroom = %d, want %d", g.headroom, tc.want)
			}
		})
	}
}

// apply sets the percent for the live heap it reads, only when it changes, and not before the
// first GC.
func TestGCHeadroomApply(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	g := newGCHeadroom(128, func(string) string { return "" }, log)
	var live uint64
	var sets []int
	g.live = func() uint64 { return live }
	g.set = func(p int) int { sets = append(sets, p); return 100 }
	for _, mib := range []uint64{0, 614, 614, 620, 1280} {
		live = mib << 20
		g.apply()
	}
	want := []int{20, 10}
	if len(sets) != len(want) || sets[0] != want[0] || sets[1] != want[1] {
		t.Fatalf("percents set = %v, want %v", sets, want)
	}
}
