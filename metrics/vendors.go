package metrics

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/tollgate-pdp/tollgate"
)

// TierStatus keys VendorAggregates.Vendors.
type TierStatus struct {
	Tier   string // catalog tier code
	Status tollgate.Status
}

// VendorAggregates is the vendor population as cmd keeps it, updated incrementally as
// subscriptions and usage change. The metrics package only reads it at scrape time: walking
// every vendor on each scrape would cost O(vendors) per scrape.
type VendorAggregates struct {
	// Vendors counts vendors by tier and subscription status. Tier codes come from the catalog,
	// which the operator controls, so the label stays bounded; statuses other than the five
	// known ones are counted as "other", and an empty tier as "none".
	Vendors map[TierStatus]int64
	// OrdersUsed is the sum, over all vendors, of orders counted in their current period.
	OrdersUsed int64
	// OrdersCapacity is the sum of the effective monthly order limits of the subscriptions
	// that grant access (trial, active, past_due, cancelled before period end). Subscriptions
	// without an order limit are not in it: they are counted in UnlimitedOrders.
	OrdersCapacity int64
	// UnlimitedOrders counts the subscriptions that grant access with no order limit.
	UnlimitedOrders int64
}

// vendorCollector turns a VendorAggregates into const metrics on each scrape. Const metrics
// rather than a GaugeVec: a tier×status pair that empties disappears instead of lingering.
type vendorCollector struct {
	aggregates func() VendorAggregates
	statuses   map[string]int

	vendors, used, capacity, unlimited *prometheus.Desc
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
	}
}

func (c *vendorCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.vendors
	ch <- c.used
	ch <- c.capacity
	ch <- c.unlimited
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
}
