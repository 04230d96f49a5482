// Package modeltest creates real databases with the application model's schema for tests: a
// SQLite file, or a fresh schema in the PostgreSQL that TOLLGATE_TEST_POSTGRES_URL names
// (scripts/pg-test-cluster.sh starts one; `make test` and .ci/run do so). Rows are inserted
// the way the model stores them: on SQLite booleans as 0/1 and timestamps as text with
// microseconds, on PostgreSQL as boolean and timestamptz.
package modeltest

import (
	"crypto/rand"
	"database/sql"
	_ "embed"
	"encoding/hex"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	// The drivers the helper's databases are opened with, as modeldb opens them.
	_ "github.com/jackc/pgx/v5/stdlib"
	_ "modernc.org/sqlite"
)

// PostgresEnv names the variable holding the test PostgreSQL's URL.
const PostgresEnv = "TOLLGATE_TEST_POSTGRES_URL"

//go:embed testdata/schema_sqlite.sql
var sqliteDDL string

//go:embed testdata/schema_postgres.sql
var postgresDDL string

// SQLiteTimeLayout is how SQLAlchemy writes a DateTime on SQLite.
const SQLiteTimeLayout = "2006-01-02 15:04:05.000000"

// JSON is a JSON column's text.
type JSON string

// Row is one row by column name. Values: nil, int, int64, string, bool, time.Time, float64,
// JSON.
type Row map[string]any

// DB is a database with the model's tables.
type DB struct {
	URL      string // for tollgate import --database-url
	Postgres bool
	db       *sql.DB
}

// SQLite creates the SQLite file at path with the model's schema.
func SQLite(t testing.TB, path string) *DB {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if _, err := db.Exec(sqliteDDL); err != nil {
		t.Fatalf("create the model's tables: %v", err)
	}
	return &DB{URL: "sqlite://" + path, db: db}
}

// PostgresURL is the test PostgreSQL's URL. Unset, the test fails when CI=true and is skipped
// otherwise (make test starts a cluster whenever initdb and pg_ctl are installed).
func PostgresURL(t testing.TB) string {
	t.Helper()
	u := os.Getenv(PostgresEnv)
	if u == "" {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s is not set: CI must test against a real PostgreSQL (see scripts/pg-test-cluster.sh)", PostgresEnv)
		}
		t.Skipf("%s is not set and no PostgreSQL was started (make test starts one when initdb is installed)", PostgresEnv)
	}
	return u
}

// Postgres creates a fresh schema with the model's tables in the test PostgreSQL, dropped when
// the test ends; URL selects it through search_path.
func Postgres(t testing.TB) *DB {
	t.Helper()
	base := PostgresURL(t)
	var b [6]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	schema := "tg_" + hex.EncodeToString(b[:])
	sep := "?"
	if strings.Contains(base, "?") {
		sep = "&"
	}
	url := base + sep + "search_path=" + schema
	admin, err := sql.Open("pgx", base)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := admin.Exec("CREATE SCHEMA " + schema); err != nil {
		admin.Close()
		t.Fatalf("create schema on %s: %v", base, err)
	}
	t.Cleanup(func() {
		if _, err := admin.Exec("DROP SCHEMA " + schema + " CASCADE"); err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
		}
		admin.Close()
	})
	db, err := sql.Open("pgx", url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if _, err := db.Exec(postgresDDL); err != nil {
		t.Fatalf("create the model's tables: %v", err)
	}
	return &DB{URL: url, Postgres: true, db: db}
}

// Insert adds one row; created_at and updated_at default to now.
func (d *DB) Insert(t testing.TB, table string, r Row) {
	t.Helper()
	now := time.Now().UTC()
	for _, c := range []string{"created_at", "updated_at"} {
		if _, ok := r[c]; !ok {
			r[c] = now
		}
	}
	cols := make([]string, 0, len(r))
	for c := range r {
		cols = append(cols, c)
	}
	slices.Sort(cols)
	marks := make([]string, len(cols))
	args := make([]any, len(cols))
	for i, c := range cols {
		marks[i] = "?"
		if d.Postgres {
			marks[i] = fmt.Sprintf("$%d", i+1)
		}
		args[i] = d.value(r[c])
	}
	q := fmt.Sprintf("INSERT INTO %s (%s) VALUES (%s)", table, strings.Join(cols, ", "), strings.Join(marks, ", "))
	if _, err := d.db.Exec(q, args...); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
}

// Exec runs a statement (no arguments).
func (d *DB) Exec(t testing.TB, q string) {
	t.Helper()
	if _, err := d.db.Exec(q); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
}

// value converts a Go value into what the model's SQLAlchemy types store.
func (d *DB) value(v any) any {
	switch v := v.(type) {
	case bool:
		if d.Postgres {
			return v
		}
		if v {
			return 1
		}
		return 0
	case time.Time:
		if d.Postgres {
			return v
		}
		return v.UTC().Format(SQLiteTimeLayout)
	case *time.Time:
		if v == nil {
			return nil
		}
		return d.value(*v)
	case *int64:
		if v == nil {
			return nil
		}
		return *v
	case JSON:
		return string(v)
	}
	return v
}
