package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/tollgate-pdp/tollgate"
	"github.com/tollgate-pdp/tollgate/cache"
	"github.com/tollgate-pdp/tollgate/metrics"
	"github.com/tollgate-pdp/tollgate/policy"
)

type snapshotFlags struct {
	addr, adminToken                string
	dataDir, catalogPath, policyDir string
	timeout                         time.Duration
}

func newSnapshotCommand() *cobra.Command {
	var f snapshotFlags
	cmd := &cobra.Command{
		Use:   "snapshot",
		Short: "Store today's capacity snapshot (one per day; a second call keeps the first)",
		Long: `Snapshot stores today's (UTC) capacity snapshot and prints it as JSON.

With --addr it asks the running server (POST /v1/capacity/snapshots, with --admin-token): the
server holds the store's lock, and its snapshot includes decision latency and the process's
peak CPU and memory. Without --addr it opens the store in --data-dir itself (the server must be
stopped), evaluates effective limits with the catalog and policy given, and stores a snapshot
whose decision and process figures are empty (there was no serving process to measure).

The server also takes one every day at --snapshot-time. A day keeps its first snapshot.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := bindEnv(cmd); err != nil {
				return err
			}
			var res snapshotResult
			var err error
			if f.addr != "" {
				res, err = snapshotRemote(cmd.Context(), f)
			} else {
				res, err = snapshotLocal(cmd.Context(), f, cmd.ErrOrStderr())
			}
			if err != nil {
				return err
			}
			enc := json.NewEncoder(cmd.OutOrStdout())
			enc.SetIndent("", "  ")
			return enc.Encode(res)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.addr, "addr", "", "a running server's decision API (host:port); empty: open the store directly")
	fl.StringVar(&f.adminToken, "admin-token", "", "the server's admin token (with --addr)")
	fl.StringVar(&f.dataDir, "data-dir", "./data", "directory of the store file (without --addr)")
	fl.StringVar(&f.catalogPath, "catalog", "", "catalog YAML file (without --addr; default: the built-in four tiers)")
	fl.StringVar(&f.policyDir, "policy-dir", "", "policy directory (without --addr)")
	fl.DurationVar(&f.timeout, "timeout", 30*time.Second, "how long to wait for the server (with --addr)")
	withEnvHelp(cmd)
	return cmd
}

// snapshotResult is what `tollgate snapshot` prints (the shape of POST /v1/capacity/snapshots).
type snapshotResult struct {
	Created  bool                       `json:"created"`
	Snapshot *tollgate.CapacitySnapshot `json:"snapshot"`
}

func snapshotRemote(ctx context.Context, f snapshotFlags) (snapshotResult, error) {
	ctx, cancel := context.WithTimeout(ctx, f.timeout)
	defer cancel()
	base := f.addr
	if !strings.Contains(base, "://") {
		base = "http://" + base
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimRight(base, "/")+"/v1/capacity/snapshots", nil)
	if err != nil {
		return snapshotResult{}, fmt.Errorf("--addr: %w", err)
	}
	req.Header.Set("Authorization", "Bearer "+f.adminToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return snapshotResult{}, fmt.Errorf("snapshot: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return snapshotResult{}, fmt.Errorf("snapshot: read answer: %w", err)
	}
	if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusCreated {
		return snapshotResult{}, fmt.Errorf("snapshot: server answered %d: %s", resp.StatusCode, strings.TrimSpace(string(body)))
	}
	var res snapshotResult
	if err := json.Unmarshal(body, &res); err != nil {
		return snapshotResult{}, fmt.Errorf("snapshot: decode answer: %w", err)
	}
	return res, nil
}

func snapshotLocal(ctx context.Context, f snapshotFlags, stderr io.Writer) (snapshotResult, error) {
	log := newLogger(stderr, 0)
	catalog, err := loadCatalog(f.catalogPath)
	if err != nil {
		return snapshotResult{}, err
	}
	eng, err := policy.New(ctx, policy.Options{Catalog: catalog, PolicyDir: f.policyDir, Logger: log})
	if err != nil {
		return snapshotResult{}, err
	}
	store, err := cache.Open(ctx, cache.Options{Path: storePath(f.dataDir), Logger: log, Limits: eng})
	if err != nil {
		return snapshotResult{}, err
	}
	defer store.Close()
	m := metrics.New(metrics.Options{Vendors: store.Aggregates, StoreSize: store.Size, Logger: log})
	snap := m.Capacity(time.Now())
	// This process served no decisions and its CPU and memory are not the server's.
	snap.Decisions, snap.Process = tollgate.CapacityLatency{}, tollgate.CapacityProcess{}
	snap.PolicyRevision, snap.CatalogRevision = eng.Revision(), eng.CatalogRevision()
	stored, created, err := tollgate.TakeSnapshot(ctx, store, snap)
	if err != nil {
		return snapshotResult{}, err
	}
	return snapshotResult{Created: created, Snapshot: stored}, nil
}
