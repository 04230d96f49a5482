package cache

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/tollgate-pdp/tollgate"
	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// Open opens the store at opts.Path, creating it (mode 0600) when the path does not exist, and
// loads every vendor into memory.
//
// A file that is not a tollgate store, was written by a newer schema, is corrupted or is locked
// by another process is refused with a clear error and left byte-for-byte untouched: bbolt may
// write to a file it opens read-write, so an existing file is first inspected read-only.
func Open(ctx context.Context, opts Options) (*Store, error) {
	if opts.Path == "" {
		return nil, tollgate.Errorf(tollgate.EInvalid, "store path is required")
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if opts.OpenTimeout <= 0 {
		opts.OpenTimeout = time.Second
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	path := opts.Path

	fi, err := os.Stat(path)
	switch {
	case err == nil && fi.IsDir():
		return nil, tollgate.Errorf(tollgate.EInvalid, "store %s is a directory, not a file", path)
	case err == nil && fi.Size() == 0:
		// bbolt would initialise an empty file in place. Tollgate never leaves one behind (see
		// create), so this file is someone else's: refuse it untouched.
		return nil, tollgate.Errorf(tollgate.EUnsupported, "store %s: not a tollgate store or corrupted (empty file)", path)
	case err == nil:
		if err := inspect(path, opts.OpenTimeout); err != nil {
			return nil, err
		}
	case errors.Is(err, os.ErrNotExist):
		if err := create(path, opts.OpenTimeout); err != nil {
			return nil, err
		}
		opts.Logger.Info("store created", "path", path, "schema_version", SchemaVersion)
	default:
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}

	db, err := openBolt(path, &bolt.Options{Timeout: opts.OpenTimeout})
	if err != nil {
		return nil, classifyOpenError(path, err)
	}
	db.NoSync = opts.NoSync
	// Re-check under the exclusive lock: the file may have been replaced since inspect.
	err = db.View(func(tx *bolt.Tx) error { return checkSchema(tx, path) })
	if err == nil {
		err = initialise(db, path)
	}
	if err != nil {
		_ = db.Close()
		return nil, err
	}
	s := &Store{
		db: db, path: path, log: opts.Logger, now: opts.Now, mem: newReadModel(),
		ops: make(chan *writeOp, maxGroup), stop: make(chan struct{}), committerDone: make(chan struct{}),
	}
	s.agg = newAggregates(opts.Limits, opts.Now, opts.Logger)
	start := time.Now()
	if err := s.load(ctx); err != nil {
		_ = db.Close()
		return nil, err
	}
	if err := s.loadSequence(); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("open store %s: read log sequence: %w", path, err)
	}
	// From here every installed snapshot updates the aggregates, which are built from the
	// loaded vendors in the background (see buildAggregates).
	s.mem.onSwap = s.agg.changed
	s.startBuild()
	go s.runCommitter()
	s.startNoted(opts.FlushInterval)
	s.log.Info("store opened", "path", path, "vendors", s.VendorCount(),
		"load_seconds", time.Since(start).Seconds())
	return s, nil
}

// openBolt opens the file with bbolt, turning a panic on a malformed file into an error: a
// foreign file must produce a message, never crash the process.
func openBolt(path string, o *bolt.Options) (db *bolt.DB, err error) {
	defer func() {
		if r := recover(); r != nil {
			db, err = nil, fmt.Errorf("%v", r)
		}
	}()
	return bolt.Open(path, 0o600, o)
}

func classifyOpenError(path string, err error) error {
	if errors.Is(err, berrors.ErrTimeout) {
		return &tollgate.Error{Code: tollgate.EUnavailable,
			Message: fmt.Sprintf("store %s is locked by another process", path), Err: err}
	}
	if errors.Is(err, os.ErrPermission) {
		return fmt.Errorf("open store %s: %w", path, err)
	}
	return &tollgate.Error{Code: tollgate.EUnsupported,
		Message: fmt.Sprintf("store %s: not a tollgate store or corrupted", path), Err: err}
}

// inspect opens an existing file read-only and checks it is a tollgate store this build can
// read. Read-only bbolt takes a shared lock and never writes.
func inspect(path string, timeout time.Duration) error {
	db, err := openBolt(path, &bolt.Options{ReadOnly: true, Timeout: timeout})
	if err != nil {
		return classifyOpenError(path, err)
	}
	defer db.Close()
	return viewFile(db, path, func(tx *bolt.Tx) error { return checkSchema(tx, path) })
}

// create makes a new store at path atomically: it is built under a temporary name with its
// marker and buckets, made durable, then linked into place. So a file at path without the
// marker is never a half-created tollgate store, and Open can refuse it as foreign.
func create(path string, timeout time.Duration) error {
	tmp := fmt.Sprintf("%s.creating-%d", path, os.Getpid())
	_ = os.Remove(tmp)
	defer os.Remove(tmp)
	db, err := openBolt(tmp, &bolt.Options{Timeout: timeout})
	if err != nil {
		return fmt.Errorf("create store %s: %w", path, err)
	}
	if err := initialise(db, path); err != nil {
		_ = db.Close()
		return err
	}
	if err := db.Close(); err != nil {
		return fmt.Errorf("create store %s: %w", path, err)
	}
	// Link, not rename: if another process created the store meanwhile, keep theirs.
	if err := os.Link(tmp, path); err != nil && !errors.Is(err, os.ErrExist) {
		if err := os.Rename(tmp, path); err != nil {
			return fmt.Errorf("create store %s: %w", path, err)
		}
	}
	return syncDir(filepath.Dir(path))
}

// syncDir makes a new directory entry durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("sync directory %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync directory %s: %w", dir, err)
	}
	return nil
}

