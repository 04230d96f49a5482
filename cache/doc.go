// Package cache is tollgate's durable vendor store: one bbolt file holding every vendor's
// subscription, usage counters and idempotency keys, with an in-memory read model in front of
// it so the decision path never opens a transaction.
//
// Writes go through a single committer goroutine that groups concurrent writes into one bbolt
// transaction (one fsync for many writers, with no added delay when idle). A write returns only
// after its transaction is durable; only then is the new immutable *tollgate.VendorState swapped
// into memory, so a failed write changes neither disk nor memory.
//
// Cold start (Open) reads every vendor once, in one read transaction, with the collector paused
// (the load allocates almost only what stays live), and builds the read model's shards at their
// final sizes. Open returns — the store is ready for decisions — once the read model is loaded;
// the capacity aggregates (which ask the policy for the limits of each distinct set of limit
// facts) are built in the background, and Aggregates waits for that build.
//
// Resident memory per vendor is what limits scale, so snapshots are built compactly: a decoded
// record keeps one exactly sized buffer for its own strings, strings of few distinct values and
// equal timestamps are shared between the snapshots of one load, optional values of a record
// share one array, and the aggregates keep a 32-byte contribution per vendor by value. Snapshots
// are immutable: nothing may write through their pointers, which may be shared.
// bench/cmd/loadmeasure measures load time and memory per vendor at a given size.
package cache
