package sync

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	gosync "sync"
	"sync/atomic"
	"time"

	"github.com/tollgate-pdp/tollgate"
)

// Event sources, as recorded in the event log.
const (
	SourceWebhook   = "webhook"
	SourcePoll      = "poll"
	SourceReplay    = "replay"
	SourceReconcile = "reconcile"
)

// DefaultEventRetention is how long recorded events are kept; MinEventRetention the floor
// (Stripe retries a delivery for up to three days, and the id must be remembered that long).
const (
	DefaultEventRetention = 30 * 24 * time.Hour
	MinEventRetention     = 3 * 24 * time.Hour
)

// Options configure a Syncer.
type Options struct {
	// Store is the durable storage (the cache's *Store). Required.
	Store tollgate.StripeStore
	// Catalog is the configured catalog. Stripe ids learnt from product/price events are
	// persisted and laid over it. Nil: tollgate.DefaultCatalog().
	Catalog *tollgate.Catalog
	// OnCatalog is called (after the commit) with a new catalog whenever product/price events
	// changed its Stripe ids, and once by New when persisted ids changed the configured one.
	OnCatalog func(*tollgate.Catalog)
	// WebhookSecrets are the endpoint secrets (whsec_...); several during a rotation, each
	// entry may be a comma-separated list. None: every webhook is refused.
	WebhookSecrets []string
	// Tolerance for the signature timestamp; <= 0: 300 s.
	Tolerance time.Duration
	// PayloadKey, when 32 bytes, seals each raw payload with AES-256-GCM into the event log.
	// Nil: no payload is kept.
	PayloadKey []byte
	// APIKey and APIBase enable the Stripe API (reconciliation, polling, settling ties).
	// APIBase is empty for api.stripe.com, or e.g. http://127.0.0.1:12111 for stripe-mock.
	APIKey  string
	APIBase string
	// EventRetention bounds the event log (default 30 days, never less than 3).
	EventRetention time.Duration
	// Log, in fleet mode, is the fleet's shared log. Trusted events (verified webhooks, events
	// found by polling, reconciliation and backfill) are published to it instead of applied
	// here; every sidecar, this one included, applies them from the log (ApplyStripeEvent).
	Log      tollgate.StripeLog
	Observer tollgate.Observer
	Logger   *slog.Logger
	Now      func() time.Time
}

// Syncer applies Stripe to the store. It implements tollgate.WebhookReceiver and
// tollgate.BillingReader, and is safe for concurrent use.
type Syncer struct {
	store     tollgate.StripeStore
	base      *tollgate.Catalog
	catalog   atomic.Pointer[tollgate.Catalog]
	catalogMu gosync.Mutex // serialises catalog rebuilds
	onCatalog func(*tollgate.Catalog)
	verifier  *Verifier
	aead      cipher.AEAD
	api       *apiClient
	retention time.Duration
	fleetLog  tollgate.StripeLog
	obs       tollgate.Observer
	log       *slog.Logger
	now       func() time.Time

	reconciled atomic.Bool
}

var (
	_ tollgate.WebhookReceiver = (*Syncer)(nil)
	_ tollgate.BillingReader   = (*Syncer)(nil)
	_ tollgate.StripeApplier   = (*Syncer)(nil)
)

