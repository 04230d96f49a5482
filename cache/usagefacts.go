package cache

import (
	"context"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/tollgate-pdp/tollgate"
	bolt "go.etcd.io/bbolt"
)

// Usage facts learnt from checks (tollgate.CheckNoter): a check's `count` fields are the
// application's current counts, and an allowed feature.use says the vendor uses the feature.
// Writing them durably on every check would put an fsync on the decision path, so NoteCheck
// only compares with the vendor's snapshot (no lock, no allocation when nothing is new) and
// parks what is new in a per-vendor slot that later checks overwrite; a flusher writes all
// parked vendors in one transaction every FlushInterval. So these facts are best effort and
// eventually durable (lost on a crash within the interval), while PUT /v1/vendors/{id}/usage
// (ReportUsage) is durable before it answers. A fact equal to the stored one writes nothing
// and bumps no revision, so it does not invalidate cached decisions.

type noted struct {
	interval time.Duration
	mu       sync.Mutex
	pending  map[string]*notedFacts
	stop     chan struct{}
	done     chan struct{}
	once     sync.Once
}

// notedFacts are one vendor's parked facts; counts indexed like countFields.
type notedFacts struct {
	at       time.Time
	counts   [4]int64
	has      [4]bool
	features []string
}

const (
	nProducts = iota
	nTeam
	nCMS
	nCMSCustom
)

func usageCount(u *tollgate.Usage, i int) *int64 {
	switch i {
	case nProducts:
		return u.Products
	case nTeam:
		return u.TeamMembers
	case nCMS:
		return u.CMSPages
	}
	return u.CMSCustomPages
}

func setUsageCount(u *tollgate.Usage, i int, v int64) {
	p := &v
	switch i {
	case nProducts:
		u.Products = p
	case nTeam:
		u.TeamMembers = p
	case nCMS:
		u.CMSPages = p
	default:
		u.CMSCustomPages = p
	}
}

func (s *Store) startNoted(interval time.Duration) {
	if interval <= 0 {
		interval = time.Second
	}
	s.noted = &noted{interval: interval, pending: map[string]*notedFacts{},
		stop: make(chan struct{}), done: make(chan struct{})}
	go s.runNoted()
}

// stopNoted writes what is parked and stops the flusher; Close calls it first.
func (s *Store) stopNoted() {
	if s.noted == nil {
		return
	}
	s.noted.once.Do(func() {
		close(s.noted.stop)
		<-s.noted.done
	})
}

func (s *Store) runNoted() {
	n := s.noted
	defer close(n.done)
	t := time.NewTicker(n.interval)
	defer t.Stop()
	for {
		select {
		case <-n.stop:
			s.FlushNoted(context.Background())
			return
		case <-t.C:
			s.FlushNoted(context.Background())
		}
	}
}

// NoteCheck implements tollgate.CheckNoter. It never blocks on the store.
func (s *Store) NoteCheck(v *tollgate.VendorState, req *tollgate.CheckRequest, allowed bool) {
	var counts [4]int64
	var has [4]bool
	note := func(i int, p *int64) {
		if p == nil {
			return
		}
		if cur := usageCount(&v.Usage, i); cur != nil && *cur == *p {
			return
		}
		counts[i], has[i] = *p, true
	}
	switch req.Action {
	case tollgate.ActionProductAdd:
		note(nProducts, req.Count)
	case tollgate.ActionTeamMemberAdd:
		note(nTeam, req.Count)
	case tollgate.ActionCMSPageCreate:
		note(nCMS, req.Count)
		note(nCMSCustom, req.CustomCount)
	}
	feature := ""
	if req.Action == tollgate.ActionFeatureUse && allowed && req.Feature != "" {
		if _, found := slices.BinarySearch(v.Usage.FeaturesUsed, req.Feature); !found {
			feature = req.Feature
		}
	}
	if has == [4]bool{} && feature == "" {
		return
	}
	n := s.noted
	if n == nil {
		return
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	id := string(req.VendorID)
	p := n.pending[id]
	if p == nil {
		p = &notedFacts{}
		// Copies: the request's strings may point into a pooled request buffer.
		n.pending[strings.Clone(id)] = p
	}
	p.at = s.now().UTC()
	for i := range has {
		if has[i] {
			p.counts[i], p.has[i] = counts[i], true
		}
	}
	if feature != "" && !slices.Contains(p.features, feature) {
		p.features = append(p.features, strings.Clone(feature))
	}
}

// maxNotedPerTx bounds one flush transaction.
const maxNotedPerTx = 1000

// FlushNoted writes the parked facts now (the flusher calls it every FlushInterval). A count
// older than the vendor's last report (ReportedAt) is dropped: PUT wins over a check that was
// answered before it.
func (s *Store) FlushNoted(ctx context.Context) {
	n := s.noted
	if n == nil {
		return
	}
	n.mu.Lock()
	if len(n.pending) == 0 {
		n.mu.Unlock()
		return
	}
	batch := n.pending
	n.pending = map[string]*notedFacts{}
	n.mu.Unlock()

	ids := make([]string, 0, len(batch))
	for id := range batch {
		ids = append(ids, id)
	}
	for chunk := range slices.Chunk(ids, maxNotedPerTx) {
		var out []*tollgate.VendorState
		err := s.write(ctx, func(tx *bolt.Tx) error {
			out = out[:0]
			for _, id := range chunk {
				st, err := s.applyNoted(tx, id, batch[id])
				if err != nil {
					return err
				}
				if st != nil {
					out = append(out, st)
				}
			}
			return nil
		})
		if err != nil {
			s.log.Warn("usage facts from checks not written", "vendors", len(chunk), "err", err)
			continue
		}
		for _, st := range out {
			s.mem.swap(st)
		}
	}
}

// applyNoted returns the vendor's new state, or nil when the facts change nothing.
func (s *Store) applyNoted(tx *bolt.Tx, id string, f *notedFacts) (*tollgate.VendorState, error) {
	cur, err := s.txState(tx, id)
	if err != nil || cur == nil {
		return nil, err
	}
	u := cur.Usage
	changed := false
	if cur.Usage.ReportedAt == nil || !cur.Usage.ReportedAt.After(f.at) {
		for i := range f.has {
			if !f.has[i] {
				continue
			}
			if c := usageCount(&u, i); c == nil || *c != f.counts[i] {
				setUsageCount(&u, i, f.counts[i])
				changed = true
			}
		}
		if changed {
			at := f.at
			u.ReportedAt = &at
		}
	}
	for _, feat := range f.features {
		if i, found := slices.BinarySearch(u.FeaturesUsed, feat); !found {
			u.FeaturesUsed = slices.Insert(slices.Clone(u.FeaturesUsed), i, feat)
			changed = true
		}
	}
	if !changed {
		return nil, nil
	}
	st := &tollgate.VendorState{Subscription: cur.Subscription, Usage: u, Revision: cur.Revision + 1}
	if err := putUsage(tx, st); err != nil {
		return nil, err
	}
	return st, nil
}
