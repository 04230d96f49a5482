package api

import (
	"bytes"
	"net/http"
	"net/url"
	"strings"

	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/utils"

	"github.com/tollgate-pdp/tollgate"
)

// dataRequest is OPA's Data API request body. Unknown fields are accepted, as OPA accepts them,
// so that OPA clients work unchanged.
type dataRequest struct {
	Input *any `json:"input"`
}

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
		if err := decodeBody(c, &req, decodeOptions{allowUnknown: true, useNumber: true}); err != nil {
			return writeJSON(c, http.StatusBadRequest, opaError{Code: "invalid_parameter", Message: tollgate.ErrorMessage(err)})
		}
		if req.Input != nil {
			input = *req.Input
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
