package modeldb

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/tollgate-pdp/tollgate"
)

// mapper turns rows into tollgate values. Tables arrive in Tables() order, so a row's
// references (platform_id, tier_id, addon_product_id) are known when it is mapped; the
// subscriptions are finished last, once the catalog and every vendor's add-ons are.
type mapper struct {
	res    *Result
	counts map[string]*TableCount

	platforms map[int64]string         // platforms.id -> code
	tiers     map[int64]*tollgate.Tier // subscription_tiers.id -> tier (valid rows only)
	tierRows  []int64                  // valid tier row ids, in id order
	badTiers  map[int64]bool           // tier rows refused
	tierKeys  map[[2]string]int64      // (platform, code) -> row id
	addOns    map[int64]string         // addon_products.id -> code
	subs      []*pendingSub
	subByRow  map[int64]*pendingSub
	vendors   map[string]*pendingSub
	addOnRows map[string][]vendorAddOn // vendor id -> add-ons bought
}

type pendingSub struct {
	id     int64
	tierID *int64
	row    tollgate.ImportRow
	addOns []tollgate.SubscriptionAddOn
}

type vendorAddOn struct {
	id     int64
	vendor string
	addOn  tollgate.SubscriptionAddOn
}

func newMapper() *mapper {
	return &mapper{
		res:       &Result{},
		counts:    map[string]*TableCount{},
		platforms: map[int64]string{},
		tiers:     map[int64]*tollgate.Tier{},
		badTiers:  map[int64]bool{},
		tierKeys:  map[[2]string]int64{},
		addOns:    map[int64]string{},
		subByRow:  map[int64]*pendingSub{},
		vendors:   map[string]*pendingSub{},
		addOnRows: map[string][]vendorAddOn{},
	}
}

// refuse records r's problems (and an extra one, when given); it reports whether r had any.
func (m *mapper) refuse(r *row, extra ...Problem) bool {
	r.problems = append(r.problems, extra...)
	if len(r.problems) == 0 {
		return false
	}
	m.res.Problems = append(m.res.Problems, r.problems...)
	m.counts[r.table].Refused++
	return true
}

func (m *mapper) problem(table string, id int64, err error) Problem {
	p := Problem{Table: table, RowID: id, Message: tollgate.ErrorMessage(err)}
	var e *tollgate.Error
	if errors.As(err, &e) {
		p.Field = e.Field
	}
	return p
}

func (m *mapper) note(table string, id int64, format string, args ...any) {
	m.res.Notes = append(m.res.Notes, Problem{Table: table, RowID: id, Message: fmt.Sprintf(format, args...)})
}

func (m *mapper) imported(table string, id int64, format string, args ...any) {
	m.counts[table].Imported++
	m.res.Rows = append(m.res.Rows, fmt.Sprintf("%s id=%d: ", table, id)+fmt.Sprintf(format, args...))
}

func (m *mapper) mapRow(r *row) {
	switch r.table {
	case TablePlatforms:
		if r.required("code") {
			m.platforms[r.id] = r.str("code")
		}
		if !m.refuse(r) {
			m.counts[r.table].Imported++
		}
	case TableTiers:
		m.mapTier(r)
	case TableAddOnProducts:
		m.mapAddOn(r)
	case TableSubscriptions:
		m.mapSubscription(r)
	case TableVendorAddOns:
		m.mapVendorAddOn(r)
	case TableBilling:
		m.mapInvoice(r)
	case TableWebhookEvents:
		m.mapEvent(r)
	case TableCapacity:
		m.mapSnapshot(r)
	}
}

