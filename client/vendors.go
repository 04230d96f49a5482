package client

import (
	"context"
	"net/http"
	"net/url"

	"github.com/tollgate-pdp/tollgate"
)

// AddUsage counts orders the application placed without a consuming check.
func (c *Client) AddUsage(ctx context.Context, inc tollgate.UsageIncrement) (tollgate.UsageResult, error) {
	var res tollgate.UsageResult
	err := c.do(ctx, "add usage", http.MethodPost, "/v1/usage", c.timeout, &inc, &res)
	return res, err
}

// Vendor is GET /v1/vendors/{id}: the whole state the policy sees about one vendor.
type Vendor struct {
	VendorID        string                       `json:"vendor_id"`
	Subscription    tollgate.Subscription        `json:"subscription"`
	Tier            *tollgate.Tier               `json:"tier"`
	Period          string                       `json:"period"`
	OrdersUsed      int64                        `json:"orders_used"`
	EffectiveLimits map[string]any               `json:"effective_limits"` // from the policy; numbers are float64, null = unlimited
	Usage           tollgate.Usage               `json:"usage"`
	AddOns          []tollgate.SubscriptionAddOn `json:"add_ons"`
	Revision        uint64                       `json:"revision"`
	PolicyRevision  string                       `json:"policy_revision"`
}

// Vendor returns one vendor's state; an unknown vendor is an *APIError with Status 404.
func (c *Client) Vendor(ctx context.Context, id string) (Vendor, error) {
	var v Vendor
	err := c.do(ctx, "vendor", http.MethodGet, "/v1/vendors/"+url.PathEscape(id), c.timeout, nil, &v)
	return v, err
}

// Tiers returns the catalog in service.
func (c *Client) Tiers(ctx context.Context) (tollgate.Catalog, error) {
	var cat tollgate.Catalog
	err := c.do(ctx, "tiers", http.MethodGet, "/v1/tiers", c.timeout, nil, &cat)
	return cat, err
}
