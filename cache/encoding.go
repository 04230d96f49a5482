package cache

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/tollgate-pdp/tollgate"
)

// Records are a hand-rolled binary encoding rather than JSON or gob: cold start decodes every
// vendor (1M in a few seconds) and the decoded snapshots stay resident, so decoding must be a
// single pass with few allocations. Each record starts with a format byte so a later version
// can change the layout and still read the old one.
//
// Primitives: strings are uvarint length + bytes; integers are zigzag varints; optional values
// (*time.Time, *int64) are a presence byte then the value; times are varint Unix seconds +
// uvarint nanoseconds, decoded in UTC (JSON shows timestamps in UTC anyway).
const (
	subscriptionFormat1 = 1
	usageFormat1        = 1
)

var errShort = errors.New("record truncated")

type encoder struct{ b []byte }

func (e *encoder) str(s string) {
	e.b = binary.AppendUvarint(e.b, uint64(len(s)))
	e.b = append(e.b, s...)
}
func (e *encoder) int(v int64) { e.b = binary.AppendVarint(e.b, v) }
func (e *encoder) bool(v bool) {
	if v {
		e.b = append(e.b, 1)
	} else {
		e.b = append(e.b, 0)
	}
}
func (e *encoder) time(t time.Time) {
	e.b = binary.AppendVarint(e.b, t.Unix())
	e.b = binary.AppendUvarint(e.b, uint64(t.Nanosecond()))
}
func (e *encoder) optTime(t *time.Time) {
	e.bool(t != nil)
	if t != nil {
		e.time(*t)
	}
}
func (e *encoder) optInt(v *int64) {
	e.bool(v != nil)
	if v != nil {
		e.int(*v)
	}
}

// decoder reads a record. Strings are substrings of src, one string copy of the whole record
// made by the caller, so a decoded subscription costs one string allocation, not one per field.
// Optional values are gathered while decoding and moved into one exactly sized array per record
// by finish, for the same reason: resident memory per vendor is what limits cold start.
type decoder struct {
	src string
	off int
	err error

	times [12]time.Time
	tdst  [12]**time.Time
	nt    int
	ints  [8]int64
	idst  [8]**int64
	ni    int
}

func (d *decoder) fail(err error) {
	if d.err == nil {
		d.err = err
	}
}

func (d *decoder) byte() byte {
	if d.err != nil || d.off >= len(d.src) {
		d.fail(errShort)
		return 0
	}
	c := d.src[d.off]
	d.off++
	return c
}

func (d *decoder) uvarint() uint64 {
	var x uint64
	var s uint
	for i := 0; i < binary.MaxVarintLen64; i++ {
		c := d.byte()
		if d.err != nil {
			return 0
		}
		if c < 0x80 {
			return x | uint64(c)<<s
		}
		x |= uint64(c&0x7f) << s
		s += 7
	}
	d.fail(errors.New("varint overflow"))
	return 0
}

func (d *decoder) int() int64 {
	u := d.uvarint()
	x := int64(u >> 1)
	if u&1 != 0 {
		x = ^x
	}
	return x
}

func (d *decoder) bool() bool { return d.byte() != 0 }

func (d *decoder) str() string {
	n := d.uvarint()
	if d.err != nil {
		return ""
	}
	if n > uint64(len(d.src)-d.off) {
		d.fail(errShort)
		return ""
	}
	s := d.src[d.off : d.off+int(n)]
	d.off += int(n)
	return s
}

func (d *decoder) time() time.Time {
	sec := d.int()
	nsec := d.uvarint()
	if nsec >= 1e9 {
		d.fail(errors.New("bad nanoseconds"))
	}
	return time.Unix(sec, int64(nsec)).UTC()
}

// optTime decodes an optional time into *dst (set by finish when it fits the batch).
func (d *decoder) optTime(dst **time.Time) {
	*dst = nil
	if !d.bool() {
		return
	}
	t := d.time()
	if d.err != nil {
		return
	}
	if d.nt < len(d.times) {
		d.times[d.nt], d.tdst[d.nt] = t, dst
		d.nt++
		return
	}
	*dst = &t
}

