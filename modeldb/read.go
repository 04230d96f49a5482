package modeldb

import (
	"context"
	"database/sql"
	"fmt"
	"strconv"

	"github.com/tollgate-pdp/tollgate"
)

// The model's tables, in the order they are read (each mapping needs the ones before it).
const (
	TablePlatforms     = "platforms"
	TableTiers         = "subscription_tiers"
	TableAddOnProducts = "addon_products"
	TableSubscriptions = "vendor_subscriptions"
	TableVendorAddOns  = "vendor_addons"
	TableBilling       = "billing_history"
	TableWebhookEvents = "stripe_webhook_events"
	TableCapacity      = "capacity_snapshots"
	requiredTable      = TableSubscriptions
)

// Tables lists the tables read, in order.
func Tables() []string {
	return []string{TablePlatforms, TableTiers, TableAddOnProducts, TableSubscriptions,
		TableVendorAddOns, TableBilling, TableWebhookEvents, TableCapacity}
}

// Problem is one row, or one column of a row, that cannot be imported.
type Problem struct {
	Table   string
	RowID   int64
	Field   string // the column at fault; empty when the whole row is
	Message string // starts with the column name when there is one
}

func (p Problem) String() string {
	if p.RowID == 0 {
		return p.Table + ": " + p.Message // about the table, not one row
	}
	return fmt.Sprintf("%s id=%d: %s", p.Table, p.RowID, p.Message)
}

// TableCount is what became of one table's rows.
type TableCount struct {
	Table    string
	Present  bool // false: the database has no such table (read as empty)
	Rows     int  // rows read
	Imported int  // rows that become tollgate state
	Refused  int  // rows with a problem
	Skipped  int  // rows deliberately left out (see Result.Notes)
}

// Result is the model's database mapped onto tollgate: the catalog (configuration, to be
// written as YAML) and the batch for the store's one import transaction.
type Result struct {
	Catalog *tollgate.Catalog
	Batch   tollgate.ImportBatch
	// Rows is one line per imported row, for --dry-run.
	Rows     []string
	Counts   []TableCount
	Problems []Problem
	// Notes are rows imported or left out on purpose, said so the operator can check them.
	Notes []Problem

	addOns []tollgate.AddOn
}

// Options tune Read.
type Options struct {
	// Progress, when set, is called after each row read with the rows done and the total.
	Progress func(done, total int)
}

// Read reads the model's tables from databaseURL (sqlite:///path/app.db or postgres://...) in
// one read-only snapshot and maps every row. It fails only when the database cannot be read;
// rows that cannot be mapped are Problems of the result.
func Read(ctx context.Context, databaseURL string, opts Options) (*Result, error) {
	d, err := parseURL(databaseURL)
	if err != nil {
		return nil, err
	}
	db, tx, err := snapshot(ctx, d)
	if err != nil {
		return nil, err
	}
	defer db.Close()
	// Read-only: there is nothing to commit; rolling back ends the snapshot.
	defer tx.Rollback() //nolint:errcheck

	present, err := listTables(ctx, tx, d)
	if err != nil {
		return nil, err
	}
	if !present[requiredTable] {
		return nil, tollgate.FieldErrorf("database-url", "the %s database has no %s table: is this the application's database?", d.name, requiredTable)
	}
	total := 0
	for _, t := range Tables() {
		if !present[t] {
			continue
		}
		var n int
		if err := tx.QueryRowContext(ctx, "SELECT COUNT(*) FROM "+t).Scan(&n); err != nil {
			return nil, fmt.Errorf("count %s: %w", t, err)
		}
		total += n
	}
	m := newMapper()
	done := 0
	for _, t := range Tables() {
		tc := &TableCount{Table: t, Present: present[t]}
		m.counts[t] = tc
		if !present[t] {
			continue
		}
		err := scanTable(ctx, tx, t, func(r *row) {
			tc.Rows++
			m.mapRow(r)
			done++
			if opts.Progress != nil {
				opts.Progress(done, total)
			}
		})
		if err != nil {
			return nil, err
		}
	}
	m.finish()
	for _, t := range Tables() {
		m.res.Counts = append(m.res.Counts, *m.counts[t])
	}
	return m.res, nil
}

func listTables(ctx context.Context, tx *sql.Tx, d dialect) (map[string]bool, error) {
	rows, err := tx.QueryContext(ctx, d.tables)
	if err != nil {
		return nil, fmt.Errorf("list tables: %w", err)
	}
	defer rows.Close()
	out := map[string]bool{}
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			return nil, fmt.Errorf("list tables: %w", err)
		}
		out[name] = true
	}
	return out, rows.Err()
}

// scanTable reads every row of table by column name, in id order. Reading `*` keeps older
// schemas (a column added by a later migration is simply NULL) and extra columns working.
func scanTable(ctx context.Context, tx *sql.Tx, table string, fn func(*row)) error {
	rows, err := tx.QueryContext(ctx, "SELECT * FROM "+table+" ORDER BY id")
	if err != nil {
		return fmt.Errorf("read %s: %w", table, err)
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return fmt.Errorf("read %s: %w", table, err)
	}
	vals := make([]any, len(cols))
	ptrs := make([]any, len(cols))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	for rows.Next() {
		if err := rows.Scan(ptrs...); err != nil {
			return fmt.Errorf("read %s: %w", table, err)
		}
		r := &row{table: table, vals: make(map[string]any, len(cols))}
		for i, c := range cols {
			r.vals[c] = vals[i]
		}
		if id := r.intp("id"); id != nil {
			r.id = *id
		}
		fn(r)
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("read %s: %w", table, err)
	}
	return nil
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

func (r *Result) catalogAddOns() []tollgate.AddOn {
	if r.addOns == nil {
		return []tollgate.AddOn{}
	}
	return r.addOns
}
