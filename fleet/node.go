package fleet

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/tollgate-pdp/tollgate"
)

// Local is the sidecar's own store as the fleet needs it: the cache's *Store.
type Local interface {
	tollgate.Store
	tollgate.SequencedStore
	// Backup writes a consistent copy of the store (with its log sequence) to w.
	Backup(ctx context.Context, w io.Writer) (int64, error)
}

// handler applies one log message of its kind to the local store, under a context that records seq (tollgate.WithLogSequence). Its result goes back to the
// sidecar that published the message. An error with code EUnavailable is retried; any other
// error is final for that message (counted, and returned to its publisher).
type handler func(ctx context.Context, seq uint64, body []byte, hdr map[string][]string) (any, error)

// Options tune a Node; zero values take the defaults.
type Options struct {
	// PublishTimeout bounds waiting for a PubAck (default 5s).
	PublishTimeout time.Duration
	// ApplyTimeout bounds waiting, after the PubAck, for the local applier to reach the
	// message (default 5s): a write answers only once this sidecar shows it (read-your-writes).
	ApplyTimeout time.Duration
	Now          func() time.Time
}

// ErrBehindHistory means the stream no longer holds the messages after this store's
// sequence and no snapshot covers them: the sidecar must restart to restore a snapshot.
var ErrBehindHistory = errors.New("fleet: the stream's history no longer reaches this store's sequence; restart to restore the latest snapshot")

// Node is one sidecar's membership of the fleet: it applies the log to the local store in
// order and publishes this sidecar's writes to it. It implements tollgate.StripeLog and
// tollgate.ReadinessCheck.
type Node struct {
	conn  *Conn
	local Local
	opts  Options
	log   *slog.Logger

	handlers map[string]handler

	mu      sync.Mutex
	applied uint64
	results map[uint64]result
	waiters map[uint64][]chan result

	target      atomic.Uint64 // the stream's last sequence when the node first saw it
	targetKnown atomic.Bool
	lag         atomic.Uint64
	fatal       atomic.Pointer[error]
}

// result is what applying one message gave.
type result struct {
	val any
	err error
}

// keepResults bounds the results kept for publishers that have not collected theirs yet.
const keepResults = 4096

var (
	_ tollgate.StripeLog      = (*Node)(nil)
	_ tollgate.ReadinessCheck = (*Node)(nil)
)

// NewNode builds a node over the connection and the local store. Register the Stripe applier
// (SetStripe) before Run.
func NewNode(conn *Conn, local Local, opts Options) *Node {
	if opts.PublishTimeout <= 0 {
		opts.PublishTimeout = 5 * time.Second
	}
	if opts.ApplyTimeout <= 0 {
		opts.ApplyTimeout = 5 * time.Second
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	n := &Node{conn: conn, local: local, opts: opts, log: conn.Log,
		handlers: map[string]handler{}, results: map[uint64]result{}, waiters: map[uint64][]chan result{},
		applied: local.AppliedSequence()}
	n.handlers[KindSubscription] = n.applySubscription
	n.handlers[KindUsage] = n.applyUsage
	n.handlers[KindImport] = n.applyImport
	return n
}

// SetStripe registers the Stripe applier (the sync package's Syncer).
func (n *Node) SetStripe(a tollgate.StripeApplier) {
	n.handlers[KindStripe] = func(ctx context.Context, _ uint64, body []byte, hdr map[string][]string) (any, error) {
		source := ""
		if v := hdr[HeaderSource]; len(v) > 0 {
			source = v[0]
		}
		return a.ApplyStripeEvent(ctx, body, source)
	}
}

// Applied is the last sequence applied locally.
func (n *Node) Applied() uint64 {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.applied
}

// Name implements tollgate.ReadinessCheck.
func (n *Node) Name() string { return "fleet" }

// Ready implements tollgate.ReadinessCheck: connected, and the log applied up to the last
// sequence that existed when the node started.
func (n *Node) Ready() (bool, string) {
	if p := n.fatal.Load(); p != nil {
		return false, (*p).Error()
	}
	applied := n.Applied()
	if !n.conn.Connected() {
		// Once caught up with the log as it was at start, a lost connection does not make the
		// sidecar unready: its checks still answer from local state, and an unready sidecar
		// would take its application pod out of service for a NATS outage. Writes answer 503;
		// tollgate_fleet_connected and its alert say what is wrong.
		if n.targetKnown.Load() && applied >= n.target.Load() {
			return true, fmt.Sprintf("disconnected from NATS (%s): checks answer from local state at sequence %d, writes answer 503", n.conn.Config.URLs, applied)
		}
		return false, fmt.Sprintf("not connected to NATS (%s); applied sequence %d", n.conn.Config.URLs, applied)
	}
	if !n.targetKnown.Load() {
		return false, fmt.Sprintf("connected; reading stream %s", n.conn.Names.Stream)
	}
	if target := n.target.Load(); applied < target {
		return false, fmt.Sprintf("catching up: applied %d of %d (lag %d messages)", applied, target, target-applied)
	}
	return true, fmt.Sprintf("applied sequence %d (lag %d messages)", applied, n.lag.Load())
}

// Run applies the log until ctx ends. It returns ErrBehindHistory when the stream no longer
// reaches the local store's sequence; other trouble (NATS down, a failing store) is retried.
func (n *Node) Run(ctx context.Context) error {
	lagDone := make(chan struct{})
	go func() { defer close(lagDone); n.watchLag(ctx) }()
	defer func() { <-lagDone }()
	for ctx.Err() == nil {
		err := n.consume(ctx)
		if errors.Is(err, ErrBehindHistory) {
			n.fatal.Store(&err)
			n.log.Error("fleet: cannot catch up", "err", err)
			return err
		}
		if err != nil && ctx.Err() == nil {
			n.log.Warn("fleet: consumer stopped; retrying", "err", err)
			n.sleep(ctx, time.Second)
		}
	}
	return nil
}

func (n *Node) sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	case <-n.conn.changed:
	}
}

