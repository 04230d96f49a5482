package api

import (
	"net/http"

	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/middleware/adaptor"

	"github.com/tollgate-pdp/tollgate"
)

func (s *Server) opsRoutes(app *fiber.App) {
	if s.cfg.Metrics != nil {
		app.Get("/metrics", adaptor.HTTPHandler(s.cfg.Metrics))
	} else {
		app.Get("/metrics", func(c *fiber.Ctx) error {
			return s.writeError(c, tollgate.Errorf(tollgate.EUnavailable, "metrics are not configured"))
		})
	}
	app.Get("/health/live", func(c *fiber.Ctx) error {
		return writeJSON(c, http.StatusOK, map[string]string{"status": "ok"})
	})
	app.Get("/health/ready", s.handleReady)
}

// CheckStatus is one readiness check in the /health/ready body.
type CheckStatus struct {
	Name   string `json:"name"`
	Ready  bool   `json:"ready"`
	Detail string `json:"detail"`
}

// ReadyResponse is the /health/ready body.
type ReadyResponse struct {
	Status string        `json:"status"` // "ok" or "unavailable"
	Checks []CheckStatus `json:"checks"`
}

// handleReady answers 200 when every check is ready, else 503; the body lists each check so
// an operator sees which component holds the pod back.
func (s *Server) handleReady(c *fiber.Ctx) error {
	resp := ReadyResponse{Status: "ok", Checks: make([]CheckStatus, 0, len(s.cfg.Readiness))}
	status := http.StatusOK
	for _, rc := range s.cfg.Readiness {
		ok, detail := rc.Ready()
		resp.Checks = append(resp.Checks, CheckStatus{Name: rc.Name(), Ready: ok, Detail: detail})
		if !ok {
			status = http.StatusServiceUnavailable
			resp.Status = "unavailable"
		}
	}
	return writeJSON(c, status, resp)
}
