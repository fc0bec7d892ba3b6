package load

import (
	"io"
	"math"
	"testing"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"

	"github.com/tailgate-ci/tailgate/internal/latency"
)

// BenchmarkRecord measures what Run adds per request on top of vegeta:
// mapping stamps to CLOCK_MONOTONIC, the corrected and uncorrected
// histograms, the lag histogram, and streaming the window and the vegeta
// gob record (to io.Discard, so disk speed is not measured).
func BenchmarkRecord(b *testing.B) {
	if !clockSupported {
		b.Skip("CLOCK_MONOTONIC request windows need Linux")
	}
	iv := time.Millisecond
	r := &runner{
		cfg:   Config{MaxLag: time.Millisecond},
		iv:    iv,
		warm:  0,
		end:   math.MaxInt64,
		clock: calibrate(),
		res:   &Result{Hist: latency.New(), Uncorrected: latency.New(), Codes: map[uint16]int64{}},
		pacer: &monoPacer{},
	}
	r.lags = latency.New()
	began := time.Now()
	r.pacer.began.Store(r.clock.mono(began))
	ww, err := NewWindowWriter(io.Discard, WindowHeader{Interval: iv})
	if err != nil {
		b.Fatal(err)
	}
	r.ww = ww
	r.venc = vegeta.NewEncoder(io.Discard)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		res := &vegeta.Result{Seq: uint64(i), Code: 200,
			Timestamp: began.Add(time.Duration(i+1)*iv + 50*time.Microsecond),
			Latency:   time.Duration(200+i%5000) * time.Microsecond}
		if err := r.record(res); err != nil {
			b.Fatal(err)
		}
	}
}
