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
//
// The entries sit in a fixed table of slot pairs chosen by the vendor id's hash, read and
// written with atomic pointers: a lookup takes no lock and reads one line of the table and one
// entry, which matters because the vendor asked about is usually out of the CPU's caches.
type inputTerms struct {
	seed  maphash.Seed
	slots []atomic.Pointer[vendorInput] // len is even: way 0 and way 1 of each pair
	// evictions picks the way a miss replaces when both hold other vendors.
	evictions atomic.Uint32
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

// vendorInput is one vendor snapshot's input.vendor, with what a lookup compares in the same
// allocation: the snapshot pointer and the period's bytes.
type vendorInput struct {
	v *tollgate.VendorState
	// hash is the vendor id's hash: a miss looks for the vendor's own entry among the pair's
	// by it, so it does not read the other vendors' snapshots, which are rarely in the CPU's
	// caches (at a million vendors, that was a fifth of building an entry).
	hash      uint64
	id        *ast.Term // input.request.vendor_id of this vendor's checks
	periodLen int
	periodBuf [24]byte // the period when it fits (a period key is 20 bytes)
	periodStr string   // the period when it does not
	doc       vendorDoc
}

func (e *vendorInput) hasPeriod(p string) bool {
	if len(p) > len(e.periodBuf) {
		return e.periodStr == p
	}
	return e.periodLen == len(p) && string(e.periodBuf[:len(p)]) == p
}

// newInputTerms keeps at most size vendor objects (rounded up to an even number).
func newInputTerms(size int) *inputTerms {
	return &inputTerms{seed: maphash.MakeSeed(), slots: make([]atomic.Pointer[vendorInput], max(size+size%2, 2))}
}

// get returns the vendor object for the snapshot and the vendor's id as a term, building
// them on a miss. vid is the id the request asked about (the table's key).
func (c *inputTerms) get(vid string, v *tollgate.VendorState, period string) (vendor, id *ast.Term) {
	h := maphash.String(c.seed, vid)
	i := h % uint64(len(c.slots)/2) * 2
	pair := c.slots[i : i+2 : i+2]
	for w := range pair {
		if e := pair[w].Load(); e != nil && e.v == v && e.hasPeriod(period) {
			return &e.doc.vendorTerm, e.id
		}
	}
	// A miss: replace this vendor's entry if a way holds one, else an empty way, else either.
	own := v.Subscription.VendorID
	victim := -1
	for w := range pair {
		e := pair[w].Load()
		if e != nil && e.hash == h && e.v.Subscription.VendorID == own {
			victim, id = w, e.id
			break
		}
		if e == nil && victim < 0 {
			victim = w
		}
	}
	if victim < 0 {
		victim = int(c.evictions.Add(1) & 1)
	}
	if id == nil {
		id = ast.StringTerm(own)
	}
	e := &vendorInput{v: v, hash: h, id: id, periodLen: len(period)}
	if len(period) > len(e.periodBuf) {
		e.periodStr = period
	} else {
		copy(e.periodBuf[:], period)
	}
	fillVendorDoc(&e.doc, v, period, c)
	pair[victim].Store(e)
	return &e.doc.vendorTerm, id
}
