package sync

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/tollgate-pdp/tollgate"
)

// statusRow is one row of the status table: a Stripe subscription status and the tollgate
// status it maps to, without and with cancel_at_period_end.
type statusRow struct {
	stripe     string
	status     tollgate.Status
	cancelling tollgate.Status // with cancel_at_period_end
}

// statusTable is the one translation of Stripe's subscription statuses into tollgate's. The
// same table is in sync/README.md (a test holds the two equal). A status not in it, such as
// one Stripe adds later, maps to expired: access is never granted on a status not understood.
// It is an array so that no caller can change it and looking a status up allocates nothing.
func statusTable() [8]statusRow {
	return [...]statusRow{
		{"trialing", tollgate.StatusTrial, tollgate.StatusCancelled},
		{"active", tollgate.StatusActive, tollgate.StatusCancelled},
		{"past_due", tollgate.StatusPastDue, tollgate.StatusPastDue},
		{"unpaid", tollgate.StatusExpired, tollgate.StatusExpired},
		{"canceled", tollgate.StatusExpired, tollgate.StatusExpired},
		{"incomplete", tollgate.StatusExpired, tollgate.StatusExpired},
		{"incomplete_expired", tollgate.StatusExpired, tollgate.StatusExpired},
		{"paused", tollgate.StatusExpired, tollgate.StatusExpired},
	}
}

// MapStatus maps a raw Stripe subscription status onto a tollgate status by statusTable.
func MapStatus(stripeStatus string, cancelAtPeriodEnd bool) tollgate.Status {
	for _, r := range statusTable() {
		if r.stripe == stripeStatus {
			if cancelAtPeriodEnd {
				return r.cancelling
			}
			return r.status
		}
	}
	return tollgate.StatusExpired
}

// ResolveTier names the catalog tier a price stands for: the tier whose Stripe price id is the
// price's id, else the tier named by the price's lookup_key or metadata.tier ("business",
// "business_annual", "business_monthly"). annual is true for the tier's annual price id, an
// "_annual"/"_yearly" suffix, or a yearly interval.
func ResolveTier(cat *tollgate.Catalog, platform string, p *Price) (tier *tollgate.Tier, annual, ok bool) {
	if cat == nil || p == nil {
		return nil, false, false
	}
	if t, a, ok := cat.TierByStripePrice(p.ID); ok {
		return t, a || p.Annual(), true
	}
	for _, name := range []string{p.Metadata["tier"], p.LookupKey} {
		code, suffixAnnual := splitTierName(name)
		if code == "" {
			continue
		}
		if t, ok := cat.Lookup(platform, code); ok {
			return t, suffixAnnual || p.Annual(), true
		}
	}
	return nil, false, false
}

func splitTierName(name string) (code string, annual bool) {
	code = strings.ToLower(strings.TrimSpace(name))
	for _, suf := range []string{"_annual", "_yearly", "_year"} {
		if c, ok := strings.CutSuffix(code, suf); ok {
			return c, true
		}
	}
	for _, suf := range []string{"_monthly", "_month"} {
		if c, ok := strings.CutSuffix(code, suf); ok {
			return c, false
		}
	}
	return code, false
}

// ResolveAddOn names the catalog add-on a price stands for: by its Stripe price id, else by the
// price's metadata.addon or lookup_key naming an add-on code.
func ResolveAddOn(cat *tollgate.Catalog, p *Price) (*tollgate.AddOn, bool) {
	if cat == nil || p == nil {
		return nil, false
	}
	if a, ok := cat.AddOnByStripePrice(p.ID); ok {
		return a, true
	}
	for _, name := range []string{p.Metadata["addon"], p.Metadata["add_on"], p.LookupKey} {
		if name == "" {
			continue
		}
		for i := range cat.AddOns {
			if cat.AddOns[i].Code == name {
				return &cat.AddOns[i], true
			}
		}
	}
	return nil, false
}

// MapInput is what mapping a Stripe subscription needs besides the subscription itself.
type MapInput struct {
	Catalog *tollgate.Catalog
	// LinkedVendor is the vendor the subscription's customer is linked to (the customer's
	// metadata.vendor_id, or a checkout session's client_reference_id); "" when unknown.
	LinkedVendor string
	// Prev is the vendor's current subscription, whose fields Stripe does not own (platform,
	// custom overrides, payment retry state, created_at) are kept. Nil for a new vendor.
	Prev *tollgate.Subscription
	// CardSince is when the current default payment method was first seen (Unix seconds); 0
	// falls back to the payment method's own created time, then to EventCreated.
	CardSince int64
	// EventCreated is the created time of the event (or API read) the object comes from.
	EventCreated int64
}

