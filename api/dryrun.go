package api

import (
	"context"
	"strconv"

	"github.com/gofiber/fiber/v2"

	"github.com/tollgate-pdp/tollgate"
)

// MaxDryRunLimit bounds ?limit= of POST /v1/catalog/dry-run.
const MaxDryRunLimit = 10000

// DryRunFunc answers a plan-change dry run (policy.Engine.DryRun over the store's vendors).
type DryRunFunc func(ctx context.Context, candidate *tollgate.Catalog, limit int) (*tollgate.DryRunResult, error)

// handleDryRun answers POST /v1/catalog/dry-run?limit=N: the body is a candidate catalog (the
// root Catalog's JSON, strictly decoded and validated: a bad one is 400 naming tier and field).
// Nothing changes. It evaluates every vendor, so it takes seconds at 100,000 vendors: an
// operator's question on the loopback listener.
func (s *Server) handleDryRun(c *fiber.Ctx) error {
	if s.cfg.DryRun == nil {
		return s.writeError(c, tollgate.Errorf(tollgate.EUnavailable, "the dry run is not configured"))
	}
	limit := 20
	if q := c.Query("limit"); q != "" {
		n, err := strconv.Atoi(q)
		if err != nil || n < 1 || n > MaxDryRunLimit {
			return s.writeError(c, tollgate.FieldErrorf("limit", "must be an integer between 1 and %d, got %q", MaxDryRunLimit, truncate(q, 32)))
		}
		limit = n
	}
	var cat tollgate.Catalog
	if err := decodeBody(c, &cat, decodeOptions{}); err != nil {
		return s.writeError(c, err)
	}
	if cat.AddOns == nil {
		cat.AddOns = []tollgate.AddOn{}
	}
	if err := cat.Validate(); err != nil {
		return s.writeError(c, err)
	}
	res, err := s.cfg.DryRun(c.UserContext(), &cat, limit)
	if err != nil {
		return s.writeError(c, err)
	}
	return writeJSON(c, fiber.StatusOK, res)
}
