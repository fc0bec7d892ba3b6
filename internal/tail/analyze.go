package tail

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/tailgate-ci/tailgate/bpf"
	"github.com/tailgate-ci/tailgate/bpf/gort"
	"github.com/tailgate-ci/tailgate/internal/flame"
)

// Files and directories Analyze writes (layout: ARTIFACTS.md).
const (
	// ContributorsFile is the full contributor breakdown (AnalysisDoc).
	ContributorsFile = "contributors.json"
	// ProfilesFile is what internal/report reads (report.ProfilesFile):
	// {"contributors": [ContributorSet...], "units": {...}, "labels": {...}}.
	ProfilesFile = "profiles.json"
	// FlameDir holds every diff set (flame.WriteDiffSet).
	FlameDir = "flame"
	// AnalysisSchema is the version of ContributorsFile.
	AnalysisSchema = 1
)

// Profile names of a run's folded stacks (FoldRun). Each collector the
// evidence came from is folded on its own as "kind-<kind>"; ProfileOffCPU
// merges all evidence under a root frame naming the contributor.
const (
	ProfileOnCPU  = "oncpu"
	ProfileOffCPU = "offcpu"
	kindPrefix    = "kind-"
)

// AnalyzeOptions configure Analyze. Zero values mean the defaults.
type AnalyzeOptions struct {
	Options
	// Variant labels the analyzed run ("head" by default); BaseVariant
	// labels Base ("base").
	Variant, BaseVariant string
	// Base, when set, is the base commit's run: its contributors are
	// written too, and head-vs-base diff sets of the slow requests.
	Base *Input
	// BaseSymbolize symbolizes Base's stacks (default: Options.Symbolize).
	BaseSymbolize Symbolizer
}

// Analysis is what Analyze computed and wrote.
type Analysis struct {
	Variant string
	Head    *Classification
	Base    *Classification // nil without a base run
	// Files are the paths written, in order; Skipped says which diff
	// sets were not written and why (an empty side).
	Files   []string
	Skipped []string
}

// AnalysisDoc is ContributorsFile.
type AnalysisDoc struct {
	Schema      int             `json:"schema"`
	Variant     string          `json:"variant"`
	Head        *Classification `json:"head"`
	BaseVariant string          `json:"base_variant,omitempty"`
	Base        *Classification `json:"base,omitempty"`
	// Sets maps each diff set name to its unit and labels.
	Sets    map[string]SetInfo `json:"sets"`
	Skipped []string           `json:"skipped,omitempty"`
}

// SetInfo describes one diff set under FlameDir.
type SetInfo struct {
	Unit   string `json:"unit"`
	ALabel string `json:"a"`
	BLabel string `json:"b"`
}

// Folded are a run's folded stacks of its slow and fast requests, by
// profile name (ProfileOnCPU, ProfileOffCPU, "kind-<kind>").
type Folded struct {
	Slow, Fast map[string]*flame.Profile
}

// FoldRun folds the run's evidence and on-CPU samples into slow and fast
// profiles. Evidence values are its overlap with the request in
// nanoseconds; a Go park's leaf frame is its wait reason in brackets. An
// on-CPU sample of thread T at time t counts for the request whose
// goroutine ran on T at t (from the Go scheduling events), or, with only
// client windows, for every slow or fast window containing t.
func FoldRun(in Input, bds []Breakdown, cl *Classification, c *Classifier) Folded {
	f := Folded{Slow: map[string]*flame.Profile{}, Fast: map[string]*flame.Profile{}}
	folders := map[string]*flame.Folder{}
	get := func(slow bool, name, unit string) *flame.Folder {
		key := "f:" + name
		if slow {
			key = "s:" + name
		}
		fo := folders[key]
		if fo == nil {
			fo = flame.NewFolder(unit)
			folders[key] = fo
		}
		return fo
	}
	for i := range bds {
		b := &bds[i]
		slow, fast := cl.IsSlow(b.Latency), cl.IsFast(b.Latency)
		if !slow && !fast {
			continue
		}
		for j := range b.Evidence {
			ev := &b.Evidence[j]
			if ev.Overlap <= 0 {
				continue
			}
			frames := evidenceFrames(ev, c.Frames(ev))
			name := c.Names()[c.Match(ev)]
			v := float64(ev.Overlap)
			for _, s := range []bool{true, false} {
				if (s && !slow) || (!s && !fast) {
					continue
				}
				get(s, kindPrefix+ev.Kind, "nanoseconds").Add(frames, v)
				get(s, ProfileOffCPU, "nanoseconds").Add(append([]string{name}, frames...), v)
			}
		}
	}
	for _, ref := range attributeSamples(in, bds, cl) {
		frames := c.Frames(&Evidence{Stack: ref.e.UserStack, KernelStack: ref.e.KernelStack})
		if len(frames) == 0 {
			frames = []string{"[no stack]"}
		}
		get(ref.slow, ProfileOnCPU, flame.DefaultUnit).Add(frames, 1)
	}
	for key, fo := range folders {
		p := fo.Profile()
		if key[0] == 's' {
			p.Requests = int64(cl.SlowRequests)
			f.Slow[key[2:]] = p
		} else {
			p.Requests = int64(cl.FastRequests)
			f.Fast[key[2:]] = p
		}
	}
	return f
}

