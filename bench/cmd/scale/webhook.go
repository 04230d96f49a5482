package main

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	gosync "sync"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/tollgate-pdp/tollgate"
	"github.com/tollgate-pdp/tollgate/bench/internal/gen"
	tgsync "github.com/tollgate-pdp/tollgate/sync"
)

// stripeFixtures holds Stripe's own example objects (basil era) the webhook events are built from.
type stripeFixtures struct {
	event, subscription json.RawMessage
	apiVersion          string
}

func loadStripeFixtures(path string) (*stripeFixtures, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("stripe fixtures: %w", err)
	}
	var doc struct {
		Resources map[string]json.RawMessage `json:"resources"`
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		return nil, fmt.Errorf("stripe fixtures %s: %w", path, err)
	}
	fx := &stripeFixtures{event: doc.Resources["event"], subscription: doc.Resources["subscription"],
		apiVersion: "2025-03-31.basil"}
	if fx.event == nil || fx.subscription == nil {
		return nil, fmt.Errorf("stripe fixtures %s: no event or subscription resource", path)
	}
	return fx, nil
}

// newWebhookSecret is a random signing secret for one run, in Stripe's format.
func newWebhookSecret() (string, error) {
	b := make([]byte, 24)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("webhook secret: %w", err)
	}
	return "whsec_" + hex.EncodeToString(b), nil
}

// hookVendor is the generated vendor event i targets: a stride through the population, so that
// the events touch distinct vendors spread over the whole store (and its bbolt pages).
func hookVendor(i, n int) int { return int((int64(i)*7919 + 12345) % int64(n)) }

// subscriptionEvent builds event id's customer.subscription.updated payload for generated vendor
// v: Stripe's fixture subscription carrying the vendor's own Stripe ids (sub_<v>, cus_<v>), its
// tier (the price's lookup_key and metadata.tier name it, as the built-in catalog has no Stripe
// price ids), billing period and status, with metadata.vendor_id naming the vendor; wrapped in
// Stripe's fixture event envelope. It restates the vendor's current state the way a Stripe
// subscription update (e.g. a metadata change) delivers it.
func subscriptionEvent(fx *stripeFixtures, id string, created int64, rec tollgate.ImportRecord, v int) ([]byte, error) {
	var sub map[string]any
	if err := json.Unmarshal(fx.subscription, &sub); err != nil {
		return nil, err
	}
	s := rec.Subscription
	subID, cusID := "sub_"+strconv.Itoa(v), "cus_"+strconv.Itoa(v)
	sub["id"], sub["customer"] = subID, cusID
	for _, k := range []string{"canceled_at", "cancel_at", "ended_at", "trial_end", "trial_start",
		"pending_update", "schedule", "default_payment_method", "current_period_start", "current_period_end"} {
		sub[k] = nil
	}
	delete(sub, "current_period_start")
	delete(sub, "current_period_end")
	sub["cancel_at_period_end"] = false
	sub["metadata"] = map[string]any{"vendor_id": s.VendorID}
	start, end := s.PeriodStart.Unix(), s.PeriodEnd.Unix()
	switch s.Status {
	case tollgate.StatusActive:
		sub["status"] = "active"
	case tollgate.StatusTrial:
		sub["status"] = "trialing"
		sub["trial_start"] = start
		if s.TrialEndsAt != nil {
			sub["trial_end"] = s.TrialEndsAt.Unix()
		}
	case tollgate.StatusPastDue:
		sub["status"] = "past_due"
	case tollgate.StatusCancelled:
		sub["status"] = "active"
		sub["cancel_at_period_end"] = true
		sub["cancel_at"] = end
		if s.CancelledAt != nil {
			sub["canceled_at"] = s.CancelledAt.Unix()
		}
	default:
		sub["status"] = "canceled"
		sub["ended_at"] = end
	}
	items, _ := sub["items"].(map[string]any)
	data, _ := items["data"].([]any)
	if len(data) == 0 {
		return nil, fmt.Errorf("fixture subscription has no items")
	}
	item, _ := data[0].(map[string]any)
	price, _ := item["price"].(map[string]any)
	if item == nil || price == nil {
		return nil, fmt.Errorf("fixture subscription item has no price")
	}
	item["subscription"] = subID
	item["current_period_start"], item["current_period_end"] = start, end
	lookup, interval := s.Tier, "month"
	if s.IsAnnual {
		lookup, interval = s.Tier+"_annual", "year"
	}
	price["id"] = "price_" + lookup
	price["lookup_key"] = lookup
	price["metadata"] = map[string]any{"tier": s.Tier}
	if rec, ok := price["recurring"].(map[string]any); ok {
		rec["interval"], rec["interval_count"] = interval, 1
	}
	items["data"] = data[:1]

	var evt map[string]any
	if err := json.Unmarshal(fx.event, &evt); err != nil {
		return nil, err
	}
	evt["id"] = id
	evt["type"] = "customer.subscription.updated"
	evt["created"] = created
	evt["api_version"] = fx.apiVersion
	evt["data"] = map[string]any{"object": sub}
	return json.Marshal(evt)
}

