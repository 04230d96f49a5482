package cache

import (
	"syscall"

	bolt "go.etcd.io/bbolt"
)

// Both take the size of the mapped data (bolt.Tx.Size in the load's transaction), never a size
// from elsewhere: MADV_DONTNEED on memory beyond bbolt's mapping would discard another mapping.

// adviseLoad tells the kernel the load is about to read the whole file (bbolt maps it with
// MADV_RANDOM, which turns off readahead: on a file not in the page cache, reading a million
// vendors would be one small read per page).
func adviseLoad(db *bolt.DB, size int64) { madvise(db, size, syscall.MADV_WILLNEED) }

// adviseLoaded drops the file's pages from the process's mappings after the load: the load
// touched every page once, and they would otherwise stay resident in the process (the file's
// size again beside the read model). They stay in the page cache; the pages that reads and
// writes need later are mapped again on access. Nothing is lost: bbolt maps the file
// read-only and shared, so its pages are the file's.
func adviseLoaded(db *bolt.DB, size int64) { madvise(db, size, syscall.MADV_DONTNEED) }

func madvise(db *bolt.DB, size int64, advice uintptr) {
	if size <= 0 {
		return
	}
	// Advice only: an error changes nothing for correctness.
	_, _, _ = syscall.Syscall(syscall.SYS_MADVISE, db.Info().Data, uintptr(size), advice)
}
