package api

import (
	"net/http"

	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/utils"

	"github.com/tollgate-pdp/tollgate"
)

func (s *Server) webhookRoutes(app *fiber.App) {
	app.Post("/webhooks/stripe", s.handleStripeWebhook)
}

// webhookResponse acknowledges a delivery Stripe may stop retrying.
type webhookResponse struct {
	Received bool   `json:"received"`
	EventID  string `json:"event_id"`
	Type     string `json:"type,omitempty"`
	Outcome  string `json:"outcome"`
}

// handleStripeWebhook answers POST /webhooks/stripe. 2xx only when the receiver says the event
// is durably recorded; a bad signature or payload is 400 (Stripe shows it, retrying will not
// help), an unavailable store 503 (Stripe retries).
func (s *Server) handleStripeWebhook(c *fiber.Ctx) error {
	if s.cfg.Webhooks == nil {
		return s.writeError(c, tollgate.Errorf(tollgate.EUnavailable, "webhooks are not configured"))
	}
	// The body is copied: the receiver may keep it (event log) beyond this request, and
	// fasthttp reuses the request buffer.
	body, err := requestBody(c)
	if err != nil {
		return s.writeError(c, err)
	}
	payload := append([]byte(nil), body...)
	sig := utils.CopyString(c.Get("Stripe-Signature"))
	res, err := s.cfg.Webhooks.Receive(c.UserContext(), payload, sig)
	if err != nil {
		d := s.errorDetail(c, err)
		status := statusFor(d.Code)
		switch d.Code {
		case tollgate.EUnauthorized, tollgate.EInvalid:
			status = http.StatusBadRequest
		case tollgate.EUnavailable, tollgate.EInternal, tollgate.ETooLarge:
		default:
			if status < 500 {
				status = http.StatusBadRequest
			}
		}
		return writeJSON(c, status, ErrorBody{Error: d})
	}
	return writeJSON(c, http.StatusOK, webhookResponse{Received: true, EventID: res.EventID, Type: res.Type, Outcome: res.Outcome})
}
