package sync

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	gosync "sync"
	"testing"
	"time"

	"github.com/tollgate-pdp/tollgate"
	"github.com/tollgate-pdp/tollgate/cache"
)

const testSecret = "whsec_test_secret"

type env struct {
	t        testing.TB
	store    *cache.Store
	syncer   *Syncer
	now      time.Time
	path     string
	catalogs []*tollgate.Catalog
	mu       gosync.Mutex
}

func openStore(t testing.TB, path string) *cache.Store {
	t.Helper()
	st, err := cache.Open(context.Background(), cache.Options{Path: path})
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	return st
}

func newEnv(t testing.TB, mods ...func(*Options)) *env {
	t.Helper()
	e := &env{t: t, now: time.Unix(tPeriodStart+3600, 0), path: filepath.Join(t.TempDir(), "tollgate.db")}
	e.store = openStore(t, e.path)
	t.Cleanup(func() { _ = e.store.Close() })
	e.syncer = e.newSyncer(mods...)
	return e
}

func (e *env) newSyncer(mods ...func(*Options)) *Syncer {
	e.t.Helper()
	o := Options{Store: e.store, Catalog: testCatalog(), WebhookSecrets: []string{testSecret},
		Now: func() time.Time { return e.now },
		OnCatalog: func(c *tollgate.Catalog) {
			e.mu.Lock()
			e.catalogs = append(e.catalogs, c)
			e.mu.Unlock()
		}}
	for _, m := range mods {
		m(&o)
	}
	s, err := New(context.Background(), o)
	if err != nil {
		e.t.Fatalf("new syncer: %v", err)
	}
	return s
}

// deliver signs the event with the real scheme and hands it to the receiver.
func (e *env) deliver(ev map[string]any) (tollgate.WebhookResult, error) {
	e.t.Helper()
	payload := mustJSON(e.t, ev)
	return e.syncer.Receive(context.Background(), payload, SignatureHeader(payload, e.now, testSecret))
}

func (e *env) mustDeliver(ev map[string]any, outcome string) tollgate.WebhookResult {
	e.t.Helper()
	res, err := e.deliver(ev)
	if err != nil {
		e.t.Fatalf("deliver %s: %v", ev["id"], err)
	}
	if res.Outcome != outcome {
		evs, _ := e.store.Events(context.Background(), tollgate.EventFilter{})
		detail := ""
		for _, x := range evs {
			if x.ID == ev["id"] {
				detail = x.Error
			}
		}
		e.t.Fatalf("deliver %s (%s): outcome %q, want %q (%s)", ev["id"], ev["type"], res.Outcome, outcome, detail)
	}
	return res
}

func (e *env) vendor(id string) *tollgate.Subscription {
	e.t.Helper()
	v, ok := e.store.Vendor(id)
	if !ok {
		e.t.Fatalf("vendor %s not in store", id)
	}
	return &v.Subscription
}

func (e *env) event(id string) tollgate.WebhookEvent {
	e.t.Helper()
	evs, err := e.store.Events(context.Background(), tollgate.EventFilter{Limit: 100000})
	if err != nil {
		e.t.Fatal(err)
	}
	for _, x := range evs {
		if x.ID == id {
			return x
		}
	}
	e.t.Fatalf("event %s not recorded", id)
	return tollgate.WebhookEvent{}
}

func invoiceObject(t testing.TB, era, id, customer, subID, vendor, status string, attempt int64, mods ...func(map[string]any)) map[string]any {
	inv := fixture(t, era, "invoice")
	inv["id"], inv["customer"], inv["status"], inv["attempt_count"] = id, customer, status, attempt
	inv["hosted_invoice_url"] = "https://invoice.stripe.com/i/" + id
	inv["invoice_pdf"] = "https://pay.stripe.com/invoice/" + id + "/pdf"
	inv["currency"] = "eur"
	inv["amount_due"], inv["amount_paid"], inv["total"], inv["subtotal"] = 9900, 0, 9900, 9900
	inv["last_finalization_error"] = nil
	meta := map[string]any{}
	if vendor != "" {
		meta["vendor_id"] = vendor
	}
	if era == era2023 {
		inv["subscription"] = subID
		inv["subscription_details"] = map[string]any{"metadata": meta}
	} else {
		inv["parent"] = map[string]any{"type": "subscription_details", "quote_details": nil,
			"subscription_details": map[string]any{"subscription": subID, "metadata": meta}}
	}
	for _, m := range mods {
		m(inv)
	}
	return inv
}

