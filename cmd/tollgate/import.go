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

func newImportCommand() *cobra.Command {
	var dataDir, catalogPath string
	var skipInvalid bool
	var fleetCfg fleet.Config
	cmd := &cobra.Command{
		Use:   "import FILE",
		Short: "Import subscription rows (JSON lines with the seed model's column names) into the store",
		Long: `Import reads JSON lines, one subscription row per line, with the column names of the
subscription table this replaces (vendor_id, tier, status, period_start, period_end,
orders_this_period, custom_orders_limit, stripe_customer_id, ...). Each row's
orders_this_period is carried into the vendor's current billing period.

Every line is checked first. If any line is invalid, nothing is imported and every bad line is
reported, unless --skip-invalid is given, which imports the valid lines only. The import is one
transaction: all rows land or none. Stop the serving process first (the store is locked while
it runs).`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := bindEnv(cmd); err != nil {
				return err
			}
			catalog, err := loadCatalog(catalogPath)
			if err != nil {
				return err
			}
			records, bad, err := readImportFile(args[0], catalog)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			for _, b := range bad {
				fmt.Fprintln(cmd.ErrOrStderr(), b)
			}
			if len(bad) > 0 && !skipInvalid {
				return fmt.Errorf("%d invalid line(s); nothing imported (use --skip-invalid to import the %d valid ones)", len(bad), len(records))
			}
			if fleetCfg.Enabled() {
				return importToFleet(cmd, fleetCfg, records, len(bad))
			}
			store, err := cache.Open(cmd.Context(), cache.Options{Path: storePath(dataDir), Logger: newLogger(cmd.ErrOrStderr(), 0)})
			if err != nil {
				return err
			}
			defer store.Close()
			if err := store.Import(cmd.Context(), records); err != nil {
				return fmt.Errorf("import: %w", err)
			}
			fmt.Fprintf(out, "imported %d subscription(s), skipped %d invalid line(s)\n", len(records), len(bad))
			return nil
		},
	}
	cmd.Flags().StringVar(&dataDir, "data-dir", "./data", "directory of the store file")
	cmd.Flags().StringVar(&catalogPath, "catalog", "", "catalog YAML file (default: the built-in catalog)")
	cmd.Flags().BoolVar(&skipInvalid, "skip-invalid", false, "import the valid lines when some are invalid")
	addFleetFlags(cmd.Flags(), &fleetCfg) // with --nats-url: publish into the fleet's log instead
	withEnvHelp(cmd)
	return cmd
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