func (d *decoder) optInt(dst **int64) {
	*dst = nil
	if !d.bool() {
		return
	}
	v := d.int()
	if d.err != nil {
		return
	}
	if d.ni < len(d.ints) {
		d.ints[d.ni], d.idst[d.ni] = v, dst
		d.ni++
		return
	}
	*dst = &v
}

// finish allocates the gathered optional values in one array each and points the fields at it.
// Destinations must not move between optTime/optInt and finish.
func (d *decoder) finish() {
	if d.err != nil {
		return
	}
	if d.nt > 0 {
		arr := make([]time.Time, d.nt)
		copy(arr, d.times[:d.nt])
		for i := range arr {
			*d.tdst[i] = &arr[i]
		}
	}
	if d.ni > 0 {
		arr := make([]int64, d.ni)
		copy(arr, d.ints[:d.ni])
		for i := range arr {
			*d.idst[i] = &arr[i]
		}
	}
}

// appendSubscription encodes s. Field order is the format: append new fields at the end under a
// new format byte.
func appendSubscription(b []byte, s *tollgate.Subscription) []byte {
	e := encoder{b: append(b, subscriptionFormat1)}
	e.str(s.VendorID)
	e.str(s.Platform)
	e.str(s.Tier)
	e.str(string(s.Status))
	e.optTime(s.PeriodStart)
	e.optTime(s.PeriodEnd)
	e.bool(s.IsAnnual)
	e.optTime(s.TrialEndsAt)
	e.optTime(s.CardCollectedAt)
	e.optInt(s.CustomOrdersLimit)
	e.optInt(s.CustomProductsLimit)
	e.optInt(s.CustomTeamLimit)
	e.str(s.StripeCustomerID)
	e.str(s.StripeSubscriptionID)
	e.str(s.StripePriceID)
	e.str(s.StripePaymentMethodID)
	e.str(s.StripeStatus)
	e.str(s.ScheduledTierChange)
	e.optTime(s.ScheduledChangeAt)
	e.int(s.PaymentRetryCount)
	e.str(s.LastPaymentError)
	e.optTime(s.CancelledAt)
	e.str(s.CancellationReason)
	e.b = binary.AppendUvarint(e.b, uint64(len(s.AddOns)))
	for i := range s.AddOns {
		a := &s.AddOns[i]
		e.str(a.Code)
		e.int(a.Quantity)
		e.str(a.Status)
		e.str(a.DomainName)
		e.optTime(a.PeriodStart)
		e.optTime(a.PeriodEnd)
		e.str(a.StripeItem)
	}
	e.optTime(s.CreatedAt)
	e.optTime(s.UpdatedAt)
	return e.b
}

// decodeSubscription decodes into s. It copies val once (bbolt's bytes are only valid inside the
// transaction) and hands out substrings of that copy.
func decodeSubscription(val []byte, s *tollgate.Subscription) error {
	if len(val) == 0 || val[0] != subscriptionFormat1 {
		return fmt.Errorf("subscription record: unknown format")
	}
	// Eight optional times and three optional ints on the subscription itself; add-ons' times
	// beyond the backing array are allocated one by one.
	d := decoder{src: string(val), off: 1}
	s.VendorID = d.str()
	s.Platform = d.str()
	s.Tier = d.str()
	s.Status = tollgate.Status(d.str())
	d.optTime(&s.PeriodStart)
	d.optTime(&s.PeriodEnd)
	s.IsAnnual = d.bool()
	d.optTime(&s.TrialEndsAt)
	d.optTime(&s.CardCollectedAt)
	d.optInt(&s.CustomOrdersLimit)
	d.optInt(&s.CustomProductsLimit)
	d.optInt(&s.CustomTeamLimit)
	s.StripeCustomerID = d.str()
	s.StripeSubscriptionID = d.str()
	s.StripePriceID = d.str()
	s.StripePaymentMethodID = d.str()
	s.StripeStatus = d.str()
	s.ScheduledTierChange = d.str()
	d.optTime(&s.ScheduledChangeAt)
	s.PaymentRetryCount = d.int()
	s.LastPaymentError = d.str()
	d.optTime(&s.CancelledAt)
	s.CancellationReason = d.str()
	n := d.uvarint()
	if d.err == nil && n > uint64(len(d.src)) {
		d.fail(errShort)
	}
	// A non-nil empty slice, so the API shows "add_ons": [] rather than null.
	s.AddOns = []tollgate.SubscriptionAddOn{}
	if d.err == nil && n > 0 {
		s.AddOns = make([]tollgate.SubscriptionAddOn, n)
		for i := range s.AddOns {
			a := &s.AddOns[i]
			a.Code = d.str()
			a.Quantity = d.int()
			a.Status = d.str()
			a.DomainName = d.str()
			d.optTime(&a.PeriodStart)
			d.optTime(&a.PeriodEnd)
			a.StripeItem = d.str()
		}
	}
	d.optTime(&s.CreatedAt)
	d.optTime(&s.UpdatedAt)
	d.finish()
	if d.err != nil {
		return fmt.Errorf("subscription record: %w", d.err)
	}
	return nil
}

