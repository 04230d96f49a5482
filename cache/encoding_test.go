package cache

import (
	"reflect"
	"testing"
	"time"

	"github.com/tollgate-pdp/tollgate"
)

func TestSubscriptionRoundTrip(t *testing.T) {
	at := func(d int) *time.Time { v := time.Date(2025, 1, d, 3, 4, 5, 678, time.UTC); return &v }
	full := tollgate.Subscription{
		VendorID: "42", Platform: "oms", Tier: "business", Status: tollgate.StatusPastDue,
		PeriodStart: at(1), PeriodEnd: at(2), IsAnnual: true, TrialEndsAt: at(3), CardCollectedAt: at(4),
		Overrides:        tollgate.Overrides{CustomOrdersLimit: ptr[int64](0), CustomProductsLimit: ptr[int64](-1), CustomTeamLimit: ptr[int64](1 << 40)},
		StripeCustomerID: "cus_1", StripeSubscriptionID: "sub_1", StripePriceID: "price_1",
		StripePaymentMethodID: "pm_1", StripeStatus: "past_due", ScheduledTierChange: "essential",
		ScheduledChangeAt: at(5), PaymentRetryCount: 3, LastPaymentError: "card declined ✗",
		CancelledAt: at(6), CancellationReason: "too expensive",
		AddOns: []tollgate.SubscriptionAddOn{
			{Code: "domain", Quantity: 2, Status: "active", DomainName: "example.lu", PeriodStart: at(7), PeriodEnd: at(8), StripeItem: "si_1"},
			{Code: "ssl", Quantity: 1, Status: "cancelled"},
		},
		CreatedAt: at(9), UpdatedAt: at(10),
	}
	tests := []struct {
		name string
		sub  tollgate.Subscription
	}{
		{"every field", full},
		{"zero", tollgate.Subscription{VendorID: "x", AddOns: []tollgate.SubscriptionAddOn{}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got tollgate.Subscription
			if err := decodeSubscription(appendSubscription(nil, &tt.sub), &got); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.sub) {
				t.Fatalf("round trip:\n got %+v\nwant %+v", got, tt.sub)
			}
		})
	}
}

func TestUsageRoundTrip(t *testing.T) {
	at := time.Date(2025, 2, 3, 4, 5, 6, 7, time.UTC)
	rec := usageRecord{Revision: 99, Usage: tollgate.Usage{
		Periods: []tollgate.PeriodUsage{
			{Period: "2025-02-01T00:00:00Z", Orders: 12, LimitReachedAt: &at},
			{Period: "2025-01-01T00:00:00Z", Orders: 100},
		},
		Products: ptr[int64](5), StorageBytes: ptr[int64](1 << 33), ReportedAt: &at,
	}}
	var got usageRecord
	if err := decodeUsage(appendUsage(nil, &rec), &got, newInterner()); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, rec) {
		t.Fatalf("round trip:\n got %+v\nwant %+v", got, rec)
	}
}

func TestDecodeRefusesTruncatedRecords(t *testing.T) {
	sub := testSub("7")
	b := appendSubscription(nil, sub)
	for n := 0; n < len(b); n++ {
		var s tollgate.Subscription
		if err := decodeSubscription(b[:n], &s); err == nil {
			t.Fatalf("decode of %d/%d bytes succeeded", n, len(b))
		}
	}
}

// TestDecodedRecordsOwnTheirMemory: bbolt's bytes are only valid inside the transaction, so a
// decoded snapshot must not alias them, with or without the load's interner; records decoded
// with one interner share equal values.
func TestDecodedRecordsOwnTheirMemory(t *testing.T) {
	sub := testSub("v1")
	sub.StripePriceID, sub.LastPaymentError = "price_1", "card declined"
	sub.AddOns = []tollgate.SubscriptionAddOn{{Code: "domain", Status: "active", DomainName: "shop.lu", StripeItem: "si_9"}}
	for _, in := range []*interner{nil, newInterner()} {
		var got [2]tollgate.Subscription
		for i := range got {
			b := appendSubscription(nil, sub)
			if err := decodeSubscriptionShared(b, &got[i], in); err != nil {
				t.Fatal(err)
			}
			for j := range b {
				b[j] = 0xff // what a later transaction may do to the page
			}
			if !reflect.DeepEqual(got[i], *sub) {
				t.Fatalf("interner %v: after the source changed:\n got %+v\nwant %+v", in != nil, got[i], *sub)
			}
		}
		if shared := got[0].PeriodStart == got[1].PeriodStart; shared != (in != nil) {
			t.Errorf("interner %v: period start shared = %v", in != nil, shared)
		}
	}
	rec := usageRecord{Revision: 3, Usage: tollgate.Usage{Periods: []tollgate.PeriodUsage{{Period: "2025-02-01T00:00:00Z", Orders: 1}},
		FeaturesUsed: []string{"api_access"}}}
	for _, in := range []*interner{nil, newInterner()} {
		b := appendUsage(nil, &rec)
		var got usageRecord
		if err := decodeUsage(b, &got, in); err != nil {
			t.Fatal(err)
		}
		for j := range b {
			b[j] = 0xff
		}
		if !reflect.DeepEqual(got, rec) {
			t.Fatalf("usage after the source changed:\n got %+v\nwant %+v", got, rec)
		}
	}
}
