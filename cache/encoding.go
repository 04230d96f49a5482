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

// decoder reads a record. src views the transaction's bytes (no copy); finish copies the
// strings kept into one exactly sized buffer per record, so a decoded subscription costs one
// string allocation holding only its strings' bytes, not a copy of the whole record. Strings of
// few distinct values (tier, status, platform, price, ...) are shared between records through
// the interner when one is given (the load). Optional values are gathered while decoding and
// moved into one exactly sized array per record by finish, for the same reason: resident memory
// per vendor is what limits cold start. Until finish has run (or after a decoding error), the
// kept strings alias src.
type decoder struct {
	src string
	off int
	err error
	in  *interner // nil: nothing is shared between records

	times [12]time.Time
	tdst  [12]**time.Time
	nt    int
	ints  [8]int64
	idst  [8]**int64
	ni    int
	sdst  [24]*string
	ns    int
	slen  int
}

// interner shares equal values between the records of one load: strings of few distinct
// values, and timestamps (vendors' billing periods often start and end at the same instants).
// A snapshot is immutable, so snapshots may share what they point at. It is bounded: a store
// where a field has many distinct values stops sharing new ones and copies them per record.
type interner struct {
	strs  map[string]string
	times map[[2]int64]*time.Time
}

const maxIntern = 1 << 14

func newInterner() *interner {
	return &interner{strs: map[string]string{}, times: map[[2]int64]*time.Time{}}
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

// keepStr reads a string that is per record (ids) into *dst, to be copied by finish.
func (d *decoder) keepStr(dst *string) {
	*dst = d.str()
	if *dst == "" || d.err != nil {
		return
	}
	d.keep(dst)
}

func (d *decoder) keep(dst *string) {
	if d.ns == len(d.sdst) {
		*dst = string([]byte(*dst)) // more strings than the batch (many add-ons): its own copy
		return
	}
	d.sdst[d.ns] = dst
	d.ns++
	d.slen += len(*dst)
}

// sharedStr reads a string of few distinct values into *dst: the interned copy when there is
// one, else it is kept per record.
func (d *decoder) sharedStr(dst *string) {
	*dst = d.str()
	if *dst == "" || d.err != nil {
		return
	}
	if d.in != nil {
		if v, ok := d.in.strs[*dst]; ok {
			*dst = v
			return
		}
		if len(d.in.strs) < maxIntern {
			v := string([]byte(*dst))
			d.in.strs[v] = v
			*dst = v
			return
		}
	}
	d.keep(dst)
}

func (d *decoder) time() time.Time {
	sec := d.int()
	nsec := d.uvarint()
	if nsec >= 1e9 {
		d.fail(errors.New("bad nanoseconds"))
	}
	return time.Unix(sec, int64(nsec)).UTC()
}

// optTime decodes an optional time into *dst (set by finish when it fits the batch, at once
// when it is interned).
func (d *decoder) optTime(dst **time.Time) {
	*dst = nil
	if !d.bool() {
		return
	}
	t := d.time()
	if d.err != nil {
		return
	}
	if d.in != nil {
		k := [2]int64{t.Unix(), int64(t.Nanosecond())}
		if p, ok := d.in.times[k]; ok {
			*dst = p
			return
		}
		if len(d.in.times) < maxIntern {
			p := new(time.Time)
			*p = t
			d.in.times[k] = p
			*dst = p
			return
		}
	}
	if d.nt < len(d.times) {
		d.times[d.nt], d.tdst[d.nt] = t, dst
		d.nt++
		return
	}
	// Allocated here, not by taking t's address: that would move t to the heap on every call.
	p := new(time.Time)
	*p = t
	*dst = p
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
	p := new(int64)
	*p = v
	*dst = p
}

// finish allocates the gathered optional values in one array each and points the fields at it.
// Destinations must not move between optTime/optInt and finish.
func (d *decoder) finish() {
	if d.err != nil {
		return
	}
	if d.slen > 0 {
		buf := make([]byte, d.slen)
		off := 0
		for _, dst := range d.sdst[:d.ns] {
			n := copy(buf[off:], *dst)
			*dst = bytesString(buf[off : off+n])
			off += n
		}
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

// decodeSubscription decodes into s. Nothing of s aliases val (bbolt's bytes are only valid
// inside the transaction) once it returns without error.
func decodeSubscription(val []byte, s *tollgate.Subscription) error {
	return decodeSubscriptionShared(val, s, nil)
}

// decodeSubscriptionShared is decodeSubscription sharing values with earlier records through
// in (nil: none).
func decodeSubscriptionShared(val []byte, s *tollgate.Subscription, in *interner) error {
	if len(val) == 0 || val[0] != subscriptionFormat1 {
		return fmt.Errorf("subscription record: unknown format")
	}
	// Eight optional times and three optional ints on the subscription itself; add-ons' times
	// beyond the backing array are allocated one by one.
	d := decoder{src: unsafeString(val), off: 1, in: in}
	d.keepStr(&s.VendorID)
	d.sharedStr(&s.Platform)
	d.sharedStr(&s.Tier)
	d.sharedStr((*string)(&s.Status))
	d.optTime(&s.PeriodStart)
	d.optTime(&s.PeriodEnd)
	s.IsAnnual = d.bool()
	d.optTime(&s.TrialEndsAt)
	d.optTime(&s.CardCollectedAt)
	d.optInt(&s.CustomOrdersLimit)
	d.optInt(&s.CustomProductsLimit)
	d.optInt(&s.CustomTeamLimit)
	d.keepStr(&s.StripeCustomerID)
	d.keepStr(&s.StripeSubscriptionID)
	d.sharedStr(&s.StripePriceID)
	d.keepStr(&s.StripePaymentMethodID)
	d.sharedStr(&s.StripeStatus)
	d.sharedStr(&s.ScheduledTierChange)
	d.optTime(&s.ScheduledChangeAt)
	s.PaymentRetryCount = d.int()
	d.sharedStr(&s.LastPaymentError)
	d.optTime(&s.CancelledAt)
	d.sharedStr(&s.CancellationReason)
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
			d.sharedStr(&a.Code)
			a.Quantity = d.int()
			d.sharedStr(&a.Status)
			d.keepStr(&a.DomainName)
			d.optTime(&a.PeriodStart)
			d.optTime(&a.PeriodEnd)
			d.keepStr(&a.StripeItem)
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

// decodeUsage decodes a usage record. in, when non-nil, shares period strings and times
// between vendors (they are the same few billing-period starts for most vendors).
func decodeUsage(val []byte, r *usageRecord, in *interner) error {
	if len(val) == 0 || val[0] != usageFormat1 {
		return fmt.Errorf("usage record: unknown format")
	}
	// The decoder reads straight from val (no copy): finish copies what is not interned.
	d := decoder{src: unsafeString(val), off: 1, in: in}
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
			d.sharedStr(&p.Period)
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
				d.sharedStr(&r.Usage.FeaturesUsed[i])
			}
		}
	}
	d.finish()
	if d.err != nil {
		return fmt.Errorf("usage record: %w", d.err)
	}
	return nil
}
