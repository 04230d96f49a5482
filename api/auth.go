package api

import (
	"crypto/subtle"
	"strings"

	"github.com/gofiber/fiber/v2"

	"github.com/tollgate-pdp/tollgate"
)

// requireAdmin guards admin writes with "Authorization: Bearer <AdminToken>". Without a
// configured token admin writes are off entirely: an empty token must never match an empty
// header.
func (s *Server) requireAdmin(c *fiber.Ctx) error {
	if s.cfg.AdminToken == "" {
		return s.writeError(c, &tollgate.Error{Code: codeForbidden, Field: "Authorization",
			Message: "Authorization: admin writes are disabled (configure --admin-token)"})
	}
	h := c.Get(fiber.HeaderAuthorization)
	if h == "" {
		return s.writeError(c, &tollgate.Error{Code: tollgate.EUnauthorized, Field: "Authorization",
			Message: "Authorization: a bearer token is required for admin writes"})
	}
	const prefix = "bearer "
	if len(h) <= len(prefix) || !strings.EqualFold(h[:len(prefix)], prefix) {
		return s.writeError(c, &tollgate.Error{Code: tollgate.EUnauthorized, Field: "Authorization",
			Message: "Authorization: must be \"Bearer <token>\""})
	}
	// Constant time, so the token cannot be guessed byte by byte from response timing.
	if subtle.ConstantTimeCompare([]byte(h[len(prefix):]), []byte(s.cfg.AdminToken)) != 1 {
		return s.writeError(c, &tollgate.Error{Code: tollgate.EUnauthorized, Field: "Authorization",
			Message: "Authorization: the bearer token is not valid"})
	}
	return c.Next()
}
