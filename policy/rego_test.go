package policy

import (
	"context"
	"testing"

	"github.com/open-policy-agent/opa/v1/tester"
)

// TestRegoTests runs policy/rego/*_test.rego, the same tests `opa test policy/rego` runs.
func TestRegoTests(t *testing.T) {
	ctx := context.Background()
	modules, store, err := tester.Load([]string{"rego"}, nil)
	if err != nil {
		t.Fatalf("load rego: %v", err)
	}
	ch, err := tester.NewRunner().SetStore(store).SetModules(modules).CapturePrintOutput(true).RunTests(ctx, nil)
	if err != nil {
		t.Fatalf("run rego tests: %v", err)
	}
	n := 0
	for r := range ch {
		n++
		name := r.Package + "." + r.Name
		if r.Error != nil {
			t.Errorf("%s: error: %v", name, r.Error)
			continue
		}
		if r.Fail {
			t.Errorf("%s: FAIL (%s)\n%s", name, r.Location, r.Output)
		}
	}
	if n < 20 {
		t.Errorf("ran %d Rego tests, want the whole suite (>= 20)", n)
	}
}
