package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tollgate-pdp/tollgate"
	tgsync "github.com/tollgate-pdp/tollgate/sync"
)

// TestDecisionListenerRefusesRemoteBind starts `tollgate serve` for real on a non-loopback
// address: refused without --allow-remote, refused with --allow-remote but no admin token,
// served with both.
func TestDecisionListenerRefusesRemoteBind(t *testing.T) {
	port := strings.Split(freeAddr(t), ":")[1]
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--listen", "0.0.0.0:" + port}, "not a loopback address"},
		{[]string{"--listen", "[::]:" + port}, "not a loopback address"},
		{[]string{"--listen", "192.0.2.1:" + port}, "not a loopback address"},
		{[]string{"--listen", "0.0.0.0:" + port, "--allow-remote"}, "--allow-remote requires --admin-token"},
	} {
		args := append([]string{"-test.run=^$", "--", "serve", "--data-dir", t.TempDir(), "--webhook-listen", freeAddr(t), "--ops-listen", freeAddr(t)}, tc.args...)
		cmd := exec.Command(os.Args[0], args...)
		cmd.Env = append(os.Environ(), "TOLLGATE_TEST_MAIN=1")
		out, err := cmd.CombinedOutput()
		if err == nil || !strings.Contains(string(out), tc.want) {
			t.Fatalf("serve %v: err=%v, want %q in:\n%s", tc.args, err, tc.want, out)
		}
		if ln, lerr := net.Listen("tcp", "0.0.0.0:"+port); lerr != nil {
			t.Fatalf("serve %v left the port bound: %v", tc.args, lerr)
		} else {
			ln.Close()
		}
	}
	c := startServe(t, t.TempDir(), "--listen", "0.0.0.0:"+port, "--allow-remote")
	resp, err := http.Get("http://127.0.0.1:" + port + "/v1/tiers")
	if err != nil {
		t.Fatalf("remote listener with --allow-remote and a token: %v\n%s", err, c.logs)
	}
	resp.Body.Close()
}

// TestAdminTokenComparedInConstantTime pins the implementation: the admin token is compared
// with crypto/subtle, the webhook signature with hmac.Equal, and neither with ==.
func TestAdminTokenComparedInConstantTime(t *testing.T) {
	auth, err := os.ReadFile("../../api/auth.go")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(auth, []byte("subtle.ConstantTimeCompare(")) || regexp.MustCompile(`[!=]= *s\.cfg\.AdminToken`).Match(auth) {
		t.Fatal("api/auth.go must compare the admin token with subtle.ConstantTimeCompare only")
	}
	sig, err := os.ReadFile("../../sync/signature.go")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(sig, []byte("hmac.Equal(")) {
		t.Fatal("sync/signature.go must compare signatures with hmac.Equal")
	}
}

