// Package report owns every human-facing artifact tailgate produces, all
// built from data: the sticky PR comment (markdown), the single-file HTML
// report with its inline SVG plots, the per-fix experiment notes, the
// cumulative-validation report and the platform-lead write-up (HTML, printed
// to PDF with headless Chromium when it is installed).
//
// The inputs are plain structs: the gate and experiment result documents
// (internal/experiment.Document), the profile evidence (Profiles: contributor
// breakdowns and differential flame graphs) and a soak result. Any of the
// optional parts may be missing; the artifacts then say what is unavailable
// and why instead of failing. No figure in any artifact is hand-written:
// every number is computed from those inputs, and every string that came from
// a binary, a branch or a repository is escaped for the format it lands in.
package report

import (
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/tailgate-ci/tailgate/internal/experiment"
)

// Marker is the hidden sticky-comment marker. It must equal
// internal/ghapi.Marker (report may not import ghapi, the single importer
// of go-github; a test pins the literal).
const Marker = "<!-- tailgate:latency-gate -->"

// MaxCommentBytes is GitHub's limit on a comment body (65,536 characters);
// the comment is kept under it in bytes, which is stricter.
const MaxCommentBytes = 65536

// Input is everything a report set is built from. Gate or Experiment (or
// both) must be set; the rest is optional and degrades to a stated reason.
type Input struct {
	// Gate is a KindGate document (base vs head).
	Gate *experiment.Document
	// Experiment is a KindExperiment document (per-fix attribution).
	Experiment *experiment.Document
	// Profiles is the profile evidence; Profiles.Unavailable says why
	// there is none.
	Profiles Profiles
	// Soak is the soak run of all fixes together; SoakUnavailable says
	// why there is none.
	Soak            *SoakResult
	SoakUnavailable string
	// Fixes describes the declared fixes (from the perf-rules); a fix in
	// the attribution without a description gets a generated hypothesis.
	Fixes []FixInfo
	// ArtifactURL is the base URL the comment's links to artifacts are
	// relative to (e.g. a workflow run's artifact page); "" keeps them
	// relative to the artifacts directory.
	ArtifactURL string
}

// FixInfo is a declared fix.
type FixInfo struct {
	Name string `json:"name"`
	// Contributor is the contributor the fix targets (Contributor.Name).
	Contributor string `json:"contributor,omitempty"`
	// Hypothesis says why the fix should cut the tail.
	Hypothesis string `json:"hypothesis,omitempty"`
}

// Contributor is one class of tail-latency cause in the slow requests, as
// classified by internal/tail with the perf-rules (e.g. "gc", "locks",
// "page-faults", "numa").
type Contributor struct {
	Name string `json:"name"`
	// SlowShare and FastShare are the contributor's fraction (0–1) of the
	// time of the slow and of the fast requests.
	SlowShare float64 `json:"slow_share"`
	FastShare float64 `json:"fast_share"`
	// Enrichment is SlowShare/FastShare; 0 means "compute it from the
	// shares" (JSON has no +Inf).
	Enrichment float64 `json:"enrichment,omitempty"`
	// Events is the number of events charged to slow requests, Time their
	// summed time inside slow requests.
	Events int64         `json:"events"`
	Time   time.Duration `json:"time_ns"`
	// TopStacks are the stacks with the most time, largest first.
	TopStacks []Stack `json:"top_stacks,omitempty"`
}

// Stack is one symbolized stack of evidence, root first.
type Stack struct {
	Frames []string      `json:"frames"`
	Time   time.Duration `json:"time_ns"`
	Count  int64         `json:"count"`
}

// Enrich returns the enrichment, computed from the shares when unset:
// +Inf when the contributor is absent from fast requests only.
func (c Contributor) Enrich() float64 {
	if c.Enrichment != 0 {
		return c.Enrichment
	}
	switch {
	case c.FastShare > 0:
		return c.SlowShare / c.FastShare
	case c.SlowShare > 0:
		return math.Inf(1)
	}
	return 0
}

// ContributorSet is the contributor breakdown of one variant's run
// (Variant is "head", "base", "baseline" or a fix variant's name).
type ContributorSet struct {
	Variant       string        `json:"variant"`
	SlowThreshold time.Duration `json:"slow_threshold_ns"`
	FastThreshold time.Duration `json:"fast_threshold_ns"`
	SlowRequests  int           `json:"slow_requests"`
	FastRequests  int           `json:"fast_requests"`
	Contributors  []Contributor `json:"contributors"`
}

