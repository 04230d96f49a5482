package cache

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/tollgate-pdp/tollgate"
	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// Stripe storage (owned by the sync package, see sync/README.md):
//
//	stripe_events       <event id> -> JSON stripeEventRecord (tollgate.WebhookEvent + sealed payload)
//	stripe_event_index  "t" 0x00 <8-byte BE processed_at ns> <event id>              -> empty
//	                    "v" 0x00 <vendor id> 0x00 <8-byte BE processed_at ns> <event id> -> empty
//	billing             <vendor id> 0x00 <invoice id> -> JSON tollgate.Invoice
//	stripe_state        one nested bucket per kind (ordering marks, customer links, parked
//	                    objects, card times, payment state, catalog ids, poll cursor); the sync
//	                    package owns the value encodings.
const (
	bucketStripeEventIndex = "stripe_event_index"
	bucketStripeState      = "stripe_state"
)

var _ tollgate.StripeStore = (*Store)(nil)

type stripeEventRecord struct {
	tollgate.WebhookEvent
	Payload []byte `json:"payload,omitempty"`
}

// stripeTx implements tollgate.StripeTx on a bbolt transaction (read-only or read-write).
type stripeTx struct{ tx *bolt.Tx }

func (t stripeTx) bucket(name string) (*bolt.Bucket, error) {
	if b := t.tx.Bucket([]byte(name)); b != nil || !t.tx.Writable() {
		return b, nil
	}
	b, err := t.tx.CreateBucketIfNotExists([]byte(name))
	if err != nil {
		return nil, fmt.Errorf("create bucket %s: %w", name, err)
	}
	return b, nil
}

func (t stripeTx) kind(kind string) (*bolt.Bucket, error) {
	parent, err := t.bucket(bucketStripeState)
	if err != nil || parent == nil {
		return nil, err
	}
	if b := parent.Bucket([]byte(kind)); b != nil || !t.tx.Writable() {
		return b, nil
	}
	b, err := parent.CreateBucketIfNotExists([]byte(kind))
	if err != nil {
		return nil, fmt.Errorf("create stripe state %s: %w", kind, err)
	}
	return b, nil
}

func (t stripeTx) Event(id string) (*tollgate.WebhookEvent, bool, error) {
	b, err := t.bucket(bucketStripeEvents)
	if err != nil || b == nil {
		return nil, false, err
	}
	v := b.Get([]byte(id))
	if v == nil {
		return nil, false, nil
	}
	var rec stripeEventRecord
	if err := json.Unmarshal(v, &rec); err != nil {
		return nil, false, fmt.Errorf("decode stripe event %q: %w", id, err)
	}
	rec.WebhookEvent.Payload = rec.Payload
	return &rec.WebhookEvent, true, nil
}

func timeKey(prefix []byte, at time.Time, id string) []byte {
	k := append(slices.Clone(prefix), make([]byte, 8)...)
	binary.BigEndian.PutUint64(k[len(k)-8:], uint64(at.UnixNano()))
	return append(k, id...)
}

func vendorIndexPrefix(vendor string) []byte {
	return append(append([]byte("v\x00"), vendor...), 0)
}

func (t stripeTx) PutEvent(e *tollgate.WebhookEvent) error {
	b, err := t.bucket(bucketStripeEvents)
	if err != nil {
		return err
	}
	idx, err := t.bucket(bucketStripeEventIndex)
	if err != nil {
		return err
	}
	if old, ok, err := t.Event(e.ID); err != nil {
		return err
	} else if ok {
		if err := deleteEventIndex(idx, old); err != nil {
			return err
		}
	}
	rec := stripeEventRecord{WebhookEvent: *e, Payload: e.Payload}
	rec.WebhookEvent.Payload = nil
	v, err := json.Marshal(&rec)
	if err != nil {
		return fmt.Errorf("encode stripe event %q: %w", e.ID, err)
	}
	if err := b.Put([]byte(e.ID), v); err != nil {
		return fmt.Errorf("put stripe event %q: %w", e.ID, err)
	}
	if err := idx.Put(timeKey([]byte("t\x00"), e.ProcessedAt, e.ID), nil); err != nil {
		return fmt.Errorf("index stripe event %q: %w", e.ID, err)
	}
	if e.VendorID != "" {
		if err := idx.Put(timeKey(vendorIndexPrefix(e.VendorID), e.ProcessedAt, e.ID), nil); err != nil {
			return fmt.Errorf("index stripe event %q: %w", e.ID, err)
		}
	}
	return nil
}

