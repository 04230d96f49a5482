package api

import (
	"github.com/gofiber/fiber/v2"

	"github.com/tollgate-pdp/tollgate"
)

// handleUsage answers POST /v1/usage: orders the application placed without a consuming
// check. Unknown vendors are 404 (the Checker reports ENotFound).
func (s *Server) handleUsage(c *fiber.Ctx) error {
	var inc tollgate.UsageIncrement
	if err := decodeBody(c, &inc, decodeOptions{}); err != nil {
		return s.writeError(c, err)
	}
	if err := inc.Validate(); err != nil {
		return s.writeError(c, err)
	}
	res, err := s.cfg.Checker.AddUsage(c.UserContext(), &inc)
	if err != nil {
		return s.writeError(c, err)
	}
	if s.cfg.UsageReporter != nil {
		s.cfg.UsageReporter.UsageAdded(res)
	}
	return writeJSON(c, fiber.StatusOK, res)
}

// handleTiers answers GET /v1/tiers with the catalog in service.
func (s *Server) handleTiers(c *fiber.Ctx) error {
	return writeJSON(c, fiber.StatusOK, s.cfg.Catalog())
}
