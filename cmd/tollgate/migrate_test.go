package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tollgate-pdp/tollgate"
	"github.com/tollgate-pdp/tollgate/cache"
	"github.com/tollgate-pdp/tollgate/modeldb"
	"github.com/tollgate-pdp/tollgate/modeldb/modeltest"
	"github.com/tollgate-pdp/tollgate/policy"
)

// The model's own decisions, written from its source (models/database/subscription.py) for
// this test only: TIER_LIMITS, tier_limits (the tier_id row first), and can_create_order,
// can_add_product, can_add_team_member, has_feature. Imported state must decide the same.

type modelLimits struct {
	orders, products, team *int64
	features               []string
}

func lim(v int64) *int64 { return &v }

var (
	essentialFeatures    = []string{"letzshop_sync", "inventory_basic", "invoice_lu", "customer_view"}
	professionalFeatures = []string{"letzshop_sync", "inventory_locations", "inventory_purchase_orders", "invoice_lu", "invoice_eu_vat", "customer_view", "customer_export"}
	businessFeatures     = append(slices.Clone(professionalFeatures), "invoice_bulk", "analytics_dashboard", "accounting_export", "api_access", "automation_rules", "team_roles")
	enterpriseFeatures   = append(slices.Clone(businessFeatures), "white_label", "multi_vendor", "custom_integrations", "sla_guarantee", "dedicated_support")
	modelTierLimits      = map[string]modelLimits{
		"essential":    {lim(100), lim(200), lim(1), essentialFeatures},
		"professional": {lim(500), nil, lim(3), professionalFeatures},
		"business":     {lim(2000), nil, lim(10), businessFeatures},
		"enterprise":   {nil, nil, nil, enterpriseFeatures},
	}
	featurePool = append(slices.Clone(enterpriseFeatures), "cms_basic", "not_a_feature")
)

type modelTierRow struct {
	id       int64
	platform int64 // 0: global
	code     string
	modelLimits
}

type modelSub struct {
	id, vendor              int64
	tierID                  *int64
	tier, status            string
	orders                  int64
	customOrders, customPro *int64
	customTeam              *int64
}

// answer is one decision: allowed, and the message (None is "").
type answer struct {
	allow  bool
	reason string
}

func (m *modelWorld) tierLimits(s *modelSub) modelLimits {
	if s.tierID != nil {
		for _, r := range m.tiers {
			if r.id == *s.tierID {
				return r.modelLimits
			}
		}
	}
	return modelTierLimits[s.tier]
}

func modelActive(s *modelSub) bool {
	return slices.Contains([]string{"trial", "active", "past_due", "cancelled"}, s.status)
}

func effective(custom, tier *int64) *int64 {
	if custom != nil {
		return custom
	}
	return tier
}

func (m *modelWorld) canCreateOrder(s *modelSub) answer {
	return underLimit(s, effective(s.customOrders, m.tierLimits(s).orders), s.orders,
		"Monthly order limit reached (%d orders). Upgrade to continue.")
}

func (m *modelWorld) canAddProduct(s *modelSub, n int64) answer {
	return underLimit(s, effective(s.customPro, m.tierLimits(s).products), n,
		"Product limit reached (%d products). Upgrade to add more.")
}

func (m *modelWorld) canAddTeamMember(s *modelSub, n int64) answer {
	return underLimit(s, effective(s.customTeam, m.tierLimits(s).team), n,
		"Team member limit reached (%d members). Upgrade to add more.")
}

// underLimit is the model's one shape of a limit check: an inactive subscription is refused, no
// limit (nil) allows, and used at or over the limit is refused with reached (formatted with it).
func underLimit(s *modelSub, limit *int64, used int64, reached string) answer {
	if !modelActive(s) {
		return answer{false, "Subscription is not active"}
	}
	if limit != nil && used >= *limit {
		return answer{false, fmt.Sprintf(reached, *limit)}
	}
	return answer{true, ""}
}

func (m *modelWorld) hasFeature(s *modelSub, f string) bool {
	return slices.Contains(m.tierLimits(s).features, f)
}

// modelWorld is a randomized model database: global tiers equal to TIER_LIMITS, edited in the
// database, or absent; platform tiers; subscriptions with and without tier_id.
type modelWorld struct {
	tiers []modelTierRow
	subs  []modelSub
}

func randomLimit(rng *rand.Rand) *int64 {
	if rng.IntN(4) == 0 {
		return nil
	}
	return lim(rng.Int64N(40))
}

