package main

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/tollgate-pdp/tollgate/fleet"
)

// serveConfig is every `serve` setting; each is a flag and a TOLLGATE_* environment variable.
type serveConfig struct {
	Listen          string
	WebhookListen   string
	OpsListen       string
	DataDir         string
	CatalogPath     string
	PolicyDir       string
	DecisionTTL     time.Duration
	Evaluator       string
	AdminToken      string
	Demo            bool
	LogLevel        string
	BodyLimit       int
	ShutdownTimeout time.Duration
	AllowRemote     bool
	Stripe          stripeConfig
	Fleet           fleet.Config

	SnapshotTime      string
	StaleAfter        time.Duration
	WhenStale         string
	DecisionLog       string
	DecisionLogMask   []string
	DecisionLogSample float64
	UsageFlush        time.Duration
}

func newServeCommand() *cobra.Command {
	var cfg serveConfig
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Serve decisions, webhooks and metrics",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := bindEnv(cmd); err != nil {
				return err
			}
			level, err := parseLevel(cfg.LogLevel)
			if err != nil {
				return err
			}
			logger := newLogger(cmd.ErrOrStderr(), level)
			m, err := newMain(cmd.Context(), cfg, logger)
			if err != nil {
				logger.Error("start failed", "error", err.Error())
				return err
			}
			return m.Run(cmd.Context())
		},
	}
	f := cmd.Flags()
	f.StringVar(&cfg.Listen, "listen", "127.0.0.1:8181", "decision API address (loopback only unless --allow-remote)")
	f.StringVar(&cfg.WebhookListen, "webhook-listen", ":8182", "Stripe webhook listener address")
	f.StringVar(&cfg.OpsListen, "ops-listen", ":9181", "metrics and health listener address")
	f.StringVar(&cfg.DataDir, "data-dir", "./data", "directory of the store file (tollgate.db)")
	f.StringVar(&cfg.CatalogPath, "catalog", "", "catalog YAML file (default: the built-in four tiers)")
	f.StringVar(&cfg.PolicyDir, "policy-dir", "", "directory of .rego files that add to or replace the embedded policy; watched")
	f.DurationVar(&cfg.DecisionTTL, "decision-cache-ttl", time.Second, "how long a cached decision may be reused while its facts are unchanged (0 disables the cache)")
	f.StringVar(&cfg.Evaluator, "evaluator", "plan", "how decisions are evaluated: plan (the policy's compiled plan, OPA's evaluator for a policy it does not cover) or topdown (OPA's evaluator always)")
	f.StringVar(&cfg.AdminToken, "admin-token", "", "bearer token for admin writes (PUT /v1/vendors/{id}, PATCH .../overrides); empty refuses them")
	f.BoolVar(&cfg.Demo, "demo", false, "seed the demo data set (vendor ids demo-*) before serving")
	f.StringVar(&cfg.LogLevel, "log-level", "info", "debug, info, warn or error")
	f.IntVar(&cfg.BodyLimit, "body-limit", 1<<20, "largest accepted request body on the decision API, in bytes")
	f.DurationVar(&cfg.ShutdownTimeout, "shutdown-timeout", 10*time.Second, "how long SIGTERM waits for in-flight requests before closing the store")
	f.BoolVar(&cfg.AllowRemote, "allow-remote", false, "allow --listen on a non-loopback address (requires --admin-token)")
	f.StringVar(&cfg.SnapshotTime, "snapshot-time", "00:00", "time of day (HH:MM, UTC) of the daily capacity snapshot")
	f.DurationVar(&cfg.StaleAfter, "stale-after", time.Hour, "with Stripe sync configured: decisions are stale when no Stripe event or reconciliation was applied for this long")
	f.StringVar(&cfg.WhenStale, "when-stale", "*=evaluate", "what a stale sidecar answers, per action: allow, deny or evaluate (e.g. order.create=deny,feature.use=allow,*=evaluate)")
	f.StringVar(&cfg.DecisionLog, "decision-log", "", "write a JSON line per decision to stdout or to this file (appended); empty: off")
	f.StringSliceVar(&cfg.DecisionLogMask, "decision-log-mask", nil, "JSON pointers into a decision log entry whose values are replaced by \"***\" (e.g. /request/feature); repeatable or comma separated")
	f.Float64Var(&cfg.DecisionLogSample, "decision-log-sample", 1, "share (0..1) of allowed decisions logged; denials are always logged")
	f.DurationVar(&cfg.UsageFlush, "usage-flush-interval", time.Second, "how often usage facts learnt from checks (count fields, features used) are written")
	// Replaced by the memory limit (gcpolicy.go); still accepted so existing command lines start.
	f.Int("gc-headroom-mib", 0, "ignored")
	_ = f.MarkDeprecated("gc-headroom-mib", "ignored: the collector is paced by the memory limit (GOMEMLIMIT, or 90% of the cgroup's limit); see docs/configuration.md")
	cfg.Stripe.addFlags(f, true)
	addFleetFlags(f, &cfg.Fleet)
	withEnvHelp(cmd)
	return cmd
}

func parseLevel(s string) (slog.Level, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(s)); err != nil {
		return 0, fmt.Errorf("--log-level: %w", err)
	}
	return l, nil
}

// checkLoopback refuses a non-loopback decision listener: the decision API has no
// authentication of its own, so it must not be reachable from outside the pod by accident.
func checkLoopback(addr string, allowRemote bool, adminToken string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("--listen %q: %w", addr, err)
	}
	if host == "localhost" {
		return nil
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
		return nil
	}
	if !allowRemote {
		return fmt.Errorf("--listen %q is not a loopback address; the decision API is meant for the pod only (pass --allow-remote with --admin-token to override)", addr)
	}
	if adminToken == "" {
		return errors.New("--allow-remote requires --admin-token")
	}
	return nil
}

// ensureDataDir creates the data directory, private to the process user.
func ensureDataDir(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("--data-dir: %w", err)
	}
	return nil
}
