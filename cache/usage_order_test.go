package cache

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/tollgate-pdp/tollgate"
)

// TestReportUsageNamesTheFirstBadFieldInOrder: with several negative counts the error always
// names the first in the report's field order, and nothing is written.
func TestReportUsageNamesTheFirstBadFieldInOrder(t *testing.T) {
	ctx := context.Background()
	s := mustOpen(t, filepath.Join(t.TempDir(), "tollgate.db"), newClock().Now)
	mustPut(t, s, testSub("1"))
	before := mustVendor(t, s, "1")
	neg := int64(-1)
	for i := 0; i < 100; i++ {
		_, err := s.ReportUsage(ctx, "1", tollgate.UsageReport{TeamMembers: &neg, CMSPages: &neg, CMSCustomPages: &neg, StorageBytes: &neg})
		if err == nil || err.Error() != "team_members: must be >= 0, got -1" || tollgate.ErrorCode(err) != tollgate.EInvalid {
			t.Fatalf("run %d: got %v", i, err)
		}
	}
	if after := mustVendor(t, s, "1"); after.Revision != before.Revision {
		t.Fatalf("a refused report changed the vendor: revision %d -> %d", before.Revision, after.Revision)
	}
}
