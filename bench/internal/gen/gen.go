// Package gen generates a production-like population of vendors for the benchmarks, writes it
// into a tollgate store through the real store API (cache.Store.Import), and derives from the
// same store state the OPA data document and the request mix both servers are driven with.
package gen

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strconv"
	"time"

	"github.com/tollgate-pdp/tollgate"
)

// VendorID names generated vendor i (numeric strings, as the seed model's integer ids).
func VendorID(i int) string { return strconv.Itoa(1_000_000 + i) }

// UnknownVendorID names a vendor that is never generated.
func UnknownVendorID(i int) string { return "unknown-" + strconv.Itoa(i) }

// Mix is the population shape. The default is mostly active essential/professional vendors,
// with trials, past_due, cancelled (half of them past their period end) and expired ones, and
// order usage spread from idle to over the limit.
type Mix struct {
	Seed uint64
}

// Record returns the import record of vendor i at now. It is deterministic in (Seed, i, month).
func (m Mix) Record(i int, now time.Time) tollgate.ImportRecord {
	r := rand.New(rand.NewPCG(m.Seed, uint64(i)))
	now = now.UTC()
	monthStart := time.Date(now.Year(), now.Month(), 1, 0, 0, 0, 0, time.UTC)
	start, end := monthStart, monthStart.AddDate(0, 1, 0)

	var tier string
	switch p := r.IntN(100); {
	case p < 50:
		tier = "essential"
	case p < 85:
		tier = "professional"
	case p < 97:
		tier = "business"
	default:
		tier = "enterprise"
	}
	var status tollgate.Status
	switch p := r.IntN(100); {
	case p < 78:
		status = tollgate.StatusActive
	case p < 86:
		status = tollgate.StatusTrial
	case p < 91:
		status = tollgate.StatusPastDue
	case p < 96:
		status = tollgate.StatusCancelled
	default:
		status = tollgate.StatusExpired
	}
	s := tollgate.Subscription{VendorID: VendorID(i), Tier: tier, Status: status,
		AddOns: []tollgate.SubscriptionAddOn{}}
	if r.IntN(10) == 0 {
		s.Platform = "oms"
	}
	if r.IntN(10) == 0 && status == tollgate.StatusActive {
		// annual: the period started some months ago and runs a year
		s.IsAnnual = true
		start = monthStart.AddDate(0, -r.IntN(11), 0)
		end = start.AddDate(1, 0, 0)
	}
	if status == tollgate.StatusCancelled && r.IntN(2) == 0 {
		// cancelled and past its period end: no access any more
		start, end = monthStart.AddDate(0, -1, 0), monthStart
	}
	s.PeriodStart, s.PeriodEnd = &start, &end
	if status == tollgate.StatusTrial {
		t := now.AddDate(0, 0, 1+r.IntN(14)).Truncate(time.Second)
		s.TrialEndsAt = &t
	}
	if status == tollgate.StatusCancelled {
		t := start.Add(time.Duration(r.IntN(20*24)) * time.Hour)
		s.CancelledAt = &t
		s.CancellationReason = "too_expensive"
	}
	if status == tollgate.StatusPastDue {
		s.PaymentRetryCount = int64(1 + r.IntN(3))
		s.LastPaymentError = "Your card was declined."
	}
	if r.IntN(50) == 0 {
		v := int64(1000 + r.IntN(9000))
		s.CustomOrdersLimit = &v
	}
	if r.IntN(100) == 0 {
		v := int64(500 + r.IntN(1000))
		s.CustomProductsLimit = &v
	}
	if r.IntN(33) == 0 && tier != "enterprise" {
		s.ScheduledTierChange = "business"
		t := end
		s.ScheduledChangeAt = &t
	}
	s.StripeCustomerID = "cus_" + strconv.Itoa(i)
	s.StripeSubscriptionID = "sub_" + strconv.Itoa(i)

	limit := map[string]int64{"essential": 100, "professional": 500, "business": 2000, "enterprise": 5000}[tier]
	if s.CustomOrdersLimit != nil {
		limit = *s.CustomOrdersLimit
	}
	var orders int64
	switch p := r.IntN(100); {
	case p < 60: // well below
		orders = r.Int64N(limit/2 + 1)
	case p < 85: // busy
		orders = limit/2 + r.Int64N(limit*2/5+1)
	case p < 95: // near the limit
		orders = limit*9/10 + r.Int64N(limit/10)
	default: // at or over
		orders = limit + r.Int64N(limit/10+1)
	}
	return tollgate.ImportRecord{Subscription: s, OrdersThisPeriod: orders}
}

// Importer is the part of the store the generator writes through.
type Importer interface {
	Import(ctx context.Context, records []tollgate.ImportRecord) error
}

// Populate imports vendors [0, n) in chunks of chunk records (one transaction each).
func Populate(ctx context.Context, st Importer, m Mix, n, chunk int, now time.Time) error {
	if chunk <= 0 {
		chunk = 50_000
	}
	buf := make([]tollgate.ImportRecord, 0, min(chunk, n))
	for lo := 0; lo < n; lo += chunk {
		buf = buf[:0]
		for i := lo; i < min(lo+chunk, n); i++ {
			buf = append(buf, m.Record(i, now))
		}
		if err := st.Import(ctx, buf); err != nil {
			return fmt.Errorf("import vendors %d..%d: %w", lo, lo+len(buf)-1, err)
		}
	}
	return nil
}