func (m *mapper) mapTier(r *row) {
	t := tollgate.Tier{
		Code: r.str("code"), Name: r.str("name"),
		PriceMonthlyCents: r.intp("price_monthly_cents"), PriceAnnualCents: r.intp("price_annual_cents"),
		OrdersPerMonth: r.intp("orders_per_month"), ProductsLimit: r.intp("products_limit"),
		TeamMembers: r.intp("team_members"), OrderHistoryMonths: r.intp("order_history_months"),
		CMSPagesLimit: r.intp("cms_pages_limit"), CMSCustomPagesLimit: r.intp("cms_custom_pages_limit"),
		Features:        []string{},
		StripeProductID: r.str("stripe_product_id"), StripePriceMonthlyID: r.str("stripe_price_monthly_id"),
		StripePriceAnnualID: r.str("stripe_price_annual_id"),
		DisplayOrder:        int(r.int("display_order")),
		IsActive:            r.boolean("is_active", true), IsPublic: r.boolean("is_public", true),
	}
	r.json("features", &t.Features, "a JSON array of feature codes")
	if t.Features == nil {
		t.Features = []string{}
	}
	if pid := r.intp("platform_id"); pid != nil {
		code, ok := m.platforms[*pid]
		if !ok {
			r.fail("platform_id", "no platforms row with id %d", *pid)
		}
		t.Platform = code
	}
	if len(r.problems) == 0 {
		if err := (&tollgate.Catalog{Tiers: []tollgate.Tier{t}}).Validate(); err != nil {
			r.problems = append(r.problems, m.problem(r.table, r.id, err))
		}
	}
	key := [2]string{t.Platform, t.Code}
	if other, dup := m.tierKeys[key]; dup && len(r.problems) == 0 {
		r.fail("code", "tier %q of platform %q is also row %d: which one applies is ambiguous", t.Code, t.Platform, other)
	}
	if m.refuse(r) {
		m.badTiers[r.id] = true
		return
	}
	m.tierKeys[key] = r.id
	m.tiers[r.id] = &t
	m.tierRows = append(m.tierRows, r.id)
	m.imported(r.table, r.id, "tier %s%s %q, orders/month %s, products %s, team %s, %d features",
		t.Code, platformSuffix(t.Platform), t.Name, limit(t.OrdersPerMonth), limit(t.ProductsLimit),
		limit(t.TeamMembers), len(t.Features))
}

func (m *mapper) mapAddOn(r *row) {
	a := tollgate.AddOn{
		Code: r.str("code"), Name: r.str("name"), Category: r.str("category"),
		PriceCents: r.int("price_cents"), BillingPeriod: r.str("billing_period"),
		QuantityUnit: r.str("quantity_unit"), QuantityValue: r.intp("quantity_value"),
		StripePriceID: r.str("stripe_price_id"), StripeProductID: r.str("stripe_product_id"),
		DisplayOrder: int(r.int("display_order")), IsActive: r.boolean("is_active", true),
	}
	if a.BillingPeriod == "" {
		a.BillingPeriod = tollgate.BillingMonthly // the model's column default
	}
	if len(r.problems) == 0 {
		probe := tollgate.Catalog{Tiers: tollgate.DefaultCatalog().Tiers, AddOns: []tollgate.AddOn{a}}
		if err := probe.Validate(); err != nil {
			r.problems = append(r.problems, m.problem(r.table, r.id, err))
		}
	}
	for _, have := range m.res.catalogAddOns() {
		if have.Code == a.Code && len(r.problems) == 0 {
			r.fail("code", "add-on %q is listed twice", a.Code)
		}
	}
	if m.refuse(r) {
		return
	}
	m.addOns[r.id] = a.Code
	m.res.addOns = append(m.res.addOns, a)
	m.imported(r.table, r.id, "add-on %s (%s, %d cents %s)", a.Code, a.Category, a.PriceCents, a.BillingPeriod)
}

