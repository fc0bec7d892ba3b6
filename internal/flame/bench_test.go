package flame

import (
	"bytes"
	"fmt"
	"io"
	"math/rand"
	"testing"
)

// syntheticSamples returns n stack samples drawn (Zipf-skewed, like real
// profiles where a few stacks dominate) from distinct stacks that look like
// a Go service's: depth 6 to 45, frames from a pool of 3000 qualified
// names, each frame choosing among a handful of callees. Samples share the
// stack slices, so memory stays small; each sample is still folded on its
// own.
func syntheticSamples(n, distinct int, seed int64) (samples [][]string, stacks int) {
	rng := rand.New(rand.NewSource(seed))
	pool := make([]string, 3000)
	pkgs := []string{"runtime", "net/http", "encoding/json", "sync",
		"github.com/tailgate-ci/tailgate/bidder", "github.com/prebid/openrtb/v20/openrtb2", "bufio", "syscall"}
	for i := range pool {
		pool[i] = fmt.Sprintf("%s.(*T%d).method%d", pkgs[i%len(pkgs)], i%97, i)
	}
	roots := []int{0, 1, 2, 3}
	all := make([][]string, distinct)
	for i := range all {
		depth := 6 + rng.Intn(40)
		st := make([]string, 0, depth)
		cur := roots[rng.Intn(len(roots))]
		for d := 0; d < depth; d++ {
			st = append(st, pool[cur])
			// Each function calls one of 6 callees, the first ones more often.
			k := rng.Intn(6) * rng.Intn(2)
			cur = (cur*7919 + k*104729 + 17) % len(pool)
		}
		all[i] = st
	}
	z := rand.NewZipf(rng, 1.1, 4, uint64(distinct-1))
	samples = make([][]string, n)
	ids := map[uint64]bool{}
	for i := range samples {
		id := z.Uint64()
		ids[id] = true
		samples[i] = all[id]
	}
	keys := map[string]bool{}
	for id := range ids {
		keys[JoinStack(all[id])] = true
	}
	return samples, len(keys)
}

// BenchmarkFoldRender1M folds one million stack samples into a profile and
// renders its SVG flame graph: the acceptance figure (<= 5 s) recorded in
// BENCHMARKS.md.
func BenchmarkFoldRender1M(b *testing.B) {
	samples, _ := syntheticSamples(1_000_000, 50_000, 1)
	var svgBytes, stacks int
	for b.Loop() {
		f := NewFolder(DefaultUnit)
		for _, s := range samples {
			f.Add(s, 1)
		}
		p := f.Profile()
		var cw countWriter
		if err := RenderSVG(&cw, p, Options{}); err != nil {
			b.Fatal(err)
		}
		svgBytes, stacks = cw.n, len(p.Stacks)
	}
	b.ReportMetric(float64(stacks), "stacks")
	b.ReportMetric(float64(svgBytes), "svg-bytes")
}

// BenchmarkFold1M is the folding half of BenchmarkFoldRender1M.
func BenchmarkFold1M(b *testing.B) {
	samples, _ := syntheticSamples(1_000_000, 50_000, 1)
	for b.Loop() {
		f := NewFolder(DefaultUnit)
		for _, s := range samples {
			f.Add(s, 1)
		}
		f.Profile()
	}
}

// BenchmarkProfileAdd1M folds with Profile.Add instead of a Folder.
func BenchmarkProfileAdd1M(b *testing.B) {
	samples, _ := syntheticSamples(1_000_000, 50_000, 1)
	for b.Loop() {
		p := New(DefaultUnit)
		for _, s := range samples {
			p.Add(s, 1)
		}
	}
}

// BenchmarkDiffRender renders both directions of a differential graph of
// two 1M-sample profiles.
func BenchmarkDiffRender(b *testing.B) {
	fold := func(seed int64) *Profile {
		samples, _ := syntheticSamples(1_000_000, 50_000, seed)
		p := New(DefaultUnit)
		for _, s := range samples {
			p.Add(s, 1)
		}
		p.Requests = 10_000
		return p
	}
	a, c := fold(1), fold(2)
	for b.Loop() {
		d, err := Diff(a, c, NormPerRequest)
		if err != nil {
			b.Fatal(err)
		}
		for _, dir := range []Direction{BOverA, AOverB} {
			if err := RenderDiffSVG(io.Discard, d, DiffOptions{Direction: dir}); err != nil {
				b.Fatal(err)
			}
		}
	}
}

// BenchmarkParseWriteFolded parses and rewrites the folded file of a
// 1M-sample profile (one line per distinct stack).
func BenchmarkParseWriteFolded(b *testing.B) {
	samples, _ := syntheticSamples(1_000_000, 50_000, 1)
	p := New(DefaultUnit)
	for _, s := range samples {
		p.Add(s, 1)
	}
	var in bytes.Buffer
	if err := WriteFolded(&in, p); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(in.Len()))
	for b.Loop() {
		q, err := ParseFolded(bytes.NewReader(in.Bytes()), "bench")
		if err != nil {
			b.Fatal(err)
		}
		if err := WriteFolded(io.Discard, q); err != nil {
			b.Fatal(err)
		}
	}
}

type countWriter struct{ n int }

func (c *countWriter) Write(p []byte) (int, error) { c.n += len(p); return len(p), nil }

func TestSyntheticSamplesRender(t *testing.T) {
	// The benchmark input in miniature: it must render to a valid SVG.
	samples, distinct := syntheticSamples(20_000, 2_000, 1)
	p := New(DefaultUnit)
	for _, s := range samples {
		p.Add(s, 1)
	}
	if len(p.Stacks) != distinct || p.Samples != 20_000 || p.Total() != 20_000 {
		t.Fatalf("folded %d stacks from %d distinct, %d samples, total %v", len(p.Stacks), distinct, p.Samples, p.Total())
	}
	frames := parseSVG(t, renderT(t, p, Options{}))
	if len(frames) < 100 {
		t.Errorf("only %d frames drawn", len(frames))
	}
}
