package fleet

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/tollgate-pdp/tollgate"
)

// watchBatch bounds how many counter changes one local write applies.
const watchBatch = 1024

// Watch keeps the sidecar's local copy of the counters current, so that non-consuming checks
// read them from memory and never touch the network: it loads every counter, then applies each
// change as JetStream delivers it, until ctx ends. A watch that breaks (NATS gone, or back
// after a reconnect) is opened again after a pause; reloading is harmless, the local copy only
// ever rises. Synced is closed after the first full load.
func (u *Usage) Watch(ctx context.Context, local tollgate.OrderCountSetter) error {
	missing := map[[2]string]tollgate.OrderCount{}
	for {
		err := u.watchOnce(ctx, local, missing)
		if ctx.Err() != nil {
			return nil
		}
		u.log.Warn("fleet usage: counter watch broke; opening it again", "err", err)
		t := time.NewTimer(250 * time.Millisecond)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
	}
}

// Synced is closed once the local copy holds every counter that existed when Watch started.
func (u *Usage) Synced() <-chan struct{} { return u.synced }

func (u *Usage) watchOnce(ctx context.Context, local tollgate.OrderCountSetter, missing map[[2]string]tollgate.OrderCount) error {
	octx, cancel := context.WithTimeout(ctx, u.cfg.Timeout)
	err := u.open(octx)
	cancel()
	if err != nil {
		return err
	}
	w, err := u.counters.WatchAll(ctx)
	if err != nil {
		return fmt.Errorf("watch %s: %w", u.counters.Bucket(), err)
	}
	defer func() { _ = w.Stop() }()
	// A watch does not always survive the server restarting under it (its consumer is gone):
	// after a reconnect the watch is opened again, which reloads every counter.
	nc := u.js.Conn()
	reconnects := nc.Stats().Reconnects
	// Counters of vendors the store does not hold yet (their state is still on its way through
	// the fleet's log) are retried until they land.
	retry := time.NewTicker(250 * time.Millisecond)
	defer retry.Stop()
	batch := make([]tollgate.OrderCount, 0, watchBatch)
	for {
		batch = batch[:0]
		synced := false
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-retry.C:
			if nc.Stats().Reconnects != reconnects {
				return fmt.Errorf("watch %s: reconnected to NATS", u.counters.Bucket())
			}
			for _, c := range missing {
				batch = append(batch, c)
			}
			clear(missing)
		case e, ok := <-w.Updates():
			if !ok {
				return fmt.Errorf("watch %s: closed", u.counters.Bucket())
			}
			synced = u.add(&batch, e)
			for len(batch) < watchBatch && !synced && len(w.Updates()) > 0 {
				synced = u.add(&batch, <-w.Updates())
			}
		}
		if len(batch) > 0 {
			lost, err := local.SetOrders(ctx, batch)
			if err != nil {
				return err
			}
			for _, c := range lost {
				missing[[2]string{c.VendorID, c.Period}] = c
			}
		}
		if synced {
			u.syncOnce.Do(func() { close(u.synced) })
		}
	}
}

// add appends a counter change to the batch; it reports the end of the initial load (the nil
// entry a watch sends once it delivered every current value).
func (u *Usage) add(batch *[]tollgate.OrderCount, e jetstream.KeyValueEntry) (synced bool) {
	if e == nil {
		return true
	}
	if e.Operation() != jetstream.KeyValuePut {
		return false
	}
	vendorID, period, ok := parseCounterKey(e.Key())
	var v counterValue
	if !ok || json.Unmarshal(e.Value(), &v) != nil {
		u.log.Warn("fleet usage: counter not understood; skipped", "key", e.Key())
		return false
	}
	*batch = append(*batch, tollgate.OrderCount{VendorID: vendorID, Period: period, Orders: v.Orders, LimitReachedAt: v.LimitReachedAt})
	return false
}

// Name and Ready make the local copy a readiness check: a sidecar is ready once its copy holds
// every counter.
func (u *Usage) Name() string { return "fleet_usage" }

func (u *Usage) Ready() (bool, string) {
	select {
	case <-u.synced:
		return true, "usage counters loaded"
	default:
		return false, "loading the fleet's usage counters"
	}
}
