package api

import (
	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/utils"

	"github.com/tollgate-pdp/tollgate"
)

// SnapshotList answers GET /v1/capacity/snapshots.
type SnapshotList struct {
	Snapshots []tollgate.CapacitySnapshot `json:"snapshots"`
}

// SnapshotResult answers POST /v1/capacity/snapshots.
type SnapshotResult struct {
	Created  bool                       `json:"created"` // false: the day already had one, returned as stored
	Snapshot *tollgate.CapacitySnapshot `json:"snapshot"`
}

func (s *Server) capacityConfigured(c *fiber.Ctx) error {
	if s.cfg.Capacity == nil {
		return s.writeError(c, tollgate.Errorf(tollgate.EUnavailable, "capacity is not configured"))
	}
	return c.Next()
}

// handleCapacity answers GET /v1/capacity: the capacity now, from kept aggregates (no vendor
// is visited).
func (s *Server) handleCapacity(c *fiber.Ctx) error {
	return writeJSON(c, fiber.StatusOK, s.cfg.Capacity(s.cfg.Checker.Now()))
}

// handleListSnapshots answers GET /v1/capacity/snapshots?from=YYYY-MM-DD&to=YYYY-MM-DD (both
// optional, inclusive).
func (s *Server) handleListSnapshots(c *fiber.Ctx) error {
	from, to := utils.CopyString(c.Query("from")), utils.CopyString(c.Query("to"))
	for _, q := range []struct{ name, v string }{{"from", from}, {"to", to}} {
		if q.v == "" {
			continue
		}
		if _, err := tollgate.ParseDate(q.name, q.v); err != nil {
			return s.writeError(c, err)
		}
	}
	if from != "" && to != "" && from > to {
		return s.writeError(c, tollgate.FieldErrorf("from", "must not be after to (%s > %s)", from, to))
	}
	if s.cfg.Snapshots == nil {
		return s.writeError(c, tollgate.Errorf(tollgate.EUnavailable, "capacity snapshots are not configured"))
	}
	list, err := s.cfg.Snapshots.Snapshots(c.UserContext(), from, to)
	if err != nil {
		return s.writeError(c, err)
	}
	return writeJSON(c, fiber.StatusOK, SnapshotList{Snapshots: list})
}

// handleTakeSnapshot answers POST /v1/capacity/snapshots (admin): stores today's (UTC)
// snapshot unless the day has one. `tollgate snapshot --addr` calls it when the server holds
// the store; 201 when created, 200 with the stored one otherwise.
func (s *Server) handleTakeSnapshot(c *fiber.Ctx) error {
	if s.cfg.Snapshots == nil {
		return s.writeError(c, tollgate.Errorf(tollgate.EUnavailable, "capacity snapshots are not configured"))
	}
	snap, created, err := tollgate.TakeSnapshot(c.UserContext(), s.cfg.Snapshots, s.cfg.Capacity(s.cfg.Checker.Now()))
	if err != nil {
		return s.writeError(c, err)
	}
	status := fiber.StatusOK
	if created {
		status = fiber.StatusCreated
	}
	return writeJSON(c, status, SnapshotResult{Created: created, Snapshot: snap})
}
