package metrics

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/tollgate-pdp/tollgate"
)

// TierStatus keys VendorAggregates.Vendors.
type TierStatus = tollgate.TierStatus

// VendorAggregates is the vendor population as the store keeps it, updated incrementally as
// subscriptions and usage change (cache.Store.Aggregates). The metrics package only reads it
// at scrape time: walking every vendor on each scrape would cost O(vendors) per scrape. Tier
// codes come from the catalog, which the operator controls, so the tier label stays bounded;
// statuses other than the five known ones are counted as "other", and an empty tier as "none".
type VendorAggregates = tollgate.VendorAggregates

// vendorCollector turns a VendorAggregates into const metrics on each scrape. Const metrics
// rather than a GaugeVec: a tier×status pair that empties disappears instead of lingering.
type vendorCollector struct {
	aggregates func() VendorAggregates
	statuses   map[string]int

	vendors, used, capacity, unlimited         *prometheus.Desc
	subs, subsActive, limitSum, limitUnlimited *prometheus.Desc
	reported, storage, near                    *prometheus.Desc
}

func newVendorCollector(aggregates func() VendorAggregates) *vendorCollector {
	return &vendorCollector{
		aggregates: aggregates,
		statuses:   indexOf(knownStatuses()),
		vendors: prometheus.NewDesc(prometheus.BuildFQName(Namespace, "", "vendors"),
			"Vendors, by subscription tier and status.", []string{"tier", "status"}, nil),
		used: prometheus.NewDesc(prometheus.BuildFQName(Namespace, "", "orders_used"),
			"Orders counted this billing period, summed over all vendors.", nil, nil),
		capacity: prometheus.NewDesc(prometheus.BuildFQName(Namespace, "", "orders_capacity"),
			"Sum of the monthly order limits of subscriptions that grant access; unlimited ones are in tollgate_vendors_unlimited_orders instead.",
			nil, nil),
		unlimited: prometheus.NewDesc(prometheus.BuildFQName(Namespace, "", "vendors_unlimited_orders"),
			"Subscriptions that grant access with no monthly order limit.", nil, nil),
		subs: prometheus.NewDesc(prometheus.BuildFQName(Namespace, "", "subscriptions"),
			"Subscriptions held, whatever their status (one per vendor).", nil, nil),
		subsActive: prometheus.NewDesc(prometheus.BuildFQName(Namespace, "", "subscriptions_active"),
			"Subscriptions the policy grants access (trial, active, past_due, cancelled before period end).", nil, nil),
		limitSum: prometheus.NewDesc(prometheus.BuildFQName(Namespace, "", "capacity_limit"),
			"Sum of the effective limits (override, else the tier's) of subscriptions with access, limited ones only, by resource.",
			[]string{"resource"}, nil),
		limitUnlimited: prometheus.NewDesc(prometheus.BuildFQName(Namespace, "", "capacity_unlimited_subscriptions"),
			"Subscriptions with access and no limit on the resource (never added to tollgate_capacity_limit).",
			[]string{"resource"}, nil),
		reported: prometheus.NewDesc(prometheus.BuildFQName(Namespace, "", "reported_usage"),
			"Usage the application reported, summed over vendors, by resource (products, team_members).",
			[]string{"resource"}, nil),
		storage: prometheus.NewDesc(prometheus.BuildFQName(Namespace, "", "reported_storage_bytes"),
			"Storage the application reported, summed over vendors, in bytes.", nil, nil),
		near: prometheus.NewDesc(prometheus.BuildFQName(Namespace, "", "vendors_near_order_limit"),
			"Vendors with access whose orders this period reached the threshold share of their order limit (0.8 includes those at 1), by tier.",
			[]string{"tier", "threshold"}, nil),
	}
}

func (c *vendorCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.vendors
	ch <- c.used
	ch <- c.capacity
	ch <- c.unlimited
	ch <- c.subs
	ch <- c.subsActive
	ch <- c.limitSum
	ch <- c.limitUnlimited
	ch <- c.reported
	ch <- c.storage
	ch <- c.near
}

func (c *vendorCollector) Collect(ch chan<- prometheus.Metric) {
	agg := c.aggregates()
	// Folding to "other"/"none" can map two keys to one label pair; sum them, because a
	// registry refuses to gather two series with the same labels.
	type pair struct{ tier, status string }
	counts := make(map[pair]int64, len(agg.Vendors))
	for k, n := range agg.Vendors {
		tier := k.Tier
		if tier == "" {
			tier = "none"
		}
		counts[pair{tier, bound(c.statuses, string(k.Status))}] += n
	}
	for p, n := range counts {
		ch <- prometheus.MustNewConstMetric(c.vendors, prometheus.GaugeValue, float64(n), p.tier, p.status)
	}
	ch <- prometheus.MustNewConstMetric(c.used, prometheus.GaugeValue, float64(agg.OrdersUsed))
	ch <- prometheus.MustNewConstMetric(c.capacity, prometheus.GaugeValue, float64(agg.OrdersCapacity))
	ch <- prometheus.MustNewConstMetric(c.unlimited, prometheus.GaugeValue, float64(agg.UnlimitedOrders))
	ch <- prometheus.MustNewConstMetric(c.subs, prometheus.GaugeValue, float64(agg.TotalSubscriptions))
	ch <- prometheus.MustNewConstMetric(c.subsActive, prometheus.GaugeValue, float64(agg.ActiveSubscriptions))
	for _, l := range []struct {
		resource string
		total    tollgate.LimitTotal
	}{{"orders", agg.Orders}, {"products", agg.Products}, {"team_members", agg.TeamMembers}} {
		ch <- prometheus.MustNewConstMetric(c.limitSum, prometheus.GaugeValue, float64(l.total.Sum), l.resource)
		ch <- prometheus.MustNewConstMetric(c.limitUnlimited, prometheus.GaugeValue, float64(l.total.Unlimited), l.resource)
	}
	ch <- prometheus.MustNewConstMetric(c.reported, prometheus.GaugeValue, float64(agg.ReportedProducts), "products")
	ch <- prometheus.MustNewConstMetric(c.reported, prometheus.GaugeValue, float64(agg.ReportedTeamMembers), "team_members")
	ch <- prometheus.MustNewConstMetric(c.storage, prometheus.GaugeValue, float64(agg.ReportedStorageBytes))
	// Every tier with vendors gets both series, 0 included, so dashboards and alerts see a
	// tier that has nobody near its limit rather than no data.
	near := make(map[string]tollgate.NearLimit, len(agg.NearOrderLimit))
	for k := range agg.Vendors {
		near[k.Tier] = tollgate.NearLimit{}
	}
	for tier, n := range agg.NearOrderLimit {
		near[tier] = n
	}
	for tier, n := range near {
		if tier == "" {
			tier = "none"
		}
		ch <- prometheus.MustNewConstMetric(c.near, prometheus.GaugeValue, float64(n.AtLeast80), tier, "0.8")
		ch <- prometheus.MustNewConstMetric(c.near, prometheus.GaugeValue, float64(n.AtLeast100), tier, "1")
	}
}
