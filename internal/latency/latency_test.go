package latency

import (
	"bytes"
	"errors"
	"math"
	"strings"
	"testing"
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"
)

// uniform returns a histogram holding 1..n µs once each.
func uniform(t *testing.T, n int) *hdrhistogram.Histogram {
	t.Helper()
	h := New()
	for i := 1; i <= n; i++ {
		if err := Record(h, time.Duration(i)*time.Microsecond); err != nil {
			t.Fatal(err)
		}
	}
	return h
}

func TestRecordClamps(t *testing.T) {
	tests := []struct {
		name string
		d    time.Duration
		want int64 // µs actually recorded
	}{
		{"negative", -time.Second, MinValue},
		{"zero", 0, MinValue},
		{"sub-microsecond rounds up to min", 400 * time.Nanosecond, MinValue},
		{"rounds down", 1400 * time.Nanosecond, 1},
		{"rounds up", 1600 * time.Nanosecond, 2},
		{"exact", 25 * time.Millisecond, 25_000},
		{"max", 60 * time.Second, MaxValue},
		{"above max clamps", 90 * time.Second, MaxValue},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Micros(tt.d); got != tt.want {
				t.Errorf("Micros(%v) = %d, want %d", tt.d, got, tt.want)
			}
			h := New()
			if err := Record(h, tt.d); err != nil {
				t.Fatal(err)
			}
			if h.TotalCount() != 1 {
				t.Fatalf("count = %d, want 1: a count was lost", h.TotalCount())
			}
			if !h.ValuesAreEquivalent(h.Max(), tt.want) {
				t.Errorf("recorded %d, want equivalent of %d", h.Max(), tt.want)
			}
		})
	}
}

func TestQuantile(t *testing.T) {
	h := uniform(t, 10_000)
	tests := []struct {
		q    float64
		want int64 // µs, before HDR rounding
	}{
		{0, 1},
		{-0.5, 1},
		{math.NaN(), 1},
		{0.5, 5_000},
		{0.9, 9_000},
		{0.99, 9_900},
		{0.999, 9_990},
		{1, 10_000},
		{7, 10_000},
	}
	for _, tt := range tests {
		got := Quantile(h, tt.q)
		wantD := time.Duration(tt.want) * time.Microsecond
		// 3 significant digits: within 0.1 % (HDR returns the highest
		// equivalent value, so never below).
		if got < wantD || float64(got-wantD) > 0.001*float64(wantD)+float64(time.Microsecond) {
			t.Errorf("Quantile(%v) = %v, want %v within 0.1%%", tt.q, got, wantD)
		}
	}
	// The trap this wrapper exists for: hdrhistogram reads 0.99 as p0.99.
	if raw := time.Duration(h.ValueAtQuantile(0.99)) * time.Microsecond; raw == Quantile(h, 0.99) {
		t.Errorf("ValueAtQuantile(0.99) = Quantile(h, 0.99) = %v: the 0-100 scale is not handled", raw)
	}
	if Quantile(New(), 0.99) != 0 || Max(New()) != 0 {
		t.Error("empty histogram: want 0")
	}
}

func TestMerge(t *testing.T) {
	tests := []struct {
		name    string
		dst     func() *hdrhistogram.Histogram
		values  []int64
		wantErr bool
		wantN   int64
	}{
		{"same geometry", New, []int64{1, 500, 60_000_000}, false, 3},
		{"empty source", New, nil, false, 0},
		{"narrow destination drops", func() *hdrhistogram.Histogram { return hdrhistogram.New(1, 1000, 3) },
			[]int64{10, 5_000_000}, true, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := New()
			for _, v := range tt.values {
				if err := src.RecordValue(v); err != nil {
					t.Fatal(err)
				}
			}
			dst := tt.dst()
			err := Merge(dst, src)
			if (err != nil) != tt.wantErr {
				t.Fatalf("Merge err = %v, wantErr %v", err, tt.wantErr)
			}
			if tt.wantErr && !errors.Is(err, ErrDropped) {
				t.Errorf("err = %v, want ErrDropped", err)
			}
			if dst.TotalCount() != tt.wantN {
				t.Errorf("dst count = %d, want %d", dst.TotalCount(), tt.wantN)
			}
		})
	}
}

