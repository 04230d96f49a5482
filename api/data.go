package api

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/utils"

	"github.com/tollgate-pdp/tollgate"
)

// dataRequest is OPA's Data API request body. Unknown fields are accepted, as OPA accepts them,
// so that OPA clients work unchanged. The input stays raw until its form is known: a check
// request is decoded as strictly as on /v1/check.
type dataRequest struct {
	Input json.RawMessage `json:"input"`
}

// Documents answered from a request-only input, as /v1/check answers.
const (
	dataDecisionPath = "tollgate/decision"
	dataAllowPath    = "tollgate/allow"
)

// dataResponse is OPA's answer: {"result": ...}, or {} when the document is undefined.
type dataResponse struct {
	Result *any `json:"result,omitempty"`
}

// handleData answers GET and POST /v1/data/{path} like OPA's Data API: POST evaluates with the
// body's input (an empty body means no input), GET without input. Errors use OPA's shape
// {"code": "invalid_parameter", "message": "..."} rather than ours, because OPA clients
// parse it.
func (s *Server) handleData(c *fiber.Ctx) error {
	// Copied: fiber's params point into the request buffer, and the engine may keep the path
	// (its prepared-query cache is keyed by it).
	path, err := url.PathUnescape(utils.CopyString(c.Params("*")))
	if err != nil || strings.Contains(path, "//") {
		return writeJSON(c, http.StatusBadRequest, opaError{Code: "invalid_parameter", Message: "path: invalid document path"})
	}
	path = strings.Trim(path, "/")
	var input any
	if c.Method() == fiber.MethodPost && len(bytes.TrimSpace(c.Request().Body())) > 0 {
		var req dataRequest
		if err := decodeBody(c, &req, decodeOptions{allowUnknown: true}); err != nil {
			return writeJSON(c, http.StatusBadRequest, opaError{Code: "invalid_parameter", Message: tollgate.ErrorMessage(err)})
		}
		if len(req.Input) > 0 {
			if err := decodeJSON(req.Input, &input, decodeOptions{allowUnknown: true, useNumber: true, root: "input"}); err != nil {
				return writeJSON(c, http.StatusBadRequest, opaError{Code: "invalid_parameter", Message: tollgate.ErrorMessage(err)})
			}
		}
		if (path == dataDecisionPath || path == dataAllowPath) && isCheckRequest(input) {
			return s.dataCheck(c, path, req.Input)
		}
	}
	res, defined, err := s.cfg.Policy.Query(c.UserContext(), path, input)
	if err != nil {
		d := s.errorDetail(c, err)
		status := statusFor(d.Code)
		return writeJSON(c, status, opaError{Code: opaCode(status), Message: d.Message})
	}
	if !defined {
		return writeJSON(c, http.StatusOK, dataResponse{})
	}
	return writeJSON(c, http.StatusOK, dataResponse{Result: &res})
}

// isCheckRequest reports whether a data API input is a bare check request ({"vendor_id",
// "action", ...}) rather than the policy's whole input document, which always holds "request"
// and "vendor" (explain shows it; replaying an explained decision sends it back).
func isCheckRequest(input any) bool {
	m, ok := input.(map[string]any)
	if !ok {
		return false
	}
	_, hasRequest := m["request"]
	_, hasVendor := m["vendor"]
	return !hasRequest && !hasVendor
}

// dataCheck answers tollgate/decision and tollgate/allow for a request-only input exactly as
// POST /v1/check answers the same request: the Checker gathers the facts (and consumes, when
// asked), so an OPA client needs to send only what it would send to /v1/check.
func (s *Server) dataCheck(c *fiber.Ctx, path string, raw json.RawMessage) error {
	var req tollgate.CheckRequest
	err := decodeJSON(raw, &req, decodeOptions{root: "input"})
	if err == nil {
		if err = req.Validate(); err != nil {
			err = prefixValidation(err, "input")
		}
	}
	if err != nil {
		d := s.errorDetail(c, err)
		status := statusFor(d.Code)
		return writeJSON(c, status, opaError{Code: opaCode(status), Message: d.Message})
	}
	start := time.Now()
	d, err := s.cfg.Checker.Check(c.UserContext(), &req)
	latency := time.Since(start)
	if err != nil {
		s.cfg.Observer.DecisionMade(req.Action, "error", latency)
		ed := s.errorDetail(c, err)
		status := statusFor(ed.Code)
		return writeJSON(c, status, opaError{Code: opaCode(status), Message: ed.Message})
	}
	s.cfg.Observer.DecisionMade(req.Action, d.Code, latency)
	out := make([]byte, 0, 512)
	out = append(out, `{"result":`...)
	if path == dataAllowPath {
		out = strconv.AppendBool(out, d.Allow)
	} else if out, err = d.AppendJSON(out); err != nil {
		return writeJSON(c, http.StatusInternalServerError, opaError{Code: "internal_error", Message: "Internal error"})
	}
	out = append(out, '}')
	c.Status(fiber.StatusOK)
	c.Response().Header.SetContentType(fiber.MIMEApplicationJSON)
	c.Response().SetBodyRaw(out)
	return nil
}

// opaCode maps a status to the code OPA's server uses for it.
func opaCode(status int) string {
	switch {
	case status == http.StatusNotFound:
		return "resource_not_found"
	case status == http.StatusRequestEntityTooLarge, status < 500:
		return "invalid_parameter"
	default:
		return "internal_error"
	}
}
