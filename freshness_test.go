package tollgate_test

import (
	"errors"
	"testing"
	"time"

	"github.com/tollgate-pdp/tollgate"
)

func TestFreshness(t *testing.T) {
	start := time.Date(2026, 3, 15, 12, 0, 0, 0, time.UTC)
	f := tollgate.NewFreshness(time.Hour, start)
	tests := []struct {
		name    string
		applied time.Time // zero: none
		now     time.Time
		stale   bool
	}{
		{"just started", time.Time{}, start.Add(time.Minute), false},
		{"never heard, past the threshold", time.Time{}, start.Add(61 * time.Minute), true},
		{"an event refreshes", start.Add(2 * time.Hour), start.Add(2*time.Hour + time.Minute), false},
		{"an older event does not move it back", start.Add(time.Hour), start.Add(3*time.Hour + time.Second), true},
	}
	for _, tt := range tests {
		if !tt.applied.IsZero() {
			f.Applied(tt.applied)
		}
		if got := f.Stale(tt.now); got != tt.stale {
			t.Errorf("%s: stale = %v, want %v", tt.name, got, tt.stale)
		}
	}
	if f.LastApplied() != start.Add(2*time.Hour) {
		t.Errorf("last applied = %v", f.LastApplied())
	}
	var nilF *tollgate.Freshness
	if nilF.Stale(start.Add(1000*time.Hour)) || tollgate.NewFreshness(0, start).Stale(start.Add(1000*time.Hour)) {
		t.Error("a disabled freshness clock turned stale")
	}
}

func TestParseWhenStale(t *testing.T) {
	tests := []struct {
		in      string
		modes   map[string]string // action -> mode
		wantErr bool
	}{
		{"", map[string]string{"order.create": "evaluate"}, false},
		{"deny", map[string]string{"order.create": "deny", "feature.use": "deny"}, false},
		{"order.create=deny,feature.use=allow,*=evaluate", map[string]string{"order.create": "deny", "feature.use": "allow", "product.add": "evaluate"}, false},
		{"order.create=deny, *=allow", map[string]string{"order.create": "deny", "product.add": "allow"}, false},
		{"order.create=maybe", nil, true},
		{"Bad Action=deny", nil, true},
	}
	for _, tt := range tests {
		w, err := tollgate.ParseWhenStale(tt.in)
		if (err != nil) != tt.wantErr {
			t.Errorf("%q: err = %v", tt.in, err)
			continue
		}
		for action, mode := range tt.modes {
			if got := w.Mode(action); got != mode {
				t.Errorf("%q: Mode(%s) = %s, want %s", tt.in, action, got, mode)
			}
		}
	}
}

func TestUsageReportValidate(t *testing.T) {
	n := func(v int64) *int64 { return &v }
	tests := []struct {
		r     tollgate.UsageReport
		field string // "" = valid
	}{
		{tollgate.UsageReport{Products: n(3)}, ""},
		{tollgate.UsageReport{StorageBytes: n(0)}, ""},
		{tollgate.UsageReport{}, "products"},
		{tollgate.UsageReport{TeamMembers: n(-1)}, "team_members"},
		{tollgate.UsageReport{Products: n(1), CMSCustomPages: n(-2)}, "cms_custom_pages"},
	}
	for _, tt := range tests {
		err := tt.r.Validate()
		var te *tollgate.Error
		switch {
		case tt.field == "" && err != nil:
			t.Errorf("%+v: %v", tt.r, err)
		case tt.field != "" && (!errors.As(err, &te) || te.Field != tt.field):
			t.Errorf("%+v: err %v, want one naming %s", tt.r, err, tt.field)
		}
	}
}

func TestFreshnessObserver(t *testing.T) {
	start := time.Date(2026, 3, 15, 12, 0, 0, 0, time.UTC)
	f := tollgate.NewFreshness(time.Hour, start)
	var o tollgate.Observer = tollgate.FreshnessObserver{Observer: tollgate.NopObserver{}, Freshness: f}
	o.StripeApplied(start.Add(5 * time.Hour))
	if f.Stale(start.Add(5*time.Hour + time.Minute)) {
		t.Error("StripeApplied through the observer did not refresh the clock")
	}
}