func (m *mapper) mapSubscription(r *row) {
	vendor := ""
	if r.required("vendor_id") {
		vendor = r.str("vendor_id")
	}
	ps := &pendingSub{id: r.id, tierID: r.intp("tier_id"), row: tollgate.ImportRow{
		VendorID: tollgate.VendorID(vendor), Tier: r.str("tier"), Status: r.str("status"),
		PeriodStart: r.timeText("period_start"), PeriodEnd: r.timeText("period_end"),
		IsAnnual:    tollgate.DBBool(r.boolean("is_annual", false)),
		TrialEndsAt: r.timeText("trial_ends_at"), CardCollectedAt: r.timeText("card_collected_at"),
		OrdersThisPeriod: r.int("orders_this_period"), OrdersLimitReachedAt: r.timeText("orders_limit_reached_at"),
		CustomOrdersLimit: r.intp("custom_orders_limit"), CustomProductsLimit: r.intp("custom_products_limit"),
		CustomTeamLimit:  r.intp("custom_team_limit"),
		StripeCustomerID: r.strp("stripe_customer_id"), StripeSubscriptionID: r.strp("stripe_subscription_id"),
		StripePriceID: r.strp("stripe_price_id"), StripePaymentMethodID: r.strp("stripe_payment_method_id"),
		ScheduledTierChange: r.strp("scheduled_tier_change"), ScheduledChangeAt: r.timeText("scheduled_change_at"),
		PaymentRetryCount: r.int("payment_retry_count"), LastPaymentError: r.strp("last_payment_error"),
		CancelledAt: r.timeText("cancelled_at"), CancellationReason: r.strp("cancellation_reason"),
		CreatedAt: r.timeText("created_at"), UpdatedAt: r.timeText("updated_at"),
	}}
	if other, dup := m.vendors[vendor]; dup && vendor != "" {
		r.fail("vendor_id", "vendor %s already has row %d (vendor_id is unique in the model)", vendor, other.id)
	}
	if m.refuse(r) {
		return
	}
	m.subs = append(m.subs, ps)
	m.subByRow[r.id] = ps
	m.vendors[vendor] = ps
}

func (m *mapper) mapVendorAddOn(r *row) {
	vendor := ""
	if r.required("vendor_id") {
		vendor = r.str("vendor_id")
	}
	a := tollgate.SubscriptionAddOn{
		Quantity: r.int("quantity"), Status: r.str("status"), DomainName: r.str("domain_name"),
		PeriodStart: r.time("period_start"), PeriodEnd: r.time("period_end"),
		StripeItem: r.str("stripe_subscription_item_id"),
	}
	if a.Status == "" {
		a.Status = "active" // the model's column default
	}
	if r.null("quantity") {
		a.Quantity = 1
	}
	if pid := r.intp("addon_product_id"); pid != nil {
		code, ok := m.addOns[*pid]
		if !ok {
			r.fail("addon_product_id", "no importable addon_products row with id %d", *pid)
		}
		a.Code = code
	} else {
		r.required("addon_product_id")
	}
	if a.Quantity < 0 {
		r.fail("quantity", "must be >= 0, got %d", a.Quantity)
	}
	if _, ok := m.vendors[vendor]; !ok && vendor != "" {
		r.fail("vendor_id", "vendor %s has no importable vendor_subscriptions row", vendor)
	}
	if m.refuse(r) {
		return
	}
	m.addOnRows[vendor] = append(m.addOnRows[vendor], vendorAddOn{id: r.id, vendor: vendor, addOn: a})
}

func (m *mapper) mapInvoice(r *row) {
	vendor := ""
	if r.required("vendor_id") {
		vendor = r.str("vendor_id")
	}
	inv := tollgate.Invoice{
		ID: r.str("stripe_invoice_id"), Number: r.str("invoice_number"), VendorID: vendor,
		Status: r.str("status"), Currency: strings.ToLower(r.str("currency")),
		Subtotal: r.int("subtotal_cents"), Tax: r.int("tax_cents"), Total: r.int("total_cents"),
		AmountPaid: r.int("amount_paid_cents"), HostedInvoiceURL: r.str("hosted_invoice_url"),
		InvoicePDF: r.str("invoice_pdf_url"), PaymentIntentID: r.str("stripe_payment_intent_id"),
		Description: r.str("description"), DueDate: r.time("due_date"), Lines: []tollgate.InvoiceLine{},
	}
	for _, col := range []string{"invoice_date", "subtotal_cents", "total_cents", "status"} {
		r.required(col)
	}
	if at := r.time("invoice_date"); at != nil {
		inv.Created = *at
		if inv.Status == "paid" {
			inv.PaidAt = at
		}
	}
	if inv.ID == "" {
		// A row without a Stripe invoice (a manual entry): keyed by its row id.
		inv.ID = "billing_history_" + itoa(r.id)
	}
	if inv.Currency == "" {
		inv.Currency = "eur"
	}
	inv.AmountDue = inv.Total
	inv.AmountRemaining = max(inv.Total-inv.AmountPaid, 0)
	var items []map[string]any
	r.json("line_items", &items, "a JSON array of objects")
	for i, it := range items {
		inv.Lines = append(inv.Lines, invoiceLine(inv.ID, i, inv.Currency, it))
	}
	for _, col := range []string{"subtotal_cents", "tax_cents", "total_cents", "amount_paid_cents"} {
		if v := r.intp(col); v != nil && *v < 0 {
			r.fail(col, "must be >= 0, got %d", *v)
		}
	}
	if m.refuse(r) {
		return
	}
	m.res.Batch.Invoices = append(m.res.Batch.Invoices, inv)
	m.imported(r.table, r.id, "invoice %s of vendor %s, %s, total %d %s", inv.ID, vendor, inv.Status, inv.Total, inv.Currency)
}

