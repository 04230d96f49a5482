// Package cache is tollgate's durable vendor store: one bbolt file holding every vendor's
// subscription, usage counters and idempotency keys, with an in-memory read model in front of
// it so the decision path never opens a transaction.
//
// Writes go through a single committer goroutine that groups concurrent writes into one bbolt
// transaction (one fsync for many writers, with no added delay when idle). A write returns only
// after its transaction is durable; only then is the new immutable *tollgate.VendorState swapped
// into memory, so a failed write changes neither disk nor memory.
package cache
