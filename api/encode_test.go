package api

import (
	"encoding/json"
	"testing"

	"github.com/tollgate-pdp/tollgate"
)

func TestAppendDecisionMatchesEncodingJSON(t *testing.T) {
	ten, zero := int64(10), int64(0)
	up := "business"
	cases := []tollgate.Decision{
		{},
		{Allow: true, Code: "ok", Limit: &ten, Used: 3, Remaining: &zero, Tier: "essential", Status: "active", DecisionID: "ab-1"},
		{Code: "limit_reached", Reason: "Monthly order limit reached (100 orders). Upgrade to continue.", UpgradeTo: &up, Stale: true, Replayed: true},
		{Reason: "quotes \" back\\slash \n\r\t \x01 <tag> & \u2028 \u2029 é 日本"},
		{Reason: "invalid \xff utf-8"},
		{Code: "ok", Explain: &tollgate.Explanation{Input: json.RawMessage(`{"a":1}`), Query: "data.tollgate.decision"}},
	}
	for _, d := range cases {
		want, err := json.Marshal(d)
		if err != nil {
			t.Fatal(err)
		}
		got, err := appendDecision(nil, &d)
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != string(want) {
			t.Errorf("appendDecision:\n got %s\nwant %s", got, want)
		}
	}
}

func BenchmarkAppendDecision(b *testing.B) {
	ten := int64(100)
	d := tollgate.Decision{Allow: true, Code: "ok", Limit: &ten, Used: 3, Remaining: &ten, Tier: "essential", Status: "active", DecisionID: "0123456789ab-1z"}
	buf := make([]byte, 0, 512)
	b.ReportAllocs()
	for b.Loop() {
		buf, _ = appendDecision(buf[:0], &d)
	}
}
