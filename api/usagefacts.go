package api

import (
	"github.com/gofiber/fiber/v2"

	"github.com/tollgate-pdp/tollgate"
)

// UsageFactsView answers PUT /v1/vendors/{id}/usage: the vendor's usage after the report.
type UsageFactsView struct {
	VendorID string         `json:"vendor_id"`
	Usage    tollgate.Usage `json:"usage"`
	Revision uint64         `json:"revision"`
}

// handlePutUsage answers PUT /v1/vendors/{id}/usage: the application reports what only it
// counts (products, team members, CMS pages, storage). These are facts, like an order count
// (POST /v1/usage), not an admin write: no token, served on the loopback decision listener.
// Absent fields are unchanged; the write is durable before the 200.
func (s *Server) handlePutUsage(c *fiber.Ctx) error {
	id, err := vendorID(c)
	if err != nil {
		return s.writeError(c, err)
	}
	var r tollgate.UsageReport
	if err := decodeBody(c, &r, decodeOptions{}); err != nil {
		return s.writeError(c, err)
	}
	if err := r.Validate(); err != nil {
		return s.writeError(c, err)
	}
	if _, ok := s.cfg.Store.Vendor(id); !ok {
		return s.writeError(c, notFound(id))
	}
	v, err := s.cfg.Store.ReportUsage(c.UserContext(), id, r)
	if err != nil {
		return s.writeError(c, err)
	}
	return writeJSON(c, fiber.StatusOK, UsageFactsView{VendorID: id, Usage: v.Usage, Revision: v.Revision})
}