// consume reads the stream from the applied sequence on with an ordered consumer (it
// recreates itself after a gap or a reconnect) and applies every message in order.
func (n *Node) consume(ctx context.Context) error {
	for !n.conn.Connected() {
		if ctx.Err() != nil {
			return nil
		}
		n.sleep(ctx, time.Second)
	}
	st, err := ensureStream(ctx, n.conn)
	if err != nil {
		return err
	}
	info, err := st.Info(ctx)
	if err != nil {
		return fmt.Errorf("fleet: stream info: %w", err)
	}
	if !n.targetKnown.Load() {
		n.target.Store(info.State.LastSeq)
		n.targetKnown.Store(true)
	}
	from := n.Applied() + 1
	if info.State.Msgs > 0 && from < info.State.FirstSeq {
		return fmt.Errorf("%w (store at %d, stream starts at %d)", ErrBehindHistory, from-1, info.State.FirstSeq)
	}
	cons, err := st.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{
		DeliverPolicy: jetstream.DeliverByStartSequencePolicy, OptStartSeq: from,
	})
	if err != nil {
		return fmt.Errorf("fleet: ordered consumer: %w", err)
	}
	it, err := cons.Messages(jetstream.PullMaxMessages(256))
	if err != nil {
		return fmt.Errorf("fleet: consume: %w", err)
	}
	stop := context.AfterFunc(ctx, it.Stop)
	defer stop()
	defer it.Stop()
	for {
		msg, err := it.Next()
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, jetstream.ErrMsgIteratorClosed) {
				return ctx.Err()
			}
			return fmt.Errorf("fleet: next message: %w", err)
		}
		if err := n.apply(ctx, msg); err != nil {
			return err
		}
	}
}

