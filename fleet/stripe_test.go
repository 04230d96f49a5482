package fleet_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"sync"
	"testing"
)

const (
	periodStart = 1_767_225_600 // 2026-01-01T00:00:00Z
	periodEnd   = 1_769_904_000 // 2026-02-01T00:00:00Z
)

// The Stripe fixtures the sync package tests with (API version 2023-10-16).
var loadFixtures = sync.OnceValues(func() (map[string]json.RawMessage, error) {
	raw, err := os.ReadFile(filepath.Join("..", "sync", "testdata", "stripe", "fixtures3-api-2023-10-16.json"))
	if err != nil {
		return nil, err
	}
	var doc struct {
		Resources map[string]json.RawMessage `json:"resources"`
	}
	return doc.Resources, json.Unmarshal(raw, &doc)
})

func fixture(t testing.TB, resource string) map[string]any {
	t.Helper()
	docs, err := loadFixtures()
	must(t, err)
	var m map[string]any
	must(t, json.Unmarshal(docs[resource], &m))
	return m
}

// subEvent is a customer.subscription.updated event for the vendor's subscription.
func subEvent(t testing.TB, id string, created int64, subID, vendor, status, price string) []byte {
	t.Helper()
	s := fixture(t, "subscription")
	s["id"], s["customer"], s["status"] = subID, "cus_"+vendor, status
	for _, k := range []string{"canceled_at", "cancel_at", "ended_at", "trial_end", "trial_start", "pending_update", "schedule", "default_payment_method"} {
		s[k] = nil
	}
	s["cancel_at_period_end"] = false
	s["metadata"] = map[string]any{"vendor_id": vendor}
	s["current_period_start"], s["current_period_end"] = periodStart, periodEnd
	items := s["items"].(map[string]any)
	item := items["data"].([]any)[0].(map[string]any)
	item["subscription"] = subID
	item["price"].(map[string]any)["id"] = price
	items["data"] = []any{item}
	e := fixture(t, "event")
	e["id"], e["type"], e["created"], e["api_version"] = id, "customer.subscription.updated", created, "2023-10-16"
	e["data"] = map[string]any{"object": s}
	b, err := json.Marshal(e)
	must(t, err)
	return b
}
