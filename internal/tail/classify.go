package tail

import (
	"fmt"
	"math"
	"sort"
	"strings"
	"time"

	"github.com/tailgate-ci/tailgate/internal/rules"
)

// Contributor classification: the join (Join) splits each request's time
// into components; the perf-rules contributors (rules.Contributor) say
// which tail contributor (gc, lock, pagefault, numa, sched, io, cpu,
// other) each piece of evidence and each component's remaining time
// belongs to. Slow requests are compared with fast ones per contributor.

// DefaultTopContributors and DefaultTopStacks are how many contributors
// Classification.Top names and how many stacks each keeps as evidence.
const (
	DefaultTopContributors = 4
	DefaultTopStacks       = 3
)

// OtherContributor receives time no contributor rule owns.
const OtherContributor = "other"

// Symbolizer turns an event's user and kernel stacks (innermost first, as
// the collectors record them) into frame names, ROOT FIRST (flame-graph
// order). Frame regexps of the rules are matched against these names.
type Symbolizer func(user, kernel []uint64) []string

// HexFrames is the Symbolizer used when none is given: "0x<pc>" per
// address, kernel frames suffixed "_[k]".
func HexFrames(user, kernel []uint64) []string {
	out := make([]string, 0, len(user)+len(kernel))
	for i := len(user) - 1; i >= 0; i-- {
		out = append(out, fmt.Sprintf("0x%x", user[i]))
	}
	for i := len(kernel) - 1; i >= 0; i-- {
		out = append(out, fmt.Sprintf("0x%x_[k]", kernel[i]))
	}
	return out
}

// Classifier assigns a request's time and evidence to contributors. It
// caches symbolized stacks; it is not safe for concurrent use.
type Classifier struct {
	rules []rules.Contributor
	names []string
	owner [NumComponents]int
	sym   Symbolizer
	cache map[string][]string
}

// NewClassifier returns a classifier for the contributor rules (nil or
// empty: rules.DefaultContributors). A component no rule owns goes to
// OtherContributor, which is added when the rules lack it.
func NewClassifier(cs rules.Contributors, sym Symbolizer) *Classifier {
	if len(cs) == 0 {
		cs = rules.DefaultContributors()
	}
	if sym == nil {
		sym = HexFrames
	}
	c := &Classifier{rules: cs, sym: sym, cache: map[string][]string{}}
	other := -1
	for i, r := range cs {
		c.names = append(c.names, r.Name)
		if r.Name == OtherContributor {
			other = i
		}
	}
	if other < 0 {
		other = len(c.names)
		c.names = append(c.names, OtherContributor)
	}
	for comp := Component(0); comp < NumComponents; comp++ {
		c.owner[comp] = other
	found:
		for i, r := range cs {
			for _, o := range r.Owns {
				if o == comp.String() {
					c.owner[comp] = i
					break found
				}
			}
		}
	}
	return c
}

// Names returns the contributor names, in rule order (indexes of
// RequestContributors.Time).
func (c *Classifier) Names() []string { return c.names }

// Frames returns the evidence's symbolized stack, root first (cached).
func (c *Classifier) Frames(ev *Evidence) []string {
	k := stackKey(ev.Stack) + "|" + stackKey(ev.KernelStack)
	if f, ok := c.cache[k]; ok {
		return f
	}
	f := c.sym(ev.Stack, ev.KernelStack)
	c.cache[k] = f
	return f
}

// Match returns the index of the contributor the evidence belongs to: the
// first rule that matches it, else the owner of its component.
func (c *Classifier) Match(ev *Evidence) int {
	frames := func() []string { return c.Frames(ev) }
	for i := range c.rules {
		if c.rules[i].MatchesEvidence(ev.Kind, ev.WaitReason, ev.Component.String(), ev.Overlap, frames) {
			return i
		}
	}
	if ev.Component < NumComponents {
		return c.owner[ev.Component]
	}
	return c.owner[Unattributed]
}

