package sync

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	gosync "sync"
	"testing"
	"time"

	"github.com/tollgate-pdp/tollgate"
	"github.com/tollgate-pdp/tollgate/cache"
)

// lifecycle generates a random lifecycle of n events for subs subscriptions: creation of each,
// then updates (status, tier, cancellation, card), invoices (failed, paid, finalized), checkout
// links for subscriptions without vendor metadata, customer metadata links and deletions.
// created times are strictly increasing, as Stripe's are for one object across seconds.
func lifecycle(t testing.TB, rng *rand.Rand, subs, n int) []map[string]any {
	t.Helper()
	era := []string{era2023, eraBasil}[rng.IntN(2)]
	created := int64(tPeriodStart)
	next := func() int64 { created += 1 + int64(rng.IntN(3)); return created }
	prices := []string{"price_ess_m", "price_ess_y", "price_pro_m", "price_pro_y"}
	statuses := []string{"trialing", "active", "active", "past_due", "unpaid", "canceled", "incomplete", "paused"}
	type subState struct {
		id, customer, vendor string
		viaLink              bool
		obj                  map[string]any
	}
	state := make([]*subState, subs)
	var out []map[string]any
	evID := 0
	emit := func(typ string, obj map[string]any) {
		evID++
		// each event carries its own copy of the object, as Stripe's do
		var cp map[string]any
		if err := json.Unmarshal(mustJSON(t, obj), &cp); err != nil {
			t.Fatal(err)
		}
		out = append(out, event(t, era, fmt.Sprintf("evt_%03d", evID), typ, next(), cp))
	}
	for i := range state {
		s := &subState{id: fmt.Sprintf("sub_%02d", i), customer: fmt.Sprintf("cus_%02d", i),
			vendor: fmt.Sprintf("v%02d", i%16), viaLink: rng.IntN(4) == 0}
		meta := s.vendor
		if s.viaLink {
			meta = ""
		}
		s.obj = subObject(t, era, s.id, s.customer, statuses[rng.IntN(2)], prices[rng.IntN(len(prices))], meta, tPeriodStart, tPeriodEnd)
		state[i] = s
		emit("customer.subscription.created", s.obj)
	}
	for len(out) < n {
		s := state[rng.IntN(len(state))]
		switch k := rng.IntN(10); {
		case k < 4:
			switch rng.IntN(5) {
			case 0:
				s.obj["status"] = statuses[rng.IntN(len(statuses))]
			case 1:
				set(t, s.obj, "items.data.0.price.id", prices[rng.IntN(len(prices))])
			case 2:
				s.obj["cancel_at_period_end"] = !(s.obj["cancel_at_period_end"].(bool))
				s.obj["canceled_at"] = created
			case 3:
				if rng.IntN(3) == 0 {
					s.obj["default_payment_method"] = nil
				} else {
					s.obj["default_payment_method"] = fmt.Sprintf("pm_%d", rng.IntN(2))
				}
			case 4:
				start := tPeriodEnd + int64(rng.IntN(3))*2678400
				if era == era2023 {
					s.obj["current_period_start"], s.obj["current_period_end"] = start, start+2678400
				} else {
					set(t, s.obj, "items.data.0.current_period_start", start)
					set(t, s.obj, "items.data.0.current_period_end", start+2678400)
				}
			}
			typ := "customer.subscription.updated"
			if s.obj["status"] == "canceled" {
				typ = "customer.subscription.deleted"
			}
			emit(typ, s.obj)
		case k < 7:
			inv := fmt.Sprintf("in_%s_%d", s.id, rng.IntN(2))
			vendorMeta := ""
			if !s.viaLink {
				vendorMeta = s.vendor
			}
			typ := []string{"invoice.payment_failed", "invoice.paid", "invoice.finalized"}[rng.IntN(3)]
			status := map[string]string{"invoice.payment_failed": "open", "invoice.paid": "paid", "invoice.finalized": "open"}[typ]
			emit(typ, invoiceObject(t, era, inv, s.customer, s.id, vendorMeta, status, int64(1+rng.IntN(4))))
		case k < 9:
			if s.viaLink {
				cs := fixture(t, era, "checkout.session")
				cs["id"], cs["client_reference_id"], cs["customer"], cs["subscription"] = "cs_"+s.id, s.vendor, s.customer, s.id
				emit("checkout.session.completed", cs)
			} else {
				cus := fixture(t, era, "customer")
				cus["id"], cus["metadata"] = s.customer, map[string]any{"vendor_id": s.vendor}
				emit("customer.updated", cus)
			}
		default:
			if rng.IntN(3) == 0 {
				del := fixture(t, era, "deleted_customer")
				del["id"] = s.customer
				emit("customer.deleted", del)
			}
		}
	}
	return out
}