func TestWebhookLifecycleBothEras(t *testing.T) {
	for _, era := range []string{era2023, eraBasil} {
		t.Run(era, func(t *testing.T) {
			e := newEnv(t)
			ctx := context.Background()
			n := int64(tPeriodStart)
			next := func() int64 { n++; return n }

			// created: trial
			sub := subObject(t, era, "sub_A", "cus_A", "trialing", "price_pro_m", "42", tPeriodStart, tPeriodEnd,
				func(m map[string]any) { m["trial_end"] = int64(tPeriodEnd) })
			res := e.mustDeliver(event(t, era, "evt_1", "customer.subscription.created", next(), sub), tollgate.OutcomeProcessed)
			if res.VendorID != "42" {
				t.Fatalf("vendor = %q", res.VendorID)
			}
			v := e.vendor("42")
			if v.Tier != "professional" || v.Status != tollgate.StatusTrial || !v.TrialEndsAt.Equal(time.Unix(tPeriodEnd, 0)) || v.StripeSubscriptionID != "sub_A" {
				t.Fatalf("after created: %+v", v)
			}

			// updated: active with a card
			sub["status"], sub["default_payment_method"] = "active", "pm_1"
			card := next()
			e.mustDeliver(event(t, era, "evt_2", "customer.subscription.updated", card, sub), tollgate.OutcomeProcessed)
			v = e.vendor("42")
			if v.Status != tollgate.StatusActive || v.CardCollectedAt == nil || v.CardCollectedAt.Unix() != card {
				t.Fatalf("after updated: %+v", v)
			}

			// duplicate: nothing changes
			before, _ := e.store.Vendor("42")
			e.mustDeliver(event(t, era, "evt_2", "customer.subscription.updated", card, sub), tollgate.OutcomeDuplicate)
			if after, _ := e.store.Vendor("42"); after.Revision != before.Revision {
				t.Fatal("a duplicate changed the vendor")
			}

			// an older event must not undo newer state
			old := subObject(t, era, "sub_A", "cus_A", "canceled", "price_pro_m", "42", tPeriodStart, tPeriodEnd)
			e.mustDeliver(event(t, era, "evt_old", "customer.subscription.updated", tPeriodStart, old), tollgate.OutcomeIgnored)
			if v := e.vendor("42"); v.Status != tollgate.StatusActive {
				t.Fatalf("older event undid state: %s", v.Status)
			}
			if rec := e.event("evt_old"); rec.Status != tollgate.OutcomeIgnored || !strings.Contains(rec.Error, "older") {
				t.Fatalf("older event record: %+v", rec)
			}

			// payment failed: retry count, last error, billing row
			failed := invoiceObject(t, era, "in_1", "cus_A", "sub_A", "", "open", 2)
			e.mustDeliver(event(t, era, "evt_3", "invoice.payment_failed", next(), failed), tollgate.OutcomeProcessed)
			v = e.vendor("42")
			if v.PaymentRetryCount != 2 || v.LastPaymentError == "" {
				t.Fatalf("after payment_failed: retry %d error %q", v.PaymentRetryCount, v.LastPaymentError)
			}
			// past_due, keeps the retry state
			sub["status"] = "past_due"
			e.mustDeliver(event(t, era, "evt_4", "customer.subscription.updated", next(), sub), tollgate.OutcomeProcessed)
			if v = e.vendor("42"); v.Status != tollgate.StatusPastDue || v.PaymentRetryCount != 2 {
				t.Fatalf("after past_due: %+v", v)
			}
			// paid: reset
			paid := invoiceObject(t, era, "in_1", "cus_A", "sub_A", "", "paid", 3, func(m map[string]any) {
				m["amount_paid"], m["amount_remaining"] = 9900, 0
				set(t, m, "status_transitions.paid_at", next())
			})
			e.mustDeliver(event(t, era, "evt_5", "invoice.paid", next(), paid), tollgate.OutcomeProcessed)
			if v = e.vendor("42"); v.PaymentRetryCount != 0 || v.LastPaymentError != "" {
				t.Fatalf("after paid: retry %d error %q", v.PaymentRetryCount, v.LastPaymentError)
			}
			// finalized: a second invoice in the billing history
			fin := invoiceObject(t, era, "in_2", "cus_A", "sub_A", "42", "open", 0)
			e.mustDeliver(event(t, era, "evt_6", "invoice.finalized", next(), fin), tollgate.OutcomeProcessed)
			bill, err := e.syncer.Billing(ctx, "42")
			if err != nil || len(bill) != 2 {
				t.Fatalf("billing: %v %+v", err, bill)
			}
			in1 := bill[0]
			if in1.ID != "in_1" {
				in1 = bill[1]
			}
			if in1.Status != "paid" || in1.AmountPaid != 9900 || in1.Currency != "eur" || in1.PaidAt == nil ||
				!strings.HasSuffix(in1.InvoicePDF, "/pdf") || in1.HostedInvoiceURL == "" || len(in1.Lines) != 1 || in1.Lines[0].Amount != 1000 {
				t.Fatalf("invoice row: %+v", in1)
			}

			// new billing period: period_start moves, so usage counts afresh
			if era == era2023 {
				sub["current_period_start"], sub["current_period_end"] = int64(tPeriodEnd), int64(tPeriodEnd+2678400)
			} else {
				set(t, sub, "items.data.0.current_period_start", int64(tPeriodEnd))
				set(t, sub, "items.data.0.current_period_end", int64(tPeriodEnd+2678400))
			}
			sub["status"] = "active"
			e.mustDeliver(event(t, era, "evt_7", "customer.subscription.updated", next(), sub), tollgate.OutcomeProcessed)
			if v = e.vendor("42"); tollgate.PeriodKey(v, e.now) != time.Unix(tPeriodEnd, 0).UTC().Format(time.RFC3339) {
				t.Fatalf("period key after renewal: %s", tollgate.PeriodKey(v, e.now))
			}

			// cancel at period end, then deleted
			sub["cancel_at_period_end"], sub["canceled_at"] = true, next()
			sub["cancellation_details"] = map[string]any{"reason": "cancellation_requested"}
			e.mustDeliver(event(t, era, "evt_8", "customer.subscription.updated", next(), sub), tollgate.OutcomeProcessed)
			if v = e.vendor("42"); v.Status != tollgate.StatusCancelled || v.CancellationReason != "cancellation_requested" {
				t.Fatalf("after cancel: %+v", v)
			}
			sub["status"] = "canceled"
			e.mustDeliver(event(t, era, "evt_9", "customer.subscription.deleted", next(), sub), tollgate.OutcomeProcessed)
			if v = e.vendor("42"); v.Status != tollgate.StatusExpired || v.StripeStatus != "canceled" {
				t.Fatalf("after deleted: %+v", v)
			}

			// event log by vendor
			evs, err := e.syncer.Events(ctx, tollgate.EventFilter{VendorID: "42"})
			if err != nil || len(evs) != 10 {
				t.Fatalf("events of vendor 42: %v, %d", err, len(evs))
			}
			for _, x := range evs {
				if x.Payload != nil {
					t.Fatal("payload kept without a payload key")
				}
			}
		})
	}
}

