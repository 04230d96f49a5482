package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"runtime/debug"
	"time"

	"github.com/gofiber/fiber/v2"
	"golang.org/x/sync/errgroup"

	"github.com/tollgate-pdp/tollgate"
	"github.com/tollgate-pdp/tollgate/api"
	"github.com/tollgate-pdp/tollgate/cache"
	"github.com/tollgate-pdp/tollgate/decisionlog"
	"github.com/tollgate-pdp/tollgate/fleet"
	"github.com/tollgate-pdp/tollgate/metrics"
	"github.com/tollgate-pdp/tollgate/policy"
	tgsync "github.com/tollgate-pdp/tollgate/sync"
)

// app is the wired sidecar: it owns the store, the policy engine, the metrics and the three
// listeners, and closes them in order.
type app struct {
	cfg     serveConfig
	log     *slog.Logger
	store   *cache.Store
	policy  *policy.Engine
	metrics *metrics.Metrics
	server  *api.Server
	syncer  *tgsync.Syncer

	// Fleet mode (--nats-url): conn and node are nil in single mode. writes is the store the
	// decision API writes through: the local store, or the fleet's (every write via the log).
	conn   *fleet.Conn
	node   *fleet.Node
	usage  *fleet.Usage // the fleet-wide order counters
	writes tollgate.Store

	// freshness is the shared "last applied from Stripe" clock: the Stripe wiring calls
	// freshness.Applied(at) (next to Observer.StripeApplied) and the Checker asks it.
	freshness   *tollgate.Freshness
	decisionLog *decisionlog.Log
	closeLog    func() error
	snapshotAt  time.Duration
	// refresh asks for a re-evaluation of every vendor's effective limits (policy or catalog
	// changed); one pending request is enough.
	refresh chan struct{}
}

