package modeldb

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/tollgate-pdp/tollgate"
)

// row is one database row by column name, as the driver handed it over: SQLite gives int64,
// float64, string or time.Time (for DATETIME columns it can parse); pgx gives int64, bool,
// time.Time, string (numeric) and []byte (json). Each getter converts one column, records a
// problem naming the table, row id and column when the value does not fit, and returns the
// zero value; the caller drops a row with problems.
type row struct {
	table    string
	id       int64
	vals     map[string]any
	problems []Problem
}

func (r *row) fail(col, format string, args ...any) {
	r.problems = append(r.problems, Problem{Table: r.table, RowID: r.id, Field: col,
		Message: col + ": " + fmt.Sprintf(format, args...)})
}

func (r *row) null(col string) bool { return r.vals[col] == nil }

// required refuses a NULL or missing column.
func (r *row) required(col string) bool {
	if r.null(col) {
		r.fail(col, "is required (NULL or missing)")
		return false
	}
	return true
}

func (r *row) intp(col string) *int64 {
	switch v := r.vals[col].(type) {
	case nil:
		return nil
	case int64:
		return &v
	case float64:
		if v == math.Trunc(v) && math.Abs(v) < 1<<53 {
			n := int64(v)
			return &n
		}
	case string:
		if n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64); err == nil {
			return &n
		}
	case []byte:
		if n, err := strconv.ParseInt(strings.TrimSpace(string(v)), 10, 64); err == nil {
			return &n
		}
	}
	r.fail(col, "must be an integer, got %s", describe(r.vals[col]))
	return nil
}

func (r *row) int(col string) int64 {
	if p := r.intp(col); p != nil {
		return *p
	}
	return 0
}

// num reads a numeric column (Numeric(10, 2): SQLite REAL or text, PostgreSQL numeric text).
func (r *row) num(col string) float64 {
	switch v := r.vals[col].(type) {
	case nil:
		return 0
	case int64:
		return float64(v)
	case float64:
		return v
	case string, []byte:
		if f, err := strconv.ParseFloat(strings.TrimSpace(fmt.Sprint(text(v))), 64); err == nil {
			return f
		}
	}
	r.fail(col, "must be a number, got %s", describe(r.vals[col]))
	return 0
}

// boolean reads a boolean: PostgreSQL's boolean or SQLite's 0/1.
func (r *row) boolean(col string, def bool) bool {
	switch v := r.vals[col].(type) {
	case nil:
		return def
	case bool:
		return v
	case int64:
		if v == 0 || v == 1 {
			return v == 1
		}
	case string:
		switch strings.ToLower(v) {
		case "0", "false", "f":
			return false
		case "1", "true", "t":
			return true
		}
	}
	r.fail(col, "must be a boolean (true/false or 0/1), got %s", describe(r.vals[col]))
	return def
}

func (r *row) str(col string) string {
	switch v := r.vals[col].(type) {
	case nil:
		return ""
	case string:
		return v
	case []byte:
		return string(v)
	case int64:
		return strconv.FormatInt(v, 10)
	}
	r.fail(col, "must be text, got %s", describe(r.vals[col]))
	return ""
}

func (r *row) strp(col string) *string {
	if r.null(col) {
		return nil
	}
	s := r.str(col)
	return &s
}

// time reads a timestamp: a driver time.Time, or text as SQLite stores it
// (2026-12-07 14:25:20.768411) or RFC 3339. Zone-less values are UTC.
func (r *row) time(col string) *time.Time {
	switch v := r.vals[col].(type) {
	case nil:
		return nil
	case time.Time:
		t := v.UTC()
		return &t
	case string, []byte:
		t, err := tollgate.ParseDBTime(col, text(v))
		if err != nil {
			r.fail(col, "not a timestamp: %q", text(v))
			return nil
		}
		return &t
	}
	r.fail(col, "must be a timestamp, got %s", describe(r.vals[col]))
	return nil
}

// timeText is time as the RFC 3339 text tollgate.ImportRow carries.
func (r *row) timeText(col string) *string {
	t := r.time(col)
	if t == nil {
		return nil
	}
	s := t.Format(time.RFC3339Nano)
	return &s
}

// json decodes a JSON column (SQLite text, PostgreSQL json) into dst; NULL leaves dst alone.
func (r *row) json(col string, dst any, want string) {
	v := r.vals[col]
	if v == nil {
		return
	}
	raw, ok := v.(string)
	if b, isBytes := v.([]byte); isBytes {
		raw, ok = string(b), true
	}
	if !ok {
		r.fail(col, "must be JSON text, got %s", describe(v))
		return
	}
	if strings.TrimSpace(raw) == "null" {
		return
	}
	if err := json.Unmarshal([]byte(raw), dst); err != nil {
		r.fail(col, "must be %s, got %q", want, truncate(raw, 60))
	}
}

func text(v any) string {
	if b, ok := v.([]byte); ok {
		return string(b)
	}
	s, _ := v.(string)
	return s
}

func describe(v any) string {
	switch v := v.(type) {
	case string:
		return fmt.Sprintf("%q", truncate(v, 40))
	case []byte:
		return fmt.Sprintf("%q", truncate(string(v), 40))
	case time.Time:
		return "timestamp " + v.Format(time.RFC3339)
	default:
		return fmt.Sprintf("%T %v", v, v)
	}
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