func deleteEventIndex(idx *bolt.Bucket, e *tollgate.WebhookEvent) error {
	if err := idx.Delete(timeKey([]byte("t\x00"), e.ProcessedAt, e.ID)); err != nil {
		return err
	}
	if e.VendorID != "" {
		return idx.Delete(timeKey(vendorIndexPrefix(e.VendorID), e.ProcessedAt, e.ID))
	}
	return nil
}

func (t stripeTx) Get(kind, key string) ([]byte, error) {
	b, err := t.kind(kind)
	if err != nil || b == nil {
		return nil, err
	}
	return slices.Clone(b.Get([]byte(key))), nil
}

func (t stripeTx) Put(kind, key string, value []byte) error {
	b, err := t.kind(kind)
	if err != nil {
		return err
	}
	if value == nil {
		value = []byte{}
	}
	if err := b.Put([]byte(key), value); err != nil {
		return fmt.Errorf("put stripe %s %q: %w", kind, key, err)
	}
	return nil
}

func (t stripeTx) Delete(kind, key string) error {
	b, err := t.kind(kind)
	if err != nil || b == nil {
		return err
	}
	return b.Delete([]byte(key))
}

func billingKey(vendorID, invoiceID string) []byte {
	return append(append([]byte(vendorID), 0), invoiceID...)
}

func (t stripeTx) PutInvoice(inv *tollgate.Invoice) error {
	if inv.VendorID == "" || inv.ID == "" {
		return tollgate.Errorf(tollgate.EInvalid, "invoice needs a vendor and an id")
	}
	b, err := t.bucket(bucketBilling)
	if err != nil {
		return err
	}
	v, err := json.Marshal(inv)
	if err != nil {
		return fmt.Errorf("encode invoice %q: %w", inv.ID, err)
	}
	if err := b.Put(billingKey(inv.VendorID, inv.ID), v); err != nil {
		return fmt.Errorf("put invoice %q: %w", inv.ID, err)
	}
	return nil
}

func (t stripeTx) Invoice(vendorID, invoiceID string) (*tollgate.Invoice, bool, error) {
	b, err := t.bucket(bucketBilling)
	if err != nil || b == nil {
		return nil, false, err
	}
	v := b.Get(billingKey(vendorID, invoiceID))
	if v == nil {
		return nil, false, nil
	}
	var inv tollgate.Invoice
	if err := json.Unmarshal(v, &inv); err != nil {
		return nil, false, fmt.Errorf("decode invoice %q: %w", invoiceID, err)
	}
	return &inv, true, nil
}

// ApplyStripe implements tollgate.StripeStore: fn's writes to the Stripe buckets and the
// vendor's new subscription commit in one durable transaction (group-committed with other
// writers); memory is updated after the commit.
func (s *Store) ApplyStripe(ctx context.Context, vendorID string, fn func(tx tollgate.StripeTx, cur *tollgate.VendorState) (*tollgate.Subscription, error)) (*tollgate.VendorState, error) {
	if vendorID == "" {
		err := s.write(ctx, func(tx *bolt.Tx) error {
			sub, err := fn(stripeTx{tx}, nil)
			if err != nil {
				return err
			}
			if sub != nil {
				return tollgate.Errorf(tollgate.EInternal, "stripe: a subscription was returned without a vendor")
			}
			return nil
		})
		return nil, err
	}
	return s.ApplyVendor(ctx, vendorID, func(tx *bolt.Tx, cur *tollgate.VendorState) (*tollgate.Subscription, error) {
		return fn(stripeTx{tx}, cur)
	})
}