func TestWebhookLinksAndCustomers(t *testing.T) {
	for _, era := range []string{era2023, eraBasil} {
		t.Run(era, func(t *testing.T) {
			e := newEnv(t)
			// a subscription without vendor metadata waits for its customer's link
			sub := subObject(t, era, "sub_B", "cus_B", "active", "price_ess_m", "", tPeriodStart, tPeriodEnd)
			e.mustDeliver(event(t, era, "evt_b1", "customer.subscription.created", tPeriodStart+10, sub), tollgate.OutcomeFailed)
			if _, ok := e.store.Vendor("7"); ok {
				t.Fatal("vendor created without a link")
			}
			cs := fixture(t, era, "checkout.session")
			cs["id"], cs["client_reference_id"], cs["customer"], cs["subscription"], cs["mode"], cs["status"] = "cs_1", "7", "cus_B", "sub_B", "subscription", "complete"
			res := e.mustDeliver(event(t, era, "evt_b2", "checkout.session.completed", tPeriodStart+11, cs), tollgate.OutcomeProcessed)
			if res.VendorID != "7" {
				t.Fatalf("checkout vendor %q", res.VendorID)
			}
			if v := e.vendor("7"); v.Tier != "essential" || v.StripeCustomerID != "cus_B" {
				t.Fatalf("after checkout link: %+v", v)
			}
			// later subscription events find the vendor through the link
			sub["status"] = "past_due"
			e.mustDeliver(event(t, era, "evt_b3", "customer.subscription.updated", tPeriodStart+12, sub), tollgate.OutcomeProcessed)
			if v := e.vendor("7"); v.Status != tollgate.StatusPastDue {
				t.Fatalf("status %s", v.Status)
			}

			// customer metadata links another customer
			cus := fixture(t, era, "customer")
			cus["id"], cus["metadata"] = "cus_C", map[string]any{"vendor_id": "8"}
			e.mustDeliver(event(t, era, "evt_c1", "customer.updated", tPeriodStart+13, cus), tollgate.OutcomeProcessed)
			subC := subObject(t, era, "sub_C", "cus_C", "active", "price_ess_y", "", tPeriodStart, tPeriodEnd)
			e.mustDeliver(event(t, era, "evt_c2", "customer.subscription.created", tPeriodStart+14, subC), tollgate.OutcomeProcessed)
			if v := e.vendor("8"); !v.IsAnnual || v.Status != tollgate.StatusActive {
				t.Fatalf("vendor 8: %+v", v)
			}

			// customer.deleted expires the vendor, and it stays expired
			del := fixture(t, era, "deleted_customer")
			del["id"] = "cus_C"
			e.mustDeliver(event(t, era, "evt_c3", "customer.deleted", tPeriodStart+15, del), tollgate.OutcomeProcessed)
			if v := e.vendor("8"); v.Status != tollgate.StatusExpired {
				t.Fatalf("after customer.deleted: %s", v.Status)
			}
			e.mustDeliver(event(t, era, "evt_c4", "customer.subscription.updated", tPeriodStart+16, subC), tollgate.OutcomeProcessed)
			if v := e.vendor("8"); v.Status != tollgate.StatusExpired {
				t.Fatalf("deleted customer revived: %s", v.Status)
			}

			// an unhandled type is recorded and acknowledged
			plan := fixture(t, era, "event")
			plan["id"] = "evt_plan"
			e.mustDeliver(plan, tollgate.OutcomeIgnored)
			if rec := e.event("evt_plan"); rec.Status != tollgate.OutcomeIgnored {
				t.Fatalf("plan event: %+v", rec)
			}
		})
	}
}

