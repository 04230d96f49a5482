package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tollgate-pdp/tollgate"
)

// hostile is one bad request: the raw bytes go to one listener over TCP, so paths, headers and
// bodies are exactly what an attacker sends (no client-side escaping or fixing).
type hostile struct {
	name     string
	listener string // api, webhook, ops
	method   string
	path     string
	headers  []string
	body     []byte
	// raw replaces the whole request when set (malformed framing).
	raw []byte
	// closedOK: a closed connection (no response) is an acceptable answer.
	closedOK bool
}

func jsonReq(listener, method, path, body string) hostile {
	return hostile{listener: listener, method: method, path: path, body: []byte(body),
		headers: []string{"Content-Type: application/json"}}
}

func admin(h hostile) hostile {
	h.headers = append(h.headers, "Authorization: Bearer "+testAdminToken)
	return h
}

func named(name string, h hostile) hostile { h.name = name; return h }

func hostileTable() []hostile {
	deep := strings.Repeat("[", 100000) + strings.Repeat("]", 100000)
	deepObj := `{"vendor_id":"v","action":"feature.use","input":` + strings.Repeat(`{"a":`, 5000) + `1` + strings.Repeat(`}`, 5000) + `}`
	big := `{"vendor_id":"hv-1","action":"feature.use","feature":"` + strings.Repeat("x", 2<<20) + `"}`
	batch := `{"checks":[` + strings.TrimSuffix(strings.Repeat(`{"vendor_id":"hv-1","action":"feature.use","feature":"api_access"},`, 1001), ",") + `]}`
	sub := `{"tier":"business","status":"active"}`
	t := []hostile{
		// Malformed JSON on every JSON route.
		named("check: truncated", jsonReq("api", "POST", "/v1/check", `{"vendor_id":`)),
		named("check: empty body", jsonReq("api", "POST", "/v1/check", ``)),
		named("check: null", jsonReq("api", "POST", "/v1/check", `null`)),
		named("check: array", jsonReq("api", "POST", "/v1/check", `[]`)),
		named("check: trailing garbage", jsonReq("api", "POST", "/v1/check", `{"vendor_id":"hv-1","action":"feature.use","feature":"api_access"}{}`)),
		named("check: invalid utf-8 string", jsonReq("api", "POST", "/v1/check", "{\"vendor_id\":\"\xff\xfe\",\"action\":\"feature.use\"}")),
		named("check: deeply nested array", jsonReq("api", "POST", "/v1/check", deep)),
		named("check: deeply nested object", jsonReq("api", "POST", "/v1/check", deepObj)),
		named("check: unknown field", jsonReq("api", "POST", "/v1/check", `{"vendor_id":"hv-1","action":"feature.use","feature":"api_access","admin":true}`)),
		// Wrong types and huge numbers.
		named("check: vendor_id number", jsonReq("api", "POST", "/v1/check", `{"vendor_id":123,"action":"feature.use"}`)),
		named("check: action array", jsonReq("api", "POST", "/v1/check", `{"vendor_id":"hv-1","action":["order.create"]}`)),
		named("check: consume string", jsonReq("api", "POST", "/v1/check", `{"vendor_id":"hv-1","action":"order.create","consume":"yes","idempotency_key":"h1"}`)),
		named("check: quantity 1e400", jsonReq("api", "POST", "/v1/check", `{"vendor_id":"hv-1","action":"order.create","quantity":1e400}`)),
		named("check: quantity 2^64", jsonReq("api", "POST", "/v1/check", `{"vendor_id":"hv-1","action":"order.create","quantity":18446744073709551616}`)),
		named("check: quantity fraction", jsonReq("api", "POST", "/v1/check", `{"vendor_id":"hv-1","action":"order.create","quantity":1.5}`)),
		named("check: quantity negative consume", jsonReq("api", "POST", "/v1/check", `{"vendor_id":"hv-1","action":"order.create","quantity":-5,"consume":true,"idempotency_key":"h2"}`)),
		named("check: count huge", jsonReq("api", "POST", "/v1/check", `{"vendor_id":"hv-1","action":"product.add","count":99999999999999999999999999}`)),
		named("check: consume with 1k key", jsonReq("api", "POST", "/v1/check", `{"vendor_id":"hv-1","action":"order.create","consume":true,"idempotency_key":"`+strings.Repeat("k", 1000)+`"}`)),
		// Unicode tricks in ids.
		named("check: RTL override id", jsonReq("api", "POST", "/v1/check", `{"vendor_id":"hv-1\u202e","action":"feature.use","feature":"api_access"}`)),
		named("check: zero-width id", jsonReq("api", "POST", "/v1/check", `{"vendor_id":"hv\u200b-1","action":"feature.use","feature":"api_access"}`)),
		named("check: NUL in id", jsonReq("api", "POST", "/v1/check", `{"vendor_id":"hv-1\u0000","action":"feature.use","feature":"api_access"}`)),
		named("check: overlong UTF-8 id", jsonReq("api", "POST", "/v1/check", "{\"vendor_id\":\"hv\xc0\xaf1\",\"action\":\"feature.use\",\"feature\":\"api_access\"}")),
		named("check: 10k-char id", jsonReq("api", "POST", "/v1/check", `{"vendor_id":"`+strings.Repeat("a", 10000)+`","action":"feature.use"}`)),
		named("vendor GET: RTL override", jsonReq("api", "GET", "/v1/vendors/hv-1%E2%80%AE", ``)),
		named("vendor GET: zero-width", jsonReq("api", "GET", "/v1/vendors/hv%E2%80%8B-1", ``)),
		named("vendor GET: NUL", jsonReq("api", "GET", "/v1/vendors/hv-1%00", ``)),
		named("vendor GET: overlong UTF-8 slash", jsonReq("api", "GET", "/v1/vendors/hv%C0%AF1", ``)),
		named("vendor GET: dot-dot", jsonReq("api", "GET", "/v1/vendors/..%2F..%2Fetc%2Fpasswd", ``)),
		named("admin PUT: RTL override id", admin(jsonReq("api", "PUT", "/v1/vendors/hv-9%E2%80%AE", sub))),
		named("admin PUT: NUL id", admin(jsonReq("api", "PUT", "/v1/vendors/hv-9%00", sub))),
		// Admin routes: missing and wrong tokens, bad bodies.
		named("admin PUT: no token", jsonReq("api", "PUT", "/v1/vendors/hv-1", sub)),
		named("admin PUT: wrong token", hostile{listener: "api", method: "PUT", path: "/v1/vendors/hv-1", body: []byte(sub), headers: []string{"Content-Type: application/json", "Authorization: Bearer " + testAdminToken + "x"}}),
		named("admin PUT: token prefix", hostile{listener: "api", method: "PUT", path: "/v1/vendors/hv-1", body: []byte(sub), headers: []string{"Content-Type: application/json", "Authorization: Bearer " + testAdminToken[:5]}}),
		named("admin PUT: unknown tier", admin(jsonReq("api", "PUT", "/v1/vendors/hv-1", `{"tier":"platinum","status":"active"}`))),
		named("admin PUT: vendor_id mismatch", admin(jsonReq("api", "PUT", "/v1/vendors/hv-1", `{"vendor_id":"hv-2","tier":"business","status":"active"}`))),
		named("admin PUT: status wrong type", admin(jsonReq("api", "PUT", "/v1/vendors/hv-1", `{"tier":"business","status":7}`))),
		named("admin PUT: malformed", admin(jsonReq("api", "PUT", "/v1/vendors/hv-1", `{"tier":`))),
		named("admin PATCH: negative override", admin(jsonReq("api", "PATCH", "/v1/vendors/hv-1/overrides", `{"custom_orders_limit":-1}`))),
		named("admin PATCH: huge override", admin(jsonReq("api", "PATCH", "/v1/vendors/hv-1/overrides", `{"custom_orders_limit":1e300}`))),
		named("admin PATCH: unknown field", admin(jsonReq("api", "PATCH", "/v1/vendors/hv-1/overrides", `{"custom_everything":1}`))),
		named("snapshot POST: no token", jsonReq("api", "POST", "/v1/capacity/snapshots", ``)),
		named("backup GET: no token", jsonReq("api", "GET", "/v1/admin/backup", ``)),
		// Usage and batch.
		named("usage: huge delta", jsonReq("api", "POST", "/v1/usage", `{"vendor_id":"hv-1","metric":"orders","delta":9223372036854775808,"idempotency_key":"h3"}`)),
		named("usage: unknown metric", jsonReq("api", "POST", "/v1/usage", `{"vendor_id":"hv-1","metric":"../../orders","delta":1,"idempotency_key":"h4"}`)),
		named("usage: unknown vendor", jsonReq("api", "POST", "/v1/usage", `{"vendor_id":"hv-nobody","metric":"orders","delta":1,"idempotency_key":"h5"}`)),
		named("usage PUT: wrong types", jsonReq("api", "PUT", "/v1/vendors/hv-1/usage", `{"orders":"many"}`)),
		named("batch: too many", jsonReq("api", "POST", "/v1/check/batch", batch)),
		named("batch: not a list", jsonReq("api", "POST", "/v1/check/batch", `{"checks":{"a":1}}`)),
		named("dry-run: malformed catalog", jsonReq("api", "POST", "/v1/catalog/dry-run", `{"tiers":[{"code":7}]}`)),
		named("snapshots: bad date", jsonReq("api", "GET", "/v1/capacity/snapshots?from=2024-13-45", ``)),
		named("events: limit huge", jsonReq("api", "GET", "/v1/events?limit=99999999999999999999", ``)),
		// Policy (OPA Data API) paths and input.
		named("data: dot-dot", jsonReq("api", "GET", "/v1/data/../../etc/passwd", ``)),
		named("data: encoded dot-dot", jsonReq("api", "GET", "/v1/data/%2e%2e/%2e%2e/etc/passwd", ``)),
		named("data: encoded slash traversal", jsonReq("api", "POST", "/v1/data/tollgate/..%2f..%2fsystem", `{"input":{}}`)),
		named("data: NUL in path", jsonReq("api", "GET", "/v1/data/tollgate%00/allow", ``)),
		named("data: input not object", jsonReq("api", "POST", "/v1/data/tollgate/decision", `{"input":`)),
		named("data: deeply nested input", jsonReq("api", "POST", "/v1/data/tollgate/decision", `{"input":`+strings.Repeat(`[`, 10000)+strings.Repeat(`]`, 10000)+`}`)),
		// Oversized bodies.
		named("check: 2 MiB body", jsonReq("api", "POST", "/v1/check", big)),
		named("webhook: 1 MiB body", hostile{listener: "webhook", method: "POST", path: "/webhooks/stripe", body: bytes.Repeat([]byte("a"), 1<<20), headers: []string{"Stripe-Signature: t=1,v1=00"}, closedOK: true}),
		// Methods and routes.
		named("check: GET", jsonReq("api", "GET", "/v1/check", ``)),
		named("vendors: DELETE", jsonReq("api", "DELETE", "/v1/vendors/hv-1", ``)),
		named("unknown route", jsonReq("api", "GET", "/v1/../../admin", ``)),
		named("wrong content type", hostile{listener: "api", method: "POST", path: "/v1/check", body: []byte(`vendor_id=hv-1`), headers: []string{"Content-Type: application/x-www-form-urlencoded"}}),
		// Webhook listener.
		named("webhook: no signature", jsonReq("webhook", "POST", "/webhooks/stripe", `{"id":"evt_x","type":"customer.subscription.created"}`)),
		named("webhook: garbage signature", hostile{listener: "webhook", method: "POST", path: "/webhooks/stripe", body: []byte(`{}`), headers: []string{"Stripe-Signature: garbage"}}),
		named("webhook: stale timestamp", hostile{listener: "webhook", method: "POST", path: "/webhooks/stripe", body: []byte(`{}`), headers: []string{"Stripe-Signature: t=1,v1=" + strings.Repeat("0", 64)}}),
		named("webhook: huge timestamp", hostile{listener: "webhook", method: "POST", path: "/webhooks/stripe", body: []byte(`{}`), headers: []string{"Stripe-Signature: t=99999999999999999999999,v1=" + strings.Repeat("0", 64)}}),
		named("webhook: 10k signatures", hostile{listener: "webhook", method: "POST", path: "/webhooks/stripe", body: []byte(`{}`), headers: []string{"Stripe-Signature: t=1" + strings.Repeat(",v1=00", 1000)}}),
		named("webhook: GET", jsonReq("webhook", "GET", "/webhooks/stripe", ``)),
		named("webhook: other route", jsonReq("webhook", "POST", "/v1/check", `{"vendor_id":"hv-1","action":"feature.use"}`)),
		// Ops listener.
		named("ops: POST metrics", jsonReq("ops", "POST", "/metrics", `{}`)),
		named("ops: traversal", jsonReq("ops", "GET", "/health/../../etc/passwd", ``)),
		named("ops: unknown", jsonReq("ops", "GET", "/debug/pprof/", ``)),
		named("ops: decision route", jsonReq("ops", "POST", "/v1/check", `{}`)),
		// Broken framing.
		{name: "framing: negative content-length", listener: "api", raw: []byte("POST /v1/check HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n"), closedOK: true},
		{name: "framing: bad chunked", listener: "api", raw: []byte("POST /v1/check HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n"), closedOK: true},
		{name: "framing: header 64 KiB", listener: "api", raw: []byte("GET /v1/tiers HTTP/1.1\r\nHost: x\r\nX-Big: " + strings.Repeat("a", 64<<10) + "\r\n\r\n"), closedOK: true},
		{name: "framing: not HTTP", listener: "webhook", raw: []byte("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03garbage-tls-hello\r\n\r\n"), closedOK: true},
		{name: "framing: CONNECT", listener: "ops", raw: []byte("CONNECT 169.254.169.254:80 HTTP/1.1\r\nHost: 169.254.169.254\r\n\r\n"), closedOK: true},
	}
	return t
}

