package tollgate

import (
	"encoding/json"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
	"time"
)

func TestDecisionAppendJSONMatchesEncodingJSON(t *testing.T) {
	ten, zero := int64(10), int64(0)
	up := "business"
	cases := []Decision{
		{},
		{Allow: true, Code: "ok", Limit: &ten, Used: 3, Remaining: &zero, Tier: "essential", Status: "active", DecisionID: "ab-1"},
		{Code: "limit_reached", Reason: "Monthly order limit reached (100 orders). Upgrade to continue.", UpgradeTo: &up, Stale: true, StaleMode: "deny", Replayed: true},
		{Reason: "quotes \" back\\slash \n\r\t \x01 <tag> & \u2028 \u2029 é 日本"},
		{Reason: "invalid \xff utf-8"},
		{Code: "ok", Explain: &Explanation{Input: json.RawMessage(`{"a":1}`), Query: "data.tollgate.decision"}},
	}
	for _, d := range cases {
		want, err := json.Marshal(d)
		if err != nil {
			t.Fatal(err)
		}
		got, err := d.AppendJSON([]byte("prefix"))
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != "prefix"+string(want) {
			t.Errorf("AppendJSON:\n got %s\nwant prefix%s", got, want)
		}
	}
}

func TestDecisionLogEntryAppendJSONMatchesEncodingJSON(t *testing.T) {
	n, one := int64(42), int64(1)
	up := "enterprise"
	base := func() DecisionLogEntry {
		return DecisionLogEntry{
			DecisionID: "0123456789ab-1z", Time: time.Date(2026, 11, 26, 10, 0, 0, 123456000, time.UTC),
			VendorID: "v-1", Action: "order.create",
			Request:        CheckRequest{VendorID: "v-1", Action: "order.create"},
			Result:         Decision{Allow: true, Code: "ok", Limit: &n, Used: 41, Remaining: &one, Tier: "essential", Status: "active", DecisionID: "0123456789ab-1z"},
			PolicyRevision: "p-1", CatalogRevision: "c-1", Tier: "essential", BillingPeriod: "2026-11-01T00:00:00Z",
			LatencySeconds: 1.83e-05,
		}
	}
	cases := map[string]func(*DecisionLogEntry){
		"plain": func(*DecisionLogEntry) {},
		"every request field": func(e *DecisionLogEntry) {
			e.Request = CheckRequest{VendorID: "v-1", Action: "cms_page.create", Platform: "shopify", Count: &n,
				CustomCount: &one, Quantity: &n, Feature: "api_access", Months: &one, Custom: true, Consume: true,
				IdempotencyKey: "key <&>", Explain: true}
		},
		"denial": func(e *DecisionLogEntry) {
			e.Result = Decision{Code: "feature_missing", Reason: "Feature not available on your plan", UpgradeTo: &up}
		},
		"escapes":              func(e *DecisionLogEntry) { e.VendorID, e.Request.Feature = "a\"b\\c\u2028", "<é>\t日本\x01" },
		"zero time":            func(e *DecisionLogEntry) { e.Time = time.Time{} },
		"whole second":         func(e *DecisionLogEntry) { e.Time = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC) },
		"other zone":           func(e *DecisionLogEntry) { e.Time = e.Time.In(time.FixedZone("X", 5*3600+1800)) },
		"zero latency":         func(e *DecisionLogEntry) { e.LatencySeconds = 0 },
		"tiny latency":         func(e *DecisionLogEntry) { e.LatencySeconds = 4.2e-7 },
		"tiny latency 2 digit": func(e *DecisionLogEntry) { e.LatencySeconds = 4.2e-10 },
		"slow":                 func(e *DecisionLogEntry) { e.LatencySeconds = 2.5 },
		"huge latency":         func(e *DecisionLogEntry) { e.LatencySeconds = 3e21 },
		"invalid utf-8":        func(e *DecisionLogEntry) { e.Request.IdempotencyKey = "\xff" },
		"explain": func(e *DecisionLogEntry) {
			e.Result.Explain = &Explanation{Input: json.RawMessage(`{"a":1}`), PolicyRevision: "p-1"}
		},
	}
	for name, change := range cases {
		t.Run(name, func(t *testing.T) {
			e := base()
			change(&e)
			assertEntryJSON(t, &e)
		})
	}
}

