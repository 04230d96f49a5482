package main

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tollgate-pdp/tollgate"
	"github.com/tollgate-pdp/tollgate/cache"
	tgsync "github.com/tollgate-pdp/tollgate/sync"
)

// ack is one write that got a 2xx: it must survive kill -9.
type ack struct {
	vendor, key string
	delta       int64
	consume     bool
}

// envInt reads a positive integer from the environment, else def.
func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

// eventTemplate builds one signed-webhook body from Stripe's fixture once; each event is then a
// cheap byte substitution of the event id and the vendor id.
type eventTemplate struct{ raw []byte }

func newEventTemplate(t *testing.T, tier string) *eventTemplate {
	return &eventTemplate{raw: subscriptionEvent(t, "evt_TPLID", "customer.subscription.created",
		"TPLVENDOR", "active", tier, time.Now().Add(-time.Minute))}
}

func (e *eventTemplate) event(id, vendor string) []byte {
	b := bytes.ReplaceAll(e.raw, []byte("evt_TPLID"), []byte(id))
	return bytes.ReplaceAll(b, []byte("TPLVENDOR"), []byte(vendor))
}

// signedPost posts a webhook and reports the status (0 when the server is gone).
func signedPost(client *http.Client, addr string, payload []byte, secret string) int {
	req, err := http.NewRequest(http.MethodPost, "http://"+addr+"/webhooks/stripe", bytes.NewReader(payload))
	if err != nil {
		return 0
	}
	req.Header.Set("Stripe-Signature", tgsync.SignatureHeader(payload, time.Now(), secret))
	resp, err := client.Do(req)
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

// TestChaosKill9 is the crash suite: TOLLGATE_CHAOS_TRIALS (default 10; `make chaos` runs 100)
// kill -9s of a real `tollgate serve` child at random moments while signed webhooks, consuming
// checks, usage increments and admin writes stream in. After every kill the store file passes
// bbolt's consistency check and reflects every acknowledged write, nothing counted twice; at
// the end every acknowledged request is replayed and changes nothing.
func TestChaosKill9(t *testing.T) {
	trials := envInt("TOLLGATE_CHAOS_TRIALS", 10)
	dataDir := t.TempDir()
	dbPath := filepath.Join(dataDir, "tollgate.db")
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 11))
	start := time.Now().UTC().Truncate(time.Second).Add(-time.Hour)
	end := start.Add(30 * 24 * time.Hour)
	period := start.Format(time.RFC3339)
	vendors := []string{"chaos-1", "chaos-2", "chaos-3"}
	tpl := newEventTemplate(t, "business")
	serveArgs := []string{"--stripe-webhook-secret", testWebhookSecret}

	var (
		mu        sync.Mutex
		acks      []ack
		sent      = map[string]int64{}
		hooks     = map[string]string{} // acknowledged webhook event id -> vendor
		admins    = map[string]string{} // acknowledged admin write: vendor -> tier
		totalAcks int64
	)
	tiers := []string{"essential", "professional", "business", "enterprise"}
	for trial := 0; trial < trials; trial++ {
		c := startServe(t, dataDir, serveArgs...)
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
		stop := make(chan struct{})
		var wg sync.WaitGroup
		var n atomic.Int64
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
					switch i % 4 {
					case 0, 1: // consuming check or usage increment
						delta := int64(1 + i%3)
						url := "http://" + c.api + "/v1/usage"
						var body any = map[string]any{"vendor_id": v, "metric": "orders", "delta": delta, "idempotency_key": key}
						if i%4 == 0 {
							url = "http://" + c.api + "/v1/check"
							body = map[string]any{"vendor_id": v, "action": "order.create", "quantity": delta, "consume": true, "idempotency_key": key}
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
							acks = append(acks, ack{v, key, delta, i%4 == 0})
							mu.Unlock()
							n.Add(1)
						}
					case 2: // signed webhook creating a vendor of its own
						id, hv := "evt_"+key, "wh-"+key
						code := signedPost(client, c.webhook, tpl.event(id, hv), testWebhookSecret)
						if code == 0 {
							return
						}
						if code == 200 {
							mu.Lock()
							hooks[id] = hv
							mu.Unlock()
							n.Add(1)
						}
					case 3: // admin write
						av := fmt.Sprintf("adm-w%d-%d", w, i%8)
						tier := tiers[(trial+i)%len(tiers)]
						sub := tollgate.Subscription{VendorID: av, Tier: tier, Status: tollgate.StatusActive,
							PeriodStart: &start, PeriodEnd: &end}
						// Writes to one admin vendor are serialised by its worker: the last 2xx wins.
						code, err := do(ctx, client, http.MethodPut, "http://"+c.api+"/v1/vendors/"+av, sub, nil)
						if err != nil {
							// Unknown outcome: either tier may be stored; forget the vendor.
							mu.Lock()
							delete(admins, av)
							mu.Unlock()
							return
						}
						if code == 200 {
							mu.Lock()
							admins[av] = tier
							mu.Unlock()
							n.Add(1)
						}
					}
				}
			}(w)
		}
		time.Sleep(time.Duration(100+rng.IntN(400)) * time.Millisecond)
		c.kill9(t)
		close(stop)
		wg.Wait()
		totalAcks += n.Load()

		// The process is dead: open the file directly, check it, compare.
		store, err := cache.Open(ctx, cache.Options{Path: dbPath})
		if err != nil {
			t.Fatalf("trial %d: reopen: %v", trial, err)
		}
		if err := store.Check(ctx); err != nil {
			t.Fatalf("trial %d: consistency: %v", trial, err)
		}
		acked := map[string]int64{}
		for _, a := range acks {
			acked[a.vendor] += a.delta
		}
		for _, v := range vendors {
			s, ok := store.Vendor(v)
			if !ok {
				t.Fatalf("trial %d: vendor %s lost", trial, v)
			}
			if got := s.Usage.OrdersIn(period); got < acked[v] || got > sent[v] {
				t.Fatalf("trial %d: vendor %s: %d orders stored, want between %d acknowledged and %d sent", trial, v, got, acked[v], sent[v])
			}
		}
		for id, hv := range hooks {
			s, ok := store.Vendor(hv)
			if !ok || s.Subscription.Tier != "business" {
				t.Fatalf("trial %d: acknowledged webhook %s lost (vendor %s present=%v)", trial, id, hv, ok)
			}
		}
		for av, tier := range admins {
			s, ok := store.Vendor(av)
			if !ok || s.Subscription.Tier != tier {
				t.Fatalf("trial %d: acknowledged admin write %s=%s lost (present=%v)", trial, av, tier, ok)
			}
		}
		if err := store.Close(); err != nil {
			t.Fatal(err)
		}
	}
	if len(acks) == 0 || len(hooks) == 0 || len(admins) == 0 {
		t.Fatalf("too little was acknowledged to prove anything: %d usage, %d webhooks, %d admin", len(acks), len(hooks), len(admins))
	}

	// Replaying every acknowledged request counts nothing again.
	store, err := cache.Open(context.Background(), cache.Options{Path: dbPath})
	if err != nil {
		t.Fatal(err)
	}
	before := map[string]int64{}
	for _, v := range vendors {
		s, _ := store.Vendor(v)
		before[v] = s.Usage.OrdersIn(period)
	}
	store.Close()
	c := startServe(t, dataDir, serveArgs...)
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
	replayed := 0
	for id, hv := range hooks {
		if replayed >= 50 {
			break
		}
		if code := signedPost(client, c.webhook, tpl.event(id, hv), testWebhookSecret); code != 200 {
			t.Fatalf("redelivery %s: %d", id, code)
		}
		replayed++
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
	t.Logf("crash suite: %d trials, %d acknowledged writes (%d usage/consume, %d webhooks, %d admin vendors final), lost: 0, double-counted: 0",
		trials, totalAcks, len(acks), len(hooks), len(admins))
}
