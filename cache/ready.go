package cache

// Name names the store in /health/ready.
func (s *Store) Name() string { return "store" }

// Ready reports whether the store is open; it takes no transaction, so probes stay cheap at
// any store size. Consistency is `tollgate check-store`'s job, not a probe's.
func (s *Store) Ready() (bool, string) {
	s.closeMu.RLock()
	defer s.closeMu.RUnlock()
	if s.closed {
		return false, "store " + s.path + " is closed"
	}
	select {
	case <-s.agg.built:
	default:
		// Decisions need only the read model; the capacity figures follow (Aggregates waits).
		return true, "open " + s.path + " (capacity aggregates still building)"
	}
	return true, "open " + s.path
}

// AggregatesBuilt is closed once the first build of the capacity aggregates has ended (built,
// failed or abandoned by Close).
func (s *Store) AggregatesBuilt() <-chan struct{} { return s.agg.built }
