package api

import (
	"bytes"

	"github.com/gofiber/fiber/v2"

	"github.com/tollgate-pdp/tollgate"
)

// handleBackup answers GET /v1/admin/backup (admin token): a consistent copy of the store file,
// taken in one read transaction while the server keeps serving. The copy is assembled before
// the status is sent, so a failed backup is a 5xx and never a truncated 200.
func (s *Server) handleBackup(c *fiber.Ctx) error {
	if s.cfg.Backup == nil {
		return s.writeError(c, tollgate.Errorf(tollgate.EUnavailable, "backup is not configured"))
	}
	var buf bytes.Buffer
	if _, err := s.cfg.Backup(c.UserContext(), &buf); err != nil {
		s.log.Error("backup failed", "err", err)
		return s.writeError(c, tollgate.Errorf(tollgate.EUnavailable, "backup failed"))
	}
	c.Set(fiber.HeaderContentType, "application/octet-stream")
	c.Set(fiber.HeaderContentDisposition, `attachment; filename="tollgate.db"`)
	c.Set(fiber.HeaderCacheControl, "no-store")
	return c.Status(fiber.StatusOK).Send(buf.Bytes())
}