func randomFeatures(rng *rand.Rand) []string {
	var out []string
	for _, f := range featurePool[:len(featurePool)-1] {
		if rng.IntN(3) == 0 {
			out = append(out, f)
		}
	}
	return out
}

func newModelWorld(rng *rand.Rand, vendors int) *modelWorld {
	m := &modelWorld{}
	var nullable []string // codes a tier_id NULL row may use: the database row, if any, matches TIER_LIMITS
	id := int64(0)
	for _, code := range []string{"essential", "professional", "business", "enterprise"} {
		switch rng.IntN(3) {
		case 0: // the seeded row, as TIER_LIMITS
			id++
			m.tiers = append(m.tiers, modelTierRow{id: id, code: code, modelLimits: modelTierLimits[code]})
			nullable = append(nullable, code)
		case 1: // edited in the database: only tier_id rows may use it
			id++
			m.tiers = append(m.tiers, modelTierRow{id: id, code: code, modelLimits: modelLimits{
				randomLimit(rng), randomLimit(rng), randomLimit(rng), randomFeatures(rng)}})
		default: // absent: TIER_LIMITS alone
			nullable = append(nullable, code)
		}
	}
	for _, code := range []string{"business", "starter"} {
		id++
		m.tiers = append(m.tiers, modelTierRow{id: id, platform: 1, code: code, modelLimits: modelLimits{
			randomLimit(rng), randomLimit(rng), randomLimit(rng), randomFeatures(rng)}})
	}
	statuses := []string{"trial", "active", "past_due", "cancelled", "expired"}
	for i := range vendors {
		s := modelSub{id: int64(i + 1), vendor: int64(1000 + i), status: statuses[rng.IntN(len(statuses))],
			orders: rng.Int64N(60)}
		if len(nullable) == 0 || rng.IntN(2) == 0 {
			t := m.tiers[rng.IntN(len(m.tiers))]
			s.tierID, s.tier = lim(t.id), t.code
			if rng.IntN(5) == 0 {
				s.tier = "essential" // a stale code column: tier_id wins
			}
		} else {
			s.tier = nullable[rng.IntN(len(nullable))]
		}
		if rng.IntN(3) == 0 {
			s.customOrders = lim(rng.Int64N(60))
		}
		if rng.IntN(4) == 0 {
			s.customPro = lim(rng.Int64N(60))
		}
		if rng.IntN(4) == 0 {
			s.customTeam = lim(rng.Int64N(15))
		}
		m.subs = append(m.subs, s)
	}
	return m
}

func (m *modelWorld) insert(t *testing.T, db *modeltest.DB, now time.Time) {
	db.Insert(t, "platforms", modeltest.Row{"id": 1, "code": "oms", "name": "OMS"})
	for _, r := range m.tiers {
		row := modeltest.Row{"id": r.id, "code": r.code, "name": strings.ToUpper(r.code[:1]) + r.code[1:],
			"price_monthly_cents": 1000 * r.id, "orders_per_month": r.orders, "products_limit": r.products,
			"team_members": r.team, "features": featuresJSON(r.features), "display_order": r.id,
			"is_active": true, "is_public": r.code != "enterprise"}
		if r.platform != 0 {
			row["platform_id"] = r.platform
		}
		db.Insert(t, "subscription_tiers", row)
	}
	start := now.Add(-10 * 24 * time.Hour).Truncate(time.Microsecond)
	for _, s := range m.subs {
		row := modeltest.Row{"id": s.id, "vendor_id": s.vendor, "tier": s.tier, "status": s.status,
			"period_start": start, "period_end": start.AddDate(0, 1, 0), "is_annual": s.vendor%2 == 0,
			"orders_this_period": s.orders, "custom_orders_limit": s.customOrders,
			"custom_products_limit": s.customPro, "custom_team_limit": s.customTeam,
			"payment_retry_count": 0, "proration_behavior": "create_prorations",
			"stripe_customer_id": fmt.Sprintf("cus_%d", s.vendor), "stripe_subscription_id": fmt.Sprintf("sub_%d", s.vendor),
			"trial_ends_at": start.Add(time.Duration(s.vendor%3-1) * 20 * 24 * time.Hour)}
		if s.tierID != nil {
			row["tier_id"] = *s.tierID
		}
		db.Insert(t, "vendor_subscriptions", row)
	}
}

func featuresJSON(fs []string) modeltest.JSON {
	if len(fs) == 0 {
		return modeltest.JSON("[]")
	}
	return modeltest.JSON(`["` + strings.Join(fs, `", "`) + `"]`)
}

