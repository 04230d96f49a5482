package cache

import (
	"context"
	"encoding/binary"
	"fmt"

	"github.com/tollgate-pdp/tollgate"
	bolt "go.etcd.io/bbolt"
)

// In fleet mode the store records, in meta "log_sequence" (8-byte big-endian), the sequence of
// the last fleet log message it applied. The key is written in the same transaction as the
// message's effect (write wraps every function given a sequenced context), so the file never
// holds an effect without its sequence or a sequence without its effect; a hot backup carries
// it too, which is what makes a backup a snapshot of the log at that sequence.

const keyLogSequence = "log_sequence"

var _ tollgate.SequencedStore = (*Store)(nil)

// AppliedSequence is the last log sequence recorded (0: none, e.g. a single-mode store).
func (s *Store) AppliedSequence() uint64 { return s.seq.Load() }

// RecordSequence durably records seq alone; a seq not above the recorded one changes nothing.
func (s *Store) RecordSequence(ctx context.Context, seq uint64) error {
	if seq <= s.seq.Load() {
		return nil
	}
	ctx = tollgate.WithLogSequence(ctx, seq)
	if err := s.write(ctx, func(*bolt.Tx) error { return nil }); err != nil {
		return fmt.Errorf("record log sequence %d: %w", seq, err)
	}
	return nil
}

// sequenced wraps fn so that it also records the context's log sequence, when it has one.
func sequenced(ctx context.Context, fn func(*bolt.Tx) error) (func(*bolt.Tx) error, uint64) {
	seq, ok := tollgate.LogSequence(ctx)
	if !ok {
		return fn, 0
	}
	return func(tx *bolt.Tx) error {
		if err := fn(tx); err != nil {
			return err
		}
		meta := tx.Bucket([]byte(bucketMeta))
		if cur := readSequence(meta); seq <= cur {
			return nil
		}
		var v [8]byte
		binary.BigEndian.PutUint64(v[:], seq)
		return meta.Put([]byte(keyLogSequence), v[:])
	}, seq
}

func readSequence(meta *bolt.Bucket) uint64 {
	v := meta.Get([]byte(keyLogSequence))
	if len(v) != 8 {
		return 0
	}
	return binary.BigEndian.Uint64(v)
}

// loadSequence reads the recorded sequence at open.
func (s *Store) loadSequence() error {
	return s.db.View(func(tx *bolt.Tx) error {
		s.seq.Store(readSequence(tx.Bucket([]byte(bucketMeta))))
		return nil
	})
}

// noteSequence moves the in-memory sequence after a durable commit; only forward.
func (s *Store) noteSequence(seq uint64) {
	for {
		cur := s.seq.Load()
		if seq <= cur || s.seq.CompareAndSwap(cur, seq) {
			return
		}
	}
}