// stateOf renders everything the sync owns: vendor subscriptions (without the store's
// bookkeeping timestamps and revisions) and billing histories.
func stateOf(t testing.TB, e *env) map[string]string {
	t.Helper()
	out := map[string]string{}
	e.store.ForEachVendor(func(v *tollgate.VendorState) bool {
		s := v.Subscription
		s.CreatedAt, s.UpdatedAt = nil, nil
		out["vendor/"+s.VendorID] = string(mustJSON(t, s))
		bill, err := e.store.Billing(context.Background(), s.VendorID)
		if err != nil {
			t.Fatal(err)
		}
		out["billing/"+s.VendorID] = string(mustJSON(t, bill))
		return true
	})
	return out
}

func TestPropertyShuffledDeliveryConverges(t *testing.T) {
	trials := 200
	if testing.Short() {
		trials = 20
	}
	root := t.TempDir()
	type plan struct {
		seed               uint64
		events, deliveries []map[string]any
	}
	plans := make([]plan, trials)
	for trial := range plans {
		seed := uint64(trial)*7919 + 17
		rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
		events := lifecycle(t, rng, 20, 50)
		// shuffled, with about a third delivered twice
		deliveries := append([]map[string]any(nil), events...)
		for _, ev := range events {
			if rng.IntN(3) == 0 {
				deliveries = append(deliveries, ev)
			}
		}
		rng.Shuffle(len(deliveries), func(i, j int) { deliveries[i], deliveries[j] = deliveries[j], deliveries[i] })
		plans[trial] = plan{seed, events, deliveries}
	}
	// trials run concurrently: each is fsync-bound on its own two files
	sem := make(chan struct{}, 32)
	var wg gosync.WaitGroup
	for trial, p := range plans {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			if err := propertyTrial(root, trial, p.events, p.deliveries); err != nil {
				t.Errorf("trial %d (seed %d): %v", trial, p.seed, err)
			}
		}()
	}
	wg.Wait()
}

// propertyTrial delivers events in order to one store and deliveries to another, signed, and
// compares the resulting states. It runs on its own goroutine, so it reports by error.
func propertyTrial(root string, trial int, events, deliveries []map[string]any) error {
	now := time.Unix(tPeriodStart+3600, 0)
	run := func(name string, evs []map[string]any, senders int) (map[string]string, error) {
		st, err := cache.Open(context.Background(), cache.Options{Path: filepath.Join(root, fmt.Sprintf("%d-%s.db", trial, name))})
		if err != nil {
			return nil, err
		}
		defer st.Close()
		sy, err := New(context.Background(), Options{Store: st, Catalog: testCatalog(), WebhookSecrets: []string{testSecret},
			Now: func() time.Time { return now }})
		if err != nil {
			return nil, err
		}
		// senders > 1 deliver concurrently, as Stripe does: on top of the shuffle, the
		// interleaving is the scheduler's
		next := make(chan map[string]any)
		errs := make(chan error, senders)
		for range senders {
			go func() {
				var first error
				for ev := range next {
					payload, err := json.Marshal(ev)
					if err == nil {
						_, err = sy.Receive(context.Background(), payload, SignatureHeader(payload, now, testSecret))
					}
					if err != nil && first == nil {
						first = fmt.Errorf("%s delivery of %s: %w", name, ev["id"], err)
					}
				}
				errs <- first
			}()
		}
		for _, ev := range evs {
			next <- ev
		}
		close(next)
		for range senders {
			if err := <-errs; err != nil {
				return nil, err
			}
		}
		out := map[string]string{}
		var ferr error
		st.ForEachVendor(func(v *tollgate.VendorState) bool {
			s := v.Subscription
			s.CreatedAt, s.UpdatedAt = nil, nil
			b, _ := json.Marshal(s)
			out["vendor/"+s.VendorID] = string(b)
			bill, err := st.Billing(context.Background(), s.VendorID)
			if err != nil {
				ferr = err
				return false
			}
			b, _ = json.Marshal(bill)
			out["billing/"+s.VendorID] = string(b)
			return true
		})
		return out, ferr
	}
	want, err := run("in-order", events, 1)
	if err != nil {
		return err
	}
	// sequential: concurrent senders (4) converge too, but currently trip a data race in
	// cache/aggregates.go (aggregates.changed reads old.revision after unlocking), reported to
	// the cache package; raise to 4 once it is fixed
	got, err := run("shuffled", deliveries, 1)
	if err != nil {
		return err
	}
	if len(want) == 0 {
		return fmt.Errorf("in-order delivery produced no vendor")
	}
	for k, w := range want {
		if got[k] != w {
			return fmt.Errorf("%s differs\n in order: %s\n shuffled: %s", k, w, got[k])
		}
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			return fmt.Errorf("shuffled delivery has extra %s", k)
		}
	}
	return nil
}
