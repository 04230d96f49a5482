package gen

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"slices"

	"github.com/tollgate-pdp/tollgate"
)

// Request is one check of the mix, with its body for each server.
type Request struct {
	VendorID string
	Action   string
	Count    *int64
	Quantity *int64
	Feature  string
	// Tollgate is the POST /v1/check body; OPA the POST <EntryPath> body, whose input.request
	// has every key of the request object tollgate's input builder produces.
	Tollgate []byte
	OPA      []byte
}

// Kind labels the request for the mix summary ("order.create", ..., "unknown_vendor").
func (r *Request) Kind() string {
	if len(r.VendorID) > 8 && r.VendorID[:8] == "unknown-" {
		return "unknown_vendor"
	}
	return r.Action
}

type checkBody struct {
	VendorID string `json:"vendor_id"`
	Action   string `json:"action"`
	Count    *int64 `json:"count,omitempty"`
	Quantity *int64 `json:"quantity,omitempty"`
	Feature  string `json:"feature,omitempty"`
}

type opaRequest struct {
	VendorID    string `json:"vendor_id"`
	Action      string `json:"action"`
	Platform    string `json:"platform"`
	Count       *int64 `json:"count"`
	CustomCount *int64 `json:"custom_count"`
	Quantity    *int64 `json:"quantity"`
	Feature     string `json:"feature"`
	Months      *int64 `json:"months"`
	Custom      bool   `json:"custom"`
}

type opaBody struct {
	Input struct {
		Request opaRequest `json:"request"`
	} `json:"input"`
}

// Requests returns n requests over vendors [0, vendors): 50% order.create (a quarter of them
// with a quantity of 2..5), 20% product.add (count 0..250), 20% feature.use (any catalog
// feature), 10% unknown vendor (any of the three actions).
func Requests(seed uint64, n, vendors int, c *tollgate.Catalog) ([]Request, error) {
	r := rand.New(rand.NewPCG(seed, 0x5eed))
	var features []string
	for _, t := range c.Tiers {
		for _, f := range t.Features {
			if !slices.Contains(features, f) {
				features = append(features, f)
			}
		}
	}
	actions := []string{tollgate.ActionOrderCreate, tollgate.ActionProductAdd, tollgate.ActionFeatureUse}
	out := make([]Request, n)
	for i := range out {
		q := &out[i]
		q.VendorID = VendorID(r.IntN(vendors))
		p := r.IntN(100)
		switch {
		case p < 50:
			q.Action = tollgate.ActionOrderCreate
			if r.IntN(4) == 0 {
				v := int64(2 + r.IntN(4))
				q.Quantity = &v
			}
		case p < 70:
			q.Action = tollgate.ActionProductAdd
			v := int64(r.IntN(251))
			q.Count = &v
		case p < 90:
			q.Action = tollgate.ActionFeatureUse
			q.Feature = features[r.IntN(len(features))]
		default:
			q.VendorID = UnknownVendorID(r.IntN(1000))
			q.Action = actions[r.IntN(len(actions))]
			if q.Action == tollgate.ActionFeatureUse {
				q.Feature = features[r.IntN(len(features))]
			}
		}
		var err error
		q.Tollgate, err = json.Marshal(checkBody{VendorID: q.VendorID, Action: q.Action, Count: q.Count,
			Quantity: q.Quantity, Feature: q.Feature})
		if err != nil {
			return nil, fmt.Errorf("encode check body: %w", err)
		}
		var ob opaBody
		ob.Input.Request = opaRequest{VendorID: q.VendorID, Action: q.Action, Count: q.Count,
			Quantity: q.Quantity, Feature: q.Feature}
		q.OPA, err = json.Marshal(ob)
		if err != nil {
			return nil, fmt.Errorf("encode OPA body: %w", err)
		}
	}
	return out, nil
}
