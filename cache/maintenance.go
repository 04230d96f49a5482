package cache

import (
	"context"
	"errors"
	"fmt"
	"io"

	bolt "go.etcd.io/bbolt"
)

// Check runs bbolt's consistency check over the whole file and verifies the marker and schema
// version. It reads every page, so it belongs in tools and startup probes, not request paths.
func (s *Store) Check(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	err := s.db.View(func(tx *bolt.Tx) error {
		if err := checkSchema(tx, s.path); err != nil {
			return err
		}
		for _, b := range allBuckets() {
			if tx.Bucket([]byte(b)) == nil {
				return fmt.Errorf("bucket %q missing", b)
			}
		}
		// The channel must be drained: its producer reads pages of this transaction.
		var errs []error
		for err := range tx.Check() {
			if len(errs) < 10 {
				errs = append(errs, err)
			}
		}
		return errors.Join(errs...)
	})
	if err != nil {
		return fmt.Errorf("check store %s: %w", s.path, err)
	}
	return nil
}

// Backup writes a consistent copy of the whole store to w while it keeps serving (a read
// transaction pins one version of the file). The copy opens as a store by itself.
func (s *Store) Backup(ctx context.Context, w io.Writer) (int64, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	var n int64
	err := s.db.View(func(tx *bolt.Tx) error {
		var err error
		n, err = tx.WriteTo(w)
		return err
	})
	if err != nil {
		return n, fmt.Errorf("backup store %s: %w", s.path, err)
	}
	return n, nil
}
