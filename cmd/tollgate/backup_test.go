package main

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tollgate-pdp/tollgate"
	"github.com/tollgate-pdp/tollgate/cache"
)

// TestBackupWhileServingAndCheckStore takes a hot backup through a running server under write
// load, checks it with check-store, opens it as a store, and exercises the direct (stopped
// server) paths and the failure exit codes.
func TestBackupWhileServingAndCheckStore(t *testing.T) {
	dataDir := t.TempDir()
	c := startServe(t, dataDir)
	client := &http.Client{Timeout: 5 * time.Second}
	ctx := context.Background()
	start := time.Now().UTC().Add(-time.Hour)
	end := start.Add(30 * 24 * time.Hour)
	for i := 0; i < 50; i++ {
		v := fmt.Sprintf("bk-%d", i)
		sub := tollgate.Subscription{VendorID: v, Tier: "business", Status: tollgate.StatusActive, PeriodStart: &start, PeriodEnd: &end}
		if code, err := do(ctx, client, http.MethodPut, "http://"+c.api+"/v1/vendors/"+v, sub, nil); err != nil || code != 200 {
			t.Fatalf("seed: %d %v", code, err)
		}
	}
	// Writes keep streaming during the backup.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var writes atomic.Int64
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			body := map[string]any{"vendor_id": fmt.Sprintf("bk-%d", i%50), "metric": "orders", "delta": 1, "idempotency_key": fmt.Sprintf("bk-%d", i)}
			if code, err := do(ctx, client, http.MethodPost, "http://"+c.api+"/v1/usage", body, nil); err == nil && code == 200 {
				writes.Add(1)
			}
		}
	}()
	time.Sleep(100 * time.Millisecond)
	out := t.TempDir()
	dst := filepath.Join(out, "hot.db")

	// Wrong token: refused, no file.
	if _, _, err := run(t, "backup", "--addr", c.api, "--admin-token", "nope", dst); err == nil || !strings.Contains(err.Error(), "401") {
		t.Fatalf("backup with a wrong token: %v", err)
	}
	if _, err := os.Stat(dst); !os.IsNotExist(err) {
		t.Fatalf("a refused backup left a file: %v", err)
	}
	stdout, _, err := run(t, "backup", "--addr", c.api, "--admin-token", testAdminToken, dst)
	if err != nil {
		t.Fatalf("hot backup: %v", err)
	}
	close(stop)
	wg.Wait()
	t.Logf("%s(%d writes streamed meanwhile)", stdout, writes.Load())
	fi, err := os.Stat(dst)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("backup file: %v %v, want mode 0600", fi.Mode(), err)
	}
	if entries, _ := os.ReadDir(out); len(entries) != 1 {
		t.Fatalf("temporary files left beside the backup: %v", entries)
	}
	// A second backup to the same name needs --force.
	if _, _, err := run(t, "backup", "--addr", c.api, "--admin-token", testAdminToken, dst); err == nil {
		t.Fatal("backup over an existing file without --force succeeded")
	}
	if stdout, _, err := run(t, "check-store", dst); err != nil || !strings.Contains(stdout, "ok") {
		t.Fatalf("check-store on the backup: %q %v", stdout, err)
	}
	// The live store is locked by the server: check-store says so and exits 1.
	if _, stderr, err := run(t, "check-store", "--data-dir", dataDir); exitCode(err) != 1 || !strings.Contains(stderr, "locked") {
		t.Fatalf("check-store on a served store: %q %v", stderr, err)
	}
	if _, _, err := run(t, "backup", "--data-dir", dataDir, filepath.Join(out, "direct.db")); err == nil || !strings.Contains(err.Error(), "--addr") {
		t.Fatalf("direct backup of a served store: %v", err)
	}
	// The backup opens as a store by itself, with every vendor.
	restored, err := cache.Open(ctx, cache.Options{Path: dst})
	if err != nil {
		t.Fatal(err)
	}
	if n := restored.VendorCount(); n != 50 {
		t.Fatalf("backup holds %d vendors, want 50", n)
	}
	if err := restored.Check(ctx); err != nil {
		t.Fatal(err)
	}
	restored.Close()

	// Stopped server: direct backup and check-store of the data directory.
	c.kill9(t)
	direct := filepath.Join(out, "direct.db")
	if _, _, err := run(t, "backup", "--data-dir", dataDir, direct); err != nil {
		t.Fatalf("direct backup: %v", err)
	}
	if fi, err := os.Stat(direct); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("direct backup mode: %v %v", fi, err)
	}
	if _, _, err := run(t, "check-store", "--data-dir", dataDir); err != nil {
		t.Fatalf("check-store after kill -9: %v", err)
	}
	// Garbage and truncated files: exit 1, file untouched.
	garbage := writeFile(t, out, "garbage.db", strings.Repeat("not a store ", 1000))
	if _, stderr, err := run(t, "check-store", garbage); exitCode(err) != 1 || !strings.Contains(stderr, "FAILED") {
		t.Fatalf("check-store on garbage: %q %v", stderr, err)
	}
	raw, _ := os.ReadFile(direct)
	trunc := filepath.Join(out, "trunc.db")
	if err := os.WriteFile(trunc, raw[:len(raw)/3], 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, err := run(t, "check-store", trunc); exitCode(err) != 1 {
		t.Fatalf("check-store on a truncated file: %v", err)
	}
	if after, _ := os.ReadFile(trunc); len(after) != len(raw)/3 {
		t.Fatal("check-store changed a truncated file")
	}
	if _, _, err := run(t, "check-store", filepath.Join(out, "missing.db")); exitCode(err) != 1 {
		t.Fatalf("check-store on a missing file: %v", err)
	}
}