// evidenceFrames is the folded stack of one piece of evidence: its
// frames, and a bracketed leaf naming a Go park's wait reason, or the
// event kind when there is no stack.
func evidenceFrames(ev *Evidence, frames []string) []string {
	out := append([]string(nil), frames...)
	switch {
	case ev.WaitReason != "":
		out = append(out, "["+ev.WaitReason+"]")
	case len(out) == 0:
		out = append(out, "["+ev.Kind+"]")
	}
	return out
}

type sampleRef struct {
	e    *bpf.Event
	slow bool
}

// attributeSamples returns the on-CPU samples that fall in slow or fast
// requests (a sample in both a slow and a fast client window counts once
// for each).
func attributeSamples(in Input, bds []Breakdown, cl *Classification) []sampleRef {
	type win struct {
		lo, hi     int64
		slow, fast bool
	}
	byGoid := map[uint64][]win{}
	var client []win
	for i := range bds {
		b := &bds[i]
		w := win{b.Start, b.End, cl.IsSlow(b.Latency), cl.IsFast(b.Latency)}
		if !w.slow && !w.fast {
			continue
		}
		if b.Server {
			byGoid[b.Goid] = append(byGoid[b.Goid], w)
		} else {
			client = append(client, w)
		}
	}
	// Which goroutine runs on each thread: Run events, request starts and
	// park ends (the goroutine resumed on EndTID).
	thread := map[uint32][]runAt{}
	for i := range in.Go {
		e := &in.Go[i]
		if in.PID != 0 && e.PID != in.PID {
			continue
		}
		switch e.Kind {
		case gort.Run, gort.Request:
			thread[e.TID] = append(thread[e.TID], runAt{int64(e.StartNs), e.Goid})
		case gort.Block:
			thread[e.EndTID] = append(thread[e.EndTID], runAt{int64(e.EndNs), e.Goid})
		}
	}
	for _, l := range thread {
		sort.Slice(l, func(i, j int) bool { return l[i].ts < l[j].ts })
	}
	sort.Slice(client, func(i, j int) bool { return client[i].lo < client[j].lo })
	var maxClient int64
	for _, w := range client {
		maxClient = max(maxClient, w.hi-w.lo)
	}
	var out []sampleRef
	for i := range in.Kernel {
		e := &in.Kernel[i]
		if e.Kind != bpf.OnCPU || (in.PID != 0 && e.PID != in.PID) {
			continue
		}
		ts := int64(e.TsNs)
		if runs := thread[e.TID]; len(runs) > 0 {
			k := sort.Search(len(runs), func(k int) bool { return runs[k].ts > ts }) - 1
			if k >= 0 {
				for _, w := range byGoid[runs[k].goid] {
					if ts >= w.lo && ts < w.hi {
						if w.slow {
							out = append(out, sampleRef{e, true})
						}
						if w.fast {
							out = append(out, sampleRef{e, false})
						}
						break
					}
				}
			}
		}
		if len(client) == 0 {
			continue
		}
		slow, fast := false, false
		for k := sort.Search(len(client), func(k int) bool { return client[k].lo >= ts-maxClient }); k < len(client) && client[k].lo <= ts; k++ {
			if ts < client[k].hi {
				slow = slow || client[k].slow
				fast = fast || client[k].fast
			}
		}
		if slow {
			out = append(out, sampleRef{e, true})
		}
		if fast {
			out = append(out, sampleRef{e, false})
		}
	}
	return out
}

