package api

import (
	"encoding/json"
	"errors"
	"strconv"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/tollgate-pdp/tollgate"
)

// handleCheck answers POST /v1/check. It is the hot path: the request struct and the output
// buffer come from pools, and the decision is encoded by hand (Decision.AppendJSON).
func (s *Server) handleCheck(c *fiber.Ctx) error {
	req := s.reqPool.Get().(*tollgate.CheckRequest)
	// The Checker and Evaluator do not keep the request after Check returns (the Evaluator
	// contract hands it over only for the call), so the struct can be reused.
	defer func() { *req = tollgate.CheckRequest{}; s.reqPool.Put(req) }()
	body, err := requestBody(c)
	if err != nil {
		return s.writeError(c, err)
	}
	if !decodeCheckFast(body, req) {
		*req = tollgate.CheckRequest{}
		if err := decodeJSON(body, req, decodeOptions{}); err != nil {
			return s.writeError(c, err)
		}
	}
	if err := req.Validate(); err != nil {
		return s.writeError(c, err)
	}
	start := time.Now()
	d, err := s.cfg.Checker.Check(c.UserContext(), req)
	latency := time.Since(start)
	if err != nil {
		// Fail closed: an evaluation error is never an allow.
		s.cfg.Observer.DecisionMade(req.Action, "error", latency)
		return s.writeError(c, err)
	}
	s.cfg.Observer.DecisionMade(req.Action, d.Code, latency)
	return s.writeDecision(c, &d)
}

// writeDecision encodes d into a pooled buffer and copies it into the response.
func (s *Server) writeDecision(c *fiber.Ctx, d *tollgate.Decision) error {
	bp := s.bufPool.Get().(*[]byte)
	b, err := d.AppendJSON((*bp)[:0])
	if err != nil {
		s.bufPool.Put(bp)
		return s.writeError(c, err)
	}
	c.Status(fiber.StatusOK)
	c.Response().Header.SetContentType(fiber.MIMEApplicationJSON)
	c.Response().SetBody(b) // copies, so the buffer can go back to the pool
	if cap(b) <= 64<<10 {
		*bp = b
		s.bufPool.Put(bp)
	}
	return nil
}

// batchRequest is the body of POST /v1/check/batch. Entries are kept raw so that each can be
// decoded on its own and an error can name its index ("checks[3].action").
type batchRequest struct {
	Checks []json.RawMessage `json:"checks"`
}

// handleCheckBatch answers POST /v1/check/batch. Every entry is decoded and validated before
// any is evaluated: one bad entry fails the whole batch with 400 and nothing is consumed. An
// entry whose evaluation fails gets {"error": {...}} in its place (never an allow), so that
// consumes already made by earlier entries are reported rather than hidden behind a 500.
func (s *Server) handleCheckBatch(c *fiber.Ctx) error {
	var br batchRequest
	if err := decodeBody(c, &br, decodeOptions{}); err != nil {
		return s.writeError(c, err)
	}
	if br.Checks == nil {
		return s.writeError(c, tollgate.FieldErrorf("checks", "is required (an array of check requests)"))
	}
	if len(br.Checks) > MaxBatchChecks {
		return s.writeError(c, tollgate.FieldErrorf("checks", "must hold at most %d checks, got %d", MaxBatchChecks, len(br.Checks)))
	}
	reqs := make([]tollgate.CheckRequest, len(br.Checks))
	for i, raw := range br.Checks {
		root := "checks[" + strconv.Itoa(i) + "]"
		if err := decodeJSON(raw, &reqs[i], decodeOptions{root: root}); err != nil {
			return s.writeError(c, err)
		}
		if err := reqs[i].Validate(); err != nil {
			return s.writeError(c, prefixValidation(err, root))
		}
	}
	ctx := c.UserContext()
	out := make([]byte, 0, 64+len(reqs)*256)
	out = append(out, `{"results":[`...)
	for i := range reqs {
		if i > 0 {
			out = append(out, ',')
		}
		start := time.Now()
		d, err := s.cfg.Checker.Check(ctx, &reqs[i])
		latency := time.Since(start)
		if err != nil {
			s.cfg.Observer.DecisionMade(reqs[i].Action, "error", latency)
			eb, _ := json.Marshal(ErrorBody{Error: s.errorDetail(c, err)})
			out = append(out, eb...)
			continue
		}
		s.cfg.Observer.DecisionMade(reqs[i].Action, d.Code, latency)
		if out, err = d.AppendJSON(out); err != nil {
			return s.writeError(c, err)
		}
	}
	out = append(out, "]}"...)
	c.Status(fiber.StatusOK)
	c.Response().Header.SetContentType(fiber.MIMEApplicationJSON)
	c.Response().SetBodyRaw(out)
	return nil
}

// prefixValidation places a validation error of a batch entry under its index.
func prefixValidation(err error, root string) error {
	if te := (*tollgate.Error)(nil); errors.As(err, &te) {
		return prefixError(te, root)
	}
	return err
}
