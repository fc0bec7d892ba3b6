package gate_test

import (
	"testing"

	"github.com/tailgate-ci/tailgate/internal/gate"
)

// BenchmarkEvaluate times one evaluation at the last default checkpoint:
// 16 base/head pairs and 4 A/A pairs of 12,000 requests (1,500 req/s × 8 s).
func BenchmarkEvaluate(b *testing.B) {
	m := scaled(bidderLike, 0.99, 20000, 12000)
	rs := run(m, m, gate.DefaultMaxRounds, gate.DefaultAARounds, 12000, 1)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if r := gate.Evaluate(gate.Config{}, rs); r.Verdict == gate.Invalid {
			b.Fatal(r.Reasons)
		}
	}
}

// BenchmarkSimulatedGate times one simulated A/A gate of the acceptance
// test (schedule, synthetic rounds of 2,000 requests, evaluations).
func BenchmarkSimulatedGate(b *testing.B) {
	m := scaled(bidderLike, 0.99, 20000, 2000)
	for i := 0; i < b.N; i++ {
		runGates(gate.Config{}, scenario{"A/A", m, m}, 1, 2000, uint64(i))
	}
}
