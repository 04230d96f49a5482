package fleet_test

import (
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tollgate-pdp/tollgate/fleet/internal/natstest"
)

// startFleet runs n sidecars on one embedded JetStream server and waits until all are ready.
func startFleet(t *testing.T, n int) (*natstest.Server, []*sidecar) {
	t.Helper()
	srv := natstest.Start(t)
	cfg := fleetConfig(srv.URL(), "t")
	var out []*sidecar
	for i := range n {
		s := startSidecar(t, fmt.Sprintf("s%d", i), "", cfg)
		s.waitReady(10 * time.Second)
		out = append(out, s)
	}
	return srv, out
}

func TestWebhookAtOneSidecarIsDecidedByEveryOther(t *testing.T) {
	_, sc := startFleet(t, 3)
	a := sc[0]
	if d := sc[2].check("v1", "order.create"); d.Code != "unknown_vendor" {
		t.Fatalf("before the webhook: code %q, want unknown_vendor", d.Code)
	}
	code, outcome := a.deliver(subEvent(t, "evt_1", periodStart+100, "sub_1", "v1", "active", "price_pro_m"))
	if code != http.StatusOK || outcome != "processed" {
		t.Fatalf("webhook at A: %d %s, want 200 processed", code, outcome)
	}
	// Read-your-writes: A shows it as soon as it answered.
	if sub, ok := a.vendor("v1"); !ok || sub.Tier != "professional" {
		t.Fatalf("A after its 2xx: %+v %v, want professional", sub, ok)
	}
	for _, s := range sc[1:] {
		eventually(t, 5*time.Second, s.name+" to see v1", func() bool { _, ok := s.vendor("v1"); return ok })
		d := s.check("v1", "order.create")
		if !d.Allow || d.Tier != "professional" || d.Status != "active" {
			t.Fatalf("%s decides %+v, want allowed professional active", s.name, d)
		}
	}
	// The same event delivered to another sidecar is stored once and changes nothing.
	code, outcome = sc[1].deliver(subEvent(t, "evt_1", periodStart+100, "sub_1", "v1", "active", "price_pro_m"))
	if code != http.StatusOK || outcome != "duplicate" {
		t.Fatalf("duplicate at B: %d %s, want 200 duplicate", code, outcome)
	}
	seq := a.node.Applied()
	for _, s := range sc {
		eventually(t, 5*time.Second, s.name+" to apply the duplicate's sequence", func() bool { return s.node.Applied() >= seq })
		if v, _ := s.store.Vendor("v1"); v.Revision != 1 {
			t.Fatalf("%s: vendor revision %d, want 1 (the duplicate applied once)", s.name, v.Revision)
		}
	}
	// An admin write at B, decided at C.
	body := `{"platform":"oms","tier":"essential","status":"active"}`
	if code := do(t, http.MethodPut, sc[1].decision+"/v1/vendors/v2", []byte(body), map[string]string{"Authorization": "Bearer " + testToken}, nil); code != http.StatusOK {
		t.Fatalf("PUT at B: %d", code)
	}
	eventually(t, 5*time.Second, "C to see v2", func() bool { _, ok := sc[2].vendor("v2"); return ok })
	if d := sc[2].check("v2", "order.create"); d.Tier != "essential" {
		t.Fatalf("C decides v2 %+v, want essential", d)
	}
}

func TestSameSecondAndOutOfOrderEventsConvergeAcrossSidecars(t *testing.T) {
	_, sc := startFleet(t, 2)
	a, b := sc[0], sc[1]
	const at = periodStart + 500
	steps := []struct {
		to      *sidecar
		ev      []byte
		outcome string
	}{
		{a, subEvent(t, "evt_a", at, "sub_9", "v9", "active", "price_ess_m"), "processed"},
		// Same second at the other sidecar: the later arrival (in log order) wins.
		{b, subEvent(t, "evt_b", at, "sub_9", "v9", "active", "price_pro_m"), "processed"},
		// Older than what both have applied: recorded, ignored, on both.
		{a, subEvent(t, "evt_old", at-60, "sub_9", "v9", "past_due", "price_ess_m"), "ignored"},
	}
	for _, st := range steps {
		if code, outcome := st.to.deliver(st.ev); code != http.StatusOK || outcome != st.outcome {
			t.Fatalf("deliver at %s: %d %s, want 200 %s", st.to.name, code, outcome, st.outcome)
		}
	}
	for _, s := range sc {
		eventually(t, 5*time.Second, s.name+" to apply the same-second pair", func() bool {
			sub, _ := s.vendor("v9")
			return sub.StripePriceID == "price_pro_m"
		})
		if sub, _ := s.vendor("v9"); sub.Tier != "professional" || sub.Status != "active" {
			t.Fatalf("%s: %s/%s, want professional/active (the later arrival of the tie)", s.name, sub.Tier, sub.Status)
		}
	}
	// Two events of one second delivered at the same time to two sidecars: either order, the
	// same on both.
	var wg sync.WaitGroup
	for i, s := range []*sidecar{a, b} {
		wg.Go(func() {
			price := []string{"price_ess_y", "price_pro_y"}[i]
			if code, _ := s.deliver(subEvent(t, fmt.Sprintf("evt_c%d", i), at+1, "sub_9", "v9", "active", price)); code != http.StatusOK {
				t.Errorf("concurrent delivery at %s: %d", s.name, code)
			}
		})
	}
	wg.Wait()
	seq := max(a.node.Applied(), b.node.Applied())
	for _, s := range sc {
		eventually(t, 5*time.Second, s.name+" to catch up", func() bool { return s.node.Applied() >= seq })
	}
	sa, _ := a.vendor("v9")
	sb, _ := b.vendor("v9")
	if sa.Tier != sb.Tier || sa.StripePriceID != sb.StripePriceID || sa.Status != sb.Status {
		t.Fatalf("diverged: A %s/%s/%s, B %s/%s/%s", sa.Tier, sa.StripePriceID, sa.Status, sb.Tier, sb.StripePriceID, sb.Status)
	}
	if !sa.IsAnnual || sa.Status != "active" {
		t.Fatalf("final state %s/%s annual=%v, want an annual active subscription (one of the last same-second pair)", sa.Tier, sa.Status, sa.IsAnnual)
	}
	va, _ := a.store.Vendor("v9")
	vb, _ := b.store.Vendor("v9")
	if va.Revision != vb.Revision {
		t.Fatalf("revisions differ: A %d, B %d", va.Revision, vb.Revision)
	}
}

