package sync

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	gosync "sync"
	"testing"
)

// Eras of Stripe payload shape the fixtures cover.
const (
	era2023  = "2023-10-16"
	eraBasil = "2025-03-31.basil"
)

var fixtureFiles = map[string]string{
	era2023:  "fixtures3-api-2023-10-16.json",
	eraBasil: "fixtures3-api-latest.json",
}

// fixture returns a deep copy of Stripe's example object of the given resource and era, as a
// generic map the test can edit.
func fixture(t testing.TB, era, resource string) map[string]any {
	t.Helper()
	docs, err := loadFixtures()
	if err != nil {
		t.Fatal(err)
	}
	r, ok := docs[era][resource]
	if !ok {
		t.Fatalf("no fixture %q in era %s", resource, era)
	}
	var m map[string]any
	if err := json.Unmarshal(r, &m); err != nil {
		t.Fatalf("decode fixture %s: %v", resource, err)
	}
	return m
}

// loadFixtures reads both fixture files once per test binary (they are read-only inputs).
var loadFixtures = gosync.OnceValues(func() (map[string]map[string]json.RawMessage, error) {
	out := map[string]map[string]json.RawMessage{}
	for era, file := range fixtureFiles {
		raw, err := os.ReadFile(filepath.Join("testdata", "stripe", file))
		if err != nil {
			return nil, fmt.Errorf("read fixtures: %w", err)
		}
		var doc struct {
			Resources map[string]json.RawMessage `json:"resources"`
		}
		if err := json.Unmarshal(raw, &doc); err != nil {
			return nil, fmt.Errorf("decode fixtures %s: %w", file, err)
		}
		out[era] = doc.Resources
	}
	return out, nil
})

// event wraps an object in the envelope of Stripe's own event fixture.
func event(t testing.TB, era, id, typ string, created int64, obj map[string]any) map[string]any {
	t.Helper()
	e := fixture(t, era, "event")
	e["id"] = id
	e["type"] = typ
	e["created"] = created
	e["api_version"] = era
	e["data"] = map[string]any{"object": obj}
	return e
}

func mustJSON(t testing.TB, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatalf("marshal: %v", err)
	}
	return b
}

// set walks a dotted path ("items.data.0.price.id") in a decoded JSON map and sets the value.
func set(t testing.TB, m map[string]any, path string, v any) {
	t.Helper()
	var cur any = m
	parts := splitPath(path)
	for i, p := range parts {
		last := i == len(parts)-1
		switch c := cur.(type) {
		case map[string]any:
			if last {
				c[p] = v
				return
			}
			next, ok := c[p]
			if !ok || next == nil {
				next = map[string]any{}
				c[p] = next
			}
			cur = next
		case []any:
			var idx int
			if _, err := fmt.Sscanf(p, "%d", &idx); err != nil || idx < 0 || idx >= len(c) {
				t.Fatalf("set %s: bad index %q", path, p)
			}
			if last {
				c[idx] = v
				return
			}
			cur = c[idx]
		default:
			t.Fatalf("set %s: cannot descend into %T at %q", path, cur, p)
		}
	}
}

func splitPath(p string) []string {
	var out []string
	start := 0
	for i := 0; i < len(p); i++ {
		if p[i] == '.' {
			out = append(out, p[start:i])
			start = i + 1
		}
	}
	return append(out, p[start:])
}
