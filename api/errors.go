package api

import (
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"

	"github.com/gofiber/fiber/v2"

	"github.com/tollgate-pdp/tollgate"
)

// HTTP-only error codes, beside the root package's application codes.
const (
	codeForbidden        = "forbidden"
	codeMethodNotAllowed = "method_not_allowed"
	codeTimeout          = "timeout"
)

// statusFor maps an error code to its HTTP status. It is the one place where codes become
// statuses; anything unknown is a 500 so that a new code can never leak as a success.
func statusFor(code string) int {
	switch code {
	case tollgate.EInvalid:
		return http.StatusBadRequest
	case tollgate.ENotFound:
		return http.StatusNotFound
	case tollgate.EUnauthorized:
		return http.StatusUnauthorized
	case codeForbidden:
		return http.StatusForbidden
	case codeMethodNotAllowed:
		return http.StatusMethodNotAllowed
	case codeTimeout:
		return http.StatusRequestTimeout
	case tollgate.EConflict:
		return http.StatusConflict
	case tollgate.ETooLarge:
		return http.StatusRequestEntityTooLarge
	case tollgate.EUnsupported:
		return http.StatusUnprocessableEntity
	case tollgate.EUnavailable:
		return http.StatusServiceUnavailable
	default:
		return http.StatusInternalServerError
	}
}

// ErrorBody is the shape of every 4xx/5xx body: {"error": {"code": "...", "message": "..."}}.
type ErrorBody struct {
	Error ErrorDetail `json:"error"`
}

// ErrorDetail is the inner object of ErrorBody. Message names the field at fault.
type ErrorDetail struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// opaError is the OPA REST API's error shape, used on /v1/data so OPA clients parse our
// errors as they parse OPA's.
type opaError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// errorDetail turns any error into the caller-safe code and message. Internal errors show
// "Internal error"; their detail goes to the log only.
func (s *Server) errorDetail(c *fiber.Ctx, err error) ErrorDetail {
	var te *tollgate.Error
	if errors.As(err, &te) && te.Code != tollgate.EInternal {
		return ErrorDetail{Code: te.Code, Message: te.Message}
	}
	s.log.Error("request failed", "method", c.Method(), "path", c.Path(), "err", err)
	return ErrorDetail{Code: tollgate.EInternal, Message: "Internal error"}
}

// writeError answers with the error shape and the status of its code.
func (s *Server) writeError(c *fiber.Ctx, err error) error {
	d := s.errorDetail(c, err)
	return writeJSON(c, statusFor(d.Code), ErrorBody{Error: d})
}

// errorHandler is fiber's ErrorHandler: routing misses, body-limit and timeout errors raised
// by fiber/fasthttp before a handler runs get the same shape as our own errors.
func (s *Server) errorHandler(notFoundOnly bool) fiber.ErrorHandler {
	return func(c *fiber.Ctx, err error) error {
		var fe *fiber.Error
		if !errors.As(err, &fe) {
			return s.writeError(c, err)
		}
		var d ErrorDetail
		switch fe.Code {
		case fiber.StatusNotFound:
			d = ErrorDetail{Code: tollgate.ENotFound, Message: "path: no route " + c.Method() + " " + quotePath(c.Path())}
		case fiber.StatusMethodNotAllowed:
			if notFoundOnly {
				d = ErrorDetail{Code: tollgate.ENotFound, Message: "path: no route " + c.Method() + " " + quotePath(c.Path())}
			} else {
				d = ErrorDetail{Code: codeMethodNotAllowed, Message: "method: " + c.Method() + " is not allowed on " + quotePath(c.Path())}
			}
		case fiber.StatusRequestEntityTooLarge:
			d = ErrorDetail{Code: tollgate.ETooLarge, Message: "body: exceeds the " + strconv.Itoa(c.App().Config().BodyLimit) + " byte limit"}
		case fiber.StatusRequestHeaderFieldsTooLarge:
			d = ErrorDetail{Code: tollgate.ETooLarge, Message: "headers: too large"}
		case fiber.StatusRequestTimeout:
			d = ErrorDetail{Code: codeTimeout, Message: "body: not received in time"}
		default:
			if fe.Code >= 500 {
				return s.writeError(c, err)
			}
			d = ErrorDetail{Code: tollgate.EInvalid, Message: "request: " + fe.Message}
		}
		status := statusFor(d.Code)
		if isDataPath(c.Path()) {
			return writeJSON(c, status, opaError{Code: opaCode(status), Message: d.Message})
		}
		return writeJSON(c, status, ErrorBody{Error: d})
	}
}

// writeJSON encodes v as the response body.
func writeJSON(c *fiber.Ctx, status int, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	c.Status(status)
	c.Response().Header.SetContentType(fiber.MIMEApplicationJSON)
	c.Response().SetBodyRaw(b)
	return nil
}

// quotePath quotes a request path for a message, bounded so that a hostile path cannot make
// the error large and control characters come out escaped.
func quotePath(p string) string {
	if len(p) > 128 {
		p = p[:128] + "..."
	}
	return strconv.Quote(p)
}

func isDataPath(p string) bool { return strings.HasPrefix(p, "/v1/data/") || p == "/v1/data" }
