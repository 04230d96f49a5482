package fleet

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tollgate-pdp/tollgate"
)

// Conn is a sidecar's connection to the fleet's NATS servers. It reconnects forever with
// backoff; Connected says whether it is up right now. The usage ledger (fleet/usage*.go) and
// the log share it.
type Conn struct {
	Config Config
	Names  Names
	NC     *nats.Conn
	JS     jetstream.JetStream
	Obs    tollgate.FleetObserver
	Log    *slog.Logger

	up atomic.Bool
	// closing silences the callbacks NATS runs asynchronously after Close: the program (or a
	// CLI command) may have moved on and its logger with it.
	closing atomic.Bool
	// changed is signalled (non-blocking) on every connect and disconnect.
	changed chan struct{}
}

// Connect dials the servers. It does not wait for them: when none answers, it keeps trying in
// the background and the sidecar starts unready (and serves checks from its store).
func Connect(ctx context.Context, cfg Config, obs tollgate.FleetObserver, log *slog.Logger) (*Conn, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if obs == nil {
		obs = tollgate.NopFleetObserver{}
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	c := &Conn{Config: cfg, Names: NamesOf(cfg.Name), Obs: obs, Log: log, changed: make(chan struct{}, 1)}
	opts := []nats.Option{
		nats.Name("tollgate"),
		nats.RetryOnFailedConnect(true),
		nats.MaxReconnects(-1),
		// No reconnect buffer: a write tried while NATS is away fails at once instead of being
		// sent after reconnecting, when its caller was already answered 503.
		nats.ReconnectBufSize(-1),
		nats.ReconnectWait(250 * time.Millisecond),
		nats.ReconnectJitter(250*time.Millisecond, time.Second),
		nats.CustomReconnectDelay(backoff),
		nats.Timeout(2 * time.Second),
		nats.PingInterval(5 * time.Second),
		nats.MaxPingsOutstanding(2),
		nats.ConnectHandler(func(nc *nats.Conn) { c.setUp(nc, true, "connected") }),
		nats.ReconnectHandler(func(nc *nats.Conn) { c.setUp(nc, true, "reconnected") }),
		nats.DisconnectErrHandler(func(nc *nats.Conn, err error) { c.setUp(nc, false, fmt.Sprint("disconnected: ", err)) }),
		nats.ClosedHandler(func(nc *nats.Conn) { c.setUp(nc, false, "closed") }),
	}
	if cfg.Creds != "" {
		opts = append(opts, nats.UserCredentials(cfg.Creds))
	}
	if cfg.CA != "" {
		opts = append(opts, nats.RootCAs(cfg.CA))
	}
	if cfg.Cert != "" {
		opts = append(opts, nats.ClientCert(cfg.Cert, cfg.Key))
	}
	nc, err := nats.Connect(strings.Join(cfg.servers(), ","), opts...)
	if err != nil {
		return nil, fmt.Errorf("fleet: connect to %s: %w", cfg.URLs, err)
	}
	c.NC = nc
	if nc.IsConnected() {
		c.setUp(nc, true, "connected")
	}
	if c.JS, err = jetstream.New(nc); err != nil {
		nc.Close()
		return nil, fmt.Errorf("fleet: jetstream: %w", err)
	}
	return c, nil
}

// backoff doubles from 250 ms to 5 s: a restarting NATS node is found within a second or two,
// a long outage costs a connection attempt every few seconds.
func backoff(attempts int) time.Duration {
	d := 250 * time.Millisecond
	for i := 1; i < attempts && d < 5*time.Second; i++ {
		d *= 2
	}
	return min(d, 5*time.Second)
}

// setUp records a connection state change; the callbacks may run before Connect has set c.NC,
// so they pass their own connection.
func (c *Conn) setUp(nc *nats.Conn, up bool, what string) {
	if c.closing.Load() {
		c.up.Store(false)
		return
	}
	if c.up.Swap(up) != up {
		if up {
			c.Log.Info("fleet "+what, "server", nc.ConnectedUrlRedacted())
		} else {
			c.Log.Warn("fleet " + what)
		}
	}
	c.Obs.FleetConnected(up)
	select {
	case c.changed <- struct{}{}:
	default:
	}
}

// Connected reports whether the connection is up.
func (c *Conn) Connected() bool { return c.up.Load() && c.NC.IsConnected() }

// Close drains nothing (every write waited for its PubAck) and closes the connection.
func (c *Conn) Close() {
	c.closing.Store(true)
	c.Obs.FleetConnected(false)
	c.NC.Close()
}

// unavailable is the error of a write the fleet could not take: the caller answers 503 and the
// client (or Stripe) retries.
func unavailable(what string, err error) error {
	return &tollgate.Error{Code: tollgate.EUnavailable, Message: what + ": the fleet log cannot be reached; retry", Err: err}
}
