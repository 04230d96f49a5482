package policy

import (
	"hash/maphash"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"

	"github.com/tollgate-pdp/tollgate"
)

const vendorInputShards = 16

// inputTerms holds what the input documents of successive decisions share, so that building
// one costs as little as possible: the vendor's objects, the vendor id's term, the request's
// words, the current second's `now`, and a pool of documents.
//
// The input.vendor object built for a vendor snapshot is kept, so consecutive checks of one
// vendor do not rebuild it: building it is a third of an uncached decision's
// allocations. A VendorState handed out by the store is immutable and every change is a new
// pointer, so an entry is valid only for its exact snapshot pointer (and period); holding the
// pointer keeps its address from being reused. One entry per vendor: a newer snapshot replaces
// the vendor's entry, so superseded snapshots (one per usage increment) are not kept alive
// until eviction, which made memory climb under steady writes (found by the soak test). The
// objects are shared by concurrent evaluations, which only read their input.
type inputTerms struct {
	perShard int
	seed     maphash.Seed
	shards   [vendorInputShards]vendorInputShard
	// now is input.now of the latest second asked for: a number term costs three allocations,
	// and every decision in a second shares it.
	now atomic.Pointer[nowTerm]
	// words holds the terms of request strings seen before (actions, features, platforms: a
	// small vocabulary), so a request's strings cost no allocation. Bounded: past maxWords,
	// new strings get a new term each time.
	words  sync.Map // string -> *ast.Term
	nWords atomic.Int32
	// docs recycles planInput's documents: nothing refers to one after its evaluation's
	// answer has been converted to a Decision (the executor's stack and memo are cleared, and
	// a Decision holds Go values only).
	docs sync.Pool
}

// doc is an empty input document, reused when c has one (c may be nil).
func (c *inputTerms) doc() *inputDoc {
	if c != nil {
		if d, ok := c.docs.Get().(*inputDoc); ok {
			*d = inputDoc{}
			return d
		}
	}
	return &inputDoc{}
}

// release gives back a document of doc once nothing refers to it.
func (c *inputTerms) release(d *inputDoc) {
	if c != nil {
		c.docs.Put(d)
	}
}

const maxWords = 4096

// word is the term of a request string.
func (c *inputTerms) word(s string) *ast.Term {
	if s == "" {
		return emptyStringTerm
	}
	if c == nil {
		return ast.StringTerm(s)
	}
	if t, ok := c.words.Load(s); ok {
		return t.(*ast.Term)
	}
	t := ast.StringTerm(s)
	if c.nWords.Load() < maxWords {
		// The request's strings may share a pooled buffer's memory: the key is a copy.
		if _, loaded := c.words.LoadOrStore(strings.Clone(s), t); !loaded {
			c.nWords.Add(1)
		}
	}
	return t
}

type nowTerm struct {
	unix int64
	t    *ast.Term
}

// nowTerm is input.now for t (c may be nil: a new term).
func (c *inputTerms) nowTerm(t time.Time) *ast.Term {
	u := t.Unix()
	if c == nil {
		return ast.InternedTerm(u)
	}
	if n := c.now.Load(); n != nil && n.unix == u {
		return n.t
	}
	n := &nowTerm{unix: u, t: ast.InternedTerm(u)}
	c.now.Store(n)
	return n.t
}

type vendorInputEntry struct {
	v      *tollgate.VendorState
	period string
	t      *ast.Term
	id     *ast.Term // input.request.vendor_id of this vendor's checks
}

type vendorInputShard struct {
	mu sync.RWMutex
	m  map[string]vendorInputEntry // vendor id -> its latest snapshot's object
}

func newInputTerms(size int) *inputTerms {
	c := &inputTerms{perShard: max(size/vendorInputShards, 1), seed: maphash.MakeSeed()}
	for i := range c.shards {
		c.shards[i].m = make(map[string]vendorInputEntry)
	}
	return c
}

// get returns the vendor object for the snapshot and the vendor's id as a term, building
// them on a miss.
func (c *inputTerms) get(v *tollgate.VendorState, period string) (vendor, id *ast.Term) {
	vid := v.Subscription.VendorID
	s := &c.shards[maphash.String(c.seed, vid)%vendorInputShards]
	s.mu.RLock()
	e, ok := s.m[vid]
	s.mu.RUnlock()
	if ok && e.v == v && e.period == period {
		return e.t, e.id
	}
	if ok {
		id = e.id
	} else {
		id = ast.StringTerm(vid)
	}
	t := vendorFields(v, period, c)
	s.mu.Lock()
	if _, exists := s.m[vid]; !exists && len(s.m) >= c.perShard {
		for old := range s.m {
			delete(s.m, old)
			break
		}
	}
	s.m[vid] = vendorInputEntry{v: v, period: period, t: t, id: id}
	s.mu.Unlock()
	return t, id
}
