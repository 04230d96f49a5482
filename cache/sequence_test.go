package cache

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/tollgate-pdp/tollgate"
)

func TestLogSequenceRecordedWithTheWrite(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "tollgate.db")
	s, err := Open(ctx, Options{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	if got := s.AppliedSequence(); got != 0 {
		t.Fatalf("new store sequence = %d, want 0", got)
	}
	if _, err := s.PutSubscription(tollgate.WithLogSequence(ctx, 7), testSub("1")); err != nil {
		t.Fatal(err)
	}
	if got := s.AppliedSequence(); got != 7 {
		t.Fatalf("sequence after sequenced write = %d, want 7", got)
	}
	// A write without a sequence (local bookkeeping) leaves it alone.
	if _, err := s.PutSubscription(ctx, testSub("2")); err != nil {
		t.Fatal(err)
	}
	// A failed write records nothing, not even its sequence.
	if _, err := s.UpdateSubscription(tollgate.WithLogSequence(ctx, 8), "missing", func(*tollgate.Subscription) error { return nil }); err == nil {
		t.Fatal("update of a missing vendor succeeded")
	}
	if got := s.AppliedSequence(); got != 7 {
		t.Fatalf("sequence after failed write = %d, want 7", got)
	}
	// RecordSequence moves forward only.
	if err := s.RecordSequence(ctx, 9); err != nil {
		t.Fatal(err)
	}
	if err := s.RecordSequence(ctx, 3); err != nil {
		t.Fatal(err)
	}
	if _, err := s.PutSubscription(tollgate.WithLogSequence(ctx, 5), testSub("3")); err != nil {
		t.Fatal(err)
	}
	if got := s.AppliedSequence(); got != 9 {
		t.Fatalf("sequence = %d, want 9 (never backwards)", got)
	}
	var backup bytes.Buffer
	if _, err := s.Backup(ctx, &backup); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	for name, p := range map[string]string{"reopened": path, "backup": filepath.Join(t.TempDir(), "copy.db")} {
		if name == "backup" {
			if err := os.WriteFile(p, backup.Bytes(), 0o600); err != nil {
				t.Fatal(err)
			}
		}
		r, err := Open(ctx, Options{Path: p})
		if err != nil {
			t.Fatal(err)
		}
		if got := r.AppliedSequence(); got != 9 {
			t.Errorf("%s: sequence = %d, want 9", name, got)
		}
		_ = r.Close()
	}
}
