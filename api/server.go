// Package api serves tollgate over HTTP with fiber: the decision API (loopback only), the
// Stripe webhook listener and the ops listener (metrics, health). Handlers are thin adapters
// over the root package: they decode, validate, call the Checker/Store/Evaluator and encode.
package api

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/tollgate-pdp/tollgate"
)

// Default limits. Decision requests are a few hundred bytes; 1 MiB leaves room for admin writes
// and batches while bounding what a misbehaving client can make us buffer. Stripe payloads are
// small, so the public webhook listener gets a tighter limit.
const (
	DefaultBodyLimit        = 1 << 20
	DefaultWebhookBodyLimit = 512 << 10
	// MaxBatchChecks bounds one /v1/check/batch request.
	MaxBatchChecks = 1000
	// MaxJSONDepth bounds nesting in any request body (the data API takes arbitrary input).
	MaxJSONDepth = 64
)

// UsageReporter is told about every applied usage increment (optional). It lets the wiring
// feed derived views (e.g. capacity metrics) without the api package knowing about them. It
// must not block.
type UsageReporter interface {
	UsageAdded(res tollgate.UsageResult)
}

// Config holds the dependencies and limits of the three listeners.
type Config struct {
	Checker *tollgate.Checker // required
	Store   tollgate.Store    // required
	Policy  tollgate.Evaluator
	// Catalog returns the catalog in service; nil means tollgate.DefaultCatalog.
	Catalog  func() *tollgate.Catalog
	Observer tollgate.Observer // nil: tollgate.NopObserver
	// Webhooks may be nil: POST /webhooks/stripe then answers 503.
	Webhooks  tollgate.WebhookReceiver
	Readiness []tollgate.ReadinessCheck
	// Metrics serves GET /metrics (usually a promhttp handler); nil answers 503.
	Metrics http.Handler
	// AdminToken guards admin writes; "" disables them (403).
	AdminToken string
	// BodyLimit bounds decision API request bodies (default DefaultBodyLimit);
	// WebhookBodyLimit bounds webhook payloads (default DefaultWebhookBodyLimit).
	BodyLimit        int
	WebhookBodyLimit int
	// ReadTimeout, WriteTimeout and IdleTimeout protect against slow or idle clients
	// (defaults 5s, 5s, 60s).
	ReadTimeout  time.Duration
	WriteTimeout time.Duration
	IdleTimeout  time.Duration
	Logger       *slog.Logger // nil: slog.Default()
	// UsageReporter is optional.
	UsageReporter UsageReporter
	// Capacity returns the capacity now (metrics.Metrics.Capacity with revisions); nil answers
	// 503 on /v1/capacity. Snapshots stores the daily snapshots; DryRun answers
	// /v1/catalog/dry-run. All optional.
	Capacity  func(now time.Time) tollgate.CapacitySnapshot
	Snapshots tollgate.SnapshotStore
	DryRun    DryRunFunc
	// Billing serves the Stripe billing history and event log; nil answers 503 on
	// /v1/vendors/{id}/billing and /v1/events.
	Billing tollgate.BillingReader
	// Backup writes a consistent copy of the store (cache.Store.Backup) for GET
	// /v1/admin/backup; nil answers 503.
	Backup func(ctx context.Context, w io.Writer) (int64, error)
}

// Server holds the three fiber apps. Start each with app.Listener(ln) (or app.Listen(addr)) and
// stop them with Shutdown.
type Server struct {
	Decision *fiber.App
	Webhook  *fiber.App
	Ops      *fiber.App

	cfg Config
	log *slog.Logger
	// Pools for the decision hot path: check requests and output buffers (*[]byte).
	reqPool sync.Pool
	bufPool sync.Pool
}

