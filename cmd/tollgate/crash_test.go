package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/tollgate-pdp/tollgate"
	"github.com/tollgate-pdp/tollgate/cache"
)

// ack is one write that got a 2xx: it must survive kill -9.
type ack struct {
	vendor, key string
	delta       int64
	consume     bool
}

// TestKill9LosesNoAcknowledgedWrite streams consuming checks and usage increments at a real
// child process, kills it with SIGKILL at a random moment, several times, then reopens the store
// file itself: every acknowledged write is counted, exactly once.
func TestKill9LosesNoAcknowledgedWrite(t *testing.T) {
	dataDir := t.TempDir()
	rng := rand.New(rand.NewPCG(7, 11))
	start := time.Now().UTC().Truncate(time.Second).Add(-time.Hour)
	end := start.Add(30 * 24 * time.Hour)
	vendors := []string{"crash-1", "crash-2"}

	var acks []ack
	sent := map[string]int64{}
	const trials = 4
	for trial := 0; trial < trials; trial++ {
		c := startServe(t, dataDir)
		client := &http.Client{Timeout: 5 * time.Second}
		ctx := context.Background()
		if trial == 0 {
			for _, v := range vendors {
				sub := tollgate.Subscription{VendorID: v, Tier: "enterprise", Status: tollgate.StatusActive,
					PeriodStart: &start, PeriodEnd: &end}
				if code, err := do(ctx, client, http.MethodPut, "http://"+c.api+"/v1/vendors/"+v, sub, nil); err != nil || code != 200 {
					t.Fatalf("seed %s: %d %v\n%s", v, code, err, c.logs)
				}
			}
		}
		var mu sync.Mutex
		stop := make(chan struct{})
		var wg sync.WaitGroup
		for w := 0; w < 4; w++ {
			wg.Add(1)
			go func(w int) {
				defer wg.Done()
				for i := 0; ; i++ {
					select {
					case <-stop:
						return
					default:
					}
					v := vendors[(w+i)%len(vendors)]
					key := fmt.Sprintf("t%d-w%d-%d", trial, w, i)
					delta := int64(1 + i%3)
					var url string
					var body any
					if i%2 == 0 {
						url = "http://" + c.api + "/v1/check"
						body = map[string]any{"vendor_id": v, "action": "order.create", "quantity": delta, "consume": true, "idempotency_key": key}
					} else {
						url = "http://" + c.api + "/v1/usage"
						body = map[string]any{"vendor_id": v, "metric": "orders", "delta": delta, "idempotency_key": key}
					}
					mu.Lock()
					sent[v] += delta
					mu.Unlock()
					code, err := do(ctx, client, http.MethodPost, url, body, nil)
					if err != nil {
						return // the server is gone
					}
					if code == 200 {
						mu.Lock()
						acks = append(acks, ack{v, key, delta, i%2 == 0})
						mu.Unlock()
					}
				}
			}(w)
		}
		time.Sleep(time.Duration(150+rng.IntN(400)) * time.Millisecond)
		c.kill9(t)
		close(stop)
		wg.Wait()
	}
	if len(acks) == 0 {
		t.Fatal("no write was acknowledged; the test proves nothing")
	}

	// Reopen the store file directly: the process is dead, nothing else holds it.
	store, err := cache.Open(context.Background(), cache.Options{Path: filepath.Join(dataDir, "tollgate.db")})
	if err != nil {
		t.Fatal(err)
	}
	acked := map[string]int64{}
	for _, a := range acks {
		acked[a.vendor] += a.delta
	}
	period := start.Format(time.RFC3339)
	for _, v := range vendors {
		state, ok := store.Vendor(v)
		if !ok {
			t.Fatalf("vendor %s lost", v)
		}
		got := state.Usage.OrdersIn(period)
		if got < acked[v] || got > sent[v] {
			t.Errorf("vendor %s: %d orders stored, want between %d acknowledged and %d sent", v, got, acked[v], sent[v])
		}
		t.Logf("vendor %s: acknowledged %d, stored %d, sent %d", v, acked[v], got, sent[v])
	}
	before := map[string]int64{}
	for _, v := range vendors {
		s, _ := store.Vendor(v)
		before[v] = s.Usage.OrdersIn(period)
	}
	if err := store.Close(); err != nil {
		t.Fatal(err)
	}

	// Replaying every acknowledged request counts nothing again.
	c := startServe(t, dataDir)
	client := &http.Client{Timeout: 5 * time.Second}
	for _, a := range acks {
		body := map[string]any{"vendor_id": a.vendor, "metric": "orders", "delta": a.delta, "idempotency_key": a.key}
		url := "http://" + c.api + "/v1/usage"
		if a.consume {
			url = "http://" + c.api + "/v1/check"
			body = map[string]any{"vendor_id": a.vendor, "action": "order.create", "quantity": a.delta, "consume": true, "idempotency_key": a.key}
		}
		if code, err := do(context.Background(), client, http.MethodPost, url, body, nil); err != nil || code != 200 {
			t.Fatalf("replay %s: %d %v", a.key, code, err)
		}
	}
	for _, v := range vendors {
		var state tollgate.VendorState
		if code, err := do(context.Background(), client, http.MethodGet, "http://"+c.api+"/v1/vendors/"+v, nil, &state); err != nil || code != 200 {
			t.Fatalf("get %s: %d %v", v, code, err)
		}
		if got := state.Usage.OrdersIn(period); got != before[v] {
			t.Errorf("vendor %s: replaying acknowledged keys changed the count from %d to %d", v, before[v], got)
		}
	}
	t.Logf("%d trials, %d acknowledged writes, 0 lost", trials, len(acks))
}
