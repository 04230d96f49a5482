package fleet_test

import (
	"context"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tollgate-pdp/tollgate"
	"github.com/tollgate-pdp/tollgate/cache"
	"github.com/tollgate-pdp/tollgate/fleet"
	"github.com/tollgate-pdp/tollgate/fleet/internal/natstest"
)

// countingObserver counts what the fleet reports.
type countingObserver struct {
	tollgate.NopFleetObserver
	applyErrors atomic.Int64
	applied     atomic.Uint64
	connected   atomic.Bool
}

func (o *countingObserver) FleetApplyError()      { o.applyErrors.Add(1) }
func (o *countingObserver) FleetApplied(s uint64) { o.applied.Store(s) }
func (o *countingObserver) FleetConnected(up bool) {
	o.connected.Store(up)
}

func TestMessagesAreAppliedOnceInOrderAndUnknownKindsSkipped(t *testing.T) {
	srv := natstest.Start(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	obs := &countingObserver{}
	conn, err := fleet.Connect(ctx, fleetConfig(srv.URL(), "unit"), obs, quiet())
	must(t, err)
	defer conn.Close()
	st, err := cache.Open(ctx, cache.Options{Path: filepath.Join(t.TempDir(), "t.db"), Logger: quiet(), NoSync: true})
	must(t, err)
	defer st.Close()
	node := fleet.NewNode(conn, st, fleet.Options{ApplyTimeout: 5 * time.Second})
	defer runNode(t, node)()
	eventually(t, 5*time.Second, "ready", func() bool { ok, _ := node.Ready(); return ok })
	if !obs.connected.Load() {
		t.Fatal("the observer was not told about the connection")
	}

	// A kind this sidecar does not know (a newer sidecar's): counted, its sequence recorded,
	// and the log goes on.
	ack, err := conn.JS.Publish(ctx, fleet.NamesOf("unit").Prefix+"from_the_future", []byte(`{}`))
	must(t, err)
	fs := node.Store()
	sub := &tollgate.Subscription{VendorID: "u1", Tier: "essential", Status: tollgate.StatusActive}
	v, err := fs.PutSubscription(ctx, sub)
	must(t, err)
	if v.Revision != 1 || st.AppliedSequence() != ack.Sequence+1 {
		t.Fatalf("after the write: revision %d, store sequence %d, want 1 and %d", v.Revision, st.AppliedSequence(), ack.Sequence+1)
	}
	if obs.applyErrors.Load() != 1 {
		t.Fatalf("apply errors = %d, want 1 (the unknown kind)", obs.applyErrors.Load())
	}
	if obs.applied.Load() != ack.Sequence+1 {
		t.Fatalf("applied sequence metric = %d, want %d", obs.applied.Load(), ack.Sequence+1)
	}
	// An override is computed from the state at the log's end.
	v, err = fs.UpdateSubscription(ctx, "u1", func(s *tollgate.Subscription) error { s.Tier = "business"; return nil })
	must(t, err)
	if v.Subscription.Tier != "business" || v.Revision != 2 {
		t.Fatalf("after the override: %s rev %d, want business rev 2", v.Subscription.Tier, v.Revision)
	}
	if _, err := fs.UpdateSubscription(ctx, "nobody", func(*tollgate.Subscription) error { return nil }); tollgate.ErrorCode(err) != tollgate.ENotFound {
		t.Fatalf("override of an unknown vendor: %v, want not found", err)
	}
	// A usage report carries its time, so every sidecar stores the same one.
	n := int64(7)
	v, err = fs.ReportUsage(ctx, "u1", tollgate.UsageReport{Products: &n})
	must(t, err)
	if v.Usage.Products == nil || *v.Usage.Products != 7 {
		t.Fatalf("products after the report: %+v", v.Usage)
	}
}