func TestEncodeDecode(t *testing.T) {
	h := uniform(t, 5000)
	_ = Record(h, 42*time.Second)
	s, err := Encode(h)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(s, "HISTF") { // base64 of the V2 compressed cookie 0x1c849314
		t.Errorf("encoding %q... does not start with the V2 compressed cookie", s[:10])
	}
	got, err := Decode(s)
	if err != nil {
		t.Fatal(err)
	}
	if !got.Equals(h) {
		t.Error("decoded histogram differs from the original")
	}
	for _, bad := range []string{"", "!!!not base64", "AAAA", "HISTFAAAAEV42pNpmSz"} {
		if _, err := Decode(bad); err == nil {
			t.Errorf("Decode(%q) succeeded, want an error", bad)
		}
	}
}

func TestHlogRoundTrip(t *testing.T) {
	start := time.Date(2026, 11, 26, 1, 2, 3, 456_000_000, time.UTC)
	var buf bytes.Buffer
	w, err := NewHlogWriter(&buf, start, "tailgate test\nsecond line")
	if err != nil {
		t.Fatal(err)
	}
	type interval struct {
		tag string
		n   int
	}
	ivs := []interval{{"base", 100}, {"head", 2000}, {"", 7}}
	var want []*hdrhistogram.Histogram
	for i, iv := range ivs {
		h := uniform(t, iv.n)
		s := start.Add(time.Duration(i) * 10 * time.Second)
		if err := w.WriteInterval(h, s, s.Add(10*time.Second), iv.tag); err != nil {
			t.Fatal(err)
		}
		want = append(want, h)
	}
	text := buf.String()
	for _, line := range []string{"#[Histogram log format version 1.3]", "#[StartTime: 1795", "#[BaseTime: 1795", `"StartTimestamp","Interval_Length"`, "Tag=base,0.456000,10.000000,0.100000,HISTF"} {
		if !strings.Contains(text, line) {
			t.Errorf("log lacks %q:\n%s", line, text)
		}
	}
	got, err := ReadHlog(strings.NewReader(text))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(ivs) {
		t.Fatalf("read %d intervals, want %d", len(got), len(ivs))
	}
	for i, h := range got {
		if h.Tag() != ivs[i].tag {
			t.Errorf("interval %d tag = %q, want %q", i, h.Tag(), ivs[i].tag)
		}
		if !h.Equals(want[i]) {
			t.Errorf("interval %d histogram differs after the round trip", i)
		}
		wantStart := start.Add(time.Duration(i) * 10 * time.Second).UnixMilli()
		if d := h.StartTimeMs() - wantStart; d < -1 || d > 1 {
			t.Errorf("interval %d start = %d ms, want %d", i, h.StartTimeMs(), wantStart)
		}
	}
	if err := w.WriteInterval(New(), start, start, "a,b"); err == nil {
		t.Error("tag with a comma accepted")
	}
}

func TestBinomialRanks(t *testing.T) {
	// Expected ranks computed with exact integer arithmetic (Python
	// fractions over comb(n,k)·q^k·(1-q)^(n-k)), and the classical
	// tables for the median (n=20: X(6)..X(15); n=100: X(40)..X(61)).
	tests := []struct {
		n       int64
		q, conf float64
		lo, hi  int64
		tooFew  bool
	}{
		{n: 299, q: 0.99, conf: 0.95, lo: 293, hi: 299},
		{n: 298, q: 0.99, conf: 0.95, tooFew: true}, // 0.99^298 = 0.0500 > 0.05
		{n: 0, q: 0.99, conf: 0.95, tooFew: true},
		{n: 20, q: 0.5, conf: 0.975, lo: 6, hi: 15},
		{n: 100, q: 0.5, conf: 0.975, lo: 40, hi: 61},
		{n: 1000, q: 0.99, conf: 0.95, lo: 985, hi: 996},
		{n: 1000, q: 0.999, conf: 0.95, tooFew: true},
		{n: 2995, q: 0.999, conf: 0.95, lo: 2989, hi: 2995},
		{n: 10000, q: 0.99, conf: 0.975, lo: 9880, hi: 9920}, // p98.8–p99.2
	}
	for _, tt := range tests {
		lo, hi, err := BinomialRanks(tt.n, tt.q, tt.conf)
		if tt.tooFew {
			if !errors.Is(err, ErrTooFewSamples) {
				t.Errorf("BinomialRanks(%d, %v, %v) err = %v, want ErrTooFewSamples", tt.n, tt.q, tt.conf, err)
			}
			continue
		}
		if err != nil {
			t.Errorf("BinomialRanks(%d, %v, %v): %v", tt.n, tt.q, tt.conf, err)
			continue
		}
		if lo != tt.lo || hi != tt.hi {
			t.Errorf("BinomialRanks(%d, %v, %v) = (%d, %d), want (%d, %d)", tt.n, tt.q, tt.conf, lo, hi, tt.lo, tt.hi)
		}
	}
}

