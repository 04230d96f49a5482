package fleet

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tollgate-pdp/tollgate"
)

// Store is the tollgate.Store of a fleet sidecar. Reads are the local store's (no network);
// every write is published to the fleet log and answered only once the log has it and this
// sidecar has applied it, so the caller reads its own write; when the log cannot be reached
// it is EUnavailable (503) and nothing changes anywhere.
type Store struct {
	tollgate.Store // the local store, for reads
	node           *Node
}

var _ tollgate.Store = (*Store)(nil)

// maxUpdateAttempts bounds the compare-and-set loop of UpdateSubscription.
const maxUpdateAttempts = 8

// Store returns the fleet's view of the store.
func (n *Node) Store() *Store { return &Store{Store: n.local, node: n} }

// PublishStripe implements tollgate.StripeLog. The message id is the Stripe event id, so the
// same event received by two sidecars (or polled and delivered) is stored once.
func (n *Node) PublishStripe(ctx context.Context, payload []byte, source string) (tollgate.WebhookResult, error) {
	id, err := stripeEventID(payload)
	if err != nil {
		return tollgate.WebhookResult{Outcome: tollgate.OutcomeRejected}, err
	}
	ack, err := n.publish(ctx, KindStripe, "stripe:"+id, payload, nats.Header{HeaderSource: []string{source}})
	if err != nil {
		return tollgate.WebhookResult{EventID: id, Outcome: tollgate.OutcomeFailed}, err
	}
	res, err := n.wait(ctx, ack.Sequence)
	if err != nil {
		return tollgate.WebhookResult{EventID: id, Outcome: tollgate.OutcomeFailed}, err
	}
	out, _ := res.val.(tollgate.WebhookResult)
	if out.EventID == "" {
		out.EventID = id
	}
	if ack.Duplicate || out.Outcome == "" {
		out.Outcome = tollgate.OutcomeDuplicate
	}
	if res.err != nil {
		return out, res.err
	}
	return out, nil
}

// write publishes one state change and waits for its local application.
func (n *Node) write(ctx context.Context, kind string, body any, opts ...jetstream.PublishOpt) (result, error) {
	b, err := json.Marshal(body)
	if err != nil {
		return result{}, fmt.Errorf("fleet: encode %s: %w", kind, err)
	}
	ack, err := n.publish(ctx, kind, contentID(kind, b), b, nil, opts...)
	if err != nil {
		return result{}, err
	}
	return n.wait(ctx, ack.Sequence)
}

// PutSubscription publishes the whole subscription.
func (s *Store) PutSubscription(ctx context.Context, sub *tollgate.Subscription) (*tollgate.VendorState, error) {
	if sub == nil || sub.VendorID == "" {
		return nil, tollgate.FieldErrorf("vendor_id", "is required")
	}
	return s.putSubscription(ctx, sub)
}

func (s *Store) putSubscription(ctx context.Context, sub *tollgate.Subscription, opts ...jetstream.PublishOpt) (*tollgate.VendorState, error) {
	res, err := s.node.write(ctx, KindSubscription, subscriptionMsg{Subscription: *sub, At: s.node.opts.Now().UTC()}, opts...)
	if err != nil {
		return nil, err
	}
	if res.err != nil {
		return nil, res.err
	}
	return s.vendorAfter(sub.VendorID)
}

func (s *Store) vendorAfter(id string) (*tollgate.VendorState, error) {
	v, ok := s.Vendor(id)
	if !ok {
		return nil, tollgate.Errorf(tollgate.ENotFound, "vendor %s not found", strconv.Quote(id))
	}
	return v, nil
}

// UpdateSubscription computes the new subscription from the state at the log's end and
// publishes it on condition that the log has not moved meanwhile (compare-and-set on the
// stream's last sequence); when it has, it catches up and computes again.
func (s *Store) UpdateSubscription(ctx context.Context, vendorID string, fn func(*tollgate.Subscription) error) (*tollgate.VendorState, error) {
	n := s.node
	for range maxUpdateAttempts {
		last, err := n.catchUp(ctx)
		if err != nil {
			return nil, err
		}
		cur, ok := s.Vendor(vendorID)
		if !ok {
			return nil, &tollgate.Error{Code: tollgate.ENotFound, Field: "vendor_id", Message: "vendor " + strconv.Quote(vendorID) + " not found"}
		}
		next := cur.Subscription
		next.AddOns = append([]tollgate.SubscriptionAddOn(nil), cur.Subscription.AddOns...)
		if err := fn(&next); err != nil {
			return nil, err
		}
		st, err := s.putSubscription(ctx, &next, jetstream.WithExpectLastSequence(last))
		if errors.Is(err, errWrongLast) {
			continue
		}
		return st, err
	}
	return nil, tollgate.Errorf(tollgate.EUnavailable, "vendor %s: the fleet log kept moving; retry", vendorID)
}

