package fleet

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/tollgate-pdp/tollgate"
)

// Idempotency keys are fleet-wide: a key is claimed in <Fleet>_IDEMPOTENCY with kv.Create,
// which only one sidecar can win, before anything is counted. See README.md, "Usage
// counters".

const (
	keyPending = "pending" // claimed; the count may or may not have happened
	keyDone    = "done"    // counted; Response is the answer to replay
)

// keyValue is an idempotency entry's value.
type keyValue struct {
	State    string          `json:"state"`
	Owner    string          `json:"owner,omitempty"`
	At       time.Time       `json:"at"`
	Response json.RawMessage `json:"response,omitempty"`
}

// keyClaim is a key this sidecar created, at the revision it holds.
type keyClaim struct {
	key string
	rev uint64
}

// id names the claim in the counter entry its write makes: the key and the revision of its
// pending marker, which no other claim of the key can have.
func (c *keyClaim) id() string { return c.key + "@" + strconv.FormatUint(c.rev, 10) }

// claim creates the key as pending. A key already done returns its value (nothing is
// counted again); a key pending elsewhere is waited for up to PendingWait, then answers 409.
func (u *Usage) claim(ctx context.Context, inc tollgate.OrderIncrement) (*keyClaim, *keyValue, error) {
	k, err := idempotencyKey(inc.VendorID, inc.Period, inc.IdempotencyKey)
	if err != nil {
		return nil, nil, err
	}
	pending, err := json.Marshal(keyValue{State: keyPending, Owner: u.cfg.Owner, At: time.Now().UTC()})
	if err != nil {
		return nil, nil, fmt.Errorf("fleet usage: encode idempotency key: %w", err)
	}
	deadline := time.Now().Add(u.cfg.PendingWait)
	for {
		rev, err := u.keys.Create(ctx, k, pending)
		if err == nil {
			return &keyClaim{key: k, rev: rev}, nil, nil
		}
		if !errors.Is(err, jetstream.ErrKeyExists) {
			return nil, nil, usageUnavailable("the fleet's idempotency keys cannot be written; retry", err)
		}
		e, err := u.keys.Get(ctx, k)
		if errors.Is(err, jetstream.ErrKeyNotFound) || errors.Is(err, jetstream.ErrKeyDeleted) {
			continue // released since: claim it again
		}
		if err != nil {
			return nil, nil, usageUnavailable("the fleet's idempotency keys cannot be read; retry", err)
		}
		var v keyValue
		if err := json.Unmarshal(e.Value(), &v); err != nil {
			return nil, nil, fmt.Errorf("fleet usage: decode idempotency key %s: %w", k, err)
		}
		if v.State == keyDone {
			return nil, &v, nil
		}
		if time.Now().After(deadline) {
			if done, ok := u.recover(ctx, inc, &keyClaim{key: k, rev: e.Revision()}); ok {
				return nil, done, nil
			}
			return nil, nil, &tollgate.Error{Code: tollgate.EConflict, Field: "idempotency_key",
				Message: "idempotency_key: a request with this key has not finished; retry later or use a new key"}
		}
		t := time.NewTimer(10 * time.Millisecond)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, nil, usageUnavailable("the fleet's idempotency keys cannot be read; retry", ctx.Err())
		case <-t.C:
		}
	}
}

// recover completes a claim left pending by a writer that stopped after its count was durable:
// when the counter's latest revision was written under this claim, the count happened, and its
// answer is in the counter. Anything else (the claim's write did not happen, or others wrote
// since) is left pending: nothing tells which, and counting again could count twice.
func (u *Usage) recover(ctx context.Context, inc tollgate.OrderIncrement, c *keyClaim) (*keyValue, bool) {
	key, err := counterKey(inc.VendorID, inc.Period)
	if err != nil {
		return nil, false
	}
	e, err := u.counters.Get(ctx, key)
	if err != nil {
		return nil, false
	}
	var cur counterValue
	if json.Unmarshal(e.Value(), &cur) != nil || cur.Claim != c.id() {
		return nil, false
	}
	u.complete(c, cur.Response)
	u.log.Info("fleet usage: completed an idempotency key left pending after its count", "key", c.key)
	return &keyValue{State: keyDone, Response: cur.Response}, true
}

// release deletes a claim whose request counted nothing, so a retry is decided afresh. On
// failure the key stays pending: a retry then answers 409, never counts twice.
func (u *Usage) release(c *keyClaim) {
	ctx, cancel := context.WithTimeout(context.Background(), u.cfg.Timeout)
	defer cancel()
	if err := u.keys.Delete(ctx, c.key, jetstream.LastRevision(c.rev)); err != nil {
		u.log.Warn("fleet usage: idempotency key left pending", "key", c.key, "err", err)
	}
}

// complete stores the answer with a claim whose count is durable. On failure the key stays
// pending (the caller still gets its answer: the count is durable).
func (u *Usage) complete(c *keyClaim, response []byte) {
	ctx, cancel := context.WithTimeout(context.Background(), u.cfg.Timeout)
	defer cancel()
	b, err := json.Marshal(keyValue{State: keyDone, Owner: u.cfg.Owner, At: time.Now().UTC(), Response: response})
	if err == nil {
		_, err = u.keys.Update(ctx, c.key, b, c.rev)
	}
	if err != nil {
		u.log.Warn("fleet usage: counted, answer not stored with the idempotency key", "key", c.key, "err", err)
	}
}

// counterKey is the KV key of a vendor's period: the vendor id in unpadded URL-safe base64
// (KV keys allow only [-_=./a-zA-Z0-9]) and the period's start in Unix seconds.
func counterKey(vendorID, period string) (string, error) {
	t, err := time.Parse(time.RFC3339, period)
	if err != nil {
		return "", fmt.Errorf("fleet usage: period %q: %w", period, err)
	}
	return base64.RawURLEncoding.EncodeToString([]byte(vendorID)) + "." + strconv.FormatInt(t.Unix(), 10), nil
}

// parseCounterKey reverses counterKey.
func parseCounterKey(key string) (vendorID, period string, ok bool) {
	v, p, found := strings.Cut(key, ".")
	if !found {
		return "", "", false
	}
	id, err := base64.RawURLEncoding.DecodeString(v)
	if err != nil || len(id) == 0 {
		return "", "", false
	}
	secs, err := strconv.ParseInt(p, 10, 64)
	if err != nil {
		return "", "", false
	}
	return string(id), time.Unix(secs, 0).UTC().Format(time.RFC3339), true
}

// idempotencyKey is a key's KV key: scoped to the vendor and period like the counter, the
// caller's key hashed (it may hold any bytes).
func idempotencyKey(vendorID, period, key string) (string, error) {
	ck, err := counterKey(vendorID, period)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256([]byte(key))
	return ck + "." + base64.RawURLEncoding.EncodeToString(sum[:]), nil
}
