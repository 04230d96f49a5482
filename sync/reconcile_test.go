package sync

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tollgate-pdp/tollgate"
)

// stripeMockBinary finds stripe-mock on PATH or in GOPATH/bin. Its absence fails the test:
// the Stripe API is never faked by hand.
func stripeMockBinary(t testing.TB) string {
	t.Helper()
	if p, err := exec.LookPath("stripe-mock"); err == nil {
		return p
	}
	gopath := os.Getenv("GOPATH")
	if gopath == "" {
		if out, err := exec.Command("go", "env", "GOPATH").Output(); err == nil {
			gopath = strings.TrimSpace(string(out))
		}
	}
	if p := filepath.Join(gopath, "bin", "stripe-mock"); gopath != "" {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	t.Fatal("stripe-mock is not installed: run `go install github.com/stripe/stripe-mock@v0.203.0` (make tools)")
	return ""
}

// startStripeMock runs stripe-mock on a free loopback port with the given fixtures document
// and returns its base URL.
func startStripeMock(t testing.TB, fixtures map[string]any) string {
	t.Helper()
	bin := stripeMockBinary(t)
	path := filepath.Join(t.TempDir(), "fixtures.json")
	if err := os.WriteFile(path, mustJSON(t, fixtures), 0o600); err != nil {
		t.Fatal(err)
	}
	// two free loopback ports: stripe-mock also serves HTTPS, by default on a fixed port
	var addrs []string
	var ls []net.Listener
	for range 2 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ls = append(ls, l)
		addrs = append(addrs, l.Addr().String())
	}
	for _, l := range ls {
		_ = l.Close()
	}
	addr := addrs[0]
	cmd := exec.Command(bin, "-http-addr", addrs[0], "-https-addr", addrs[1], "-fixtures", path)
	var logs bytes.Buffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatalf("start stripe-mock: %v", err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	deadline := time.Now().Add(15 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err == nil {
			_ = c.Close()
			return "http://" + addr
		}
		if time.Now().After(deadline) {
			t.Fatalf("stripe-mock did not listen on %s: %s", addr, logs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// mockFixtures is Stripe's latest (post-basil) fixture document with the subscription made a
// tollgate vendor's, and the event fixture made an update of it at eventCreated.
func mockFixtures(t testing.TB, eventCreated int64) map[string]any {
	t.Helper()
	docs, err := loadFixtures()
	if err != nil {
		t.Fatal(err)
	}
	res := map[string]any{}
	for k, v := range docs[eraBasil] {
		var m any
		if err := json.Unmarshal(v, &m); err != nil {
			t.Fatal(err)
		}
		res[k] = m
	}
	sub := subObject(t, eraBasil, "sub_mock", "cus_mock", "active", "price_pro_m", "501", tPeriodStart, tPeriodEnd)
	res["subscription"] = sub
	item := res["subscription_item"].(map[string]any)
	item["current_period_start"], item["current_period_end"] = tPeriodStart, tPeriodEnd
	var upd map[string]any
	if err := json.Unmarshal(mustJSON(t, sub), &upd); err != nil {
		t.Fatal(err)
	}
	upd["status"] = "past_due"
	ev := res["event"].(map[string]any)
	ev["id"], ev["type"], ev["created"], ev["api_version"] = "evt_mock_1", "customer.subscription.updated", eventCreated, eraBasil
	ev["data"] = map[string]any{"object": upd}
	// stripe-mock fills nested objects (subscription items, their prices) from their own
	// fixtures: make the fixture price the catalog's professional monthly price everywhere
	doc := bytes.ReplaceAll(mustJSON(t, map[string]any{"resources": res}), []byte(`"price_1PgafmB7WZ01zgkW6dKueIc5"`), []byte(`"price_pro_m"`))
	var out map[string]any
	if err := json.Unmarshal(doc, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestReconcileAgainstStripeMock(t *testing.T) {
	e := newEnv(t)
	base := startStripeMock(t, mockFixtures(t, e.now.Unix()+10))
	ctx := context.Background()
	sy := e.newSyncer(func(o *Options) { o.APIKey, o.APIBase = "sk_test_123", base })

	if ok, _ := sy.Ready(); ok {
		t.Fatal("ready before the first reconciliation")
	}
	var progress []int
	sum, err := sy.Backfill(ctx, func(done int) { progress = append(progress, done) })
	if err != nil {
		t.Fatalf("backfill: %v", err)
	}
	if sum.Created != 1 || sum.Updated != 0 || len(progress) == 0 || progress[len(progress)-1] != 1 {
		t.Fatalf("backfill summary %+v, progress %v", sum, progress)
	}
	v := e.vendor("501")
	if v.Tier != "professional" || v.Status != tollgate.StatusActive || v.StripeSubscriptionID != "sub_mock" ||
		v.PeriodStart == nil || v.PeriodStart.Unix() != tPeriodStart {
		t.Fatalf("backfilled vendor: %+v", v)
	}

	sum, err = sy.Reconcile(ctx)
	if err != nil || sum.Updated != 1 || sum.Created != 0 {
		t.Fatalf("reconcile: %+v %v", sum, err)
	}
	if ok, detail := sy.Ready(); !ok {
		t.Fatalf("not ready after reconciliation: %s", detail)
	}

	// polling applies the event not yet recorded; a second poll finds nothing new to change
	n, err := sy.Poll(ctx)
	if err != nil || n != 1 {
		t.Fatalf("poll: %d %v", n, err)
	}
	if v := e.vendor("501"); v.Status != tollgate.StatusPastDue {
		t.Fatalf("after poll: %s", v.Status)
	}
	if rec := e.event("evt_mock_1"); rec.Source != SourcePoll || rec.Status != tollgate.OutcomeProcessed {
		t.Fatalf("polled event record: %+v", rec)
	}
	before, _ := e.store.Vendor("501")
	if _, err := sy.Poll(ctx); err != nil {
		t.Fatal(err)
	}
	if after, _ := e.store.Vendor("501"); after.Revision != before.Revision {
		t.Fatal("a second poll changed state")
	}

	// an account whose prices the catalog does not know: skipped with a reason
	e2 := newEnv(t, func(o *Options) {
		o.APIKey, o.APIBase = "sk_test_123", base
		o.Catalog = tollgate.DefaultCatalog()
	})
	sum, err = e2.syncer.Backfill(ctx, nil)
	if err != nil || sum.Skipped["no tier"] != 1 || sum.Created != 0 {
		t.Fatalf("backfill with unknown prices: %+v %v", sum, err)
	}

	// without a key: refused clearly
	if _, err := e.syncer.Backfill(ctx, nil); tollgate.ErrorCode(err) != tollgate.EUnavailable {
		t.Fatalf("backfill without key: %v", err)
	}
}

func TestTieSettledFromStripeMock(t *testing.T) {
	e := newEnv(t)
	base := startStripeMock(t, mockFixtures(t, e.now.Unix()))
	e.syncer = e.newSyncer(func(o *Options) { o.APIKey, o.APIBase = "sk_test_123", base })
	// two events of the same second disagree; the API says active
	sub := subObject(t, eraBasil, "sub_mock", "cus_mock", "canceled", "price_pro_m", "501", tPeriodStart, tPeriodEnd)
	e.mustDeliver(event(t, eraBasil, "evt_tie_1", "customer.subscription.updated", e.now.Unix()-5, sub), tollgate.OutcomeProcessed)
	sub["status"] = "unpaid"
	e.mustDeliver(event(t, eraBasil, "evt_tie_2", "customer.subscription.updated", e.now.Unix()-5, sub), tollgate.OutcomeProcessed)
	if v := e.vendor("501"); v.Status != tollgate.StatusActive || v.StripeStatus != "active" {
		t.Fatalf("tie not settled from the API: %s/%s", v.Status, v.StripeStatus)
	}
}

func TestReplay(t *testing.T) {
	rng := rand.New(rand.NewPCG(42, 4242))
	events := lifecycle(t, rng, 20, 50)
	var file bytes.Buffer
	for _, ev := range events {
		file.Write(mustJSON(t, ev))
		file.WriteString("\n")
	}
	file.WriteString("\nnot json\n")

	// the state replay reaches equals webhook delivery's
	hooks := newEnv(t)
	for _, ev := range events {
		if _, err := hooks.deliver(ev); err != nil {
			t.Fatal(err)
		}
	}
	e := newEnv(t)
	sum, err := e.syncer.Replay(context.Background(), bytes.NewReader(file.Bytes()))
	if err != nil {
		t.Fatalf("replay: %v", err)
	}
	if sum.Lines != 52 || sum.Outcomes[tollgate.OutcomeRejected] != 1 {
		t.Fatalf("replay summary %+v", sum)
	}
	if want, got := stateOf(t, hooks), stateOf(t, e); fmt.Sprint(want) != fmt.Sprint(got) {
		t.Fatalf("replay state differs from webhook state\nwant %v\ngot  %v", want, got)
	}
	// replaying again changes nothing
	sum, err = e.syncer.Replay(context.Background(), bytes.NewReader(file.Bytes()))
	if err != nil || sum.Outcomes[tollgate.OutcomeDuplicate] != 50 {
		t.Fatalf("second replay: %+v %v", sum, err)
	}
	if rec := e.event(events[0]["id"].(string)); rec.Source != SourceReplay {
		t.Fatalf("replayed event source %q", rec.Source)
	}
}
