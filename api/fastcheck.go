package api

import (
	"strconv"
	"unicode/utf8"

	"github.com/tollgate-pdp/tollgate"
)

// decodeCheckFast decodes the common shape of a /v1/check body (a flat object of the known
// fields, each at most once, plain strings, integers, booleans) without reflection. It answers
// false whenever it is not sure (escapes, nulls, unknown, repeated or odd values, anything
// malformed), and the caller then
// decodes with encoding/json, which gives the exact result or the exact error. So it can only
// make a request faster, never decode it differently (a differential test holds it to that).
func decodeCheckFast(b []byte, r *tollgate.CheckRequest) bool {
	i := skipWS(b, 0)
	if i >= len(b) || b[i] != '{' {
		return false
	}
	i = skipWS(b, i+1)
	if i < len(b) && b[i] == '}' {
		return skipWS(b, i+1) == len(b)
	}
	var seen uint16 // the known keys already read: a repeated key goes to encoding/json, which refuses it
	for {
		key, next, ok := plainBytes(b, i)
		if !ok {
			return false
		}
		bit := fastKeyBit(key)
		if bit == 0 || seen&bit != 0 {
			return false
		}
		seen |= bit
		i = skipWS(b, next)
		if i >= len(b) || b[i] != ':' {
			return false
		}
		i = skipWS(b, i+1)
		if i >= len(b) {
			return false
		}
		// A string(bytes) switch and the constant action names below allocate nothing: only the
		// values kept in the request are copied out of the body.
		switch string(key) {
		case "vendor_id":
			if b[i] == '"' {
				s, n, ok := plainBytes(b, i)
				if !ok {
					return false
				}
				r.VendorID, i = tollgate.VendorID(s), n
			} else {
				v, n, ok := integer(b, i)
				if !ok {
					return false
				}
				r.VendorID, i = tollgate.VendorID(strconv.FormatInt(v, 10)), n
			}
		case "action", "platform", "feature", "idempotency_key":
			v, n, ok := plainBytes(b, i)
			if !ok {
				return false
			}
			switch string(key) {
			case "action":
				r.Action = actionName(v)
			case "platform":
				r.Platform = string(v)
			case "feature":
				r.Feature = string(v)
			default:
				r.IdempotencyKey = string(v)
			}
			i = n
		case "count", "custom_count", "quantity", "months":
			v, n, ok := integer(b, i)
			if !ok {
				return false
			}
			p := new(int64)
			*p = v
			switch string(key) {
			case "count":
				r.Count = p
			case "custom_count":
				r.CustomCount = p
			case "quantity":
				r.Quantity = p
			default:
				r.Months = p
			}
			i = n
		case "custom", "consume", "explain":
			var v bool
			switch {
			case hasPrefixAt(b, i, "true"):
				v, i = true, i+4
			case hasPrefixAt(b, i, "false"):
				v, i = false, i+5
			default:
				return false
			}
			switch string(key) {
			case "custom":
				r.Custom = v
			case "consume":
				r.Consume = v
			default:
				r.Explain = v
			}
		default:
			return false
		}
		i = skipWS(b, i)
		if i >= len(b) {
			return false
		}
		switch b[i] {
		case ',':
			i = skipWS(b, i+1)
		case '}':
			return skipWS(b, i+1) == len(b)
		default:
			return false
		}
	}
}

// fastKeyBit is the bit of a key decodeCheckFast reads, 0 for any other key.
func fastKeyBit(key []byte) uint16 {
	switch string(key) {
	case "vendor_id":
		return 1 << 0
	case "action":
		return 1 << 1
	case "platform":
		return 1 << 2
	case "feature":
		return 1 << 3
	case "idempotency_key":
		return 1 << 4
	case "count":
		return 1 << 5
	case "custom_count":
		return 1 << 6
	case "quantity":
		return 1 << 7
	case "months":
		return 1 << 8
	case "custom":
		return 1 << 9
	case "consume":
		return 1 << 10
	case "explain":
		return 1 << 11
	}
	return 0
}

func skipWS(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

func hasPrefixAt(b []byte, i int, p string) bool {
	return len(b)-i >= len(p) && string(b[i:i+len(p)]) == p
}

// plainBytes reads a string without escapes or control characters, in valid UTF-8, and
// returns its bytes (still in b).
func plainBytes(b []byte, i int) ([]byte, int, bool) {
	if i >= len(b) || b[i] != '"' {
		return nil, i, false
	}
	ascii := true
	for j := i + 1; j < len(b); j++ {
		c := b[j]
		switch {
		case c == '"':
			s := b[i+1 : j]
			if !ascii && !utf8.Valid(s) {
				return nil, i, false
			}
			return s, j + 1, true
		case c == '\\' || c < 0x20:
			return nil, i, false
		case c >= utf8.RuneSelf:
			ascii = false
		}
	}
	return nil, i, false
}

// actionName is the action in b, as the shared constant when it is one of the default
// policy's actions (most requests), so decoding it allocates nothing.
func actionName(b []byte) string {
	for _, a := range tollgate.DefaultActions() {
		if string(b) == a {
			return a
		}
	}
	return string(b)
}

// integer reads an optionally negative decimal integer in the int64 range, in JSON's grammar
// (no leading zeros, no fraction or exponent).
func integer(b []byte, i int) (int64, int, bool) {
	j := i
	if j < len(b) && b[j] == '-' {
		j++
	}
	start := j
	for j < len(b) && b[j] >= '0' && b[j] <= '9' {
		j++
	}
	if j == start || j-start > 1 && b[start] == '0' || j-start > 19 {
		return 0, i, false
	}
	if j < len(b) && (b[j] == '.' || b[j] == 'e' || b[j] == 'E') {
		return 0, i, false
	}
	v, err := strconv.ParseInt(string(b[i:j]), 10, 64)
	if err != nil {
		return 0, i, false
	}
	return v, j, true
}