func TestWebhookCatalogEvents(t *testing.T) {
	for _, era := range []string{era2023, eraBasil} {
		t.Run(era, func(t *testing.T) {
			e := newEnv(t)
			price := fixture(t, era, "price")
			price["id"], price["metadata"] = "price_biz_new", map[string]any{"tier": "business"}
			e.mustDeliver(event(t, era, "evt_p1", "price.created", tPeriodStart, price), tollgate.OutcomeProcessed)
			yearly := fixture(t, era, "price")
			yearly["id"], yearly["lookup_key"] = "price_biz_year", "business_annual"
			set(t, yearly, "recurring.interval", "year")
			e.mustDeliver(event(t, era, "evt_p2", "price.updated", tPeriodStart, yearly), tollgate.OutcomeProcessed)
			prod := fixture(t, era, "product")
			prod["id"], prod["metadata"] = "prod_biz", map[string]any{"tier": "business"}
			e.mustDeliver(event(t, era, "evt_p3", "product.updated", tPeriodStart, prod), tollgate.OutcomeProcessed)
			other := fixture(t, era, "product")
			other["id"] = "prod_tshirt"
			e.mustDeliver(event(t, era, "evt_p4", "product.created", tPeriodStart, other), tollgate.OutcomeIgnored)

			check := func(c *tollgate.Catalog) {
				t.Helper()
				biz, _ := c.Lookup("", "business")
				if biz.StripePriceMonthlyID != "price_biz_new" || biz.StripePriceAnnualID != "price_biz_year" || biz.StripeProductID != "prod_biz" {
					t.Fatalf("catalog business: %+v", biz)
				}
			}
			check(e.syncer.Catalog())
			e.mu.Lock()
			n := len(e.catalogs)
			last := e.catalogs[n-1]
			e.mu.Unlock()
			if n != 3 {
				t.Fatalf("OnCatalog called %d times, want 3", n)
			}
			check(last)
			// a subscription on the new price maps by id
			sub := subObject(t, era, "sub_Z", "cus_Z", "active", "price_biz_new", "99", tPeriodStart, tPeriodEnd)
			e.mustDeliver(event(t, era, "evt_p5", "customer.subscription.created", tPeriodStart+1, sub), tollgate.OutcomeProcessed)
			if v := e.vendor("99"); v.Tier != "business" {
				t.Fatalf("tier %s", v.Tier)
			}
			// persisted: a new syncer over the same store starts with the ids
			check(e.newSyncer().Catalog())
		})
	}
}