// usageRecord is what the usage bucket holds for a vendor. The revision lives here because the
// usage record is rewritten by every change (an order count rewrites one small value).
type usageRecord struct {
	Revision uint64
	Usage    tollgate.Usage
}

func appendUsage(b []byte, r *usageRecord) []byte {
	e := encoder{b: append(b, usageFormat1)}
	e.b = binary.AppendUvarint(e.b, r.Revision)
	u := &r.Usage
	e.b = binary.AppendUvarint(e.b, uint64(len(u.Periods)))
	for i := range u.Periods {
		p := &u.Periods[i]
		e.str(p.Period)
		e.int(p.Orders)
		e.optTime(p.LimitReachedAt)
	}
	e.optInt(u.Products)
	e.optInt(u.TeamMembers)
	e.optInt(u.CMSPages)
	e.optInt(u.CMSCustomPages)
	e.optInt(u.StorageBytes)
	e.optTime(u.ReportedAt)
	// Appended later: records written before it simply end here (decodeUsage reads none).
	if len(u.FeaturesUsed) > 0 {
		e.b = binary.AppendUvarint(e.b, uint64(len(u.FeaturesUsed)))
		for _, f := range u.FeaturesUsed {
			e.str(f)
		}
	}
	return e.b
}

// decodeUsage decodes a usage record. intern, when non-nil, shares period strings between
// vendors (they are the same few billing-period starts for most vendors).
func decodeUsage(val []byte, r *usageRecord, intern map[string]string) error {
	if len(val) == 0 || val[0] != usageFormat1 {
		return fmt.Errorf("usage record: unknown format")
	}
	// The decoder reads straight from val (no copy): every string is interned or copied below.
	d := decoder{src: unsafeString(val), off: 1}
	r.Revision = d.uvarint()
	n := d.uvarint()
	if d.err == nil && n > uint64(len(val)) {
		d.fail(errShort)
	}
	r.Usage.Periods = []tollgate.PeriodUsage{}
	if d.err == nil && n > 0 {
		r.Usage.Periods = make([]tollgate.PeriodUsage, n)
		for i := range r.Usage.Periods {
			p := &r.Usage.Periods[i]
			p.Period = internString(intern, d.str())
			p.Orders = d.int()
			d.optTime(&p.LimitReachedAt)
		}
	}
	d.optInt(&r.Usage.Products)
	d.optInt(&r.Usage.TeamMembers)
	d.optInt(&r.Usage.CMSPages)
	d.optInt(&r.Usage.CMSCustomPages)
	d.optInt(&r.Usage.StorageBytes)
	d.optTime(&r.Usage.ReportedAt)
	if d.err == nil && d.off < len(d.src) {
		n := d.uvarint()
		if d.err == nil && n > uint64(len(d.src)-d.off) {
			d.fail(errShort)
		}
		if d.err == nil {
			r.Usage.FeaturesUsed = make([]string, n)
			for i := range r.Usage.FeaturesUsed {
				r.Usage.FeaturesUsed[i] = internString(intern, d.str())
			}
		}
	}
	d.finish()
	if d.err != nil {
		return fmt.Errorf("usage record: %w", d.err)
	}
	return nil
}

// internString returns a string equal to s that does not alias the transaction's memory.
func internString(intern map[string]string, s string) string {
	if intern == nil {
		return string([]byte(s))
	}
	if v, ok := intern[s]; ok {
		return v
	}
	v := string([]byte(s))
	intern[v] = v
	return v
}