// ReportContributor and ReportSet are the JSON shapes internal/report
// reads from ProfilesFile (report.Contributor, report.ContributorSet).
type ReportContributor struct {
	Name       string          `json:"name"`
	SlowShare  float64         `json:"slow_share"`
	FastShare  float64         `json:"fast_share"`
	Enrichment float64         `json:"enrichment,omitempty"`
	Events     int64           `json:"events"`
	Time       time.Duration   `json:"time_ns"`
	TopStacks  []StackEvidence `json:"top_stacks,omitempty"`
}

// ReportSet is one variant's contributors for internal/report.
type ReportSet struct {
	Variant       string              `json:"variant"`
	SlowThreshold time.Duration       `json:"slow_threshold_ns"`
	FastThreshold time.Duration       `json:"fast_threshold_ns"`
	SlowRequests  int                 `json:"slow_requests"`
	FastRequests  int                 `json:"fast_requests"`
	Contributors  []ReportContributor `json:"contributors"`
}

// ReportSet converts the classification for internal/report: the
// contributors in rank order, those without time in slow or fast requests
// left out. Enrichment is omitted when infinite (report computes +Inf
// from the shares).
func (cl *Classification) ReportSet(variant string) ReportSet {
	rs := ReportSet{Variant: variant, SlowThreshold: cl.SlowThreshold, FastThreshold: cl.FastThreshold,
		SlowRequests: cl.SlowRequests, FastRequests: cl.FastRequests, Contributors: []ReportContributor{}}
	for _, s := range cl.Contributors {
		if s.SlowTime == 0 && s.FastTime == 0 {
			continue
		}
		rc := ReportContributor{Name: s.Name, SlowShare: clamp01(s.SlowShare), FastShare: clamp01(s.FastShare),
			Events: s.SlowEvents, Time: s.SlowTime, TopStacks: s.TopStacks}
		if !math.IsInf(s.Enrichment, 0) {
			rc.Enrichment = s.Enrichment
		}
		rs.Contributors = append(rs.Contributors, rc)
	}
	return rs
}

func clamp01(x float64) float64 { return max(0, min(1, x)) }

// MarshalJSON writes the enrichment of finite, non-zero values only.
func (s ContributorStats) MarshalJSON() ([]byte, error) {
	type plain ContributorStats
	out := struct {
		plain
		Enrichment *float64 `json:"enrichment,omitempty"`
	}{plain: plain(s)}
	if !math.IsInf(s.Enrichment, 0) && !math.IsNaN(s.Enrichment) && s.Enrichment != 0 {
		e := s.Enrichment
		out.Enrichment = &e
	}
	return json.Marshal(out)
}

