package sync

import (
	"context"
	"fmt"
	"net/http"
	"time"

	stripe "github.com/stripe/stripe-go/v76"
)

// apiClient talks to the Stripe API (or stripe-mock) through stripe-go's backend, keeping the
// raw JSON of every response so both payload eras decode into this package's types.
type apiClient struct {
	key     string
	backend stripe.Backend
}

func newAPIClient(key, base string) *apiClient {
	cfg := &stripe.BackendConfig{
		HTTPClient:        &http.Client{Timeout: 30 * time.Second},
		MaxNetworkRetries: stripe.Int64(2),
		LeveledLogger:     &stripe.LeveledLogger{Level: stripe.LevelError},
	}
	if base != "" {
		cfg.URL = stripe.String(base)
	}
	return &apiClient{key: key, backend: stripe.GetBackendWithConfig(stripe.APIBackend, cfg)}
}

// rawResponse receives a response and keeps its raw JSON.
type rawResponse struct {
	stripe.APIResource
}

// get fetches one object, e.g. "subscriptions/sub_123", and returns its raw JSON.
func (c *apiClient) get(ctx context.Context, path string, params *stripe.Params) ([]byte, error) {
	if params == nil {
		params = &stripe.Params{}
	}
	params.Context = ctx
	var out rawResponse
	if err := c.backend.Call(http.MethodGet, "/v1/"+path, c.key, params, &out); err != nil {
		return nil, fmt.Errorf("stripe GET /v1/%s: %w", path, err)
	}
	if out.LastResponse == nil {
		return nil, fmt.Errorf("stripe GET /v1/%s: no response", path)
	}
	return out.LastResponse.RawJSON, nil
}
