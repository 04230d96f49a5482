package fleet

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/maphash"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/tollgate-pdp/tollgate"
)

// Defaults of UsageConfig.
const (
	DefaultCASAttempts  = 12
	DefaultUsageTimeout = 3 * time.Second
	DefaultPendingWait  = 2 * time.Second
	// DefaultKeyTTL outlives the longest billing period (a year) with a month to spare: an
	// idempotency key is scoped to its period, so it is only needed while the period runs.
	DefaultKeyTTL = 395 * 24 * time.Hour
)

// UsageConfig configures the fleet's shared order counters.
type UsageConfig struct {
	// KVPrefix is the fleet's Names.KVPrefix: the buckets are <KVPrefix>USAGE and
	// <KVPrefix>IDEMPOTENCY.
	KVPrefix string
	// Replicas of each bucket: 3 in production (a 3-node cluster), 1 for a single node.
	Replicas int
	// Local is the sidecar's store: a counter the fleet has never written starts from the
	// local count of the period (orders imported or counted before fleet mode).
	Local tollgate.VendorReader
	// Attempts bounds the compare-and-set attempts of one write; after them it answers 503.
	Attempts int
	// Timeout bounds one consume or usage write's NATS round trips.
	Timeout time.Duration
	// PendingWait is how long a request waits for another one holding the same idempotency
	// key to finish before it answers 409.
	PendingWait time.Duration
	// KeyTTL is how long an idempotency key is kept.
	KeyTTL time.Duration
	// Owner names this sidecar in the idempotency markers it writes (logs and debugging).
	Owner    string
	Observer tollgate.FleetObserver
	Logger   *slog.Logger
}

// Usage is the fleet's OrderLedger: one counter per vendor and billing period in a JetStream
// KV bucket, updated by compare-and-set on the entry's revision. See README.md, "Usage
// counters".
type Usage struct {
	cfg UsageConfig
	js  jetstream.JetStream
	// counters and keys are bound by open, under openMu, and never change after.
	openMu   sync.Mutex
	counters jetstream.KeyValue
	keys     jetstream.KeyValue
	obs      tollgate.FleetObserver
	log      *slog.Logger
	// locks serialise one vendor's writes inside this sidecar, so its own consumers queue
	// locally instead of racing each other's compare-and-set: conflicts remain between
	// sidecars only.
	seed  maphash.Seed
	locks [256]sync.Mutex

	synced   chan struct{} // closed once the watch loaded every counter
	syncOnce sync.Once
}

var _ tollgate.OrderLedger = (*Usage)(nil)

// counterValue is a counter entry's value.
type counterValue struct {
	Orders         int64      `json:"orders"`
	LimitReachedAt *time.Time `json:"orders_limit_reached_at,omitempty"`
	// Claim and Response name the idempotency claim of the write that made this revision and
	// its answer, so a claim left pending by a writer that stopped after counting can be
	// completed from here (see claim).
	Claim    string          `json:"claim,omitempty"`
	Response json.RawMessage `json:"response,omitempty"`
}

// NewUsage returns the ledger. It does not touch the network: the buckets are created or bound
// on first use (a write, or the watch), so a sidecar starts while NATS is away.
func NewUsage(js jetstream.JetStream, cfg UsageConfig) (*Usage, error) {
	if cfg.KVPrefix == "" {
		return nil, errors.New("fleet usage: the fleet's KV prefix is required")
	}
	if cfg.Local == nil {
		return nil, errors.New("fleet usage: the local store is required")
	}
	cfg.Replicas = max(cfg.Replicas, 1)
	if cfg.Attempts <= 0 {
		cfg.Attempts = DefaultCASAttempts
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultUsageTimeout
	}
	if cfg.PendingWait <= 0 {
		cfg.PendingWait = DefaultPendingWait
	}
	if cfg.KeyTTL <= 0 {
		cfg.KeyTTL = DefaultKeyTTL
	}
	u := &Usage{cfg: cfg, obs: cfg.Observer, log: cfg.Logger, seed: maphash.MakeSeed(), synced: make(chan struct{}), js: js}
	if u.obs == nil {
		u.obs = tollgate.NopFleetObserver{}
	}
	if u.log == nil {
		u.log = slog.Default()
	}
	return u, nil
}

