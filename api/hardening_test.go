package api_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/tollgate-pdp/tollgate"
)

const (
	dupMsg     = ": duplicate key: an object may give each key once"
	foldDupFmt = `: duplicate key: the object already has "%s" (keys name fields case-insensitively)`
)

// TestHostileBodiesAreRefusedExactly sends, over loopback, the bodies a hostile client would
// try against every endpoint that decodes one: each is a 400 with the exact code and message
// naming the field, and nothing changes.
func TestHostileBodiesAreRefusedExactly(t *testing.T) {
	e := newEnv(t, withCapacity)
	bearer := []string{"Authorization", "Bearer " + testToken}
	fold := func(key, first string) string { return key + strings.Replace(foldDupFmt, "%s", first, 1) }
	cases := []struct {
		name, method, path, body string
		header                   []string
		code, message            string // message: exact
	}{
		// duplicate keys, on the fast path's shape and off it
		{"check dup vendor_id", "POST", "/v1/check", `{"vendor_id":"a","vendor_id":"b","action":"order.create"}`, nil, "invalid", "vendor_id" + dupMsg},
		{"check dup last key", "POST", "/v1/check", `{"vendor_id":"4","action":"order.create","quantity":2,"consume":true,"quantity":1}`, nil, "invalid", "quantity" + dupMsg},
		{"check dup bool", "POST", "/v1/check", `{"vendor_id":"4","action":"order.create","explain":false,"explain":true}`, nil, "invalid", "explain" + dupMsg},
		{"check dup escaped", "POST", "/v1/check", `{"vendor_id":"4","vendor\u005fid":"5","action":"order.create"}`, nil, "invalid", "vendor_id" + dupMsg},
		{"check dup case-folded", "POST", "/v1/check", `{"vendor_id":"4","VENDOR_ID":"5","action":"order.create"}`, nil, "invalid", fold("VENDOR_ID", "vendor_id")},
		{"check dup Kelvin sign", "POST", "/v1/check", `{"vendor_id":"4","action":"order.create","idempotency_key":"k","consume":true,"idempotency_\u212aey":"x"}`, nil, "invalid", fold("idempotency_\u212aey", "idempotency_key")},
		{"check dup odd value", "POST", "/v1/check", `{"vendor_id":"4","action":"order.create","count":null,"count":1}`, nil, "invalid", "count" + dupMsg},
		{"batch dup in entry", "POST", "/v1/check/batch", `{"checks":[{"vendor_id":"4","action":"order.create"},{"vendor_id":"4","action":"order.create","action":"product.add"}]}`, nil, "invalid", "checks[1].action" + dupMsg},
		{"batch dup checks", "POST", "/v1/check/batch", `{"checks":[],"checks":[{"vendor_id":"4","action":"order.create","consume":true}]}`, nil, "invalid", "checks" + dupMsg},
		{"usage dup delta", "POST", "/v1/usage", `{"vendor_id":"4","metric":"orders","delta":1,"delta":1000}`, nil, "invalid", "delta" + dupMsg},
		{"usage report dup", "PUT", "/v1/vendors/4/usage", `{"products":1,"products":2}`, nil, "invalid", "products" + dupMsg},
		{"put vendor dup tier", "PUT", "/v1/vendors/4", `{"tier":"essential","status":"active","tier":"enterprise"}`, bearer, "invalid", "tier" + dupMsg},
		{"put vendor dup nested", "PUT", "/v1/vendors/4", `{"tier":"essential","status":"active","add_ons":[{"code":"a","quantity":1},{"code":"b","quantity":1,"quantity":9}]}`, bearer, "invalid", "add_ons[1].quantity" + dupMsg},
		{"patch overrides dup", "PATCH", "/v1/vendors/4/overrides", `{"custom_orders_limit":5,"custom_orders_limit":null}`, bearer, "invalid", "custom_orders_limit" + dupMsg},
		{"dry-run dup", "POST", "/v1/catalog/dry-run", `{"tiers":[{"code":"gold","name":"Gold","orders_per_month":1,"orders_per_month":2}]}`, nil, "invalid", "tiers[0].orders_per_month" + dupMsg},
		{"data API dup input key", "POST", "/v1/data/tollgate/decision", `{"input":{"request":{"vendor_id":"4","vendor_id":"5"}}}`, nil, "invalid_parameter", "input.request.vendor_id" + dupMsg},
		{"data API dup input", "POST", "/v1/data/tollgate/decision", `{"input":{},"INPUT":{}}`, nil, "invalid_parameter", fold("INPUT", "input")},

		// quantity must be >= 1
		{"check quantity 0", "POST", "/v1/check", `{"vendor_id":"4","action":"order.create","quantity":0}`, nil, "invalid", "quantity: must be >= 1, got 0"},
		{"consume quantity 0", "POST", "/v1/check", `{"vendor_id":"4","action":"order.create","quantity":0,"consume":true,"idempotency_key":"zero-1"}`, nil, "invalid", "quantity: must be >= 1, got 0"},
		{"consume quantity 0 slow path", "POST", "/v1/check", `{"vendor_id":"4","action":"order.create","quantity":0,"consume":true,"idempotency_key":"zero\u002d1"}`, nil, "invalid", "quantity: must be >= 1, got 0"},
		{"check quantity -1", "POST", "/v1/check", `{"vendor_id":"4","action":"order.create","quantity":-1}`, nil, "invalid", "quantity: must be >= 1, got -1"},
		{"batch quantity 0", "POST", "/v1/check/batch", `{"checks":[{"vendor_id":"4","action":"order.create","consume":true},{"vendor_id":"4","action":"order.create","quantity":0,"consume":true}]}`, nil, "invalid", "checks[1].quantity: must be >= 1, got 0"},

		// the first failing field, in a fixed order
		{"check counts order", "POST", "/v1/check", `{"vendor_id":"4","action":"order.create","months":-1,"quantity":0,"custom_count":-1}`, nil, "invalid", "custom_count: must be >= 0, got -1"},
		{"put vendor overrides order", "PUT", "/v1/vendors/4", `{"tier":"essential","status":"active","custom_team_limit":-1,"custom_products_limit":-1,"custom_orders_limit":-1}`, bearer, "invalid", "custom_orders_limit: must be >= 0 or null, got -1"},
		{"patch overrides unknown order", "PATCH", "/v1/vendors/4/overrides", `{"zeta":1,"beta":1,"custom_orders_limit":-1}`, bearer, "invalid", `body: unknown field "beta"`},
		{"patch overrides order", "PATCH", "/v1/vendors/4/overrides", `{"custom_team_limit":-1,"custom_products_limit":-1}`, bearer, "invalid", "custom_products_limit: must be >= 0 or null, got -1"},
		{"usage report order", "PUT", "/v1/vendors/4/usage", `{"storage_bytes":-1,"cms_pages":-1,"team_members":-1}`, nil, "invalid", "team_members: must be >= 0, got -1"},
		{"dry-run tier order", "POST", "/v1/catalog/dry-run", `{"tiers":[{"code":"gold","name":"Gold","cms_custom_pages_limit":-1,"team_members":-1,"orders_per_month":-1}]}`, nil, "invalid", "tiers[gold].orders_per_month: must be >= 0 or null (unlimited), got -1"},
		{"put vendor bad times order", "PUT", "/v1/vendors/4", `{"tier":"essential","status":"active","period_end":"later","created_at":"soon","period_start":"now"}`, bearer, "invalid", `period_end: must be an RFC 3339 timestamp, got "later"`},
	}
	before := e.snapshot()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			// the same bad input must always name the same field
			for i := 0; i < 20; i++ {
				r := e.do(tc.method, e.decision+tc.path, tc.body, tc.header...)
				if r.Status != http.StatusBadRequest {
					t.Fatalf("run %d: status %d, want 400; body %s", i, r.Status, truncate(r.Body))
				}
				var es errorShape
				if strings.HasPrefix(tc.path, "/v1/data/") {
					if err := decodeStrict(r.Body, &es.Error); err != nil {
						t.Fatalf("not OPA's error shape: %v: %s", err, r.Body)
					}
				} else if err := decodeStrict(r.Body, &es); err != nil {
					t.Fatalf("not the error shape: %v: %s", err, r.Body)
				}
				if es.Error.Code != tc.code || es.Error.Message != tc.message {
					t.Fatalf("run %d: error %+v, want code %q message %q", i, es.Error, tc.code, tc.message)
				}
			}
		})
	}
	if after := e.snapshot(); len(after) != len(before) {
		t.Fatalf("vendors: %d before, %d after", len(before), len(after))
	} else {
		for id, b := range before {
			if after[id] != b {
				t.Errorf("vendor %s changed:\nbefore %s\nafter  %s", id, b, after[id])
			}
		}
	}

	// The refused zero-quantity consumes stored no idempotency record: the same key now counts.
	var d tollgate.Decision
	r := e.do("POST", e.decision+"/v1/check", `{"vendor_id":"4","action":"order.create","consume":true,"idempotency_key":"zero-1"}`)
	if r.Status != http.StatusOK {
		t.Fatalf("consume: status %d: %s", r.Status, r.Body)
	}
	r.decode(t, &d)
	v, _ := e.store.Vendor("4")
	if n := v.Usage.OrdersIn(tollgate.PeriodKey(&v.Subscription, e.checker.Now())); !d.Allow || d.Replayed || n != 91 {
		t.Fatalf("consume after the refused zero-quantity ones: %+v, orders %d; want allowed, not replayed, orders 91", d, n)
	}
}

// TestDataAPIInputKeysAreCaseSensitive: a full input (one with "request" or "vendor") is
// free-form below the body's top level, so keys differing only in case are two keys, not a
// duplicate. (A request-only input is a check request, whose keys name fields.)
func TestDataAPIInputKeysAreCaseSensitive(t *testing.T) {
	e := newEnv(t, nil)
	r := e.do("POST", e.decision+"/v1/data/tollgate/decision", `{"input":{"request":{"vendor_id":"1","action":"order.create"},"a":1,"A":2}}`)
	if r.Status != http.StatusOK {
		t.Fatalf("status %d: %s", r.Status, r.Body)
	}
}
