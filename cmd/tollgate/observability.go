package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/tollgate-pdp/tollgate"
	"github.com/tollgate-pdp/tollgate/decisionlog"
)

// openDecisionLog opens --decision-log: "" is off, "stdout" is standard output, anything else
// is a file appended to (created 0600). The returned closer flushes and closes it.
func openDecisionLog(cfg serveConfig, stdout io.Writer) (*decisionlog.Log, func() error, error) {
	if cfg.DecisionLog == "" {
		return nil, func() error { return nil }, nil
	}
	w, closeFile := stdout, func() error { return nil }
	if cfg.DecisionLog != "stdout" {
		f, err := os.OpenFile(cfg.DecisionLog, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
		if err != nil {
			return nil, nil, fmt.Errorf("--decision-log: %w", err)
		}
		w, closeFile = f, f.Close
	}
	l, err := decisionlog.New(decisionlog.Options{Writer: w, Masks: cfg.DecisionLogMask, SampleRate: cfg.DecisionLogSample})
	if err != nil {
		_ = closeFile() // the options error is the one to report
		return nil, nil, fmt.Errorf("--decision-log: %w", err)
	}
	return l, func() error {
		err := l.Close()
		if cerr := closeFile(); err == nil {
			err = cerr
		}
		return err
	}, nil
}

// parseSnapshotTime reads --snapshot-time "HH:MM" (UTC) as an offset into the day.
func parseSnapshotTime(s string) (time.Duration, error) {
	t, err := time.Parse("15:04", strings.TrimSpace(s))
	if err != nil {
		return 0, fmt.Errorf("--snapshot-time %q: want HH:MM (UTC)", s)
	}
	return time.Duration(t.Hour())*time.Hour + time.Duration(t.Minute())*time.Minute, nil
}

// nextSnapshot is the first snapshot time strictly after now.
func nextSnapshot(now time.Time, at time.Duration) time.Time {
	now = now.UTC()
	day := time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, time.UTC)
	next := day.Add(at)
	if !next.After(now) {
		next = day.AddDate(0, 0, 1).Add(at)
	}
	return next
}

// runSnapshots takes the daily capacity snapshot at `at` past midnight UTC until ctx ends. A
// day whose time has passed when the server starts is caught up at once (one per day is
// enforced by the store, so restarts never duplicate one).
func runSnapshots(ctx context.Context, at time.Duration, take func(context.Context) error) error {
	now := time.Now().UTC()
	if today := nextSnapshot(now, at).AddDate(0, 0, -1); !today.After(now) {
		_ = take(ctx) // take logs its own failures; the loop goes on
	}
	for {
		t := time.NewTimer(time.Until(nextSnapshot(time.Now(), at)))
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
			_ = take(ctx)
		}
	}
}

// staleAfter is the Freshness threshold: staleness only means something when Stripe sync is
// configured (otherwise nothing ever refreshes the clock, and every answer would turn stale).
func staleAfter(cfg serveConfig, stripeSync bool) time.Duration {
	if !stripeSync {
		return 0
	}
	return cfg.StaleAfter
}

// capacityOf adds the revisions to the metrics' capacity snapshot.
func (a *app) capacityOf(now time.Time) tollgate.CapacitySnapshot {
	c := a.metrics.Capacity(now)
	c.PolicyRevision, c.CatalogRevision = a.policy.Revision(), a.policy.CatalogRevision()
	return c
}

// takeSnapshot stores today's snapshot (idempotent per date) and logs the outcome. The
// figures are refreshed first, so time-dependent access is exact in the stored record.
func (a *app) takeSnapshot(ctx context.Context) error {
	if err := a.store.RefreshAggregates(ctx); err != nil {
		a.log.Error("capacity snapshot: refresh failed", "err", err)
		return err
	}
	snap, created, err := tollgate.TakeSnapshot(ctx, a.store, a.capacityOf(time.Now()))
	if err != nil {
		a.log.Error("capacity snapshot failed", "err", err)
		return err
	}
	a.log.Info("capacity snapshot", "date", snap.Date, "created", created)
	return nil
}