func TestWebhookRefusedRecordsNothing(t *testing.T) {
	e := newEnv(t)
	sub := subObject(t, era2023, "sub_X", "cus_X", "active", "price_ess_m", "1", tPeriodStart, tPeriodEnd)
	payload := mustJSON(t, event(t, era2023, "evt_x", "customer.subscription.created", tPeriodStart, sub))
	for name, header := range map[string]string{
		"unsigned":     "",
		"forged":       "t=" + itoa(e.now.Unix()) + ",v1=" + strings.Repeat("00", 32),
		"wrong secret": SignatureHeader(payload, e.now, "whsec_wrong"),
		"expired":      SignatureHeader(payload, e.now.Add(-301*time.Second), testSecret),
		"future":       SignatureHeader(payload, e.now.Add(301*time.Second), testSecret),
		"malformed":    "t=x",
	} {
		res, err := e.syncer.Receive(context.Background(), payload, header)
		if tollgate.ErrorCode(err) != tollgate.EUnauthorized || res.Outcome != tollgate.OutcomeRejected {
			t.Errorf("%s: %v %+v", name, err, res)
		}
	}
	// no secret configured: refuses a correctly signed event
	open := e.newSyncer(func(o *Options) { o.WebhookSecrets = nil })
	if _, err := open.Receive(context.Background(), payload, SignatureHeader(payload, e.now, testSecret)); tollgate.ErrorCode(err) != tollgate.EUnauthorized {
		t.Errorf("no secret: %v", err)
	}
	if evs, _ := e.store.Events(context.Background(), tollgate.EventFilter{}); len(evs) != 0 {
		t.Fatalf("refused deliveries recorded: %+v", evs)
	}
	if e.store.VendorCount() != 0 {
		t.Fatal("refused deliveries changed state")
	}
	// undecodable but signed: EInvalid, nothing recorded
	bad := []byte(`{"id":"evt_bad"}`)
	if _, err := e.syncer.Receive(context.Background(), bad, SignatureHeader(bad, e.now, testSecret)); tollgate.ErrorCode(err) != tollgate.EInvalid {
		t.Fatalf("undecodable: %v", err)
	}
}

func TestWebhookTieLaterArrivalWins(t *testing.T) {
	e := newEnv(t)
	sub := subObject(t, eraBasil, "sub_T", "cus_T", "active", "price_ess_m", "5", tPeriodStart, tPeriodEnd)
	e.mustDeliver(event(t, eraBasil, "evt_t1", "customer.subscription.updated", tPeriodStart+50, sub), tollgate.OutcomeProcessed)
	sub["status"] = "past_due"
	e.mustDeliver(event(t, eraBasil, "evt_t2", "customer.subscription.updated", tPeriodStart+50, sub), tollgate.OutcomeProcessed)
	if v := e.vendor("5"); v.Status != tollgate.StatusPastDue {
		t.Fatalf("tie: later arrival lost: %s", v.Status)
	}
}