// TestDecisionLogEntryAppendJSONRandom compares the two encodings on generated entries, with
// strings drawn from characters that need escaping and numbers of every size.
func TestDecisionLogEntryAppendJSONRandom(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	alphabet := []string{"a", "Z", "0", "-", ".", " ", "\"", "\\", "/", "<", ">", "&", "\n", "\t", "\x00", "\x1f", "é", "日", "\u2028", "\u2029", "😀"}
	str := func() string {
		var b strings.Builder
		for range r.IntN(8) {
			b.WriteString(alphabet[r.IntN(len(alphabet))])
		}
		return b.String()
	}
	optInt := func() *int64 {
		if r.IntN(3) == 0 {
			return nil
		}
		v := r.Int64() >> r.IntN(64)
		if r.IntN(2) == 0 {
			v = -v
		}
		return &v
	}
	for i := range 2000 {
		e := DecisionLogEntry{
			DecisionID: str(), Time: time.Unix(r.Int64N(1<<35), r.Int64N(1e9)).UTC(), VendorID: str(), Action: str(),
			Request: CheckRequest{VendorID: VendorID(str()), Action: str(), Platform: str(), Count: optInt(),
				CustomCount: optInt(), Quantity: optInt(), Feature: str(), Months: optInt(), Custom: r.IntN(2) == 0,
				Consume: r.IntN(2) == 0, IdempotencyKey: str(), Explain: r.IntN(2) == 0},
			Result: Decision{Allow: r.IntN(2) == 0, Code: str(), Reason: str(), Limit: optInt(), Used: r.Int64(),
				Remaining: optInt(), Tier: str(), Status: str(), DecisionID: str(), Stale: r.IntN(2) == 0,
				StaleMode: str(), Replayed: r.IntN(2) == 0},
			PolicyRevision: str(), CatalogRevision: str(), Tier: str(), BillingPeriod: str(),
			LatencySeconds: math.Ldexp(r.Float64(), r.IntN(160)-100),
		}
		if r.IntN(2) == 0 {
			u := str()
			e.Result.UpgradeTo = &u
		}
		if !assertEntryJSON(t, &e) {
			t.Fatalf("entry %d differs", i)
		}
	}
}

func assertEntryJSON(t *testing.T, e *DecisionLogEntry) bool {
	t.Helper()
	want, err := json.Marshal(e)
	if err != nil {
		t.Fatal(err)
	}
	got, err := e.AppendJSON(nil)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != string(want) {
		t.Errorf("AppendJSON:\n got %s\nwant %s", got, want)
		return false
	}
	return true
}

func TestDecisionLogEntryAppendJSONErrorsAsEncodingJSON(t *testing.T) {
	for name, e := range map[string]DecisionLogEntry{
		"year 10000":   {Time: time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)},
		"NaN latency":  {LatencySeconds: math.NaN()},
		"+Inf latency": {LatencySeconds: math.Inf(1)},
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := json.Marshal(&e); err == nil {
				t.Fatal("encoding/json accepts it; the case is wrong")
			}
			if b, err := e.AppendJSON([]byte("x")); err == nil || string(b) != "x" {
				t.Errorf("AppendJSON = %q, %v; want the buffer unchanged and an error", b, err)
			}
		})
	}
}

// BenchmarkDecisionLogEntryJSON: encoding/json (the baseline) against AppendJSON, one decision
// log line each.
func BenchmarkDecisionLogEntryJSON(b *testing.B) {
	n, one := int64(42), int64(1)
	e := DecisionLogEntry{
		DecisionID: "0123456789ab-1z", Time: time.Date(2026, 11, 26, 10, 0, 0, 123456789, time.UTC),
		VendorID: "vendor-000123", Action: "product.add",
		Request: CheckRequest{VendorID: "vendor-000123", Action: "product.add", Count: &n},
		Result: Decision{Allow: true, Code: "ok", Limit: &n, Used: 41, Remaining: &one, Tier: "essential",
			Status: "active", DecisionID: "0123456789ab-1z"},
		PolicyRevision: "p-72d6ed7ec2e18ed2-c-7fd631fe5e84945c", CatalogRevision: "c-7fd631fe5e84945c",
		Tier: "essential", BillingPeriod: "2026-11-01T00:00:00Z", LatencySeconds: 1.83e-05,
	}
	b.Run("encoding-json", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := json.Marshal(&e); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("append", func(b *testing.B) {
		buf := make([]byte, 0, 1024)
		b.ReportAllocs()
		for b.Loop() {
			var err error
			if buf, err = e.AppendJSON(buf[:0]); err != nil {
				b.Fatal(err)
			}
		}
	})
}
