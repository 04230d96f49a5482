package cache

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/tollgate-pdp/tollgate"
)

// TestImportBatchIsAllOrNothing: subscriptions, invoices, events and snapshots land in one
// transaction; a bad record anywhere leaves the store as it was.
func TestImportBatchIsAllOrNothing(t *testing.T) {
	ctx := context.Background()
	clk := newClock()
	s := mustOpen(t, filepath.Join(t.TempDir(), "t.db"), clk.Now)
	at := clk.Now()
	good := tollgate.ImportBatch{
		Subscriptions: []tollgate.ImportRecord{{Subscription: *testSub("v1"), OrdersThisPeriod: 7}},
		Invoices:      []tollgate.Invoice{{ID: "in_1", VendorID: "v1", Status: "paid", Currency: "eur", Total: 4900, Created: at, Lines: []tollgate.InvoiceLine{}}},
		Events:        []tollgate.WebhookEvent{{ID: "evt_1", Type: "invoice.paid", Status: tollgate.OutcomeProcessed, Created: at, ProcessedAt: at, Source: tollgate.EventSourceImport}},
		Snapshots:     []tollgate.CapacitySnapshot{{Date: "2025-03-01", TakenAt: at.AddDate(0, 0, -13)}},
	}
	bad := []struct {
		name  string
		batch tollgate.ImportBatch
	}{
		{"event without id", tollgate.ImportBatch{Subscriptions: good.Subscriptions, Events: []tollgate.WebhookEvent{{Type: "x"}}}},
		{"invoice without vendor", tollgate.ImportBatch{Subscriptions: good.Subscriptions, Invoices: []tollgate.Invoice{{ID: "in_2"}}}},
		{"snapshot without date", tollgate.ImportBatch{Subscriptions: good.Subscriptions, Snapshots: []tollgate.CapacitySnapshot{{TakenAt: at}}}},
	}
	for _, b := range bad {
		if err := s.ImportBatch(ctx, b.batch); err == nil {
			t.Fatalf("%s: accepted", b.name)
		}
		if _, ok := s.Vendor("v1"); ok {
			t.Fatalf("%s: the subscription was written", b.name)
		}
	}
	for range 2 {
		if err := s.ImportBatch(ctx, good); err != nil {
			t.Fatal(err)
		}
	}
	v := mustVendor(t, s, "v1")
	if len(v.Usage.Periods) != 1 || v.Usage.Periods[0].Orders != 7 {
		t.Fatalf("usage after two imports: %+v", v.Usage.Periods)
	}
	inv, err := s.Billing(ctx, "v1")
	if err != nil || len(inv) != 1 || inv[0].Total != 4900 {
		t.Fatalf("billing: %+v %v", inv, err)
	}
	evs, err := s.Events(ctx, tollgate.EventFilter{})
	if err != nil || len(evs) != 1 || evs[0].Source != tollgate.EventSourceImport {
		t.Fatalf("events: %+v %v", evs, err)
	}
	snaps, err := s.Snapshots(ctx, "", "")
	if err != nil || len(snaps) != 1 || snaps[0].Date != "2025-03-01" {
		t.Fatalf("snapshots: %+v %v", snaps, err)
	}
	var seen bool
	if err := s.ViewStripe(ctx, func(tx tollgate.StripeTx) error {
		_, seen, err = tx.Event("evt_1")
		return err
	}); err != nil || !seen {
		t.Fatalf("the imported event is not seen by the Stripe sync: %v %v", seen, err)
	}
}
