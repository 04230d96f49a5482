package policy

import (
	"hash/maphash"
	"sync"

	"github.com/open-policy-agent/opa/v1/ast"

	"github.com/tollgate-pdp/tollgate"
)

const vendorInputShards = 16

// vendorInputs keeps the input.vendor object built for a vendor snapshot, so consecutive checks
// of one vendor do not rebuild it: building it is a third of an uncached decision's
// allocations. Keys are snapshot pointers: a VendorState handed out by the store is immutable
// and every change is a new pointer, so an entry can never describe other facts than its
// key's, and holding the pointer keeps its address from being reused. The objects are shared
// by concurrent evaluations, which only read their input.
type vendorInputs struct {
	perShard int
	seed     maphash.Seed
	shards   [vendorInputShards]vendorInputShard
}

type vendorInputKey struct {
	v      *tollgate.VendorState
	period string
}

type vendorInputShard struct {
	mu sync.RWMutex
	m  map[vendorInputKey]*ast.Term
}

func newVendorInputs(size int) *vendorInputs {
	c := &vendorInputs{perShard: max(size/vendorInputShards, 1), seed: maphash.MakeSeed()}
	for i := range c.shards {
		c.shards[i].m = make(map[vendorInputKey]*ast.Term)
	}
	return c
}

// get returns the vendor object for the snapshot, building it on a miss.
func (c *vendorInputs) get(v *tollgate.VendorState, period string) *ast.Term {
	k := vendorInputKey{v, period}
	s := &c.shards[maphash.Comparable(c.seed, v)%vendorInputShards]
	s.mu.RLock()
	t, ok := s.m[k]
	s.mu.RUnlock()
	if ok {
		return t
	}
	t = ast.NewTerm(vendorObject(v, period))
	s.mu.Lock()
	if len(s.m) >= c.perShard {
		for old := range s.m {
			delete(s.m, old)
			break
		}
	}
	s.m[k] = t
	s.mu.Unlock()
	return t
}
