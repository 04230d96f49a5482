package main

import (
	"time"

	"github.com/tollgate-pdp/tollgate"
)

// demoPrefix marks every demo vendor id, so demo data is never mistaken for real vendors.
const demoPrefix = "demo-"

// demoRecords is the demo data set of `serve --demo`: one vendor per tier and per status, and
// vendors near and over their limits, in the calendar month of now. The README's curl examples
// use these ids.
func demoRecords(now time.Time) []tollgate.ImportRecord {
	now = now.UTC()
	start := time.Date(now.Year(), now.Month(), 1, 0, 0, 0, 0, time.UTC)
	end := start.AddDate(0, 1, 0)
	lastMonthEnd := start
	lastMonthStart := start.AddDate(0, -1, 0)
	trialEnd := now.AddDate(0, 0, 14).Truncate(time.Second)
	customOrders := int64(5000)
	rec := func(id, tier string, status tollgate.Status, orders int64, edit func(*tollgate.Subscription)) tollgate.ImportRecord {
		s := tollgate.Subscription{VendorID: demoPrefix + id, Tier: tier, Status: status,
			PeriodStart: &start, PeriodEnd: &end, AddOns: []tollgate.SubscriptionAddOn{}}
		if edit != nil {
			edit(&s)
		}
		return tollgate.ImportRecord{Subscription: s, OrdersThisPeriod: orders}
	}
	return []tollgate.ImportRecord{
		rec("essential", "essential", tollgate.StatusActive, 12, nil),
		rec("essential-near-limit", "essential", tollgate.StatusActive, 99, nil),
		rec("essential-at-limit", "essential", tollgate.StatusActive, 100, nil),
		rec("professional", "professional", tollgate.StatusActive, 250, nil),
		rec("business", "business", tollgate.StatusActive, 1999, nil),
		rec("enterprise", "enterprise", tollgate.StatusActive, 4200, func(s *tollgate.Subscription) {
			s.CustomOrdersLimit = &customOrders
		}),
		rec("trial", "professional", tollgate.StatusTrial, 3, func(s *tollgate.Subscription) { s.TrialEndsAt = &trialEnd }),
		rec("past-due", "business", tollgate.StatusPastDue, 40, func(s *tollgate.Subscription) {
			s.PaymentRetryCount = 2
			s.LastPaymentError = "Your card was declined."
		}),
		rec("cancelled", "professional", tollgate.StatusCancelled, 10, func(s *tollgate.Subscription) {
			s.CancelledAt = &start
			s.CancellationReason = "too_expensive"
		}),
		rec("cancelled-ended", "professional", tollgate.StatusCancelled, 0, func(s *tollgate.Subscription) {
			s.PeriodStart, s.PeriodEnd = &lastMonthStart, &lastMonthEnd
		}),
		rec("expired", "essential", tollgate.StatusExpired, 0, nil),
	}
}