// open creates or binds the buckets once; until it succeeds every write answers 503.
func (u *Usage) open(ctx context.Context) error {
	u.openMu.Lock()
	defer u.openMu.Unlock()
	if u.counters != nil {
		return nil
	}
	// History 1: a counter's past values are not needed, only its latest and its revision.
	counters, err := u.js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket: UsageBucket(u.cfg.KVPrefix), Description: "tollgate orders per vendor and billing period",
		History: 1, Storage: jetstream.FileStorage, Replicas: u.cfg.Replicas,
	})
	if err != nil {
		return usageUnavailable("the fleet's usage counters cannot be reached; retry",
			fmt.Errorf("bucket %s: %w", UsageBucket(u.cfg.KVPrefix), err))
	}
	keys, err := u.js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket: IdempotencyBucket(u.cfg.KVPrefix), Description: "tollgate idempotency keys of counted orders",
		History: 1, TTL: u.cfg.KeyTTL, Storage: jetstream.FileStorage, Replicas: u.cfg.Replicas,
	})
	if err != nil {
		return usageUnavailable("the fleet's usage counters cannot be reached; retry",
			fmt.Errorf("bucket %s: %w", IdempotencyBucket(u.cfg.KVPrefix), err))
	}
	u.counters, u.keys = counters, keys
	return nil
}

// UsageBucket and IdempotencyBucket name the fleet's KV buckets from its Names.KVPrefix.
func UsageBucket(kvPrefix string) string       { return kvPrefix + "USAGE" }
func IdempotencyBucket(kvPrefix string) string { return kvPrefix + "IDEMPOTENCY" }

// Consume checks and counts against the fleet-wide counter.
func (u *Usage) Consume(ctx context.Context, c tollgate.OrderConsume) (tollgate.OrderIncrementResult, error) {
	return u.count(ctx, c.OrderIncrement, c.Decide, true)
}

// Add counts orders reported without a check (POST /v1/usage).
func (u *Usage) Add(ctx context.Context, inc tollgate.OrderIncrement) (tollgate.OrderIncrementResult, error) {
	if inc.Delta < 0 {
		return tollgate.OrderIncrementResult{}, tollgate.FieldErrorf("delta", "must be >= 0, got %d", inc.Delta)
	}
	return u.count(ctx, inc, func(int64) (tollgate.ConsumeStep, error) {
		return tollgate.ConsumeStep{Allow: true, Limit: inc.Limit}, nil
	}, false)
}

// count runs one write: claim the idempotency key, compare-and-set the counter, store the
// answer with the key. replay says whether a key seen before answers its stored response
// (consume) or just "not applied" (usage).
func (u *Usage) count(ctx context.Context, inc tollgate.OrderIncrement, decide func(int64) (tollgate.ConsumeStep, error), replay bool) (tollgate.OrderIncrementResult, error) {
	ctx, cancel := context.WithTimeout(ctx, u.cfg.Timeout)
	defer cancel()
	if err := u.open(ctx); err != nil {
		return tollgate.OrderIncrementResult{}, err
	}
	mu := &u.locks[maphash.String(u.seed, inc.VendorID)%uint64(len(u.locks))]
	mu.Lock()
	defer mu.Unlock()
	key, err := counterKey(inc.VendorID, inc.Period)
	if err != nil {
		return tollgate.OrderIncrementResult{}, err
	}
	var claim *keyClaim
	if inc.IdempotencyKey != "" {
		var stored *keyValue
		claim, stored, err = u.claim(ctx, inc)
		if err != nil {
			return tollgate.OrderIncrementResult{}, err
		}
		if stored != nil {
			if replay && len(stored.Response) == 0 {
				return tollgate.OrderIncrementResult{}, &tollgate.Error{Code: tollgate.EConflict, Field: "idempotency_key",
					Message: "idempotency_key: already used by a usage report"}
			}
			res := tollgate.OrderIncrementResult{Response: stored.Response}
			if !replay {
				res.Response = nil
				res.Orders, err = u.current(ctx, key)
			}
			return res, err
		}
	}
	res, counted, err := u.cas(ctx, key, inc, claim, decide)
	if claim == nil {
		return res, err
	}
	if !counted {
		// Nothing was counted (a denial, the retry budget spent): free the key so a retry is
		// decided afresh. When the outcome is unknown (err from the write itself) the key
		// stays claimed: see README.md, "What a crash leaves".
		if err == nil || errors.Is(err, errNotWritten) {
			u.release(claim)
		}
		return res, err
	}
	u.complete(claim, res.Response)
	return res, nil
}

// errNotWritten marks a failure known to have written nothing.
var errNotWritten = errors.New("nothing was written")