func TestWebhookPayloadSealed(t *testing.T) {
	key := []byte("0123456789abcdef0123456789abcdef")
	e := newEnv(t, func(o *Options) { o.PayloadKey = key })
	sub := subObject(t, era2023, "sub_E", "cus_E", "active", "price_ess_m", "3", tPeriodStart, tPeriodEnd)
	ev := event(t, era2023, "evt_sealed", "customer.subscription.created", tPeriodStart, sub)
	e.mustDeliver(ev, tollgate.OutcomeProcessed)
	var rec *tollgate.WebhookEvent
	err := e.store.ViewStripe(context.Background(), func(tx tollgate.StripeTx) error {
		var err error
		rec, _, err = tx.Event("evt_sealed")
		return err
	})
	if err != nil || rec == nil || len(rec.Payload) == 0 {
		t.Fatalf("sealed payload not stored: %v %+v", err, rec)
	}
	if strings.Contains(string(rec.Payload), "sub_E") {
		t.Fatal("payload stored in clear")
	}
	plain, err := e.syncer.OpenPayload(rec)
	if err != nil || string(plain) != string(mustJSON(t, ev)) {
		t.Fatalf("open payload: %v", err)
	}
	if _, err := New(context.Background(), Options{Store: e.store, PayloadKey: []byte("short")}); tollgate.ErrorCode(err) != tollgate.EInvalid {
		t.Fatalf("short key: %v", err)
	}
}

func TestWebhookUnavailableWhenNotDurable(t *testing.T) {
	e := newEnv(t)
	if err := e.store.Close(); err != nil {
		t.Fatal(err)
	}
	sub := subObject(t, era2023, "sub_U", "cus_U", "active", "price_ess_m", "3", tPeriodStart, tPeriodEnd)
	_, err := e.deliver(event(t, era2023, "evt_u", "customer.subscription.created", tPeriodStart, sub))
	if tollgate.ErrorCode(err) != tollgate.EUnavailable {
		t.Fatalf("closed store: want EUnavailable, got %v", err)
	}
}

func TestWebhookDurableAcrossReopen(t *testing.T) {
	e := newEnv(t)
	for i := range 20 {
		sub := subObject(t, era2023, fmt.Sprintf("sub_%d", i), fmt.Sprintf("cus_%d", i), "active", "price_ess_m", fmt.Sprint(100+i), tPeriodStart, tPeriodEnd)
		e.mustDeliver(event(t, era2023, fmt.Sprintf("evt_%d", i), "customer.subscription.created", tPeriodStart, sub), tollgate.OutcomeProcessed)
	}
	if err := e.store.Close(); err != nil {
		t.Fatal(err)
	}
	e.store = openStore(t, e.path)
	e.syncer = e.newSyncer()
	if e.store.VendorCount() != 20 {
		t.Fatalf("vendors after reopen: %d", e.store.VendorCount())
	}
	sub := subObject(t, era2023, "sub_0", "cus_0", "active", "price_ess_m", "100", tPeriodStart, tPeriodEnd)
	e.mustDeliver(event(t, era2023, "evt_0", "customer.subscription.created", tPeriodStart, sub), tollgate.OutcomeDuplicate)
}

func TestPruneKeepsRetentionFloor(t *testing.T) {
	e := newEnv(t, func(o *Options) { o.EventRetention = time.Hour }) // below the floor: 3 days
	sub := subObject(t, era2023, "sub_P", "cus_P", "active", "price_ess_m", "9", tPeriodStart, tPeriodEnd)
	e.mustDeliver(event(t, era2023, "evt_p", "customer.subscription.created", tPeriodStart+10, sub), tollgate.OutcomeProcessed)
	e.now = e.now.Add(48 * time.Hour)
	if n, err := e.syncer.Prune(context.Background()); err != nil || n != 0 {
		t.Fatalf("pruned %d (%v) inside the 3-day floor", n, err)
	}
	e.now = e.now.Add(25 * time.Hour)
	if n, err := e.syncer.Prune(context.Background()); err != nil || n != 1 {
		t.Fatalf("pruned %d (%v) after 3 days", n, err)
	}
	// an older event for the object still cannot undo state: the ordering mark survives pruning
	old := subObject(t, era2023, "sub_P", "cus_P", "canceled", "price_ess_m", "9", tPeriodStart, tPeriodEnd)
	e.mustDeliver(event(t, era2023, "evt_p_old", "customer.subscription.updated", tPeriodStart, old), tollgate.OutcomeIgnored)
	if v := e.vendor("9"); v.Status != tollgate.StatusActive {
		t.Fatalf("status %s", v.Status)
	}
}
