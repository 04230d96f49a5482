package cache

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/tollgate-pdp/tollgate"
)

// A store file cut short (a full disk during a copy, a bad restore) kept its meta pages, so
// bbolt opens it and maps past the end of the file: reading the schema marker was a SIGBUS
// that killed the process. Open must refuse it with an error and leave it untouched.
func TestOpenRefusesTruncatedStore(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "tollgate.db")
	s, err := Open(context.Background(), Options{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	start := s.now()
	for _, v := range []string{"a", "b", "c"} {
		sub := &tollgate.Subscription{VendorID: v, Tier: "essential", Status: tollgate.StatusActive, PeriodStart: &start}
		if _, err := s.PutSubscription(context.Background(), sub); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, keep := range []int{len(raw) / 2, len(raw) / 3, 3 * 4096} {
		cut := raw[:keep]
		if err := os.WriteFile(path, cut, 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := Open(context.Background(), Options{Path: path}); err == nil {
			t.Fatalf("a store truncated to %d of %d bytes opened", keep, len(raw))
		} else {
			t.Logf("truncated to %d: %v", keep, err)
		}
		if after, _ := os.ReadFile(path); !bytes.Equal(after, cut) {
			t.Fatalf("Open changed a truncated file (%d bytes)", keep)
		}
	}
}