// RequestContributors is one request's time split into contributors.
type RequestContributors struct {
	Seq     uint64        `json:"seq"`
	Latency time.Duration `json:"latency_ns"`
	// Time is indexed like Classifier.Names; the sum is the breakdown's
	// window.
	Time []time.Duration `json:"time_ns"`
	// Evidence[i] is the contributor index of the breakdown's Evidence[i].
	Evidence []int `json:"-"`
}

// Request splits b's time into contributors. For each component, the
// part its evidence explains (at most the component's time) is shared
// among the contributors the evidence matched, in proportion to their
// overlaps; the rest goes to the component's owner.
func (c *Classifier) Request(b *Breakdown) RequestContributors {
	rc := RequestContributors{Seq: b.Seq, Latency: b.Latency, Time: make([]time.Duration, len(c.names)), Evidence: make([]int, len(b.Evidence))}
	var covered [NumComponents]time.Duration
	matched := make([][NumComponents]time.Duration, len(c.names))
	for i := range b.Evidence {
		ev := &b.Evidence[i]
		k := c.Match(ev)
		rc.Evidence[i] = k
		if ev.Component < NumComponents {
			covered[ev.Component] += ev.Overlap
			matched[k][ev.Component] += ev.Overlap
		}
	}
	for comp := Component(0); comp < NumComponents; comp++ {
		t := b.Time[comp]
		if t <= 0 {
			continue
		}
		s := covered[comp]
		explained := min(s, t)
		var given time.Duration
		if s > 0 {
			for k := range matched {
				if m := matched[k][comp]; m > 0 {
					d := time.Duration(math.Round(float64(explained) * float64(m) / float64(s)))
					rc.Time[k] += d
					given += d
				}
			}
		}
		rc.Time[c.owner[comp]] += t - given
	}
	return rc
}

// Options configure Classify. The zero value means: the default rules,
// slow = at or above the run's p99, fast = at or below its p50, hex
// stacks, top 4 contributors with 3 stacks each.
type Options struct {
	Contributors rules.Contributors
	Symbolize    Symbolizer
	// SLO, when positive, makes slow the requests with a latency above it
	// instead of those at or above the SlowQuantile.
	SLO          time.Duration
	SlowQuantile float64 // default DefaultSlowQuantile (0.99)
	FastQuantile float64 // default DefaultFastQuantile (0.50)
	Top          int     // default DefaultTopContributors
	TopStacks    int     // default DefaultTopStacks
}

// StackEvidence is one symbolized stack of a contributor's evidence in
// slow requests (the report's Stack).
type StackEvidence struct {
	Frames []string      `json:"frames"` // root first
	Time   time.Duration `json:"time_ns"`
	Count  int64         `json:"count"`
}

// ContributorStats is one contributor over the slow and fast requests.
type ContributorStats struct {
	Name        string `json:"name"`
	Description string `json:"description,omitempty"`
	// SlowTime and FastTime sum the contributor's time over the slow and
	// the fast requests; SlowShare and FastShare divide them by the
	// groups' total window time.
	SlowTime  time.Duration `json:"slow_time_ns"`
	FastTime  time.Duration `json:"fast_time_ns"`
	SlowShare float64       `json:"slow_share"`
	FastShare float64       `json:"fast_share"`
	// SlowPerRequest and FastPerRequest are the mean times per request;
	// Excess = SlowPerRequest - FastPerRequest is what the contributor
	// adds to a slow request over a fast one: the ranking key.
	SlowPerRequest time.Duration `json:"slow_per_request_ns"`
	FastPerRequest time.Duration `json:"fast_per_request_ns"`
	Excess         time.Duration `json:"excess_per_request_ns"`
	// Enrichment is SlowShare / FastShare (tail enrichment). In JSON it
	// is omitted when infinite (absent from fast requests) or zero.
	Enrichment float64 `json:"-"`
	// SlowEvents and FastEvents count the evidence events matched to the
	// contributor in slow and fast requests; SlowRequestsWith counts the
	// slow requests where it has any time.
	SlowEvents       int64 `json:"slow_events"`
	FastEvents       int64 `json:"fast_events"`
	SlowRequestsWith int   `json:"slow_requests_with"`
	// TopStacks are the stacks with the most evidence time in slow
	// requests, largest first.
	TopStacks []StackEvidence `json:"top_stacks,omitempty"`
}