// apply applies one message exactly once: a sequence at or below the applied one is skipped
// (a redelivery after a reconnect), a gap means lost history.
func (n *Node) apply(ctx context.Context, msg jetstream.Msg) error {
	meta, err := msg.Metadata()
	if err != nil {
		return fmt.Errorf("fleet: message metadata: %w", err)
	}
	seq := meta.Sequence.Stream
	applied := n.Applied()
	switch {
	case seq <= applied:
		return nil
	case seq > applied+1:
		return fmt.Errorf("%w (store at %d, next message %d)", ErrBehindHistory, applied, seq)
	}
	kind := msg.Subject()[len(n.conn.Names.Prefix):]
	h, ok := n.handlers[kind]
	var res result
	if !ok {
		// A newer sidecar's kind: skipping it keeps this one going; it is counted and logged.
		res.err = tollgate.Errorf(tollgate.EUnsupported, "fleet log message %d: unknown kind %q", seq, kind)
	} else {
		res = n.applyWithRetry(ctx, seq, h, msg)
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if res.err != nil {
		n.conn.Obs.FleetApplyError()
		n.log.Error("fleet: message refused", "seq", seq, "kind", kind, "err", res.err)
	}
	if n.local.AppliedSequence() < seq {
		// The message wrote nothing (a duplicate, a refused write): record its sequence alone.
		for {
			err := n.local.RecordSequence(tollgate.WithLogSequence(ctx, seq), seq)
			if err == nil {
				break
			}
			n.conn.Obs.FleetApplyError()
			n.log.Error("fleet: record sequence", "seq", seq, "err", err)
			if n.sleep(ctx, time.Second); ctx.Err() != nil {
				return ctx.Err()
			}
		}
	}
	// Metrics first: a writer woken by done reads them as of its own write.
	n.conn.Obs.FleetApplied(seq)
	if meta.NumPending == 0 {
		n.lag.Store(0)
		n.conn.Obs.FleetLag(0, 0)
	}
	n.done(seq, res)
	return nil
}

// applyWithRetry runs h until it succeeds or fails for good; a store that cannot write
// (EUnavailable) is retried with backoff, since skipping the message would fork this
// sidecar's state from the fleet's.
func (n *Node) applyWithRetry(ctx context.Context, seq uint64, h handler, msg jetstream.Msg) result {
	wait := 100 * time.Millisecond
	for {
		val, err := h(tollgate.WithLogSequence(ctx, seq), seq, msg.Data(), msg.Headers())
		if err == nil || tollgate.ErrorCode(err) != tollgate.EUnavailable || ctx.Err() != nil {
			return result{val, err}
		}
		n.conn.Obs.FleetApplyError()
		n.log.Error("fleet: apply failed; retrying", "seq", seq, "err", err)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return result{nil, ctx.Err()}
		case <-t.C:
		}
		wait = min(2*wait, 5*time.Second)
	}
}

// done publishes a message's result to whoever waits for it.
func (n *Node) done(seq uint64, res result) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.applied = seq
	n.results[seq] = res
	delete(n.results, seq-keepResults)
	for _, ch := range n.waiters[seq] {
		ch <- res
	}
	delete(n.waiters, seq)
}

// wait blocks until the local applier has applied seq and returns that message's result.
func (n *Node) wait(ctx context.Context, seq uint64) (result, error) {
	n.mu.Lock()
	if n.applied >= seq {
		res, ok := n.results[seq]
		n.mu.Unlock()
		if !ok {
			return result{}, nil // applied long ago; its result is gone
		}
		return res, nil
	}
	ch := make(chan result, 1)
	n.waiters[seq] = append(n.waiters[seq], ch)
	n.mu.Unlock()
	t := time.NewTimer(n.opts.ApplyTimeout)
	defer t.Stop()
	select {
	case res := <-ch:
		return res, nil
	case <-ctx.Done():
		return result{}, unavailable("wait for the local apply", ctx.Err())
	case <-t.C:
		return result{}, &tollgate.Error{Code: tollgate.EUnavailable,
			Message: fmt.Sprintf("the fleet log has the write (sequence %d) but this sidecar has not applied it yet; retry", seq)}
	}
}

// watchLag measures the lag once a second while connected: messages in the stream after the
// applied sequence, and the age of the first of them.
func (n *Node) watchLag(ctx context.Context) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if !n.conn.Connected() {
			continue
		}
		st, err := n.conn.JS.Stream(ctx, n.conn.Names.Stream)
		if err != nil {
			continue
		}
		info, err := st.Info(ctx)
		if err != nil {
			continue
		}
		applied := n.Applied()
		if info.State.LastSeq <= applied {
			n.lag.Store(0)
			n.conn.Obs.FleetLag(0, 0)
			continue
		}
		lag := info.State.LastSeq - applied
		n.lag.Store(lag)
		var age time.Duration
		if m, err := st.GetMsg(ctx, applied+1); err == nil {
			age = n.opts.Now().Sub(m.Time)
		}
		n.conn.Obs.FleetLag(lag, age)
	}
}
