package api_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tollgate-pdp/tollgate"
	"github.com/tollgate-pdp/tollgate/api"
)

func TestCheck(t *testing.T) {
	e := newEnv(t, nil)
	cases := []struct {
		body        string
		allow       bool
		code, tier  string
		limit, used *int64
	}{
		{`{"vendor_id":"1","action":"order.create"}`, true, "ok", "essential", ptr[int64](100), ptr[int64](0)},
		{`{"vendor_id":1,"action":"order.create","quantity":101}`, false, "limit_reached", "essential", ptr[int64](100), ptr[int64](0)},
		{`{"vendor_id":"1","action":"product.add","count":200}`, false, "limit_reached", "essential", ptr[int64](200), ptr[int64](200)},
		{`{"vendor_id":"1","action":"feature.use","feature":"api_access"}`, false, "feature_missing", "essential", nil, nil},
		{`{"vendor_id":"2","action":"feature.use","feature":"customer_export"}`, true, "ok", "professional", nil, nil},
		{`{"vendor_id":"3","action":"order.create"}`, false, "inactive", "business", nil, nil},
		{`{"vendor_id":"nope","action":"order.create"}`, false, "unknown_vendor", "", nil, nil},
		{`{"vendor_id":"1","action":"rocket.launch"}`, false, "unknown_action", "essential", nil, nil},
	}
	for _, tc := range cases {
		r := e.do(http.MethodPost, e.decision+"/v1/check", tc.body)
		var d tollgate.Decision
		if r.Status != http.StatusOK || decodeStrict(r.Body, &d) != nil {
			t.Fatalf("%s: %d %s", tc.body, r.Status, r.Body)
		}
		if d.Allow != tc.allow || d.Code != tc.code || d.Tier != tc.tier || d.DecisionID == "" {
			t.Errorf("%s: got %s", tc.body, r.Body)
		}
		if tc.limit != nil && (d.Limit == nil || *d.Limit != *tc.limit || d.Used != *tc.used) {
			t.Errorf("%s: limit/used: got %s", tc.body, r.Body)
		}
	}
	// The essential tier's upgrade for the API feature is named.
	r := e.do(http.MethodPost, e.decision+"/v1/check", `{"vendor_id":"1","action":"feature.use","feature":"api_access"}`)
	if !strings.Contains(string(r.Body), `"upgrade_to":"business"`) {
		t.Errorf("upgrade_to missing: %s", r.Body)
	}
}

func TestCheckBatchAnswersInOrder(t *testing.T) {
	e := newEnv(t, nil)
	r := e.do(http.MethodPost, e.decision+"/v1/check/batch", `{"checks":[
		{"vendor_id":"1","action":"order.create"},
		{"vendor_id":"3","action":"order.create"},
		{"vendor_id":"4","action":"order.create","quantity":3,"consume":true},
		{"vendor_id":"nope","action":"product.add"}]}`)
	var br struct {
		Results []tollgate.Decision `json:"results"`
	}
	if r.Status != http.StatusOK {
		t.Fatalf("%d %s", r.Status, r.Body)
	}
	r.decode(t, &br)
	got := []string{}
	for _, d := range br.Results {
		got = append(got, fmt.Sprint(d.Allow, " ", d.Code))
	}
	if want := "[true ok false inactive true ok false unknown_vendor]"; fmt.Sprint(got) != want {
		t.Fatalf("results %v, want %v", got, want)
	}
	if v, _ := e.store.Vendor("4"); v.Usage.OrdersIn(tollgate.PeriodKey(&v.Subscription, e.checker.Now())) != 93 {
		t.Fatalf("consume in batch did not count: %+v", v.Usage)
	}
	r = e.do(http.MethodPost, e.decision+"/v1/check/batch", `{"checks":[]}`)
	if r.Status != http.StatusOK || string(r.Body) != `{"results":[]}` {
		t.Fatalf("empty batch: %d %s", r.Status, r.Body)
	}
}

// Fifty concurrent consumers against a vendor with ten orders left: exactly ten are allowed.
func TestConsumeIsAtomicOverHTTP(t *testing.T) {
	e := newEnv(t, nil)
	var wg sync.WaitGroup
	var mu sync.Mutex
	allowed, denied := 0, 0
	for i := 0; i < 50; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			r := e.do(http.MethodPost, e.decision+"/v1/check", fmt.Sprintf(`{"vendor_id":"4","action":"order.create","consume":true,"idempotency_key":"order-%d"}`, i))
			var d tollgate.Decision
			if r.Status != http.StatusOK || json.Unmarshal(r.Body, &d) != nil {
				t.Errorf("%d %s", r.Status, r.Body)
				return
			}
			mu.Lock()
			defer mu.Unlock()
			if d.Allow {
				allowed++
			} else if d.Code == tollgate.CodeLimitReached {
				denied++
			}
		}(i)
	}
	wg.Wait()
	if allowed != 10 || denied != 40 {
		t.Fatalf("allowed %d, denied %d; want 10 and 40", allowed, denied)
	}
	v, _ := e.store.Vendor("4")
	if n := v.Usage.OrdersIn(tollgate.PeriodKey(&v.Subscription, e.checker.Now())); n != 100 {
		t.Fatalf("orders counted = %d, want 100", n)
	}
}

