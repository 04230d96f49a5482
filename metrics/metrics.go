// Package metrics exports tollgate's Prometheus metrics. It implements tollgate.Observer for
// the events the other packages report and reads gauges (cache, vendors, store size) through
// callbacks at scrape time, so it never walks tollgate's state itself. The metric contract is
// the table in README.md; TestContract keeps the two in step.
package metrics

import (
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/tollgate-pdp/tollgate"
)

// Namespace prefixes every tollgate metric.
const Namespace = "tollgate"

// Options supplies the values the metrics package reads at scrape time. Every callback is
// optional: a nil callback leaves its metrics out of the registry. Callbacks run on the scrape
// goroutine, possibly concurrently with each other and with themselves; they must be safe for
// concurrent use and cheap (no store transactions, no walking every vendor).
type Options struct {
	// CacheStats returns the decision cache's cumulative hits and misses since start.
	CacheStats func() (hits, misses uint64)
	// Vendors returns the current vendor aggregates; see VendorAggregates.
	Vendors func() VendorAggregates
	// StoreSize returns the size of the durable store, in bytes.
	StoreSize func() int64
	// Logger receives errors met while serving a scrape. Nil: slog.Default().
	Logger *slog.Logger
	// Now is the clock for tollgate_stripe_seconds_since_last_applied. Nil: time.Now.
	Now func() time.Time
	// DecisionLogDropped returns how many decision log entries were dropped because the log's
	// buffer was full.
	DecisionLogDropped func() uint64
	// Fleet registers the fleet log's metrics (tollgate_fleet_*): set it in fleet mode.
	Fleet bool
}

// Metrics owns a Prometheus registry with tollgate's metrics and the Go and process
// collectors. It implements tollgate.Observer; all its methods are safe for concurrent use.
type Metrics struct {
	reg     *prometheus.Registry
	handler http.Handler
	now     func() time.Time

	// Children resolved once in New: the hot paths index arrays instead of calling
	// WithLabelValues, which hashes the label values and allocates on every call.
	decisions    [numActions][numCodes]prometheus.Counter
	latency      [numActions]prometheus.Observer
	latencyHists []prometheus.Metric // the same children, read by Capacity

	vendors   func() VendorAggregates
	storeSize func() int64
	proc      processSampler

	webhookTypes    map[string]int
	webhookOutcomes map[string]int
	webhooks        [][]prometheus.Counter // [type][outcome]
	sigFailures     prometheus.Counter

	reconcile [4][2]prometheus.Counter // [kind][result], in knownKinds/knownResults order

	// lastApplied is the newest StripeApplied time in Unix nanoseconds; 0 means never.
	lastApplied atomic.Int64

	policyMu       sync.Mutex // serialises the reset-and-set of policyInfo
	policyRevision string
	policyLoaded   bool
	policyInfo     *prometheus.GaugeVec
	policyReloads  [2]prometheus.Counter // [result]

	fleet *fleetMetrics // nil unless Options.Fleet
}

var _ tollgate.Observer = (*Metrics)(nil)

// New builds the metrics on a registry of their own (never the global default, so tests and
// embedding programs can create as many as they like).
func New(opts Options) *Metrics {
	m := &Metrics{reg: prometheus.NewRegistry(), now: opts.Now, vendors: opts.Vendors, storeSize: opts.StoreSize}
	if m.now == nil {
		m.now = time.Now
	}
	m.reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		newPeakCollector(m),
	)
	m.registerDecisions()
	m.registerWebhooks()
	m.registerSync()
	m.registerPolicy()
	m.registerScraped(opts)
	if opts.Fleet {
		m.registerFleet()
	}

	logger := opts.Logger
	if logger == nil {
		logger = slog.Default()
	}
	m.handler = promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{
		ErrorLog: slog.NewLogLogger(logger.Handler(), slog.LevelError),
		// A failing callback should cost its own metrics, not the whole scrape.
		ErrorHandling: promhttp.ContinueOnError,
	})
	return m
}

// Handler serves the registry in the Prometheus text format.
func (m *Metrics) Handler() http.Handler { return m.handler }

// Registry returns the registry, for tests and for programs that add their own collectors.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

