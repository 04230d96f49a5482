package policy

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tollgate-pdp/tollgate"
)

// recorder is an Observer that keeps PolicyLoaded calls.
type recorder struct {
	tollgate.NopObserver
	mu    sync.Mutex
	loads []loaded
}

type loaded struct {
	revision string
	err      error
}

func (r *recorder) PolicyLoaded(rev string, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.loads = append(r.loads, loaded{rev, err})
}

func (r *recorder) last() loaded {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.loads[len(r.loads)-1]
}

func TestPolicyDirAddsFiles(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "extra.rego"), "package tollgate\n\nextra := 7\n")
	writeFile(t, filepath.Join(dir, "extra_test.rego"), "package tollgate\n\ntest_x if true\n")
	writeFile(t, filepath.Join(dir, "notes.txt"), "not rego")
	e := newEngine(t, Options{PolicyDir: dir})
	res, defined, err := e.Query(context.Background(), "tollgate/extra", nil)
	if err != nil || !defined || res == nil {
		t.Fatalf("extra = %v %v %v", res, defined, err)
	}
	if _, defined, _ := e.Query(context.Background(), "tollgate/test_x", nil); defined {
		t.Fatal("test files must not be served")
	}
}

func TestPolicyDirReplacesFiles(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "upgrade.rego"), "package tollgate\n\nupgrade_to := \"call_sales\"\n")
	e := newEngine(t, Options{PolicyDir: dir})
	d := decide(t, e, facts(vendor("essential", tollgate.StatusActive, 100), tollgate.CheckRequest{Action: "order.create"}))
	if d.UpgradeTo == nil || *d.UpgradeTo != "call_sales" {
		t.Fatalf("%+v", d)
	}
}

func TestPolicyDirBrokenAtStart(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "broken.rego"), "package tollgate\n\nx := \n")
	rec := &recorder{}
	if _, err := New(context.Background(), Options{PolicyDir: dir, Observer: rec}); err == nil {
		t.Fatal("want an error for a policy that does not compile")
	}
	if rec.last().err == nil {
		t.Fatal("observer not told")
	}
	if _, err := New(context.Background(), Options{PolicyDir: filepath.Join(dir, "missing")}); err == nil {
		t.Fatal("want an error for a missing policy dir")
	}
}

func TestReloadBrokenKeepsRunningPolicy(t *testing.T) {
	dir := t.TempDir()
	rec := &recorder{}
	e := newEngine(t, Options{PolicyDir: dir, Observer: rec})
	ctx := context.Background()
	rev := e.Revision()
	if err := e.Reload(ctx); err != nil || e.Revision() != rev || len(rec.loads) != 1 {
		t.Fatalf("unchanged reload: err %v, %d loads", err, len(rec.loads))
	}

	writeFile(t, filepath.Join(dir, "broken.rego"), "package tollgate\n\ndecision := {\n")
	err := e.Reload(ctx)
	if err == nil {
		t.Fatal("want a reload error")
	}
	if e.Revision() != rev || !errors.Is(e.LastError(), err) && e.LastError().Error() != err.Error() {
		t.Fatalf("revision %s (was %s), LastError %v", e.Revision(), rev, e.LastError())
	}
	if l := rec.last(); l.err == nil || l.revision == rev {
		t.Fatalf("observer got %+v", l)
	}
	ok, detail := e.Ready()
	if !ok || !strings.Contains(detail, "failed") || !strings.Contains(detail, rev) {
		t.Fatalf("Ready = %v %q", ok, detail)
	}
	// Still serving the old policy.
	if d := decide(t, e, facts(vendor("essential", tollgate.StatusActive, 1), tollgate.CheckRequest{Action: "order.create"})); !d.Allow {
		t.Fatalf("%+v", d)
	}
	// Compile errors count too, not only syntax errors.
	writeFile(t, filepath.Join(dir, "broken.rego"), "package tollgate\n\ny := no_such_function(1)\n")
	if err := e.Reload(ctx); err == nil || e.Revision() != rev {
		t.Fatalf("compile error: err %v", err)
	}

	if err := os.Remove(filepath.Join(dir, "broken.rego")); err != nil {
		t.Fatal(err)
	}
	if err := e.Reload(ctx); err != nil || e.LastError() != nil {
		t.Fatalf("after the fix: %v / %v", err, e.LastError())
	}
	if _, detail := e.Ready(); strings.Contains(detail, "failed") {
		t.Fatalf("detail %q", detail)
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestWatchFileEvents(t *testing.T) {
	dir := t.TempDir()
	// A long poll interval: the change must be picked up by the file event.
	e := newEngine(t, Options{PolicyDir: dir, PollInterval: time.Hour})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.Watch(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()
	rev := e.Revision()
	time.Sleep(50 * time.Millisecond) // let the watcher start
	writeFile(t, filepath.Join(dir, "extra.rego"), "package tollgate\n\nextra := 1\n")
	waitFor(t, "reload after a file event", func() bool { return e.Revision() != rev })
}

// TestWatchConfigMapSwap mimics a Kubernetes ConfigMap volume: the visible files are symlinks
// into ..data, itself a symlink to a timestamped directory that is swapped atomically.
func TestWatchConfigMapSwap(t *testing.T) {
	dir := t.TempDir()
	version := func(name, text string) {
		if err := os.Mkdir(filepath.Join(dir, name), 0o755); err != nil {
			t.Fatal(err)
		}
		writeFile(t, filepath.Join(dir, name, "extra.rego"), text)
	}
	version("..v1", "package tollgate\n\nextra := 1\n")
	if err := os.Symlink("..v1", filepath.Join(dir, "..data")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("..data/extra.rego", filepath.Join(dir, "extra.rego")); err != nil {
		t.Fatal(err)
	}
	e := newEngine(t, Options{PolicyDir: dir, PollInterval: time.Hour})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { _ = e.Watch(ctx) }()
	query := func() any {
		v, _, _ := e.Query(context.Background(), "tollgate/extra", nil)
		return v
	}
	if q := query(); q == nil {
		t.Fatal("extra not loaded through the symlinks")
	}
	time.Sleep(50 * time.Millisecond)
	version("..v2", "package tollgate\n\nextra := 2\n")
	if err := os.Symlink("..v2", filepath.Join(dir, "..data_tmp")); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(filepath.Join(dir, "..data_tmp"), filepath.Join(dir, "..data")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "reload after the ..data swap", func() bool { return query() != nil && query().(interface{ String() string }).String() == "2" })
}

func TestWatchPolls(t *testing.T) {
	dir := t.TempDir()
	e := newEngine(t, Options{PolicyDir: dir, PollInterval: 30 * time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	rev := e.Revision()
	// The file exists before Watch starts, so only the poll can see it.
	writeFile(t, filepath.Join(dir, "extra.rego"), "package tollgate\n\nextra := 1\n")
	go func() { _ = e.Watch(ctx) }()
	waitFor(t, "reload by polling", func() bool { return e.Revision() != rev })
}
