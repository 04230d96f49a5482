package main

import (
	"context"
	"encoding/base64"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/tollgate-pdp/tollgate"
	"github.com/tollgate-pdp/tollgate/cache"
	tgsync "github.com/tollgate-pdp/tollgate/sync"
)

// stripeConfig is the Stripe part of the configuration, shared by serve, backfill and replay.
type stripeConfig struct {
	WebhookSecrets    string
	APIKey            string
	APIBase           string
	ReconcileInterval time.Duration
	PollInterval      time.Duration
	PayloadKey        string
	EventRetention    time.Duration
}

// addStripeFlags declares the Stripe flags; serve gets all of them, the one-shot commands only
// what they use.
func (c *stripeConfig) addFlags(f *pflag.FlagSet, serve bool) {
	f.StringVar(&c.APIKey, "stripe-api-key", "", "Stripe secret API key: reconciliation, event polling, backfill")
	f.StringVar(&c.APIBase, "stripe-api-base", "", "Stripe API base URL (default Stripe's; e.g. http://127.0.0.1:12111 for stripe-mock)")
	f.StringVar(&c.PayloadKey, "payload-key", "", "base64 of 32 bytes: keep each event's raw payload encrypted with AES-256-GCM (default: no payload kept)")
	f.DurationVar(&c.EventRetention, "event-retention", 30*24*time.Hour, "how long processed Stripe events are kept in the event log (never less than 72h)")
	if !serve {
		return
	}
	f.StringVar(&c.WebhookSecrets, "stripe-webhook-secret", "", "Stripe webhook signing secret(s), comma separated during a rotation; without one every webhook is refused")
	f.DurationVar(&c.ReconcileInterval, "reconcile-interval", time.Hour, "with an API key: how often all subscriptions are listed and applied as the newest truth (0: only at start)")
	f.DurationVar(&c.PollInterval, "stripe-poll-interval", 30*time.Second, "with an API key: how often Stripe events are polled, so every replica converges (0: off)")
}

// enabled reports whether Stripe is a source of state at all (then staleness means something).
func (c *stripeConfig) enabled() bool { return c.WebhookSecrets != "" || c.APIKey != "" }

func (c *stripeConfig) payloadKey() ([]byte, error) {
	if c.PayloadKey == "" {
		return nil, nil
	}
	key, err := base64.StdEncoding.DecodeString(strings.TrimSpace(c.PayloadKey))
	if err != nil {
		return nil, fmt.Errorf("--payload-key: not base64: %w", err)
	}
	if len(key) != 32 {
		return nil, fmt.Errorf("--payload-key: must be 32 bytes (base64 of 32 random bytes), got %d", len(key))
	}
	return key, nil
}

// newSyncer builds the Stripe sync over the store. onCatalog receives catalogs whose Stripe ids
// product/price events changed.
func (c *stripeConfig) newSyncer(ctx context.Context, store *cache.Store, catalog *tollgate.Catalog,
	onCatalog func(*tollgate.Catalog), obs tollgate.Observer, fleetLog tollgate.StripeLog, log *slog.Logger) (*tgsync.Syncer, error) {
	key, err := c.payloadKey()
	if err != nil {
		return nil, err
	}
	var secrets []string
	if c.WebhookSecrets != "" {
		secrets = []string{c.WebhookSecrets}
	}
	s, err := tgsync.New(ctx, tgsync.Options{
		Store: store, Catalog: catalog, OnCatalog: onCatalog, WebhookSecrets: secrets,
		PayloadKey: key, APIKey: c.APIKey, APIBase: c.APIBase, EventRetention: c.EventRetention,
		Log: fleetLog, Observer: obs, Logger: log,
	})
	if err != nil {
		return nil, fmt.Errorf("stripe sync: %w", err)
	}
	return s, nil
}
