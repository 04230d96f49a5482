package cache

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"

	"github.com/tollgate-pdp/tollgate"
	bolt "go.etcd.io/bbolt"
)

// Capacity snapshots live in the snapshots bucket, one per day: key "YYYY-MM-DD" (sorts in
// date order), value the snapshot as JSON (small, written once a day, read by people).

var _ tollgate.SnapshotStore = (*Store)(nil)

// PutSnapshot stores sn under sn.Date unless the date already has one: the first snapshot of a
// day wins, so a retried or repeated `tollgate snapshot` is harmless. It returns the stored
// snapshot and whether this call stored it.
func (s *Store) PutSnapshot(ctx context.Context, sn *tollgate.CapacitySnapshot) (*tollgate.CapacitySnapshot, bool, error) {
	if _, err := tollgate.ParseDate("date", sn.Date); err != nil {
		return nil, false, err
	}
	val, err := json.Marshal(sn)
	if err != nil {
		return nil, false, fmt.Errorf("encode snapshot %s: %w", sn.Date, err)
	}
	var existing []byte
	err = s.write(ctx, func(tx *bolt.Tx) error {
		existing = nil
		b := tx.Bucket([]byte(bucketSnapshots))
		if v := b.Get([]byte(sn.Date)); v != nil {
			existing = bytes.Clone(v)
			return nil
		}
		return b.Put([]byte(sn.Date), val)
	})
	if err != nil {
		return nil, false, fmt.Errorf("put snapshot %s: %w", sn.Date, err)
	}
	if existing == nil {
		out := *sn
		return &out, true, nil
	}
	var old tollgate.CapacitySnapshot
	if err := json.Unmarshal(existing, &old); err != nil {
		return nil, false, fmt.Errorf("decode snapshot %s: %w", sn.Date, err)
	}
	return &old, false, nil
}

// Snapshots lists snapshots with from <= date <= to, oldest first; an empty bound is open.
func (s *Store) Snapshots(ctx context.Context, from, to string) ([]tollgate.CapacitySnapshot, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	out := []tollgate.CapacitySnapshot{}
	err := s.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket([]byte(bucketSnapshots)).Cursor()
		var k, v []byte
		if from == "" {
			k, v = c.First()
		} else {
			k, v = c.Seek([]byte(from))
		}
		for ; k != nil && (to == "" || string(k) <= to); k, v = c.Next() {
			var sn tollgate.CapacitySnapshot
			if err := json.Unmarshal(v, &sn); err != nil {
				return fmt.Errorf("snapshot %s: %w", k, err)
			}
			out = append(out, sn)
		}
		return nil
	})
	if err != nil {
		return nil, &tollgate.Error{Code: tollgate.EUnavailable, Message: "the store cannot read right now", Err: err}
	}
	return out, nil
}
