package sync

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/tollgate-pdp/tollgate"
)

// testCatalog is the default catalog with Stripe ids for two tiers and two add-ons.
func testCatalog() *tollgate.Catalog {
	c := tollgate.DefaultCatalog()
	for i := range c.Tiers {
		switch c.Tiers[i].Code {
		case "essential":
			c.Tiers[i].StripePriceMonthlyID, c.Tiers[i].StripePriceAnnualID = "price_ess_m", "price_ess_y"
		case "professional":
			c.Tiers[i].StripePriceMonthlyID, c.Tiers[i].StripePriceAnnualID = "price_pro_m", "price_pro_y"
		}
	}
	c.AddOns = []tollgate.AddOn{
		{Code: "domain", Name: "Domain", Category: tollgate.AddOnDomain, PriceCents: 1500, BillingPeriod: tollgate.BillingAnnual, StripePriceID: "price_domain", IsActive: true},
		{Code: "mailbox", Name: "Mailbox", Category: tollgate.AddOnEmail, PriceCents: 500, BillingPeriod: tollgate.BillingMonthly, StripePriceID: "price_mailbox", IsActive: true},
	}
	return c
}

const (
	tPeriodStart = 1_767_225_600 // 2026-01-01T00:00:00Z
	tPeriodEnd   = 1_769_904_000 // 2026-02-01T00:00:00Z
)

// subObject builds a subscription of the era from Stripe's fixture: id, customer, status, the
// tier price, the billing period where that era keeps it, vendor metadata; then applies mods.
func subObject(t testing.TB, era, id, customer, status, priceID, vendor string, start, end int64, mods ...func(map[string]any)) map[string]any {
	t.Helper()
	s := fixture(t, era, "subscription")
	s["id"] = id
	s["customer"] = customer
	s["status"] = status
	s["cancel_at_period_end"] = false
	s["canceled_at"] = nil
	s["cancel_at"] = nil
	s["ended_at"] = nil
	s["trial_end"] = nil
	s["trial_start"] = nil
	s["pending_update"] = nil
	s["schedule"] = nil
	s["default_payment_method"] = nil
	s["metadata"] = map[string]any{}
	if vendor != "" {
		s["metadata"] = map[string]any{"vendor_id": vendor}
	}
	set(t, s, "items.data.0.price.id", priceID)
	set(t, s, "items.data.0.subscription", id)
	if era == era2023 {
		s["current_period_start"], s["current_period_end"] = start, end
	} else {
		delete(s, "current_period_start")
		delete(s, "current_period_end")
		set(t, s, "items.data.0.current_period_start", start)
		set(t, s, "items.data.0.current_period_end", end)
	}
	for _, m := range mods {
		m(s)
	}
	return s
}

// addItem appends a copy of the first item with another price and quantity.
func addItem(t testing.TB, s map[string]any, itemID, priceID string, qty int64, meta map[string]any) {
	t.Helper()
	items := s["items"].(map[string]any)
	data := items["data"].([]any)
	var cp map[string]any
	if err := json.Unmarshal(mustJSON(t, data[0]), &cp); err != nil {
		t.Fatal(err)
	}
	cp["id"] = itemID
	cp["quantity"] = qty
	cp["metadata"] = meta
	set(t, cp, "price.id", priceID)
	items["data"] = append(data, cp)
}

func decodeSub(t testing.TB, m map[string]any) *Subscription {
	t.Helper()
	var s Subscription
	if err := json.Unmarshal(mustJSON(t, m), &s); err != nil {
		t.Fatalf("decode subscription: %v", err)
	}
	return &s
}

