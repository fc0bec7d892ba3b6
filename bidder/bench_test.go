package bidder

import (
	"bytes"
	"net/http/httptest"
	"testing"
)

// BenchmarkAuction measures the whole request path (decode, lookup, index
// probes, targeting, caps, pacing, shading, encode) through the handler,
// baseline and with the fixes that change it (gc: pooled buffers and fewer
// allocations; locks: sharded ledger). Compare ns/op and allocs/op:
//
//	go test -run XXX -bench Auction -benchmem ./bidder/
func BenchmarkAuction(b *testing.B) {
	bodies := make([][]byte, 256)
	for i := range bodies {
		bodies[i] = testRequest(i)
	}
	for _, fx := range []Fixes{{}, {GC: true}, {Locks: true}, {GC: true, Locks: true}} {
		b.Run(fx.String(), func(b *testing.B) {
			bd := newTestBidder(b, fx)
			h := bd.Handler()
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; b.Loop(); i++ {
				rec := httptest.NewRecorder()
				req := httptest.NewRequest("POST", "/openrtb2/bid", bytes.NewReader(bodies[i%len(bodies)]))
				h.ServeHTTP(rec, req)
				if rec.Code != 200 && rec.Code != 204 {
					b.Fatalf("status %d: %s", rec.Code, rec.Body)
				}
			}
		})
	}
}

// BenchmarkAuctionParallel is the same under RunParallel, where the
// baseline's global ledger mutex and allocation rate are shared.
func BenchmarkAuctionParallel(b *testing.B) {
	bodies := make([][]byte, 256)
	for i := range bodies {
		bodies[i] = testRequest(i)
	}
	for _, fx := range []Fixes{{}, {GC: true, Locks: true}} {
		b.Run(fx.String(), func(b *testing.B) {
			bd := newTestBidder(b, fx)
			h := bd.Handler()
			before := mutexWaitSeconds()
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				i := 0
				for pb.Next() {
					rec := httptest.NewRecorder()
					h.ServeHTTP(rec, httptest.NewRequest("POST", "/openrtb2/bid", bytes.NewReader(bodies[i%len(bodies)])))
					i++
				}
			})
			b.StopTimer()
			b.ReportMetric((mutexWaitSeconds()-before)*1e9/float64(b.N), "mutexwait-ns/op")
		})
	}
}
