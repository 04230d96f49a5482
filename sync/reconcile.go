package sync

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/tollgate-pdp/tollgate"
)

// applyObject applies an object read from the Stripe API as the newest truth: it goes through
// the event pipeline as a synthetic event of the given type whose created is the later of now
// and the object's last applied event, so it wins over everything applied before it and loses
// to nothing older.
func (s *Syncer) applyObject(ctx context.Context, typ, markKey, objectID string, raw json.RawMessage, source string) (tollgate.WebhookResult, error) {
	created := s.now().Unix()
	err := s.store.ViewStripe(ctx, func(tx tollgate.StripeTx) error {
		last, ok, err := getInt(tx, kindMarks, markKey)
		if ok && last > created {
			created = last
		}
		return err
	})
	if err != nil {
		return tollgate.WebhookResult{}, fmt.Errorf("read ordering mark of %s: %w", objectID, err)
	}
	ev := map[string]any{
		"id":      fmt.Sprintf("%s_%s_%d", source, objectID, s.now().UnixNano()),
		"object":  "event",
		"type":    typ,
		"created": created,
		"data":    map[string]any{"object": raw},
	}
	payload, err := json.Marshal(ev)
	if err != nil {
		return tollgate.WebhookResult{}, fmt.Errorf("encode %s: %w", objectID, err)
	}
	return s.Apply(ctx, payload, source)
}

// settle re-reads an object from the API after two events of the same second tied.
func (s *Syncer) settle(ctx context.Context, path string) error {
	id, ok := strings.CutPrefix(path, "subscriptions/")
	if !ok {
		return nil
	}
	raw, err := s.api.get(ctx, path, nil)
	if err != nil {
		return err
	}
	_, err = s.applyObject(ctx, "customer.subscription.updated", "subscription:"+id, id, raw, SourceReconcile)
	return err
}