// VendorOf is the vendor a subscription belongs to: its metadata.vendor_id, else the vendor the
// customer is linked to.
func VendorOf(sub *Subscription, linkedVendor string) string {
	if v := strings.TrimSpace(sub.Metadata["vendor_id"]); v != "" {
		return v
	}
	return linkedVendor
}

func unixTime(sec int64) *time.Time {
	t := time.Unix(sec, 0).UTC()
	return &t
}

func unixPtr(sec *int64) *time.Time {
	if sec == nil || *sec <= 0 {
		return nil
	}
	return unixTime(*sec)
}

// MapSubscription maps a Stripe subscription onto the vendor's tollgate subscription. It is a
// pure function: the vendor, then the tier, then each group of fields Stripe owns, each in its
// own step below. Fields Stripe does not own are kept from in.Prev. Errors are EInvalid and
// name what is missing (no vendor, no tier).
func MapSubscription(sub *Subscription, in MapInput) (*tollgate.Subscription, error) {
	vendor, err := mapVendor(sub, in.LinkedVendor)
	if err != nil {
		return nil, err
	}
	out := &tollgate.Subscription{}
	if in.Prev != nil {
		*out = *in.Prev
		out.AddOns = nil
	}
	out.VendorID = vendor
	if p := strings.TrimSpace(sub.Metadata["platform"]); p != "" {
		out.Platform = p
	}
	tierItem, err := mapTier(out, sub, in.Catalog)
	if err != nil {
		return nil, err
	}
	mapStatusAndIDs(out, sub)
	mapCard(out, sub, in)
	mapCancellation(out, sub)
	mapScheduledChange(out, sub, in)
	mapAddOns(out, sub, in.Catalog, tierItem)
	if out.CreatedAt == nil && sub.Created > 0 {
		out.CreatedAt = unixTime(sub.Created)
	}
	if in.EventCreated > 0 {
		out.UpdatedAt = unixTime(in.EventCreated)
	}
	return out, nil
}

// mapVendor is the subscription's vendor (VendorOf), which must be a valid vendor id.
func mapVendor(sub *Subscription, linkedVendor string) (string, error) {
	vendor := VendorOf(sub, linkedVendor)
	if vendor == "" {
		return "", tollgate.Errorf(tollgate.EInvalid,
			"subscription %s: no vendor: neither metadata.vendor_id nor a link for customer %q", sub.ID, sub.Customer.ID)
	}
	if err := tollgate.ValidateVendorID(vendor); err != nil {
		return "", fmt.Errorf("subscription %s: metadata vendor_id: %w", sub.ID, err)
	}
	return vendor, nil
}

// mapTier sets the tier from the first item whose price names one, and returns that item's
// index.
func mapTier(out *tollgate.Subscription, sub *Subscription, cat *tollgate.Catalog) (int, error) {
	for i := range sub.Items.Data {
		price := sub.Items.Data[i].EffectivePrice()
		if t, annual, ok := ResolveTier(cat, out.Platform, &price); ok {
			out.Tier, out.IsAnnual, out.StripePriceID = t.Code, annual, price.ID
			if t.Platform != "" {
				out.Platform = t.Platform
			}
			return i, nil
		}
	}
	var ids []string
	for i := range sub.Items.Data {
		p := sub.Items.Data[i].EffectivePrice()
		ids = append(ids, p.ID)
	}
	return -1, tollgate.Errorf(tollgate.EInvalid,
		"subscription %s: no item's price names a catalog tier (prices %s; set the catalog's stripe price ids, or the price's lookup_key or metadata.tier)",
		sub.ID, strings.Join(ids, ", "))
}

// mapStatusAndIDs sets the status (statusTable), the Stripe ids, the period and the trial end.
func mapStatusAndIDs(out *tollgate.Subscription, sub *Subscription) {
	out.StripeStatus = sub.Status
	out.Status = MapStatus(sub.Status, sub.CancelAtPeriodEnd)
	out.StripeSubscriptionID = sub.ID
	out.StripeCustomerID = sub.Customer.ID
	out.PeriodStart, out.PeriodEnd = nil, nil
	if start, end, ok := sub.Period(); ok {
		out.PeriodStart, out.PeriodEnd = unixTime(start), unixTime(end)
	}
	out.TrialEndsAt = unixPtr(sub.TrialEnd)
}