func TestIdempotencyKeyReplayOverHTTP(t *testing.T) {
	e := newEnv(t, nil)
	body := `{"vendor_id":"4","action":"order.create","quantity":2,"consume":true,"idempotency_key":"order-42"}`
	var first, second tollgate.Decision
	e.do(http.MethodPost, e.decision+"/v1/check", body).decode(t, &first)
	e.do(http.MethodPost, e.decision+"/v1/check", body).decode(t, &second)
	if !first.Allow || first.Replayed || !second.Allow || !second.Replayed || second.DecisionID != first.DecisionID {
		t.Fatalf("first %+v\nsecond %+v", first, second)
	}
	v, _ := e.store.Vendor("4")
	if n := v.Usage.OrdersIn(tollgate.PeriodKey(&v.Subscription, e.checker.Now())); n != 92 {
		t.Fatalf("orders = %d, want 92 (counted once)", n)
	}
	// Usage increments are idempotent too.
	inc := `{"vendor_id":"4","metric":"orders","delta":3,"idempotency_key":"import-7"}`
	var u1, u2 tollgate.UsageResult
	e.do(http.MethodPost, e.decision+"/v1/usage", inc).decode(t, &u1)
	e.do(http.MethodPost, e.decision+"/v1/usage", inc).decode(t, &u2)
	if !u1.Applied || u1.Value != 95 || u2.Applied || u2.Value != 95 {
		t.Fatalf("usage: %+v then %+v", u1, u2)
	}
}

// limitOf prints an effective limit as the API shows it (null = unlimited).
func limitOf(p *int64) string {
	if p == nil {
		return "null"
	}
	return strconv.FormatInt(*p, 10)
}

func TestVendorReadAndAdminWrites(t *testing.T) {
	e := newEnv(t, nil)
	var v api.VendorView
	r := e.do(http.MethodGet, e.decision+"/v1/vendors/4", nil)
	if r.Status != http.StatusOK {
		t.Fatalf("%d %s", r.Status, r.Body)
	}
	r.decode(t, &v)
	if v.VendorID != "4" || v.Tier == nil || v.Tier.Code != "essential" || v.OrdersUsed != 90 || v.PolicyRevision == "" {
		t.Fatalf("view: %s", r.Body)
	}
	if limitOf(v.Limits.Orders) != "100" || limitOf(v.Limits.Products) != "200" || limitOf(v.Limits.TeamMembers) != "1" {
		t.Fatalf("effective limits: %v", v.Limits)
	}

	// PUT replaces the subscription and keeps usage; the body's vendor_id may be omitted.
	r = e.admin(http.MethodPut, e.decision+"/v1/vendors/4", `{"tier":"professional","status":"active","custom_team_limit":7}`)
	if r.Status != http.StatusOK {
		t.Fatalf("put: %d %s", r.Status, r.Body)
	}
	r.decode(t, &v)
	if v.Subscription.Tier != "professional" || limitOf(v.Limits.TeamMembers) != "7" || limitOf(v.Limits.Orders) != "500" {
		t.Fatalf("after put: %s", r.Body)
	}
	// A new vendor can be created.
	if r = e.admin(http.MethodPut, e.decision+"/v1/vendors/new-9", `{"vendor_id":"new-9","tier":"enterprise","status":"trial"}`); r.Status != http.StatusOK {
		t.Fatalf("create: %d %s", r.Status, r.Body)
	}

	// PATCH: absent unchanged, null clears, a number sets.
	r = e.admin(http.MethodPatch, e.decision+"/v1/vendors/4/overrides", `{"custom_orders_limit":1000}`)
	r.decode(t, &v)
	if r.Status != http.StatusOK || limitOf(v.Limits.Orders) != "1000" || limitOf(v.Limits.TeamMembers) != "7" {
		t.Fatalf("patch set: %d %s", r.Status, r.Body)
	}
	r = e.admin(http.MethodPatch, e.decision+"/v1/vendors/4/overrides", `{"custom_team_limit":null}`)
	r.decode(t, &v)
	if r.Status != http.StatusOK || limitOf(v.Limits.Orders) != "1000" || limitOf(v.Limits.TeamMembers) != "3" {
		t.Fatalf("patch clear: %d %s", r.Status, r.Body)
	}
	// Decisions follow the write.
	var d tollgate.Decision
	e.do(http.MethodPost, e.decision+"/v1/check", `{"vendor_id":"4","action":"order.create","quantity":900}`).decode(t, &d)
	if !d.Allow || *d.Limit != 1000 {
		t.Fatalf("decision after patch: %+v", d)
	}
}

