package tollgate_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/tollgate-pdp/tollgate"
)

func TestVendorIDDecodesStringOrInteger(t *testing.T) {
	tests := []struct {
		in, want, err string
	}{
		{`{"vendor_id":"42"}`, "42", ""},
		{`{"vendor_id":42}`, "42", ""},
		{`{"vendor_id":-7}`, "-7", ""},
		{`{"vendor_id":4.5}`, "", "vendor_id: must be a string or an integer"},
		{`{"vendor_id":true}`, "", "vendor_id: must be a string or an integer"},
		{`{"vendor_id":99999999999999999999}`, "", "vendor_id: must be a string or an integer"},
	}
	for _, tt := range tests {
		var r tollgate.CheckRequest
		err := json.Unmarshal([]byte(tt.in), &r)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("%s: want error %q, got %v", tt.in, tt.err, err)
			}
			continue
		}
		if err != nil || string(r.VendorID) != tt.want {
			t.Errorf("%s: got %q, %v", tt.in, r.VendorID, err)
		}
	}
}

func TestCheckRequestValidate(t *testing.T) {
	neg, zero := int64(-1), int64(0)
	tests := []struct {
		name string
		req  tollgate.CheckRequest
		want string // "" = valid
	}{
		{"ok", tollgate.CheckRequest{VendorID: "1", Action: "order.create"}, ""},
		{"custom action ok", tollgate.CheckRequest{VendorID: "1", Action: "report.export"}, ""},
		{"missing vendor", tollgate.CheckRequest{Action: "order.create"}, "vendor_id: is required"},
		{"control char", tollgate.CheckRequest{VendorID: "1\x00", Action: "order.create"}, "vendor_id: must not contain"},
		{"bidi char", tollgate.CheckRequest{VendorID: "1\u202e", Action: "order.create"}, "vendor_id: must not contain"},
		{"slash", tollgate.CheckRequest{VendorID: "../1", Action: "order.create"}, "vendor_id: must not contain"},
		{"too long", tollgate.CheckRequest{VendorID: tollgate.VendorID(strings.Repeat("x", 129)), Action: "order.create"}, "vendor_id: must be at most 128 bytes"},
		{"missing action", tollgate.CheckRequest{VendorID: "1"}, "action: is required"},
		{"bad action", tollgate.CheckRequest{VendorID: "1", Action: "DROP TABLE"}, "action: must be a name"},
		{"negative count", tollgate.CheckRequest{VendorID: "1", Action: "product.add", Count: &neg}, "count: must be >= 0, got -1"},
		{"negative quantity", tollgate.CheckRequest{VendorID: "1", Action: "order.create", Quantity: &neg}, "quantity: must be >= 1, got -1"},
		{"zero quantity", tollgate.CheckRequest{VendorID: "1", Action: "order.create", Quantity: &zero}, "quantity: must be >= 1, got 0"},
		{"zero quantity consume", tollgate.CheckRequest{VendorID: "1", Action: "order.create", Quantity: &zero, Consume: true}, "quantity: must be >= 1, got 0"},
		{"zero count ok", tollgate.CheckRequest{VendorID: "1", Action: "product.add", Count: &zero}, ""},
		{"first failing field in order", tollgate.CheckRequest{VendorID: "1", Action: "order.create", Count: &neg, Quantity: &zero, Months: &neg}, "count: must be >= 0, got -1"},
		{"negative months", tollgate.CheckRequest{VendorID: "1", Action: "order_history.view", Months: &neg}, "months: must be >= 0, got -1"},
		{"feature required", tollgate.CheckRequest{VendorID: "1", Action: "feature.use"}, "feature: is required for feature.use"},
		{"consume wrong action", tollgate.CheckRequest{VendorID: "1", Action: "product.add", Consume: true}, "consume: is only valid for order.create"},
		{"key without consume", tollgate.CheckRequest{VendorID: "1", Action: "order.create", IdempotencyKey: "k"}, "idempotency_key: is only meaningful with consume: true"},
		{"key too long", tollgate.CheckRequest{VendorID: "1", Action: "order.create", Consume: true, IdempotencyKey: strings.Repeat("k", 256)}, "idempotency_key: must be at most 255 bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.req.Validate()
			if tt.want == "" {
				if err != nil {
					t.Fatalf("want valid, got %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("want %q, got %v", tt.want, err)
			}
		})
	}
}

func TestPeriodKey(t *testing.T) {
	now := time.Date(2026, 11, 25, 21, 0, 0, 0, time.UTC)
	start := time.Date(2026, 11, 14, 9, 30, 0, 0, time.FixedZone("CET", 3600))
	tests := []struct {
		name string
		sub  *tollgate.Subscription
		want string
	}{
		{"no subscription", nil, "2026-11-01T00:00:00Z"},
		{"no billing period: calendar month", &tollgate.Subscription{}, "2026-11-01T00:00:00Z"},
		{"billing period start in UTC", &tollgate.Subscription{PeriodStart: &start}, "2026-11-14T08:30:00Z"},
	}
	for _, tt := range tests {
		if got := tollgate.PeriodKey(tt.sub, now); got != tt.want {
			t.Errorf("%s: got %s want %s", tt.name, got, tt.want)
		}
	}
}

func TestDecodeImportRow(t *testing.T) {
	c := tollgate.DefaultCatalog()
	good := `{"id": 7, "vendor_id": 42, "tier": "professional", "status": "active", "period_start": "2026-11-01 00:00:00", "period_end": "2026-12-01T00:00:00Z", "orders_this_period": 37, "custom_orders_limit": 900, "stripe_customer_id": "cus_1", "created_at": "2026-01-02"}`
	rec, err := tollgate.DecodeImportRow([]byte(good), c)
	if err != nil {
		t.Fatal(err)
	}
	if rec.Subscription.VendorID != "42" || rec.OrdersThisPeriod != 37 || *rec.Subscription.CustomOrdersLimit != 900 ||
		rec.Subscription.PeriodStart.Format(time.RFC3339) != "2026-11-01T00:00:00Z" || rec.Subscription.StripeCustomerID != "cus_1" {
		t.Fatalf("decoded wrongly: %+v", rec)
	}
	bad := []struct{ line, want string }{
		{`{"vendor_id": 1, "tier": "gold", "status": "active"}`, `tier: unknown tier "gold"`},
		{`{"vendor_id": 1, "tier": "essential", "status": "paused"}`, "status: must be one of"},
		{`{"vendor_id": 1, "tier": "essential", "status": "active", "period_start": "yesterday"}`, `period_start: not a timestamp`},
		{`{"vendor_id": 1, "tier": "essential", "status": "active", "colour": "red"}`, `colour: unknown field`},
		{`{"vendor_id": 1, "tier": "essential", "status": "active", "orders_this_period": "many"}`, `orders_this_period: must be an integer`},
		{`{"vendor_id": 1, "tier": "essential", "status": "active", "orders_this_period": -2}`, `orders_this_period: must be >= 0`},
		{`{"vendor_id": 1, "tier": "essential", "status": "active", "custom_team_limit": -2}`, `custom_team_limit: must be >= 0`},
		{`{"tier": "essential", "status": "active"}`, `vendor_id: is required`},
		{`{"vendor_id": 1,`, `body: `},
		{`{"vendor_id": 1, "tier": "essential", "status": "active"} {}`, `line: has data after the JSON object`},
	}
	for _, b := range bad {
		_, err := tollgate.DecodeImportRow([]byte(b.line), c)
		if err == nil || !strings.Contains(err.Error(), b.want) {
			t.Errorf("%s: want %q, got %v", b.line, b.want, err)
		}
	}
}
