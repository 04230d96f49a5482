package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tollgate-pdp/tollgate/cache"
)

// run executes the CLI in-process and returns stdout, stderr and the error.
func run(t *testing.T, args ...string) (string, string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	cmd := newRootCommand(&out, &errOut)
	cmd.SetArgs(args)
	err := cmd.ExecuteContext(context.Background())
	return out.String(), errOut.String(), err
}

func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestServeRefusesBadStartConfiguration(t *testing.T) {
	dir := t.TempDir()
	badCatalog := writeFile(t, dir, "catalog.yaml", `
tiers:
  - code: gold
    name: Gold
    orders_per_month: -5
`)
	tests := []struct {
		name string
		args []string
		env  map[string]string
		want string
	}{
		{"invalid catalog names tier and field", []string{"serve", "--data-dir", dir, "--catalog", badCatalog}, nil, "tiers[gold].orders_per_month: must be >= 0"},
		{"catalog not YAML", []string{"serve", "--data-dir", dir, "--catalog", writeFile(t, dir, "c2.yaml", "tiers: [\n")}, nil, "not valid YAML"},
		{"missing catalog file", []string{"serve", "--data-dir", dir, "--catalog", filepath.Join(dir, "nope.yaml")}, nil, "read catalog"},
		{"non-loopback decision listener", []string{"serve", "--data-dir", dir, "--listen", "0.0.0.0:0"}, nil, "is not a loopback address"},
		{"allow-remote needs a token", []string{"serve", "--data-dir", dir, "--listen", "0.0.0.0:0", "--allow-remote"}, nil, "--allow-remote requires --admin-token"},
		{"env sets flags", []string{"serve", "--data-dir", dir}, map[string]string{"TOLLGATE_LISTEN": "192.0.2.1:80"}, `--listen "192.0.2.1:80" is not a loopback address`},
		{"bad env value", []string{"serve", "--data-dir", dir}, map[string]string{"TOLLGATE_DECISION_CACHE_TTL": "soon"}, "environment TOLLGATE_DECISION_CACHE_TTL"},
		{"bad log level", []string{"serve", "--data-dir", dir, "--log-level", "loud"}, nil, "--log-level"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			_, _, err := run(t, tt.args...)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("want error containing %q, got %v", tt.want, err)
			}
		})
	}
}

func TestServeFailsOnForeignStoreFileAndLeavesItAlone(t *testing.T) {
	dir := t.TempDir()
	foreign := []byte("this is not a bbolt file, it is somebody's notes")
	writeFile(t, dir, "tollgate.db", string(foreign))
	_, _, err := run(t, "serve", "--data-dir", dir, "--listen", "127.0.0.1:0", "--webhook-listen", "127.0.0.1:0", "--ops-listen", "127.0.0.1:0")
	if err == nil || !strings.Contains(err.Error(), "not a tollgate store") {
		t.Fatalf("want 'not a tollgate store', got %v", err)
	}
	got, _ := os.ReadFile(filepath.Join(dir, "tollgate.db"))
	if !bytes.Equal(got, foreign) {
		t.Fatal("the foreign file was changed")
	}
}

func TestImport(t *testing.T) {
	good := `{"vendor_id": 1, "tier": "essential", "status": "active", "period_start": "2026-11-01 00:00:00", "period_end": "2026-12-01 00:00:00", "orders_this_period": 42}
{"vendor_id": "2", "tier": "business", "status": "past_due", "payment_retry_count": 2, "last_payment_error": "card_declined"}
`
	bad := `{"vendor_id": 3, "tier": "platinum", "status": "active"}
{"vendor_id": 4, "tier": "essential", "status": "active", "orders_this_period": -1}
{"vendor_id": 1, "tier": "essential", "status": "active"}
not json
`
	tests := []struct {
		name        string
		content     string
		skipInvalid bool
		wantErr     string
		wantStderr  []string
		wantVendors []string
	}{
		{"all valid", good, false, "", nil, []string{"1", "2"}},
		{"one bad line imports nothing", good + bad, false, "4 invalid line(s); nothing imported",
			[]string{`line 3: tier: unknown tier "platinum"`, "line 4: orders_this_period: must be >= 0", `line 5: vendor_id: "1" already on line 1`, "line 6: body: invalid JSON"}, nil},
		{"skip invalid imports the rest", good + bad, true, "", []string{"line 3:"}, []string{"1", "2"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			file := writeFile(t, dir, "rows.jsonl", tt.content)
			args := []string{"import", "--data-dir", dir, file}
			if tt.skipInvalid {
				args = append(args, "--skip-invalid")
			}
			_, stderr, err := run(t, args...)
			if tt.wantErr == "" && err != nil || tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
				t.Fatalf("want error %q, got %v", tt.wantErr, err)
			}
			for _, w := range tt.wantStderr {
				if !strings.Contains(stderr, w) {
					t.Errorf("stderr lacks %q:\n%s", w, stderr)
				}
			}
			if tt.wantVendors == nil {
				if _, err := os.Stat(storePath(dir)); err == nil {
					t.Fatal("a refused import must not even create the store")
				}
				return
			}
			store, err := cache.Open(context.Background(), cache.Options{Path: storePath(dir)})
			if err != nil {
				t.Fatal(err)
			}
			defer store.Close()
			if store.VendorCount() != len(tt.wantVendors) {
				t.Fatalf("want %d vendors, got %d", len(tt.wantVendors), store.VendorCount())
			}
			v, ok := store.Vendor("1")
			if !ok || v.Usage.OrdersIn("2026-11-01T00:00:00Z") != 42 {
				t.Fatalf("orders_this_period not carried into the current period: %+v", v)
			}
		})
	}
}

func TestVersion(t *testing.T) {
	out, _, err := run(t, "version")
	if err != nil || out != "tollgate dev\n" {
		t.Fatalf("got %q, %v", out, err)
	}
}
