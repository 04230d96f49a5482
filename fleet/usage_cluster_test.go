package fleet

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/tollgate-pdp/tollgate"
	"github.com/tollgate-pdp/tollgate/fleet/internal/natstest"
)

// A 3-node JetStream cluster with R3 buckets loses a node in the middle of the load: the limit
// still holds, and every acknowledged order is in the shared counter. Clients retry a 503 with
// the same idempotency key, as a real client would.
func TestFleetClusterNodeLossKeepsTheLimit(t *testing.T) {
	c := natstest.StartCluster(t, 3)
	side := fleetOf(t, 3, sidecarOpts{urls: c.URLs(), replicas: 3, vendors: []tollgate.Subscription{essential("1")}})
	// The node to lose is the counter bucket's stream leader: the one a write cannot do without.
	leader := streamLeader(t, c, side[0], "KV_"+UsageBucket(NamesOf(testFleet).KVPrefix))
	var allowed, denied, unknown, retried atomic.Int64
	var next atomic.Int64
	var once sync.Once
	var wg sync.WaitGroup
	for _, s := range side {
		for range 8 {
			wg.Go(func() {
				for range 10 { // 240 orders asked for 100
					// Paced, so that the load is still running when the node goes down.
					time.Sleep(20 * time.Millisecond)
					key := fmt.Sprintf("order-%d", next.Add(1))
					d, err := consumeRetrying(s, key, &retried)
					switch {
					case err != nil:
						unknown.Add(1) // the outcome is not known to the client
					case d.Allow:
						if allowed.Add(1) == 30 {
							once.Do(func() { go leader.Shutdown() })
						}
					case d.Reason != limitReason:
						t.Errorf("denied with %q", d.Reason)
					default:
						denied.Add(1)
					}
				}
			})
		}
	}
	wg.Wait()
	counted := fleetOrders(t, side[1].nc, "1")
	t.Logf("allowed %d, denied %d, unknown outcome %d, retries after 503 %d, counted %d", allowed.Load(), denied.Load(), unknown.Load(), retried.Load(), counted)
	if leader.Running() {
		t.Fatal("the node was never shut down")
	}
	if counted > 100 {
		t.Fatalf("the fleet counted %d orders for a limit of 100", counted)
	}
	if counted < allowed.Load() {
		t.Fatalf("%d orders acknowledged, only %d counted: an acknowledged write was lost", allowed.Load(), counted)
	}
	if counted-allowed.Load() > unknown.Load() {
		t.Fatalf("%d counted beyond the %d acknowledged, more than the %d requests of unknown outcome", counted-allowed.Load(), allowed.Load(), unknown.Load())
	}
	if unknown.Load() == 0 && allowed.Load() != 100 {
		t.Fatalf("allowed %d with every outcome known, want exactly 100", allowed.Load())
	}
}

// consumeRetrying asks until it gets a decision, retrying 503 unavailable for up to 20 s.
func consumeRetrying(s *sidecar, key string, retried *atomic.Int64) (tollgate.Decision, error) {
	deadline := time.Now().Add(20 * time.Second)
	for {
		d, err := s.consume(key)
		if err == nil || tollgate.ErrorCode(err) != tollgate.EUnavailable || time.Now().After(deadline) {
			return d, err
		}
		retried.Add(1)
		time.Sleep(50 * time.Millisecond)
	}
}

// streamLeader is the cluster node leading the stream.
func streamLeader(t *testing.T, c *natstest.Cluster, s *sidecar, stream string) *natstest.Server {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	js, err := jetstream.New(s.nc)
	must(t, err)
	st, err := js.Stream(ctx, stream)
	must(t, err)
	info, err := st.Info(ctx)
	must(t, err)
	for _, n := range c.Nodes {
		if info.Cluster != nil && n.NATS().Name() == info.Cluster.Leader {
			return n
		}
	}
	t.Fatalf("no node leads %s (%+v)", stream, info.Cluster)
	return nil
}
