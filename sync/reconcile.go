package sync

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"slices"
	"strings"
	gosync "sync"
	"time"

	stripe "github.com/stripe/stripe-go/v76"
	stripeevent "github.com/stripe/stripe-go/v76/event"
	"github.com/stripe/stripe-go/v76/subscription"

	"github.com/tollgate-pdp/tollgate"
)

// Summary is what a backfill or reconciliation did.
type Summary struct {
	Created int            `json:"created"` // vendors whose first subscription this run applied
	Updated int            `json:"updated"` // vendors whose subscription this run re-applied
	Skipped map[string]int `json:"skipped"` // objects not applied, by reason
}

func (s *Summary) skip(reason string) {
	if s.Skipped == nil {
		s.Skipped = map[string]int{}
	}
	s.Skipped[reason]++
}

// ErrNoAPIKey is returned by the API-driven operations when no Stripe API key is configured.
var errNoAPIKey = tollgate.Errorf(tollgate.EUnavailable, "no Stripe API key is configured")

// applyObject applies an object read from the Stripe API as the newest truth: it goes through
// the event pipeline as a synthetic event of the given type whose created is the later of now
// and the object's last applied event, so it wins over everything applied before it.
func (s *Syncer) applyObject(ctx context.Context, typ, markKey, objectID string, raw json.RawMessage, source string) (applied, error) {
	created := s.now().Unix()
	err := s.store.ViewStripe(ctx, func(tx tollgate.StripeTx) error {
		last, ok, err := getInt(tx, kindMarks, markKey)
		if ok && last > created {
			created = last
		}
		return err
	})
	if err != nil {
		return applied{}, fmt.Errorf("read ordering mark of %s: %w", objectID, err)
	}
	var nonce [8]byte
	_, _ = rand.Read(nonce[:])
	ev := &Event{ID: fmt.Sprintf("%s_%s_%d_%s", source, objectID, created, hex.EncodeToString(nonce[:])), Object: "event", Type: typ, Created: created}
	ev.Data.Object = raw
	if s.fleetLog != nil {
		return s.publishObject(ctx, ev, source)
	}
	a, err := s.applyEvent(ctx, ev, source, nil)
	if err == nil && a.outcome == tollgate.OutcomeProcessed {
		s.obs.StripeApplied(s.now())
	}
	return a, err
}

// publishObject puts a synthetic event into the fleet log (fleet mode): every sidecar then
// applies the same event, with the same id and created time.
func (s *Syncer) publishObject(ctx context.Context, ev *Event, source string) (applied, error) {
	payload, err := json.Marshal(ev)
	if err != nil {
		return applied{}, fmt.Errorf("encode %s event: %w", ev.Type, err)
	}
	res, err := s.fleetLog.PublishStripe(ctx, payload, source)
	if err != nil {
		return applied{}, err
	}
	return applied{outcome: res.Outcome, vendor: res.VendorID, detail: res.Detail}, nil
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
	_, err = s.applyObject(ctx, tollgate.EventSubscriptionUpdated, "subscription:"+id, id, raw, SourceReconcile)
	return err
}

// skipReason classifies why an object was not applied, for the summary.
func skipReason(a applied) string {
	switch {
	case a.outcome == tollgate.OutcomeDuplicate:
		return "duplicate"
	case strings.Contains(a.detail, "no vendor"):
		return "no vendor"
	case strings.Contains(a.detail, "names a catalog tier"):
		return "no tier"
	case strings.Contains(a.detail, "older than"):
		return "newer state already applied"
	case strings.Contains(a.detail, "not a valid vendor id"):
		return "invalid vendor id"
	}
	return "failed"
}