func TestDecodeBothEras(t *testing.T) {
	for _, era := range []string{era2023, eraBasil} {
		t.Run(era, func(t *testing.T) {
			s := decodeSub(t, subObject(t, era, "sub_1", "cus_1", "active", "price_pro_m", "v1", tPeriodStart, tPeriodEnd))
			start, end, ok := s.Period()
			if !ok || start != tPeriodStart || end != tPeriodEnd {
				t.Fatalf("period = %d..%d ok=%v, want %d..%d", start, end, ok, tPeriodStart, tPeriodEnd)
			}
			if s.Customer.ID != "cus_1" || s.Items.Data[0].Price.ID != "price_pro_m" || s.Items.Data[0].Price.Recurring.Interval != "month" {
				t.Fatalf("decoded %+v", s)
			}

			// expanded customer object instead of an id
			raw := subObject(t, era, "sub_1", "", "active", "price_pro_m", "v1", tPeriodStart, tPeriodEnd)
			cus := fixture(t, era, "customer")
			cus["id"] = "cus_expanded"
			raw["customer"] = cus
			if s := decodeSub(t, raw); s.Customer.ID != "cus_expanded" || s.Customer.Raw == nil {
				t.Fatalf("expanded customer: %+v", s.Customer)
			}

			inv := fixture(t, era, "invoice")
			if era == era2023 {
				inv["subscription"] = "sub_old"
			} else {
				set(t, inv, "parent.subscription_details.subscription", "sub_new")
				set(t, inv, "parent.type", "subscription_details")
			}
			var in Invoice
			if err := json.Unmarshal(mustJSON(t, inv), &in); err != nil {
				t.Fatal(err)
			}
			want := map[string]string{era2023: "sub_old", eraBasil: "sub_new"}[era]
			if in.SubscriptionID() != want {
				t.Fatalf("invoice subscription = %q, want %q", in.SubscriptionID(), want)
			}
			if in.AmountDue != 1000 || in.Currency != "usd" || len(in.Lines.Data) != 1 || in.Lines.Data[0].Amount != 1000 {
				t.Fatalf("invoice amounts/lines: %+v", in)
			}
			if era == eraBasil && in.PaymentError() != "idempotency_error" {
				t.Fatalf("basil last_finalization_error: %q", in.PaymentError())
			}

			cs := fixture(t, era, "checkout.session")
			cs["client_reference_id"], cs["customer"], cs["subscription"] = "v9", "cus_9", "sub_9"
			var sess CheckoutSession
			if err := json.Unmarshal(mustJSON(t, cs), &sess); err != nil {
				t.Fatal(err)
			}
			if sess.ClientReferenceID != "v9" || sess.Customer.ID != "cus_9" || sess.Subscription.ID != "sub_9" {
				t.Fatalf("checkout session: %+v", sess)
			}
			c := fixture(t, era, "customer")
			c["metadata"] = map[string]any{"vendor_id": "v7"}
			var cu Customer
			if err := json.Unmarshal(mustJSON(t, c), &cu); err != nil || cu.Metadata["vendor_id"] != "v7" {
				t.Fatalf("customer: %+v %v", cu, err)
			}
		})
	}
}

func TestDecodeEventRejects(t *testing.T) {
	for name, payload := range map[string]string{
		"not json":       `{`,
		"no id":          `{"type":"x","created":1,"data":{"object":{}}}`,
		"no type":        `{"id":"evt","created":1,"data":{"object":{}}}`,
		"no created":     `{"id":"evt","type":"x","data":{"object":{}}}`,
		"object missing": `{"id":"evt","type":"x","created":1,"data":{}}`,
		"object array":   `{"id":"evt","type":"x","created":1,"data":{"object":[]}}`,
	} {
		if _, err := DecodeEvent([]byte(payload)); err == nil {
			t.Errorf("%s: decoded", name)
		}
	}
}

func ts(sec int64) *time.Time { return unixTime(sec) }

