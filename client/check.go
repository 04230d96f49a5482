package client

import (
	"context"
	"net/http"

	"github.com/tollgate-pdp/tollgate"
)

// Check asks whether a vendor may do something now. When the sidecar is unavailable it returns
// the fallback decision (deny by default, allow with WithFailOpen) together with an
// *UnavailableError, so a caller may use the decision and still log the error. A refused
// request (4xx) returns *APIError and a zero (deny) decision.
func (c *Client) Check(ctx context.Context, req tollgate.CheckRequest) (tollgate.Decision, error) {
	var d tollgate.Decision
	err := c.do(ctx, "check", http.MethodPost, "/v1/check", c.checkTimeout, &req, &d)
	if err != nil {
		if _, ok := isUnavailable(err); ok {
			return c.fallback(), err
		}
		return tollgate.Decision{}, err
	}
	return d, nil
}

// BatchResult is one entry of a batch answer: a decision, or Err when evaluating that entry
// failed (the decision is then a deny).
type BatchResult struct {
	tollgate.Decision
	Err *APIError
}

type batchRequest struct {
	Checks []tollgate.CheckRequest `json:"checks"`
}

type batchResponse struct {
	Results []struct {
		tollgate.Decision
		Error *struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	} `json:"results"`
}

// CheckBatch asks several questions in one request; results are in request order. When the
// sidecar is unavailable every result is the fallback decision and the error is an
// *UnavailableError. One invalid entry refuses the whole batch (*APIError naming it).
func (c *Client) CheckBatch(ctx context.Context, reqs []tollgate.CheckRequest) ([]BatchResult, error) {
	var resp batchResponse
	err := c.do(ctx, "check batch", http.MethodPost, "/v1/check/batch", c.checkTimeout, batchRequest{Checks: reqs}, &resp)
	if err != nil {
		if _, ok := isUnavailable(err); ok {
			out := make([]BatchResult, len(reqs))
			for i := range out {
				out[i].Decision = c.fallback()
			}
			return out, err
		}
		return nil, err
	}
	out := make([]BatchResult, len(resp.Results))
	for i, r := range resp.Results {
		out[i].Decision = r.Decision
		if r.Error != nil {
			out[i].Decision = tollgate.Decision{Allow: false, Code: r.Error.Code, Reason: r.Error.Message}
			out[i].Err = &APIError{Status: http.StatusOK, Code: r.Error.Code, Message: r.Error.Message}
		}
	}
	return out, nil
}
