package main

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sort"
	"time"

	"github.com/spf13/cobra"

	"github.com/tollgate-pdp/tollgate/cache"
	tgsync "github.com/tollgate-pdp/tollgate/sync"
)

// oneShotFlags are what backfill and replay need: the store, the catalog and Stripe.
type oneShotFlags struct {
	dataDir, catalogPath string
	stripe               stripeConfig
}

func (o *oneShotFlags) add(cmd *cobra.Command) {
	cmd.Flags().StringVar(&o.dataDir, "data-dir", "./data", "directory of the store file")
	cmd.Flags().StringVar(&o.catalogPath, "catalog", "", "catalog YAML file (default: the built-in catalog)")
	o.stripe.addFlags(cmd.Flags(), false)
	withEnvHelp(cmd)
}

func newBackfillCommand() *cobra.Command {
	var o oneShotFlags
	cmd := &cobra.Command{
		Use:   "backfill",
		Short: "List every Stripe subscription (status all) once and apply it as the newest truth",
		Long: `Backfill lists all subscriptions of the Stripe account through the API (every status,
prices expanded) and applies each as the newest truth, then prints a summary: vendors created,
updated, and subscriptions skipped with their reasons. It is also the recovery path for a lost
store: start from an empty --data-dir and backfill. Stop the serving process first (the store is
locked while it runs), or let serve's own reconciliation (--stripe-api-key) do the same.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := bindEnv(cmd); err != nil {
				return err
			}
			if o.stripe.APIKey == "" {
				return errors.New("--stripe-api-key (or TOLLGATE_STRIPE_API_KEY) is required")
			}
			return o.run(cmd, func(s *tgsync.Syncer, out io.Writer) error {
				start := time.Now()
				last := time.Time{}
				sum, err := s.Backfill(cmd.Context(), func(done int) {
					if time.Since(last) > 200*time.Millisecond {
						fmt.Fprintf(cmd.ErrOrStderr(), "\rbackfill: %d subscriptions", done)
						last = time.Now()
					}
				})
				fmt.Fprintln(cmd.ErrOrStderr())
				if err != nil {
					return fmt.Errorf("backfill: %w", err)
				}
				fmt.Fprintf(out, "backfill done in %s: %d vendor(s) created, %d updated, %d skipped\n",
					time.Since(start).Round(time.Millisecond), sum.Created, sum.Updated, total(sum.Skipped))
				printCounts(out, "  skipped: ", sum.Skipped)
				return nil
			})
		},
	}
	o.add(cmd)
	return cmd
}

func newReplayCommand() *cobra.Command {
	var o oneShotFlags
	cmd := &cobra.Command{
		Use:   "replay FILE",
		Short: "Apply Stripe events saved as JSON lines (from webhooks or the Stripe CLI)",
		Long: `Replay applies Stripe events, one JSON event per line (as saved from webhooks or printed
by 'stripe listen --print-json'; '-' reads standard input), with the same idempotency and ordering
rules as webhooks: an event already recorded changes nothing, and an event older than the state
it would overwrite does not undo it. Stop the serving process first.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := bindEnv(cmd); err != nil {
				return err
			}
			in := cmd.InOrStdin()
			if args[0] != "-" {
				f, err := os.Open(args[0])
				if err != nil {
					return fmt.Errorf("replay: %w", err)
				}
				defer f.Close()
				in = f
			}
			return o.run(cmd, func(s *tgsync.Syncer, out io.Writer) error {
				sum, err := s.Replay(cmd.Context(), in)
				fmt.Fprintf(out, "replayed %d line(s)\n", sum.Lines)
				printCounts(out, "  ", sum.Outcomes)
				if err != nil {
					return fmt.Errorf("replay: %w", err)
				}
				return nil
			})
		},
	}
	o.add(cmd)
	return cmd
}

// run opens the store and the sync, calls fn, and closes both.
func (o *oneShotFlags) run(cmd *cobra.Command, fn func(*tgsync.Syncer, io.Writer) error) error {
	log := newLogger(cmd.ErrOrStderr(), slog.LevelWarn) // the summary is the output
	catalog, err := loadCatalog(o.catalogPath)
	if err != nil {
		return err
	}
	if err := ensureDataDir(o.dataDir); err != nil {
		return err
	}
	store, err := cache.Open(cmd.Context(), cache.Options{Path: storePath(o.dataDir), Logger: log})
	if err != nil {
		return err
	}
	defer store.Close()
	s, err := o.stripe.newSyncer(cmd.Context(), store, catalog, nil, nil, nil, log)
	if err != nil {
		return err
	}
	return fn(s, cmd.OutOrStdout())
}

func total(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}

// printCounts prints "prefix key: n" lines in key order.
func printCounts(w io.Writer, prefix string, m map[string]int) {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Fprintf(w, "%s%s: %d\n", prefix, k, m[k])
	}
}