// Backfill lists every subscription of the Stripe account (status all, prices expanded) through
// stripe-go's list iterator and applies each as the newest truth. progress, when set, is called
// with the number of subscriptions handled so far.
func (s *Syncer) Backfill(ctx context.Context, progress func(done int)) (Summary, error) {
	sum := Summary{Skipped: map[string]int{}}
	if s.api == nil {
		return sum, errNoAPIKey
	}
	params := &stripe.SubscriptionListParams{Status: stripe.String("all")}
	params.Context = ctx
	params.Limit = stripe.Int64(100)
	params.AddExpand("data.items.data.price")
	it := (&subscription.Client{B: s.api.backend, Key: s.api.key}).List(params)
	var (
		page  *stripe.SubscriptionList
		raws  map[string]json.RawMessage
		done  int
		known = map[string]bool{}
	)
	for it.Next() {
		if l := it.SubscriptionList(); l != page {
			page = l
			var err error
			if raws, err = rawByID(l.LastResponse); err != nil {
				return sum, fmt.Errorf("backfill: %w", err)
			}
		}
		sub := it.Subscription()
		raw, ok := raws[sub.ID]
		if !ok {
			sum.skip("unreadable")
			continue
		}
		existed, err := s.vendorKnown(ctx, sub.ID, known)
		if err != nil {
			return sum, fmt.Errorf("backfill: %w", err)
		}
		a, err := s.applyObject(ctx, tollgate.EventSubscriptionUpdated, "subscription:"+sub.ID, sub.ID, raw, SourceReconcile)
		if err != nil {
			return sum, fmt.Errorf("backfill subscription %s: %w", sub.ID, err)
		}
		switch {
		case a.outcome == tollgate.OutcomeProcessed && a.detail == "" && existed:
			sum.Updated++
		case a.outcome == tollgate.OutcomeProcessed && a.detail == "":
			sum.Created++
			known[a.vendor] = true
		default:
			sum.skip(skipReason(a))
		}
		done++
		if progress != nil {
			progress(done)
		}
	}
	if err := it.Err(); err != nil {
		return sum, fmt.Errorf("backfill: list subscriptions: %w", err)
	}
	return sum, nil
}

// vendorKnown reports whether the subscription's vendor already had state before this run.
func (s *Syncer) vendorKnown(ctx context.Context, subID string, seen map[string]bool) (bool, error) {
	var known bool
	err := s.store.ViewStripe(ctx, func(tx tollgate.StripeTx) error {
		var snap snapshot
		ok, err := getSnap(tx, subID, &snap)
		known = ok && snap.Vendor != ""
		if ok && seen[snap.Vendor] {
			known = true
		}
		return err
	})
	return known, err
}