// New builds a Syncer and loads the Stripe catalog ids persisted by earlier runs.
func New(ctx context.Context, o Options) (*Syncer, error) {
	if o.Store == nil {
		return nil, errors.New("sync: a store is required")
	}
	s := &Syncer{store: o.Store, base: o.Catalog, onCatalog: o.OnCatalog,
		verifier: NewVerifier(o.WebhookSecrets, o.Tolerance), retention: o.EventRetention,
		fleetLog: o.Log, obs: o.Observer, log: o.Logger, now: o.Now}
	if s.base == nil {
		s.base = tollgate.DefaultCatalog()
	}
	if s.obs == nil {
		s.obs = tollgate.NopObserver{}
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.retention <= 0 {
		s.retention = DefaultEventRetention
	}
	if s.retention < MinEventRetention {
		s.retention = MinEventRetention
	}
	if o.PayloadKey != nil {
		if len(o.PayloadKey) != 32 {
			return nil, tollgate.FieldErrorf("payload_key", "must be 32 bytes (AES-256), got %d", len(o.PayloadKey))
		}
		block, err := aes.NewCipher(o.PayloadKey)
		if err != nil {
			return nil, fmt.Errorf("sync: payload key: %w", err)
		}
		if s.aead, err = cipher.NewGCM(block); err != nil {
			return nil, fmt.Errorf("sync: payload key: %w", err)
		}
		s.store = sealingStore{StripeStore: s.store, aead: s.aead}
	}
	if o.APIKey != "" {
		s.api = newAPIClient(o.APIKey, o.APIBase)
	}
	s.catalog.Store(s.base.Clone())
	if err := s.rebuildCatalog(ctx, false); err != nil {
		return nil, err
	}
	if s.catalog.Load().Revision() != s.base.Revision() && s.onCatalog != nil {
		s.onCatalog(s.catalog.Load())
	}
	return s, nil
}

// Catalog is the catalog in force: the configured one with Stripe ids learnt from Stripe.
func (s *Syncer) Catalog() *tollgate.Catalog { return s.catalog.Load() }

// Verifier is the signature verifier in use.
func (s *Syncer) Verifier() *Verifier { return s.verifier }

// Receive implements tollgate.WebhookReceiver: verify the signature, then apply the event and
// record it in one durable transaction. A nil error means the caller may answer 2xx.
func (s *Syncer) Receive(ctx context.Context, payload []byte, signatureHeader string) (tollgate.WebhookResult, error) {
	if err := s.verifier.Verify(payload, signatureHeader, s.now()); err != nil {
		s.obs.SignatureFailed()
		s.obs.WebhookHandled("unknown", tollgate.OutcomeRejected)
		s.log.Warn("stripe webhook refused", "err", err)
		return tollgate.WebhookResult{Outcome: tollgate.OutcomeRejected}, err
	}
	res, err := s.Apply(ctx, payload, SourceWebhook)
	typ := res.Type
	if typ == "" {
		typ = "unknown"
	}
	s.obs.WebhookHandled(typ, res.Outcome)
	return res, err
}

// Apply applies one already-trusted event (from a verified webhook, the Stripe API or a replay
// file) with the idempotency and ordering rules: a recorded id changes nothing, an event older
// than the object's last applied one is recorded as ignored. It returns after the event is
// durably recorded. Errors: EInvalid (undecodable), EUnavailable (not durable; retry).
//
// In fleet mode (Options.Log) the event is published to the fleet's log, and Apply returns
// once the log has it and this sidecar has applied it from there.
func (s *Syncer) Apply(ctx context.Context, payload []byte, source string) (tollgate.WebhookResult, error) {
	if s.fleetLog == nil {
		return s.applyLocal(ctx, payload, source, true)
	}
	if _, err := DecodeEvent(payload); err != nil {
		return tollgate.WebhookResult{Outcome: tollgate.OutcomeRejected},
			&tollgate.Error{Code: tollgate.EInvalid, Message: "stripe event: " + err.Error(), Err: err}
	}
	return s.fleetLog.PublishStripe(ctx, payload, source)
}

// ApplyStripeEvent implements tollgate.StripeApplier: it applies an event taken from the fleet
// log to the local store. It never calls the Stripe API (every sidecar applies the same event;
// same-second ties are settled by the fleet's one reconciler), so every sidecar converges to
// the same state.
func (s *Syncer) ApplyStripeEvent(ctx context.Context, payload []byte, source string) (tollgate.WebhookResult, error) {
	return s.applyLocal(ctx, payload, source, false)
}

// applyLocal applies an event to the local store; settle allows settling a tie from the API.
func (s *Syncer) applyLocal(ctx context.Context, payload []byte, source string, settle bool) (tollgate.WebhookResult, error) {
	ev, err := DecodeEvent(payload)
	if err != nil {
		return tollgate.WebhookResult{Outcome: tollgate.OutcomeRejected},
			&tollgate.Error{Code: tollgate.EInvalid, Message: "stripe event: " + err.Error(), Err: err}
	}
	res := tollgate.WebhookResult{EventID: ev.ID, Type: ev.Type}
	var sealed []byte
	if s.aead != nil {
		nonce := make([]byte, s.aead.NonceSize())
		if _, err := rand.Read(nonce); err != nil {
			return res, fmt.Errorf("seal payload: %w", err)
		}
		sealed = s.aead.Seal(nonce, nonce, payload, []byte(ev.ID))
	}
	a, err := s.applyEvent(ctx, ev, source, sealed)
	if err != nil {
		res.Outcome = tollgate.OutcomeFailed
		s.log.Error("stripe event not recorded", "event", ev.ID, "type", ev.Type, "err", err)
		// whatever went wrong, the event is not durably recorded: Stripe must retry
		return res, &tollgate.Error{Code: tollgate.EUnavailable, Message: "the event could not be recorded durably; retry", Err: err}
	}
	res.Outcome, res.VendorID, res.Detail = a.outcome, a.vendor, a.detail
	if a.outcome == tollgate.OutcomeProcessed {
		s.obs.StripeApplied(s.now())
	}
	if a.catalogChanged {
		if err := s.rebuildCatalog(ctx, true); err != nil {
			s.log.Error("rebuild catalog after stripe event", "event", ev.ID, "err", err)
		}
	}
	if settle && a.tie && s.api != nil && a.refetch != "" && source != SourceReconcile {
		// two events of the same second: settle the object from the API
		if err := s.settle(ctx, a.refetch); err != nil {
			s.log.Warn("settle tied stripe object", "object", a.refetch, "err", err)
		}
	}
	s.log.Debug("stripe event", "event", ev.ID, "type", ev.Type, "outcome", a.outcome, "vendor", a.vendor, "source", source)
	return res, nil
}

// OpenPayload decrypts a sealed payload of the event log (for support tooling and tests).
func (s *Syncer) OpenPayload(e *tollgate.WebhookEvent) ([]byte, error) {
	if s.aead == nil {
		return nil, tollgate.Errorf(tollgate.EUnsupported, "no payload key is configured")
	}
	if len(e.Payload) < s.aead.NonceSize() {
		return nil, tollgate.Errorf(tollgate.ENotFound, "event %s has no stored payload", e.ID)
	}
	n := s.aead.NonceSize()
	out, err := s.aead.Open(nil, e.Payload[:n], e.Payload[n:], []byte(e.ID))
	if err != nil {
		return nil, fmt.Errorf("open payload of event %s: %w", e.ID, err)
	}
	return out, nil
}

// Billing lists the vendor's invoices, newest first (GET /v1/vendors/{id}/billing).
func (s *Syncer) Billing(ctx context.Context, vendorID string) ([]tollgate.Invoice, error) {
	return s.store.Billing(ctx, vendorID)
}

// Events lists the event log, newest first (GET /v1/events?vendor_id=).
func (s *Syncer) Events(ctx context.Context, f tollgate.EventFilter) ([]tollgate.WebhookEvent, error) {
	return s.store.Events(ctx, f)
}

// Prune deletes events recorded longer ago than the retention.
func (s *Syncer) Prune(ctx context.Context) (int, error) {
	return s.store.PruneEvents(ctx, s.now().Add(-s.retention))
}

// rebuildCatalog lays the persisted Stripe ids over the configured catalog.
func (s *Syncer) rebuildCatalog(ctx context.Context, notify bool) error {
	s.catalogMu.Lock()
	defer s.catalogMu.Unlock()
	var ids map[string]string
	err := s.store.ViewStripe(ctx, func(tx tollgate.StripeTx) error {
		var err error
		ids, err = loadCatalogIDs(tx)
		return err
	})
	if err != nil {
		return fmt.Errorf("load stripe catalog ids: %w", err)
	}
	c := s.base.Clone()
	for i := range c.Tiers {
		t := &c.Tiers[i]
		if v, ok := ids[catalogKey(t.Code, "product")]; ok {
			t.StripeProductID = v
		}
		if v, ok := ids[catalogKey(t.Code, "monthly")]; ok {
			t.StripePriceMonthlyID = v
		}
		if v, ok := ids[catalogKey(t.Code, "annual")]; ok {
			t.StripePriceAnnualID = v
		}
	}
	for i := range c.AddOns {
		if v, ok := ids[catalogKey("addon:"+c.AddOns[i].Code, "price")]; ok {
			c.AddOns[i].StripePriceID = v
		}
	}
	old := s.catalog.Swap(c)
	if notify && s.onCatalog != nil && (old == nil || old.Revision() != c.Revision()) {
		s.onCatalog(c)
	}
	return nil
}

func catalogKey(code, field string) string { return code + "\x00" + field }

func sanitize(s string) string {
	s = strings.ToValidUTF8(s, "?")
	if len(s) > 500 {
		s = s[:500]
	}
	return s
}