// invoiceLine reads one line_items entry; the model does not fix their shape, so the usual
// names are taken (description, amount or amount_cents, quantity, stripe_price_id or price_id).
func invoiceLine(invoiceID string, i int, currency string, it map[string]any) tollgate.InvoiceLine {
	l := tollgate.InvoiceLine{ID: fmt.Sprintf("%s_line_%d", invoiceID, i), Currency: currency, Quantity: 1}
	if s, ok := it["description"].(string); ok {
		l.Description = s
	}
	for _, k := range []string{"amount_cents", "amount"} {
		if f, ok := it[k].(float64); ok {
			l.Amount = int64(f)
			break
		}
	}
	if f, ok := it["quantity"].(float64); ok {
		l.Quantity = int64(f)
	}
	for _, k := range []string{"stripe_price_id", "price_id"} {
		if s, ok := it[k].(string); ok {
			l.PriceID = s
			break
		}
	}
	return l
}

func (m *mapper) mapEvent(r *row) {
	id := ""
	if r.required("event_id") {
		id = r.str("event_id")
	}
	status := r.str("status")
	ev := tollgate.WebhookEvent{ID: id, Type: r.str("event_type"), Status: tollgate.OutcomeProcessed,
		Error: r.str("error_message"), VendorID: r.str("vendor_id"), Source: tollgate.EventSourceImport}
	created := r.time("created_at")
	processed := r.time("processed_at")
	if subRow := r.intp("subscription_id"); subRow != nil {
		if ps, ok := m.subByRow[*subRow]; ok && ps.row.StripeSubscriptionID != nil {
			ev.SubscriptionID = *ps.row.StripeSubscriptionID
		}
	}
	if m.refuse(r) {
		return
	}
	if status != tollgate.OutcomeProcessed {
		// Not processed by the old application: if Stripe delivers it again, tollgate must
		// apply it, so it is not marked as seen.
		m.counts[r.table].Skipped++
		m.note(r.table, r.id, "event %s (%s) has status %q, not processed: left out so that tollgate applies it if Stripe delivers it again", id, ev.Type, status)
		return
	}
	switch {
	case processed != nil:
		ev.ProcessedAt = *processed
	case created != nil:
		ev.ProcessedAt = *created
	default:
		ev.ProcessedAt = time.Now().UTC()
	}
	if created != nil {
		ev.Created = *created
	} else {
		ev.Created = ev.ProcessedAt
	}
	m.res.Batch.Events = append(m.res.Batch.Events, ev)
	m.imported(r.table, r.id, "event %s (%s) marked as processed", id, ev.Type)
}

