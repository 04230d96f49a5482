package api

import (
	"testing"

	"github.com/tollgate-pdp/tollgate"
)

// BenchmarkFastCheckDecode measures the fast /v1/check decoder alone on the common bodies.
func BenchmarkFastCheckDecode(b *testing.B) {
	bodies := [][]byte{
		[]byte(`{"vendor_id":"1","action":"order.create"}`),
		[]byte(`{"vendor_id":42,"action":"order.create","quantity":3,"consume":true,"idempotency_key":"k-1"}`),
		[]byte(`{"vendor_id":"1","action":"product.add","count":12}`),
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		var r tollgate.CheckRequest
		if !decodeCheckFast(bodies[i%len(bodies)], &r) {
			b.Fatal("fast path refused a common body")
		}
		i++
	}
}
