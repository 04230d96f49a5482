package cache

// On-disk layout (schema version 1). Every bucket is created on open, so a later tollgate that
// adds buckets never finds a half-initialised file.
//
//	meta           "magic" -> "tollgate", "schema_version" -> 8-byte big-endian uint64
//	vendors        <vendor id> -> subscription record (encoding.go)
//	usage          <vendor id> -> usage record: revision, periods newest first, reported counts
//	idempotency    <vendor id> 0x00 <period> 0x00 <key> -> 0x01 <stored response>
//	stripe_events, billing: the Stripe sync's (cache/stripe_*.go)
//	snapshots      "YYYY-MM-DD" -> one capacity snapshot as JSON (snapshots.go)
//
// The usage record ends with the features used (appended later; older records lack it).
//
// Vendor ids never contain control characters (tollgate.ValidateVendorID), so 0x00 is a safe
// separator and a vendor's keys of one period form one contiguous prefix.
//
// Names are constants, not []byte variables, so the package holds no mutable state.
const (
	bucketMeta         = "meta"
	bucketVendors      = "vendors"
	bucketUsage        = "usage"
	bucketIdempotency  = "idempotency"
	bucketStripeEvents = "stripe_events"
	bucketBilling      = "billing"
	bucketSnapshots    = "snapshots"

	keyMagic         = "magic"
	keySchemaVersion = "schema_version"
	magic            = "tollgate"
)

// SchemaVersion is the newest on-disk schema this build reads and writes.
const SchemaVersion = 1

// MaxPeriods is how many billing periods of order counts a vendor keeps; older periods are
// dropped with their idempotency keys, so the file does not grow without bound.
const MaxPeriods = 24

func allBuckets() []string {
	return []string{bucketMeta, bucketVendors, bucketUsage, bucketIdempotency,
		bucketStripeEvents, bucketBilling, bucketSnapshots}
}

// idemPrefix is the key prefix of one vendor's idempotency keys in one period.
func idemPrefix(vendorID, period string) []byte {
	b := make([]byte, 0, len(vendorID)+len(period)+2)
	b = append(b, vendorID...)
	b = append(b, 0)
	b = append(b, period...)
	return append(b, 0)
}

func idemKey(vendorID, period, key string) []byte {
	return append(idemPrefix(vendorID, period), key...)
}
