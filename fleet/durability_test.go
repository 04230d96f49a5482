package fleet_test

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/tollgate-pdp/tollgate"

	"github.com/tollgate-pdp/tollgate/fleet"
	"github.com/tollgate-pdp/tollgate/fleet/internal/natstest"
)

var admin = map[string]string{"Authorization": "Bearer " + testToken}

func putVendor(t testing.TB, s *sidecar, vendor, tier string) int {
	t.Helper()
	body := fmt.Sprintf(`{"platform":"oms","tier":%q,"status":"active"}`, tier)
	return do(t, http.MethodPut, s.decision+"/v1/vendors/"+vendor, []byte(body), admin, nil)
}

func mustPut(t testing.TB, s *sidecar, vendor, tier string) {
	t.Helper()
	if code := putVendor(t, s, vendor, tier); code != http.StatusOK {
		t.Fatalf("PUT %s at %s: %d", vendor, s.name, code)
	}
}

// sameState fails unless both sidecars hold the same vendors at the same revisions.
func sameState(t testing.TB, a, b *sidecar) {
	t.Helper()
	eventually(t, 10*time.Second, b.name+" to catch up with "+a.name, func() bool { return b.node.Applied() >= a.node.Applied() })
	if a.store.VendorCount() != b.store.VendorCount() {
		t.Fatalf("%s has %d vendors, %s %d", a.name, a.store.VendorCount(), b.name, b.store.VendorCount())
	}
	a.store.ForEachVendor(func(va *tollgate.VendorState) bool {
		vb, ok := b.store.Vendor(va.Subscription.VendorID)
		if !ok || vb.Revision != va.Revision || vb.Subscription.Tier != va.Subscription.Tier {
			t.Errorf("vendor %s: %s rev %d %s, %s rev %d %s (present %v)", va.Subscription.VendorID,
				a.name, va.Revision, va.Subscription.Tier, b.name, vb.Revision, vb.Subscription.Tier, ok)
		}
		return true
	})
}

func TestRestartResumesFromTheRecordedSequence(t *testing.T) {
	srv, sc := startFleet(t, 2)
	a, b := sc[0], sc[1]
	for i := range 5 {
		mustPut(t, a, fmt.Sprintf("v%d", i), "essential")
	}
	sameState(t, a, b)
	at := b.node.Applied()
	b.stop()
	for i := range 5 {
		mustPut(t, a, fmt.Sprintf("v%d", i), "professional")
	}
	b = startSidecar(t, "s1-again", b.path, fleetConfig(srv.URL(), "t"))
	if got := b.store.AppliedSequence(); got != at {
		t.Fatalf("reopened store at sequence %d, want %d", got, at)
	}
	if b.restored {
		t.Fatal("a store the stream still reaches was replaced by a snapshot")
	}
	b.waitReady(10 * time.Second)
	// Revisions count applied writes: equal revisions mean nothing was applied twice.
	sameState(t, a, b)
	if v, _ := b.store.Vendor("v0"); v.Revision != 2 || v.Subscription.Tier != "professional" {
		t.Fatalf("v0 after resume: rev %d %s, want rev 2 professional", v.Revision, v.Subscription.Tier)
	}
}

func TestNewSidecarJoinsFromSnapshotAndStream(t *testing.T) {
	srv, sc := startFleet(t, 2)
	a, b := sc[0], sc[1]
	for i := range 20 {
		mustPut(t, a, fmt.Sprintf("v%d", i), "essential")
	}
	sameState(t, a, b)
	b.stop() // B falls behind
	if code, outcome := a.deliver(subEvent(t, "evt_1", periodStart+1, "sub_1", "v-stripe", "active", "price_pro_m")); code != http.StatusOK {
		t.Fatalf("webhook: %d %s", code, outcome)
	}
	ctx := context.Background()
	snap, err := a.node.TakeSnapshot(ctx)
	must(t, err)
	for i := range 5 {
		mustPut(t, a, fmt.Sprintf("v%d", i), "professional")
	}
	mustPut(t, a, "v-late", "business")
	// History expires: the stream keeps only what came after the snapshot.
	st, err := a.conn.JS.Stream(ctx, fleet.NamesOf("t").Stream)
	must(t, err)
	must(t, st.Purge(ctx, jetstream.WithPurgeSequence(snap.Sequence+1)))

	// A new pod, empty store: ready from the snapshot and the stream after it.
	c := startSidecar(t, "new", "", fleetConfig(srv.URL(), "t"))
	if !c.restored {
		t.Fatal("the new sidecar did not start from the snapshot")
	}
	c.waitReady(10 * time.Second)
	sameState(t, a, c)
	// Stripe state came with it: the event id is known, a redelivery changes nothing.
	if code, outcome := c.deliver(subEvent(t, "evt_1", periodStart+1, "sub_1", "v-stripe", "active", "price_pro_m")); code != http.StatusOK || outcome != "duplicate" {
		t.Fatalf("redelivery at the new sidecar: %d %s, want 200 duplicate", code, outcome)
	}
	// B's sequence is older than the stream's first: it restores too.
	b = startSidecar(t, "s1-again", b.path, fleetConfig(srv.URL(), "t"))
	if !b.restored {
		t.Fatal("a sidecar behind the stream's history did not restore the snapshot")
	}
	b.waitReady(10 * time.Second)
	sameState(t, a, b)
}

func TestClusterR3LosesNothingAcknowledgedWhenANodeDies(t *testing.T) {
	cl := natstest.StartCluster(t, 3)
	cfg := fleetConfig(cl.URLs(), "r3")
	cfg.Replicas = 3
	a := startSidecar(t, "a", "", cfg)
	b := startSidecar(t, "b", "", cfg)
	a.waitReady(15 * time.Second)
	b.waitReady(15 * time.Second)
	var acked []string
	for i := range 40 {
		if i == 15 {
			cl.Nodes[0].Shutdown()
		}
		v := fmt.Sprintf("v%d", i)
		// A write in flight while the node dies may be refused (503); the client retries it.
		deadline := time.Now().Add(20 * time.Second)
		for putVendor(t, a, v, "essential") != http.StatusOK {
			if time.Now().After(deadline) {
				t.Fatalf("PUT %s never acknowledged with one node of three down", v)
			}
			time.Sleep(50 * time.Millisecond)
		}
		acked = append(acked, v)
	}
	cl.Nodes[0].Restart()
	eventually(t, 20*time.Second, "b to apply every acknowledged write", func() bool {
		for _, v := range acked {
			if _, ok := b.vendor(v); !ok {
				return false
			}
		}
		return true
	})
	sameState(t, a, b)
}