// mapCard sets card_collected_at: a default payment method (or source) is present, collected
// when it was first seen, else when it was created, else at the event.
func mapCard(out *tollgate.Subscription, sub *Subscription, in MapInput) {
	pm := sub.DefaultPaymentMethod.ID
	if pm == "" {
		pm = sub.DefaultSource.ID
	}
	out.StripePaymentMethodID = pm
	out.CardCollectedAt = nil
	if pm == "" {
		return
	}
	since := in.CardSince
	if since <= 0 {
		since = sub.PaymentMethodCreated()
	}
	if since <= 0 {
		since = in.EventCreated
	}
	out.CardCollectedAt = unixTime(since)
}

// mapCancellation sets when and why a cancelled or expired subscription ended.
func mapCancellation(out *tollgate.Subscription, sub *Subscription) {
	out.CancelledAt, out.CancellationReason = nil, ""
	if out.Status != tollgate.StatusCancelled && out.Status != tollgate.StatusExpired {
		return
	}
	out.CancelledAt = unixPtr(sub.CanceledAt)
	if d := sub.CancellationDetails; d != nil {
		out.CancellationReason = d.Reason
		if out.CancellationReason == "" {
			out.CancellationReason = d.Feedback
		}
	}
}

// mapScheduledChange sets the scheduled tier change: a pending update, else the next phase of
// an expanded schedule.
func mapScheduledChange(out *tollgate.Subscription, sub *Subscription, in MapInput) {
	out.ScheduledTierChange, out.ScheduledChangeAt = "", nil
	if pu := sub.PendingUpdate; pu != nil {
		for i := range pu.SubscriptionItems {
			price := pu.SubscriptionItems[i].EffectivePrice()
			if t, _, ok := ResolveTier(in.Catalog, out.Platform, &price); ok {
				if t.Code != out.Tier {
					out.ScheduledTierChange = t.Code
				}
				break
			}
		}
	}
	if out.ScheduledTierChange != "" {
		return
	}
	if sch, ok := sub.ExpandedSchedule(); ok {
		if code, at, ok := nextScheduledTier(in.Catalog, out.Platform, sch, in.EventCreated); ok && code != out.Tier {
			out.ScheduledTierChange, out.ScheduledChangeAt = code, unixTime(at)
		}
	}
}

// mapAddOns sets the add-ons: the items other than the tier's whose price is an add-on's.
func mapAddOns(out *tollgate.Subscription, sub *Subscription, cat *tollgate.Catalog, tierItem int) {
	addOnStatus := "active"
	switch out.Status {
	case tollgate.StatusCancelled:
		addOnStatus = "cancelled"
	case tollgate.StatusExpired:
		addOnStatus = "expired"
	}
	out.AddOns = []tollgate.SubscriptionAddOn{}
	for i := range sub.Items.Data {
		if i == tierItem {
			continue
		}
		it := &sub.Items.Data[i]
		price := it.EffectivePrice()
		a, ok := ResolveAddOn(cat, &price)
		if !ok {
			continue
		}
		sa := tollgate.SubscriptionAddOn{Code: a.Code, Quantity: it.Qty(), Status: addOnStatus,
			DomainName: it.Metadata["domain_name"], StripeItem: it.ID,
			PeriodStart: out.PeriodStart, PeriodEnd: out.PeriodEnd}
		if it.CurrentPeriodStart != nil && it.CurrentPeriodEnd != nil {
			sa.PeriodStart, sa.PeriodEnd = unixTime(*it.CurrentPeriodStart), unixTime(*it.CurrentPeriodEnd)
		}
		// the same add-on twice (e.g. two items of one price with different domains) stays
		// distinct by domain; identical ones add up
		if j := slices.IndexFunc(out.AddOns, func(x tollgate.SubscriptionAddOn) bool {
			return x.Code == sa.Code && x.DomainName == sa.DomainName
		}); j >= 0 {
			out.AddOns[j].Quantity += sa.Quantity
			continue
		}
		out.AddOns = append(out.AddOns, sa)
	}
}

// nextScheduledTier finds the tier of the schedule's next phase: the first phase starting at or
// after the current phase's end (or after ref when the current phase is unknown).
func nextScheduledTier(cat *tollgate.Catalog, platform string, sch *SubscriptionSchedule, ref int64) (string, int64, bool) {
	after := ref
	if sch.CurrentPhase != nil {
		after = sch.CurrentPhase.EndDate - 1
	}
	for _, ph := range sch.Phases {
		if ph.StartDate <= after {
			continue
		}
		for i := range ph.Items {
			if t, _, ok := ResolveTier(cat, platform, &ph.Items[i].Price); ok {
				return t.Code, ph.StartDate, true
			}
		}
	}
	return "", 0, false
}
