package api_test

import (
	"encoding/json"
	"net/http"
	"reflect"
	"strings"
	"testing"
)

// TestDataAPIRequestOnlyInput: an OPA client that sends only the check request to
// tollgate/decision gets exactly /v1/check's answer (decision_id aside), and tollgate/allow its
// allow; the sidecar gathers the facts. The SDK's percent-encoded path is answered too.
func TestDataAPIRequestOnlyInput(t *testing.T) {
	e := newEnv(t, nil)
	for _, tc := range []struct {
		name, req, code string
		allow           bool
	}{
		{"order allowed", `{"vendor_id":"1","action":"order.create"}`, "ok", true},
		{"integer vendor id", `{"vendor_id":1,"action":"product.add","count":12}`, "ok", true},
		{"order limit", `{"vendor_id":"4","action":"order.create","quantity":11}`, "limit_reached", false},
		{"feature missing", `{"vendor_id":"1","action":"feature.use","feature":"api_access"}`, "feature_missing", false},
		{"inactive", `{"vendor_id":"3","action":"order.create"}`, "inactive", false},
		{"unknown vendor", `{"vendor_id":"99","action":"order.create"}`, "unknown_vendor", false},
		{"unknown action", `{"vendor_id":"1","action":"x.y"}`, "unknown_action", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var want map[string]any
			r := e.do(http.MethodPost, e.decision+"/v1/check", tc.req)
			if r.Status != http.StatusOK {
				t.Fatalf("check: %d %s", r.Status, r.Body)
			}
			r.decode(t, &want)
			for _, path := range []string{"/v1/data/tollgate/decision", "/v1/data/tollgate%2Fdecision"} {
				var got struct {
					Result map[string]any `json:"result"`
				}
				r = e.do(http.MethodPost, e.decision+path, `{"input":`+tc.req+`}`)
				if r.Status != http.StatusOK {
					t.Fatalf("%s: %d %s", path, r.Status, r.Body)
				}
				r.decode(t, &got)
				if id, _ := got.Result["decision_id"].(string); id == "" || id == want["decision_id"] {
					t.Fatalf("%s: decision_id %q, want a new one (check's %q)", path, id, want["decision_id"])
				}
				delete(got.Result, "decision_id")
				w := map[string]any{}
				for k, v := range want {
					w[k] = v
				}
				delete(w, "decision_id")
				if !reflect.DeepEqual(got.Result, w) {
					t.Fatalf("%s:\n got %v\nwant %v", path, got.Result, w)
				}
				if got.Result["code"] != tc.code {
					t.Fatalf("%s: code %v, want %s", path, got.Result["code"], tc.code)
				}
			}
			r = e.do(http.MethodPost, e.decision+"/v1/data/tollgate/allow", `{"input":`+tc.req+`}`)
			if want := `{"result":` + map[bool]string{true: "true", false: "false"}[tc.allow] + `}`; r.Status != http.StatusOK || string(r.Body) != want {
				t.Fatalf("allow: %d %s, want %s", r.Status, r.Body, want)
			}
		})
	}
}

// TestDataAPIRequestOnlyConsumes: consume through the data API counts once per idempotency key,
// as on /v1/check.
func TestDataAPIRequestOnlyConsumes(t *testing.T) {
	e := newEnv(t, nil)
	body := `{"input":{"vendor_id":"4","action":"order.create","consume":true,"idempotency_key":"k1"}}`
	var first, second struct {
		Result map[string]any `json:"result"`
	}
	e.do(http.MethodPost, e.decision+"/v1/data/tollgate/decision", body).decode(t, &first)
	e.do(http.MethodPost, e.decision+"/v1/data/tollgate/decision", body).decode(t, &second)
	// used is the count the decision was made on; the replay is the stored answer.
	if first.Result["used"] != 90.0 || first.Result["replayed"] != nil || second.Result["replayed"] != true ||
		second.Result["decision_id"] != first.Result["decision_id"] {
		t.Fatalf("first %v, second %v", first.Result, second.Result)
	}
	var after map[string]any
	e.do(http.MethodPost, e.decision+"/v1/check", `{"vendor_id":"4","action":"order.create"}`).decode(t, &after)
	if after["used"] != 91.0 {
		t.Fatalf("after two consumes with one key: used %v, want 91", after["used"])
	}
}

// TestDataAPIRequestOnlyBadInput: a request-only input is checked as strictly as /v1/check's
// body, in OPA's error shape, with the field named under input.
func TestDataAPIRequestOnlyBadInput(t *testing.T) {
	e := newEnv(t, nil)
	before := e.snapshot()
	for _, tc := range []struct{ input, message string }{
		{`{"action":"order.create"}`, "input.vendor_id: is required"},
		{`{"vendor_id":"1"}`, "input.action: is required"},
		{`{"vendor_id":"1","action":"order.create","qty":2}`, `input: unknown field "qty"`},
		{`{"vendor_id":"1","action":"order.create","quantity":-1}`, "input.quantity: must be >= 1, got -1"},
		{`{"vendor_id":"1","action":"product.add","consume":true}`, "input.consume: is only valid for order.create"},
		{`{}`, "input.vendor_id: is required"},
	} {
		for _, path := range []string{"decision", "allow"} {
			r := e.do(http.MethodPost, e.decision+"/v1/data/tollgate/"+path, `{"input":`+tc.input+`}`)
			var oe struct {
				Code    string `json:"code"`
				Message string `json:"message"`
			}
			if r.Status != http.StatusBadRequest || decodeStrict(r.Body, &oe) != nil || oe.Code != "invalid_parameter" || !strings.HasPrefix(oe.Message, tc.message) {
				t.Errorf("%s %s: %d %s, want 400 %q", path, tc.input, r.Status, r.Body, tc.message)
			}
		}
	}
	if after := e.snapshot(); !reflect.DeepEqual(after, before) {
		t.Fatal("a refused input changed the store")
	}
}

// TestDataAPIWholeInputReplays: the whole input document (as explain shows it) is evaluated
// as given at tollgate/decision and tollgate/allow, so an explained decision replays.
func TestDataAPIWholeInputReplays(t *testing.T) {
	e := newEnv(t, nil)
	var d struct {
		Allow   bool   `json:"allow"`
		Code    string `json:"code"`
		Explain struct {
			Input json.RawMessage `json:"input"`
		} `json:"explain"`
	}
	e.do(http.MethodPost, e.decision+"/v1/check", `{"vendor_id":"4","action":"order.create","quantity":11,"explain":true}`).decode(t, &d)
	if d.Allow || d.Code != "limit_reached" || len(d.Explain.Input) == 0 {
		t.Fatalf("check: %+v", d)
	}
	in := `{"input":` + string(d.Explain.Input) + `}`
	var res struct {
		Result map[string]any `json:"result"`
	}
	e.do(http.MethodPost, e.decision+"/v1/data/tollgate/decision", in).decode(t, &res)
	if res.Result["code"] != "limit_reached" || res.Result["allow"] != false {
		t.Fatalf("replay: %v", res.Result)
	}
	if r := e.do(http.MethodPost, e.decision+"/v1/data/tollgate/allow", in); r.Status != http.StatusOK || string(r.Body) != `{"result":false}` {
		t.Fatalf("allow replay: %d %s", r.Status, r.Body)
	}
}
