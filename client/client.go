// Package client is a typed Go client for tollgate's decision API. It keeps connections to the
// sidecar alive, bounds each call with a timeout, and lets the caller choose what a check
// answers when the sidecar cannot: fail closed (deny, the default) or fail open (allow).
package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/tollgate-pdp/tollgate"
)

// CodeSidecarUnavailable is the Code of a decision synthesized because the sidecar could not
// answer.
const CodeSidecarUnavailable = "sidecar_unavailable"

// Defaults.
const (
	DefaultCheckTimeout = 250 * time.Millisecond
	DefaultTimeout      = 2 * time.Second
)

// Client calls one tollgate sidecar. It is safe for concurrent use.
type Client struct {
	base         *url.URL
	http         *http.Client
	checkTimeout time.Duration
	timeout      time.Duration
	failOpen     bool
	userAgent    string
}

// Option configures a Client.
type Option func(*Client)

// WithFailOpen makes checks answer allow (Code "sidecar_unavailable") when the sidecar is
// unreachable or answers 5xx. Choose it for features where losing sales is worse than
// over-serving a vendor.
func WithFailOpen() Option { return func(c *Client) { c.failOpen = true } }

// WithFailClosed makes checks answer deny when the sidecar is unavailable (the default).
func WithFailClosed() Option { return func(c *Client) { c.failOpen = false } }

// WithCheckTimeout bounds each Check and CheckBatch call (default 250ms). The caller's context
// deadline applies too, whichever is earlier.
func WithCheckTimeout(d time.Duration) Option { return func(c *Client) { c.checkTimeout = d } }

// WithTimeout bounds every other call (default 2s).
func WithTimeout(d time.Duration) Option { return func(c *Client) { c.timeout = d } }

// WithHTTPClient replaces the HTTP client (and with it the keep-alive transport).
func WithHTTPClient(h *http.Client) Option { return func(c *Client) { c.http = h } }

// WithUserAgent sets the User-Agent header.
func WithUserAgent(ua string) Option { return func(c *Client) { c.userAgent = ua } }

// New returns a client for the decision API at baseURL, e.g. "http://127.0.0.1:8181".
func New(baseURL string, opts ...Option) (*Client, error) {
	u, err := url.Parse(strings.TrimRight(baseURL, "/"))
	if err != nil {
		return nil, fmt.Errorf("tollgate client: base URL: %w", err)
	}
	if u.Scheme != "http" && u.Scheme != "https" || u.Host == "" {
		return nil, fmt.Errorf("tollgate client: base URL %q: must be http(s)://host[:port]", baseURL)
	}
	c := &Client{base: u, checkTimeout: DefaultCheckTimeout, timeout: DefaultTimeout, userAgent: "tollgate-go-client"}
	for _, o := range opts {
		o(c)
	}
	if c.http == nil {
		c.http = &http.Client{Transport: newTransport()}
	}
	return c, nil
}

// newTransport keeps many idle connections to the one sidecar host: every check reuses a
// connection instead of paying a TCP handshake.
func newTransport() *http.Transport {
	return &http.Transport{
		Proxy:               nil, // the sidecar is local; never route it through a proxy
		DialContext:         (&net.Dialer{Timeout: time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:        256,
		MaxIdleConnsPerHost: 256,
		IdleConnTimeout:     50 * time.Second, // below the server's 60s idle timeout
		ForceAttemptHTTP2:   false,
	}
}

// CloseIdleConnections closes idle keep-alive connections.
func (c *Client) CloseIdleConnections() { c.http.CloseIdleConnections() }

// APIError is a 4xx answer: the request was refused and retrying it unchanged will not help.
type APIError struct {
	Status  int
	Code    string
	Message string
}

func (e *APIError) Error() string {
	return fmt.Sprintf("tollgate: %d %s: %s", e.Status, e.Code, e.Message)
}

// UnavailableError says the sidecar could not answer: unreachable, timed out, or 5xx. For
// checks it comes with a synthesized decision (see WithFailOpen).
type UnavailableError struct {
	Op     string
	Status int // 0 when no HTTP answer arrived
	Err    error
}

func (e *UnavailableError) Error() string {
	if e.Status != 0 {
		return fmt.Sprintf("tollgate %s: sidecar unavailable (HTTP %d): %v", e.Op, e.Status, e.Err)
	}
	return fmt.Sprintf("tollgate %s: sidecar unavailable: %v", e.Op, e.Err)
}

func (e *UnavailableError) Unwrap() error { return e.Err }

// errorBody is the API's error shape.
type errorBody struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

// do sends a JSON request and decodes a 2xx answer into out. 4xx become *APIError; transport
// failures and 5xx become *UnavailableError.
func (c *Client) do(ctx context.Context, op, method, path string, timeout time.Duration, in, out any) error {
	if timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return fmt.Errorf("tollgate %s: encode request: %w", op, err)
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base.String()+path, body)
	if err != nil {
		return fmt.Errorf("tollgate %s: %w", op, err)
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", c.userAgent)
	resp, err := c.http.Do(req)
	if err != nil {
		return &UnavailableError{Op: op, Err: err}
	}
	defer resp.Body.Close()
	// Bounded: a misbehaving endpoint cannot make us buffer without limit.
	data, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return &UnavailableError{Op: op, Status: resp.StatusCode, Err: fmt.Errorf("read response: %w", err)}
	}
	if resp.StatusCode >= 500 {
		return &UnavailableError{Op: op, Status: resp.StatusCode, Err: apiError(resp.StatusCode, data)}
	}
	if resp.StatusCode >= 300 {
		return apiError(resp.StatusCode, data)
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("tollgate %s: decode response: %w", op, err)
	}
	return nil
}

func apiError(status int, data []byte) *APIError {
	var eb errorBody
	if err := json.Unmarshal(data, &eb); err != nil || eb.Error.Code == "" {
		return &APIError{Status: status, Code: http.StatusText(status), Message: strings.TrimSpace(string(bytes.ToValidUTF8(data[:min(len(data), 512)], nil)))}
	}
	return &APIError{Status: status, Code: eb.Error.Code, Message: eb.Error.Message}
}

// fallback synthesizes the decision a check answers when the sidecar cannot.
func (c *Client) fallback() tollgate.Decision {
	reason := "Entitlement service unavailable; denied (fail closed)"
	if c.failOpen {
		reason = "Entitlement service unavailable; allowed (fail open)"
	}
	return tollgate.Decision{Allow: c.failOpen, Code: CodeSidecarUnavailable, Reason: reason}
}

// isUnavailable reports whether err means "no answer": the fallback applies.
func isUnavailable(err error) (*UnavailableError, bool) {
	var ue *UnavailableError
	if errors.As(err, &ue) {
		return ue, true
	}
	return nil, false
}