// ingestResult is one webhook ingest run.
type ingestResult struct {
	ok        int // 2xx answers
	outcomes  map[string]int
	elapsed   time.Duration
	latencies []time.Duration // sorted, of the 2xx answers
	bytes     int             // mean payload size
}

func (r *ingestResult) rate() float64 { return float64(r.ok) / r.elapsed.Seconds() }

// ingestWebhooks POSTs count signed customer.subscription.updated events (distinct ids) for
// existing generated vendors to addr's /webhooks/stripe from concurrency keep-alive connections.
// Only 2xx answers count (each means the event is durably recorded); any other answer or
// transport error stops the run and is returned with the first error's body. Every event must
// come back processed (applied), not ignored or failed.
func ingestWebhooks(fx *stripeFixtures, addr, secret string, n, count, concurrency int, seed uint64) (*ingestResult, error) {
	now := time.Now()
	mix := gen.Mix{Seed: seed}
	run := strconv.FormatInt(now.UnixNano(), 36)
	payloads := make([][]byte, count)
	total := 0
	for i := range payloads {
		v := hookVendor(i, n)
		var err error
		payloads[i], err = subscriptionEvent(fx, "evt_scale_"+run+"_"+strconv.Itoa(i), now.Unix(), mix.Record(v, now), v)
		if err != nil {
			return nil, fmt.Errorf("build event %d: %w", i, err)
		}
		total += len(payloads[i])
	}

	hc := &fasthttp.HostClient{Addr: addr, MaxConns: concurrency,
		ReadTimeout: 30 * time.Second, WriteTimeout: 10 * time.Second, MaxIdleConnDuration: time.Minute}
	defer hc.CloseIdleConnections()
	var (
		next     atomic.Int64
		failed   atomic.Bool
		mu       gosync.Mutex
		firstErr error
		lat      = make([][]time.Duration, concurrency)
		outs     = make([]map[string]int, concurrency)
		wg       gosync.WaitGroup
	)
	fail := func(err error) {
		mu.Lock()
		if firstErr == nil {
			firstErr = err
		}
		mu.Unlock()
		failed.Store(true)
	}
	start := time.Now()
	for w := 0; w < concurrency; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
			defer fasthttp.ReleaseRequest(req)
			defer fasthttp.ReleaseResponse(resp)
			req.SetRequestURI("http://" + addr + "/webhooks/stripe")
			req.Header.SetMethod(http.MethodPost)
			req.Header.SetContentType("application/json")
			local := make([]time.Duration, 0, count/concurrency+1)
			out := map[string]int{}
			for !failed.Load() {
				i := int(next.Add(1)) - 1
				if i >= count {
					break
				}
				p := payloads[i]
				req.Header.Set("Stripe-Signature", tgsync.SignatureHeader(p, time.Now(), secret))
				req.SetBodyRaw(p)
				t0 := time.Now()
				err := hc.Do(req, resp)
				d := time.Since(t0)
				if err != nil {
					fail(fmt.Errorf("event %d: %w", i, err))
					break
				}
				if sc := resp.StatusCode(); sc < 200 || sc > 299 {
					fail(fmt.Errorf("event %d: status %d: %s", i, sc, resp.Body()))
					break
				}
				var ack struct {
					Outcome string `json:"outcome"`
				}
				_ = json.Unmarshal(resp.Body(), &ack)
				out[ack.Outcome]++
				local = append(local, d)
			}
			lat[w], outs[w] = local, out
		}(w)
	}
	wg.Wait()
	res := &ingestResult{elapsed: time.Since(start), outcomes: map[string]int{}, bytes: total / max(count, 1)}
	res.latencies = slices.Concat(lat...)
	slices.Sort(res.latencies)
	res.ok = len(res.latencies)
	for _, o := range outs {
		for k, c := range o {
			res.outcomes[k] += c
		}
	}
	if firstErr != nil {
		return res, fmt.Errorf("webhook ingest: %d of %d events acknowledged before the first error: %w", res.ok, count, firstErr)
	}
	if res.outcomes[tollgate.OutcomeProcessed] != count {
		return res, fmt.Errorf("webhook ingest: want %d events processed, got outcomes %s", count, outcomeStr(res.outcomes))
	}
	return res, nil
}

func outcomeStr(m map[string]int) string {
	var keys []string
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var s []string
	for _, k := range keys {
		s = append(s, fmt.Sprintf("%s %d", k, m[k]))
	}
	return strings.Join(s, ", ")
}