// TestSecretsNeverLeak runs a full scenario with distinctive secret values (webhook secrets,
// Stripe API key, admin token, payload key) and scans everything a user or an attacker can read
// for them: the child's stdout/stderr (debug logs, decision log), /metrics, the vendor, billing
// and event routes, error bodies, and `serve --help` with every secret in the environment. It
// also checks the store is 0600 in a 0700 directory and that payloads at rest are sealed.
func TestSecretsNeverLeak(t *testing.T) {
	const (
		webhookSecret = "whsec_CANARYwebhookSECRET9f3a"
		oldSecret     = "whsec_CANARYoldSECRETb71c"
		apiKey        = "sk_test_CANARYapiKEY4e2d"
		adminToken    = "CANARYadminTOKENd00d1e"
		payloadCanary = "CANARYpayloadPLAINTEXT77"
	)
	keyBytes := []byte("CANARYpayloadKEY-32-bytes-long!!")
	payloadKey := base64.StdEncoding.EncodeToString(keyBytes)
	secrets := []string{webhookSecret, oldSecret, apiKey, adminToken, payloadKey, string(keyBytes),
		strings.TrimPrefix(webhookSecret, "whsec_"), strings.TrimPrefix(apiKey, "sk_test_")}

	dataDir := filepath.Join(t.TempDir(), "data")
	base := startStripeMock(t)
	args := []string{"--admin-token", adminToken, "--stripe-webhook-secret", oldSecret + "," + webhookSecret,
		"--stripe-api-key", apiKey, "--stripe-api-base", base, "--payload-key", payloadKey,
		"--log-level", "debug", "--decision-log", "stdout", "--reconcile-interval", "1s"}
	c := startServe(t, dataDir, args...)
	client := &http.Client{Timeout: 5 * time.Second}
	var scanned []string
	get := func(method, url, auth string, body string) string {
		req, _ := http.NewRequest(method, url, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", method, url, err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		scanned = append(scanned, fmt.Sprintf("%s %s -> %d", method, url, resp.StatusCode))
		return string(b)
	}
	var texts []string
	api, hook, ops := "http://"+c.api, c.webhook, "http://"+c.ops

	// Webhooks: valid (both secrets), wrong secret, malformed signature, replayed.
	tpl := subscriptionEvent(t, "evt_sec_1", "customer.subscription.created", "sec-1", "active", "business", time.Now().Add(-time.Minute))
	tpl = bytes.Replace(tpl, []byte(`"metadata":{`), []byte(`"description":"`+payloadCanary+`","metadata":{`), 1)
	if !bytes.Contains(tpl, []byte(payloadCanary)) {
		t.Fatal("canary not in the payload")
	}
	for _, h := range []struct {
		secret string
		want   int
	}{{webhookSecret, 200}, {oldSecret, 200}, {"whsec_wrong", 400}, {webhookSecret[:10], 400}} {
		if code := signedPost(client, hook, tpl, h.secret); code != h.want {
			t.Fatalf("webhook with %q: %d, want %d\n%s", h.secret, code, h.want, c.logs)
		}
	}
	for _, hdr := range []string{"t=1,v1=" + webhookSecret, "garbage", "t=" + fmt.Sprint(time.Now().Unix()) + ",v1=" + strings.Repeat("ab", 32)} {
		req, _ := http.NewRequest(http.MethodPost, "http://"+hook+"/webhooks/stripe", bytes.NewReader(tpl))
		req.Header.Set("Stripe-Signature", hdr)
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		texts = append(texts, string(b))
	}
	_ = tgsync.SignatureHeader
	// Admin writes: right token, wrong tokens (prefix of the real one, the real one in another scheme).
	start := time.Now().UTC().Add(-time.Hour)
	sub := `{"tier":"professional","status":"active","period_start":"` + start.Format(time.RFC3339) + `"}`
	texts = append(texts,
		get(http.MethodPut, api+"/v1/vendors/sec-2", "Bearer "+adminToken, sub),
		get(http.MethodPut, api+"/v1/vendors/sec-2", "Bearer "+adminToken[:8], sub),
		get(http.MethodPut, api+"/v1/vendors/sec-2", "Basic "+adminToken, sub),
		get(http.MethodPatch, api+"/v1/vendors/sec-2/overrides", "Bearer wrong", `{}`),
		get(http.MethodPost, api+"/v1/capacity/snapshots", "Bearer "+adminToken, ``),
		get(http.MethodGet, api+"/v1/admin/backup", "Bearer x"+adminToken, ``),
		get(http.MethodPost, api+"/v1/check", "", `{"vendor_id":"sec-1","action":"feature.use","feature":"api_access"}`),
		get(http.MethodPost, api+"/v1/check", "", `{"vendor_id":"sec-2","action":"order.create","consume":true,"idempotency_key":"k1"}`),
		get(http.MethodPost, api+"/v1/check", "", `{"vendor_id":`),
		get(http.MethodPost, api+"/v1/usage", "", `{"vendor_id":"sec-2","metric":"orders","delta":1,"idempotency_key":"u1"}`),
		get(http.MethodGet, api+"/v1/vendors/sec-1", "", ``),
		get(http.MethodGet, api+"/v1/vendors/sec-2", "", ``),
		get(http.MethodGet, api+"/v1/vendors/sec-1/billing", "", ``),
		get(http.MethodGet, api+"/v1/events", "", ``),
		get(http.MethodGet, api+"/v1/events?vendor_id=sec-1", "", ``),
		get(http.MethodGet, api+"/v1/capacity", "", ``),
		get(http.MethodGet, api+"/v1/data", "", ``),
		get(http.MethodGet, api+"/v1/tiers", "", ``),
		get(http.MethodGet, api+"/v1/nope", "", ``),
		get(http.MethodGet, ops+"/health/ready", "", ``),
	)
	time.Sleep(1500 * time.Millisecond) // a reconciliation against stripe-mock with the API key
	metricsText := get(http.MethodGet, ops+"/metrics", "", ``)
	texts = append(texts, metricsText)
	if !strings.Contains(metricsText, "tollgate_") {
		t.Fatalf("metrics: %.200s", metricsText)
	}

	// Files: 0700 directory, 0600 store; the payload is sealed at rest.
	if fi, err := os.Stat(dataDir); err != nil || fi.Mode().Perm() != 0o700 {
		t.Fatalf("data dir mode %v %v, want 0700", fi.Mode(), err)
	}
	db := filepath.Join(dataDir, "tollgate.db")
	if fi, err := os.Stat(db); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("store mode %v %v, want 0600", fi.Mode(), err)
	}
	// Graceful stop, so the logs are complete.
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	_ = c.cmd.Wait()
	raw, err := os.ReadFile(db)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(raw, []byte(payloadCanary)) {
		j := bytes.Index(raw, []byte(payloadCanary))
		t.Fatalf("the webhook payload is stored in plain text although --payload-key is set: %q", raw[max(0, j-300):j+100])
	}
	if !bytes.Contains(raw, []byte("evt_sec_1")) {
		t.Fatal("the event log does not hold evt_sec_1: the at-rest check proves nothing")
	}
	texts = append(texts, c.logs.String(), string(raw))
	if !strings.Contains(c.logs.String(), `"level":"DEBUG"`) {
		t.Log("note: no debug line was logged")
	}

	// --help of every command, with every secret in the environment.
	env := append(os.Environ(), "TOLLGATE_TEST_MAIN=1", "TOLLGATE_ADMIN_TOKEN="+adminToken,
		"TOLLGATE_STRIPE_WEBHOOK_SECRET="+webhookSecret, "TOLLGATE_STRIPE_API_KEY="+apiKey, "TOLLGATE_PAYLOAD_KEY="+payloadKey)
	for _, sub := range []string{"serve", "backfill", "replay", "backup", "snapshot", "check-store"} {
		cmd := exec.Command(os.Args[0], "-test.run=^$", "--", sub, "--help")
		cmd.Env = env
		out, _ := cmd.CombinedOutput()
		texts = append(texts, string(out))
	}
	// A start that fails on a bad value must not echo the secrets either.
	cmd := exec.Command(os.Args[0], "-test.run=^$", "--", "serve", "--data-dir", t.TempDir(), "--listen", "0.0.0.0:1")
	cmd.Env = env
	out, _ := cmd.CombinedOutput()
	texts = append(texts, string(out))

	for i, text := range texts {
		for _, s := range secrets {
			if strings.Contains(text, s) {
				j := strings.Index(text, s)
				t.Errorf("secret %q leaked in output %d: ...%s...", s, i, text[max(0, j-200):min(len(text), j+len(s)+50)])
			}
		}
	}
	t.Logf("scanned %d outputs (%d HTTP answers, logs %d bytes, store %d bytes, 6 --help) for %d secrets",
		len(texts), len(scanned), c.logs.Len(), len(raw), len(secrets))
	_ = tollgate.StatusActive
	_ = context.Background
}