// Profiles is the profile evidence of a run.
type Profiles struct {
	// Unavailable is why there are no profiles (not root, no BTF, ...);
	// "" when there are.
	Unavailable  string           `json:"unavailable,omitempty"`
	Contributors []ContributorSet `json:"contributors,omitempty"`
	Diffs        []FlameDiff      `json:"-"`
	// Graphs are plain flame graphs (SVG paths) to embed.
	Graphs []string `json:"-"`
}

// Set returns the contributor set of the first of the variants that has
// one, or nil.
func (p Profiles) Set(variants ...string) *ContributorSet {
	for _, v := range variants {
		for i := range p.Contributors {
			if p.Contributors[i].Variant == v {
				return &p.Contributors[i]
			}
		}
	}
	return nil
}

// FlameDiff is one differential flame graph: its top changes and the SVG
// files drawn for it (flame.WriteDiffSet).
type FlameDiff struct {
	// Name is the diff set's name ("offcpu-head-vs-base").
	Name           string
	ALabel, BLabel string
	Unit           string
	Grew, Shrank   []FrameChange
	// SVGs are the paths of the set's SVG files, differential first.
	SVGs []string
}

// FrameChange is one function's change between the two sides.
type FrameChange struct {
	Name      string
	A, B      float64 // inclusive value on each side (normalized)
	Delta     float64 // B - A
	Share     float64 // Delta over side A's total (0 when A is empty, or Delta > MaxDiffShare × A's total)
	SelfDelta float64 // exclusive change
}

// SoakResult is a long run of one variant (usually all fixes together),
// cut into fixed windows, to see drift that rounds are too short to show.
type SoakResult struct {
	Variant string        `json:"variant"`
	Window  time.Duration `json:"window_ns"`
	SLO     time.Duration `json:"slo_ns,omitempty"`
	Windows []SoakWindow  `json:"windows"`
}

// SoakWindow is one window of a soak run.
type SoakWindow struct {
	// Start is the window's offset from the start of the soak.
	Start    time.Duration `json:"start_ns"`
	Requests int64         `json:"requests"`
	Errors   int64         `json:"errors"`
	P50      time.Duration `json:"p50_ns"`
	P99      time.Duration `json:"p99_ns"`
	// HeapBytes is the live heap after the window's last GC, RSSBytes the
	// resident set at the window's end, GCCycles the cycles in the window.
	HeapBytes uint64 `json:"heap_bytes,omitempty"`
	RSSBytes  uint64 `json:"rss_bytes,omitempty"`
	GCCycles  uint64 `json:"gc_cycles,omitempty"`
}

// Validate checks the soak result's fields.
func (s *SoakResult) Validate() error {
	var errs []error
	if s.Window <= 0 {
		errs = append(errs, fmt.Errorf("window_ns: must be positive, got %d", s.Window))
	}
	if len(s.Windows) == 0 {
		errs = append(errs, errors.New("windows: none"))
	}
	for i, w := range s.Windows {
		if w.P99 < w.P50 || w.P50 < 0 {
			errs = append(errs, fmt.Errorf("windows[%d]: p99_ns %d below p50_ns %d", i, w.P99, w.P50))
		}
		if i > 0 && w.Start <= s.Windows[i-1].Start {
			errs = append(errs, fmt.Errorf("windows[%d]: start_ns %d not after the previous window", i, w.Start))
		}
	}
	return errors.Join(errs...)
}

// validate checks the input has something to report.
func (in *Input) validate() error {
	if in.Gate == nil && in.Experiment == nil {
		return errors.New("report: no gate or experiment document")
	}
	if in.Gate != nil && in.Gate.Kind != experiment.KindGate {
		return fmt.Errorf("report: gate document has kind %q", in.Gate.Kind)
	}
	if in.Experiment != nil && in.Experiment.Kind != experiment.KindExperiment {
		return fmt.Errorf("report: experiment document has kind %q", in.Experiment.Kind)
	}
	if in.Soak != nil {
		if err := in.Soak.Validate(); err != nil {
			return fmt.Errorf("report: soak: %w", err)
		}
	}
	return nil
}
