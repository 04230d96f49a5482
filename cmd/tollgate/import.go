package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/tollgate-pdp/tollgate"
	"github.com/tollgate-pdp/tollgate/cache"
	"github.com/tollgate-pdp/tollgate/fleet"
)

// maxImportLine bounds one JSON line; a subscription row is far smaller.
const maxImportLine = 1 << 20

// importFlags are the flags of `tollgate import`.
type importFlags struct {
	dataDir, catalogPath, databaseURL, catalogOut string
	skipInvalid, dryRun                           bool
	fleet                                         fleet.Config // with --nats-url: publish FILE's rows into the fleet's log
}

func newImportCommand() *cobra.Command {
	var f importFlags
	cmd := &cobra.Command{
		Use:   "import [FILE | --database-url URL]",
		Short: "Import subscriptions from JSON lines, or straight from the application's database",
		Long: `Import brings existing subscription state into the store, in one transaction: all rows
land or none. Stop the serving process first (the store is locked while it runs).

With FILE it reads JSON lines, one vendor_subscriptions row per line, with the model's column
names (vendor_id, tier, status, period_start, orders_this_period, custom_orders_limit,
stripe_customer_id, ...), as a database dumps them: booleans as true/false or 0/1, timestamps
as RFC 3339 or YYYY-MM-DD HH:MM:SS[.ffffff][+HH:MM].

With --database-url (sqlite:///path/app.db or postgres://...) it reads the model's tables
directly, read-only and in one snapshot: subscription_tiers and addon_products become the
catalog (written by --catalog-out, for serve --catalog), vendor_subscriptions with
vendor_addons the subscriptions, billing_history the billing history, the processed
stripe_webhook_events the event log (so Stripe redeliveries are duplicates) and
capacity_snapshots the snapshots. See docs/migration.md.

Each row's orders_this_period becomes the count of the vendor's current billing period (set,
not added: importing twice gives the same store). Every row is checked first; if any is
invalid nothing is imported and every problem is reported (naming the line, or the table, row
id and column), unless --skip-invalid imports the valid rows only. --dry-run prints what would
be imported and every problem, and writes nothing.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := bindEnv(cmd); err != nil {
				return err
			}
			switch {
			case f.databaseURL != "" && len(args) == 1:
				return errors.New("give either FILE or --database-url, not both")
			case f.databaseURL != "":
				if f.fleet.Enabled() {
					return errors.New("--database-url: not with --nats-url: import the database into a single store, then move it to fleet mode (docs/fleet.md)")
				}
				if f.catalogPath != "" {
					return errors.New("--catalog: not used with --database-url (the catalog comes from subscription_tiers and addon_products)")
				}
				return importDatabase(cmd, &f)
			case len(args) == 0:
				return errors.New("give FILE (JSON lines) or --database-url URL")
			case f.catalogOut != "":
				return errors.New("--catalog-out: only with --database-url")
			}
			return importFile(cmd, &f, args[0])
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.dataDir, "data-dir", "./data", "directory of the store file (created if missing)")
	fl.StringVar(&f.catalogPath, "catalog", "", "catalog YAML file for FILE rows (default: the built-in catalog)")
	fl.StringVar(&f.databaseURL, "database-url", "", "the application's database: sqlite:///path/app.db or postgres://user@host/db")
	fl.StringVar(&f.catalogOut, "catalog-out", "", "with --database-url: write the catalog YAML here (for serve --catalog)")
	fl.BoolVar(&f.skipInvalid, "skip-invalid", false, "import the valid rows when some are invalid")
	fl.BoolVar(&f.dryRun, "dry-run", false, "print what would be imported and every problem; write nothing")
	addFleetFlags(fl, &f.fleet)
	withEnvHelp(cmd)
	return cmd
}

// importFile imports JSON lines.
func importFile(cmd *cobra.Command, f *importFlags, path string) error {
	catalog, err := loadCatalog(f.catalogPath)
	if err != nil {
		return err
	}
	records, bad, err := readImportFile(path, catalog)
	if err != nil {
		return err
	}
	out := cmd.OutOrStdout()
	for _, b := range bad {
		fmt.Fprintln(cmd.ErrOrStderr(), b)
	}
	if f.dryRun {
		for _, r := range records {
			fmt.Fprintf(out, "vendor %s: tier %s, status %s, %d orders this period\n",
				r.Subscription.VendorID, r.Subscription.Tier, r.Subscription.Status, r.OrdersThisPeriod)
		}
		fmt.Fprintf(out, "dry run: would import %d subscription(s); %d invalid line(s); nothing written\n", len(records), len(bad))
		return nil
	}
	if len(bad) > 0 && !f.skipInvalid {
		return fmt.Errorf("%d invalid line(s); nothing imported (use --skip-invalid to import the %d valid ones)", len(bad), len(records))
	}
	if f.fleet.Enabled() {
		return importToFleet(cmd, f.fleet, records, len(bad))
	}
	if err := ensureDataDir(f.dataDir); err != nil {
		return err
	}
	store, err := cache.Open(cmd.Context(), cache.Options{Path: storePath(f.dataDir), Logger: newLogger(cmd.ErrOrStderr(), 0)})
	if err != nil {
		return err
	}
	defer store.Close()
	if err := store.Import(cmd.Context(), records); err != nil {
		return fmt.Errorf("import: %w", err)
	}
	fmt.Fprintf(out, "imported %d subscription(s), skipped %d invalid line(s)\n", len(records), len(bad))
	return nil
}

// storePath is the store file inside the data directory.
func storePath(dataDir string) string { return filepath.Join(dataDir, "tollgate.db") }

// readImportFile decodes every line; it returns the valid records and one message per bad line.
// A vendor listed twice is an error on the second line: which row should win is not knowable.
func readImportFile(path string, catalog *tollgate.Catalog) ([]tollgate.ImportRecord, []string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, fmt.Errorf("import: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64*1024), maxImportLine)
	var records []tollgate.ImportRecord
	var bad []string
	seen := map[string]int{}
	for n := 1; sc.Scan(); n++ {
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 {
			continue
		}
		rec, err := tollgate.DecodeImportRow(line, catalog)
		if err != nil {
			bad = append(bad, fmt.Sprintf("line %d: %s", n, tollgate.ErrorMessage(err)))
			continue
		}
		if first, dup := seen[rec.Subscription.VendorID]; dup {
			bad = append(bad, fmt.Sprintf("line %d: vendor_id: %q already on line %d", n, rec.Subscription.VendorID, first))
			continue
		}
		seen[rec.Subscription.VendorID] = n
		records = append(records, rec)
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return nil, nil, fmt.Errorf("import %s: a line is longer than %d bytes", path, maxImportLine)
		}
		return nil, nil, fmt.Errorf("import %s: %w", path, err)
	}
	return records, bad, nil
}
