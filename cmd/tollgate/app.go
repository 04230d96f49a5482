package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"time"

	"github.com/gofiber/fiber/v2"
	"golang.org/x/sync/errgroup"

	"github.com/tollgate-pdp/tollgate"
	"github.com/tollgate-pdp/tollgate/api"
	"github.com/tollgate-pdp/tollgate/cache"
	"github.com/tollgate-pdp/tollgate/metrics"
	"github.com/tollgate-pdp/tollgate/policy"
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
	a := &app{cfg: cfg, log: log}
	a.store, err = cache.Open(ctx, cache.Options{Path: storePath(cfg.DataDir), Logger: log})
	if err != nil {
		return nil, err
	}
	a.metrics = metrics.New(metrics.Options{
		// The engine is built after the metrics (it reports to them); scrapes come later.
		CacheStats: func() (uint64, uint64) { return a.policy.CacheStats() },
		StoreSize:  a.store.Size,
		Logger:     log,
	})
	a.policy, err = policy.New(ctx, policy.Options{
		Catalog: catalog, PolicyDir: cfg.PolicyDir, CacheTTL: cfg.DecisionTTL,
		Observer: a.metrics, Logger: log,
	})
	if err != nil {
		a.store.Close()
		return nil, err
	}
	if cfg.Demo {
		if err := a.store.Import(ctx, demoRecords(time.Now())); err != nil {
			a.store.Close()
			return nil, fmt.Errorf("seed demo data: %w", err)
		}
		log.Warn("DEMO DATA seeded: vendors demo-* are not real; do not use --demo in production")
	}
	checker := tollgate.NewChecker(a.store, a.policy, nil)
	a.server, err = api.New(api.Config{
		Checker: checker, Store: a.store, Policy: a.policy, Catalog: a.policy.Catalog,
		Observer: a.metrics, Readiness: []tollgate.ReadinessCheck{a.store, a.policy},
		Metrics: a.metrics.Handler(), AdminToken: cfg.AdminToken, BodyLimit: cfg.BodyLimit, Logger: log,
	})
	if err != nil {
		a.store.Close()
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
			a.store.Close()
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
	g.Go(func() error { return a.policy.Watch(gctx) })
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
	errs = append(errs, a.store.Close())
	err := errors.Join(errs...)
	if err == nil {
		a.log.Info("stopped cleanly")
	}
	return err
}
