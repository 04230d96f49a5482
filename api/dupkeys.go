package api

import (
	"encoding/json"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// duplicateKey finds the first object member whose key an earlier member of the same object
// already gave, in b, which must be valid JSON (it runs after a successful decode). encoding/json
// would keep the last value, so {"vendor_id":"a","vendor_id":"b"} would be vendor b to tollgate
// and maybe vendor a to a proxy or log that read the first. path names the member
// ("checks[2].vendor_id"), key is the key as given there and first the earlier spelling.
//
// Up to foldDepth levels of objects, keys equal under Unicode case folding are the same key too,
// because encoding/json matches struct fields case-insensitively ("VENDOR_ID" sets vendor_id).
// Deeper levels (the data API's free-form input, decoded into maps) compare keys exactly.
func duplicateKey(b []byte, foldDepth int) (path, key, first string, found bool) {
	type frame struct {
		object bool
		path   string            // the container's own path
		key    string            // object: the member being read
		index  int               // array: the element being read
		seen   map[string]string // object: key (folded when folding) -> key as given
	}
	var stack []frame
	expectKey := false
	child := func() string {
		if len(stack) == 0 {
			return ""
		}
		top := &stack[len(stack)-1]
		if top.object {
			return joinPath(top.path, top.key)
		}
		return top.path + "[" + strconv.Itoa(top.index) + "]"
	}
	for i := 0; i < len(b); i++ {
		switch c := b[i]; c {
		case '{':
			stack = append(stack, frame{object: true, path: child()})
			expectKey = true
		case '[':
			stack = append(stack, frame{path: child()})
			expectKey = false
		case '}', ']':
			stack = stack[:len(stack)-1]
			expectKey = false
		case ',':
			if top := &stack[len(stack)-1]; top.object {
				expectKey = true
			} else {
				top.index++
			}
		case '"':
			end, escaped := stringEnd(b, i)
			if expectKey {
				key := string(b[i+1 : end])
				if escaped {
					// valid JSON, so this cannot fail; an odd key compares as written
					_ = json.Unmarshal(b[i:end+1], &key)
				}
				top := &stack[len(stack)-1]
				norm := key
				if len(stack) <= foldDepth {
					norm = foldKey(key)
				}
				if prev, dup := top.seen[norm]; dup {
					return joinPath(top.path, key), key, prev, true
				}
				if top.seen == nil {
					top.seen = make(map[string]string, 8)
				}
				top.seen[norm] = key
				top.key = key
				expectKey = false
			}
			i = end
		}
	}
	return "", "", "", false
}

// stringEnd is the index of the quote closing the string opening at b[i], and whether the
// string holds an escape.
func stringEnd(b []byte, i int) (int, bool) {
	escaped := false
	for j := i + 1; j < len(b); j++ {
		switch b[j] {
		case '\\':
			escaped = true
			j++
		case '"':
			return j, escaped
		}
	}
	return len(b) - 1, escaped
}

// foldKey maps every key equal to s under Unicode simple case folding (strings.EqualFold) to
// one string: each rune becomes the smallest rune of its folding orbit, lower-cased when that
// is an ASCII letter (so that the Kelvin sign and "k" meet the ASCII fast path's "k").
func foldKey(s string) string {
	ascii := true
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			ascii = false
			break
		}
	}
	if ascii {
		return strings.ToLower(s)
	}
	var out strings.Builder
	for _, r := range s {
		m := r
		for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
			m = min(m, f)
		}
		if m < utf8.RuneSelf {
			m = unicode.ToLower(m)
		}
		out.WriteRune(m)
	}
	return out.String()
}

func joinPath(parent, key string) string {
	if parent == "" {
		return key
	}
	return parent + "." + key
}