func TestTiersDataAndOpsRoutes(t *testing.T) {
	e := newEnv(t, func(c *api.Config) {
		c.Readiness = append(c.Readiness, staticReady{name: "stripe", ok: true, detail: "last event 3s ago"})
	})
	var cat tollgate.Catalog
	e.do(http.MethodGet, e.decision+"/v1/tiers", nil).decode(t, &cat)
	if len(cat.Tiers) != 4 || cat.Tiers[0].Code != "essential" {
		t.Fatalf("tiers: %+v", cat)
	}

	// OPA Data API: POST with input, GET without, undefined is {}.
	// The input is the one the engine builds for a check (explain shows it), so the answer
	// must equal the decision.
	probe := tollgate.CheckRequest{VendorID: "1", Action: "order.create", Explain: true}
	v1, _ := e.store.Vendor("1")
	pd, err := e.policy.Decide(context.Background(), &tollgate.Facts{Request: &probe, Vendor: v1, Now: time.Now()})
	must(t, err)
	in := `{"input":` + string(pd.Explain.Input) + `}`
	r := e.do(http.MethodPost, e.decision+"/v1/data/tollgate/decision", in)
	var res struct {
		Result map[string]any `json:"result"`
	}
	r.decode(t, &res)
	if r.Status != http.StatusOK || res.Result["code"] != "ok" || res.Result["allow"] != true {
		t.Fatalf("data post: %d %s", r.Status, r.Body)
	}
	r = e.do(http.MethodPost, e.decision+"/v1/data/tollgate/no_such_rule", in)
	if r.Status != http.StatusOK || string(r.Body) != `{}` {
		t.Fatalf("undefined: %d %s", r.Status, r.Body)
	}
	r = e.do(http.MethodGet, e.decision+"/v1/data/catalog/tiers", nil)
	if r.Status != http.StatusOK || !strings.Contains(string(r.Body), `"code":"essential"`) {
		t.Fatalf("data get: %d %s", r.Status, r.Body)
	}
	r = e.do(http.MethodPost, e.decision+"/v1/data/catalog/tiers", "")
	if r.Status != http.StatusOK || !strings.Contains(string(r.Body), `"result"`) {
		t.Fatalf("data post without body: %d %s", r.Status, r.Body)
	}

	r = e.do(http.MethodPost, e.decision+"/v1/data", `{"input":{}}`)
	if r.Status != http.StatusOK || !strings.Contains(string(r.Body), `"catalog"`) {
		t.Fatalf("whole data: %d %.200s", r.Status, r.Body)
	}

	// Webhooks.
	r = e.do(http.MethodPost, e.webhook+"/webhooks/stripe", `{"id":"evt_1","type":"invoice.paid"}`, "Stripe-Signature", "t=1,v1=good")
	if r.Status != http.StatusOK || string(r.Body) != `{"received":true,"event_id":"evt_1","type":"invoice.paid","outcome":"processed"}` {
		t.Fatalf("webhook: %d %s", r.Status, r.Body)
	}
	e.hooks.err = &tollgate.Error{Code: tollgate.EUnavailable, Message: "store: not durable", Err: errors.New("fsync: EIO")}
	r = e.do(http.MethodPost, e.webhook+"/webhooks/stripe", `{"id":"evt_2"}`, "Stripe-Signature", "t=1,v1=good")
	if r.Status != http.StatusServiceUnavailable {
		t.Fatalf("webhook unavailable: %d %s", r.Status, r.Body)
	}
	e.hooks.err = errors.New("boom: secret detail")
	r = e.do(http.MethodPost, e.webhook+"/webhooks/stripe", `{"id":"evt_3"}`, "Stripe-Signature", "t=1,v1=good")
	if r.Status != http.StatusInternalServerError || strings.Contains(string(r.Body), "secret") || !strings.Contains(string(r.Body), "Internal error") {
		t.Fatalf("webhook internal: %d %s", r.Status, r.Body)
	}

	// Ops.
	r = e.do(http.MethodGet, e.ops+"/metrics", nil)
	if r.Status != http.StatusOK || string(r.Body) != "tollgate_up 1\n" {
		t.Fatalf("metrics: %d %s", r.Status, r.Body)
	}
	if r = e.do(http.MethodGet, e.ops+"/health/live", nil); r.Status != http.StatusOK || string(r.Body) != `{"status":"ok"}` {
		t.Fatalf("live: %d %s", r.Status, r.Body)
	}
	var ready api.ReadyResponse
	r = e.do(http.MethodGet, e.ops+"/health/ready", nil)
	r.decode(t, &ready)
	if r.Status != http.StatusOK || len(ready.Checks) != 2 || ready.Checks[1].Detail != "last event 3s ago" {
		t.Fatalf("ready: %d %s", r.Status, r.Body)
	}
}