func (m *mapper) mapSnapshot(r *row) {
	at := r.time("snapshot_date")
	if at == nil {
		r.required("snapshot_date")
	}
	sn := tollgate.CapacitySnapshot{
		Vendors: tollgate.CapacityVendors{Total: r.int("total_vendors"), Active: r.int("active_vendors"),
			Trial: r.int("trial_vendors")},
		Subscriptions: tollgate.CapacitySubscriptions{Total: r.int("total_subscriptions"),
			Active: r.int("active_subscriptions")},
		Usage: tollgate.CapacityUsage{OrdersThisPeriod: r.int("total_orders_month"),
			Products: r.int("total_products"), TeamMembers: r.int("total_team_members"),
			StorageBytes: int64(r.num("storage_used_gb") * 1e9)},
		Limits: tollgate.CapacityLimits{
			Orders: sumOf(r.intp("theoretical_orders_limit")), Products: sumOf(r.intp("theoretical_products_limit")),
			TeamMembers: sumOf(r.intp("theoretical_team_limit"))},
		StoreSizeBytes: int64(r.num("db_size_mb") * 1e6),
		Decisions:      tollgate.CapacityLatency{AverageLatencySecs: float64(r.int("avg_response_ms")) / 1000},
		Process:        tollgate.CapacityProcess{PeakCPUCores: r.num("peak_cpu_percent") / 100},
	}
	var dist map[string]int64
	r.json("tier_distribution", &dist, `a JSON object of tier code to count ({"essential": 10})`)
	if dist != nil {
		// The model counts vendors by tier only; tollgate by tier and status.
		sn.Tiers = map[string]map[string]int64{}
		for tier, n := range dist {
			sn.Tiers[tier] = map[string]int64{"all": n}
		}
	}
	if m.refuse(r) {
		return
	}
	sn.TakenAt = *at
	sn.Date = at.Format(tollgate.DateLayout)
	m.res.Batch.Snapshots = append(m.res.Batch.Snapshots, sn)
	m.imported(r.table, r.id, "capacity snapshot of %s (%d vendors)", sn.Date, sn.Vendors.Total)
}

func sumOf(v *int64) tollgate.LimitTotal {
	if v == nil {
		return tollgate.LimitTotal{}
	}
	return tollgate.LimitTotal{Sum: *v}
}

func platformSuffix(p string) string {
	if p == "" {
		return ""
	}
	return " (platform " + p + ")"
}

func limit(v *int64) string {
	if v == nil {
		return "unlimited"
	}
	return itoa(*v)
}

// finish resolves every subscription's tier as the model does, completes the catalog and
// validates the subscriptions against it, with their add-ons.
func (m *mapper) finish() {
	builtin := tollgate.DefaultCatalog()
	needBuiltin := map[string]bool{}
	type resolved struct {
		ps  *pendingSub
		err *Problem
	}
	var subs []resolved
	for _, ps := range m.subs {
		p := m.resolveTier(ps, builtin, needBuiltin)
		subs = append(subs, resolved{ps, p})
	}
	cat := &tollgate.Catalog{AddOns: m.res.catalogAddOns()}
	for _, id := range m.tierRows {
		cat.Tiers = append(cat.Tiers, *m.tiers[id])
	}
	globalRows := false
	for k := range m.tierKeys {
		globalRows = globalRows || k[0] == ""
	}
	var added []string
	for _, t := range builtin.Tiers {
		// Without any global row the model's tiers are TIER_LIMITS, all four of them.
		if needBuiltin[t.Code] || !globalRows {
			cat.Tiers = append(cat.Tiers, t)
			added = append(added, t.Code)
		}
	}
	if len(added) > 0 {
		m.note(TableTiers, 0, "no global row for %s: the model's built-in TIER_LIMITS tiers are added to the catalog (rows with tier_id NULL use them)", strings.Join(added, ", "))
	}
	m.res.Catalog = cat
	for _, a := range m.addOnRows {
		for _, va := range a {
			m.vendors[va.vendor].addOns = append(m.vendors[va.vendor].addOns, va.addOn)
		}
	}
	for _, s := range subs {
		ps := s.ps
		if s.err != nil {
			m.res.Problems = append(m.res.Problems, *s.err)
			m.counts[TableSubscriptions].Refused++
			continue
		}
		rec, err := ps.row.Record(cat)
		if err == nil {
			rec.Subscription.AddOns = slices.Clone(ps.addOns)
			if rec.Subscription.AddOns == nil {
				rec.Subscription.AddOns = []tollgate.SubscriptionAddOn{}
			}
			err = rec.Subscription.Validate(cat)
		}
		if err != nil {
			m.res.Problems = append(m.res.Problems, m.problem(TableSubscriptions, ps.id, err))
			m.counts[TableSubscriptions].Refused++
			continue
		}
		m.res.Batch.Subscriptions = append(m.res.Batch.Subscriptions, rec)
		sub := &rec.Subscription
		m.imported(TableSubscriptions, ps.id, "vendor %s: tier %s%s, status %s, %d orders this period, %d add-ons",
			sub.VendorID, sub.Tier, platformSuffix(sub.Platform), sub.Status, rec.OrdersThisPeriod, len(sub.AddOns))
	}
	imported := map[string]bool{}
	for i := range m.res.Batch.Subscriptions {
		imported[m.res.Batch.Subscriptions[i].Subscription.VendorID] = true
	}
	for _, a := range m.addOnRows {
		for _, va := range a {
			if imported[va.vendor] {
				m.counts[TableVendorAddOns].Imported++
			} else {
				m.counts[TableVendorAddOns].Refused++
				m.res.Problems = append(m.res.Problems, Problem{Table: TableVendorAddOns, RowID: va.id, Field: "vendor_id",
					Message: "vendor_id: the subscription of vendor " + va.vendor + " is refused (see vendor_subscriptions)"})
			}
		}
	}
	slices.SortStableFunc(m.res.Rows, func(a, b string) int {
		return cmp.Compare(tableRank(a[:strings.IndexByte(a, ' ')]), tableRank(b[:strings.IndexByte(b, ' ')]))
	})
	slices.SortStableFunc(m.res.Problems, func(a, b Problem) int {
		if c := cmp.Compare(tableRank(a.Table), tableRank(b.Table)); c != 0 {
			return c
		}
		return cmp.Compare(a.RowID, b.RowID)
	})
}

