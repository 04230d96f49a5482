package decisionlog_test

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/tollgate-pdp/tollgate"
	"github.com/tollgate-pdp/tollgate/cache"
	"github.com/tollgate-pdp/tollgate/decisionlog"
	"github.com/tollgate-pdp/tollgate/policy"
)

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// newChecker is a real store (bbolt in a temp dir) and policy, with two vendors.
func newChecker(t *testing.T, log tollgate.DecisionLogger) *tollgate.Checker {
	t.Helper()
	ctx := context.Background()
	st, err := cache.Open(ctx, cache.Options{Path: filepath.Join(t.TempDir(), "t.db"), Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	eng, err := policy.New(ctx, policy.Options{Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"ok", "gone"} {
		status := tollgate.StatusActive
		if id == "gone" {
			status = tollgate.StatusExpired
		}
		if _, err := st.PutSubscription(ctx, &tollgate.Subscription{VendorID: id, Tier: "essential", Status: status}); err != nil {
			t.Fatal(err)
		}
	}
	c := tollgate.NewChecker(st, eng, nil)
	c.Logger = log
	return c
}

func check(t *testing.T, c *tollgate.Checker, vendor, feature string) tollgate.Decision {
	t.Helper()
	d, err := c.Check(context.Background(), &tollgate.CheckRequest{VendorID: tollgate.VendorID(vendor),
		Action: tollgate.ActionFeatureUse, Feature: feature})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func readLines(t *testing.T, path string) []map[string]any {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []map[string]any
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("line %q: %v", sc.Text(), err)
		}
		out = append(out, m)
	}
	return out
}

func TestWrittenMaskedSampled(t *testing.T) {
	tests := []struct {
		name   string
		rate   float64
		masks  []string
		want   int // lines for 10 allowed + 5 denied checks
		masked bool
	}{
		{"everything", 1, nil, 15, false},
		{"denials only", 0, nil, 5, false},
		{"masked", 1, []string{"/request/feature", "/vendor_id", "/nothing/here"}, 15, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "decisions.log")
			f, err := os.Create(path)
			if err != nil {
				t.Fatal(err)
			}
			l, err := decisionlog.New(decisionlog.Options{Writer: f, SampleRate: tt.rate, Masks: tt.masks, Logger: quiet()})
			if err != nil {
				t.Fatal(err)
			}
			c := newChecker(t, l)
			ids := map[string]bool{}
			for range 10 {
				ids[check(t, c, "ok", "invoice_lu").DecisionID] = true
			}
			for range 5 {
				ids[check(t, c, "gone", "invoice_lu").DecisionID] = true
			}
			l.Close()
			f.Close()
			lines := readLines(t, path)
			if len(lines) != tt.want {
				t.Fatalf("%d lines, want %d", len(lines), tt.want)
			}
			for _, m := range lines {
				for _, k := range []string{"decision_id", "time", "vendor_id", "action", "request", "result",
					"policy_revision", "catalog_revision", "tier", "billing_period", "latency_seconds"} {
					if _, ok := m[k]; !ok {
						t.Errorf("entry lacks %s: %v", k, m)
					}
				}
				if !ids[m["decision_id"].(string)] {
					t.Errorf("unknown decision id %v", m["decision_id"])
				}
				req := m["request"].(map[string]any)
				if tt.masked {
					if req["feature"] != decisionlog.Mask || m["vendor_id"] != decisionlog.Mask {
						t.Errorf("not masked: %v", m)
					}
					if req["action"] != tollgate.ActionFeatureUse {
						t.Errorf("masked too much: %v", req)
					}
				} else if req["feature"] != "invoice_lu" {
					t.Errorf("request.feature = %v", req["feature"])
				}
				if m["tier"] != "essential" || m["catalog_revision"] == "" {
					t.Errorf("tier/catalog: %v", m)
				}
			}
		})
	}
}

func TestSampleRateHalf(t *testing.T) {
	l, err := decisionlog.New(decisionlog.Options{Writer: io.Discard, SampleRate: 0.5})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	n := 0
	for range 10000 {
		if l.Sample(true) {
			n++
		}
		if !l.Sample(false) {
			t.Fatal("a denial was not sampled")
		}
	}
	if n < 4000 || n > 6000 {
		t.Errorf("sampled %d of 10000 at 0.5", n)
	}
}

// blockingWriter blocks every write until released: a log destination that has stalled.
type blockingWriter struct{ release chan struct{} }

func (b *blockingWriter) Write(p []byte) (int, error) {
	<-b.release
	return len(p), nil
}

// TestNeverBlocks: with the writer stalled and the buffer full, checks are answered as usual
// and the surplus is dropped and counted.
func TestNeverBlocks(t *testing.T) {
	w := &blockingWriter{release: make(chan struct{})}
	l, err := decisionlog.New(decisionlog.Options{Writer: w, SampleRate: 1, Buffer: 4, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	c := newChecker(t, l)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for range 2000 {
			check(t, c, "ok", "invoice_lu")
		}
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("checks blocked behind a stalled decision log")
	}
	// Every entry was either taken by the writer (into its 64 KiB block buffer, until a stalled
	// Write holds it) or dropped and counted; only the channel's 4 and one in hand are neither.
	// How many the buffer takes before stalling depends on how fast checks come (the block is
	// flushed when the channel is momentarily empty), so it is bounded, not pinned.
	dropped, written := l.Dropped(), l.Written()
	if dropped+written < 2000-4-1 {
		t.Errorf("dropped %d + written %d: entries went missing uncounted", dropped, written)
	}
	if written > (64<<10)/200 || dropped < 2000-4-1-(64<<10)/200 {
		t.Errorf("dropped %d, written %d: more than a 64 KiB block was taken by a stalled writer", dropped, written)
	}
	var once sync.Once
	once.Do(func() { close(w.release) })
	l.Close()
}

func TestOptions(t *testing.T) {
	for _, o := range []decisionlog.Options{
		{},
		{Writer: io.Discard, SampleRate: 1.5},
		{Writer: io.Discard, Masks: []string{"request"}},
	} {
		if _, err := decisionlog.New(o); err == nil {
			t.Errorf("New(%+v) accepted", o)
		}
	}
}

// TestOffCostsNothing: with usage facts already known, the noter a check calls allocates
// nothing; with the log off, the Checker builds no entry (Sample is never asked).
func TestOffCostsNothing(t *testing.T) {
	c := newChecker(t, nil)
	ctx := context.Background()
	noter := c.Store.(*cache.Store)
	c.Noter = noter
	req := &tollgate.CheckRequest{VendorID: "ok", Action: tollgate.ActionFeatureUse, Feature: "invoice_lu"}
	count := &tollgate.CheckRequest{VendorID: "ok", Action: tollgate.ActionProductAdd, Count: ptr(int64(3))}
	for _, r := range []*tollgate.CheckRequest{req, count} {
		if _, err := c.Check(ctx, r); err != nil { // the first time, the facts are new
			t.Fatal(err)
		}
	}
	noter.FlushNoted(ctx)
	v, _ := noter.Vendor("ok")
	if n := testing.AllocsPerRun(1000, func() {
		noter.NoteCheck(v, req, true)
		noter.NoteCheck(v, count, true)
	}); n != 0 {
		t.Errorf("NoteCheck with known facts allocates %v times", n)
	}
}

func ptr[T any](v T) *T { return &v }