func rawByID(resp *stripe.APIResponse) (map[string]json.RawMessage, error) {
	if resp == nil {
		return nil, errors.New("list page without a response")
	}
	var page struct {
		Data []json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal(resp.RawJSON, &page); err != nil {
		return nil, fmt.Errorf("decode list page: %w", err)
	}
	out := make(map[string]json.RawMessage, len(page.Data))
	for _, r := range page.Data {
		var o struct {
			ID string `json:"id"`
		}
		if json.Unmarshal(r, &o) == nil && o.ID != "" {
			out[o.ID] = r
		}
	}
	return out, nil
}

// Reconcile is the periodic full reconciliation: a Backfill without progress, reported to the
// observer. The first successful run makes the syncer ready.
func (s *Syncer) Reconcile(ctx context.Context) (Summary, error) {
	sum, err := s.Backfill(ctx, nil)
	s.obs.ReconcileRun("reconcile", err)
	if err != nil {
		s.log.Error("stripe reconciliation failed", "err", err)
		return sum, err
	}
	s.reconciled.Store(true)
	s.log.Info("stripe reconciliation", "created", sum.Created, "updated", sum.Updated, "skipped", sum.Skipped)
	return sum, nil
}

// pollCursor is the newest event seen by polling.
type pollCursor struct {
	ID      string `json:"id"`
	Created int64  `json:"created"`
}

// DefaultPollLookback is how far back the first poll looks when no event was seen yet.
const DefaultPollLookback = time.Hour

// Poll lists the events after the last one seen (ending_before the cursor; the first time,
// created within DefaultPollLookback) and applies those not yet recorded, oldest first. It is
// how every replica converges although Stripe delivers each webhook to one of them. It returns
// how many events it handled.
func (s *Syncer) Poll(ctx context.Context) (int, error) {
	n, err := s.poll(ctx)
	s.obs.ReconcileRun("poll", err)
	return n, err
}

func (s *Syncer) poll(ctx context.Context) (int, error) {
	if s.api == nil {
		return 0, errNoAPIKey
	}
	var cur pollCursor
	if err := s.store.ViewStripe(ctx, func(tx tollgate.StripeTx) error {
		_, err := getJSON(tx, kindCursor, "events", &cur)
		return err
	}); err != nil {
		return 0, fmt.Errorf("poll: read cursor: %w", err)
	}
	params := &stripe.EventListParams{}
	params.Context = ctx
	params.Limit = stripe.Int64(100)
	if cur.ID != "" {
		params.EndingBefore = stripe.String(cur.ID)
	} else {
		params.CreatedRange = &stripe.RangeQueryParams{GreaterThanOrEqual: s.now().Add(-DefaultPollLookback).Unix()}
	}
	it := (&stripeevent.Client{B: s.api.backend, Key: s.api.key}).List(params)
	type item struct {
		created int64
		id      string
		raw     json.RawMessage
	}
	var (
		page  *stripe.EventList
		raws  map[string]json.RawMessage
		items []item
	)
	for it.Next() {
		if l := it.EventList(); l != page {
			page = l
			var err error
			if raws, err = rawByID(l.LastResponse); err != nil {
				return 0, fmt.Errorf("poll: %w", err)
			}
		}
		e := it.Event()
		if raw, ok := raws[e.ID]; ok {
			items = append(items, item{e.Created, e.ID, raw})
		}
	}
	if err := it.Err(); err != nil {
		return 0, fmt.Errorf("poll: list events: %w", err)
	}
	slices.SortStableFunc(items, func(a, b item) int {
		if c := cmpInt(a.created, b.created); c != 0 {
			return c
		}
		return strings.Compare(a.id, b.id)
	})
	for _, e := range items {
		if _, err := s.Apply(ctx, e.raw, SourcePoll); err != nil && tollgate.ErrorCode(err) != tollgate.EInvalid {
			return 0, fmt.Errorf("poll: apply %s: %w", e.id, err)
		}
		if e.created >= cur.Created {
			cur = pollCursor{ID: e.id, Created: e.created}
		}
	}
	if len(items) > 0 {
		if _, err := s.store.ApplyStripe(ctx, "", func(tx tollgate.StripeTx, _ *tollgate.VendorState) (*tollgate.Subscription, error) {
			return nil, putJSON(tx, kindCursor, "events", cur)
		}); err != nil {
			return 0, fmt.Errorf("poll: save cursor: %w", err)
		}
	}
	return len(items), nil
}

// Run reconciles at once and then every reconcileEvery, and polls events every pollEvery (0:
// off), until ctx ends; it prunes the event log hourly. Without an API key it only prunes.
// Errors are logged and counted; the loop keeps going.
func (s *Syncer) Run(ctx context.Context, reconcileEvery, pollEvery time.Duration) {
	if s.api == nil {
		reconcileEvery, pollEvery = 0, 0
	} else {
		_, _ = s.Reconcile(ctx)
	}
	var rc, pc <-chan time.Time
	if reconcileEvery > 0 {
		t := time.NewTicker(reconcileEvery)
		defer t.Stop()
		rc = t.C
	}
	if pollEvery > 0 {
		t := time.NewTicker(pollEvery)
		defer t.Stop()
		pc = t.C
	}
	prune := time.NewTicker(time.Hour)
	defer prune.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-rc:
			_, _ = s.Reconcile(ctx)
		case <-pc:
			if _, err := s.Poll(ctx); err != nil {
				s.log.Error("stripe event poll failed", "err", err)
			}
		case <-prune.C:
			if n, err := s.Prune(ctx); err != nil {
				s.log.Error("prune stripe events", "err", err)
			} else if n > 0 {
				s.log.Info("pruned stripe events", "count", n)
			}
		}
	}
}

