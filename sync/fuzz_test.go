package sync

import (
	"context"
	"testing"

	"github.com/tollgate-pdp/tollgate"
)

// FuzzWebhook feeds arbitrary payloads and headers to the receiver. It must never panic, and an
// event whose signature does not verify must never be recorded.
func FuzzWebhook(f *testing.F) {
	e := newEnv(f)
	sub := subObject(f, eraBasil, "sub_F", "cus_F", "active", "price_pro_m", "77", tPeriodStart, tPeriodEnd)
	valid := mustJSON(f, event(f, eraBasil, "evt_fuzz", "customer.subscription.updated", tPeriodStart, sub))
	inv := mustJSON(f, event(f, era2023, "evt_fuzz_inv", "invoice.payment_failed", tPeriodStart,
		invoiceObject(f, era2023, "in_F", "cus_F", "sub_F", "77", "open", 2)))
	f.Add(valid, SignatureHeader(valid, e.now, testSecret))
	f.Add(valid, SignatureHeader(valid, e.now, "whsec_other"))
	f.Add(inv, SignatureHeader(inv, e.now, testSecret))
	f.Add([]byte(`{"id":"evt_x","type":"customer.subscription.updated","created":1,"data":{"object":{"id":"sub","items":{"data":[{"price":"p"}]}}}}`), "t=1,v1=00")
	f.Add([]byte(`{}`), "")
	f.Add([]byte(`not json`), "t=,v1=,v0=")
	f.Fuzz(func(t *testing.T, payload []byte, header string) {
		ev, decErr := DecodeEvent(payload)
		recordedBefore := decErr == nil && recorded(e, ev.ID)
		res, err := e.syncer.Receive(context.Background(), payload, header)
		if e.syncer.Verifier().Verify(payload, header, e.now) != nil {
			if err == nil || tollgate.ErrorCode(err) != tollgate.EUnauthorized || res.Outcome != tollgate.OutcomeRejected {
				t.Fatalf("unverified delivery accepted: %+v %v", res, err)
			}
			if decErr == nil && !recordedBefore && recorded(e, ev.ID) {
				t.Fatalf("unverified event %q recorded", ev.ID)
			}
			return
		}
		// a verified delivery is durably recorded, or refused as undecodable
		if err != nil && tollgate.ErrorCode(err) != tollgate.EInvalid {
			t.Fatalf("verified delivery: %v", err)
		}
		if err == nil && !recorded(e, res.EventID) {
			t.Fatalf("verified event %q acknowledged but not recorded", res.EventID)
		}
	})
}

func recorded(e *env, id string) bool {
	var ok bool
	_ = e.store.ViewStripe(context.Background(), func(tx tollgate.StripeTx) error {
		_, ok, _ = tx.Event(id)
		return nil
	})
	return ok
}