// checkSchema verifies the marker and the schema version.
func checkSchema(tx *bolt.Tx, path string) error {
	meta := tx.Bucket([]byte(bucketMeta))
	if meta == nil || string(meta.Get([]byte(keyMagic))) != magic {
		return tollgate.Errorf(tollgate.EUnsupported, "store %s: not a tollgate store or corrupted (no %q marker)", path, magic)
	}
	v := meta.Get([]byte(keySchemaVersion))
	if len(v) != 8 {
		return tollgate.Errorf(tollgate.EUnsupported, "store %s: not a tollgate store or corrupted (bad schema version)", path)
	}
	if n := binary.BigEndian.Uint64(v); n > SchemaVersion {
		return tollgate.Errorf(tollgate.EUnsupported,
			"store %s has schema version %d, this tollgate supports up to %d; upgrade tollgate", path, n, SchemaVersion)
	}
	return nil
}

// initialise writes the marker and schema version into a new file and creates every bucket.
// On an existing store it writes nothing when all buckets already exist (a store of an older
// tollgate gains the buckets added since).
func initialise(db *bolt.DB, path string) error {
	complete := true
	_ = db.View(func(tx *bolt.Tx) error {
		for _, b := range allBuckets() {
			if tx.Bucket([]byte(b)) == nil {
				complete = false
			}
		}
		return nil
	})
	if complete {
		return nil
	}
	err := db.Update(func(tx *bolt.Tx) error {
		for _, b := range allBuckets() {
			if _, err := tx.CreateBucketIfNotExists([]byte(b)); err != nil {
				return err
			}
		}
		meta := tx.Bucket([]byte(bucketMeta))
		if meta.Get([]byte(keyMagic)) == nil {
			if err := meta.Put([]byte(keyMagic), []byte(magic)); err != nil {
				return err
			}
			var v [8]byte
			binary.BigEndian.PutUint64(v[:], SchemaVersion)
			return meta.Put([]byte(keySchemaVersion), v[:])
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("initialise store %s: %w", path, err)
	}
	return nil
}

// startBuild builds the aggregates from the loaded vendors in the background, so the store is
// ready (the decision path needs only the read model) without waiting for it: the build asks
// the policy for the limits of every distinct set of limit facts (some 20,000 evaluations at a
// million vendors, most for vendors with custom overrides), seconds of CPU. Aggregates waits
// for the build; writes meanwhile update the aggregates through the swap hook, and the build
// never replaces a newer vendor's contribution with an older one (see applyLocked). AggregatesBuilt
// tells when it is done (the process may then return the load's garbage to the OS).
func (s *Store) startBuild() {
	ctx, cancel := context.WithCancel(context.Background())
	s.buildStop, s.buildDone = cancel, make(chan struct{})
	go func() {
		defer close(s.buildDone)
		t0 := time.Now()
		err := s.RefreshAggregates(ctx)
		close(s.agg.built)
		if err != nil {
			if ctx.Err() == nil {
				s.log.Error("capacity aggregates: initial build failed", "path", s.path, "err", err)
			}
			return
		}
		s.log.Info("capacity aggregates built", "path", s.path, "vendors", s.VendorCount(),
			"seconds", time.Since(t0).Seconds())
	}()
}

// stopBuild abandons the initial build (Close) and waits for it to end.
func (s *Store) stopBuild() {
	if s.buildStop != nil {
		s.buildStop()
		<-s.buildDone
	}
}

// load reads every vendor into memory. The vendors and usage buckets share their keys, so one
// pass walks both cursors side by side. Nothing else can see the read model yet, so the
// snapshots are gathered first and each shard's map is then built at its final size, without
// the per-vendor locking and revision checks of swap (and without the aggregates' hook: they
// are built once afterwards). The load allocates almost only what stays live: a caller that owns
// the process (cmd/tollgate) may pause the collector around Open.
func (s *Store) load(ctx context.Context) error {
	in := newInterner()
	var states []*tollgate.VendorState
	var hashes []uint64
	err := s.db.View(func(tx *bolt.Tx) error {
		// tx.Size is the database's size in the file, which bbolt has mapped whole; the file's
		// size on disk could differ (or be another file's, were the path replaced), and advice
		// beyond the mapping could reach a neighbouring one. No writer runs during the load, so
		// the mapping does not move.
		size := tx.Size()
		adviseLoad(s.db, size)
		defer adviseLoaded(s.db, size)
		vb := tx.Bucket([]byte(bucketVendors))
		uc := tx.Bucket([]byte(bucketUsage)).Cursor()
		uk, uv := uc.First()
		c := vb.Cursor()
		n := 0
		for k, v := c.First(); k != nil; k, v = c.Next() {
			if n++; n%65536 == 0 {
				if err := ctx.Err(); err != nil {
					return err
				}
			}
			st := new(tollgate.VendorState)
			if err := decodeSubscriptionShared(v, &st.Subscription, in); err != nil {
				return fmt.Errorf("vendor %q: %w", k, err)
			}
			for uk != nil && string(uk) < string(k) {
				uk, uv = uc.Next()
			}
			if uk != nil && string(uk) == string(k) {
				var rec usageRecord
				if err := decodeUsage(uv, &rec, in); err != nil {
					return fmt.Errorf("vendor %q: %w", k, err)
				}
				st.Usage, st.Revision = rec.Usage, rec.Revision
			} else {
				st.Usage.Periods = []tollgate.PeriodUsage{}
			}
			states = append(states, st)
			hashes = append(hashes, s.mem.hash(st.Subscription.VendorID))
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("load store %s: %w", s.path, err)
	}
	s.mem.bulkLoad(states, hashes)
	// Sized here, with the collector still paused: allocating once it runs again (it starts at
	// once, the heap being far above the goal of the last collection) would make Open assist it.
	s.agg.sizeFor(s.VendorCount())
	return nil
}
