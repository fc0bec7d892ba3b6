package rules

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tailgate-ci/tailgate/internal/gate"
)

const gateFixesYAML = `
gate:
  slo: 20ms
  p50_tolerance: 0.1
  alpha: 0.01
  min_samples_per_arm: 5000
  min_rounds: 4
  max_rounds: 12
  aa_rounds: 2
  warmup: 1s
  round_duration: 5s
  max_error_rate: 0.002
  max_lag: 2ms
fixes:
  - name: gc
    contributor: gc
    env: {BIDDER_FIXES: gc}
  - name: locks
    contributor: lock
    env: {BIDDER_FIXES: locks}
    args: [--probes, "8"]
  - name: placement
    contributor: numa
    env: {BIDDER_FIXES: placement}
    placement: "{{bin}} launch --user nobody --"
`

func TestParseGateAndFixes(t *testing.T) {
	r, err := Parse("gf.yaml", []byte(good+gateFixesYAML))
	if err != nil {
		t.Fatal(err)
	}
	cfg := r.Gate.Config()
	want := gate.Config{SLO: 20 * time.Millisecond, P50Tolerance: 0.1, Alpha: 0.01, MinSamplesPerArm: 5000,
		MinRounds: 4, MaxRounds: 12, AARounds: 2, Warmup: time.Second, RoundDuration: 5 * time.Second}
	if cfg != want {
		t.Fatalf("config = %+v, want %+v", cfg, want)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	if r.Gate.Lag() != 2*time.Millisecond || r.ErrorRate() != 0.002 {
		t.Fatalf("lag %v, error rate %v", r.Gate.Lag(), r.ErrorRate())
	}
	if got := strings.Join(r.FixNames(), ","); got != "gc,locks,placement" {
		t.Fatalf("fixes = %s", got)
	}
	d, err := r.Combine([]string{"placement", "gc", "locks"})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(d.Env, " ") != "BIDDER_FIXES=gc,locks,placement" || strings.Join(d.Args, " ") != "--probes 8" ||
		strings.Join(d.Placement, " ") != "{{bin}} launch --user nobody --" {
		t.Fatalf("delta = %+v", d)
	}
	if _, err := r.Combine([]string{"nope"}); err == nil || !strings.Contains(err.Error(), `unknown fix "nope"`) {
		t.Fatalf("Combine(nope) = %v", err)
	}
	if d, _ := r.Combine(nil); len(d.Env)+len(d.Args)+len(d.Placement) != 0 {
		t.Fatalf("empty delta = %+v", d)
	}
}

func TestGateDefaults(t *testing.T) {
	r, err := Parse("good.yaml", []byte(good))
	if err != nil {
		t.Fatal(err)
	}
	if r.Gate.Config() != (gate.Config{}) || r.Gate.Lag() != DefaultMaxLag || r.ErrorRate() != r.Load.MaxErrorRate || r.Gate.LagReruns != 0 || r.Gate.MaxLateFraction != 0 {
		t.Fatalf("zero gate section: %+v", r.Gate)
	}
	if d := r.Gate.Config().WithDefaults(); d.SLO != 25*time.Millisecond {
		t.Fatalf("default SLO = %v", d.SLO)
	}
}

func TestBadGateAndFixes(t *testing.T) {
	lines := strings.Count(good, "\n")
	for _, tc := range []struct {
		name, yaml, want string
		line             int // 1-based line within yaml
	}{
		{"negative slo", "gate:\n  slo: -5ms\n", "gate.slo: -5ms is negative", 2},
		{"zero slo", "gate:\n  slo: 0s\n", "gate.slo: must be positive", 2},
		{"alpha one", "gate:\n  alpha: 1\n", "gate.alpha: 1: want a probability in (0,1)", 2},
		{"alpha zero", "gate:\n  alpha: 0\n", "gate.alpha: 0: want a probability in (0,1)", 2},
		{"alpha negative", "gate:\n  alpha: -0.1\n", "gate.alpha", 2},
		{"quantile", "gate:\n  quantile: 99\n", "gate.quantile: 99: want a quantile in (0,1)", 2},
		{"min rounds", "gate:\n  min_rounds: 1\n", "gate.min_rounds: 1: want at least 2", 2},
		{"max < min", "gate:\n  min_rounds: 6\n  max_rounds: 3\n", "gate.max_rounds: 3: must be at least min_rounds", 3},
		{"bootstrap", "gate:\n  bootstrap: 10\n", "gate.bootstrap: 10: want at least 200", 2},
		{"error rate", "gate:\n  max_error_rate: 2\n", "gate.max_error_rate: 2: want a fraction", 2},
		{"unknown gate key", "gate:\n  p99: 25ms\n", "gate.p99: unknown field", 2},
		{"lag reruns", "gate:\n  lag_reruns: -1\n", "gate.lag_reruns: -1: want 0 (no re-runs) or more", 2},
		{"late fraction", "gate:\n  max_late_fraction: 0.05\n", "gate.max_late_fraction: 0.05: want a fraction in [0, 0.01)", 2},
		{"no delta", "fixes:\n  - name: gc\n    contributor: gc\n", `fixes[0]: fix "gc" has no delta`, 2},
		{"unknown contributor", "fixes:\n  - name: gc\n    contributor: garbage\n    env: {A: b}\n", `fixes[0].contributor: unknown contributor "garbage"`, 3},
		{"no contributor", "fixes:\n  - name: gc\n    env: {A: b}\n", "fixes[0].contributor: missing", 2},
		{"bad name", "fixes:\n  - name: Big Fix\n    contributor: gc\n    env: {A: b}\n", "fixes[0].name", 2},
		{"reserved name", "fixes:\n  - name: baseline\n    contributor: gc\n    env: {A: b}\n", "reserved", 2},
		{"duplicate", "fixes:\n  - name: gc\n    contributor: gc\n    env: {A: b}\n  - name: gc\n    contributor: gc\n    env: {A: c}\n", `fixes[1].name: duplicate fix "gc"`, 5},
		{"bad template", "fixes:\n  - name: gc\n    contributor: gc\n    args: [\"{{pid}}\"]\n", "unknown template {{pid}}", 4},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("bad.yaml", []byte(good+tc.yaml))
			if err == nil {
				t.Fatal("no error")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %q does not contain %q", err, tc.want)
			}
			prefix := "bad.yaml:" + itoa(lines+tc.line) + ":"
			if !strings.Contains(err.Error(), prefix) {
				t.Fatalf("error %q does not name %s", err, prefix)
			}
		})
	}
}

func itoa(i int) string { return strconv.Itoa(i) }
