package api_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/tollgate-pdp/tollgate/api"
)

// errorShape is the only shape a 4xx/5xx body may have (unknown fields are refused).
type errorShape struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

func decodeStrict(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	return dec.Decode(v)
}

func TestBadInputIsRefusedAndChangesNothing(t *testing.T) {
	e := newEnv(t, nil)
	check := func(fields string) string { return `{"vendor_id":"4","action":"order.create"` + fields + `}` }
	deep := strings.Repeat(`{"a":`, 100) + "1" + strings.Repeat("}", 100)
	many := `{"checks":[` + strings.Repeat(`{"vendor_id":"1","action":"product.add"},`, 1000) + `{"vendor_id":"1","action":"product.add"}]}`
	bearer := []string{"Authorization", "Bearer " + testToken}
	sub := `{"tier":"essential","status":"active"`

	cases := []struct {
		name          string
		listener      string // "decision" (default), "webhook", "ops"
		method, path  string
		body          string
		header        []string
		status        int
		code, message string // message: substring naming the field
		announce      int    // >0: send only headers announcing a body this large
	}{
		{name: "malformed JSON", path: "/v1/check", body: `{"vendor_id":`, status: 400, code: "invalid", message: "body: invalid JSON"},
		{name: "syntax error", path: "/v1/check", body: `{"vendor_id":"4","action":}`, status: 400, code: "invalid", message: "body: invalid JSON at offset"},
		{name: "empty body", path: "/v1/check", body: ``, status: 400, code: "invalid", message: "body: is required"},
		{name: "not an object", path: "/v1/check", body: `[1,2]`, status: 400, code: "invalid", message: "body: must be a JSON object"},
		{name: "trailing data", path: "/v1/check", body: check(``) + ` {"x":1}`, status: 400, code: "invalid", message: "body: unexpected data after the JSON value"},
		{name: "count as string", path: "/v1/check", body: `{"vendor_id":"1","action":"product.add","count":"7"}`, status: 400, code: "invalid", message: "count: must be an integer"},
		{name: "fractional quantity", path: "/v1/check", body: check(`,"quantity":1.5`), status: 400, code: "invalid", message: "quantity: must be an integer"},
		{name: "huge number", path: "/v1/check", body: check(`,"quantity":1e400`), status: 400, code: "invalid", message: "quantity:"},
		{name: "huge integer", path: "/v1/check", body: check(`,"quantity":99999999999999999999999`), status: 400, code: "invalid", message: "quantity: must be an integer"},
		{name: "consume as string", path: "/v1/check", body: check(`,"consume":"yes"`), status: 400, code: "invalid", message: "consume: must be a boolean"},
		{name: "vendor_id float", path: "/v1/check", body: `{"vendor_id":4.5,"action":"order.create"}`, status: 400, code: "invalid", message: "vendor_id: must be a string or an integer"},
		{name: "vendor_id bool", path: "/v1/check", body: `{"vendor_id":true,"action":"order.create"}`, status: 400, code: "invalid", message: "vendor_id:"},
		{name: "vendor_id huge integer", path: "/v1/check", body: `{"vendor_id":123456789012345678901234567890,"action":"order.create"}`, status: 400, code: "invalid", message: "vendor_id:"},
		{name: "vendor_id control chars", path: "/v1/check", body: `{"vendor_id":"4\u0000x","action":"order.create"}`, status: 400, code: "invalid", message: "vendor_id: must not contain control"},
		{name: "vendor_id newline", path: "/v1/check", body: `{"vendor_id":"4\nx","action":"order.create"}`, status: 400, code: "invalid", message: "vendor_id:"},
		{name: "missing vendor_id", path: "/v1/check", body: `{"action":"order.create"}`, status: 400, code: "invalid", message: "vendor_id: is required"},
		{name: "missing action", path: "/v1/check", body: `{"vendor_id":"4"}`, status: 400, code: "invalid", message: "action: is required"},
		{name: "malformed action", path: "/v1/check", body: `{"vendor_id":"4","action":"DROP TABLE"}`, status: 400, code: "invalid", message: "action: must be a name"},
		{name: "negative quantity", path: "/v1/check", body: check(`,"quantity":-1,"consume":true`), status: 400, code: "invalid", message: "quantity: must be >= 1, got -1"},
		{name: "negative count", path: "/v1/check", body: `{"vendor_id":"1","action":"product.add","count":-3}`, status: 400, code: "invalid", message: "count: must be >= 0"},
		{name: "unknown field in check", path: "/v1/check", body: check(`,"qty":5,"consume":true`), status: 400, code: "invalid", message: `body: unknown field "qty"`},
		{name: "consume on product.add", path: "/v1/check", body: `{"vendor_id":"1","action":"product.add","consume":true}`, status: 400, code: "invalid", message: "consume: is only valid for order.create"},
		{name: "compressed body", path: "/v1/check", body: "\x1f\x8b\x08\x00", header: []string{"Content-Encoding", "gzip"}, status: 400, code: "invalid", message: "Content-Encoding: compressed request bodies are not accepted"},
		{name: "deep nesting", path: "/v1/check", body: deep, status: 400, code: "invalid", message: "body: nested deeper than"},
		{name: "oversized body", path: "/v1/check", announce: api.DefaultBodyLimit + 1, status: 413, code: "too_large", message: "body: exceeds"},

		{name: "batch bad entry", path: "/v1/check/batch", body: `{"checks":[` + check(`,"consume":true`) + `,` + check(`,"consume":true`) + `,` + check(`,"consume":true`) + `,{"vendor_id":"4"}]}`, status: 400, code: "invalid", message: "checks[3].action: is required"},
		{name: "batch bad type", path: "/v1/check/batch", body: `{"checks":[` + check(`,"consume":true`) + `,{"vendor_id":"4","action":"order.create","quantity":"2"}]}`, status: 400, code: "invalid", message: "checks[1].quantity: must be an integer"},
		{name: "batch unknown field", path: "/v1/check/batch", body: `{"checks":[` + check(`,"consume":true`) + `,` + check(`,"bogus":1`) + `]}`, status: 400, code: "invalid", message: `checks[1]: unknown field "bogus"`},
		{name: "batch missing checks", path: "/v1/check/batch", body: `{}`, status: 400, code: "invalid", message: "checks: is required"},
		{name: "batch checks not array", path: "/v1/check/batch", body: `{"checks":{}}`, status: 400, code: "invalid", message: "checks: must be a JSON array"},
		{name: "batch too many", path: "/v1/check/batch", body: many, status: 400, code: "invalid", message: "checks: must hold at most 1000"},

		{name: "usage negative delta", path: "/v1/usage", body: `{"vendor_id":"4","metric":"orders","delta":-5}`, status: 400, code: "invalid", message: "delta: must be between"},
		{name: "usage zero delta", path: "/v1/usage", body: `{"vendor_id":"4","metric":"orders","delta":0}`, status: 400, code: "invalid", message: "delta:"},
		{name: "usage bad metric", path: "/v1/usage", body: `{"vendor_id":"4","metric":"products","delta":1}`, status: 400, code: "invalid", message: "metric:"},
		{name: "usage unknown field", path: "/v1/usage", body: `{"vendor_id":"4","metric":"orders","delta":1,"count":1}`, status: 400, code: "invalid", message: `body: unknown field "count"`},
		{name: "usage unknown vendor", path: "/v1/usage", body: `{"vendor_id":"nope","metric":"orders","delta":1}`, status: 404, code: "not_found", message: "vendor_id: vendor \"nope\" not found"},
		{name: "usage huge delta", path: "/v1/usage", body: `{"vendor_id":"4","metric":"orders","delta":18446744073709551616}`, status: 400, code: "invalid", message: "delta:"},

		{name: "get vendor control char", method: "GET", path: "/v1/vendors/a%01b", status: 400, code: "invalid", message: "vendor_id: must not contain control"},
		{name: "get unknown vendor", method: "GET", path: "/v1/vendors/nope", status: 404, code: "not_found", message: "vendor_id:"},

		{name: "put missing token", method: "PUT", path: "/v1/vendors/4", body: sub + `}`, status: 401, code: "unauthorized", message: "Authorization: a bearer token is required"},
		{name: "put bad token", method: "PUT", path: "/v1/vendors/4", body: sub + `}`, header: []string{"Authorization", "Bearer wrong"}, status: 401, code: "unauthorized", message: "Authorization: the bearer token is not valid"},
		{name: "put basic auth", method: "PUT", path: "/v1/vendors/4", body: sub + `}`, header: []string{"Authorization", "Basic " + testToken}, status: 401, code: "unauthorized", message: "Authorization:"},
		{name: "put unknown field", method: "PUT", path: "/v1/vendors/4", body: sub + `,"bogus":1}`, header: bearer, status: 400, code: "invalid", message: `body: unknown field "bogus"`},
		{name: "put unknown tier", method: "PUT", path: "/v1/vendors/4", body: `{"tier":"platinum","status":"active"}`, header: bearer, status: 400, code: "invalid", message: "tier: unknown tier"},
		{name: "put bad status", method: "PUT", path: "/v1/vendors/4", body: `{"tier":"essential","status":"paused"}`, header: bearer, status: 400, code: "invalid", message: "status: must be one of"},
		{name: "put id mismatch", method: "PUT", path: "/v1/vendors/4", body: sub + `,"vendor_id":"5"}`, header: bearer, status: 400, code: "invalid", message: "vendor_id: must equal the vendor id in the path"},
		{name: "put negative override", method: "PUT", path: "/v1/vendors/4", body: sub + `,"custom_orders_limit":-1}`, header: bearer, status: 400, code: "invalid", message: "custom_orders_limit: must be >= 0"},
		{name: "put bad time", method: "PUT", path: "/v1/vendors/4", body: sub + `,"period_start":"yesterday"}`, header: bearer, status: 400, code: "invalid", message: "period_start"},
		{name: "put control char id", method: "PUT", path: "/v1/vendors/a%0Ab", body: sub + `}`, header: bearer, status: 400, code: "invalid", message: "vendor_id:"},
		{name: "patch missing token", method: "PATCH", path: "/v1/vendors/4/overrides", body: `{"custom_orders_limit":5}`, status: 401, code: "unauthorized", message: "Authorization:"},
		{name: "patch unknown field", method: "PATCH", path: "/v1/vendors/4/overrides", body: `{"custom_order_limit":5}`, header: bearer, status: 400, code: "invalid", message: `body: unknown field "custom_order_limit"`},
		{name: "patch negative", method: "PATCH", path: "/v1/vendors/4/overrides", body: `{"custom_orders_limit":-5}`, header: bearer, status: 400, code: "invalid", message: "custom_orders_limit: must be >= 0"},
		{name: "patch string", method: "PATCH", path: "/v1/vendors/4/overrides", body: `{"custom_team_limit":"5"}`, header: bearer, status: 400, code: "invalid", message: "custom_team_limit: must be a non-negative integer or null"},
		{name: "patch not object", method: "PATCH", path: "/v1/vendors/4/overrides", body: `null`, header: bearer, status: 400, code: "invalid", message: "body: must be a JSON object"},
		{name: "patch unknown vendor", method: "PATCH", path: "/v1/vendors/nope/overrides", body: `{"custom_orders_limit":5}`, header: bearer, status: 404, code: "not_found", message: "vendor_id:"},

		{name: "unknown route", method: "GET", path: "/v1/nope", status: 404, code: "not_found", message: "path: no route GET"},
		{name: "wrong method", method: "GET", path: "/v1/check", status: 405, code: "method_not_allowed", message: "method: GET is not allowed"},
		{name: "delete vendor", method: "DELETE", path: "/v1/vendors/4", status: 405, code: "method_not_allowed", message: "method: DELETE"},

		{name: "webhook bad signature", listener: "webhook", path: "/webhooks/stripe", body: `{"id":"evt_1","type":"x"}`, header: []string{"Stripe-Signature", "t=1,v1=bad"}, status: 400, code: "unauthorized", message: "Stripe-Signature"},
		{name: "webhook bad payload", listener: "webhook", path: "/webhooks/stripe", body: `nope`, header: []string{"Stripe-Signature", "t=1,v1=good"}, status: 400, code: "invalid", message: "body:"},
		{name: "webhook compressed", listener: "webhook", path: "/webhooks/stripe", body: "\x1f\x8b", header: []string{"Stripe-Signature", "t=1,v1=good", "Content-Encoding", "br"}, status: 400, code: "invalid", message: "Content-Encoding:"},
		{name: "webhook wrong method", listener: "webhook", method: "GET", path: "/webhooks/stripe", status: 404, code: "not_found", message: "path: no route"},
		{name: "webhook other route", listener: "webhook", path: "/v1/check", body: check(``), status: 404, code: "not_found", message: "path: no route"},
		{name: "webhook oversized", listener: "webhook", path: "/webhooks/stripe", announce: api.DefaultWebhookBodyLimit + 1, header: []string{"Stripe-Signature", "t=1,v1=good"}, status: 413, code: "too_large", message: "body: exceeds"},
		{name: "ops unknown route", listener: "ops", method: "GET", path: "/v1/check", status: 404, code: "not_found", message: "path: no route"},
		{name: "data oversized", path: "/v1/data/tollgate/decision", announce: api.DefaultBodyLimit + 1, status: 413, code: "invalid_parameter", message: "body: exceeds"},
		{name: "ops wrong method", listener: "ops", method: "POST", path: "/health/live", status: 405, code: "method_not_allowed", message: "method: POST"},
	}

	before := e.snapshot()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			base := map[string]string{"": e.decision, "decision": e.decision, "webhook": e.webhook, "ops": e.ops}[tc.listener]
			method := tc.method
			if method == "" {
				method = http.MethodPost
			}
			var body any
			if tc.body != "" || method != http.MethodGet {
				body = tc.body
			}
			var r response
			if tc.announce > 0 {
				r = e.announce(base, method, tc.path, tc.announce, tc.header...)
			} else {
				r = e.do(method, base+tc.path, body, tc.header...)
			}
			if r.Status != tc.status {
				t.Fatalf("status = %d, want %d; body %s", r.Status, tc.status, truncate(r.Body))
			}
			var es errorShape
			if strings.HasPrefix(tc.path, "/v1/data/") { // OPA's shape, not ours
				if err := decodeStrict(r.Body, &es.Error); err != nil {
					t.Fatalf("body is not OPA's error shape: %v: %s", err, truncate(r.Body))
				}
			} else if err := decodeStrict(r.Body, &es); err != nil {
				t.Fatalf("body is not the error shape: %v: %s", err, truncate(r.Body))
			}
			if es.Error.Code != tc.code || !strings.Contains(es.Error.Message, tc.message) {
				t.Fatalf("error = %+v, want code %q and a message containing %q", es.Error, tc.code, tc.message)
			}
			if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
				t.Fatalf("Content-Type = %q", ct)
			}
		})
	}
	after := e.snapshot()
	for id, b := range before {
		if after[id] != b {
			t.Errorf("vendor %s changed:\nbefore %s\nafter  %s", id, b, after[id])
		}
	}
	if len(after) != len(before) {
		t.Errorf("vendors: %d before, %d after", len(before), len(after))
	}
}