func TestBinomialRanksLargeN(t *testing.T) {
	// n = 1e6 must neither underflow (0.99^1e6) nor take O(n) lgamma calls
	// per bound; the ranks sit about 1.645 sd = 1.645·√9900 ≈ 164 from the
	// mean 990000.
	lo, hi, err := BinomialRanks(1_000_000, 0.99, 0.95)
	if err != nil {
		t.Fatal(err)
	}
	if lo < 989_830 || lo > 989_840 || hi < 990_160 || hi > 990_170 {
		t.Errorf("ranks = (%d, %d), want about (989836, 990164)", lo, hi)
	}
}

func TestQuantileBounds(t *testing.T) {
	h := uniform(t, 1000) // X(r) = r µs exactly (below 2048 µs HDR is exact)
	b, err := QuantileBounds(h, 0.99, 0.95)
	if err != nil {
		t.Fatal(err)
	}
	want := Bounds{Q: 0.99, N: 1000, LoRank: 985, HiRank: 996, Lo: 985 * time.Microsecond, Hi: 996 * time.Microsecond, Conf: 0.95}
	if b != want {
		t.Errorf("bounds = %+v, want %+v", b, want)
	}

	// Above 2048 µs buckets are wider: Lo takes the lowest and Hi the
	// highest equivalent value, so rounding never narrows the interval.
	h2 := New()
	for i := 0; i < 1000; i++ {
		_ = h2.RecordValue(int64(100_000 + i*10))
	}
	b2, err := QuantileBounds(h2, 0.99, 0.95)
	if err != nil {
		t.Fatal(err)
	}
	xlo, xhi := int64(100_000+(985-1)*10), int64(100_000+(996-1)*10)
	if us := b2.Lo.Microseconds(); us > xlo || !h2.ValuesAreEquivalent(us, xlo) {
		t.Errorf("Lo = %d µs, want the lowest value equivalent to %d", us, xlo)
	}
	if us := b2.Hi.Microseconds(); us < xhi || !h2.ValuesAreEquivalent(us, xhi) {
		t.Errorf("Hi = %d µs, want the highest value equivalent to %d", us, xhi)
	}

	bad := []struct {
		name    string
		h       *hdrhistogram.Histogram
		q, conf float64
		tooFew  bool
	}{
		{"q=0", h, 0, 0.95, false},
		{"q=1", h, 1, 0.95, false},
		{"conf=1", h, 0.99, 1, false},
		{"conf=0.3", h, 0.99, 0.3, false},
		{"n=298", uniform(t, 298), 0.99, 0.95, true},
		{"empty", New(), 0.5, 0.95, true},
	}
	for _, tt := range bad {
		_, err := QuantileBounds(tt.h, tt.q, tt.conf)
		if err == nil {
			t.Errorf("%s: no error", tt.name)
		} else if errors.Is(err, ErrTooFewSamples) != tt.tooFew {
			t.Errorf("%s: err = %v, ErrTooFewSamples want %v", tt.name, err, tt.tooFew)
		}
	}
}

func TestSpectrum(t *testing.T) {
	if Spectrum(New()) != nil {
		t.Error("empty histogram has a spectrum")
	}
	h := uniform(t, 10_000)
	sp := Spectrum(h)
	if len(sp) < 20 {
		t.Fatalf("spectrum has %d points, want a dense tail", len(sp))
	}
	for i := 1; i < len(sp); i++ {
		if sp[i].Percentile < sp[i-1].Percentile || sp[i].Value < sp[i-1].Value {
			t.Fatalf("spectrum not monotone at %d: %+v after %+v", i, sp[i], sp[i-1])
		}
	}
	last := sp[len(sp)-1]
	if last.Percentile != 100 || last.Value != Max(h) {
		t.Errorf("last point = %+v, want 100%% at max %v", last, Max(h))
	}
	// Points at p99 and beyond exist (ticks get denser towards the tail).
	var tail int
	for _, p := range sp {
		if p.Percentile >= 99 && p.Percentile < 100 {
			tail++
		}
	}
	if tail < 5 {
		t.Errorf("%d points in [p99, p100), want >= 5", tail)
	}
}