// catchUp waits until the local store has applied the stream's last message and returns its
// sequence.
func (n *Node) catchUp(ctx context.Context) (uint64, error) {
	if !n.conn.Connected() {
		return 0, unavailable("read the fleet log", nats.ErrConnectionClosed)
	}
	st, err := n.conn.JS.Stream(ctx, n.conn.Names.Stream)
	if err != nil {
		return 0, unavailable("read the fleet log", err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		return 0, unavailable("read the fleet log", err)
	}
	last := info.State.LastSeq
	if last > 0 {
		if _, err := n.wait(ctx, last); err != nil {
			return 0, err
		}
	}
	return last, nil
}

// ReportUsage publishes a usage report; its time is fixed here, so every sidecar stores the
// same one.
func (s *Store) ReportUsage(ctx context.Context, vendorID string, r tollgate.UsageReport) (*tollgate.VendorState, error) {
	if _, ok := s.Vendor(vendorID); !ok {
		return nil, &tollgate.Error{Code: tollgate.ENotFound, Field: "vendor_id", Message: "vendor " + strconv.Quote(vendorID) + " not found"}
	}
	if r.At.IsZero() {
		r.At = s.node.opts.Now().UTC()
	}
	res, err := s.node.write(ctx, KindUsage, usageMsg{VendorID: vendorID, Report: r, At: r.At})
	if err != nil {
		return nil, err
	}
	if res.err != nil {
		return nil, res.err
	}
	return s.vendorAfter(vendorID)
}

// Import publishes every record in one message, applied in one transaction everywhere.
func (s *Store) Import(ctx context.Context, records []tollgate.ImportRecord) error {
	b, err := encodeImport(s.node.conn, records, s.node.opts.Now())
	if err != nil {
		return err
	}
	ack, err := s.node.publish(ctx, KindImport, contentID(KindImport, b), b, nil)
	if err != nil {
		return err
	}
	res, err := s.node.wait(ctx, ack.Sequence)
	if err != nil {
		return err
	}
	return res.err
}

// PublishImport publishes an import from outside a sidecar (`tollgate import --nats-url`): it
// returns once the log has it; every sidecar applies it in one transaction.
func PublishImport(ctx context.Context, c *Conn, records []tollgate.ImportRecord) (uint64, error) {
	b, err := encodeImport(c, records, time.Now())
	if err != nil {
		return 0, err
	}
	if err := ensureConnected(ctx, c); err != nil {
		return 0, err
	}
	if _, err := ensureStream(ctx, c); err != nil {
		return 0, err
	}
	ack, err := c.JS.Publish(ctx, c.Names.Prefix+KindImport, b, jetstream.WithMsgID(contentID(KindImport, b)))
	if err != nil {
		return 0, unavailable("publish import", err)
	}
	return ack.Sequence, nil
}

func encodeImport(c *Conn, records []tollgate.ImportRecord, now time.Time) ([]byte, error) {
	b, err := json.Marshal(importMsg{Records: records, At: now.UTC()})
	if err != nil {
		return nil, fmt.Errorf("fleet: encode import: %w", err)
	}
	if limit := c.NC.MaxPayload(); limit > 0 && int64(len(b)) > limit-4096 {
		return nil, tollgate.FieldErrorf("records", "%d records encode to %d bytes, more than one fleet log message holds (%d, the NATS servers' max_payload); import them in smaller files", len(records), len(b), limit)
	}
	return b, nil
}

// Close closes nothing: the local store and the connection belong to the wiring.
func (s *Store) Close() error { return nil }

// The appliers of the kinds above, run by every sidecar in log order.

func (n *Node) applySubscription(ctx context.Context, _ uint64, body []byte, _ map[string][]string) (any, error) {
	var m subscriptionMsg
	if err := json.Unmarshal(body, &m); err != nil {
		return nil, tollgate.Errorf(tollgate.EInvalid, "subscription message: %v", err)
	}
	return n.local.PutSubscription(ctx, &m.Subscription)
}

func (n *Node) applyUsage(ctx context.Context, _ uint64, body []byte, _ map[string][]string) (any, error) {
	var m usageMsg
	if err := json.Unmarshal(body, &m); err != nil {
		return nil, tollgate.Errorf(tollgate.EInvalid, "usage message: %v", err)
	}
	m.Report.At = m.At
	return n.local.ReportUsage(ctx, m.VendorID, m.Report)
}

func (n *Node) applyImport(ctx context.Context, _ uint64, body []byte, _ map[string][]string) (any, error) {
	var m importMsg
	if err := json.Unmarshal(body, &m); err != nil {
		return nil, tollgate.Errorf(tollgate.EInvalid, "import message: %v", err)
	}
	return nil, n.local.Import(ctx, m.Records)
}