// send writes one hostile request and returns the status and body; status 0 = closed without
// an answer.
func (h hostile) send(addr string) (int, []byte, error) {
	conn, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		return 0, nil, err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(15 * time.Second))
	raw := h.raw
	if raw == nil {
		var b bytes.Buffer
		fmt.Fprintf(&b, "%s %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n", h.method, h.path, addr)
		for _, hd := range h.headers {
			b.WriteString(hd + "\r\n")
		}
		fmt.Fprintf(&b, "Content-Length: %d\r\n\r\n", len(h.body))
		b.Write(h.body)
		raw = b.Bytes()
	}
	// The server may answer (413) and close before reading everything: ignore write errors.
	go func() { _, _ = conn.Write(raw) }()
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		return 0, nil, nil
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, body, nil
}

func fileSum(t *testing.T, path string) ([32]byte, os.FileInfo) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	fi, _ := os.Stat(path)
	return sha256.Sum256(b), fi
}

// TestHostileInput sends one table of bad requests across every route and all three listeners,
// plus slow and idle clients and a flood of invalid webhook signatures: each gets a 4xx with
// the error shape (or a closed connection), the store file is byte-for-byte unchanged, and the
// process stays healthy.
func TestHostileInput(t *testing.T) {
	dataDir := t.TempDir()
	c := startServe(t, dataDir, "--stripe-webhook-secret", testWebhookSecret)
	client := &http.Client{Timeout: 5 * time.Second}
	start := time.Now().UTC().Add(-time.Hour)
	end := start.Add(30 * 24 * time.Hour)
	for _, v := range []string{"hv-1", "hv-2"} {
		sub := tollgate.Subscription{VendorID: v, Tier: "business", Status: tollgate.StatusActive, PeriodStart: &start, PeriodEnd: &end}
		if code, err := do(context.Background(), client, http.MethodPut, "http://"+c.api+"/v1/vendors/"+v, sub, nil); err != nil || code != 200 {
			t.Fatalf("seed: %d %v", code, err)
		}
	}
	time.Sleep(1500 * time.Millisecond) // past one usage flush: nothing pending
	db := filepath.Join(dataDir, "tollgate.db")
	before, fiBefore := fileSum(t, db)
	addrs := map[string]string{"api": c.api, "webhook": c.webhook, "ops": c.ops}

	// Slow and idle clients run meanwhile: each must be cut off by the read timeout (5 s).
	var wg sync.WaitGroup
	slowErr := make(chan error, 3)
	slow := func(name, addr string, payload []byte, gap time.Duration) {
		defer wg.Done()
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			slowErr <- err
			return
		}
		defer conn.Close()
		began := time.Now()
		for _, b := range payload {
			if _, err := conn.Write([]byte{b}); err != nil {
				break
			}
			if gap > 0 {
				time.Sleep(gap)
			}
			if time.Since(began) > 20*time.Second {
				break
			}
		}
		_ = conn.SetReadDeadline(time.Now().Add(20 * time.Second))
		buf := make([]byte, 512)
		n, _ := conn.Read(buf)
		if time.Since(began) > 19*time.Second {
			slowErr <- fmt.Errorf("%s: connection still open after %v", name, time.Since(began))
			return
		}
		if n > 0 && !bytes.Contains(buf[:n], []byte(" 408 ")) && !bytes.Contains(buf[:n], []byte(" 400 ")) {
			slowErr <- fmt.Errorf("%s: answered %q", name, buf[:n])
		}
		t.Logf("%s: cut off after %v (%d bytes of answer)", name, time.Since(began).Round(100*time.Millisecond), n)
	}
	wg.Add(3)
	go slow("slow headers (api)", c.api, []byte("GET /v1/tiers HTTP/1.1\r\nHost: x\r\nX-Slow: "+strings.Repeat("a", 200)+"\r\n\r\n"), 100*time.Millisecond)
	go slow("idle connection (webhook)", c.webhook, nil, 0)
	go slow("slow body (webhook)", c.webhook, []byte("POST /webhooks/stripe HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n"+strings.Repeat("{", 50)), 150*time.Millisecond)

	table := hostileTable()
	shapes := 0
	for _, h := range table {
		code, body, err := h.send(addrs[h.listener])
		if err != nil {
			t.Fatalf("%s: %v", h.name, err)
		}
		switch {
		case code == 0 && h.closedOK:
		case code >= 400 && code < 500:
			var e struct {
				Error struct {
					Code    string `json:"code"`
					Message string `json:"message"`
				} `json:"error"`
				// The OPA Data API answers errors in OPA's own shape ({"code","message"}).
				Code    string `json:"code"`
				Message string `json:"message"`
			}
			opa := strings.HasPrefix(h.path, "/v1/data")
			if json.Unmarshal(body, &e) != nil || (!opa && (e.Error.Code == "" || e.Error.Message == "")) || (opa && (e.Code == "" || e.Message == "")) {
				if !h.closedOK && h.raw == nil {
					t.Errorf("%s: %d without the error shape: %.200q", h.name, code, body)
				}
			} else {
				shapes++
			}
		default:
			t.Errorf("%s (%s %s on %s): got %d %.300q, want a 4xx or a closed connection", h.name, h.method, h.path, h.listener, code, body)
		}
	}

	// A flood of invalid signatures on the webhook listener.
	flood := 400
	var fwg sync.WaitGroup
	var fmu sync.Mutex
	bad := 0
	payload := []byte(`{"id":"evt_flood","type":"customer.subscription.created","data":{"object":{}}}`)
	for w := 0; w < 8; w++ {
		fwg.Add(1)
		go func(w int) {
			defer fwg.Done()
			for i := w; i < flood; i += 8 {
				code := signedPost(client, c.webhook, payload, fmt.Sprintf("whsec_attacker_%d", i))
				if code != 400 {
					fmu.Lock()
					bad++
					fmu.Unlock()
				}
			}
		}(w)
	}
	fwg.Wait()
	if bad > 0 {
		t.Errorf("invalid-signature flood: %d of %d requests were not answered 400", bad, flood)
	}
	wg.Wait()
	close(slowErr)
	for err := range slowErr {
		t.Error(err)
	}

	// Healthy, answering, and the store untouched.
	resp, err := client.Get("http://" + c.ops + "/health/ready")
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("not ready after the hostile table: %v %v\n%s", resp, err, c.logs)
	}
	resp.Body.Close()
	time.Sleep(1500 * time.Millisecond)
	after, fiAfter := fileSum(t, db)
	if before != after || fiBefore.Size() != fiAfter.Size() {
		t.Fatalf("the store file changed under hostile input (size %d -> %d)", fiBefore.Size(), fiAfter.Size())
	}
	// A good check still answers (after the comparison: it notes the feature used, a write).
	var d map[string]any
	if code, err := do(context.Background(), client, http.MethodPost, "http://"+c.api+"/v1/check", json.RawMessage(`{"vendor_id":"hv-1","action":"feature.use","feature":"api_access"}`), &d); err != nil || code != 200 || d["allow"] != true {
		t.Fatalf("a good check after the table: %d %v %v", code, err, d)
	}
	t.Logf("hostile table: %d requests (%d with the JSON error shape) + 3 slow/idle clients + %d invalid signatures; store sha256 unchanged; ready",
		len(table), shapes, flood)
}
