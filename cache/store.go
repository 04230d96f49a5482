package cache

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tollgate-pdp/tollgate"
	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// Options configure Open.
type Options struct {
	// Path is the store file, e.g. <data-dir>/tollgate.db. Required.
	Path string
	// Logger receives open/close and failure logs; nil discards them.
	Logger *slog.Logger
	// OpenTimeout is how long Open waits for another process's lock on the file (default 1s).
	OpenTimeout time.Duration
	// Now stamps CreatedAt/UpdatedAt and picks the current period on Import (default time.Now).
	Now func() time.Time
	// Limits computes effective limits for the capacity aggregates (see Aggregates); nil
	// leaves limits unknown (no subscription counts as active).
	Limits tollgate.LimitsResolver
	// FlushInterval is how often usage facts learnt from checks are written (default 1s).
	FlushInterval time.Duration
	// NoSync skips the fsync of each commit. Only for a store that is a replica of a durable
	// log (fleet mode): a commit is still atomic and survives the process being killed (the
	// kernel holds it), and what a machine crash loses is applied again from the log.
	NoSync bool
}

// Store is the bbolt-backed tollgate.Store with its in-memory read model.
type Store struct {
	db   *bolt.DB
	path string
	log  *slog.Logger
	now  func() time.Time
	mem  *readModel
	agg  *aggregates
	// buildStop cancels the aggregates' initial build; buildDone is closed when it has ended.
	buildStop func()
	buildDone chan struct{}
	noted     *noted

	ops           chan *writeOp
	stop          chan struct{}
	committerDone chan struct{}

	// closeMu is held shared by every write in flight, so Close waits for them and a write
	// never reaches a closed database.
	closeMu sync.RWMutex
	closed  bool

	// seq is the fleet log sequence recorded last (see sequence.go).
	seq atomic.Uint64
}

var _ tollgate.Store = (*Store)(nil)

// Path is the store file's path.
func (s *Store) Path() string { return s.path }

// Size is the store file's size in bytes (0 if it cannot be read), for the store size metric.
func (s *Store) Size() int64 {
	fi, err := os.Stat(s.path)
	if err != nil {
		return 0
	}
	return fi.Size()
}

// Vendor returns the vendor's snapshot from memory; it never opens a transaction.
func (s *Store) Vendor(id string) (*tollgate.VendorState, bool) { return s.mem.get(id) }

// ForEachVendor calls fn with every vendor's snapshot, in no particular order, until fn returns
// false.
func (s *Store) ForEachVendor(fn func(*tollgate.VendorState) bool) { s.mem.forEach(fn) }

// VendorCount is the number of vendors held.
func (s *Store) VendorCount() int { return int(s.mem.count.Load()) }

// Aggregates returns the vendor population's figures, kept incrementally (no vendor is
// visited): safe for every scrape.
func (s *Store) Aggregates() tollgate.VendorAggregates { return s.agg.snapshot(s.now()) }

// RefreshAggregates re-evaluates every vendor's effective limits: call it after the policy or
// the catalog changed. It walks all vendors (on all CPUs), off the request paths.
func (s *Store) RefreshAggregates(ctx context.Context) error {
	if err := s.agg.refresh(ctx, s.mem.forEach); err != nil {
		return fmt.Errorf("refresh capacity aggregates: %w", err)
	}
	return nil
}

// Close flushes the usage facts learnt from checks, waits for writes in flight, stops the
// committer and closes the file. It is idempotent.
func (s *Store) Close() error {
	s.stopBuild()
	s.stopNoted()
	s.closeMu.Lock()
	defer s.closeMu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	close(s.stop)
	<-s.committerDone
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("close store %s: %w", s.path, err)
	}
	s.log.Info("store closed", "path", s.path)
	return nil
}

// Update runs fn in a durable read-write transaction, grouped with other writers. It is the
// hook for code of this package that owns other buckets (cache/stripe_*.go: Stripe events,
// billing history): fn may be called more than once (see commitGroup), so it must compute
// everything from tx and reset any result it hands out. It returns after the commit is durable.
// Errors returned by fn come back wrapped; a failed commit is EUnavailable.
//
// Update does not touch the read model: to change a vendor in the same transaction, use
// ApplyVendor.
func (s *Store) Update(ctx context.Context, fn func(tx *bolt.Tx) error) error {
	return s.write(ctx, fn)
}

// write submits fn to the committer and waits for its durable commit.
func (s *Store) write(ctx context.Context, fn func(*bolt.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.closeMu.RLock()
	defer s.closeMu.RUnlock()
	if s.closed {
		return &tollgate.Error{Code: tollgate.EUnavailable, Message: "the store is closed", Err: berrors.ErrDatabaseNotOpen}
	}
	fn, seq := sequenced(ctx, fn)
	var fnErr error
	op := &writeOp{done: make(chan error, 1), fn: func(tx *bolt.Tx) error {
		fnErr = fn(tx)
		return fnErr
	}}
	// Once queued the write is not abandoned on cancellation: the caller must learn whether it
	// became durable.
	s.ops <- op
	err := <-op.done
	if err == nil {
		if seq > 0 {
			s.noteSequence(seq)
		}
		return nil
	}
	if fnErr != nil && errors.Is(err, fnErr) {
		return err
	}
	s.log.Error("store write failed", "path", s.path, "err", err)
	return &tollgate.Error{Code: tollgate.EUnavailable, Message: "the store cannot write right now", Err: err}
}
