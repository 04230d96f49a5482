package api

import (
	"context"
	"fmt"
	"net/url"
	"strconv"

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
	Limits         EffectiveLimits              `json:"effective_limits"`
	Usage          tollgate.Usage               `json:"usage"`
	AddOns         []tollgate.SubscriptionAddOn `json:"add_ons"`
	Revision       uint64                       `json:"revision"`
	PolicyRevision string                       `json:"policy_revision"`
}

// EffectiveLimits are the vendor's limits as the policy computes them: the custom override when
// set, else the tier's; null = unlimited.
type EffectiveLimits struct {
	Orders      *int64 `json:"orders"`
	Products    *int64 `json:"products"`
	TeamMembers *int64 `json:"team_members"`
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

// vendorView assembles the view. Effective limits are the policy's answer
// (Evaluator.EffectiveLimits), never derived here.
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
	lim, err := s.cfg.Policy.EffectiveLimits(ctx, v, now)
	if err != nil {
		return nil, fmt.Errorf("vendor %s: effective limits: %w", sub.VendorID, err)
	}
	view.Limits = EffectiveLimits{Orders: lim.Orders, Products: lim.Products, TeamMembers: lim.TeamMembers}
	return view, nil
}
