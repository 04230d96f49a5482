package sync

import (
	"context"
	"crypto/cipher"
	"crypto/rand"
	"fmt"

	"github.com/tollgate-pdp/tollgate"
)

// With a payload key, the raw Stripe objects the sync keeps beside the event log (subscription
// snapshots, subscriptions and invoices parked until their vendor is known) are sealed with the
// same AES-256-GCM key as the event payloads: "payloads at rest are encrypted when a key is
// set" covers every copy of a payload, not only the event log's. A sealed value starts with
// sealMagic; values written before a key was configured are read as they are.
var sealedKinds = map[string]bool{kindSubs: true, kindPending: true, kindPendingInvoices: true}

const sealMagic = 0xA5

type sealingStore struct {
	tollgate.StripeStore
	aead cipher.AEAD
}

func (s sealingStore) ApplyStripe(ctx context.Context, vendorID string, fn func(tx tollgate.StripeTx, cur *tollgate.VendorState) (*tollgate.Subscription, error)) (*tollgate.VendorState, error) {
	return s.StripeStore.ApplyStripe(ctx, vendorID, func(tx tollgate.StripeTx, cur *tollgate.VendorState) (*tollgate.Subscription, error) {
		return fn(sealingTx{tx, s.aead}, cur)
	})
}

func (s sealingStore) ViewStripe(ctx context.Context, fn func(tx tollgate.StripeTx) error) error {
	return s.StripeStore.ViewStripe(ctx, func(tx tollgate.StripeTx) error { return fn(sealingTx{tx, s.aead}) })
}

type sealingTx struct {
	tollgate.StripeTx
	aead cipher.AEAD
}

func sealAD(kind, key string) []byte { return []byte(kind + "\x00" + key) }

func (t sealingTx) Put(kind, key string, value []byte) error {
	if !sealedKinds[kind] {
		return t.StripeTx.Put(kind, key, value)
	}
	n := t.aead.NonceSize()
	out := make([]byte, 1+n, 1+n+len(value)+t.aead.Overhead())
	out[0] = sealMagic
	if _, err := rand.Read(out[1 : 1+n]); err != nil {
		return fmt.Errorf("seal stripe %s %q: %w", kind, key, err)
	}
	out = t.aead.Seal(out, out[1:1+n], value, sealAD(kind, key))
	return t.StripeTx.Put(kind, key, out)
}

func (t sealingTx) Get(kind, key string) ([]byte, error) {
	b, err := t.StripeTx.Get(kind, key)
	if err != nil || b == nil || !sealedKinds[kind] || len(b) == 0 || b[0] != sealMagic {
		return b, err
	}
	n := t.aead.NonceSize()
	if len(b) < 1+n {
		return nil, fmt.Errorf("stripe %s %q: sealed record too short", kind, key)
	}
	out, err := t.aead.Open(nil, b[1:1+n], b[1+n:], sealAD(kind, key))
	if err != nil {
		return nil, fmt.Errorf("stripe %s %q: open sealed record (was the payload key changed?): %w", kind, key, err)
	}
	return out, nil
}
