// Package sync keeps tollgate's vendor state in step with Stripe: it verifies and durably
// records webhook deliveries, maps Stripe subscriptions, invoices, customers and catalog objects
// onto the tollgate domain, reconciles against the Stripe API and replays saved events.
//
// Outside this package import it as tgsync; inside, the standard library package is gosync.
package sync

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/tollgate-pdp/tollgate"
)

// DefaultTolerance is how far a signature's timestamp may lie from now, in either direction.
const DefaultTolerance = 300 * time.Second

// maxSignatureHeader bounds the header we are willing to parse.
const maxSignatureHeader = 8 << 10

// Verifier checks Stripe-Signature headers: HMAC-SHA256 over "<t>.<body>", any v1 entry matching
// any configured secret (several during a rotation), with a tolerance on t in both directions.
// A Verifier without secrets refuses everything. It is safe for concurrent use.
type Verifier struct {
	secrets   [][]byte
	tolerance time.Duration
}

// NewVerifier returns a verifier for the given secrets (empty entries are dropped; each may also
// be a comma-separated list, as --stripe-webhook-secret accepts). tolerance <= 0 means
// DefaultTolerance.
func NewVerifier(secrets []string, tolerance time.Duration) *Verifier {
	v := &Verifier{tolerance: tolerance}
	if v.tolerance <= 0 {
		v.tolerance = DefaultTolerance
	}
	for _, s := range secrets {
		for _, part := range strings.Split(s, ",") {
			if part = strings.TrimSpace(part); part != "" {
				v.secrets = append(v.secrets, []byte(part))
			}
		}
	}
	return v
}

// Configured reports whether at least one secret is set.
func (v *Verifier) Configured() bool { return v != nil && len(v.secrets) > 0 }

func sigError(format string, args ...any) error {
	return &tollgate.Error{Code: tollgate.EUnauthorized, Message: "stripe signature: " + fmt.Sprintf(format, args...)}
}

// Verify checks header against payload at time now. Every failure is an *tollgate.Error with
// code EUnauthorized whose message names the problem.
func (v *Verifier) Verify(payload []byte, header string, now time.Time) error {
	if !v.Configured() {
		return sigError("no webhook secret is configured, every event is refused")
	}
	if header == "" {
		return sigError("missing Stripe-Signature header")
	}
	if len(header) > maxSignatureHeader {
		return sigError("malformed header: longer than %d bytes", maxSignatureHeader)
	}
	var (
		ts     int64
		haveTS bool
		sigs   [][]byte
	)
	for _, part := range strings.Split(header, ",") {
		k, val, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			return sigError("malformed header: element %q is not key=value", truncate(part, 32))
		}
		switch k {
		case "t":
			if haveTS {
				return sigError("malformed header: more than one timestamp")
			}
			n, err := strconv.ParseInt(val, 10, 64)
			if err != nil || n <= 0 {
				return sigError("malformed header: timestamp %q is not a positive integer", truncate(val, 32))
			}
			ts, haveTS = n, true
		case "v1":
			b, err := hex.DecodeString(val)
			if err != nil || len(b) != sha256.Size {
				continue // an unreadable entry can never match; others may
			}
			sigs = append(sigs, b)
		default:
			// other schemes (v0, future ones) are ignored
		}
	}
	if !haveTS {
		return sigError("malformed header: no timestamp (t=)")
	}
	if len(sigs) == 0 {
		return sigError("no v1 signature in header")
	}
	matched := false
	for _, secret := range v.secrets {
		expected := computeSignature(secret, ts, payload)
		for _, s := range sigs {
			// constant-time, and no early exit, so timing reveals nothing about which matched
			if hmac.Equal(expected, s) {
				matched = true
			}
		}
	}
	if !matched {
		return sigError("no v1 signature matches a configured secret")
	}
	at := time.Unix(ts, 0)
	if d := now.Sub(at); d > v.tolerance {
		return sigError("timestamp is %s old, outside the %s tolerance", d.Truncate(time.Second), v.tolerance)
	} else if -d > v.tolerance {
		return sigError("timestamp is %s in the future, outside the %s tolerance", (-d).Truncate(time.Second), v.tolerance)
	}
	return nil
}

func computeSignature(secret []byte, ts int64, payload []byte) []byte {
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte(strconv.FormatInt(ts, 10)))
	mac.Write([]byte{'.'})
	mac.Write(payload)
	return mac.Sum(nil)
}

// SignatureHeader returns the Stripe-Signature header Stripe would send for payload at time t,
// signed with each secret (one v1 entry per secret). For tests, tools and replays.
func SignatureHeader(payload []byte, t time.Time, secrets ...string) string {
	var b strings.Builder
	b.WriteString("t=")
	b.WriteString(strconv.FormatInt(t.Unix(), 10))
	for _, s := range secrets {
		b.WriteString(",v1=")
		b.WriteString(hex.EncodeToString(computeSignature([]byte(s), t.Unix(), payload)))
	}
	return b.String()
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
