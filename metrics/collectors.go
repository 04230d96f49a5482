package metrics

import (
	"math"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// stripeCollector computes Stripe freshness at scrape time, so the age is exact whenever
// Prometheus looks instead of whenever an event last arrived.
type stripeCollector struct {
	m     *Metrics
	stamp *prometheus.Desc
	age   *prometheus.Desc
}

func newStripeCollector(m *Metrics) *stripeCollector {
	return &stripeCollector{
		m: m,
		stamp: prometheus.NewDesc(prometheus.BuildFQName(Namespace, "stripe", "last_applied_timestamp_seconds"),
			"Unix time, in seconds, of the newest Stripe event or reconciliation applied to state; 0 until the first.",
			nil, nil),
		age: prometheus.NewDesc(prometheus.BuildFQName(Namespace, "stripe", "seconds_since_last_applied"),
			"Seconds since the newest Stripe event or reconciliation was applied to state; absent until the first.",
			nil, nil),
	}
}

func (c *stripeCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.stamp
	ch <- c.age
}

func (c *stripeCollector) Collect(ch chan<- prometheus.Metric) {
	n := c.m.lastApplied.Load()
	if n == 0 {
		// 0 rather than absent: `time() - stamp` is then huge, so a staleness alert also fires
		// for a sidecar that has never heard from Stripe.
		ch <- prometheus.MustNewConstMetric(c.stamp, prometheus.GaugeValue, 0)
		return
	}
	at := time.Unix(0, n)
	ch <- prometheus.MustNewConstMetric(c.stamp, prometheus.GaugeValue, float64(n)/1e9)
	// Clamped at 0: a StripeApplied time slightly in the future (clock skew between the event's
	// timestamp and ours) must not read as a negative age.
	ch <- prometheus.MustNewConstMetric(c.age, prometheus.GaugeValue, math.Max(0, c.m.now().Sub(at).Seconds()))
}

// cacheCollector reads both cache counters with one callback call per scrape, so hits and
// misses come from the same instant (two CounterFuncs would call it twice).
type cacheCollector struct {
	stats        func() (hits, misses uint64)
	hits, misses *prometheus.Desc
}

func newCacheCollector(stats func() (hits, misses uint64)) *cacheCollector {
	return &cacheCollector{
		stats: stats,
		hits: prometheus.NewDesc(prometheus.BuildFQName(Namespace, "decision_cache", "hits_total"),
			"Decisions served from the decision cache.", nil, nil),
		misses: prometheus.NewDesc(prometheus.BuildFQName(Namespace, "decision_cache", "misses_total"),
			"Decisions the decision cache could not serve, so the policy was evaluated.", nil, nil),
	}
}

func (c *cacheCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.hits
	ch <- c.misses
}

func (c *cacheCollector) Collect(ch chan<- prometheus.Metric) {
	hits, misses := c.stats()
	ch <- prometheus.MustNewConstMetric(c.hits, prometheus.CounterValue, float64(hits))
	ch <- prometheus.MustNewConstMetric(c.misses, prometheus.CounterValue, float64(misses))
}
