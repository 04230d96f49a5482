package policy

import (
	"context"
	"testing"
	"time"

	"github.com/tollgate-pdp/tollgate"
)

// A fleet's consume decides on a copy of the vendor carrying the shared count under the local
// snapshot's revision: Uncached must keep the cached answer of the snapshot from serving it.
func TestUncachedFactsAreEvaluated(t *testing.T) {
	e := newEngine(t, Options{CacheTTL: time.Minute})
	ctx := context.Background()
	local := vendor("essential", tollgate.StatusActive, 4)
	req := tollgate.CheckRequest{Action: tollgate.ActionOrderCreate, Quantity: i64(1)}
	for range 2 { // the second is a cache hit
		d, err := e.Decide(ctx, facts(local, req))
		if err != nil || !d.Allow {
			t.Fatalf("local count 4: %+v %v", d, err)
		}
	}
	shared := *local
	shared.Usage.Periods = []tollgate.PeriodUsage{{Period: local.Usage.Periods[0].Period, Orders: 100}}
	f := facts(&shared, req)
	f.Uncached = true
	d, err := e.Decide(ctx, f)
	if err != nil || d.Allow || d.Reason != "Monthly order limit reached (100 orders). Upgrade to continue." {
		t.Fatalf("shared count 100 at the same revision: %+v %v", d, err)
	}
}
