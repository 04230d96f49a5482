package modeldb

import (
	"context"
	"database/sql"
	"fmt"
	"net/url"
	"os"
	"strings"

	// The two drivers: pure Go SQLite (no cgo) and pgx behind database/sql.
	_ "github.com/jackc/pgx/v5/stdlib"
	_ "modernc.org/sqlite"

	"github.com/tollgate-pdp/tollgate"
)

// dialect is what differs between the two databases: how to open them read-only, how to start
// a snapshot, how to list tables.
type dialect struct {
	name   string // "sqlite" or "postgres"
	driver string
	dsn    string
	txOpts sql.TxOptions
	tables string // query listing the tables of the schema in use
}

// parseURL maps --database-url onto a driver. sqlite:///abs/path.db, sqlite://rel/path.db and
// sqlite:rel.db name a file, opened read-only (mode=ro); postgres:// and postgresql:// URLs go
// to pgx unchanged.
func parseURL(raw string) (dialect, error) {
	switch {
	case strings.HasPrefix(raw, "sqlite:"):
		path := strings.TrimPrefix(strings.TrimPrefix(raw, "sqlite:"), "//")
		if path == "" {
			return dialect{}, tollgate.FieldErrorf("database-url", "names no file (want sqlite:///path/app.db)")
		}
		if _, err := os.Stat(path); err != nil {
			return dialect{}, &tollgate.Error{Code: tollgate.EInvalid, Field: "database-url",
				Message: fmt.Sprintf("database-url: cannot read SQLite file %s", path), Err: err}
		}
		// query_only refuses any write on the connection, beside the read-only open.
		dsn := "file:" + (&url.URL{Path: path}).EscapedPath() + "?mode=ro&_pragma=query_only(1)"
		return dialect{name: "sqlite", driver: "sqlite", dsn: dsn,
			txOpts: sql.TxOptions{ReadOnly: true},
			tables: `SELECT name FROM sqlite_master WHERE type = 'table'`}, nil
	case strings.HasPrefix(raw, "postgres://"), strings.HasPrefix(raw, "postgresql://"):
		return dialect{name: "postgres", driver: "pgx", dsn: raw,
			txOpts: sql.TxOptions{Isolation: sql.LevelRepeatableRead, ReadOnly: true},
			tables: `SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema()`}, nil
	}
	return dialect{}, tollgate.FieldErrorf("database-url", "must start with sqlite:// or postgres://, got %q", redact(raw))
}

// redact drops a password from a URL for messages.
func redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.User == nil {
		if len(raw) > 40 {
			return raw[:40] + "..."
		}
		return raw
	}
	return u.Redacted()
}

// snapshot opens the database and starts the one read-only transaction every table is read
// in: REPEATABLE READ READ ONLY on PostgreSQL, a read transaction on a read-only SQLite file.
func snapshot(ctx context.Context, d dialect) (*sql.DB, *sql.Tx, error) {
	db, err := sql.Open(d.driver, d.dsn)
	if err != nil {
		return nil, nil, fmt.Errorf("open %s database: %w", d.name, err)
	}
	db.SetMaxOpenConns(1)
	tx, err := db.BeginTx(ctx, &d.txOpts)
	if err != nil {
		db.Close()
		return nil, nil, fmt.Errorf("begin read-only transaction on the %s database: %w", d.name, err)
	}
	return db, tx, nil
}