func TestDataAPIErrorsUseOPAShape(t *testing.T) {
	e := newEnv(t, nil)
	for _, body := range []string{`{"input":`, `{"input":1} x`, strings.Repeat("[", 200)} {
		r := e.do(http.MethodPost, e.decision+"/v1/data/tollgate/decision", body)
		var oe struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		}
		if r.Status != http.StatusBadRequest {
			t.Fatalf("%q: status %d: %s", body, r.Status, r.Body)
		}
		if err := decodeStrict(r.Body, &oe); err != nil || oe.Code != "invalid_parameter" || !strings.HasPrefix(oe.Message, "body:") {
			t.Fatalf("%q: body %s (%v)", body, r.Body, err)
		}
	}
}

func TestAdminWritesDisabledWithoutToken(t *testing.T) {
	e := newEnv(t, func(c *api.Config) { c.AdminToken = "" })
	before := e.snapshot()
	for _, header := range [][]string{nil, {"Authorization", "Bearer "}, {"Authorization", "Bearer x"}} {
		r := e.do(http.MethodPut, e.decision+"/v1/vendors/4", `{"tier":"business","status":"active"}`, header...)
		var es errorShape
		if r.Status != http.StatusForbidden || decodeStrict(r.Body, &es) != nil || !strings.Contains(es.Error.Message, "admin writes are disabled (configure --admin-token)") {
			t.Fatalf("status %d: %s", r.Status, r.Body)
		}
		r = e.do(http.MethodPatch, e.decision+"/v1/vendors/4/overrides", `{"custom_orders_limit":1}`, header...)
		if r.Status != http.StatusForbidden {
			t.Fatalf("patch: status %d: %s", r.Status, r.Body)
		}
	}
	if after := e.snapshot(); after["4"] != before["4"] {
		t.Fatal("vendor changed")
	}
}

func truncate(b []byte) string {
	if len(b) > 300 {
		return string(b[:300]) + "..."
	}
	return string(b)
}
