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
	if err := decodeUsage(appendUsage(nil, &rec), &got, map[string]string{}); err != nil {
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
