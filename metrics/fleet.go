package metrics

import (
	"math"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/tollgate-pdp/tollgate"
)

// fleetMetrics are the fleet log's metrics, registered only in fleet mode (Options.Fleet), so
// a single-mode sidecar exports no misleading zeros.
type fleetMetrics struct {
	connected    prometheus.Gauge
	lagMessages  prometheus.Gauge
	lagSeconds   prometheus.Gauge
	applyErrors  prometheus.Counter
	appliedSeq   prometheus.Gauge
	casRetries   prometheus.Counter
	casConflicts prometheus.Counter
}

var _ tollgate.FleetObserver = (*Metrics)(nil)

func (m *Metrics) registerFleet() {
	gauge := func(name, help string) prometheus.Gauge {
		g := prometheus.NewGauge(prometheus.GaugeOpts{Namespace: Namespace, Name: name, Help: help})
		m.reg.MustRegister(g)
		return g
	}
	counter := func(name, help string) prometheus.Counter {
		c := prometheus.NewCounter(prometheus.CounterOpts{Namespace: Namespace, Name: name, Help: help})
		m.reg.MustRegister(c)
		return c
	}
	m.fleet = &fleetMetrics{
		connected:   gauge("fleet_connected", "1 while the sidecar is connected to the fleet's NATS servers, else 0."),
		lagMessages: gauge("fleet_lag_messages", "Fleet log messages not yet applied to the local store."),
		lagSeconds:  gauge("fleet_lag_seconds", "Age of the oldest fleet log message not yet applied, in seconds; 0 when caught up."),
		applyErrors: counter("fleet_apply_errors_total", "Fleet log messages that failed to apply to the local store (refused or retried)."),
		appliedSeq:  gauge("fleet_applied_sequence", "Sequence of the fleet log message applied last."),
		casRetries:  counter("fleet_cas_retries_total", "Compare-and-set updates of fleet-wide usage counters retried after a revision conflict."),
		casConflicts: counter("fleet_cas_conflicts_total",
			"Consumes and usage writes that gave up after the compare-and-set retry budget and answered 503."),
	}
}

// FleetConnected implements tollgate.FleetObserver.
func (m *Metrics) FleetConnected(up bool) {
	if m.fleet == nil {
		return
	}
	v := 0.0
	if up {
		v = 1
	}
	m.fleet.connected.Set(v)
}

// FleetLag implements tollgate.FleetObserver.
func (m *Metrics) FleetLag(messages uint64, oldest time.Duration) {
	if m.fleet == nil {
		return
	}
	m.fleet.lagMessages.Set(float64(messages))
	m.fleet.lagSeconds.Set(math.Max(0, oldest.Seconds()))
}

// FleetApplied implements tollgate.FleetObserver.
func (m *Metrics) FleetApplied(seq uint64) {
	if m.fleet != nil {
		m.fleet.appliedSeq.Set(float64(seq))
	}
}

// FleetApplyError implements tollgate.FleetObserver.
func (m *Metrics) FleetApplyError() {
	if m.fleet != nil {
		m.fleet.applyErrors.Inc()
	}
}

// FleetCASRetry implements tollgate.FleetObserver.
func (m *Metrics) FleetCASRetry() {
	if m.fleet != nil {
		m.fleet.casRetries.Inc()
	}
}

// FleetCASConflict implements tollgate.FleetObserver.
func (m *Metrics) FleetCASConflict() {
	if m.fleet != nil {
		m.fleet.casConflicts.Inc()
	}
}
