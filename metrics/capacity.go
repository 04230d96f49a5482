package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/tollgate-pdp/tollgate"
)

// Capacity assembles the capacity snapshot at now from what is kept incrementally: the vendor
// aggregates (Options.Vendors), the store size, the decision latency histogram and the process
// sampler. It visits no vendor, so it is as cheap as a scrape. Revisions are the caller's.
func (m *Metrics) Capacity(now time.Time) tollgate.CapacitySnapshot {
	s := tollgate.CapacitySnapshot{TakenAt: now.UTC(), Tiers: map[string]map[string]int64{},
		NearOrderLimit: map[string]tollgate.NearLimit{}}
	if m.vendors != nil {
		agg := m.vendors()
		s.Vendors = tollgate.CapacityVendors{Total: agg.TotalVendors, Active: agg.ActiveVendors, Trial: agg.TrialVendors}
		s.Subscriptions = tollgate.CapacitySubscriptions{Total: agg.TotalSubscriptions, Active: agg.ActiveSubscriptions}
		for k, n := range agg.Vendors {
			if s.Tiers[k.Tier] == nil {
				s.Tiers[k.Tier] = map[string]int64{}
			}
			s.Tiers[k.Tier][string(k.Status)] += n
		}
		s.Usage = tollgate.CapacityUsage{OrdersThisPeriod: agg.OrdersUsed, Products: agg.ReportedProducts,
			TeamMembers: agg.ReportedTeamMembers, StorageBytes: agg.ReportedStorageBytes}
		s.Limits = tollgate.CapacityLimits{Orders: agg.Orders, Products: agg.Products, TeamMembers: agg.TeamMembers}
		if agg.NearOrderLimit != nil {
			s.NearOrderLimit = agg.NearOrderLimit
		}
	}
	if m.storeSize != nil {
		s.StoreSizeBytes = m.storeSize()
	}
	var count uint64
	var sum float64
	for _, h := range m.latencyHists {
		var d dto.Metric
		if err := h.Write(&d); err == nil && d.Histogram != nil {
			count += d.Histogram.GetSampleCount()
			sum += d.Histogram.GetSampleSum()
		}
	}
	s.Decisions.Count = int64(count)
	if count > 0 {
		s.Decisions.AverageLatencySecs = sum / float64(count)
	}
	s.Process = m.processFigures()
	return s
}

// asMetric gives the histogram child's Write, to read its count and sum.
func asMetric(o prometheus.Observer) prometheus.Metric {
	mt, _ := o.(prometheus.Metric)
	return mt
}
