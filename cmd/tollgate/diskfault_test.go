package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/tollgate-pdp/tollgate"
	"github.com/tollgate-pdp/tollgate/cache"
)

// With TOLLGATE_TEST_FSIZE=N the child runs under RLIMIT_FSIZE N bytes (soft; the hard limit
// stays unlimited so the parent can lift it with prlimit) and ignores SIGXFSZ, so a write past
// N fails with EFBIG as on a full disk instead of killing the process. init runs before
// TestMain, so before main().
func init() {
	v := os.Getenv("TOLLGATE_TEST_FSIZE")
	if v == "" || os.Getenv("TOLLGATE_TEST_MAIN") != "1" {
		return
	}
	n, err := strconv.ParseUint(v, 10, 64)
	if err != nil {
		panic(err)
	}
	signal.Ignore(syscall.SIGXFSZ)
	if err := syscall.Setrlimit(syscall.RLIMIT_FSIZE, &syscall.Rlimit{Cur: n, Max: unix.RLIM_INFINITY}); err != nil {
		panic(err)
	}
}

// startServeEnv is startServe with extra environment for the child.
func startServeEnv(t *testing.T, env []string, dataDir string, extra ...string) *child {
	t.Helper()
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v) // inherited by the child through os.Environ()
	}
	return startServe(t, dataDir, extra...)
}

// TestDiskFullWritesAnswer503 runs the child with a file-size limit at the store's current size,
// so the store cannot grow: writes must answer 503 (never a 2xx for a write that is not
// durable), checks keep answering from memory, and once the limit is lifted (prlimit from the
// parent) writes succeed again; after a restart every acknowledged write is there and the store
// passes the consistency check.
func TestDiskFullWritesAnswer503(t *testing.T) {
	dataDir := t.TempDir()
	db := filepath.Join(dataDir, "tollgate.db")
	start := time.Now().UTC().Truncate(time.Second).Add(-time.Hour)
	end := start.Add(30 * 24 * time.Hour)
	period := start.Format(time.RFC3339)
	ctx := context.Background()
	client := &http.Client{Timeout: 5 * time.Second}

	// Seed without a limit.
	c := startServe(t, dataDir)
	sub := tollgate.Subscription{VendorID: "df-1", Tier: "enterprise", Status: tollgate.StatusActive, PeriodStart: &start, PeriodEnd: &end}
	if code, err := do(ctx, client, http.MethodPut, "http://"+c.api+"/v1/vendors/df-1", sub, nil); err != nil || code != 200 {
		t.Fatalf("seed: %d %v", code, err)
	}
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	_ = c.cmd.Wait()
	fi, err := os.Stat(db)
	if err != nil {
		t.Fatal(err)
	}

	c = startServeEnv(t, []string{"TOLLGATE_TEST_FSIZE=" + strconv.FormatInt(fi.Size(), 10)}, dataDir,
		"--stripe-webhook-secret", testWebhookSecret)
	acked := int64(0)
	var refused, other int
	big := strings.Repeat("k", 200) // large idempotency keys make the store grow fast
	i := 0
	for ; i < 20000 && refused < 20; i++ {
		body := map[string]any{"vendor_id": "df-1", "metric": "orders", "delta": 1, "idempotency_key": fmt.Sprintf("%s-%d", big, i)}
		code, err := do(ctx, client, http.MethodPost, "http://"+c.api+"/v1/usage", body, nil)
		switch {
		case err != nil:
			t.Fatalf("write %d: %v (the process died?)\n%s", i, err, c.logs)
		case code == 200:
			acked++
		case code == 503:
			refused++
		default:
			other++
		}
	}
	if refused == 0 {
		t.Fatalf("the store never filled up after %d writes (limit %d bytes)", i, fi.Size())
	}
	if other != 0 {
		t.Fatalf("%d writes answered neither 200 nor 503", other)
	}
	// Checks keep answering from memory, and say what was acknowledged.
	var state tollgate.VendorState
	if code, err := do(ctx, client, http.MethodGet, "http://"+c.api+"/v1/vendors/df-1", nil, &state); err != nil || code != 200 {
		t.Fatalf("read while full: %d %v", code, err)
	}
	if got := state.Usage.OrdersIn(period); got != acked {
		t.Fatalf("while full: memory says %d orders, %d were acknowledged", got, acked)
	}
	var d map[string]any
	if code, err := do(ctx, client, http.MethodPost, "http://"+c.api+"/v1/check", map[string]any{"vendor_id": "df-1", "action": "feature.use", "feature": "api_access"}, &d); err != nil || code != 200 || d["allow"] != true {
		t.Fatalf("check while full: %d %v %v", code, err, d)
	}
	// An admin write is refused too (with 503, not a 2xx).
	sub.Tier = "business"
	if code, _ := do(ctx, client, http.MethodPut, "http://"+c.api+"/v1/vendors/df-2", tollgate.Subscription{VendorID: "df-2", Tier: "business", Status: tollgate.StatusActive, PeriodStart: &start, PeriodEnd: &end}, nil); code != 503 && code != 200 {
		t.Fatalf("admin write while full: %d", code)
	}
	// A webhook is refused with 503 too, so Stripe retries it later.
	tpl := newEventTemplate(t, "business")
	if code := signedPost(client, c.webhook, tpl.event("evt_full", "df-wh"), testWebhookSecret); code != 503 {
		t.Fatalf("webhook while full: %d, want 503", code)
	}
	t.Logf("full: %d writes acknowledged, %d refused with 503 (limit %d bytes)", acked, refused, fi.Size())

	// Space returns: lift the limit from outside.
	if err := unix.Prlimit(c.cmd.Process.Pid, unix.RLIMIT_FSIZE, &unix.Rlimit{Cur: unix.RLIM_INFINITY, Max: unix.RLIM_INFINITY}, nil); err != nil {
		t.Fatalf("prlimit: %v", err)
	}
	recovered := false
	for j := 0; j < 200; j++ {
		body := map[string]any{"vendor_id": "df-1", "metric": "orders", "delta": 1, "idempotency_key": fmt.Sprintf("after-%d", j)}
		code, err := do(ctx, client, http.MethodPost, "http://"+c.api+"/v1/usage", body, nil)
		if err != nil {
			t.Fatal(err)
		}
		if code == 200 {
			acked++
			recovered = true
		} else if recovered {
			t.Fatalf("write %d after recovery: %d", j, code)
		}
		if !recovered {
			time.Sleep(50 * time.Millisecond)
		}
	}
	if !recovered {
		t.Fatalf("writes never recovered after the limit was lifted\n%s", c.logs)
	}
	if resp, err := client.Get("http://" + c.ops + "/health/ready"); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("not ready after recovery: %v %v", resp, err)
	} else {
		resp.Body.Close()
	}
	c.kill9(t)

	store, err := cache.Open(ctx, cache.Options{Path: db})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	if err := store.Check(ctx); err != nil {
		t.Fatal(err)
	}
	v, _ := store.Vendor("df-1")
	if _, ok := store.Vendor("df-wh"); ok {
		t.Fatal("the webhook answered 503 was applied anyway")
	}
	if got := v.Usage.OrdersIn(period); got != acked {
		t.Fatalf("after restart: %d orders stored, %d acknowledged", got, acked)
	}
	t.Logf("after lifting the limit and kill -9: %d acknowledged writes all stored, store checks", acked)
}

