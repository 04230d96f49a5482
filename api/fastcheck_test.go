package api

import (
	"reflect"
	"testing"

	"github.com/tollgate-pdp/tollgate"
)

var fastCheckSeeds = []string{
	`{"vendor_id":"42","action":"order.create"}`,
	` { "vendor_id" : 42 , "action" : "order.create" , "quantity" : 3 , "consume" : true , "idempotency_key" : "k-1" } `,
	`{"vendor_id":-7,"action":"product.add","count":0,"custom_count":12,"months":-1,"custom":false,"explain":true}`,
	`{"vendor_id":"é日本","action":"feature.use","feature":"api_access","platform":"oms"}`,
	`{}`, `{"vendor_id":"1","vendor_id":"2"}`, `{"count":1,"count":2}`,
	`{"vendor_id":007}`, `{"vendor_id":1.0}`, `{"vendor_id":1e3}`, `{"vendor_id":9223372036854775808}`,
	`{"vendor_id":"a\"b"}`, `{"vendor_id":"a\u0041"}`, "{\"vendor_id\":\"a\x01\"}", "{\"vendor_id\":\"\xff\"}",
	`{"Action":"order.create"}`, `{"count":null}`, `{"custom":null}`, `{"count":"1"}`, `{"bogus":1}`,
	`{"vendor_id":"1",}`, `{"vendor_id":"1"} x`, `{"vendor_id":"1"`, `[]`, ``, `null`, `{"count":-0}`,
	`{"count":9223372036854775807}`, `{"count":-9223372036854775808}`, `{"consume":tru}`, `{"count":01}`,
}

// checkDecodersAgree fails when the fast path accepts a body and decodes it differently from
// encoding/json (or accepts one encoding/json refuses).
func checkDecodersAgree(t *testing.T, body []byte) {
	var fast tollgate.CheckRequest
	if !decodeCheckFast(body, &fast) {
		return
	}
	var slow tollgate.CheckRequest
	if err := decodeJSON(body, &slow, decodeOptions{}); err != nil {
		t.Fatalf("fast path accepted %q, encoding/json refused it: %v", body, err)
	}
	if !reflect.DeepEqual(fast, slow) {
		t.Fatalf("decoders disagree on %q:\nfast %+v\nslow %+v", body, fast, slow)
	}
}

func TestFastCheckDecoderAgreesWithEncodingJSON(t *testing.T) {
	accepted := 0
	for _, s := range fastCheckSeeds {
		checkDecodersAgree(t, []byte(s))
		var r tollgate.CheckRequest
		if decodeCheckFast([]byte(s), &r) {
			accepted++
		}
	}
	if accepted < 6 {
		t.Fatalf("fast path took only %d of the seeds", accepted)
	}
}

func FuzzFastCheckDecoder(f *testing.F) {
	for _, s := range fastCheckSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(checkDecodersAgree)
}

// TestDecodeCheckFastAllocations pins what the hot path's decoding costs: one allocation for
// the vendor id, one per integer field, none for the keys or a default action.
func TestDecodeCheckFastAllocations(t *testing.T) {
	for _, tc := range []struct {
		body string
		want float64
	}{
		{`{"vendor_id":"v-1","action":"order.create"}`, 1},
		{`{"vendor_id":"v-1","action":"feature.use","feature":"api_access"}`, 2},
		{`{"vendor_id":"v-1","action":"product.add","count":12}`, 2},
		{`{"vendor_id":"v-1","action":"custom.action"}`, 2},
	} {
		t.Run(tc.body, func(t *testing.T) {
			b := []byte(tc.body)
			var r tollgate.CheckRequest
			got := testing.AllocsPerRun(200, func() {
				r = tollgate.CheckRequest{}
				if !decodeCheckFast(b, &r) {
					t.Fatal("not decoded by the fast path")
				}
			})
			if got != tc.want {
				t.Fatalf("%v allocations, want %v", got, tc.want)
			}
		})
	}
}
