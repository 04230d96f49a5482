package policy

import (
	"fmt"
	"testing"
	"time"

	"github.com/tollgate-pdp/tollgate"
)

// Every usage increment makes a new vendor snapshot. The input cache was keyed by snapshot
// pointer, so each superseded snapshot (and its input object) stayed reachable until the map
// reached its 65,536-entry bound: the soak test saw resident memory climb ~0.5 MiB/s under
// steady writes. It keeps one entry per vendor now.
func TestVendorInputsKeepOneEntryPerVendor(t *testing.T) {
	c := newVendorInputs(1 << 16)
	start := time.Now().Add(-time.Hour)
	for i := 0; i < 3000; i++ {
		v := &tollgate.VendorState{Subscription: tollgate.Subscription{VendorID: fmt.Sprint("v", i%3), Tier: "business",
			Status: tollgate.StatusActive, PeriodStart: &start}, Revision: uint64(i)}
		t1 := c.get(v, "p")
		if t2 := c.get(v, "p"); t1 != t2 {
			t.Fatal("the same snapshot was rebuilt")
		}
	}
	n := 0
	for i := range c.shards {
		n += len(c.shards[i].m)
	}
	if n != 3 {
		t.Fatalf("%d entries for 3 vendors", n)
	}
}
