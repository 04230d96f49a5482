package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"text/tabwriter"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"
	"golang.org/x/term"
	"sigs.k8s.io/yaml"

	"github.com/tollgate-pdp/tollgate"
	"github.com/tollgate-pdp/tollgate/cache"
	"github.com/tollgate-pdp/tollgate/modeldb"
)

// importDatabase reads the model's tables and writes them in one store transaction (and the
// catalog YAML), or with --dry-run only reports.
func importDatabase(cmd *cobra.Command, f *importFlags) error {
	out, errOut := cmd.OutOrStdout(), cmd.ErrOrStderr()
	opts := modeldb.Options{}
	bar := newImportBar(errOut)
	if bar != nil {
		opts.Progress = func(done, total int) {
			bar.ChangeMax(total)
			_ = bar.Set(done)
		}
	}
	res, err := modeldb.Read(cmd.Context(), f.databaseURL, opts)
	if bar != nil {
		_ = bar.Finish()
		fmt.Fprintln(errOut)
	}
	if err != nil {
		return fmt.Errorf("import --database-url: %w", err)
	}
	if f.dryRun {
		for _, r := range res.Rows {
			fmt.Fprintln(out, r)
		}
	}
	for _, n := range res.Notes {
		fmt.Fprintln(errOut, "note:", n)
	}
	for _, p := range res.Problems {
		fmt.Fprintln(errOut, "problem:", p)
	}
	defer printImportSummary(out, res)
	if f.dryRun {
		fmt.Fprintf(out, "dry run: %d problem(s); nothing written\n", len(res.Problems))
		return nil
	}
	if len(res.Problems) > 0 && !f.skipInvalid {
		return fmt.Errorf("%d problem(s); nothing imported (use --skip-invalid to import the valid rows)", len(res.Problems))
	}
	if f.catalogOut == "" && res.Catalog.Revision() != tollgate.DefaultCatalog().Revision() {
		return fmt.Errorf("--catalog-out is required: the database's tiers and add-ons differ from the built-in catalog, and serve needs them (--catalog FILE)")
	}
	var commitCatalog func() error
	if f.catalogOut != "" {
		var discard func()
		if commitCatalog, discard, err = stageCatalog(f.catalogOut, res.Catalog); err != nil {
			return err
		}
		defer discard()
	}
	if err := ensureDataDir(f.dataDir); err != nil {
		return err
	}
	store, err := cache.Open(cmd.Context(), cache.Options{Path: storePath(f.dataDir), Logger: newLogger(errOut, 0)})
	if err != nil {
		return err
	}
	defer store.Close()
	if err := store.ImportBatch(cmd.Context(), res.Batch); err != nil {
		return fmt.Errorf("import: %w", err)
	}
	if commitCatalog != nil {
		if err := commitCatalog(); err != nil {
			return err
		}
		fmt.Fprintf(out, "catalog: %d tier(s), %d add-on(s) written to %s (start serve with --catalog %s)\n",
			len(res.Catalog.Tiers), len(res.Catalog.AddOns), f.catalogOut, f.catalogOut)
	}
	fmt.Fprintf(out, "imported into %s\n", storePath(f.dataDir))
	return nil
}

// newImportBar is a progress bar on stderr when it is a terminal, else nil.
func newImportBar(w io.Writer) *progressbar.ProgressBar {
	file, ok := w.(*os.File)
	if !ok || !term.IsTerminal(int(file.Fd())) {
		return nil
	}
	return progressbar.NewOptions(-1, progressbar.OptionSetWriter(w), progressbar.OptionSetDescription("reading rows"),
		progressbar.OptionShowCount(), progressbar.OptionSetWidth(30), progressbar.OptionClearOnFinish())
}

// printImportSummary ends every run: rows per table and what became of them.
func printImportSummary(w io.Writer, res *modeldb.Result) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "table\trows\timported\trefused\tskipped")
	for _, c := range res.Counts {
		if !c.Present {
			fmt.Fprintf(tw, "%s\t(no such table)\t\t\t\n", c.Table)
			continue
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\n", c.Table, c.Rows, c.Imported, c.Refused, c.Skipped)
	}
	_ = tw.Flush()
}

// catalogYAML renders the catalog as the YAML `serve --catalog` reads.
func catalogYAML(c *tollgate.Catalog) ([]byte, error) {
	y, err := yaml.Marshal(c) // through encoding/json: the json tags that parseCatalogYAML reads
	if err != nil {
		return nil, fmt.Errorf("encode catalog: %w", err)
	}
	header := "# Catalog imported from the application's database by `tollgate import --database-url`.\n" +
		"# Review it, keep it with the deployment (e.g. a ConfigMap) and start serve with --catalog.\n"
	return append([]byte(header), y...), nil
}

// stageCatalog writes the catalog beside path and returns the rename that puts it in place, so
// the file appears only once the store import has committed, and the clean-up of the staged
// file when it never does.
func stageCatalog(path string, c *tollgate.Catalog) (commit func() error, discard func(), err error) {
	data, err := catalogYAML(c)
	if err != nil {
		return nil, nil, err
	}
	if _, err := parseCatalogYAML(data); err != nil {
		return nil, nil, fmt.Errorf("the imported catalog does not load back: %w", err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".catalog-*.yaml")
	if err != nil {
		return nil, nil, fmt.Errorf("--catalog-out: %w", err)
	}
	discard = func() { _ = os.Remove(tmp.Name()) } // after the rename: nothing left to remove
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		discard()
		return nil, nil, fmt.Errorf("--catalog-out: %w", err)
	}
	if err := tmp.Close(); err != nil {
		discard()
		return nil, nil, fmt.Errorf("--catalog-out: %w", err)
	}
	commit = func() error {
		if err := os.Rename(tmp.Name(), path); err != nil {
			return fmt.Errorf("--catalog-out: %w", err)
		}
		return nil
	}
	return commit, discard, nil
}
