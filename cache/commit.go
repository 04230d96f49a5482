package cache

import (
	"errors"

	bolt "go.etcd.io/bbolt"
)

// maxGroup bounds one group commit, so a burst cannot make a single transaction (and the
// latency of its first writer) unbounded.
const maxGroup = 512

// writeOp is one writer's transaction function waiting for the committer.
type writeOp struct {
	fn   func(*bolt.Tx) error
	done chan error
}

// runCommitter is the single goroutine that writes. It takes whatever writes are queued, runs
// them in one bbolt transaction and fsyncs once: an idle store commits a lone write at once
// (unlike db.Batch, which waits MaxBatchDelay), a busy one amortises the fsync over the group.
func (s *Store) runCommitter() {
	defer close(s.committerDone)
	group := make([]*writeOp, 0, maxGroup)
	for {
		select {
		case <-s.stop:
			return
		case op := <-s.ops:
			group = append(group[:0], op)
		drain:
			for len(group) < maxGroup {
				select {
				case op := <-s.ops:
					group = append(group, op)
				default:
					break drain
				}
			}
			s.commitGroup(group)
			clear(group)
		}
	}
}

// errOpFailed marks the rollback of a group because one of its functions failed.
var errOpFailed = errors.New("write function failed")

// commitGroup commits ops in one transaction. A function that fails rolls the whole group back;
// it is then run alone (its error may have depended on an earlier op of the group) and the rest
// are retried without it, exactly like bbolt's Batch. So functions may run more than once and
// must derive everything from the transaction they are given.
func (s *Store) commitGroup(ops []*writeOp) {
	for len(ops) > 0 {
		failed := -1
		err := s.db.Update(func(tx *bolt.Tx) error {
			for i, op := range ops {
				if err := op.fn(tx); err != nil {
					failed = i
					return errOpFailed
				}
			}
			return nil
		})
		if failed < 0 {
			for _, op := range ops {
				op.done <- err
			}
			return
		}
		solo := ops[failed]
		solo.done <- s.db.Update(solo.fn)
		ops = append(ops[:failed:failed], ops[failed+1:]...)
	}
}