func TestNATSDownRefusesWritesAndKeepsAnswering(t *testing.T) {
	srv, sc := startFleet(t, 2)
	a, b := sc[0], sc[1]
	admin := map[string]string{"Authorization": "Bearer " + testToken}
	put := func(s *sidecar, vendor, tier string) (int, string) {
		var out struct {
			Error struct {
				Code string `json:"code"`
			} `json:"error"`
		}
		body := fmt.Sprintf(`{"platform":"oms","tier":%q,"status":"active"}`, tier)
		code := do(t, http.MethodPut, s.decision+"/v1/vendors/"+vendor, []byte(body), admin, &out)
		return code, out.Error.Code
	}
	if code, _ := put(a, "v1", "essential"); code != http.StatusOK {
		t.Fatalf("PUT with NATS up: %d", code)
	}
	eventually(t, 5*time.Second, "B to see v1", func() bool { _, ok := b.vendor("v1"); return ok })

	srv.Shutdown()
	eventually(t, 10*time.Second, "both to notice the outage", func() bool {
		_, detailA := a.node.Ready()
		_, detailB := b.node.Ready()
		return strings.Contains(detailA, "disconnected from NATS") && strings.Contains(detailB, "disconnected from NATS")
	})
	if code, errCode := put(a, "v1", "professional"); code != http.StatusServiceUnavailable || errCode != "unavailable" {
		t.Fatalf("PUT with NATS down: %d %q, want 503 unavailable", code, errCode)
	}
	if code, outcome := b.deliver(subEvent(t, "evt_down", periodStart+10, "sub_2", "v2", "active", "price_pro_m")); code != http.StatusServiceUnavailable || outcome != "unavailable" {
		t.Fatalf("webhook with NATS down: %d %q, want 503 unavailable", code, outcome)
	}
	usage := `{"products": 3}`
	if code := do(t, http.MethodPut, a.decision+"/v1/vendors/v1/usage", []byte(usage), nil, nil); code != http.StatusServiceUnavailable {
		t.Fatalf("usage report with NATS down: %d, want 503", code)
	}
	// Nothing was applied locally, and checks still answer from local state.
	for _, s := range sc {
		if sub, _ := s.vendor("v1"); sub.Tier != "essential" {
			t.Fatalf("%s: v1 is %s after refused writes, want essential", s.name, sub.Tier)
		}
		if _, ok := s.vendor("v2"); ok {
			t.Fatalf("%s: v2 exists though its webhook was refused", s.name)
		}
		if d := s.check("v1", "order.create"); !d.Allow || d.Tier != "essential" {
			t.Fatalf("%s: check with NATS down %+v", s.name, d)
		}
		// Caught up before the outage: still ready (the pod keeps serving checks), and the
		// detail says what is wrong.
		if ok, detail := s.node.Ready(); !ok || !strings.Contains(detail, "disconnected from NATS") {
			t.Fatalf("%s: readiness with NATS down: %v %q, want ready and disconnected", s.name, ok, detail)
		}
	}

	srv.Restart()
	for _, s := range sc {
		eventually(t, 15*time.Second, s.name+" to reconnect", func() bool {
			ok, detail := s.node.Ready()
			return ok && !strings.Contains(detail, "disconnected")
		})
	}
	// Stripe retries the refused delivery; the client retries its write.
	if code, outcome := b.deliver(subEvent(t, "evt_down", periodStart+10, "sub_2", "v2", "active", "price_pro_m")); code != http.StatusOK || outcome != "processed" {
		t.Fatalf("webhook retried after reconnect: %d %q", code, outcome)
	}
	if code, _ := put(a, "v1", "professional"); code != http.StatusOK {
		t.Fatalf("PUT after reconnect: %d", code)
	}
	for _, s := range sc {
		eventually(t, 5*time.Second, s.name+" to converge", func() bool {
			v1, _ := s.vendor("v1")
			_, ok := s.vendor("v2")
			return ok && v1.Tier == "professional"
		})
	}
}
