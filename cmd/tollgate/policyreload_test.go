package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tollgate-pdp/tollgate"
	"github.com/tollgate-pdp/tollgate/policy"
)

// TestPolicyReloadUnderLoad performs TOLLGATE_POLICY_RELOADS (default 40 in make test, 1000 in make chaos) policy reloads,
// valid and broken alternating, through policy.Engine.Reload on a temporary --policy-dir while
// goroutines call Decide continuously. Each valid revision replaces decision.rego with one
// whose feature-denial reason names its version ("[vN]"); each broken revision names itself
// "[BROKEN]" and fails in a different way (syntax, unsafe variable, type error, undefined
// function). No decision may fail, none may come from a broken revision, and each one's
// version lies between the revision in service when the call began and the one being loaded
// when it ended.
func TestPolicyReloadUnderLoad(t *testing.T) {
	reloads := envInt("TOLLGATE_POLICY_RELOADS", 40) // make chaos: 1000
	src, err := os.ReadFile("../../policy/rego/decision.rego")
	if err != nil {
		t.Fatal(err)
	}
	// The one place decision.rego states the reason (its reasons table).
	const reason = `"feature_missing": "Feature not available on your plan",`
	if !strings.Contains(string(src), reason) {
		t.Fatal("decision.rego has no feature-denial reason to tag")
	}
	valid := func(n int) string {
		return strings.Replace(string(src), reason, fmt.Sprintf(`"feature_missing": "Feature not available on your plan [v%d]",`, n), 1)
	}
	brokenBodies := []string{
		"\nthis is not rego {{{\n",
		"\nbroken_unsafe if { x == y }\n",
		"\nbroken_type := count(1)\n",
		"\nbroken_call := no_such_function(1)\n",
	}
	broken := func(n int) string {
		return strings.Replace(string(src), reason, `"feature_missing": "Feature not available on your plan [BROKEN]",`, 1) + brokenBodies[n%len(brokenBodies)]
	}
	dir := t.TempDir()
	write := func(content string) {
		// Replace atomically, as a ConfigMap update or `mv` does.
		tmp := filepath.Join(dir, ".decision.rego.tmp")
		if err := os.WriteFile(tmp, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, filepath.Join(dir, "decision.rego")); err != nil {
			t.Fatal(err)
		}
	}
	write(valid(0))
	ctx := context.Background()
	eng, err := policy.New(ctx, policy.Options{PolicyDir: dir, CacheTTL: time.Second, Logger: newLogger(os.Stderr, 100)})
	if err != nil {
		t.Fatal(err)
	}

	start := time.Now().Add(-time.Hour)
	vendor := &tollgate.VendorState{Subscription: tollgate.Subscription{VendorID: "pr-1", Tier: "essential",
		Status: tollgate.StatusActive, PeriodStart: &start}}
	var inService, loading atomic.Int64 // valid versions
	var decisions, failures, brokenSeen, inconsistent atomic.Int64
	var firstBad atomic.Value
	stop := make(chan struct{})
	var wg sync.WaitGroup
	tag := regexp.MustCompile(`\[(v(\d+)|BROKEN)\]$`)
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				// Vary the request a little so both cached and fresh evaluations happen.
				req := &tollgate.CheckRequest{VendorID: "pr-1", Action: "feature.use", Feature: "api_access"}
				if i%3 == 0 {
					req.Feature = "analytics_dashboard"
				}
				lo := inService.Load()
				d, err := eng.Decide(ctx, &tollgate.Facts{Request: req, Vendor: vendor, Now: time.Now()})
				hi := loading.Load()
				decisions.Add(1)
				if err != nil {
					failures.Add(1)
					firstBad.CompareAndSwap(nil, "error: "+err.Error())
					continue
				}
				m := tag.FindStringSubmatch(d.Reason)
				switch {
				case d.Allow || d.Code != "feature_missing" || m == nil:
					inconsistent.Add(1)
					firstBad.CompareAndSwap(nil, fmt.Sprintf("unexpected decision %+v", d))
				case m[1] == "BROKEN":
					brokenSeen.Add(1)
					firstBad.CompareAndSwap(nil, "a broken revision served: "+d.Reason)
				default:
					n, _ := strconv.ParseInt(m[2], 10, 64)
					if n < lo || n > hi {
						inconsistent.Add(1)
						firstBad.CompareAndSwap(nil, fmt.Sprintf("version %d outside [%d, %d]", n, lo, hi))
					}
				}
			}
		}(w)
	}
	began := time.Now()
	validN, brokenN, failedReloads := 0, 0, 0
	for i := 1; i <= reloads; i++ {
		if i%2 == 1 {
			validN++
			loading.Store(int64(i))
			write(valid(i))
			if err := eng.Reload(ctx); err != nil {
				t.Fatalf("valid reload %d: %v", i, err)
			}
			inService.Store(int64(i))
		} else {
			brokenN++
			write(broken(i))
			if err := eng.Reload(ctx); err == nil {
				t.Fatalf("broken reload %d (%q) was accepted", i, brokenBodies[i%len(brokenBodies)])
			}
			failedReloads++
			if ready, _ := eng.Ready(); !ready {
				// A failed reload keeps the running policy; readiness must not drop.
				t.Fatalf("not ready after failed reload %d", i)
			}
		}
	}
	elapsed := time.Since(began)
	close(stop)
	wg.Wait()
	if v := firstBad.Load(); v != nil {
		t.Errorf("first problem: %v", v)
	}
	if failures.Load() != 0 || brokenSeen.Load() != 0 || inconsistent.Load() != 0 {
		t.Fatalf("%d decisions: %d failed, %d from broken revisions, %d inconsistent", decisions.Load(), failures.Load(), brokenSeen.Load(), inconsistent.Load())
	}
	t.Logf("policy reloads: %d (%d valid, %d broken refused) in %v under %d concurrent decisions: 0 failed, 0 broken served, 0 inconsistent",
		reloads, validN, brokenN, elapsed.Round(time.Millisecond), decisions.Load())
}
