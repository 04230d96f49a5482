package sync

import (
	"os"
	"strings"
	"testing"

	"github.com/tollgate-pdp/tollgate"
)

// TestStatusTableMatchesREADME holds the status table documented in README.md to statusTable,
// row for row, so the two cannot drift.
func TestStatusTableMatchesREADME(t *testing.T) {
	b, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(b), "<!-- status-table -->")
	doc, _, ok2 := strings.Cut(rest, "<!-- /status-table -->")
	if !ok || !ok2 {
		t.Fatal("README.md has no <!-- status-table --> section")
	}
	var rows []statusRow
	for _, line := range strings.Split(strings.TrimSpace(doc), "\n")[2:] {
		cells := strings.Split(strings.Trim(line, "| "), "|")
		if len(cells) != 3 {
			t.Fatalf("README row %q: want 3 cells", line)
		}
		c := func(i int) string { return strings.Trim(strings.TrimSpace(cells[i]), "`") }
		rows = append(rows, statusRow{stripe: c(0), status: tollgate.Status(c(1)), cancelling: tollgate.Status(c(2))})
	}
	table := statusTable()
	if len(rows) != len(table) {
		t.Fatalf("README lists %d statuses, statusTable %d", len(rows), len(table))
	}
	for i, want := range table {
		if rows[i] != want {
			t.Errorf("row %d: README %+v, statusTable %+v", i, rows[i], want)
		}
	}
}

func TestMapStatus(t *testing.T) {
	tests := []struct {
		stripe string
		cancel bool
		want   tollgate.Status
	}{
		{"trialing", false, tollgate.StatusTrial},
		{"trialing", true, tollgate.StatusCancelled},
		{"active", false, tollgate.StatusActive},
		{"active", true, tollgate.StatusCancelled},
		{"past_due", true, tollgate.StatusPastDue},
		{"unpaid", false, tollgate.StatusExpired},
		{"canceled", true, tollgate.StatusExpired},
		{"incomplete", false, tollgate.StatusExpired},
		{"incomplete_expired", false, tollgate.StatusExpired},
		{"paused", false, tollgate.StatusExpired},
		{"some_future_status", false, tollgate.StatusExpired},
		{"Active", false, tollgate.StatusExpired}, // exact, not case-folded
		{"", false, tollgate.StatusExpired},
	}
	for _, tt := range tests {
		if got := MapStatus(tt.stripe, tt.cancel); got != tt.want {
			t.Errorf("MapStatus(%q, %v) = %s, want %s", tt.stripe, tt.cancel, got, tt.want)
		}
	}
}
