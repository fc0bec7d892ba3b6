package bidder

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/prebid/openrtb/v20/openrtb2"
)

var (
	fuzzBidderOnce sync.Once
	fuzzBidder     *Bidder
	fuzzBidderErr  error
)

// FuzzDecode feeds arbitrary bodies to the request decoder and, when they
// decode, to the auction: it must never panic, every rejection must be a
// *RequestError, and every accepted request must satisfy the validation
// invariants the auction relies on.
func FuzzDecode(f *testing.F) {
	for i := range 8 {
		f.Add(testRequest(i))
	}
	for _, s := range []string{
		``, `null`, `{}`, `[]`, `{"id":"x","imp":[]}`, `{"id":"x","imp":[{"id":"1"}]}`,
		`{"id":"x","imp":[{"id":"1","banner":{"w":-1,"h":5}}]}`,
		`{"id":"x","imp":[{"id":"1","video":{"mimes":[],"w":0,"h":0}}],"tmax":99999999999}`,
		`{"id":"x","imp":[{"id":"1","native":{"request":""},"bidfloor":1e308}],"device":{"devicetype":99,"geo":{"country":"\u0000"}}}`,
		`{"id":"x","imp":[{"id":"1","banner":{"format":[{"w":1,"h":1},{"w":2,"h":2},{"w":3,"h":3},{"w":4,"h":4}]}}]}`,
		`{"id":"\ud800","imp":[{"id":"1","audio":{"mimes":["a"]}}],"user":{"id":""},"app":{"bundle":"b"}}`,
		`{"id":1}`, `{"id":"x","imp":"no"}`, `{"id":"x","imp":[{"id":"1","banner":{"w":1.5}}]}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		var req openrtb2.BidRequest
		err := DecodeRequest(body, &req)
		if err != nil {
			var re *RequestError
			if !errors.As(err, &re) || re.Msg == "" {
				t.Fatalf("error %v (%T) is not a RequestError", err, err)
			}
			return
		}
		if req.ID == "" || len(req.Imp) == 0 || req.TMax < 0 {
			t.Fatalf("accepted an invalid request: %+v", req)
		}
		if err := SchemaCheck(body); err != nil {
			t.Fatalf("DecodeRequest accepts what the baseline's SchemaCheck rejects: %v", err)
		}
		fuzzBidderOnce.Do(func() {
			fuzzBidder, fuzzBidderErr = New(Config{IndexPath: sharedIndex(t), Users: 1000})
		})
		if fuzzBidderErr != nil {
			t.Fatal(fuzzBidderErr)
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		resp, reason := fuzzBidder.Auction(ctx, &req)
		if resp == nil && reason == NoBidNone {
			t.Fatal("no response and no reason")
		}
		if resp != nil && (resp.ID != req.ID || len(resp.SeatBid) != 1) {
			t.Fatalf("bad response %+v", resp)
		}
	})
}