// modelDatabases runs fn on a SQLite file and on the test PostgreSQL.
func modelDatabases(t *testing.T, fn func(t *testing.T, db *modeltest.DB)) {
	t.Run("sqlite", func(t *testing.T) { fn(t, modeltest.SQLite(t, filepath.Join(t.TempDir(), "app.db"))) })
	t.Run("postgres", func(t *testing.T) { fn(t, modeltest.Postgres(t)) })
}

// TestImportDatabaseDecidesAsTheModel imports randomized model rows from each database and
// asks the real policy, through the real Checker, what the model's methods answer on the same
// rows: allow and the exact reason.
func TestImportDatabaseDecidesAsTheModel(t *testing.T) {
	modelDatabases(t, func(t *testing.T, db *modeltest.DB) {
		const seed = 20261207
		rng := rand.New(rand.NewPCG(seed, uint64(len(db.URL))))
		world := newModelWorld(rng, 120)
		now := time.Now().UTC()
		world.insert(t, db, now)
		dir := t.TempDir()
		dataDir, catalogOut := filepath.Join(dir, "data"), filepath.Join(dir, "catalog.yaml")
		out, stderr, err := run(t, "import", "--database-url", db.URL, "--data-dir", dataDir, "--catalog-out", catalogOut)
		if err != nil {
			t.Fatalf("import: %v\n%s\n%s", err, out, stderr)
		}
		// The catalog file loads with serve's loader and holds the tiers read from the database.
		cat, err := loadCatalog(catalogOut)
		if err != nil {
			t.Fatalf("the written catalog does not load: %v", err)
		}
		res, err := modeldb.Read(context.Background(), db.URL, modeldb.Options{})
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(cat, res.Catalog) {
			t.Fatalf("catalog round trip:\nfile %+v\nread %+v", cat, res.Catalog)
		}
		store, err := cache.Open(context.Background(), cache.Options{Path: storePath(dataDir)})
		if err != nil {
			t.Fatal(err)
		}
		defer store.Close()
		eng, err := policy.New(context.Background(), policy.Options{Catalog: cat})
		if err != nil {
			t.Fatal(err)
		}
		checker := tollgate.NewChecker(store, eng, nil)
		decide := func(s *modelSub, req tollgate.CheckRequest) answer {
			req.VendorID = tollgate.VendorID(fmt.Sprint(s.vendor))
			d, err := checker.Check(context.Background(), &req)
			if err != nil {
				t.Fatalf("check %+v: %v", req, err)
			}
			return answer{d.Allow, d.Reason}
		}
		compared := 0
		for i := range world.subs {
			s := &world.subs[i]
			products, members := rng.Int64N(50), rng.Int64N(15)
			for _, c := range []struct {
				name      string
				model, tg answer
			}{
				{"can_create_order()", world.canCreateOrder(s), decide(s, tollgate.CheckRequest{Action: "order.create"})},
				{fmt.Sprintf("can_add_product(%d)", products), world.canAddProduct(s, products),
					decide(s, tollgate.CheckRequest{Action: "product.add", Count: &products})},
				{fmt.Sprintf("can_add_team_member(%d)", members), world.canAddTeamMember(s, members),
					decide(s, tollgate.CheckRequest{Action: "team_member.add", Count: &members})},
			} {
				compared++
				if c.model != c.tg {
					t.Errorf("vendor %d (tier_id %v, tier %s, %s): %s: model %+v, tollgate %+v", s.vendor, deref(s.tierID), s.tier, s.status, c.name, c.model, c.tg)
				}
			}
			// has_feature is membership; tollgate answers feature.use under the access rule too,
			// which the model's callers check first (is_active).
			for range 3 {
				f := featurePool[rng.IntN(len(featurePool))]
				want := answer{true, ""}
				switch {
				case !modelActive(s):
					want = answer{false, "Subscription is not active"}
				case !world.hasFeature(s, f):
					want = answer{false, "Feature not available on your plan"}
				}
				compared++
				if got := decide(s, tollgate.CheckRequest{Action: "feature.use", Feature: f}); got != want {
					t.Errorf("vendor %d (tier_id %v, tier %s, %s): has_feature(%s) = %v: want %+v, tollgate %+v", s.vendor, deref(s.tierID), s.tier, s.status, f, world.hasFeature(s, f), want, got)
				}
			}
		}
		t.Logf("seed %d: %d vendors, %d decisions equal to the model's", seed, len(world.subs), compared)
	})
}

func deref(p *int64) any {
	if p == nil {
		return "NULL"
	}
	return *p
}
