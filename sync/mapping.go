package sync

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/tollgate-pdp/tollgate"
)

// MapStatus maps a raw Stripe subscription status onto a tollgate status:
// trialing → trial; active → active, or cancelled when cancel_at_period_end; past_due →
// past_due; unpaid, canceled, incomplete, incomplete_expired, paused (and anything unknown) →
// expired.
func MapStatus(stripeStatus string, cancelAtPeriodEnd bool) tollgate.Status {
	switch stripeStatus {
	case "trialing":
		if cancelAtPeriodEnd {
			return tollgate.StatusCancelled
		}
		return tollgate.StatusTrial
	case "active":
		if cancelAtPeriodEnd {
			return tollgate.StatusCancelled
		}
		return tollgate.StatusActive
	case "past_due":
		return tollgate.StatusPastDue
	default: // unpaid, canceled, incomplete, incomplete_expired, paused
		return tollgate.StatusExpired
	}
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

// MapSubscription maps a Stripe subscription onto the vendor's tollgate subscription, as
// sync/README.md specifies. It is a pure function. Errors are EInvalid and name what is missing (no
// vendor, no tier).
func MapSubscription(sub *Subscription, in MapInput) (*tollgate.Subscription, error) {
	vendor := VendorOf(sub, in.LinkedVendor)
	if vendor == "" {
		return nil, tollgate.Errorf(tollgate.EInvalid,
			"subscription %s: no vendor: neither metadata.vendor_id nor a link for customer %q", sub.ID, sub.Customer.ID)
	}
	if err := tollgate.ValidateVendorID(vendor); err != nil {
		return nil, fmt.Errorf("subscription %s: metadata vendor_id: %w", sub.ID, err)
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

	// the tier: the first item whose price names a tier
	tierItem := -1
	for i := range sub.Items.Data {
		price := sub.Items.Data[i].EffectivePrice()
		if t, annual, ok := ResolveTier(in.Catalog, out.Platform, &price); ok {
			tierItem = i
			out.Tier = t.Code
			out.IsAnnual = annual
			out.StripePriceID = price.ID
			if t.Platform != "" {
				out.Platform = t.Platform
			}
			break
		}
	}
	if tierItem < 0 {
		var ids []string
		for i := range sub.Items.Data {
			p := sub.Items.Data[i].EffectivePrice()
			ids = append(ids, p.ID)
		}
		return nil, tollgate.Errorf(tollgate.EInvalid,
			"subscription %s: no item's price names a catalog tier (prices %s; set the catalog's stripe price ids, or the price's lookup_key or metadata.tier)",
			sub.ID, strings.Join(ids, ", "))
	}

	out.StripeStatus = sub.Status
	out.Status = MapStatus(sub.Status, sub.CancelAtPeriodEnd)
	out.StripeSubscriptionID = sub.ID
	out.StripeCustomerID = sub.Customer.ID

	out.PeriodStart, out.PeriodEnd = nil, nil
	if start, end, ok := sub.Period(); ok {
		out.PeriodStart, out.PeriodEnd = unixTime(start), unixTime(end)
	}
	out.TrialEndsAt = unixPtr(sub.TrialEnd)

	// card collected: a default payment method (or source) is present
	pm := sub.DefaultPaymentMethod.ID
	if pm == "" {
		pm = sub.DefaultSource.ID
	}
	out.StripePaymentMethodID = pm
	out.CardCollectedAt = nil
	if pm != "" {
		since := in.CardSince
		if since <= 0 {
			since = sub.PaymentMethodCreated()
		}
		if since <= 0 {
			since = in.EventCreated
		}
		out.CardCollectedAt = unixTime(since)
	}

	// cancellation
	out.CancelledAt, out.CancellationReason = nil, ""
	if out.Status == tollgate.StatusCancelled || out.Status == tollgate.StatusExpired {
		out.CancelledAt = unixPtr(sub.CanceledAt)
		if d := sub.CancellationDetails; d != nil {
			out.CancellationReason = d.Reason
			if out.CancellationReason == "" {
				out.CancellationReason = d.Feedback
			}
		}
	}

	// scheduled tier change: a pending update, else the next phase of an expanded schedule
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
	if out.ScheduledTierChange == "" {
		if sch, ok := sub.ExpandedSchedule(); ok {
			if code, at, ok := nextScheduledTier(in.Catalog, out.Platform, sch, in.EventCreated); ok && code != out.Tier {
				out.ScheduledTierChange, out.ScheduledChangeAt = code, unixTime(at)
			}
		}
	}

	// add-ons: the other items whose price is an add-on's
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
		a, ok := ResolveAddOn(in.Catalog, &price)
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

	if out.CreatedAt == nil && sub.Created > 0 {
		out.CreatedAt = unixTime(sub.Created)
	}
	if in.EventCreated > 0 {
		out.UpdatedAt = unixTime(in.EventCreated)
	}
	return out, nil
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
