package tollgate

import (
	"encoding/json"
	"math"
	"strconv"
	"time"
	"unicode/utf8"
)

// The decision API encodes a Decision for every check, and the decision log a
// DecisionLogEntry for every logged one. Both write what json.Marshal writes (tests hold them
// to that) without reflection, because encoding is a fixed share of each decision's cost and
// json.Marshal also allocates the whole document. Rare shapes (explanations, invalid UTF-8,
// times or numbers JSON cannot hold) go through encoding/json, which gives the exact result or
// the exact error.

// AppendJSON appends d as JSON.
func (d *Decision) AppendJSON(b []byte) ([]byte, error) {
	if d.Explain != nil || !d.validStrings() {
		// A copy goes to encoding/json: handing it d would move every caller's decision to
		// the heap, on the common path too.
		cp := *d
		return appendMarshal(b, &cp)
	}
	return d.appendJSON(b), nil
}

// appendJSON writes d, which holds no explanation and only valid UTF-8.
func (d *Decision) appendJSON(b []byte) []byte {
	b = append(b, `{"allow":`...)
	b = strconv.AppendBool(b, d.Allow)
	b = append(b, `,"code":`...)
	b = appendJSONString(b, d.Code)
	b = append(b, `,"reason":`...)
	b = appendJSONString(b, d.Reason)
	b = append(b, `,"limit":`...)
	b = appendJSONIntPtr(b, d.Limit)
	b = append(b, `,"used":`...)
	b = strconv.AppendInt(b, d.Used, 10)
	b = append(b, `,"remaining":`...)
	b = appendJSONIntPtr(b, d.Remaining)
	b = append(b, `,"tier":`...)
	b = appendJSONString(b, d.Tier)
	b = append(b, `,"status":`...)
	b = appendJSONString(b, d.Status)
	b = append(b, `,"upgrade_to":`...)
	if d.UpgradeTo == nil {
		b = append(b, "null"...)
	} else {
		b = appendJSONString(b, *d.UpgradeTo)
	}
	b = append(b, `,"decision_id":`...)
	b = appendJSONString(b, d.DecisionID)
	b = append(b, `,"stale":`...)
	b = strconv.AppendBool(b, d.Stale)
	if d.StaleMode != "" {
		b = append(b, `,"stale_mode":`...)
		b = appendJSONString(b, d.StaleMode)
	}
	if d.Replayed {
		b = append(b, `,"replayed":true`...)
	}
	return append(b, '}')
}

func (d *Decision) validStrings() bool {
	return validUTF8(d.Code, d.Reason, d.Tier, d.Status, d.DecisionID, d.StaleMode) &&
		(d.UpgradeTo == nil || utf8.ValidString(*d.UpgradeTo))
}

// AppendJSON appends the entry as JSON (one decision log line, without the newline).
func (e *DecisionLogEntry) AppendJSON(b []byte) ([]byte, error) {
	if e.Result.Explain != nil || !e.plain() {
		// Unlike a Decision, an entry is on the heap already (the log owns it): no copy.
		return appendMarshal(b, e)
	}
	b = append(b, `{"decision_id":`...)
	b = appendJSONString(b, e.DecisionID)
	b = append(b, `,"time":"`...)
	b = e.Time.AppendFormat(b, time.RFC3339Nano)
	b = append(b, `","vendor_id":`...)
	b = appendJSONString(b, e.VendorID)
	b = append(b, `,"action":`...)
	b = appendJSONString(b, e.Action)
	b = append(b, `,"request":`...)
	b = e.Request.appendJSON(b)
	b = append(b, `,"result":`...)
	b = e.Result.appendJSON(b)
	b = append(b, `,"policy_revision":`...)
	b = appendJSONString(b, e.PolicyRevision)
	b = append(b, `,"catalog_revision":`...)
	b = appendJSONString(b, e.CatalogRevision)
	b = append(b, `,"tier":`...)
	b = appendJSONString(b, e.Tier)
	b = append(b, `,"billing_period":`...)
	b = appendJSONString(b, e.BillingPeriod)
	b = append(b, `,"latency_seconds":`...)
	b = appendJSONFloat(b, e.LatencySeconds)
	return append(b, '}'), nil
}