// Classification is the contributor breakdown of a run.
type Classification struct {
	// SlowBy is "p99" (slow = latency at or above SlowThreshold, the
	// SlowQuantile) or "slo" (slow = latency above the SLO).
	SlowBy        string        `json:"slow_by"`
	SlowQuantile  float64       `json:"slow_quantile"`
	FastQuantile  float64       `json:"fast_quantile"`
	SlowThreshold time.Duration `json:"slow_threshold_ns"`
	FastThreshold time.Duration `json:"fast_threshold_ns"`
	Requests      int           `json:"requests"`
	SlowRequests  int           `json:"slow_requests"`
	FastRequests  int           `json:"fast_requests"`
	// ServerWindows counts slow requests split on their server-side
	// (ServeHTTP) window; the others only on the client's.
	SlowServerWindows int `json:"slow_server_windows"`
	// Names are the contributors in rule order (the index of the
	// per-request Time slices).
	Names []string `json:"names"`
	// Contributors are all contributors, ranked: largest Excess first
	// (then slow time, then rule order).
	Contributors []ContributorStats `json:"contributors"`
	// Top names the first Options.Top contributors with time in slow
	// requests, in rank order.
	Top []string `json:"top"`
	// Slow and Fast are the per-request splits.
	Slow []RequestContributors `json:"slow"`
	Fast []RequestContributors `json:"fast"`
}

// IsSlow and IsFast say which group a latency belongs to.
func (cl *Classification) IsSlow(lat time.Duration) bool {
	if cl.SlowBy == "slo" {
		return lat > cl.SlowThreshold
	}
	return cl.Requests > 0 && lat >= cl.SlowThreshold
}

// IsFast reports whether a latency is at or below the fast threshold.
func (cl *Classification) IsFast(lat time.Duration) bool {
	return cl.Requests > 0 && lat <= cl.FastThreshold
}