// cas is the compare-and-set loop: read the counter, decide on its count, write count+delta
// at the revision read; on a conflict read again. counted is true once a write is durable.
func (u *Usage) cas(ctx context.Context, key string, inc tollgate.OrderIncrement, claim *keyClaim, decide func(int64) (tollgate.ConsumeStep, error)) (res tollgate.OrderIncrementResult, counted bool, err error) {
	for attempt := 1; ; attempt++ {
		cur, rev, err := u.read(ctx, key, inc)
		if err != nil {
			return res, false, fmt.Errorf("%w: %w", errNotWritten, err)
		}
		step, err := decide(cur.Orders)
		if err != nil {
			return res, false, fmt.Errorf("%w: %w", errNotWritten, err)
		}
		if !step.Allow {
			return tollgate.OrderIncrementResult{Orders: cur.Orders}, false, nil
		}
		next := cur
		next.Orders += inc.Delta
		next.Claim, next.Response = "", nil
		if claim != nil {
			next.Claim, next.Response = claim.id(), step.Response
		}
		if step.Limit != nil && next.LimitReachedAt == nil && next.Orders >= *step.Limit {
			at := inc.At.UTC()
			if inc.At.IsZero() {
				at = time.Now().UTC()
			}
			next.LimitReachedAt = &at
		}
		b, err := json.Marshal(next)
		if err != nil {
			return res, false, fmt.Errorf("%w: encode counter: %w", errNotWritten, err)
		}
		if rev == 0 {
			_, err = u.counters.Create(ctx, key, b)
		} else {
			_, err = u.counters.Update(ctx, key, b, rev)
		}
		if err == nil {
			return tollgate.OrderIncrementResult{Applied: true, Orders: next.Orders, Response: step.Response}, true, nil
		}
		if !revisionConflict(err) {
			return res, false, usageUnavailable("the fleet's usage counter cannot be written; retry", err)
		}
		if attempt >= u.cfg.Attempts {
			u.obs.FleetCASConflict()
			return res, false, fmt.Errorf("%w: %w", errNotWritten, &tollgate.Error{Code: tollgate.EUnavailable,
				Message: "the fleet's usage counter is busy; retry",
				Err:     fmt.Errorf("%d compare-and-set attempts on %s: %w", attempt, key, err)})
		}
		u.obs.FleetCASRetry()
		if err := casBackoff(ctx, attempt); err != nil {
			return res, false, fmt.Errorf("%w: %w", errNotWritten, usageUnavailable("the fleet's usage counter is busy; retry", err))
		}
	}
}

// read returns the counter and its revision; 0 when the fleet never counted the period, and
// then the count is the local one (orders imported, or counted before fleet mode).
func (u *Usage) read(ctx context.Context, key string, inc tollgate.OrderIncrement) (counterValue, uint64, error) {
	e, err := u.counters.Get(ctx, key)
	if errors.Is(err, jetstream.ErrKeyNotFound) || errors.Is(err, jetstream.ErrKeyDeleted) {
		var cur counterValue
		if v, ok := u.cfg.Local.Vendor(inc.VendorID); ok {
			if p, ok := v.Usage.PeriodUsageOf(inc.Period); ok {
				cur = counterValue{Orders: p.Orders, LimitReachedAt: p.LimitReachedAt}
			}
		}
		return cur, 0, nil
	}
	if err != nil {
		return counterValue{}, 0, usageUnavailable("the fleet's usage counter cannot be read; retry", err)
	}
	var cur counterValue
	if err := json.Unmarshal(e.Value(), &cur); err != nil {
		return counterValue{}, 0, fmt.Errorf("fleet usage: decode counter %s: %w", key, err)
	}
	return cur, e.Revision(), nil
}

// current is the counter's count, for the answer to a usage write seen before.
func (u *Usage) current(ctx context.Context, key string) (int64, error) {
	e, err := u.counters.Get(ctx, key)
	if err != nil {
		return 0, usageUnavailable("the fleet's usage counter cannot be read; retry", err)
	}
	var cur counterValue
	if err := json.Unmarshal(e.Value(), &cur); err != nil {
		return 0, fmt.Errorf("fleet usage: decode counter %s: %w", key, err)
	}
	return cur.Orders, nil
}

func revisionConflict(err error) bool {
	return errors.Is(err, jetstream.ErrKeyExists) || errors.Is(err, jetstream.ErrKeyRevisionMismatch)
}

// casBackoff sleeps a random time below a bound that doubles with each attempt (1 ms to 32 ms),
// so the sidecars that lost a round do not collide again in the next.
func casBackoff(ctx context.Context, attempt int) error {
	bound := time.Millisecond << min(attempt-1, 5)
	t := time.NewTimer(rand.N(bound) + time.Millisecond/4)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

func usageUnavailable(msg string, err error) error {
	return &tollgate.Error{Code: tollgate.EUnavailable, Message: msg, Err: err}
}