func tableRank(t string) int {
	return slices.Index(Tables(), t)
}

// resolveTier sets the row's tier code and platform the way the model's tier_limits does: the
// tier_id row when it is set (a platform tier brings its platform), else the built-in
// TIER_LIMITS entry of the tier code.
func (m *mapper) resolveTier(ps *pendingSub, builtin *tollgate.Catalog, needBuiltin map[string]bool) *Problem {
	fail := func(field, format string, args ...any) *Problem {
		return &Problem{Table: TableSubscriptions, RowID: ps.id, Field: field, Message: field + ": " + fmt.Sprintf(format, args...)}
	}
	if ps.tierID != nil {
		if t, ok := m.tiers[*ps.tierID]; ok {
			if ps.row.Tier != "" && ps.row.Tier != t.Code {
				m.note(TableSubscriptions, ps.id, "tier column says %q, tier_id %d is %q: the tier_id row wins, as in the model", ps.row.Tier, *ps.tierID, t.Code)
			}
			ps.row.Tier, ps.row.Platform = t.Code, t.Platform
			return nil
		}
		if m.badTiers[*ps.tierID] {
			return fail("tier_id", "subscription_tiers row %d is refused (see its problem)", *ps.tierID)
		}
		m.note(TableSubscriptions, ps.id, "tier_id %d names no subscription_tiers row: the model falls back to TIER_LIMITS[%q], and so does the import", *ps.tierID, ps.row.Tier)
	}
	code := ps.row.Tier
	if code == "" {
		code = "essential" // the model's column default
		ps.row.Tier = code
	}
	def, ok := builtin.Lookup("", code)
	if !ok {
		return fail("tier", "unknown tier %q: tier_id is NULL and the model's TIER_LIMITS has no such tier", code)
	}
	ps.row.Platform = ""
	if id, has := m.tierKeys[[2]string{"", code}]; has {
		if diff := decisionDiff(m.tiers[id], def); diff != "" {
			return fail("tier_id", "is NULL, so the model decides with its built-in %q limits, but subscription_tiers row %d (global %q) differs (%s); set tier_id = %d to keep the row's limits, or make the row match", code, id, code, diff, id)
		}
		return nil
	}
	needBuiltin[code] = true
	return nil
}

// decisionDiff names the first fact the model's decisions use that differs between two tiers.
func decisionDiff(a, b *tollgate.Tier) string {
	for _, f := range []struct {
		name string
		x, y *int64
	}{{"orders_per_month", a.OrdersPerMonth, b.OrdersPerMonth}, {"products_limit", a.ProductsLimit, b.ProductsLimit},
		{"team_members", a.TeamMembers, b.TeamMembers}} {
		if (f.x == nil) != (f.y == nil) || (f.x != nil && *f.x != *f.y) {
			return fmt.Sprintf("%s %s vs %s", f.name, limit(f.x), limit(f.y))
		}
	}
	x, y := slices.Sorted(slices.Values(a.Features)), slices.Sorted(slices.Values(b.Features))
	if !slices.Equal(x, y) {
		return "features"
	}
	return ""
}
