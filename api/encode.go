package api

import (
	"encoding/json"
	"strconv"
	"unicode/utf8"

	"github.com/tollgate-pdp/tollgate"
)

// appendDecision appends d as JSON. It writes the same document json.Marshal would (a test
// holds it to that) without reflection, because encoding is a fixed share of every decision's
// cost. Rare shapes (explanations, invalid UTF-8) go through encoding/json.
func appendDecision(b []byte, d *tollgate.Decision) ([]byte, error) {
	if d.Explain != nil || !validStrings(d) {
		// A copy goes to encoding/json: handing it d would move every caller's decision to
		// the heap, on the common path too.
		cp := *d
		out, err := json.Marshal(&cp)
		if err != nil {
			return b, err
		}
		return append(b, out...), nil
	}
	b = append(b, `{"allow":`...)
	b = strconv.AppendBool(b, d.Allow)
	b = append(b, `,"code":`...)
	b = appendString(b, d.Code)
	b = append(b, `,"reason":`...)
	b = appendString(b, d.Reason)
	b = append(b, `,"limit":`...)
	b = appendIntPtr(b, d.Limit)
	b = append(b, `,"used":`...)
	b = strconv.AppendInt(b, d.Used, 10)
	b = append(b, `,"remaining":`...)
	b = appendIntPtr(b, d.Remaining)
	b = append(b, `,"tier":`...)
	b = appendString(b, d.Tier)
	b = append(b, `,"status":`...)
	b = appendString(b, d.Status)
	b = append(b, `,"upgrade_to":`...)
	if d.UpgradeTo == nil {
		b = append(b, "null"...)
	} else {
		b = appendString(b, *d.UpgradeTo)
	}
	b = append(b, `,"decision_id":`...)
	b = appendString(b, d.DecisionID)
	b = append(b, `,"stale":`...)
	b = strconv.AppendBool(b, d.Stale)
	if d.StaleMode != "" {
		b = append(b, `,"stale_mode":`...)
		b = appendString(b, d.StaleMode)
	}
	if d.Replayed {
		b = append(b, `,"replayed":true`...)
	}
	return append(b, '}'), nil
}

func validStrings(d *tollgate.Decision) bool {
	ok := utf8.ValidString(d.Code) && utf8.ValidString(d.Reason) && utf8.ValidString(d.Tier) &&
		utf8.ValidString(d.Status) && utf8.ValidString(d.DecisionID) && utf8.ValidString(d.StaleMode)
	if d.UpgradeTo != nil {
		ok = ok && utf8.ValidString(*d.UpgradeTo)
	}
	return ok
}

func appendIntPtr(b []byte, v *int64) []byte {
	if v == nil {
		return append(b, "null"...)
	}
	return strconv.AppendInt(b, *v, 10)
}

const hexDigits = "0123456789abcdef"

// appendString quotes a valid UTF-8 string as encoding/json does by default (HTML-safe
// escapes for <, >, & and U+2028/U+2029 included).
func appendString(b []byte, s string) []byte {
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