// Name implements tollgate.ReadinessCheck.
func (s *Syncer) Name() string { return "stripe" }

// Ready implements tollgate.ReadinessCheck: with an API key, ready after the first successful
// reconciliation; without one, always ready (webhooks only).
func (s *Syncer) Ready() (bool, string) {
	switch {
	case s.api == nil:
		return true, "webhooks only (no Stripe API key)"
	case s.reconciled.Load():
		return true, "reconciled with the Stripe API"
	}
	return false, "waiting for the first reconciliation with the Stripe API"
}

// ReplaySummary counts a replay's events by outcome.
type ReplaySummary struct {
	Lines    int            `json:"lines"`
	Outcomes map[string]int `json:"outcomes"`
}

// maxReplayLine bounds one JSON line of a replay file.
const maxReplayLine = 16 << 20

// replayWorkers is how many events a replay applies concurrently, so the store can group
// their commits. Events of one Stripe object always go to the same worker, in file order, so
// ties between them still resolve by file order; across objects the final state does not
// depend on order (see the ordering rules).
const replayWorkers = 64

// Replay applies events saved as JSON lines (one event per line, as saved from webhooks or
// printed by `stripe listen --print-json`) with the same idempotency and ordering rules as
// webhooks. Blank lines are skipped; a line that is not an event is counted as rejected and
// logged with its number. It stops at the first storage failure.
func (s *Syncer) Replay(ctx context.Context, r io.Reader) (ReplaySummary, error) {
	sum := ReplaySummary{Outcomes: map[string]int{}}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	type job struct {
		line    int
		payload []byte
	}
	var (
		mu    gosync.Mutex
		wg    gosync.WaitGroup
		works [replayWorkers]chan job
	)
	for i := range works {
		works[i] = make(chan job, 16)
		wg.Add(1)
		go func(in <-chan job) {
			defer wg.Done()
			for j := range in {
				if ctx.Err() != nil {
					continue
				}
				res, err := s.Apply(ctx, j.payload, SourceReplay)
				mu.Lock()
				switch {
				case err == nil:
					sum.Outcomes[res.Outcome]++
				case tollgate.ErrorCode(err) == tollgate.EInvalid:
					s.log.Warn("replay: line is not a Stripe event", "line", j.line, "err", err)
					sum.Outcomes[tollgate.OutcomeRejected]++
				default:
					cancel(fmt.Errorf("replay line %d: %w", j.line, err))
				}
				mu.Unlock()
			}
		}(works[i])
	}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), maxReplayLine)
	var readErr error
	for sc.Scan() && ctx.Err() == nil {
		sum.Lines++
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 {
			continue
		}
		payload := bytes.Clone(line)
		works[replayShard(payload)] <- job{sum.Lines, payload}
	}
	if err := sc.Err(); err != nil {
		readErr = &tollgate.Error{Code: tollgate.EInvalid, Message: fmt.Sprintf("replay: read line %d: %v", sum.Lines+1, err), Err: err}
	}
	for i := range works {
		close(works[i])
	}
	wg.Wait()
	if err := context.Cause(ctx); err != nil {
		return sum, err
	}
	return sum, readErr
}

// replayShard picks the worker of an event: by its object's id, so one object's events keep
// their file order.
func replayShard(payload []byte) int {
	var e struct {
		Data struct {
			Object struct {
				ID string `json:"id"`
			} `json:"object"`
		} `json:"data"`
	}
	_ = json.Unmarshal(payload, &e)
	h := fnv.New32a()
	h.Write([]byte(e.Data.Object.ID))
	return int(h.Sum32() % replayWorkers)
}