// New builds the three apps. Checker, Store and Policy are required.
func New(cfg Config) (*Server, error) {
	if cfg.Checker == nil || cfg.Store == nil || cfg.Policy == nil {
		return nil, errors.New("api: Config.Checker, Store and Policy are required")
	}
	if cfg.Catalog == nil {
		def := tollgate.DefaultCatalog()
		cfg.Catalog = func() *tollgate.Catalog { return def }
	}
	if cfg.Observer == nil {
		cfg.Observer = tollgate.NopObserver{}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.BodyLimit <= 0 {
		cfg.BodyLimit = DefaultBodyLimit
	}
	if cfg.WebhookBodyLimit <= 0 {
		cfg.WebhookBodyLimit = DefaultWebhookBodyLimit
	}
	if cfg.ReadTimeout <= 0 {
		cfg.ReadTimeout = 5 * time.Second
	}
	if cfg.WriteTimeout <= 0 {
		cfg.WriteTimeout = 5 * time.Second
	}
	if cfg.IdleTimeout <= 0 {
		cfg.IdleTimeout = 60 * time.Second
	}
	s := &Server{cfg: cfg, log: cfg.Logger}
	s.reqPool.New = func() any { return new(tollgate.CheckRequest) }
	s.bufPool.New = func() any { b := make([]byte, 0, 512); return &b }
	s.Decision = s.newApp("decision", cfg.BodyLimit, false)
	s.Webhook = s.newApp("webhook", cfg.WebhookBodyLimit, true)
	s.Ops = s.newApp("ops", 4<<10, false)
	s.decisionRoutes(s.Decision)
	s.webhookRoutes(s.Webhook)
	s.opsRoutes(s.Ops)
	return s, nil
}

// newApp returns a fiber app tuned for small JSON requests over keep-alive connections.
// notFoundOnly makes every routing miss a 404, wrong method included, so the public webhook
// listener reveals nothing about its routes.
func (s *Server) newApp(name string, bodyLimit int, notFoundOnly bool) *fiber.App {
	return fiber.New(fiber.Config{
		AppName:               "tollgate-" + name,
		DisableStartupMessage: true,
		// The Date header stays on: RFC 9110 requires it, and fasthttp formats it once a second.
		BodyLimit:      bodyLimit,
		ReadTimeout:    s.cfg.ReadTimeout,
		WriteTimeout:   s.cfg.WriteTimeout,
		IdleTimeout:    s.cfg.IdleTimeout,
		ReadBufferSize: 8 << 10,
		// fiber's default network is tcp4; the wiring may bind IPv6 loopback.
		Network:       "tcp",
		CaseSensitive: true,
		ErrorHandler:  s.errorHandler(notFoundOnly),
	})
}

// Shutdown stops all three apps, waiting for in-flight requests until ctx is done.
func (s *Server) Shutdown(ctx context.Context) error {
	var errs []error
	for name, app := range map[string]*fiber.App{"decision": s.Decision, "webhook": s.Webhook, "ops": s.Ops} {
		if err := app.ShutdownWithContext(ctx); err != nil {
			errs = append(errs, fmt.Errorf("shutdown %s listener: %w", name, err))
		}
	}
	return errors.Join(errs...)
}

func (s *Server) decisionRoutes(app *fiber.App) {
	app.Post("/v1/check", s.handleCheck)
	app.Post("/v1/check/batch", s.handleCheckBatch)
	app.Post("/v1/usage", s.handleUsage)
	app.Get("/v1/vendors/:id", s.handleGetVendor)
	app.Put("/v1/vendors/:id", s.requireAdmin, s.handlePutVendor)
	app.Patch("/v1/vendors/:id/overrides", s.requireAdmin, s.handlePatchOverrides)
	app.Put("/v1/vendors/:id/usage", s.handlePutUsage)
	app.Get("/v1/vendors/:id/billing", s.billingConfigured, s.handleBilling)
	app.Get("/v1/events", s.billingConfigured, s.handleEvents)
	app.Get("/v1/capacity", s.capacityConfigured, s.handleCapacity)
	app.Get("/v1/capacity/snapshots", s.handleListSnapshots)
	app.Post("/v1/capacity/snapshots", s.requireAdmin, s.capacityConfigured, s.handleTakeSnapshot)
	app.Post("/v1/catalog/dry-run", s.handleDryRun)
	app.Get("/v1/tiers", s.handleTiers)
	// /v1/data is the whole data document, as in OPA.
	app.Get("/v1/data", s.handleData)
	app.Post("/v1/data", s.handleData)
	app.Get("/v1/data/*", s.handleData)
	app.Post("/v1/data/*", s.handleData)
	app.Get("/v1/openapi.yaml", s.handleOpenAPI)
	app.Get("/v1/admin/backup", s.requireAdmin, s.handleBackup)
}
