package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	tgsync "github.com/tollgate-pdp/tollgate/sync"
)

const testWebhookSecret = "whsec_e2e_test_secret"

// subscriptionEvent builds a customer.subscription.* event from Stripe's own post-basil
// fixture subscription, made vendor's, on the given price lookup key (a tier code).
func subscriptionEvent(t *testing.T, id, typ, vendor, status, tier string, created time.Time) []byte {
	t.Helper()
	raw, err := os.ReadFile("../../sync/testdata/stripe/fixtures3-api-latest.json")
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Resources map[string]map[string]any `json:"resources"`
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	sub := doc.Resources["subscription"]
	start := created.Add(-24 * time.Hour).Unix()
	end := created.Add(29 * 24 * time.Hour).Unix()
	sub["id"], sub["status"], sub["customer"] = "sub_"+vendor, status, "cus_"+vendor
	sub["metadata"] = map[string]any{"vendor_id": vendor}
	sub["cancel_at_period_end"], sub["cancel_at"], sub["canceled_at"], sub["ended_at"] = false, nil, nil, nil
	sub["trial_end"], sub["pending_update"], sub["schedule"] = nil, nil, nil
	item := sub["items"].(map[string]any)["data"].([]any)[0].(map[string]any)
	item["current_period_start"], item["current_period_end"] = start, end
	price := item["price"].(map[string]any)
	price["id"], price["lookup_key"] = "price_"+tier, tier
	event := doc.Resources["event"]
	event["id"], event["type"], event["created"] = id, typ, created.Unix()
	event["api_version"] = "2025-03-31.basil"
	event["data"] = map[string]any{"object": sub}
	out, err := json.Marshal(event)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func postWebhook(t *testing.T, addr string, payload []byte, header string) int {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, "http://"+addr+"/webhooks/stripe", bytes.NewReader(payload))
	if err != nil {
		t.Fatal(err)
	}
	if header != "" {
		req.Header.Set("Stripe-Signature", header)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// TestServeAppliesSignedStripeWebhooks drives the wired binary: signed webhooks built from
// Stripe's fixtures change decisions, unsigned ones are refused, and the event log and
// billing routes show what happened.
func TestServeAppliesSignedStripeWebhooks(t *testing.T) {
	c := startServe(t, t.TempDir(), "--stripe-webhook-secret", "whsec_old,"+testWebhookSecret)
	now := time.Now()
	check := func(body string) map[string]any {
		var d map[string]any
		if code, err := do(context.Background(), http.DefaultClient, http.MethodPost, "http://"+c.api+"/v1/check", json.RawMessage(body), &d); err != nil || code != 200 {
			t.Fatalf("check %s: %d %v", body, code, err)
		}
		return d
	}
	api := `{"vendor_id":"e2e-1","action":"feature.use","feature":"api_access"}`
	if d := check(api); d["code"] != "unknown_vendor" {
		t.Fatalf("before any event: %v", d)
	}

	created := subscriptionEvent(t, "evt_e2e_1", "customer.subscription.created", "e2e-1", "active", "business", now.Add(-time.Minute))
	if code := postWebhook(t, c.webhook, created, ""); code != 400 {
		t.Fatalf("unsigned webhook: want 400, got %d", code)
	}
	if code := postWebhook(t, c.webhook, created, tgsync.SignatureHeader(created, now, "whsec_wrong")); code != 400 {
		t.Fatalf("wrong secret: want 400, got %d", code)
	}
	if d := check(api); d["code"] != "unknown_vendor" {
		t.Fatalf("a refused webhook changed state: %v", d)
	}
	if code := postWebhook(t, c.webhook, created, tgsync.SignatureHeader(created, now, testWebhookSecret)); code != 200 {
		t.Fatalf("signed webhook: want 200, got %d\n%s", code, c.logs)
	}
	if d := check(api); d["allow"] != true || d["tier"] != "business" || d["status"] != "active" {
		t.Fatalf("after subscription.created: %v", d)
	}

	// past_due keeps access (grace); a downgrade to essential takes api_access away.
	updated := subscriptionEvent(t, "evt_e2e_2", "customer.subscription.updated", "e2e-1", "past_due", "essential", now)
	if code := postWebhook(t, c.webhook, updated, tgsync.SignatureHeader(updated, now, "whsec_old")); code != 200 {
		t.Fatalf("rotated (old) secret: want 200, got %d", code)
	}
	d := check(api)
	if d["allow"] != false || d["code"] != "feature_missing" || d["status"] != "past_due" || d["upgrade_to"] != "business" {
		t.Fatalf("after subscription.updated: %v", d)
	}
	// A redelivery of the older event changes nothing.
	if code := postWebhook(t, c.webhook, created, tgsync.SignatureHeader(created, now, testWebhookSecret)); code != 200 {
		t.Fatalf("duplicate: want 200, got %d", code)
	}
	if d := check(api); d["status"] != "past_due" {
		t.Fatalf("a duplicate undid newer state: %v", d)
	}

	var events struct {
		Events []map[string]any `json:"events"`
	}
	if code, err := do(context.Background(), http.DefaultClient, http.MethodGet, "http://"+c.api+"/v1/events?vendor_id=e2e-1", nil, &events); err != nil || code != 200 {
		t.Fatalf("events: %d %v", code, err)
	}
	if len(events.Events) != 2 || events.Events[0]["id"] != "evt_e2e_2" || events.Events[1]["id"] != "evt_e2e_1" {
		t.Fatalf("event log: %v", events.Events)
	}
	var billing map[string]any
	if code, err := do(context.Background(), http.DefaultClient, http.MethodGet, "http://"+c.api+"/v1/vendors/e2e-1/billing", nil, &billing); err != nil || code != 200 {
		t.Fatalf("billing: %d %v", code, err)
	}
	if inv, ok := billing["invoices"].([]any); !ok || len(inv) != 0 {
		t.Fatalf("billing: %v", billing)
	}
}

// TestReplayAndBackfillCommands runs `tollgate replay` on saved events and `tollgate backfill`
// against stripe-mock on loopback.
func TestReplayAndBackfillCommands(t *testing.T) {
	dir := t.TempDir()
	now := time.Now()
	lines := [][]byte{
		subscriptionEvent(t, "evt_r_1", "customer.subscription.created", "r-1", "trialing", "professional", now.Add(-time.Hour)),
		subscriptionEvent(t, "evt_r_2", "customer.subscription.updated", "r-1", "active", "professional", now),
		subscriptionEvent(t, "evt_r_1", "customer.subscription.created", "r-1", "trialing", "professional", now.Add(-time.Hour)),
	}
	file := writeFile(t, dir, "events.jsonl", string(bytes.Join(lines, []byte("\n")))+"\n")
	out, _, err := run(t, "replay", "--data-dir", dir, file)
	if err != nil {
		t.Fatalf("replay: %v\n%s", err, out)
	}
	for _, want := range []string{"replayed 3 line(s)", "processed: 2", "duplicate: 1"} {
		if !strings.Contains(out, want) {
			t.Errorf("replay output lacks %q:\n%s", want, out)
		}
	}
	out, _, err = run(t, "replay", "--data-dir", dir, file)
	if err != nil || !strings.Contains(out, "duplicate: 3") {
		t.Fatalf("a second replay must change nothing: %v\n%s", err, out)
	}

	base := startStripeMock(t)
	out, stderr, err := run(t, "backfill", "--data-dir", dir, "--stripe-api-key", "sk_test_123", "--stripe-api-base", base)
	if err != nil {
		t.Fatalf("backfill: %v\n%s\n%s", err, out, stderr)
	}
	// stripe-mock's own subscription names no vendor: it is skipped, with the reason.
	if !strings.Contains(out, "backfill done") || !strings.Contains(out, "skipped: ") {
		t.Fatalf("backfill summary: %s", out)
	}
	if _, _, err := run(t, "backfill", "--data-dir", dir); err == nil || !strings.Contains(err.Error(), "--stripe-api-key") {
		t.Fatalf("backfill without a key: %v", err)
	}
}

// startStripeMock runs stripe-mock (installed by `make tools`) on free loopback ports.
func startStripeMock(t *testing.T) string {
	t.Helper()
	bin, err := exec.LookPath("stripe-mock")
	if err != nil {
		gopath, _ := exec.Command("go", "env", "GOPATH").Output()
		bin = filepath.Join(strings.TrimSpace(string(gopath)), "bin", "stripe-mock")
		if _, err := os.Stat(bin); err != nil {
			t.Fatal("stripe-mock is not installed: run `go install github.com/stripe/stripe-mock@v0.203.0` (make tools)")
		}
	}
	httpAddr, httpsAddr := freeAddr(t), freeAddr(t)
	cmd := exec.Command(bin, "-http-addr", httpAddr, "-https-addr", httpsAddr)
	var logs bytes.Buffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if conn, err := net.DialTimeout("tcp", httpAddr, 200*time.Millisecond); err == nil {
			conn.Close()
			return "http://" + httpAddr
		}
	}
	t.Fatalf("stripe-mock did not start: %s", logs.String())
	return ""
}
