package metrics

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/client_golang/prometheus/testutil/promlint"
	dto "github.com/prometheus/client_model/go"
	"github.com/tollgate-pdp/tollgate"
)

var errBoom = errors.New("boom")

func testClock() time.Time { return time.Unix(1_700_000_100, 0) }

// fullOptions sets every callback, so every optional metric is registered.
func fullOptions() Options {
	return Options{
		Fleet:      true,
		CacheStats: func() (uint64, uint64) { return 7, 3 },
		Vendors: func() VendorAggregates {
			return VendorAggregates{
				Vendors: map[TierStatus]int64{
					{Tier: "essential", Status: tollgate.StatusActive}:     4,
					{Tier: "essential", Status: tollgate.StatusTrial}:      2,
					{Tier: "enterprise", Status: tollgate.StatusActive}:    1,
					{Tier: "business", Status: "bogus"}:                    1,
					{Tier: "business", Status: "another_bogus"}:            2,
					{Tier: "", Status: tollgate.StatusExpired}:             5,
					{Tier: "professional", Status: tollgate.StatusPastDue}: 1,
				},
				OrdersUsed:          150,
				OrdersCapacity:      600,
				UnlimitedOrders:     1,
				TotalSubscriptions:  16,
				ActiveSubscriptions: 8,
				Orders:              tollgate.LimitTotal{Sum: 600, Limited: 7, Unlimited: 1},
				Products:            tollgate.LimitTotal{Sum: 1200, Limited: 6, Unlimited: 2},
				TeamMembers:         tollgate.LimitTotal{Sum: 9, Limited: 7, Unlimited: 1},
				ReportedProducts:    40, ReportedTeamMembers: 5, ReportedStorageBytes: 1 << 30,
				NearOrderLimit: map[string]tollgate.NearLimit{
					"essential": {AtLeast80: 3, AtLeast100: 1},
				},
			}
		},
		StoreSize:          func() int64 { return 1 << 20 },
		DecisionLogDropped: func() uint64 { return 2 },
		Now:                testClock,
	}
}

// exercise calls every Observer method with every known label value and some unknown ones,
// so every metric family has samples.
func exercise(m *Metrics) {
	for _, a := range append(knownActions(), "made.up") {
		for _, c := range append(knownCodes(), "made_up") {
			m.DecisionMade(a, c, 42*time.Microsecond)
		}
	}
	for _, typ := range append(knownWebhookTypes(), "charge.refunded") {
		for _, o := range append(knownOutcomes(), "exploded") {
			m.WebhookHandled(typ, o)
		}
	}
	m.SignatureFailed()
	m.StripeApplied(time.Unix(1_700_000_000, 0))
	for _, k := range append(knownKinds(), "made_up") {
		m.ReconcileRun(k, nil)
		m.ReconcileRun(k, errBoom)
	}
	m.PolicyLoaded("rev-1", nil)
	m.PolicyLoaded("rev-2", errBoom)
}

func TestGatherAndLint(t *testing.T) {
	tests := []struct {
		name     string
		opts     Options
		exercise bool
	}{
		{"fresh, no callbacks", Options{}, false},
		{"fresh, all callbacks", fullOptions(), false},
		{"exercised, all callbacks", fullOptions(), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := New(tt.opts)
			if tt.exercise {
				exercise(m)
			}
			problems, err := testutil.GatherAndLint(m.Registry())
			if err != nil {
				t.Fatal(err)
			}
			for _, p := range problems {
				t.Errorf("lint: %s: %s", p.Metric, p.Text)
			}
		})
	}
}

// contractEntry is one row of the metric contract in README.md.
type contractEntry struct {
	name   string
	typ    dto.MetricType
	labels []string
}

