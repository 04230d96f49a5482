package sync

import (
	"encoding/binary"
	"encoding/json"
	"fmt"

	"github.com/tollgate-pdp/tollgate"
)

// Storage framing: the kinds of the small key-value tables the sync keeps in the store (tollgate.StripeTx).
const (
	kindMarks           = "marks"            // "<object kind>:<id>" -> 8-byte created of the last applied event
	kindLinkMeta        = "link_meta"        // customer id -> vendor id (customer metadata.vendor_id)
	kindLinkCheckout    = "link_checkout"    // customer id -> vendor id (checkout client_reference_id)
	kindDeleted         = "customer_deleted" // customer id -> 8-byte created of customer.deleted
	kindPending         = "pending"          // customer id -> JSON map[sub id]snapshot, subscriptions without a vendor yet
	kindSubs            = "subscriptions"    // sub id -> binary snapshot frame (putSnap): created, sub_created, vendor, customer, raw object
	kindVendorSubs      = "vendor_subs"      // vendor id -> JSON []sub id
	kindCustomerSubs    = "customer_subs"    // customer id -> JSON []sub id (applied, with a vendor)
	kindPendingInvoices = "pending_invoices" // customer id -> JSON []parkedInvoice, invoices without a vendor yet
	kindCards           = "cards"            // sub id 0x00 payment method id -> 8-byte earliest created seen
	kindPayments        = "payments"         // sub id -> JSON paymentState
	kindCatalog         = "catalog"          // tier code 0x00 product|monthly|annual, "addon:<code>" 0x00 price -> Stripe id
	kindCursor          = "cursor"           // "events" -> JSON pollCursor
)

// snapshot is the newest applied state of one Stripe subscription. It is stored as a binary
// frame (putSnap) under kindSubs, and as JSON only inside a parked kindPending map.
type snapshot struct {
	Vendor     string          `json:"vendor"`
	Customer   string          `json:"customer"`
	Created    int64           `json:"created"`     // created of the event (or API read) it came from
	SubCreated int64           `json:"sub_created"` // the subscription's own creation time
	Raw        json.RawMessage `json:"raw"`
}

func get(tx tollgate.StripeTx, kind, key string) (string, error) {
	b, err := tx.Get(kind, key)
	return string(b), err
}

func put(tx tollgate.StripeTx, kind, key, v string) error { return tx.Put(kind, key, []byte(v)) }

func getInt(tx tollgate.StripeTx, kind, key string) (int64, bool, error) {
	b, err := tx.Get(kind, key)
	if err != nil || b == nil {
		return 0, false, err
	}
	if len(b) != 8 {
		return 0, false, fmt.Errorf("stripe %s %q: corrupt value", kind, key)
	}
	return int64(binary.BigEndian.Uint64(b)), true, nil
}

func putInt(tx tollgate.StripeTx, kind, key string, v int64) error {
	return tx.Put(kind, key, binary.BigEndian.AppendUint64(nil, uint64(v)))
}

func getJSON(tx tollgate.StripeTx, kind, key string, v any) (bool, error) {
	b, err := tx.Get(kind, key)
	if err != nil || b == nil {
		return false, err
	}
	if err := json.Unmarshal(b, v); err != nil {
		return false, fmt.Errorf("stripe %s %q: %w", kind, key, err)
	}
	return true, nil
}

func putJSON(tx tollgate.StripeTx, kind, key string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode stripe %s %q: %w", kind, key, err)
	}
	return tx.Put(kind, key, b)
}

// Snapshots are stored in a small binary frame around the raw object, so that storing one
// does not re-encode (and re-validate) kilobytes of JSON inside the write transaction:
// version 1, created and sub_created (8 bytes BE each), vendor and customer (uvarint length +
// bytes), then the raw object.
func putSnap(tx tollgate.StripeTx, subID string, snap snapshot) error {
	b := make([]byte, 0, 1+16+len(snap.Vendor)+len(snap.Customer)+4+len(snap.Raw))
	b = append(b, 1)
	b = binary.BigEndian.AppendUint64(b, uint64(snap.Created))
	b = binary.BigEndian.AppendUint64(b, uint64(snap.SubCreated))
	b = binary.AppendUvarint(b, uint64(len(snap.Vendor)))
	b = append(b, snap.Vendor...)
	b = binary.AppendUvarint(b, uint64(len(snap.Customer)))
	b = append(b, snap.Customer...)
	b = append(b, snap.Raw...)
	return tx.Put(kindSubs, subID, b)
}

func getSnap(tx tollgate.StripeTx, subID string, snap *snapshot) (bool, error) {
	b, err := tx.Get(kindSubs, subID)
	if err != nil || b == nil {
		return false, err
	}
	corrupt := fmt.Errorf("stripe subscription snapshot %q: corrupt record", subID)
	if len(b) < 17 || b[0] != 1 {
		return false, corrupt
	}
	snap.Created = int64(binary.BigEndian.Uint64(b[1:9]))
	snap.SubCreated = int64(binary.BigEndian.Uint64(b[9:17]))
	b = b[17:]
	str := func() (string, bool) {
		n, k := binary.Uvarint(b)
		if k <= 0 || uint64(len(b)-k) < n {
			return "", false
		}
		v := string(b[k : k+int(n)])
		b = b[k+int(n):]
		return v, true
	}
	var ok1, ok2 bool
	snap.Vendor, ok1 = str()
	snap.Customer, ok2 = str()
	if !ok1 || !ok2 {
		return false, corrupt
	}
	snap.Raw = json.RawMessage(b)
	return true, nil
}
