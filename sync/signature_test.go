package sync

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tollgate-pdp/tollgate"
)

func TestVerify(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	sub := fixture(t, era2023, "subscription")
	payload := mustJSON(t, event(t, era2023, "evt_sig", "customer.subscription.updated", now.Unix(), sub))
	const secret, old, other = "whsec_current", "whsec_old", "whsec_other"

	tests := []struct {
		name    string
		secrets []string
		payload []byte
		header  string
		wantErr string // substring of the message; empty: accepted
	}{
		{"valid", []string{secret}, payload, SignatureHeader(payload, now, secret), ""},
		{"valid at tolerance edge past", []string{secret}, payload, SignatureHeader(payload, now.Add(-300*time.Second), secret), ""},
		{"valid at tolerance edge future", []string{secret}, payload, SignatureHeader(payload, now.Add(300*time.Second), secret), ""},
		{"rotated: old secret still accepted", []string{secret, old}, payload, SignatureHeader(payload, now, old), ""},
		{"rotated: comma separated list", []string{secret + "," + old}, payload, SignatureHeader(payload, now, old), ""},
		{"any v1 entry may match", []string{secret}, payload, SignatureHeader(payload, now, other, secret), ""},
		{"v0 scheme ignored", []string{secret}, payload, SignatureHeader(payload, now, secret) + ",v0=abcdef", ""},
		{"no secret configured", nil, payload, SignatureHeader(payload, now, secret), "no webhook secret is configured"},
		{"unsigned (no header)", []string{secret}, payload, "", "missing Stripe-Signature header"},
		{"forged body", []string{secret}, []byte(strings.Replace(string(payload), "evt_sig", "evt_forged", 1)), SignatureHeader(payload, now, secret), "no v1 signature matches"},
		{"forged signature", []string{secret}, payload, "t=" + strconv.FormatInt(now.Unix(), 10) + ",v1=" + strings.Repeat("ab", 32), "no v1 signature matches"},
		{"wrong secret", []string{secret}, payload, SignatureHeader(payload, now, other), "no v1 signature matches"},
		{"expired (>300 s)", []string{secret}, payload, SignatureHeader(payload, now.Add(-301*time.Second), secret), "old, outside"},
		{"future (>300 s)", []string{secret}, payload, SignatureHeader(payload, now.Add(301*time.Second), secret), "in the future"},
		{"timestamp resigned (replay with new t)", []string{secret}, payload,
			"t=" + strconv.FormatInt(now.Unix(), 10) + ",v1=" + strings.TrimPrefix(strings.Split(SignatureHeader(payload, now.Add(-time.Hour), secret), ",v1=")[1], ""), "no v1 signature matches"},
		{"malformed: garbage", []string{secret}, payload, "garbage", "malformed header"},
		{"malformed: no timestamp", []string{secret}, payload, "v1=" + strings.Repeat("ab", 32), "no timestamp"},
		{"malformed: bad timestamp", []string{secret}, payload, "t=abc,v1=" + strings.Repeat("ab", 32), "not a positive integer"},
		{"malformed: two timestamps", []string{secret}, payload, "t=1,t=2,v1=" + strings.Repeat("ab", 32), "more than one timestamp"},
		{"no v1 entry", []string{secret}, payload, "t=" + strconv.FormatInt(now.Unix(), 10) + ",v0=abc", "no v1 signature"},
		{"v1 not hex", []string{secret}, payload, "t=" + strconv.FormatInt(now.Unix(), 10) + ",v1=zz", "no v1 signature"},
		{"oversized header", []string{secret}, payload, "t=1," + strings.Repeat("v1=ab,", 4000), "longer than"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := NewVerifier(tt.secrets, 0).Verify(tt.payload, tt.header, now)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("want accepted, got %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("want refused (%s), got accepted", tt.wantErr)
			}
			if code := tollgate.ErrorCode(err); code != tollgate.EUnauthorized {
				t.Errorf("code = %q, want %q", code, tollgate.EUnauthorized)
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("error %q does not name the problem %q", err, tt.wantErr)
			}
		})
	}
}

func TestVerifierConfigured(t *testing.T) {
	if NewVerifier([]string{"", " , "}, 0).Configured() {
		t.Fatal("blank secrets must not count as configured")
	}
	var v *Verifier
	if v.Configured() {
		t.Fatal("nil verifier is not configured")
	}
}
