package fleet

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tollgate-pdp/tollgate"
)

// Message kinds: the last token of a log message's subject (<fleet>.log.<kind>).
const (
	KindStripe       = "stripe"       // a trusted Stripe event, raw; id "stripe:<event id>"
	KindSubscription = "subscription" // PUT /v1/vendors/{id} and overrides: the whole subscription
	KindUsage        = "usage"        // PUT /v1/vendors/{id}/usage: a usage report
	KindImport       = "import"       // an import: every record, applied in one transaction
)

// HeaderSource names where a Stripe event came from (webhook, poll, reconcile).
const HeaderSource = "Tollgate-Source"

// subscriptionMsg is a KindSubscription body.
type subscriptionMsg struct {
	Subscription tollgate.Subscription `json:"subscription"`
	At           time.Time             `json:"at"` // when it was published; makes the content id unique
}

// usageMsg is a KindUsage body.
type usageMsg struct {
	VendorID string               `json:"vendor_id"`
	Report   tollgate.UsageReport `json:"report"`
	At       time.Time            `json:"at"` // the report's time (UsageReport.At)
}

// importMsg is a KindImport body.
type importMsg struct {
	Records []tollgate.ImportRecord `json:"records"`
	At      time.Time               `json:"at"`
}

// ensureStream creates the log stream or brings its settings to the configured ones.
func ensureStream(ctx context.Context, c *Conn) (jetstream.Stream, error) {
	cfg := jetstream.StreamConfig{
		Name:        c.Names.Stream,
		Description: "tollgate fleet " + c.Config.Name + ": every change of vendor state, in order",
		Subjects:    []string{c.Names.Subjects},
		Storage:     jetstream.FileStorage,
		Replicas:    c.Config.Replicas,
		Retention:   jetstream.LimitsPolicy,
		Discard:     jetstream.DiscardOld,
		MaxAge:      c.Config.History,
		Duplicates:  c.Config.DuplicateWindow,
		// A deleted message would be a hole every sidecar reads as lost history.
		DenyDelete: true,
	}
	st, err := c.JS.CreateOrUpdateStream(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("fleet: create stream %s: %w", cfg.Name, err)
	}
	return st, nil
}

// contentID is the message id of a write that has no id of its own: a hash of kind and body.
func contentID(kind string, body []byte) string {
	h := sha256.New()
	h.Write([]byte(kind))
	h.Write([]byte{0})
	h.Write(body)
	return kind + ":" + hex.EncodeToString(h.Sum(nil)[:16])
}

// stripeEventID reads the id of a Stripe event payload (the sync package has verified and
// decoded it already).
func stripeEventID(payload []byte) (string, error) {
	var ev struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal(payload, &ev); err != nil || ev.ID == "" {
		return "", tollgate.Errorf(tollgate.EInvalid, "stripe event: no id")
	}
	return ev.ID, nil
}

// publish appends one message and returns its PubAck. A message whose id the stream saw within
// the duplicate window is not stored again: the ack then names the first copy's sequence.
func (n *Node) publish(ctx context.Context, kind, msgID string, body []byte, hdr nats.Header, opts ...jetstream.PublishOpt) (*jetstream.PubAck, error) {
	if !n.conn.Connected() {
		return nil, unavailable("publish "+kind, nats.ErrConnectionClosed)
	}
	msg := &nats.Msg{Subject: n.conn.Names.Prefix + kind, Data: body, Header: hdr}
	if msg.Header == nil {
		msg.Header = nats.Header{}
	}
	ctx, cancel := context.WithTimeout(ctx, n.opts.PublishTimeout)
	defer cancel()
	ack, err := n.conn.JS.PublishMsg(ctx, msg, append(opts, jetstream.WithMsgID(msgID))...)
	if err != nil {
		if isWrongLastSequence(err) {
			return nil, errWrongLast
		}
		return nil, unavailable("publish "+kind, err)
	}
	return ack, nil
}

var errWrongLast = errors.New("fleet: the log moved on since this write was computed")

func isWrongLastSequence(err error) bool {
	var apiErr *jetstream.APIError
	if !errors.As(err, &apiErr) {
		return false
	}
	return apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence ||
		apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequenceConstant
}
