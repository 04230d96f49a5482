package api

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"strconv"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/utils"

	"github.com/tollgate-pdp/tollgate"
)

// VendorView is GET /v1/vendors/{id}: the whole state the policy sees about one vendor.
type VendorView struct {
	VendorID       string                       `json:"vendor_id"`
	Subscription   tollgate.Subscription        `json:"subscription"`
	Tier           *tollgate.Tier               `json:"tier"` // the catalog tier; null when the catalog lacks it
	Period         string                       `json:"period"`
	OrdersUsed     int64                        `json:"orders_used"` // in Period
	Limits         map[string]any               `json:"effective_limits"`
	Usage          tollgate.Usage               `json:"usage"`
	AddOns         []tollgate.SubscriptionAddOn `json:"add_ons"`
	Revision       uint64                       `json:"revision"`
	PolicyRevision string                       `json:"policy_revision"`
}

// vendorID reads and validates the {id} path parameter. fiber's values point into the
// request buffer, so the id is copied before it can outlive the request.
func vendorID(c *fiber.Ctx) (string, error) {
	id := utils.CopyString(c.Params("id"))
	if unescaped, err := url.PathUnescape(id); err == nil {
		id = unescaped
	}
	if err := tollgate.ValidateVendorID(id); err != nil {
		return "", err
	}
	return id, nil
}

func (s *Server) handleGetVendor(c *fiber.Ctx) error {
	id, err := vendorID(c)
	if err != nil {
		return s.writeError(c, err)
	}
	v, ok := s.cfg.Store.Vendor(id)
	if !ok {
		return s.writeError(c, notFound(id))
	}
	view, err := s.vendorView(c.UserContext(), v)
	if err != nil {
		return s.writeError(c, err)
	}
	return writeJSON(c, fiber.StatusOK, view)
}

func notFound(id string) error {
	return &tollgate.Error{Code: tollgate.ENotFound, Field: "vendor_id",
		Message: "vendor_id: vendor " + strconv.Quote(id) + " not found"}
}

// vendorView assembles the view. Effective limits come from the policy, never from Go: first
// the policy's own data.tollgate.effective_limits document, else its orders_limit,
// products_limit and team_limit rules, both evaluated on the exact input a decision would see
// (taken from an explained zero-quantity order probe); when the policy does not explain, the
// limits the probe decisions report.
func (s *Server) vendorView(ctx context.Context, v *tollgate.VendorState) (*VendorView, error) {
	now := s.cfg.Checker.Now()
	sub := v.Subscription
	period := tollgate.PeriodKey(&sub, now)
	view := &VendorView{
		VendorID: sub.VendorID, Subscription: sub, Period: period,
		OrdersUsed: v.Usage.OrdersIn(period), Usage: v.Usage, AddOns: sub.AddOns,
		Revision: v.Revision, PolicyRevision: s.cfg.Policy.Revision(),
	}
	if view.AddOns == nil {
		view.AddOns = []tollgate.SubscriptionAddOn{}
	}
	if t, ok := s.cfg.Catalog().Lookup(sub.Platform, sub.Tier); ok {
		tc := *t
		view.Tier = &tc
	}
	limits, err := s.effectiveLimits(ctx, v, period, now)
	if err != nil {
		return nil, fmt.Errorf("vendor %s: effective limits: %w", sub.VendorID, err)
	}
	view.Limits = limits
	return view, nil
}

func (s *Server) effectiveLimits(ctx context.Context, v *tollgate.VendorState, period string, now time.Time) (map[string]any, error) {
	zero := int64(0)
	probe := func(action string, explain bool) (tollgate.Decision, error) {
		req := tollgate.CheckRequest{VendorID: tollgate.VendorID(v.Subscription.VendorID), Action: action,
			Quantity: &zero, Count: &zero, Explain: explain}
		if action != tollgate.ActionOrderCreate {
			req.Quantity = nil
		} else {
			req.Count = nil
		}
		return s.cfg.Policy.Decide(ctx, &tollgate.Facts{Request: &req, Vendor: v, Period: period, Now: now})
	}
	d, err := probe(tollgate.ActionOrderCreate, true)
	if err != nil {
		return nil, err
	}
	if d.Explain != nil && len(d.Explain.Input) > 0 {
		var input any
		dec := json.NewDecoder(bytes.NewReader(d.Explain.Input))
		dec.UseNumber()
		if err := dec.Decode(&input); err != nil {
			return nil, fmt.Errorf("decode explained input: %w", err)
		}
		res, defined, err := s.cfg.Policy.Query(ctx, "tollgate/effective_limits", input)
		if err != nil {
			return nil, err
		}
		if m, ok := res.(map[string]any); defined && ok {
			return m, nil
		}
		out := map[string]any{}
		for name, rule := range map[string]string{"orders": "tollgate/orders_limit",
			"products": "tollgate/products_limit", "team_members": "tollgate/team_limit"} {
			res, defined, err := s.cfg.Policy.Query(ctx, rule, input)
			if err != nil {
				return nil, err
			}
			if defined {
				out[name] = res
			}
		}
		if len(out) > 0 {
			return out, nil
		}
	}
	out := map[string]any{"orders": d.Limit}
	for name, action := range map[string]string{"products": tollgate.ActionProductAdd, "team_members": tollgate.ActionTeamMemberAdd} {
		pd, err := probe(action, false)
		if err != nil {
			return nil, err
		}
		out[name] = pd.Limit
	}
	return out, nil
}
