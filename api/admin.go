package api

import (
	"encoding/json"
	"errors"
	"maps"
	"slices"

	"github.com/gofiber/fiber/v2"

	"github.com/tollgate-pdp/tollgate"
)

// handlePutVendor answers PUT /v1/vendors/{id}: a whole subscription, strictly decoded and
// validated against the catalog before the store sees it, so a refused write changes nothing.
// The vendor's usage is kept.
func (s *Server) handlePutVendor(c *fiber.Ctx) error {
	id, err := vendorID(c)
	if err != nil {
		return s.writeError(c, err)
	}
	var sub tollgate.Subscription
	if err := decodeBody(c, &sub, decodeOptions{}); err != nil {
		return s.writeError(c, err)
	}
	switch sub.VendorID {
	case "":
		sub.VendorID = id
	case id:
	default:
		return s.writeError(c, tollgate.FieldErrorf("vendor_id", "must equal the vendor id in the path (%q), got %q", id, truncate(sub.VendorID, 64)))
	}
	if sub.AddOns == nil {
		sub.AddOns = []tollgate.SubscriptionAddOn{}
	}
	if err := sub.Validate(s.cfg.Catalog()); err != nil {
		return s.writeError(c, err)
	}
	v, err := s.cfg.Store.PutSubscription(c.UserContext(), &sub)
	if err != nil {
		return s.writeError(c, err)
	}
	return s.writeVendor(c, v)
}

func (s *Server) writeVendor(c *fiber.Ctx, v *tollgate.VendorState) error {
	view, err := s.vendorView(c.UserContext(), v)
	if err != nil {
		return s.writeError(c, err)
	}
	return writeJSON(c, fiber.StatusOK, view)
}

// overridesPatch is a PATCH /v1/vendors/{id}/overrides body: for each field, absent leaves it
// unchanged, null clears it (back to the tier's limit) and a number sets it.
type overridesPatch map[string]json.RawMessage

var overrideFields = [...]string{"custom_orders_limit", "custom_products_limit", "custom_team_limit"}

// apply decodes the patch onto o; errors name the field.
func (p overridesPatch) apply(o *tollgate.Overrides) error {
	// sorted, so that a patch with several unknown fields always names the same one
	for _, name := range slices.Sorted(maps.Keys(p)) {
		known := false
		for _, f := range overrideFields {
			known = known || f == name
		}
		if !known {
			return tollgate.FieldErrorf("body", "unknown field %q", truncate(name, 64))
		}
	}
	targets := map[string]**int64{"custom_orders_limit": &o.CustomOrdersLimit,
		"custom_products_limit": &o.CustomProductsLimit, "custom_team_limit": &o.CustomTeamLimit}
	for _, name := range overrideFields {
		raw, ok := p[name]
		if !ok {
			continue
		}
		var v *int64
		if err := decodeJSON(raw, &v, decodeOptions{root: name}); err != nil {
			var te *tollgate.Error
			if errors.As(err, &te) && te.Field == name {
				return tollgate.FieldErrorf(name, "must be a non-negative integer or null")
			}
			return err
		}
		*targets[name] = v
	}
	return o.Validate()
}

// handlePatchOverrides answers PATCH /v1/vendors/{id}/overrides.
func (s *Server) handlePatchOverrides(c *fiber.Ctx) error {
	id, err := vendorID(c)
	if err != nil {
		return s.writeError(c, err)
	}
	var patch overridesPatch
	if err := decodeBody(c, &patch, decodeOptions{}); err != nil {
		return s.writeError(c, err)
	}
	if patch == nil {
		return s.writeError(c, tollgate.FieldErrorf("body", "must be a JSON object"))
	}
	// Validate before touching the store, so that a bad patch never reaches it; the same
	// function runs again inside UpdateSubscription on the stored copy.
	var probe tollgate.Overrides
	if err := patch.apply(&probe); err != nil {
		return s.writeError(c, err)
	}
	if _, ok := s.cfg.Store.Vendor(id); !ok {
		return s.writeError(c, notFound(id))
	}
	v, err := s.cfg.Store.UpdateSubscription(c.UserContext(), id, func(sub *tollgate.Subscription) error {
		return patch.apply(&sub.Overrides)
	})
	if err != nil {
		return s.writeError(c, err)
	}
	return s.writeVendor(c, v)
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