func TestMapSubscription(t *testing.T) {
	cat := testCatalog()
	type tc struct {
		name   string
		status string
		price  string
		vendor string
		linked string
		mods   []func(map[string]any)
		prev   *tollgate.Subscription
		check  func(t *testing.T, s *tollgate.Subscription)
		errHas string
	}
	eq := func(t *testing.T, field string, got, want any) {
		t.Helper()
		if g, w := mustJSON(t, got), mustJSON(t, want); string(g) != string(w) {
			t.Errorf("%s = %s, want %s", field, g, w)
		}
	}
	cases := []tc{
		{name: "active monthly by catalog price", status: "active", price: "price_pro_m", vendor: "42",
			check: func(t *testing.T, s *tollgate.Subscription) {
				eq(t, "vendor", s.VendorID, "42")
				eq(t, "tier", s.Tier, "professional")
				eq(t, "status", s.Status, tollgate.StatusActive)
				eq(t, "annual", s.IsAnnual, false)
				eq(t, "period_start", s.PeriodStart, ts(tPeriodStart))
				eq(t, "period_end", s.PeriodEnd, ts(tPeriodEnd))
				eq(t, "stripe ids", []string{s.StripeSubscriptionID, s.StripeCustomerID, s.StripePriceID, s.StripeStatus},
					[]string{"sub_1", "cus_1", "price_pro_m", "active"})
				eq(t, "card", s.CardCollectedAt, (*time.Time)(nil))
				eq(t, "cancelled_at", s.CancelledAt, (*time.Time)(nil))
			}},
		{name: "annual catalog price", status: "active", price: "price_ess_y", vendor: "42",
			check: func(t *testing.T, s *tollgate.Subscription) {
				eq(t, "tier", s.Tier, "essential")
				eq(t, "annual", s.IsAnnual, true)
			}},
		{name: "lookup_key with _annual suffix", status: "active", price: "price_unknown", vendor: "42",
			mods: []func(map[string]any){func(m map[string]any) { set(t, m, "items.data.0.price.lookup_key", "business_annual") }},
			check: func(t *testing.T, s *tollgate.Subscription) {
				eq(t, "tier", s.Tier, "business")
				eq(t, "annual", s.IsAnnual, true)
			}},
		{name: "metadata.tier with yearly interval", status: "active", price: "price_unknown", vendor: "42",
			mods: []func(map[string]any){func(m map[string]any) {
				set(t, m, "items.data.0.price.metadata", map[string]any{"tier": "enterprise"})
				set(t, m, "items.data.0.price.recurring.interval", "year")
			}},
			check: func(t *testing.T, s *tollgate.Subscription) {
				eq(t, "tier", s.Tier, "enterprise")
				eq(t, "annual", s.IsAnnual, true)
			}},
		{name: "trialing with trial end", status: "trialing", price: "price_ess_m", vendor: "42",
			mods: []func(map[string]any){func(m map[string]any) { m["trial_end"] = int64(tPeriodEnd) }},
			check: func(t *testing.T, s *tollgate.Subscription) {
				eq(t, "status", s.Status, tollgate.StatusTrial)
				eq(t, "trial_ends_at", s.TrialEndsAt, ts(tPeriodEnd))
			}},
		{name: "cancel at period end", status: "active", price: "price_ess_m", vendor: "42",
			mods: []func(map[string]any){func(m map[string]any) {
				m["cancel_at_period_end"] = true
				m["canceled_at"] = int64(tPeriodStart + 100)
				m["cancellation_details"] = map[string]any{"reason": "cancellation_requested", "feedback": "too_expensive", "comment": nil}
			}},
			check: func(t *testing.T, s *tollgate.Subscription) {
				eq(t, "status", s.Status, tollgate.StatusCancelled)
				eq(t, "stripe status", s.StripeStatus, "active")
				eq(t, "cancelled_at", s.CancelledAt, ts(tPeriodStart+100))
				eq(t, "reason", s.CancellationReason, "cancellation_requested")
				eq(t, "period_end (access until)", s.PeriodEnd, ts(tPeriodEnd))
			}},
		{name: "past_due keeps retry state", status: "past_due", price: "price_ess_m", vendor: "42",
			prev: &tollgate.Subscription{VendorID: "42", Platform: "oms", PaymentRetryCount: 2, LastPaymentError: "card_declined",
				Overrides: tollgate.Overrides{CustomOrdersLimit: func() *int64 { v := int64(7); return &v }()}},
			check: func(t *testing.T, s *tollgate.Subscription) {
				eq(t, "status", s.Status, tollgate.StatusPastDue)
				eq(t, "retry", s.PaymentRetryCount, int64(2))
				eq(t, "error", s.LastPaymentError, "card_declined")
				eq(t, "platform kept", s.Platform, "oms")
				eq(t, "override kept", *s.CustomOrdersLimit, int64(7))
			}},
		{name: "default payment method: card collected", status: "active", price: "price_ess_m", vendor: "42",
			mods: []func(map[string]any){func(m map[string]any) { m["default_payment_method"] = "pm_1" }},
			check: func(t *testing.T, s *tollgate.Subscription) {
				eq(t, "pm", s.StripePaymentMethodID, "pm_1")
				eq(t, "card_collected_at (event time)", s.CardCollectedAt, ts(tPeriodStart+5))
			}},
		{name: "vendor from customer link", status: "active", price: "price_ess_m", linked: "77",
			check: func(t *testing.T, s *tollgate.Subscription) { eq(t, "vendor", s.VendorID, "77") }},
		{name: "subscription metadata wins over link", status: "active", price: "price_ess_m", vendor: "42", linked: "77",
			check: func(t *testing.T, s *tollgate.Subscription) { eq(t, "vendor", s.VendorID, "42") }},
		{name: "add-ons with quantities", status: "active", price: "price_pro_m", vendor: "42",
			mods: []func(map[string]any){func(m map[string]any) {
				addItem(t, m, "si_dom", "price_domain", 1, map[string]any{"domain_name": "shop.example"})
				addItem(t, m, "si_mail", "price_mailbox", 5, map[string]any{})
				addItem(t, m, "si_other", "price_not_in_catalog", 1, map[string]any{})
			}},
			check: func(t *testing.T, s *tollgate.Subscription) {
				eq(t, "tier", s.Tier, "professional")
				if len(s.AddOns) != 2 {
					t.Fatalf("add-ons = %+v", s.AddOns)
				}
				eq(t, "domain", []any{s.AddOns[0].Code, s.AddOns[0].Quantity, s.AddOns[0].DomainName, s.AddOns[0].Status, s.AddOns[0].StripeItem},
					[]any{"domain", 1, "shop.example", "active", "si_dom"})
				eq(t, "mailbox", []any{s.AddOns[1].Code, s.AddOns[1].Quantity}, []any{"mailbox", 5})
			}},
		{name: "pending update schedules a tier change", status: "active", price: "price_ess_m", vendor: "42",
			mods: []func(map[string]any){func(m map[string]any) {
				m["pending_update"] = map[string]any{"expires_at": int64(tPeriodEnd), "subscription_items": []any{
					map[string]any{"id": "si_x", "price": map[string]any{"id": "price_pro_m", "object": "price"}, "quantity": 1}}}
			}},
			check: func(t *testing.T, s *tollgate.Subscription) {
				eq(t, "scheduled", s.ScheduledTierChange, "professional")
			}},
		{name: "expanded schedule names the next phase's tier", status: "active", price: "price_pro_m", vendor: "42",
			mods: []func(map[string]any){func(m map[string]any) {
				sch := fixture(t, eraBasil, "subscription_schedule")
				sch["current_phase"] = map[string]any{"start_date": tPeriodStart, "end_date": tPeriodEnd}
				sch["phases"] = []any{
					map[string]any{"start_date": tPeriodStart, "end_date": tPeriodEnd, "items": []any{map[string]any{"price": "price_pro_m", "quantity": 1}}},
					map[string]any{"start_date": tPeriodEnd, "end_date": tPeriodEnd + 86400*30, "items": []any{map[string]any{"price": "price_ess_m", "quantity": 1}}},
				}
				m["schedule"] = sch
			}},
			check: func(t *testing.T, s *tollgate.Subscription) {
				eq(t, "scheduled", s.ScheduledTierChange, "essential")
				eq(t, "scheduled at", s.ScheduledChangeAt, ts(tPeriodEnd))
			}},
		{name: "no vendor", status: "active", price: "price_ess_m", errHas: "no vendor"},
		{name: "bad vendor id", status: "active", price: "price_ess_m", vendor: "a/b", errHas: "vendor_id"},
		{name: "no tier", status: "active", price: "price_nope", vendor: "42", errHas: "no item's price names a catalog tier"},
	}
	for _, st := range []struct {
		stripe string
		want   tollgate.Status
	}{{"unpaid", tollgate.StatusExpired}, {"canceled", tollgate.StatusExpired}, {"incomplete", tollgate.StatusExpired},
		{"incomplete_expired", tollgate.StatusExpired}, {"paused", tollgate.StatusExpired}} {
		cases = append(cases, tc{name: "status " + st.stripe, status: st.stripe, price: "price_ess_m", vendor: "42",
			mods: []func(map[string]any){func(m map[string]any) {
				m["canceled_at"] = int64(tPeriodStart + 9)
				m["cancellation_details"] = map[string]any{"reason": "payment_failed"}
			}},
			check: func(t *testing.T, s *tollgate.Subscription) {
				eq(t, "status", s.Status, st.want)
				eq(t, "stripe status", s.StripeStatus, st.stripe)
				eq(t, "cancelled_at", s.CancelledAt, ts(tPeriodStart+9))
				eq(t, "reason", s.CancellationReason, "payment_failed")
			}})
	}
	for _, era := range []string{era2023, eraBasil} {
		for _, c := range cases {
			t.Run(era+"/"+c.name, func(t *testing.T) {
				raw := subObject(t, era, "sub_1", "cus_1", c.status, c.price, c.vendor, tPeriodStart, tPeriodEnd, c.mods...)
				got, err := MapSubscription(decodeSub(t, raw), MapInput{Catalog: cat, LinkedVendor: c.linked, Prev: c.prev, EventCreated: tPeriodStart + 5})
				if c.errHas != "" {
					if err == nil || !strings.Contains(err.Error(), c.errHas) || tollgate.ErrorCode(err) != tollgate.EInvalid {
						t.Fatalf("want EInvalid error containing %q, got %v", c.errHas, err)
					}
					return
				}
				if err != nil {
					t.Fatal(err)
				}
				if err := got.Validate(cat); err != nil {
					t.Fatalf("mapped subscription does not validate: %v", err)
				}
				c.check(t, got)
			})
		}
	}
}