// TestServeRefusesBadStoreFiles starts `tollgate serve` on a store that is truncated, random
// bytes, or locked by another process: a clear error at start, a non-zero exit, and the file
// byte-for-byte untouched.
func TestServeRefusesBadStoreFiles(t *testing.T) {
	// A real store to damage.
	good := t.TempDir()
	c := startServe(t, good)
	start := time.Now().UTC()
	for i := 0; i < 30; i++ {
		sub := tollgate.Subscription{VendorID: fmt.Sprintf("bs-%d", i), Tier: "business", Status: tollgate.StatusActive, PeriodStart: &start}
		if code, err := do(context.Background(), http.DefaultClient, http.MethodPut, fmt.Sprintf("http://%s/v1/vendors/bs-%d", c.api, i), sub, nil); err != nil || code != 200 {
			t.Fatalf("seed: %d %v", code, err)
		}
	}
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	_ = c.cmd.Wait()
	raw, err := os.ReadFile(filepath.Join(good, "tollgate.db"))
	if err != nil {
		t.Fatal(err)
	}
	random := make([]byte, 64<<10)
	_, _ = rand.Read(random)
	serveFails := func(name, dataDir, want string) {
		t.Helper()
		db := filepath.Join(dataDir, "tollgate.db")
		before, _ := os.ReadFile(db)
		cmd := exec.Command(os.Args[0], "-test.run=^$", "--", "serve", "--data-dir", dataDir,
			"--listen", freeAddr(t), "--webhook-listen", freeAddr(t), "--ops-listen", freeAddr(t))
		cmd.Env = append(os.Environ(), "TOLLGATE_TEST_MAIN=1")
		done := make(chan struct{})
		var out []byte
		var err error
		go func() { out, err = cmd.CombinedOutput(); close(done) }()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			_ = cmd.Process.Kill()
			t.Fatalf("%s: serve did not exit", name)
		}
		if err == nil || !strings.Contains(string(out), want) {
			t.Fatalf("%s: exit %v, want an error containing %q:\n%s", name, err, want, out)
		}
		if after, _ := os.ReadFile(db); !bytes.Equal(before, after) {
			t.Fatalf("%s: the store file was changed", name)
		}
		t.Logf("%s: %s", name, strings.TrimSpace(lastLine(string(out))))
	}
	for _, tc := range []struct {
		name    string
		content []byte
		want    string
	}{
		// bbolt grows the file ahead of use, so a cut above the high-water mark loses nothing and
		// opens; these cuts are below it.
		{"truncated to 3 pages", raw[:3*4096], "truncated"},
		{"truncated mid-page", raw[:2*4096+1000], "truncated"},
		{"truncated to 100 bytes", raw[:100], "not a tollgate store or corrupted"},
		{"random bytes", random, "not a tollgate store or corrupted"},
		{"empty file", nil, "not a tollgate store or corrupted"},
	} {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, "tollgate.db"), tc.content, 0o600); err != nil {
			t.Fatal(err)
		}
		serveFails(tc.name, dir, tc.want)
	}
	// Locked by another process (here: this test process holds it open).
	store, err := cache.Open(context.Background(), cache.Options{Path: filepath.Join(good, "tollgate.db")})
	if err != nil {
		t.Fatal(err)
	}
	serveFails("locked by another process", good, "locked by another process")
	store.Close()
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}