// contract is the documented set of tollgate metric families, with fullOptions and after
// exercise. Adding, renaming or relabelling a metric is a contract change: update README.md.
func contract() []contractEntry {
	c, g, h := dto.MetricType_COUNTER, dto.MetricType_GAUGE, dto.MetricType_HISTOGRAM
	return []contractEntry{
		{"tollgate_capacity_limit", g, []string{"resource"}},
		{"tollgate_capacity_unlimited_subscriptions", g, []string{"resource"}},
		{"tollgate_decision_cache_hits_total", c, nil},
		{"tollgate_decision_cache_misses_total", c, nil},
		{"tollgate_decision_duration_seconds", h, []string{"action"}},
		{"tollgate_decision_log_dropped_total", c, nil},
		{"tollgate_decisions_total", c, []string{"action", "code"}},
		{"tollgate_fleet_applied_sequence", g, nil},
		{"tollgate_fleet_apply_errors_total", c, nil},
		{"tollgate_fleet_cas_conflicts_total", c, nil},
		{"tollgate_fleet_cas_retries_total", c, nil},
		{"tollgate_fleet_connected", g, nil},
		{"tollgate_fleet_lag_messages", g, nil},
		{"tollgate_fleet_lag_seconds", g, nil},
		{"tollgate_orders_capacity", g, nil},
		{"tollgate_orders_used", g, nil},
		{"tollgate_policy_info", g, []string{"revision"}},
		{"tollgate_policy_reloads_total", c, []string{"result"}},
		{"tollgate_process_peak_cpu_cores", g, nil},
		{"tollgate_process_peak_resident_memory_bytes", g, nil},
		{"tollgate_reconcile_runs_total", c, []string{"kind", "result"}},
		{"tollgate_reported_storage_bytes", g, nil},
		{"tollgate_reported_usage", g, []string{"resource"}},
		{"tollgate_store_size_bytes", g, nil},
		{"tollgate_stripe_last_applied_timestamp_seconds", g, nil},
		{"tollgate_stripe_seconds_since_last_applied", g, nil},
		{"tollgate_subscriptions", g, nil},
		{"tollgate_subscriptions_active", g, nil},
		{"tollgate_vendors", g, []string{"status", "tier"}},
		{"tollgate_vendors_near_order_limit", g, []string{"threshold", "tier"}},
		{"tollgate_vendors_unlimited_orders", g, nil},
		{"tollgate_webhook_events_total", c, []string{"outcome", "type"}},
		{"tollgate_webhook_signature_failures_total", c, nil},
	}
}

func TestContract(t *testing.T) {
	m := New(fullOptions())
	exercise(m)
	mfs, err := m.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	var got []contractEntry
	var others []string
	for _, mf := range mfs {
		if !strings.HasPrefix(mf.GetName(), Namespace+"_") {
			others = append(others, mf.GetName())
			continue
		}
		e := contractEntry{name: mf.GetName(), typ: mf.GetType()}
		seen := map[string]bool{}
		for _, metric := range mf.GetMetric() {
			for _, lp := range metric.GetLabel() {
				seen[lp.GetName()] = true
			}
		}
		for l := range seen {
			e.labels = append(e.labels, l)
		}
		sort.Strings(e.labels)
		got = append(got, e)
	}
	want := contract()
	if len(got) != len(want) {
		t.Errorf("got %d tollgate families, want %d", len(got), len(want))
	}
	for i := range max(len(got), len(want)) {
		var g, w contractEntry
		if i < len(got) {
			g = got[i]
		}
		if i < len(want) {
			w = want[i]
		}
		if g.name != w.name || g.typ != w.typ || !slices.Equal(g.labels, w.labels) {
			t.Errorf("family %d: got %s %s %v, want %s %s %v", i, g.name, g.typ, g.labels, w.name, w.typ, w.labels)
		}
	}
	// The runtime collectors are part of the contract too, by prefix.
	if !slices.Contains(others, "go_goroutines") {
		t.Errorf("go collector missing: %v", others)
	}
	if runtime.GOOS == "linux" && !slices.Contains(others, "process_cpu_seconds_total") {
		t.Errorf("process collector missing: %v", others)
	}
	for _, name := range others {
		if !strings.HasPrefix(name, "go_") && !strings.HasPrefix(name, "process_") {
			t.Errorf("unexpected family %s", name)
		}
	}
}

// TestReadmeContract keeps the table in README.md equal to contract().
func TestReadmeContract(t *testing.T) {
	b, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	var rows []contractEntry
	for _, line := range strings.Split(string(b), "\n") {
		if !strings.HasPrefix(line, "| `tollgate_") {
			continue
		}
		cols := strings.Split(line, "|")
		if len(cols) < 5 {
			t.Fatalf("malformed row %q", line)
		}
		e := contractEntry{name: strings.Trim(cols[1], " `")}
		e.typ = dto.MetricType(dto.MetricType_value[strings.ToUpper(strings.TrimSpace(cols[2]))])
		for _, l := range strings.Split(cols[3], ",") {
			if l = strings.Trim(l, " `"); l != "" && l != "–" {
				e.labels = append(e.labels, l)
			}
		}
		sort.Strings(e.labels)
		rows = append(rows, e)
	}
	sort.Slice(rows, func(i, j int) bool { return rows[i].name < rows[j].name })
	want := contract()
	if len(rows) != len(want) {
		t.Fatalf("README has %d rows, contract has %d", len(rows), len(want))
	}
	for i := range rows {
		if rows[i].name != want[i].name || rows[i].typ != want[i].typ || !slices.Equal(rows[i].labels, want[i].labels) {
			t.Errorf("README row %v != contract %v", rows[i], want[i])
		}
	}
}

