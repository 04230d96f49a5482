package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tollgate-pdp/tollgate/modeldb/modeltest"
)

// guideBlocks returns the ```sh blocks of docs/migration.md in order, list indentation removed.
func guideBlocks(t *testing.T) []string {
	t.Helper()
	raw, err := os.ReadFile("../../docs/migration.md")
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, m := range regexp.MustCompile("(?ms)^( *)```sh\n(.*?)^ *```").FindAllStringSubmatch(string(raw), -1) {
		var lines []string
		for _, l := range strings.SplitAfter(m[2], "\n") {
			lines = append(lines, strings.TrimPrefix(l, m[1]))
		}
		out = append(out, strings.Join(lines, ""))
	}
	return out
}

// TestMigrationGuide follows docs/migration.md as written: every sh block, in order, in one
// bash, on a SQLite file made from the model's schema, with `tollgate` on PATH (this test
// binary) and the listeners on free loopback ports.
func TestMigrationGuide(t *testing.T) {
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Fatal("bash is required")
	}
	for _, tool := range []string{"curl", "python3"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("the guide uses %s: install it", tool)
		}
	}
	blocks := guideBlocks(t)
	if len(blocks) < 8 {
		t.Fatalf("found %d sh blocks in the guide", len(blocks))
	}
	dir := t.TempDir()
	appDB := filepath.Join(dir, "app.db")
	db := modeltest.SQLite(t, appDB)
	smallModel(t, db, time.Now().UTC())
	db.Insert(t, "vendor_subscriptions", modeltest.Row{"id": 2, "vendor_id": 43, "tier": "enterprise", "status": "expired",
		"period_start": time.Now().AddDate(0, -1, 0), "period_end": time.Now().AddDate(0, 0, -1), "is_annual": 1,
		"orders_this_period": 0, "payment_retry_count": 0})

	bin := filepath.Join(dir, "bin")
	if err := os.Mkdir(bin, 0o755); err != nil {
		t.Fatal(err)
	}
	wrapper := "#!/bin/sh\nTOLLGATE_TEST_MAIN=1 exec '" + os.Args[0] + "' -test.run='^$' -- \"$@\"\n"
	if err := os.WriteFile(filepath.Join(bin, "tollgate"), []byte(wrapper), 0o755); err != nil {
		t.Fatal(err)
	}
	work := filepath.Join(dir, "work")
	if err := os.Mkdir(work, 0o755); err != nil {
		t.Fatal(err)
	}
	api := freeAddr(t)
	script := "set -euo pipefail\n" + strings.Join(blocks, "\n")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bash, "-c", script)
	cmd.Dir = work
	cmd.Env = append(os.Environ(), "PATH="+bin+string(os.PathListSeparator)+os.Getenv("PATH"),
		"APP_DB="+appDB, "TOLLGATE_LISTEN="+api, "TOLLGATE_ADDR="+api,
		"TOLLGATE_WEBHOOK_LISTEN="+freeAddr(t), "TOLLGATE_OPS_LISTEN="+freeAddr(t),
		"TOLLGATE_STRIPE_WEBHOOK_SECRET=whsec_guide_test")
	// Its own process group, so a serve the script left behind on failure is stopped too.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err = cmd.Run()
	if cmd.Process != nil {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	}
	if err != nil {
		t.Fatalf("the guide failed: %v\n%s", err, out.String())
	}
	for _, want := range []string{
		"dry run: 0 problem(s); nothing written",
		"vendor_subscriptions   2     2         0        0",
		"ALLOW  vendor 42  order.create  (ok)",
		"DENY  vendor 42  feature.use  (feature_missing)",
		"42 order.create True",
		"43 order.create False Subscription is not active",
		`"id":"evt_done","type":"customer.subscription.updated","status":"processed"`,
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("the guide's output lacks %q:\n%s", want, out.String())
		}
	}
	// The rollback put the store from before the cut-over back, and the catalog stays.
	for _, p := range []string{"data/tollgate.db", "catalog.yaml"} {
		if _, err := os.Stat(filepath.Join(work, p)); err != nil {
			t.Errorf("after the guide: %v", err)
		}
	}
	if _, err := os.Stat(filepath.Join(work, "data.before-cutover")); !os.IsNotExist(err) {
		t.Errorf("the rollback left data.before-cutover: %v", err)
	}
}
