package main

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// startNATS runs an embedded JetStream server on a free loopback port for the children.
func startNATS(t *testing.T) string {
	t.Helper()
	srv, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, JetStream: true,
		StoreDir: t.TempDir(), NoLog: true, NoSigs: true})
	if err != nil {
		t.Fatal(err)
	}
	srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats-server not ready")
	}
	t.Cleanup(func() { srv.Shutdown(); srv.WaitForShutdown() })
	return srv.ClientURL()
}

// TestFleetKill9LosesNothingAcknowledged kills a fleet sidecar (a real `tollgate serve
// --nats-url` child) with SIGKILL while signed webhooks and admin writes stream into both
// sidecars. Every write that got a 2xx, at either sidecar, is afterwards decided by both,
// the killed one after its restart from its own store and the stream.
func TestFleetKill9LosesNothingAcknowledged(t *testing.T) {
	url := startNATS(t)
	args := []string{"--nats-url", url, "--fleet-replicas", "1", "--fleet", "chaos",
		"--stripe-webhook-secret", testWebhookSecret}
	dirA := t.TempDir()
	a := startServe(t, dirA, args...)
	b := startServe(t, t.TempDir(), args...)
	tpl := newEventTemplate(t, "business")
	client := &http.Client{Timeout: 5 * time.Second}

	// `tollgate import --nats-url` publishes into the log: both sidecars get the rows.
	rows := writeFile(t, t.TempDir(), "rows.jsonl", `{"vendor_id": "imp-1", "tier": "business", "status": "active"}
{"vendor_id": "imp-2", "tier": "essential", "status": "trial"}
`)
	if out, stderr, err := run(t, "import", rows, "--nats-url", url, "--fleet", "chaos", "--fleet-replicas", "1"); err != nil || !strings.Contains(out, "published 2 subscription(s) to fleet chaos") {
		t.Fatalf("import --nats-url: %v %q %s", err, out, stderr)
	}
	acked := []string{"imp-1", "imp-2"}

	var mu sync.Mutex // guards acked: vendor ids whose import, webhook or PUT got 2xx
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w, target := range []*child{a, b, a, b} {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				v := fmt.Sprintf("k%d-%d", w, i)
				var code int
				if i%2 == 0 {
					code = signedPost(client, target.webhook, tpl.event(fmt.Sprintf("evt_k%d_%d", w, i), v), testWebhookSecret)
				} else {
					code, _ = do(context.Background(), client, http.MethodPut, "http://"+target.api+"/v1/vendors/"+v,
						map[string]any{"tier": "essential", "status": "active"}, nil)
				}
				if code == http.StatusOK {
					mu.Lock()
					acked = append(acked, v)
					mu.Unlock()
				}
			}
		})
	}
	time.Sleep(700 * time.Millisecond)
	a.kill9(t)
	time.Sleep(500 * time.Millisecond) // B keeps taking writes while A is dead
	close(stop)
	wg.Wait()
	if len(acked) < 22 {
		t.Fatalf("only %d writes acknowledged; the test did not exercise anything", len(acked))
	}
	a = startServe(t, dirA, args...) // ready = caught up with the log as it was at start
	for _, c := range []*child{a, b} {
		for _, v := range acked {
			var view struct {
				Subscription struct {
					Status string `json:"status"`
				} `json:"subscription"`
			}
			want := "active"
			if v == "imp-2" {
				want = "trial"
			}
			code, err := do(context.Background(), client, http.MethodGet, "http://"+c.api+"/v1/vendors/"+v, nil, &view)
			if err != nil || code != http.StatusOK || view.Subscription.Status != want {
				t.Fatalf("acknowledged vendor %s at %s: %d %v %+v\n%s", v, c.api, code, err, view, c.logs)
			}
		}
	}
	t.Logf("%d acknowledged writes survived kill -9 on both sidecars", len(acked))
}
