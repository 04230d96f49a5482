package fleet

import (
	"strings"
	"testing"
)

func TestCounterKeyRoundTrip(t *testing.T) {
	tests := []struct {
		vendor, period string
	}{
		{"42", "2026-12-01T00:00:00Z"},
		{"vendor with spaces/and.dots:colons", "2026-02-14T09:30:00Z"},
		{"ünïcode-✓", "1999-01-01T00:00:00Z"},
	}
	for _, tt := range tests {
		k, err := counterKey(tt.vendor, tt.period)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Count(k, ".") != 1 || strings.ContainsAny(k, " :/*>") {
			t.Fatalf("key %q for vendor %q is not one KV-safe token pair", k, tt.vendor)
		}
		v, p, ok := parseCounterKey(k)
		if !ok || v != tt.vendor || p != tt.period {
			t.Fatalf("parseCounterKey(%q) = %q %q %v, want %q %q", k, v, p, ok, tt.vendor, tt.period)
		}
		ik, err := idempotencyKey(tt.vendor, tt.period, "any bytes: \x00 ✓")
		if err != nil || !strings.HasPrefix(ik, k+".") {
			t.Fatalf("idempotency key %q (%v) is not under the counter key %q", ik, err, k)
		}
	}
	if _, err := counterKey("1", "not a period"); err == nil {
		t.Fatal("a malformed period was accepted")
	}
	for _, bad := range []string{"", "nodot", "!!.123", "MQ.notanumber"} {
		if _, _, ok := parseCounterKey(bad); ok {
			t.Fatalf("parseCounterKey(%q) accepted", bad)
		}
	}
}
