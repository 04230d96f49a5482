package cache

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tollgate-pdp/tollgate"
	bolt "go.etcd.io/bbolt"
)

func fileHash(t *testing.T, path string) [32]byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return sha256.Sum256(b)
}

// makeStore creates a real store with one vendor and returns its path.
func makeStore(t *testing.T, dir string) string {
	t.Helper()
	path := filepath.Join(dir, "tollgate.db")
	s, err := Open(context.Background(), Options{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	mustPut(t, s, testSub("1"))
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestOpenRefusesAndLeavesFileUntouched(t *testing.T) {
	tests := []struct {
		name    string
		prepare func(t *testing.T, dir string) string // returns the path to open
		want    string                                // substring of the error
		code    string
	}{
		{"newer schema", func(t *testing.T, dir string) string {
			path := makeStore(t, dir)
			db, err := bolt.Open(path, 0o600, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			if err := db.Update(func(tx *bolt.Tx) error {
				var v [8]byte
				binary.BigEndian.PutUint64(v[:], SchemaVersion+1)
				return tx.Bucket([]byte(bucketMeta)).Put([]byte(keySchemaVersion), v[:])
			}); err != nil {
				t.Fatal(err)
			}
			return path
		}, "has schema version 2, this tollgate supports up to 1; upgrade tollgate", tollgate.EUnsupported},
		{"bbolt file without marker", func(t *testing.T, dir string) string {
			path := filepath.Join(dir, "other.db")
			db, err := bolt.Open(path, 0o600, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			if err := db.Update(func(tx *bolt.Tx) error {
				b, err := tx.CreateBucket([]byte("widgets"))
				if err != nil {
					return err
				}
				return b.Put([]byte("a"), []byte("b"))
			}); err != nil {
				t.Fatal(err)
			}
			return path
		}, "not a tollgate store or corrupted", tollgate.EUnsupported},
		{"empty bbolt file", func(t *testing.T, dir string) string {
			path := filepath.Join(dir, "empty.db")
			db, err := bolt.Open(path, 0o600, nil)
			if err != nil {
				t.Fatal(err)
			}
			db.Close()
			return path
		}, "not a tollgate store or corrupted", tollgate.EUnsupported},
		{"random bytes", func(t *testing.T, dir string) string {
			path := filepath.Join(dir, "random.db")
			b := bytes.Repeat([]byte("not a database, just text. "), 1000)
			if err := os.WriteFile(path, b, 0o644); err != nil {
				t.Fatal(err)
			}
			return path
		}, "not a tollgate store or corrupted", tollgate.EUnsupported},
		{"truncated store", func(t *testing.T, dir string) string {
			path := makeStore(t, dir)
			if err := os.Truncate(path, 100); err != nil {
				t.Fatal(err)
			}
			return path
		}, "not a tollgate store or corrupted", tollgate.EUnsupported},
		{"zero-length file", func(t *testing.T, dir string) string {
			path := filepath.Join(dir, "zero.db")
			if err := os.WriteFile(path, nil, 0o600); err != nil {
				t.Fatal(err)
			}
			return path
		}, "not a tollgate store or corrupted", tollgate.EUnsupported},
		{"locked by another process", func(t *testing.T, dir string) string {
			path := makeStore(t, dir)
			// flock locks belong to open file descriptions, so a second open in this process
			// conflicts exactly like another process would.
			db, err := bolt.Open(path, 0o600, nil)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { db.Close() })
			return path
		}, "is locked by another process", tollgate.EUnavailable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := tt.prepare(t, t.TempDir())
			before := fileHash(t, path)
			s, err := Open(context.Background(), Options{Path: path, OpenTimeout: 50 * time.Millisecond})
			if err == nil {
				s.Close()
				t.Fatal("Open succeeded")
			}
			if !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), path) {
				t.Fatalf("error %q, want it to name %s and contain %q", err, path, tt.want)
			}
			if got := tollgate.ErrorCode(err); got != tt.code {
				t.Fatalf("code %q, want %q", got, tt.code)
			}
			if after := fileHash(t, path); after != before {
				t.Fatal("file changed")
			}
			if _, err := os.Stat(path + ".creating-" + itoa(os.Getpid())); !errors.Is(err, os.ErrNotExist) {
				t.Fatal("temporary file left behind")
			}
		})
	}
}

func itoa(i int) string { return strconv.Itoa(i) }

func TestOpenCreatesPrivateFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tollgate.db")
	s := mustOpen(t, path, nil)
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v, want 0600", fi.Mode().Perm())
	}
	if err := s.Check(context.Background()); err != nil {
		t.Fatalf("Check on a new store: %v", err)
	}
	if s.Path() != path || s.Size() <= 0 || s.VendorCount() != 0 {
		t.Fatalf("Path %q Size %d VendorCount %d", s.Path(), s.Size(), s.VendorCount())
	}
	entries, _ := os.ReadDir(filepath.Dir(path))
	if len(entries) != 1 {
		t.Fatalf("directory holds %d entries, want only the store", len(entries))
	}
}

func TestOpenRequiresPath(t *testing.T) {
	if _, err := Open(context.Background(), Options{}); tollgate.ErrorCode(err) != tollgate.EInvalid {
		t.Fatalf("Open without path: %v", err)
	}
}

func TestCloseIsIdempotentAndRefusesWrites(t *testing.T) {
	s := mustOpen(t, "", nil)
	before := mustPut(t, s, testSub("1"))
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	_, err := s.AddOrders(context.Background(), tollgate.OrderIncrement{VendorID: "1", Period: "p", Delta: 1})
	if tollgate.ErrorCode(err) != tollgate.EUnavailable {
		t.Fatalf("AddOrders after Close: %v, want unavailable", err)
	}
	if v := mustVendor(t, s, "1"); v != before {
		t.Fatal("memory changed by a failed write")
	}
}