func (m *Metrics) registerDecisions() {
	decisions := prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: Namespace,
		Name:      "decisions_total",
		Help:      "Checks answered, by action and decision code. Unknown actions and codes are counted as \"other\".",
	}, []string{"action", "code"})
	latency := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: Namespace,
		Name:      "decision_duration_seconds",
		Help:      "Time to answer a check, from request decoded to decision made, in seconds, by action.",
		// Decisions take microseconds when cached and milliseconds when evaluated. A 1-2.5-5
		// series from 1µs to 100ms covers both with boundaries that print exactly (computed
		// exponential buckets print as le="0.00010000000000000003").
		Buckets: []float64{1e-6, 2.5e-6, 5e-6, 1e-5, 2.5e-5, 5e-5, 1e-4, 2.5e-4, 5e-4,
			1e-3, 2.5e-3, 5e-3, 0.01, 0.025, 0.05, 0.1},
		// Servers that scrape protobuf also get a native histogram with far finer resolution;
		// the text format still carries the classic buckets above.
		NativeHistogramBucketFactor:     1.1,
		NativeHistogramMaxBucketNumber:  160,
		NativeHistogramMinResetDuration: time.Hour,
	}, []string{"action"})
	m.reg.MustRegister(decisions, latency)
	for a, action := range knownActions() {
		m.latency[a] = latency.WithLabelValues(action)
		if h := asMetric(m.latency[a]); h != nil {
			m.latencyHists = append(m.latencyHists, h)
		}
		for c, code := range knownCodes() {
			m.decisions[a][c] = decisions.WithLabelValues(action, code)
		}
	}
}

func (m *Metrics) registerWebhooks() {
	events := prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: Namespace,
		Name:      "webhook_events_total",
		Help:      "Stripe webhook deliveries handled, by event type and outcome. Unhandled event types are counted as \"other\".",
	}, []string{"type", "outcome"})
	m.sigFailures = prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: Namespace,
		Name:      "webhook_signature_failures_total",
		Help:      "Stripe webhook deliveries refused because their signature did not verify.",
	})
	m.reg.MustRegister(events, m.sigFailures)
	types, outcomes := knownWebhookTypes(), knownOutcomes()
	m.webhookTypes, m.webhookOutcomes = indexOf(types), indexOf(outcomes)
	m.webhooks = make([][]prometheus.Counter, len(types))
	for t, typ := range types {
		m.webhooks[t] = make([]prometheus.Counter, len(outcomes))
		for o, outcome := range outcomes {
			m.webhooks[t][o] = events.WithLabelValues(typ, outcome)
		}
	}
}

func (m *Metrics) registerSync() {
	runs := prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: Namespace,
		Name:      "reconcile_runs_total",
		Help:      "Runs of Stripe reconciliation, polling and backfill, by kind and result (ok or error).",
	}, []string{"kind", "result"})
	m.reg.MustRegister(runs, newStripeCollector(m))
	for k, kind := range knownKinds() {
		for r, result := range knownResults() {
			m.reconcile[k][r] = runs.WithLabelValues(kind, result)
		}
	}
}

func (m *Metrics) registerPolicy() {
	m.policyInfo = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Namespace: Namespace,
		Name:      "policy_info",
		Help:      "Always 1; its revision label names the compiled policy in service. Absent until a policy has loaded.",
	}, []string{"revision"})
	reloads := prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: Namespace,
		Name:      "policy_reloads_total",
		Help:      "Policy compile attempts, by result (ok or error); on error the previous policy stays in service.",
	}, []string{"result"})
	m.reg.MustRegister(m.policyInfo, reloads)
	for r, result := range knownResults() {
		m.policyReloads[r] = reloads.WithLabelValues(result)
	}
}

// registerScraped registers the metrics read from Options callbacks; nil callbacks register
// nothing, so a program without a cache (or a store) exports no misleading zeros.
func (m *Metrics) registerScraped(opts Options) {
	if opts.CacheStats != nil {
		m.reg.MustRegister(newCacheCollector(opts.CacheStats))
	}
	if opts.Vendors != nil {
		m.reg.MustRegister(newVendorCollector(opts.Vendors))
	}
	if opts.DecisionLogDropped != nil {
		dropped := opts.DecisionLogDropped
		m.reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
			Namespace: Namespace,
			Name:      "decision_log_dropped_total",
			Help:      "Decision log entries dropped because the log's buffer was full (logging never delays a decision).",
		}, func() float64 { return float64(dropped()) }))
	}
	if opts.StoreSize != nil {
		size := opts.StoreSize
		m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Namespace: Namespace,
			Name:      "store_size_bytes",
			Help:      "Size of the durable vendor store on disk, in bytes.",
		}, func() float64 { return float64(size()) }))
	}
}
