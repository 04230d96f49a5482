package main

import (
	"testing"

	"github.com/tollgate-pdp/tollgate"
)

// FuzzCatalogYAML: any --catalog file either loads as a catalog that validates, or is refused
// with a validation error; it never panics (the file is read at start and on dry runs).
func FuzzCatalogYAML(f *testing.F) {
	for _, s := range []string{
		"tiers:\n  - code: gold\n    name: Gold\n    orders_per_month: 10\n",
		"tiers:\n  - code: essential\n    name: E\n    platform: oms\n    features: [a, b]\n",
		"tiers: []\n",
		"tiers:\n  - code: x\n    name: X\n    orders_per_month: -5\n",
		"tiers:\n  - code: x\n    name: X\n    orders_per_month: 1e400\n",
		"a: &a [*a]\n",
		"tiers: !!binary AAAA\n",
		"{",
		"",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		c, err := parseCatalogYAML(raw)
		if err != nil {
			if code := tollgate.ErrorCode(err); code != tollgate.EInvalid && code != tollgate.EUnsupported {
				t.Fatalf("refusal with code %q: %v", code, err)
			}
			return
		}
		if err := c.Validate(); err != nil {
			t.Fatalf("a loaded catalog does not validate: %v", err)
		}
	})
}
