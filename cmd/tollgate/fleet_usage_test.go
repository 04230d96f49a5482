package main

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestFleetConsumeStopsAtTheLimitAcrossSidecars runs two real `tollgate serve --nats-url`
// children and consumes orders of one Essential vendor (100 a month) at both at once: the fleet
// allows exactly 100, and both sidecars' checks then show 100 used.
func TestFleetConsumeStopsAtTheLimitAcrossSidecars(t *testing.T) {
	url := startNATS(t)
	args := []string{"--nats-url", url, "--fleet-replicas", "1", "--fleet", "limit"}
	a := startServe(t, t.TempDir(), args...)
	b := startServe(t, t.TempDir(), args...)
	rows := writeFile(t, t.TempDir(), "rows.jsonl", `{"vendor_id": "lim-1", "tier": "essential", "status": "active"}
`)
	if out, stderr, err := run(t, "import", rows, "--nats-url", url, "--fleet", "limit", "--fleet-replicas", "1"); err != nil || !strings.Contains(out, "published 1 subscription(s)") {
		t.Fatalf("import --nats-url: %v %q %s", err, out, stderr)
	}
	client := &http.Client{Timeout: 10 * time.Second}
	ctx := context.Background()
	for _, c := range []*child{a, b} {
		deadline := time.Now().Add(10 * time.Second)
		for {
			code, _ := do(ctx, client, http.MethodGet, "http://"+c.api+"/v1/vendors/lim-1", nil, nil)
			if code == http.StatusOK {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("vendor never reached sidecar %s: %d", c.api, code)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	type decision struct {
		Allow  bool   `json:"allow"`
		Reason string `json:"reason"`
		Used   int64  `json:"used"`
	}
	var allowed, denied atomic.Int64
	var wg sync.WaitGroup
	for _, c := range []*child{a, b, a, b, a, b, a, b} {
		wg.Go(func() {
			for range 20 { // 160 asked for 100
				var d decision
				code, err := do(ctx, client, http.MethodPost, "http://"+c.api+"/v1/check",
					map[string]any{"vendor_id": "lim-1", "action": "order.create", "consume": true}, &d)
				switch {
				case err != nil || code != http.StatusOK:
					t.Errorf("consume at %s: %d %v", c.api, code, err)
				case d.Allow:
					allowed.Add(1)
				case d.Reason != "Monthly order limit reached (100 orders). Upgrade to continue.":
					t.Errorf("denied with %q", d.Reason)
				default:
					denied.Add(1)
				}
			}
		})
	}
	wg.Wait()
	if allowed.Load() != 100 || denied.Load() != 60 {
		t.Fatalf("allowed %d, denied %d; want exactly 100 and 60", allowed.Load(), denied.Load())
	}
	for _, c := range []*child{a, b} {
		deadline := time.Now().Add(10 * time.Second)
		for {
			var d decision
			code, err := do(ctx, client, http.MethodPost, "http://"+c.api+"/v1/check",
				map[string]any{"vendor_id": "lim-1", "action": "order.create"}, &d)
			if err == nil && code == http.StatusOK && d.Used == 100 && !d.Allow {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("check at %s: %d %+v %v, want used 100 and denied", c.api, code, d, err)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
}