// Analyze classifies the run (and the base run, when given), and writes
// under dir: ContributorsFile, ProfilesFile and, under FlameDir, the diff
// sets "<profile>-slow-vs-fast" for every folded profile and, with a base,
// "<profile>-head-vs-base" (slow requests of each, per request) for
// ProfileOnCPU and ProfileOffCPU. Every diff set has folded stacks, SVG
// flame graphs, differential graphs in both directions and pprof profiles
// (flame.WriteDiffSet). The layout is documented in ARTIFACTS.md.
func Analyze(dir string, in Input, o AnalyzeOptions) (*Analysis, error) {
	if o.Variant == "" {
		o.Variant = flame.LabelHead
	}
	if o.BaseVariant == "" {
		o.BaseVariant = flame.LabelBase
	}
	if err := os.MkdirAll(filepath.Join(dir, FlameDir), 0o755); err != nil {
		return nil, fmt.Errorf("analyze: %w", err)
	}
	a := &Analysis{Variant: o.Variant}
	doc := AnalysisDoc{Schema: AnalysisSchema, Variant: o.Variant, Sets: map[string]SetInfo{}}

	bds := Join(in)
	c := NewClassifier(o.Contributors, o.Symbolize)
	a.Head = Classify(bds, o.Options)
	head := FoldRun(in, bds, a.Head, c)
	doc.Head = a.Head

	var base Folded
	if o.Base != nil {
		bo := o.Options
		if o.BaseSymbolize != nil {
			bo.Symbolize = o.BaseSymbolize
		}
		bbds := Join(*o.Base)
		a.Base = Classify(bbds, bo)
		base = FoldRun(*o.Base, bbds, a.Base, NewClassifier(bo.Contributors, bo.Symbolize))
		doc.BaseVariant, doc.Base = o.BaseVariant, a.Base
	}

	write := func(s flame.DiffSet) error {
		if s.A == nil || s.B == nil || s.A.Total() <= 0 || s.B.Total() <= 0 || s.A.Requests <= 0 || s.B.Requests <= 0 {
			a.Skipped = append(a.Skipped, fmt.Sprintf("%s: a side has no samples or no requests", s.Name))
			return nil
		}
		paths, _, err := flame.WriteDiffSet(filepath.Join(dir, FlameDir), s)
		if err != nil {
			return err
		}
		a.Files = append(a.Files, paths...)
		doc.Sets[s.Name] = SetInfo{Unit: s.B.UnitOrDefault(), ALabel: s.ALabel, BLabel: s.BLabel}
		return nil
	}
	palette := func(name string) flame.Palette {
		if name == ProfileOnCPU {
			return flame.PaletteOnCPU
		}
		return flame.PaletteOffCPU
	}
	for _, name := range profileNames(head) {
		err := write(flame.DiffSet{Name: name + "-slow-vs-fast", A: head.Fast[name], B: head.Slow[name],
			ALabel: flame.LabelFast, BLabel: flame.LabelSlow, Norm: flame.NormPerRequest, Palette: palette(name),
			Title: o.Variant + " " + strings.TrimPrefix(name, kindPrefix)})
		if err != nil {
			return nil, fmt.Errorf("analyze: %w", err)
		}
	}
	if o.Base != nil {
		for _, name := range []string{ProfileOnCPU, ProfileOffCPU} {
			err := write(flame.DiffSet{Name: name + "-head-vs-base", A: base.Slow[name], B: head.Slow[name],
				ALabel: flame.LabelBase, BLabel: flame.LabelHead, Norm: flame.NormPerRequest, Palette: palette(name),
				Title: "slow requests " + name})
			if err != nil {
				return nil, fmt.Errorf("analyze: %w", err)
			}
		}
	}
	doc.Skipped = a.Skipped

	if err := writeJSON(filepath.Join(dir, ContributorsFile), doc); err != nil {
		return nil, err
	}
	pj := struct {
		Contributors []ReportSet         `json:"contributors"`
		Units        map[string]string   `json:"units"`
		Labels       map[string][]string `json:"labels"`
	}{Units: map[string]string{}, Labels: map[string][]string{}}
	pj.Contributors = append(pj.Contributors, a.Head.ReportSet(o.Variant))
	if a.Base != nil {
		pj.Contributors = append(pj.Contributors, a.Base.ReportSet(o.BaseVariant))
	}
	for name, s := range doc.Sets {
		pj.Units[name] = s.Unit
		pj.Labels[name] = []string{s.ALabel, s.BLabel}
	}
	if err := writeJSON(filepath.Join(dir, ProfilesFile), pj); err != nil {
		return nil, err
	}
	a.Files = append(a.Files, filepath.Join(dir, ContributorsFile), filepath.Join(dir, ProfilesFile))
	return a, nil
}

// profileNames lists the run's profiles in a stable order: on-CPU,
// off-CPU, then the collectors.
func profileNames(f Folded) []string {
	seen := map[string]bool{}
	for n := range f.Slow {
		seen[n] = true
	}
	for n := range f.Fast {
		seen[n] = true
	}
	var kinds []string
	for n := range seen {
		if strings.HasPrefix(n, kindPrefix) {
			kinds = append(kinds, n)
		}
	}
	sort.Strings(kinds)
	var out []string
	for _, n := range []string{ProfileOnCPU, ProfileOffCPU} {
		if seen[n] {
			out = append(out, n)
		}
	}
	return append(out, kinds...)
}

func writeJSON(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Errorf("analyze: encode %s: %w", filepath.Base(path), err)
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("analyze: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return errors.Join(fmt.Errorf("analyze: %w", err), os.Remove(tmp))
	}
	return nil
}