func TestNotReadyAndWebhooksNotConfigured(t *testing.T) {
	e := newEnv(t, func(c *api.Config) {
		c.Webhooks = nil
		c.Readiness = append(c.Readiness, staticReady{name: "store", ok: false, detail: "disk full"})
	})
	r := e.do(http.MethodGet, e.ops+"/health/ready", nil)
	if r.Status != http.StatusServiceUnavailable || !strings.Contains(string(r.Body), `{"name":"store","ready":false,"detail":"disk full"}`) {
		t.Fatalf("ready: %d %s", r.Status, r.Body)
	}
	r = e.do(http.MethodPost, e.webhook+"/webhooks/stripe", `{}`, "Stripe-Signature", "t=1,v1=good")
	var es errorShape
	if r.Status != http.StatusServiceUnavailable || decodeStrict(r.Body, &es) != nil || es.Error.Message != "webhooks are not configured" {
		t.Fatalf("webhook: %d %s", r.Status, r.Body)
	}
}

// failingPolicy fails every decision, to show the API fails closed.
type failingPolicy struct{ tollgate.Evaluator }

func (failingPolicy) Decide(context.Context, *tollgate.Facts) (tollgate.Decision, error) {
	return tollgate.Decision{Allow: true}, errors.New("disk on fire")
}

func TestEvaluationErrorFailsClosed(t *testing.T) {
	e := newEnv(t, func(c *api.Config) {
		fp := failingPolicy{c.Policy}
		c.Policy = fp
		c.Checker = tollgate.NewChecker(c.Store, fp, nil)
	})
	r := e.do(http.MethodPost, e.decision+"/v1/check", `{"vendor_id":"1","action":"order.create"}`)
	var es errorShape
	if r.Status != http.StatusInternalServerError || decodeStrict(r.Body, &es) != nil || es.Error.Code != "internal" ||
		es.Error.Message != "Internal error" || strings.Contains(string(r.Body), "allow") {
		t.Fatalf("%d %s", r.Status, r.Body)
	}
	r = e.do(http.MethodPost, e.decision+"/v1/check/batch", `{"checks":[{"vendor_id":"1","action":"order.create"}]}`)
	if r.Status != http.StatusOK || string(r.Body) != `{"results":[{"error":{"code":"internal","message":"Internal error"}}]}` {
		t.Fatalf("batch: %d %s", r.Status, r.Body)
	}
}

// recordingObserver counts DecisionMade calls by action and code.
type recordingObserver struct {
	tollgate.NopObserver
	mu   sync.Mutex
	seen map[string]int
}

func (o *recordingObserver) DecisionMade(action, code string, latency time.Duration) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if latency <= 0 {
		code += "/no-latency"
	}
	o.seen[action+" "+code]++
}

func TestObserverSeesEveryDecision(t *testing.T) {
	obs := &recordingObserver{seen: map[string]int{}}
	e := newEnv(t, func(c *api.Config) { c.Observer = obs })
	e.do(http.MethodPost, e.decision+"/v1/check", `{"vendor_id":"1","action":"order.create"}`)
	e.do(http.MethodPost, e.decision+"/v1/check", `{"vendor_id":"3","action":"order.create"}`)
	e.do(http.MethodPost, e.decision+"/v1/check", `{"vendor_id":"3"}`) // invalid: no decision
	e.do(http.MethodPost, e.decision+"/v1/check/batch", `{"checks":[{"vendor_id":"1","action":"product.add"},{"vendor_id":"x","action":"product.add"}]}`)
	want := map[string]int{"order.create ok": 1, "order.create inactive": 1, "product.add ok": 1, "product.add unknown_vendor": 1}
	obs.mu.Lock()
	defer obs.mu.Unlock()
	if fmt.Sprint(obs.seen) != fmt.Sprint(want) {
		t.Fatalf("observed %v, want %v", obs.seen, want)
	}
}