func TestOptionalCallbacks(t *testing.T) {
	optional := []string{
		"tollgate_decision_cache_hits_total", "tollgate_decision_cache_misses_total",
		"tollgate_vendors", "tollgate_orders_used", "tollgate_orders_capacity",
		"tollgate_vendors_unlimited_orders", "tollgate_store_size_bytes",
		"tollgate_decision_log_dropped_total", "tollgate_subscriptions", "tollgate_subscriptions_active",
		"tollgate_capacity_limit", "tollgate_capacity_unlimited_subscriptions",
		"tollgate_reported_usage", "tollgate_reported_storage_bytes", "tollgate_vendors_near_order_limit",
	}
	m := New(Options{})
	exercise(m)
	mfs, err := m.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if slices.Contains(optional, mf.GetName()) {
			t.Errorf("%s exported without its callback", mf.GetName())
		}
	}
}

// sample returns the value of the series of family name with exactly labels, and whether
// it exists.
func sample(t *testing.T, g prometheus.Gatherer, name string, labels map[string]string) (float64, bool) {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	next:
		for _, metric := range mf.GetMetric() {
			if len(metric.GetLabel()) != len(labels) {
				continue
			}
			for _, lp := range metric.GetLabel() {
				if v, ok := labels[lp.GetName()]; !ok || v != lp.GetValue() {
					continue next
				}
			}
			switch {
			case metric.Counter != nil:
				return metric.GetCounter().GetValue(), true
			case metric.Gauge != nil:
				return metric.GetGauge().GetValue(), true
			case metric.Histogram != nil:
				return float64(metric.GetHistogram().GetSampleCount()), true
			}
		}
	}
	return 0, false
}

func TestHandler(t *testing.T) {
	m := New(fullOptions())
	exercise(m)
	srv := httptest.NewServer(m.Handler())
	defer srv.Close()
	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d", resp.StatusCode)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		t.Errorf("content type %q, want the text format", ct)
	}
	for _, want := range []string{
		`tollgate_decisions_total{action="order.create",code="ok"} 1`,
		`tollgate_decision_duration_seconds_bucket{action="other",le="0.0001"} 18`,
		`# HELP tollgate_store_size_bytes Size of the durable vendor store on disk, in bytes.`,
		`go_goroutines `,
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("scrape lacks %q", want)
		}
	}
}

// TestConcurrent is for -race: observers and scrapes at once.
func TestConcurrent(t *testing.T) {
	m := New(fullOptions())
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range 200 {
				m.DecisionMade(tollgate.ActionOrderCreate, tollgate.CodeOK, time.Duration(j)*time.Microsecond)
				m.WebhookHandled("invoice.paid", tollgate.OutcomeProcessed)
				m.StripeApplied(time.Unix(int64(1_700_000_000+j), 0))
				m.PolicyLoaded("rev-"+string(rune('a'+i)), nil)
				m.ReconcileRun(KindPoll, nil)
			}
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for range 20 {
			if _, err := m.Registry().Gather(); err != nil {
				t.Error(err)
			}
		}
	}()
	wg.Wait()
	if v, _ := sample(t, m.Registry(), "tollgate_decisions_total",
		map[string]string{"action": "order.create", "code": "ok"}); v != 1600 {
		t.Errorf("decisions = %v, want 1600", v)
	}
	mfs, _ := m.Registry().Gather()
	for _, mf := range mfs {
		if mf.GetName() == "tollgate_policy_info" && len(mf.GetMetric()) != 1 {
			t.Errorf("policy_info has %d series, want 1", len(mf.GetMetric()))
		}
	}
}

// TestScrapeLint lints the text the handler serves, as `promtool check metrics` does
// (the metrics contract, metrics/README.md: it must report nothing).
func TestScrapeLint(t *testing.T) {
	m := New(fullOptions())
	exercise(m)
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	problems, err := promlint.New(rec.Body).Lint()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("promtool check metrics: %s: %s", p.Metric, p.Text)
	}
}
