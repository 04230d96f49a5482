package api

import (
	"bytes"
	"encoding/json"
	"strconv"
	"testing"

	"github.com/tollgate-pdp/tollgate"
)

func TestDuplicateKey(t *testing.T) {
	const all = MaxJSONDepth + 1
	tests := []struct {
		body      string
		foldDepth int
		path, key string
		first     string // "" = no duplicate
	}{
		{`{"a":1,"b":2}`, all, "", "", ""},
		{`{"a":1,"a":2}`, all, "a", "a", "a"},
		{`{"a":{"b":1},"c":{"b":2}}`, all, "", "", ""},
		{`{"a":{"b":1,"b":2}}`, all, "a.b", "b", "b"},
		{`{"a":[{"b":1},{"b":2,"c":[1,{"d":1,"d":2}]}]}`, all, "a[1].c[1].d", "d", "d"},
		{`{"a":"\"a\":1","b":"a"}`, all, "", "", ""},             // keys inside strings are not keys
		{`{"x\\":1,"x":2}`, all, "", "", ""},                     // an escaped backslash ends no string
		{`{"\u0061":1,"a":2}`, all, "a", "a", "a"},               // escapes are decoded
		{`{"a":1,"A":2}`, all, "A", "A", "a"},                    // struct fields fold
		{`{"a":1,"A":2}`, 0, "", "", ""},                         // exact
		{`{"i":{"a":1,"A":2}}`, 1, "", "", ""},                   // folding stops below foldDepth
		{`{"i":{},"I":{}}`, 1, "I", "I", "i"},                    // but applies at it
		{"{\"k\":1,\"\u212a\":2}", all, "\u212a", "\u212a", "k"}, // the Kelvin sign folds to k
		{`[{"a":1},{"a":1}]`, all, "", "", ""},
		{` { "a" : 1 , "a" : 2 } `, all, "a", "a", "a"},
	}
	for _, tt := range tests {
		path, key, first, found := duplicateKey([]byte(tt.body), tt.foldDepth)
		if found != (tt.first != "") || path != tt.path || key != tt.key || first != tt.first {
			t.Errorf("duplicateKey(%s, %d) = %q, %q, %q, %v; want %q, %q, %q", tt.body, tt.foldDepth, path, key, first, found, tt.path, tt.key, tt.first)
		}
	}
}

// hasDuplicateKey is the reference: encoding/json's own tokenizer, keys compared after foldKey
// (fold) or exactly.
func hasDuplicateKey(b []byte, fold bool) bool {
	dec := json.NewDecoder(bytes.NewReader(b))
	var walk func() bool
	walk = func() bool {
		tok, err := dec.Token()
		if err != nil {
			return false
		}
		switch tok {
		case json.Delim('{'):
			seen := map[string]bool{}
			for dec.More() {
				k, _ := dec.Token()
				key := k.(string)
				if fold {
					key = foldKey(key)
				}
				if seen[key] {
					return true
				}
				seen[key] = true
				if walk() {
					return true
				}
			}
			_, _ = dec.Token()
		case json.Delim('['):
			for dec.More() {
				if walk() {
					return true
				}
			}
			_, _ = dec.Token()
		}
		return false
	}
	return walk()
}

func FuzzDuplicateKey(f *testing.F) {
	for _, s := range []string{`{"a":1,"a":2}`, `{"a":{"b":[1,{"c":1,"C":2}]}}`, `{"\u0061":1,"a":2}`, `{"x\\":1,"x":2}`, `[{"a":1},{"a":1}]`, fastCheckSeeds[1], `{"k":1,"` + "\u212a" + `":2}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if !json.Valid(b) || checkDepth(b, MaxJSONDepth) != nil {
			return
		}
		for _, fold := range []bool{false, true} {
			depth := 0
			if fold {
				depth = MaxJSONDepth + 1
			}
			_, _, _, got := duplicateKey(b, depth)
			if want := hasDuplicateKey(b, fold); got != want {
				t.Fatalf("duplicateKey(%s, fold %v) = %v, reference %v", strconv.Quote(string(b)), fold, got, want)
			}
		}
	})
}

// TestFastCheckDecoderRefusesRepeatedKeys: the fast decoder must hand every body with a
// repeated key to encoding/json (which, through decodeJSON, refuses it), never keep one value.
func TestFastCheckDecoderRefusesRepeatedKeys(t *testing.T) {
	for _, body := range []string{
		`{"vendor_id":"1","vendor_id":"2","action":"order.create"}`,
		`{"vendor_id":"1","action":"order.create","action":"product.add"}`,
		`{"vendor_id":"1","action":"order.create","count":1,"count":2}`,
		`{"vendor_id":"1","action":"order.create","consume":true,"consume":false}`,
		`{"vendor_id":"1","action":"order.create","platform":"a","feature":"b","months":1,"custom":true,"custom_count":1,"explain":true,"idempotency_key":"k","quantity":1,"explain":false}`,
	} {
		var r tollgate.CheckRequest
		if decodeCheckFast([]byte(body), &r) {
			t.Errorf("fast path accepted %s", body)
		}
		if err := decodeJSON([]byte(body), &r, decodeOptions{}); err == nil {
			t.Errorf("decodeJSON accepted %s", body)
		}
	}
}