// Thresholds returns the classification's thresholds for the breakdowns
// (no per-request work): used by Classify and by callers that fold only.
func Thresholds(bds []Breakdown, o Options) *Classification {
	o = o.withDefaults()
	cl := &Classification{SlowBy: "p99", SlowQuantile: o.SlowQuantile, FastQuantile: o.FastQuantile, Requests: len(bds)}
	if len(bds) == 0 {
		return cl
	}
	lat := make([]time.Duration, len(bds))
	for i := range bds {
		lat[i] = bds[i].Latency
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	cl.SlowThreshold = nearestRank(lat, o.SlowQuantile)
	cl.FastThreshold = nearestRank(lat, o.FastQuantile)
	if o.SLO > 0 {
		cl.SlowBy, cl.SlowThreshold = "slo", o.SLO
	}
	return cl
}

func (o Options) withDefaults() Options {
	if o.SlowQuantile <= 0 {
		o.SlowQuantile = DefaultSlowQuantile
	}
	if o.FastQuantile <= 0 {
		o.FastQuantile = DefaultFastQuantile
	}
	if o.Top <= 0 {
		o.Top = DefaultTopContributors
	}
	if o.TopStacks <= 0 {
		o.TopStacks = DefaultTopStacks
	}
	return o
}

// Classify splits the breakdowns (Join's output) into slow and fast
// requests and each request's time into contributors, and aggregates.
func Classify(bds []Breakdown, o Options) *Classification {
	o = o.withDefaults()
	c := NewClassifier(o.Contributors, o.Symbolize)
	cl := Thresholds(bds, o)
	cl.Names = c.Names()
	n := len(cl.Names)
	slowT, fastT := make([]time.Duration, n), make([]time.Duration, n)
	slowE, fastE := make([]int64, n), make([]int64, n)
	with := make([]int, n)
	var slowWin, fastWin time.Duration
	type skey struct {
		k   int
		key string
	}
	stacks := map[skey]*StackEvidence{}
	for i := range bds {
		b := &bds[i]
		slow, fast := cl.IsSlow(b.Latency), cl.IsFast(b.Latency)
		if !slow && !fast {
			continue
		}
		rc := c.Request(b)
		if fast {
			cl.FastRequests++
			cl.Fast = append(cl.Fast, rc)
			fastWin += b.Window()
			for k, d := range rc.Time {
				fastT[k] += d
			}
			for _, k := range rc.Evidence {
				fastE[k]++
			}
		}
		if !slow {
			continue
		}
		cl.SlowRequests++
		if b.Server {
			cl.SlowServerWindows++
		}
		cl.Slow = append(cl.Slow, rc)
		slowWin += b.Window()
		for k, d := range rc.Time {
			slowT[k] += d
			if d > 0 {
				with[k]++
			}
		}
		for j, k := range rc.Evidence {
			slowE[k]++
			ev := &b.Evidence[j]
			frames := c.Frames(ev)
			sk := skey{k, strings.Join(frames, ";")}
			st := stacks[sk]
			if st == nil {
				st = &StackEvidence{Frames: frames}
				stacks[sk] = st
			}
			st.Time += ev.Overlap
			st.Count++
		}
	}
	top := make([][]StackEvidence, n)
	for sk, st := range stacks {
		top[sk.k] = append(top[sk.k], *st)
	}
	for k := range cl.Names {
		s := ContributorStats{Name: cl.Names[k], SlowTime: slowT[k], FastTime: fastT[k],
			SlowEvents: slowE[k], FastEvents: fastE[k], SlowRequestsWith: with[k]}
		if k < len(c.rules) {
			s.Description = c.rules[k].Description
		}
		if slowWin > 0 {
			s.SlowShare = float64(slowT[k]) / float64(slowWin)
		}
		if fastWin > 0 {
			s.FastShare = float64(fastT[k]) / float64(fastWin)
		}
		if cl.SlowRequests > 0 {
			s.SlowPerRequest = slowT[k] / time.Duration(cl.SlowRequests)
		}
		if cl.FastRequests > 0 {
			s.FastPerRequest = fastT[k] / time.Duration(cl.FastRequests)
		}
		s.Excess = s.SlowPerRequest - s.FastPerRequest
		switch {
		case s.FastShare > 0:
			s.Enrichment = s.SlowShare / s.FastShare
		case s.SlowShare > 0:
			s.Enrichment = math.Inf(1)
		}
		l := top[k]
		sort.Slice(l, func(i, j int) bool {
			if l[i].Time != l[j].Time {
				return l[i].Time > l[j].Time
			}
			return strings.Join(l[i].Frames, ";") < strings.Join(l[j].Frames, ";")
		})
		if len(l) > o.TopStacks {
			l = l[:o.TopStacks]
		}
		s.TopStacks = l
		cl.Contributors = append(cl.Contributors, s)
	}
	order := map[string]int{}
	for i, name := range cl.Names {
		order[name] = i
	}
	sort.SliceStable(cl.Contributors, func(i, j int) bool {
		a, b := cl.Contributors[i], cl.Contributors[j]
		if a.Excess != b.Excess {
			return a.Excess > b.Excess
		}
		if a.SlowTime != b.SlowTime {
			return a.SlowTime > b.SlowTime
		}
		return order[a.Name] < order[b.Name]
	})
	for _, s := range cl.Contributors {
		if len(cl.Top) == o.Top {
			break
		}
		if s.SlowTime > 0 && s.Excess > 0 {
			cl.Top = append(cl.Top, s.Name)
		}
	}
	return cl
}

// Contributor returns the named contributor's statistics.
func (cl *Classification) Contributor(name string) (ContributorStats, bool) {
	for _, s := range cl.Contributors {
		if s.Name == name {
			return s, true
		}
	}
	return ContributorStats{}, false
}

// Rank returns name's 1-based rank (0 when absent).
func (cl *Classification) Rank(name string) int {
	for i, s := range cl.Contributors {
		if s.Name == name {
			return i + 1
		}
	}
	return 0
}
