package sync

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	gosync "sync"
	"testing"
	"time"

	"github.com/tollgate-pdp/tollgate"
	"github.com/tollgate-pdp/tollgate/cache"
)

const crashStoreEnv = "TOLLGATE_SYNC_CRASH_STORE"

type crashDelivery struct {
	Payload []byte `json:"payload"`
	Header  string `json:"header"`
}

// TestMain makes the test binary double as the serving process of
// TestKill9AcknowledgedEventsSurvive when crashStoreEnv names a store.
func TestMain(m *testing.M) {
	if path := os.Getenv(crashStoreEnv); path != "" {
		if err := crashChild(path); err != nil {
			fmt.Fprintln(os.Stderr, "crash child:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// crashChild receives deliveries (JSON lines on stdin) with 8 concurrent senders and prints
// "ack <id>" for each one Receive acknowledged, exactly when the webhook listener would answer
// 2xx.
func crashChild(path string) error {
	ctx := context.Background()
	st, err := cache.Open(ctx, cache.Options{Path: path})
	if err != nil {
		return err
	}
	sy, err := New(ctx, Options{Store: st, Catalog: testCatalog(), WebhookSecrets: []string{testSecret}})
	if err != nil {
		return err
	}
	in := make(chan crashDelivery)
	var mu gosync.Mutex
	var wg gosync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for d := range in {
				res, err := sy.Receive(ctx, d.Payload, d.Header)
				if err != nil {
					continue
				}
				mu.Lock()
				fmt.Fprintf(os.Stdout, "ack %s\n", res.EventID)
				mu.Unlock()
			}
		}()
	}
	sc := bufio.NewScanner(os.Stdin)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var d crashDelivery
		if json.Unmarshal(sc.Bytes(), &d) == nil {
			in <- d
		}
	}
	close(in)
	wg.Wait()
	return sc.Err()
}

// TestKill9AcknowledgedEventsSurvive streams signed webhooks into a real child process, kills
// it with SIGKILL mid-stream, and checks that every event it acknowledged is in the store
// after restart, with its state.
func TestKill9AcknowledgedEventsSurvive(t *testing.T) {
	path := filepath.Join(t.TempDir(), "crash.db")
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), crashStoreEnv+"="+path)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	const total, killAfter = 2000, 150
	payloads := make([][]byte, total)
	for i := range payloads {
		sub := subObject(t, eraBasil, fmt.Sprintf("sub_k%d", i), fmt.Sprintf("cus_k%d", i), "active", "price_pro_m",
			fmt.Sprintf("k%d", i), tPeriodStart, tPeriodEnd)
		payloads[i] = mustJSON(t, event(t, eraBasil, fmt.Sprintf("evt_k%d", i), "customer.subscription.created", tPeriodStart, sub))
	}
	go func() {
		enc := json.NewEncoder(stdin)
		for _, payload := range payloads {
			if enc.Encode(crashDelivery{payload, SignatureHeader(payload, time.Now(), testSecret)}) != nil {
				return // the child is gone
			}
		}
		_ = stdin.Close()
	}()
	var acked []string
	r := bufio.NewReader(stdout)
	for len(acked) < killAfter {
		line, err := r.ReadString('\n')
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if id, ok := strings.CutPrefix(strings.TrimSpace(line), "ack "); ok {
			acked = append(acked, id)
		}
	}
	if err := cmd.Process.Kill(); err != nil { // SIGKILL
		t.Fatal(err)
	}
	// acks already written to the pipe before the kill count too
	rest, _ := io.ReadAll(r)
	for _, line := range strings.Split(string(rest), "\n") {
		if id, ok := strings.CutPrefix(strings.TrimSpace(line), "ack "); ok {
			acked = append(acked, id)
		}
	}
	_ = cmd.Wait()
	if len(acked) < killAfter {
		t.Fatalf("child acknowledged only %d events before exiting", len(acked))
	}

	st := openStore(t, path)
	defer st.Close()
	for _, id := range acked {
		var rec *tollgate.WebhookEvent
		var ok bool
		if err := st.ViewStripe(context.Background(), func(tx tollgate.StripeTx) error {
			var err error
			rec, ok, err = tx.Event(id)
			return err
		}); err != nil {
			t.Fatal(err)
		}
		if !ok || rec.Status != tollgate.OutcomeProcessed {
			t.Fatalf("acknowledged event %s lost after kill -9 (%d acked)", id, len(acked))
		}
		vendor := "k" + strings.TrimPrefix(id, "evt_k")
		if v, ok := st.Vendor(vendor); !ok || v.Subscription.Tier != "professional" {
			t.Fatalf("state of acknowledged event %s lost", id)
		}
	}
	t.Logf("%d acknowledged events all survived kill -9; the store holds %d vendors", len(acked), st.VendorCount())
}
