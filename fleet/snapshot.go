package fleet

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Snapshots: a sidecar that has caught up puts a hot backup of its store (one bbolt read
// transaction, so it is consistent and carries the log sequence it covers) into the object
// store <FLEET>_SNAPSHOTS under one name, replacing the previous one, every SnapshotEvery. A
// new sidecar (empty store) or one whose sequence the stream no longer reaches restores the
// latest snapshot before it opens its store, then applies the stream after the snapshot's
// sequence. The cost of joining grows with the vendors (the snapshot's size), not with
// history.

const (
	snapshotObject = "state"
	metaSequence   = "sequence"
	snapshotChunk  = 512 << 10
)

// SnapshotInfo describes the latest snapshot.
type SnapshotInfo struct {
	Sequence uint64
	Size     uint64
	Taken    time.Time
}

func (c *Conn) snapshotBucket(ctx context.Context) (jetstream.ObjectStore, error) {
	obs, err := c.JS.CreateOrUpdateObjectStore(ctx, jetstream.ObjectStoreConfig{
		Bucket:      c.Names.Snapshots,
		Description: "tollgate fleet " + c.Config.Name + ": the latest applied state, for sidecars that join",
		Storage:     jetstream.FileStorage,
		Replicas:    c.Config.Replicas,
	})
	if err != nil {
		return nil, fmt.Errorf("fleet: object store %s: %w", c.Names.Snapshots, err)
	}
	return obs, nil
}

// LatestSnapshot describes the latest snapshot; ok is false when there is none.
func (c *Conn) LatestSnapshot(ctx context.Context) (info SnapshotInfo, ok bool, err error) {
	obs, err := c.snapshotBucket(ctx)
	if err != nil {
		return info, false, err
	}
	oi, err := obs.GetInfo(ctx, snapshotObject)
	if errors.Is(err, jetstream.ErrObjectNotFound) {
		return info, false, nil
	}
	if err != nil {
		return info, false, fmt.Errorf("fleet: snapshot info: %w", err)
	}
	seq, err := strconv.ParseUint(oi.Metadata[metaSequence], 10, 64)
	if err != nil {
		return info, false, fmt.Errorf("fleet: snapshot without a sequence: %w", err)
	}
	return SnapshotInfo{Sequence: seq, Size: oi.Size, Taken: oi.ModTime}, true, nil
}

// NeedsRestore decides, before the store opens for serving, whether this sidecar must start
// from the latest snapshot: when its store is empty (a new pod) or the stream no longer holds
// the messages after its sequence, and a snapshot is at least as new as the store.
func (c *Conn) NeedsRestore(ctx context.Context, applied uint64, empty bool) (bool, error) {
	if err := ensureConnected(ctx, c); err != nil {
		return false, err
	}
	st, err := ensureStream(ctx, c)
	if err != nil {
		return false, err
	}
	si, err := st.Info(ctx)
	if err != nil {
		return false, fmt.Errorf("fleet: stream info: %w", err)
	}
	snap, ok, err := c.LatestSnapshot(ctx)
	if err != nil || !ok {
		return false, err
	}
	behind := si.State.Msgs > 0 && applied+1 < si.State.FirstSeq
	if !empty && !behind {
		return false, nil
	}
	return snap.Sequence > applied || (empty && snap.Sequence >= applied), nil
}

func ensureConnected(ctx context.Context, c *Conn) error {
	for !c.Connected() {
		select {
		case <-ctx.Done():
			return unavailable("connect", ctx.Err())
		case <-c.changed:
		case <-time.After(100 * time.Millisecond):
		}
	}
	return nil
}

// RestoreSnapshot replaces the (closed) store file at path with the latest snapshot: written
// beside it, synced, then renamed over it, so a crash leaves the old file or the new one.
func (c *Conn) RestoreSnapshot(ctx context.Context, path string) (SnapshotInfo, error) {
	obs, err := c.snapshotBucket(ctx)
	if err != nil {
		return SnapshotInfo{}, err
	}
	res, err := obs.Get(ctx, snapshotObject)
	if err != nil {
		return SnapshotInfo{}, fmt.Errorf("fleet: get snapshot: %w", err)
	}
	defer res.Close()
	oi, err := res.Info()
	if err != nil {
		return SnapshotInfo{}, fmt.Errorf("fleet: snapshot info: %w", err)
	}
	seq, _ := strconv.ParseUint(oi.Metadata[metaSequence], 10, 64)
	tmp, err := os.CreateTemp(filepath.Dir(path), filepath.Base(path)+".restore-*")
	if err != nil {
		return SnapshotInfo{}, fmt.Errorf("fleet: restore snapshot: %w", err)
	}
	defer os.Remove(tmp.Name())
	if _, err := io.Copy(tmp, res); err != nil {
		tmp.Close()
		return SnapshotInfo{}, fmt.Errorf("fleet: download snapshot: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return SnapshotInfo{}, fmt.Errorf("fleet: restore snapshot: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return SnapshotInfo{}, fmt.Errorf("fleet: restore snapshot: %w", err)
	}
	if err := os.Chmod(tmp.Name(), 0o600); err != nil {
		return SnapshotInfo{}, fmt.Errorf("fleet: restore snapshot: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return SnapshotInfo{}, fmt.Errorf("fleet: restore snapshot: %w", err)
	}
	c.Log.Info("fleet: restored snapshot", "sequence", seq, "bytes", oi.Size, "path", path)
	return SnapshotInfo{Sequence: seq, Size: oi.Size, Taken: oi.ModTime}, nil
}

// TakeSnapshot puts a hot backup of the local store into the snapshot store. The sequence it
// is labelled with is read before the backup's transaction begins, so the backup covers at
// least that much (the file itself records the exact sequence).
func (n *Node) TakeSnapshot(ctx context.Context) (SnapshotInfo, error) {
	obs, err := n.conn.snapshotBucket(ctx)
	if err != nil {
		return SnapshotInfo{}, err
	}
	seq := n.local.AppliedSequence()
	pr, pw := io.Pipe()
	go func() {
		_, err := n.local.Backup(ctx, pw)
		pw.CloseWithError(err)
	}()
	oi, err := obs.Put(ctx, jetstream.ObjectMeta{
		Name: snapshotObject, Description: "tollgate store at log sequence " + strconv.FormatUint(seq, 10),
		Metadata: map[string]string{metaSequence: strconv.FormatUint(seq, 10)},
		Opts:     &jetstream.ObjectMetaOptions{ChunkSize: snapshotChunk},
	}, pr)
	pr.CloseWithError(io.ErrClosedPipe) // stop the backup if Put gave up early
	if err != nil {
		return SnapshotInfo{}, fmt.Errorf("fleet: put snapshot: %w", err)
	}
	n.log.Info("fleet: snapshot taken", "sequence", seq, "bytes", oi.Size)
	return SnapshotInfo{Sequence: seq, Size: oi.Size, Taken: oi.ModTime}, nil
}

// RunSnapshots takes a snapshot every SnapshotEvery (with jitter, so the sidecars of a fleet
// do not all take one at once) when this sidecar is ready and the latest snapshot is older
// than the interval and behind the applied sequence. Errors are logged; the loop goes on.
func (n *Node) RunSnapshots(ctx context.Context) error {
	every := n.conn.Config.SnapshotEvery
	for {
		d := every/2 + rand.N(every/2+1)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(d):
		}
		if ok, _ := n.Ready(); !ok {
			continue
		}
		info, have, err := n.conn.LatestSnapshot(ctx)
		if err != nil {
			n.log.Warn("fleet: snapshot info", "err", err)
			continue
		}
		applied := n.local.AppliedSequence()
		if have && (info.Sequence >= applied || n.opts.Now().Sub(info.Taken) < every*9/10) {
			continue
		}
		if _, err := n.TakeSnapshot(ctx); err != nil && ctx.Err() == nil {
			n.log.Error("fleet: snapshot failed", "err", err)
		}
	}
}