// newMain opens the store, compiles the policy, seeds demo data if asked and builds the
// listeners. Nothing listens yet.
func newMain(ctx context.Context, cfg serveConfig, log *slog.Logger) (*app, error) {
	if err := checkLoopback(cfg.Listen, cfg.AllowRemote, cfg.AdminToken); err != nil {
		return nil, err
	}
	catalog, err := loadCatalog(cfg.CatalogPath)
	if err != nil {
		return nil, err
	}
	if err := ensureDataDir(cfg.DataDir); err != nil {
		return nil, err
	}
	whenStale, err := tollgate.ParseWhenStale(cfg.WhenStale)
	if err != nil {
		return nil, fmt.Errorf("--when-stale: %w", err)
	}
	a := &app{cfg: cfg, log: log, refresh: make(chan struct{}, 1)}
	if a.snapshotAt, err = parseSnapshotTime(cfg.SnapshotTime); err != nil {
		return nil, err
	}
	// Staleness only means something when Stripe feeds the state; the sync moves the clock
	// through a FreshnessObserver.
	a.freshness = tollgate.NewFreshness(staleAfter(cfg, cfg.Stripe.enabled()), time.Now())
	a.metrics = metrics.New(metrics.Options{
		// The engine and store are built after the metrics (they report to them); scrapes
		// come later.
		CacheStats: func() (uint64, uint64) { return a.policy.CacheStats() },
		StoreSize:  func() int64 { return a.store.Size() },
		Vendors:    func() metrics.VendorAggregates { return a.store.Aggregates() },
		DecisionLogDropped: func() uint64 {
			if a.decisionLog == nil {
				return 0
			}
			return a.decisionLog.Dropped()
		},
		Logger: log,
		Fleet:  cfg.Fleet.Enabled(),
	})
	if cfg.Fleet.Enabled() {
		if a.conn, err = fleet.Connect(ctx, cfg.Fleet, a.metrics, log); err != nil {
			return nil, err
		}
	}
	// The policy comes first: the store evaluates effective limits with it (capacity).
	a.policy, err = policy.New(ctx, policy.Options{
		Catalog: catalog, PolicyDir: cfg.PolicyDir, CacheTTL: cfg.DecisionTTL, Evaluator: cfg.Evaluator,
		Observer: a.metrics, Logger: log,
		OnChange: func(string) {
			select {
			case a.refresh <- struct{}{}:
			default:
			}
		},
	})
	if err != nil {
		a.closeConn()
		return nil, err
	}
	setGCPercent(os.Getenv, log)
	setMemoryLimit(ctx, log)
	err = withGCPaused(func() (err error) {
		a.store, err = openFleetStore(ctx, a.conn, cache.Options{Path: storePath(cfg.DataDir), Logger: log,
			Limits: a.policy, FlushInterval: cfg.UsageFlush}, log)
		return err
	})
	if err != nil {
		a.closeConn()
		return nil, err
	}
	a.writes = a.store
	var fleetLog tollgate.StripeLog
	if a.conn != nil {
		a.node = fleet.NewNode(a.conn, a.store, fleet.Options{})
		a.writes, fleetLog = a.node.Store(), a.node
		host, _ := os.Hostname()
		if a.usage, err = fleet.NewUsage(a.conn.JS, fleet.UsageConfig{KVPrefix: a.conn.Names.KVPrefix,
			Replicas: cfg.Fleet.Replicas, Local: a.store, Owner: host, Observer: a.metrics, Logger: log}); err != nil {
			a.store.Close()
			a.closeConn()
			return nil, err
		}
	}
	if a.decisionLog, a.closeLog, err = openDecisionLog(cfg, os.Stdout); err != nil {
		a.store.Close()
		a.closeConn()
		return nil, err
	}
	if cfg.Demo && a.node == nil {
		if err := a.store.Import(ctx, demoRecords(time.Now())); err != nil {
			a.store.Close()
			return nil, fmt.Errorf("seed demo data: %w", err)
		}
		log.Warn("DEMO DATA seeded: vendors demo-* are not real; do not use --demo in production")
	}
	a.syncer, err = cfg.Stripe.newSyncer(ctx, a.store, catalog, func(c *tollgate.Catalog) {
		// Stripe ids learnt from product/price events; the catalog's rules are unchanged.
		if err := a.policy.SetCatalog(context.Background(), c); err != nil {
			log.Error("apply catalog from Stripe", "err", err)
		}
	}, tollgate.FreshnessObserver{Observer: a.metrics, Freshness: a.freshness}, fleetLog, log)
	if err != nil {
		_ = a.closeLog() // the start's own error is the one to report
		a.store.Close()
		a.closeConn()
		return nil, err
	}
	readiness := []tollgate.ReadinessCheck{a.store, a.policy, a.syncer}
	if a.node != nil {
		a.node.SetStripe(a.syncer)
		readiness = append(readiness, a.node, a.usage)
	}
	checker := tollgate.NewChecker(a.writes, a.policy, nil)
	if a.usage != nil {
		checker.Ledger = a.usage
	}
	checker.Freshness, checker.WhenStale, checker.Noter = a.freshness, whenStale, a.store
	if a.decisionLog != nil {
		checker.Logger = a.decisionLog
	}
	a.server, err = api.New(api.Config{
		Checker: checker, Store: a.writes, Policy: a.policy, Catalog: a.policy.Catalog,
		Observer: a.metrics, Readiness: readiness,
		Webhooks: a.syncer, Billing: a.syncer,
		Metrics: a.metrics.Handler(), AdminToken: cfg.AdminToken, BodyLimit: cfg.BodyLimit, Logger: log,
		Capacity: a.capacityOf, Snapshots: a.store, Backup: a.store.Backup,
		DryRun: func(ctx context.Context, cand *tollgate.Catalog, limit int) (*tollgate.DryRunResult, error) {
			return a.policy.DryRun(ctx, cand, a.store.ForEachVendor, time.Now(), limit)
		},
	})
	if err != nil {
		_ = a.closeLog() // the start's own error is the one to report
		a.store.Close()
		a.closeConn()
		return nil, err
	}
	return a, nil
}

