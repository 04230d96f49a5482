package main

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// TestSnapshotCommandOpensTheStore: without --addr, `tollgate snapshot` stores today's
// snapshot in the store file; a second run keeps the first.
func TestSnapshotCommandOpensTheStore(t *testing.T) {
	dir := t.TempDir()
	file := writeFile(t, dir, "rows.jsonl", `{"vendor_id":1,"tier":"essential","status":"active","orders_this_period":85}
{"vendor_id":2,"tier":"enterprise","status":"trial"}
`)
	if _, stderr, err := run(t, "import", file, "--data-dir", dir); err != nil {
		t.Fatalf("import: %v %s", err, stderr)
	}
	for i, wantCreated := range []bool{true, false} {
		out, stderr, err := run(t, "snapshot", "--data-dir", dir)
		if err != nil {
			t.Fatalf("snapshot %d: %v %s", i, err, stderr)
		}
		var res snapshotResult
		if err := json.Unmarshal([]byte(out), &res); err != nil {
			t.Fatalf("output %q: %v", out, err)
		}
		s := res.Snapshot
		if res.Created != wantCreated || s.Date != time.Now().UTC().Format("2006-01-02") || s.Vendors.Total != 2 ||
			s.Subscriptions.Active != 2 || s.Limits.Orders.Sum != 100 || s.Limits.Orders.Unlimited != 1 ||
			s.NearOrderLimit["essential"].AtLeast80 != 1 || s.Usage.OrdersThisPeriod != 85 {
			t.Errorf("snapshot %d = %s", i, out)
		}
	}
}

func TestServeRefusesBadObservabilityFlags(t *testing.T) {
	dir := t.TempDir()
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"--when-stale", "order.create=sometimes"}, "--when-stale"},
		{[]string{"--snapshot-time", "25:00"}, "--snapshot-time"},
		{[]string{"--decision-log", "stdout", "--decision-log-sample", "2"}, "sample rate"},
		{[]string{"--decision-log", "stdout", "--decision-log-mask", "request/feature"}, "mask"},
	} {
		args := append([]string{"serve", "--data-dir", dir, "--listen", "127.0.0.1:0", "--webhook-listen", "127.0.0.1:0", "--ops-listen", "127.0.0.1:0"}, tt.args...)
		if _, _, err := run(t, args...); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%v: want an error naming %s, got %v", tt.args, tt.want, err)
		}
	}
}
