package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/tollgate-pdp/tollgate"
	"github.com/tollgate-pdp/tollgate/cache"
	"github.com/tollgate-pdp/tollgate/fleet"
)

// addFleetFlags declares the fleet mode flags of serve; without --nats-url the sidecar runs in
// single mode exactly as before.
func addFleetFlags(f *pflag.FlagSet, c *fleet.Config) {
	f.StringVar(&c.URLs, "nats-url", "", "fleet mode: NATS server URLs, comma separated (empty: single mode)")
	f.StringVar(&c.Creds, "nats-creds", "", "NATS credentials file (JWT and nkey seed)")
	f.StringVar(&c.CA, "nats-ca", "", "PEM file of the CA that signed the NATS servers' certificates")
	f.StringVar(&c.Cert, "nats-cert", "", "PEM client certificate for NATS (with --nats-key)")
	f.StringVar(&c.Key, "nats-key", "", "PEM private key of --nats-cert")
	f.StringVar(&c.Name, "fleet", fleet.DefaultName, "fleet name: prefixes every stream, KV bucket, object store and subject, so several applications can share one NATS")
	f.IntVar(&c.Replicas, "fleet-replicas", fleet.DefaultReplicas, "replicas of the fleet's stream and buckets (3 in production; 1 for a single NATS server)")
	f.DurationVar(&c.History, "fleet-history", fleet.DefaultHistory, "how long the fleet's stream keeps events (at least 4 x --fleet-snapshot-interval)")
	f.DurationVar(&c.SnapshotEvery, "fleet-snapshot-interval", fleet.DefaultSnapshotEvery, "how often the fleet's latest state is stored for sidecars that join")
}

// restoreWait bounds how long a starting sidecar waits for NATS to decide whether it must start
// from the fleet's snapshot; past it the sidecar starts on its local store (unready until it
// has caught up, or exiting to be restarted when the stream no longer reaches it).
const restoreWait = 15 * time.Second

// openFleetStore opens the store; in fleet mode, a new pod's empty store (or one the stream's
// history no longer reaches) is first replaced by the fleet's latest snapshot.
func openFleetStore(ctx context.Context, conn *fleet.Conn, opts cache.Options, log *slog.Logger) (*cache.Store, error) {
	if conn == nil {
		return cache.Open(ctx, opts)
	}
	// The log is the durable copy: the local store skips per-commit fsyncs (see
	// cache.Options.NoSync), and a file a machine crash left unreadable is set aside and
	// rebuilt from the fleet's snapshot.
	opts.NoSync = true
	store, err := cache.Open(ctx, opts)
	if tollgate.ErrorCode(err) == tollgate.EUnsupported {
		aside := opts.Path + ".corrupt-" + time.Now().UTC().Format("20060102T150405")
		log.Error("fleet: the local store is unreadable; setting it aside and starting from the fleet", "err", err, "moved_to", aside)
		if rerr := os.Rename(opts.Path, aside); rerr != nil {
			return nil, fmt.Errorf("%w (and setting it aside failed: %w)", err, rerr)
		}
		store, err = cache.Open(ctx, opts)
	}
	if err != nil {
		return nil, err
	}
	wctx, cancel := context.WithTimeout(ctx, restoreWait)
	defer cancel()
	need, err := conn.NeedsRestore(wctx, store.AppliedSequence(), store.VendorCount() == 0)
	if err != nil {
		log.Warn("fleet: cannot decide on a snapshot restore; starting from the local store", "err", err)
		return store, nil
	}
	if !need {
		return store, nil
	}
	if err := store.Close(); err != nil {
		return nil, err
	}
	start := time.Now()
	info, err := conn.RestoreSnapshot(ctx, opts.Path)
	if err != nil {
		return nil, fmt.Errorf("fleet: restore snapshot: %w", err)
	}
	store, err = cache.Open(ctx, opts)
	if err != nil {
		return nil, err
	}
	log.Info("fleet: started from the fleet's snapshot", "sequence", store.AppliedSequence(),
		"snapshot_sequence", info.Sequence, "bytes", info.Size, "vendors", store.VendorCount(),
		"seconds", time.Since(start).Seconds())
	return store, nil
}

// importToFleet publishes an import into the fleet's log (one message: all rows or none, on
// every sidecar) instead of writing a local store.
func importToFleet(cmd *cobra.Command, cfg fleet.Config, records []tollgate.ImportRecord, skipped int) error {
	log := newLogger(cmd.ErrOrStderr(), 0)
	conn, err := fleet.Connect(cmd.Context(), cfg, nil, log)
	if err != nil {
		return err
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(cmd.Context(), restoreWait)
	defer cancel()
	seq, err := fleet.PublishImport(ctx, conn, records)
	if err != nil {
		return err
	}
	fmt.Fprintf(cmd.OutOrStdout(), "published %d subscription(s) to fleet %s at log sequence %d (%d invalid line(s) skipped)\n",
		len(records), cfg.Name, seq, skipped)
	return nil
}
