package sync

import (
	"encoding/json"
	"slices"

	"github.com/tollgate-pdp/tollgate"
)

func (h *handler) price(p *Price) error {
	h.rec.ObjectID = p.ID
	apply, _, err := h.order("price:" + p.ID)
	if err != nil {
		return err
	}
	if !apply {
		h.ignored("older than the last applied event of price %s", p.ID)
		return nil
	}
	deleted := h.ev.Type == tollgate.EventPriceDeleted || p.Deleted
	for _, name := range []string{p.Metadata["tier"], p.LookupKey} {
		code, annual := splitTierName(name)
		if code == "" {
			continue
		}
		if _, ok := h.s.base.Lookup(p.Metadata["platform"], code); !ok {
			continue
		}
		field := "monthly"
		if annual || p.Annual() {
			field = "annual"
		}
		return h.catalogID(catalogKey(code, field), p.ID, deleted)
	}
	for _, name := range []string{p.Metadata["addon"], p.Metadata["add_on"]} {
		if name == "" {
			continue
		}
		if slices.ContainsFunc(h.s.base.AddOns, func(a tollgate.AddOn) bool { return a.Code == name }) {
			return h.catalogID(catalogKey("addon:"+name, "price"), p.ID, deleted)
		}
	}
	h.ignored("price %s names no catalog tier or add-on (metadata.tier, lookup_key, metadata.addon)", p.ID)
	return nil
}

func (h *handler) product(p *Product) error {
	h.rec.ObjectID = p.ID
	apply, _, err := h.order("product:" + p.ID)
	if err != nil {
		return err
	}
	if !apply {
		h.ignored("older than the last applied event of product %s", p.ID)
		return nil
	}
	code, _ := splitTierName(p.Metadata["tier"])
	if _, ok := h.s.base.Lookup(p.Metadata["platform"], code); code == "" || !ok {
		h.ignored("product %s names no catalog tier (metadata.tier)", p.ID)
		return nil
	}
	return h.catalogID(catalogKey(code, "product"), p.ID, h.ev.Type == tollgate.EventProductDeleted || p.Deleted)
}

func (h *handler) catalogID(key, id string, deleted bool) error {
	cur, err := get(h.tx, kindCatalog, key)
	if err != nil {
		return err
	}
	h.a.outcome = tollgate.OutcomeProcessed
	switch {
	case deleted && cur == id:
		h.a.catalogChanged = true
		return h.tx.Delete(kindCatalog, key)
	case deleted:
		return nil
	case cur != id:
		h.a.catalogChanged = true
		var keys []string
		if _, err := getJSON(h.tx, kindCatalog, catalogIndex, &keys); err != nil {
			return err
		}
		if !slices.Contains(keys, key) {
			if err := putJSON(h.tx, kindCatalog, catalogIndex, append(keys, key)); err != nil {
				return err
			}
		}
		return put(h.tx, kindCatalog, key, id)
	}
	return nil
}

// catalogIndex lists the catalog keys ever written.
const catalogIndex = "\x00index"

func loadCatalogIDs(tx tollgate.StripeTx) (map[string]string, error) {
	// the catalog is small: tiers × 3 + add-ons; read the keys the base catalog can use
	out := map[string]string{}
	var keys []string
	if err := func() error {
		b, err := tx.Get(kindCatalog, catalogIndex)
		if err != nil || b == nil {
			return err
		}
		return json.Unmarshal(b, &keys)
	}(); err != nil {
		return nil, err
	}
	for _, k := range keys {
		v, err := get(tx, kindCatalog, k)
		if err != nil {
			return nil, err
		}
		if v != "" {
			out[k] = v
		}
	}
	return out, nil
}
