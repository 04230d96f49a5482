package api

import (
	"strconv"

	"github.com/gofiber/fiber/v2"

	"github.com/tollgate-pdp/tollgate"
)

// maxEventsLimit bounds one GET /v1/events page.
const maxEventsLimit = 1000

// BillingList is GET /v1/vendors/{id}/billing.
type BillingList struct {
	VendorID string             `json:"vendor_id"`
	Invoices []tollgate.Invoice `json:"invoices"`
}

// EventList is GET /v1/events.
type EventList struct {
	Events []tollgate.WebhookEvent `json:"events"`
}

func (s *Server) billingConfigured(c *fiber.Ctx) error {
	if s.cfg.Billing == nil {
		return s.writeError(c, tollgate.Errorf(tollgate.EUnavailable, "Stripe sync is not configured"))
	}
	return c.Next()
}

// handleBilling answers GET /v1/vendors/{id}/billing: the vendor's invoices, newest first.
func (s *Server) handleBilling(c *fiber.Ctx) error {
	id, err := vendorID(c)
	if err != nil {
		return s.writeError(c, err)
	}
	if _, ok := s.cfg.Store.Vendor(id); !ok {
		return s.writeError(c, notFound(id))
	}
	invoices, err := s.cfg.Billing.Billing(c.UserContext(), id)
	if err != nil {
		return s.writeError(c, err)
	}
	if invoices == nil {
		invoices = []tollgate.Invoice{}
	}
	return writeJSON(c, fiber.StatusOK, BillingList{VendorID: id, Invoices: invoices})
}

// handleEvents answers GET /v1/events?vendor_id=&type=&status=&limit=: the Stripe event log,
// newest first.
func (s *Server) handleEvents(c *fiber.Ctx) error {
	f := tollgate.EventFilter{VendorID: c.Query("vendor_id"), Type: c.Query("type"), Status: c.Query("status")}
	if f.VendorID != "" {
		if err := tollgate.ValidateVendorID(f.VendorID); err != nil {
			return s.writeError(c, err)
		}
	}
	if len(f.Type) > 128 {
		return s.writeError(c, tollgate.FieldErrorf("type", "must be at most 128 bytes"))
	}
	switch f.Status {
	case "", tollgate.OutcomeProcessed, tollgate.OutcomeIgnored, tollgate.OutcomeFailed, "pending":
	default:
		return s.writeError(c, tollgate.FieldErrorf("status", "must be one of pending, processed, ignored, failed, got %q", f.Status))
	}
	if raw := c.Query("limit"); raw != "" {
		n, err := strconv.Atoi(raw)
		if err != nil || n < 1 || n > maxEventsLimit {
			return s.writeError(c, tollgate.FieldErrorf("limit", "must be an integer between 1 and %d", maxEventsLimit))
		}
		f.Limit = n
	}
	events, err := s.cfg.Billing.Events(c.UserContext(), f)
	if err != nil {
		return s.writeError(c, err)
	}
	if events == nil {
		events = []tollgate.WebhookEvent{}
	}
	return writeJSON(c, fiber.StatusOK, EventList{Events: events})
}