// Run serves until ctx is cancelled (SIGTERM/SIGINT) or a listener fails, then shuts down:
// stop accepting, finish in-flight requests within --shutdown-timeout, close the store.
func (a *app) Run(ctx context.Context) error {
	listeners := []struct {
		name, addr string
		app        *fiber.App
	}{
		{"decision", a.cfg.Listen, a.server.Decision},
		{"webhook", a.cfg.WebhookListen, a.server.Webhook},
		{"ops", a.cfg.OpsListen, a.server.Ops},
	}
	lns := make([]net.Listener, 0, len(listeners))
	for _, l := range listeners {
		ln, err := net.Listen("tcp", l.addr)
		if err != nil {
			for _, open := range lns {
				open.Close()
			}
			_ = a.closeLog() // the start's own error is the one to report
			a.store.Close()
			a.closeConn()
			return fmt.Errorf("%s listener %s: %w", l.name, l.addr, err)
		}
		lns = append(lns, ln)
	}
	g, gctx := errgroup.WithContext(ctx)
	for i, l := range listeners {
		ln, fapp, name := lns[i], l.app, l.name
		g.Go(func() error {
			if err := fapp.Listener(ln); err != nil {
				return fmt.Errorf("%s listener: %w", name, err)
			}
			return nil
		})
		a.log.Info("listening", "listener", name, "addr", ln.Addr().String())
	}
	if a.node != nil {
		// A node whose store the stream's history no longer reaches ends the process: the
		// restart restores the fleet's snapshot.
		g.Go(func() error { return a.node.Run(gctx) })
		g.Go(func() error { return a.node.RunSnapshots(gctx) })
		g.Go(func() error { return a.usage.Watch(gctx, a.store) })
		if a.cfg.Demo {
			g.Go(func() error { a.seedFleetDemo(gctx); return nil })
		}
	}
	g.Go(func() error { return a.policy.Watch(gctx) })
	g.Go(func() error {
		a.syncer.Run(gctx, a.cfg.Stripe.ReconcileInterval, a.cfg.Stripe.PollInterval)
		return nil
	})
	g.Go(func() error { return a.metrics.RunSampler(gctx, 5*time.Second) })
	g.Go(func() error {
		releaseAfterBuild(gctx, a.store.AggregatesBuilt(), a.store.VendorCount, debug.FreeOSMemory)
		return nil
	})
	g.Go(func() error { return runSnapshots(gctx, a.snapshotAt, a.takeSnapshot) })
	g.Go(func() error {
		// Hourly as well: access can end by time alone (a cancelled subscription reaching its
		// period end) without any change to the vendor. A refresh is one walk of the vendors
		// with memoised limits: ~0.2 s at 100,000 (BENCHMARKS.md).
		hourly := time.NewTicker(time.Hour)
		defer hourly.Stop()
		for {
			select {
			case <-gctx.Done():
				return nil
			case <-hourly.C:
				if err := a.store.RefreshAggregates(gctx); err != nil && gctx.Err() == nil {
					a.log.Error("capacity aggregates refresh failed", "err", err)
				}
			case <-a.refresh:
				if err := a.store.RefreshAggregates(gctx); err != nil && gctx.Err() == nil {
					a.log.Error("capacity aggregates refresh failed", "err", err)
				}
			}
		}
	})
	g.Go(func() error {
		<-gctx.Done()
		return a.shutdown()
	})
	err := g.Wait()
	if errors.Is(err, context.Canceled) {
		err = nil
	}
	return err
}

func (a *app) shutdown() error {
	a.log.Info("shutting down", "timeout", a.cfg.ShutdownTimeout.String())
	ctx, cancel := context.WithTimeout(context.Background(), a.cfg.ShutdownTimeout)
	defer cancel()
	errs := []error{a.server.Shutdown(ctx)}
	errs = append(errs, a.closeLog(), a.store.Close())
	a.closeConn()
	err := errors.Join(errs...)
	if err == nil {
		a.log.Info("stopped cleanly")
	}
	return err
}

func (a *app) closeConn() {
	if a.conn != nil {
		a.conn.Close()
	}
}

// seedFleetDemo seeds the demo data through the fleet log once this sidecar is ready, unless
// the fleet has it already (another sidecar seeded it).
func (a *app) seedFleetDemo(ctx context.Context) {
	for ctx.Err() == nil {
		if ok, _ := a.node.Ready(); ok {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	recs := demoRecords(time.Now())
	if _, ok := a.store.Vendor(recs[0].Subscription.VendorID); ok || ctx.Err() != nil {
		return
	}
	if err := a.writes.Import(ctx, recs); err != nil {
		a.log.Error("seed demo data through the fleet", "err", err)
		return
	}
	a.log.Warn("DEMO DATA seeded through the fleet: vendors demo-* are not real; do not use --demo in production")
}