// plain says the entry has only what AppendJSON writes as encoding/json would: valid UTF-8, a
// UTC time in RFC 3339's years (four digits) and a finite latency. The Checker logs UTC times;
// other zones take encoding/json's checks of the offset.
func (e *DecisionLogEntry) plain() bool {
	r := &e.Request
	y := e.Time.Year()
	_, offset := e.Time.Zone()
	return y >= 0 && y <= 9999 && offset == 0 &&
		!math.IsNaN(e.LatencySeconds) && !math.IsInf(e.LatencySeconds, 0) &&
		e.Result.validStrings() &&
		validUTF8(e.DecisionID, e.VendorID, e.Action, e.PolicyRevision, e.CatalogRevision, e.Tier, e.BillingPeriod) &&
		validUTF8(string(r.VendorID), r.Action, r.Platform, r.Feature, r.IdempotencyKey)
}

// appendJSON writes r (valid UTF-8 only), leaving out what its tags omit when empty.
func (r *CheckRequest) appendJSON(b []byte) []byte {
	b = append(b, `{"vendor_id":`...)
	b = appendJSONString(b, string(r.VendorID))
	b = append(b, `,"action":`...)
	b = appendJSONString(b, r.Action)
	b = appendOptString(b, `,"platform":`, r.Platform)
	b = appendOptInt(b, `,"count":`, r.Count)
	b = appendOptInt(b, `,"custom_count":`, r.CustomCount)
	b = appendOptInt(b, `,"quantity":`, r.Quantity)
	b = appendOptString(b, `,"feature":`, r.Feature)
	b = appendOptInt(b, `,"months":`, r.Months)
	b = appendOptTrue(b, `,"custom":true`, r.Custom)
	b = appendOptTrue(b, `,"consume":true`, r.Consume)
	b = appendOptString(b, `,"idempotency_key":`, r.IdempotencyKey)
	b = appendOptTrue(b, `,"explain":true`, r.Explain)
	return append(b, '}')
}

func appendOptString(b []byte, key, s string) []byte {
	if s == "" {
		return b
	}
	return appendJSONString(append(b, key...), s)
}

func appendOptInt(b []byte, key string, v *int64) []byte {
	if v == nil {
		return b
	}
	return strconv.AppendInt(append(b, key...), *v, 10)
}

func appendOptTrue(b []byte, field string, v bool) []byte {
	if !v {
		return b
	}
	return append(b, field...)
}

func appendMarshal(b []byte, v any) ([]byte, error) {
	out, err := json.Marshal(v)
	if err != nil {
		return b, err
	}
	return append(b, out...), nil
}

func validUTF8(ss ...string) bool {
	for _, s := range ss {
		if !utf8.ValidString(s) {
			return false
		}
	}
	return true
}

func appendJSONIntPtr(b []byte, v *int64) []byte {
	if v == nil {
		return append(b, "null"...)
	}
	return strconv.AppendInt(b, *v, 10)
}

// appendJSONFloat writes a finite float64 as encoding/json does: plain decimals between 1e-6
// and 1e21, the shortest exponent form outside them.
func appendJSONFloat(b []byte, f float64) []byte {
	format := byte('f')
	if abs := math.Abs(f); abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	b = strconv.AppendFloat(b, f, format, -1, 64)
	if format == 'e' {
		// e-09 → e-9, as encoding/json writes it.
		if n := len(b); n >= 4 && b[n-4] == 'e' && b[n-3] == '-' && b[n-2] == '0' {
			b[n-2] = b[n-1]
			b = b[:n-1]
		}
	}
	return b
}

const hexDigits = "0123456789abcdef"

// appendJSONString quotes a valid UTF-8 string as encoding/json does by default (HTML-safe
// escapes for <, >, & and U+2028/U+2029 included).
func appendJSONString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
