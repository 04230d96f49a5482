package cache

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/tollgate-pdp/tollgate"
)

func openStripeStore(t *testing.T) *Store {
	t.Helper()
	s, err := Open(context.Background(), Options{Path: filepath.Join(t.TempDir(), "stripe.db")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func TestStripeStoreEventsBillingPrune(t *testing.T) {
	ctx := context.Background()
	s := openStripeStore(t)
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	events := []tollgate.WebhookEvent{
		{ID: "evt_1", Type: "customer.subscription.created", Status: tollgate.OutcomeProcessed, VendorID: "42", ProcessedAt: base},
		{ID: "evt_2", Type: "invoice.paid", Status: tollgate.OutcomeProcessed, VendorID: "42", ProcessedAt: base.Add(time.Hour)},
		{ID: "evt_3", Type: "plan.created", Status: tollgate.OutcomeIgnored, ProcessedAt: base.Add(2 * time.Hour), Payload: []byte("sealed")},
		{ID: "evt_4", Type: "invoice.paid", Status: tollgate.OutcomeFailed, VendorID: "7", ProcessedAt: base.Add(3 * time.Hour)},
	}
	sub := &tollgate.Subscription{VendorID: "42", Tier: "essential", Status: tollgate.StatusActive}
	st, err := s.ApplyStripe(ctx, "42", func(tx tollgate.StripeTx, cur *tollgate.VendorState) (*tollgate.Subscription, error) {
		if cur != nil {
			t.Fatal("vendor exists before")
		}
		for i := range events {
			if err := tx.PutEvent(&events[i]); err != nil {
				return nil, err
			}
		}
		for _, inv := range []tollgate.Invoice{
			{ID: "in_a", VendorID: "42", Created: base, Total: 4900, Currency: "eur"},
			{ID: "in_b", VendorID: "42", Created: base.Add(time.Hour), Total: 9900, Currency: "eur"},
			{ID: "in_c", VendorID: "420", Created: base, Total: 1, Currency: "eur"},
		} {
			if err := tx.PutInvoice(&inv); err != nil {
				return nil, err
			}
		}
		if err := tx.Put("marks", "subscription:sub_1", []byte{1}); err != nil {
			return nil, err
		}
		return sub, nil
	})
	if err != nil || st == nil || st.Subscription.Tier != "essential" {
		t.Fatalf("apply: %v %+v", err, st)
	}
	if v, ok := s.Vendor("42"); !ok || v.Subscription.Status != tollgate.StatusActive {
		t.Fatal("read model not updated after ApplyStripe")
	}

	tests := []struct {
		name string
		f    tollgate.EventFilter
		want []string
	}{
		{"all newest first", tollgate.EventFilter{}, []string{"evt_4", "evt_3", "evt_2", "evt_1"}},
		{"by vendor", tollgate.EventFilter{VendorID: "42"}, []string{"evt_2", "evt_1"}},
		{"vendor prefix is not a match", tollgate.EventFilter{VendorID: "4"}, nil},
		{"by type", tollgate.EventFilter{Type: "invoice.paid"}, []string{"evt_4", "evt_2"}},
		{"by status", tollgate.EventFilter{Status: tollgate.OutcomeIgnored}, []string{"evt_3"}},
		{"limit", tollgate.EventFilter{Limit: 1}, []string{"evt_4"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := s.Events(ctx, tt.f)
			if err != nil {
				t.Fatal(err)
			}
			var ids []string
			for _, e := range got {
				ids = append(ids, e.ID)
				if e.Payload != nil {
					t.Fatal("listed event carries its payload")
				}
			}
			if len(ids) != len(tt.want) {
				t.Fatalf("got %v, want %v", ids, tt.want)
			}
			for i := range ids {
				if ids[i] != tt.want[i] {
					t.Fatalf("got %v, want %v", ids, tt.want)
				}
			}
		})
	}

	bill, err := s.Billing(ctx, "42")
	if err != nil || len(bill) != 2 || bill[0].ID != "in_b" || bill[1].ID != "in_a" {
		t.Fatalf("billing: %v %+v", err, bill)
	}
	if bill, _ := s.Billing(ctx, "nobody"); len(bill) != 0 || bill == nil {
		t.Fatalf("billing of unknown vendor: %#v", bill)
	}

	// the sealed payload survives a reopen
	path := s.Path()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s2, err := Open(ctx, Options{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	err = s2.ViewStripe(ctx, func(tx tollgate.StripeTx) error {
		e, ok, err := tx.Event("evt_3")
		if err != nil || !ok || string(e.Payload) != "sealed" {
			t.Fatalf("evt_3 after reopen: %+v %v %v", e, ok, err)
		}
		if v, _ := tx.Get("marks", "subscription:sub_1"); len(v) != 1 {
			t.Fatal("state lost")
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}

	n, err := s2.PruneEvents(ctx, base.Add(90*time.Minute))
	if err != nil || n != 2 {
		t.Fatalf("prune: %d %v", n, err)
	}
	got, _ := s2.Events(ctx, tollgate.EventFilter{})
	if len(got) != 2 || got[0].ID != "evt_4" || got[1].ID != "evt_3" {
		t.Fatalf("after prune: %+v", got)
	}
	if got, _ := s2.Events(ctx, tollgate.EventFilter{VendorID: "42"}); len(got) != 0 {
		t.Fatalf("vendor index kept pruned events: %+v", got)
	}
}

func TestStripeStoreRollbackAndClosed(t *testing.T) {
	ctx := context.Background()
	s := openStripeStore(t)
	boom := errors.New("boom")
	_, err := s.ApplyStripe(ctx, "", func(tx tollgate.StripeTx, _ *tollgate.VendorState) (*tollgate.Subscription, error) {
		if err := tx.PutEvent(&tollgate.WebhookEvent{ID: "evt_rb", ProcessedAt: time.Now()}); err != nil {
			return nil, err
		}
		return nil, boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("want boom, got %v", err)
	}
	if got, _ := s.Events(ctx, tollgate.EventFilter{}); len(got) != 0 {
		t.Fatal("a failed transaction left an event")
	}
	if _, err := s.ApplyStripe(ctx, "", func(tollgate.StripeTx, *tollgate.VendorState) (*tollgate.Subscription, error) {
		return &tollgate.Subscription{}, nil
	}); tollgate.ErrorCode(err) != tollgate.EInternal {
		t.Fatalf("subscription without vendor: %v", err)
	}
	_ = s.Close()
	if err := s.ViewStripe(ctx, func(tollgate.StripeTx) error { return nil }); tollgate.ErrorCode(err) != tollgate.EUnavailable {
		t.Fatalf("view on closed store: %v", err)
	}
	if _, err := s.ApplyStripe(ctx, "1", func(tollgate.StripeTx, *tollgate.VendorState) (*tollgate.Subscription, error) { return nil, nil }); tollgate.ErrorCode(err) != tollgate.EUnavailable {
		t.Fatalf("apply on closed store: %v", err)
	}
}