// ViewStripe runs fn in a read-only transaction.
func (s *Store) ViewStripe(ctx context.Context, fn func(tx tollgate.StripeTx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.closeMu.RLock()
	defer s.closeMu.RUnlock()
	if s.closed {
		return &tollgate.Error{Code: tollgate.EUnavailable, Message: "the store is closed", Err: berrors.ErrDatabaseNotOpen}
	}
	return s.db.View(func(tx *bolt.Tx) error { return fn(stripeTx{tx}) })
}

// Billing lists the vendor's invoices, newest first.
func (s *Store) Billing(ctx context.Context, vendorID string) ([]tollgate.Invoice, error) {
	out := []tollgate.Invoice{}
	err := s.ViewStripe(ctx, func(t tollgate.StripeTx) error {
		out = out[:0]
		b := t.(stripeTx).tx.Bucket([]byte(bucketBilling))
		if b == nil {
			return nil
		}
		prefix := append([]byte(vendorID), 0)
		c := b.Cursor()
		for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
			var inv tollgate.Invoice
			if err := json.Unmarshal(v, &inv); err != nil {
				return fmt.Errorf("decode invoice %q: %w", k, err)
			}
			out = append(out, inv)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("billing of vendor %s: %w", vendorID, err)
	}
	slices.SortStableFunc(out, func(a, b tollgate.Invoice) int {
		if c := b.Created.Compare(a.Created); c != 0 {
			return c
		}
		return bytes.Compare([]byte(b.ID), []byte(a.ID))
	})
	return out, nil
}

// Events lists recorded Stripe events, newest (by processing time) first.
func (s *Store) Events(ctx context.Context, f tollgate.EventFilter) ([]tollgate.WebhookEvent, error) {
	limit := f.Limit
	if limit <= 0 {
		limit = 100
	}
	out := []tollgate.WebhookEvent{}
	err := s.ViewStripe(ctx, func(t tollgate.StripeTx) error {
		out = out[:0]
		st := t.(stripeTx)
		idx := st.tx.Bucket([]byte(bucketStripeEventIndex))
		if idx == nil {
			return nil
		}
		prefix := []byte("t\x00")
		if f.VendorID != "" {
			prefix = vendorIndexPrefix(f.VendorID)
		}
		c := idx.Cursor()
		// walk the prefix backwards: seek past its end, then step back
		end := append(slices.Clone(prefix), 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff)
		k, _ := c.Seek(end)
		if k == nil {
			k, _ = c.Last()
		} else {
			k, _ = c.Prev()
		}
		for ; k != nil && bytes.HasPrefix(k, prefix) && len(out) < limit; k, _ = c.Prev() {
			id := string(k[len(prefix)+8:])
			e, ok, err := st.Event(id)
			if err != nil {
				return err
			}
			if !ok || (f.Type != "" && e.Type != f.Type) || (f.Status != "" && e.Status != f.Status) {
				continue
			}
			e.Payload = nil
			out = append(out, *e)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list stripe events: %w", err)
	}
	return out, nil
}

// PruneEvents deletes events processed before the cutoff (their ids, index entries and sealed
// payloads). Ordering marks are kept, so an old event delivered again still cannot undo state.
func (s *Store) PruneEvents(ctx context.Context, before time.Time) (int, error) {
	var n int
	err := s.write(ctx, func(tx *bolt.Tx) error {
		n = 0
		idx := tx.Bucket([]byte(bucketStripeEventIndex))
		events := tx.Bucket([]byte(bucketStripeEvents))
		if idx == nil || events == nil {
			return nil
		}
		cutoff := timeKey([]byte("t\x00"), before, "")
		var doomed [][]byte
		c := idx.Cursor()
		for k, _ := c.Seek([]byte("t\x00")); k != nil && bytes.Compare(k, cutoff) < 0; k, _ = c.Next() {
			doomed = append(doomed, slices.Clone(k[2+8:]))
		}
		st := stripeTx{tx}
		for _, id := range doomed {
			e, ok, err := st.Event(string(id))
			if err != nil {
				return err
			}
			if ok {
				if err := deleteEventIndex(idx, e); err != nil {
					return err
				}
			}
			if err := events.Delete(id); err != nil {
				return err
			}
			n++
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("prune stripe events before %s: %w", before.Format(time.RFC3339), err)
	}
	return n, nil
}
