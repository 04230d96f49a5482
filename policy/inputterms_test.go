package policy

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"

	"github.com/tollgate-pdp/tollgate"
	"github.com/tollgate-pdp/tollgate/policy/internal/planeval"
)

// Every usage increment makes a new vendor snapshot. The input cache was keyed by snapshot
// pointer, so each superseded snapshot (and its input object) stayed reachable until the map
// reached its 65,536-entry bound: the soak test saw resident memory climb ~0.5 MiB/s under
// steady writes. It keeps one entry per vendor now.
func TestVendorInputsKeepOneEntryPerVendor(t *testing.T) {
	c := newInputTerms(1 << 16)
	start := time.Now().Add(-time.Hour)
	for i := 0; i < 3000; i++ {
		v := &tollgate.VendorState{Subscription: tollgate.Subscription{VendorID: fmt.Sprint("v", i%3), Tier: "business",
			Status: tollgate.StatusActive, PeriodStart: &start}, Revision: uint64(i)}
		t1, id1 := c.get(v.Subscription.VendorID, v, "p")
		if t2, id2 := c.get(v.Subscription.VendorID, v, "p"); t1 != t2 || id1 != id2 {
			t.Fatal("the same snapshot was rebuilt")
		}
		if got := id1.Value.(ast.String); string(got) != v.Subscription.VendorID {
			t.Fatalf("vendor id term %v, want %q", got, v.Subscription.VendorID)
		}
	}
	n := 0
	for i := range c.slots {
		if c.slots[i].Load() != nil {
			n++
		}
	}
	if n != 3 {
		t.Fatalf("%d entries for 3 vendors", n)
	}
}

// TestVendorInputsShareSlots: with more vendors than slots, entries are replaced, never mixed
// up: each lookup answers its own snapshot and period, and the table does not grow.
func TestVendorInputsShareSlots(t *testing.T) {
	c := newInputTerms(2) // one pair of ways for all vendors
	start := time.Now().Add(-time.Hour)
	var snaps []*tollgate.VendorState
	for i := range 5 {
		snaps = append(snaps, &tollgate.VendorState{Subscription: tollgate.Subscription{VendorID: fmt.Sprint("v", i),
			Tier: fmt.Sprint("tier", i), Status: tollgate.StatusActive, PeriodStart: &start}})
	}
	long := strings.Repeat("p", 40) // longer than an entry's inline period
	for round := range 50 {
		v := snaps[round%len(snaps)]
		for _, period := range []string{"2026-11-01T00:00:00Z", long} {
			vendor, id := c.get(v.Subscription.VendorID, v, period)
			if got := string(id.Value.(ast.String)); got != v.Subscription.VendorID {
				t.Fatalf("round %d: id %q, want %q", round, got, v.Subscription.VendorID)
			}
			obj := planeval.Materialize(vendor).Value.(ast.Object)
			tier := obj.Get(ast.StringTerm("subscription")).Value.(ast.Object).Get(ast.StringTerm("tier"))
			usagePeriod := obj.Get(ast.StringTerm("usage")).Value.(ast.Object).Get(ast.StringTerm("period"))
			if !tier.Equal(ast.StringTerm(v.Subscription.Tier)) || !usagePeriod.Equal(ast.StringTerm(period)) {
				t.Fatalf("round %d: vendor %s got tier %v, period %v", round, v.Subscription.VendorID, tier, usagePeriod)
			}
		}
	}
	if len(c.slots) != 2 {
		t.Fatalf("table grew to %d slots", len(c.slots))
	}
}

// A vendor's newer snapshot replaces that vendor's own entry, never another vendor's, so a
// superseded snapshot is not kept alive and the other vendor still hits.
func TestNewSnapshotReplacesOwnEntry(t *testing.T) {
	c := newInputTerms(2) // one pair of ways: a and b fill it
	snap := func(id string, rev uint64) *tollgate.VendorState {
		return &tollgate.VendorState{Subscription: tollgate.Subscription{VendorID: id, Tier: "essential",
			Status: tollgate.StatusActive}, Revision: rev}
	}
	const period = "2026-11-01T00:00:00Z"
	a1, b := snap("a", 1), snap("b", 1)
	_, aID := c.get("a", a1, period)
	bTerm, bID := c.get("b", b, period)
	a2 := snap("a", 2)
	if _, id := c.get("a", a2, period); id != aID {
		t.Fatal("the new snapshot of a did not take over a's entry (its id term)")
	}
	if got, id := c.get("b", b, period); got != bTerm || id != bID {
		t.Fatal("b's entry was replaced by a's new snapshot")
	}
	for w := range c.slots {
		if e := c.slots[w].Load(); e != nil && e.v == a1 {
			t.Fatal("the table still holds a's superseded snapshot")
		}
	}
}

// Decisions in one second share input.now; the next second gets its own, with its value.
func TestNowTermPerSecond(t *testing.T) {
	c := newInputTerms(16)
	a, b := c.nowTerm(testNow), c.nowTerm(testNow.Add(999*time.Millisecond))
	if a != b {
		t.Fatal("two decisions in one second built two now terms")
	}
	next := c.nowTerm(testNow.Add(time.Second))
	if next == a || !next.Equal(ast.InternedTerm(testNow.Unix()+1)) || !a.Equal(ast.InternedTerm(testNow.Unix())) {
		t.Fatalf("now terms %v, %v", a, next)
	}
	var none *inputTerms
	if !none.nowTerm(testNow).Equal(a) {
		t.Fatal("without a cache, now is still the time")
	}
}

// TestWordsAreSharedAndBounded: a request string seen before costs no new term, and the table
// stops growing at maxWords (past it, strings still get a correct term, just a new one).
func TestWordsAreSharedAndBounded(t *testing.T) {
	c := newInputTerms(16)
	buf := []byte("feature_x")
	first := c.word(string(buf))
	buf[0] = 'F' // the table must not keep the caller's memory
	if again := c.word("feature_x"); again != first || string(again.Value.(ast.String)) != "feature_x" {
		t.Fatalf("second lookup = %v (%p), want the first term %v (%p)", again, again, first, first)
	}
	if got := c.word(""); got != emptyStringTerm {
		t.Fatalf(`word("") = %v, want the shared empty string`, got)
	}
	for i := 0; i < maxWords+100; i++ {
		w := fmt.Sprint("w", i)
		if got := c.word(w); string(got.Value.(ast.String)) != w {
			t.Fatalf("word(%q) = %v", w, got)
		}
	}
	if n := c.nWords.Load(); n != maxWords {
		t.Fatalf("table holds %d words, want the bound %d", n, maxWords)
	}
	if a, b := c.word("w5000"), c.word("w5000"); a == b || !a.Equal(b) {
		t.Fatal("a word past the bound must get an equal, new term")
	}
}
