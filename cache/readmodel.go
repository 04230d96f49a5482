package cache

import (
	"hash/maphash"
	"sync"
	"sync/atomic"

	"github.com/tollgate-pdp/tollgate"
)

// shardCount spreads vendors over independent locks so readers of different vendors never
// share a cache line, and a writer swapping one vendor blocks only 1/256 of the readers. A
// large load uses more shards (see shardsFor).
const shardCount = 256

// perShard is how many vendors a loaded shard holds at most (shardsFor). A Go map stores at
// most 896 entries in one table of 1,024 slots; a larger map has a power-of-two number of such
// tables, so a map sized for a count just above a power of two is half empty: 256 shards of a
// million vendors held 2,048 slots for every 1,000 vendors. Shards of at most 800 vendors each
// fill one table to 78% and leave room for growth.
const perShard = 800

// shardsFor is the number of shards (or aggregates maps) for n entries.
func shardsFor(n, least int) int { return max(least, (n+perShard-1)/perShard) }

// readModel is the in-memory copy of every vendor. Values are immutable snapshots: a writer
// builds a new *VendorState and swaps it in after its transaction is durable.
type readModel struct {
	seed   maphash.Seed
	count  atomic.Int64
	shards []shard
	// onSwap, when set, is called with every snapshot installed, outside the shard lock (the
	// capacity aggregates follow every change this way).
	onSwap func(*tollgate.VendorState)
}

type shard struct {
	mu sync.RWMutex
	m  map[string]*tollgate.VendorState
	_  [40]byte // pad to a cache line so neighbouring shards' locks do not false-share
}

func newReadModel() *readModel {
	r := &readModel{seed: maphash.MakeSeed(), shards: make([]shard, shardCount)}
	for i := range r.shards {
		r.shards[i].m = make(map[string]*tollgate.VendorState)
	}
	return r
}

func (r *readModel) hash(id string) uint64 { return maphash.String(r.seed, id) }

func (r *readModel) shard(id string) *shard {
	return &r.shards[r.hash(id)%uint64(len(r.shards))]
}

// bulkLoad fills an empty read model that nobody reads yet (Open's load, before any write):
// hashes[i] is r.hash of states[i]'s id. The shards are laid out for the count (shardsFor) and
// each map is made at its final size, so none rehashes. A vendor listed twice keeps its highest
// revision, as swap would. The swap hook is not called.
func (r *readModel) bulkLoad(states []*tollgate.VendorState, hashes []uint64) {
	n := shardsFor(len(states), shardCount)
	r.shards = make([]shard, n)
	counts := make([]int32, n)
	for _, h := range hashes {
		counts[h%uint64(n)]++
	}
	for i := range r.shards {
		r.shards[i].m = make(map[string]*tollgate.VendorState, counts[i])
	}
	var added int64
	for i, v := range states {
		sh := &r.shards[hashes[i]%uint64(n)]
		id := v.Subscription.VendorID
		sh.mu.Lock()
		cur, ok := sh.m[id]
		if !ok || cur.Revision < v.Revision {
			sh.m[id] = v
		}
		sh.mu.Unlock()
		if !ok {
			added++
		}
	}
	r.count.Add(added)
}

func (r *readModel) get(id string) (*tollgate.VendorState, bool) {
	sh := r.shard(id)
	sh.mu.RLock()
	v, ok := sh.m[id]
	sh.mu.RUnlock()
	return v, ok
}

// swap installs v unless memory already holds the same or a newer revision. Writers of one
// group commit finish in any order; the highest revision is the latest durable state because
// revisions are assigned in transaction order.
func (r *readModel) swap(v *tollgate.VendorState) {
	id := v.Subscription.VendorID
	sh := r.shard(id)
	sh.mu.Lock()
	cur, ok := sh.m[id]
	installed := !ok || cur.Revision < v.Revision
	if installed {
		sh.m[id] = v
	}
	sh.mu.Unlock()
	if !ok {
		r.count.Add(1)
	}
	if installed && r.onSwap != nil {
		r.onSwap(v)
	}
}

// forEach calls fn with every snapshot. Each shard's pointers are copied out first, so fn runs
// without a lock held and may itself write to the store.
func (r *readModel) forEach(fn func(*tollgate.VendorState) bool) {
	var buf []*tollgate.VendorState
	for i := range r.shards {
		sh := &r.shards[i]
		sh.mu.RLock()
		buf = buf[:0]
		for _, v := range sh.m {
			buf = append(buf, v)
		}
		sh.mu.RUnlock()
		for _, v := range buf {
			if !fn(v) {
				return
			}
		}
	}
}
