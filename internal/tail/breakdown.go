package tail

import (
	"fmt"
	"sort"
	"strings"
	"time"
)

// Component is one part of a request's time. Every nanosecond of the
// window a Breakdown covers is charged to exactly one component.
type Component uint8

// Components of a request's time. The order is stable (it indexes
// Breakdown.Time); the charging priority is in priority.
const (
	// OnCPU: the request goroutine was on a thread and the thread ran.
	OnCPU Component = iota
	// Runnable: runnable but waiting — made ready by the Go scheduler and
	// not yet running again, preempted, or its thread waiting in the
	// kernel run queue.
	Runnable
	// GCSTW: a garbage-collector stop-the-world pause overlapped the window.
	GCSTW
	// GCAssist: the goroutine was doing (or parked waiting for) GC mark
	// assist work.
	GCAssist
	// LockWait: parked on a sync.Mutex or sync.RWMutex.
	LockWait
	// PageFault: its thread was handling a page fault.
	PageFault
	// IO: parked in IO wait (netpoll), or its thread issued block I/O.
	IO
	// OtherOffCPU: parked for another reason (channels, select, sleep,
	// semaphores), its thread switched out for another reason, or the
	// world stopped for something other than GC.
	OtherOffCPU
	// Unattributed: a client-side window with no server-side window and
	// no global event covering the time: nothing can say what it was.
	Unattributed
	// NumComponents is the number of components.
	NumComponents
)

var componentNames = [NumComponents]string{
	OnCPU:        "on-cpu",
	Runnable:     "runnable",
	GCSTW:        "gc-stw",
	GCAssist:     "gc-assist",
	LockWait:     "lock-wait",
	PageFault:    "page-fault",
	IO:           "io",
	OtherOffCPU:  "off-cpu-other",
	Unattributed: "unattributed",
}

// String returns the component's short name ("lock-wait", "gc-stw", ...).
func (c Component) String() string {
	if c < NumComponents {
		return componentNames[c]
	}
	return fmt.Sprintf("component(%d)", uint8(c))
}

// ParseComponent parses a name returned by Component.String.
func ParseComponent(s string) (Component, error) {
	for c, n := range componentNames {
		if n == s {
			return Component(c), nil
		}
	}
	return 0, fmt.Errorf("unknown component %q (want one of %s)", s, strings.Join(componentNames[:], ", "))
}

// Source says where a piece of evidence came from.
type Source uint8

// Evidence sources.
const (
	FromGo     Source = 1 // a Go-runtime event (bpf/gort)
	FromKernel Source = 2 // a kernel event (bpf)
)

// Evidence is one event that was charged (at least partly) to a request:
// what it is, how much of it overlapped the window, and its stack.
type Evidence struct {
	Component Component
	Source    Source
	// Kind is the event kind's name: gort's "block", "assist", "stw" or
	// bpf's "offcpu", "pagefault", "runq", "blockio".
	Kind string
	// WaitReason is a Go park's wait reason ("SyncMutexLock"), else "".
	WaitReason string
	// Overlap is the part of the event inside the window (before the
	// priority between overlapping events is applied).
	Overlap time.Duration
	TID     uint32
	// Stack is the user stack (innermost first); kernel events also carry
	// KernelStack. They alias the events' slices.
	Stack       []uint64
	KernelStack []uint64
}

// Breakdown is one request's time split into components.
type Breakdown struct {
	// Seq is the client window's sequence number (internal/load); for a
	// server-only breakdown it is the index of the Request event.
	Seq uint64
	// Latency is the client's coordinated-omission-corrected latency, or
	// the server window's length when there is no client window.
	Latency time.Duration
	// Status is the client's HTTP status (0: transport error, or no
	// client window).
	Status uint16
	// Server is true when the window is the server-side one (a ServeHTTP
	// window of goroutine Goid); otherwise it is the client's [Sent,
	// Received] and per-goroutine attribution is impossible.
	Server bool
	Goid   uint64
	// Start and End are the window the components cover (monotonic ns).
	Start, End int64
	// Time is the window split into components; the sum is End - Start.
	Time [NumComponents]time.Duration
	// Outside is the part of Latency outside the window: client send lag,
	// network, accept and header parsing, response flush.
	Outside time.Duration
	// OnCPUSamples counts on-CPU samples of the goroutine's threads while
	// it ran there.
	OnCPUSamples int
	// Evidence lists the events charged to the request.
	Evidence []Evidence
}

// Window returns End - Start.
func (b *Breakdown) Window() time.Duration { return time.Duration(b.End - b.Start) }

// Top returns the components with non-zero time, largest first.
func (b *Breakdown) Top() []Component { return topOf(b.Time) }

func topOf(t [NumComponents]time.Duration) []Component {
	var cs []Component
	for c := Component(0); c < NumComponents; c++ {
		if t[c] > 0 {
			cs = append(cs, c)
		}
	}
	sort.SliceStable(cs, func(i, j int) bool { return t[cs[i]] > t[cs[j]] })
	return cs
}

// Group aggregates the breakdowns of a set of requests.
type Group struct {
	Requests int
	// Time sums each component over the requests; Window sums the
	// windows (= the sum of Time); Outside sums Breakdown.Outside.
	Time    [NumComponents]time.Duration
	Window  time.Duration
	Outside time.Duration
	// Server counts requests with a server-side window.
	Server int
}

func (g *Group) add(b *Breakdown) {
	g.Requests++
	for c, d := range b.Time {
		g.Time[c] += d
	}
	g.Window += b.Window()
	g.Outside += b.Outside
	if b.Server {
		g.Server++
	}
}

// Share is component c's fraction of the group's window time (0 when
// the group is empty).
func (g Group) Share(c Component) float64 {
	if g.Window <= 0 {
		return 0
	}
	return float64(g.Time[c]) / float64(g.Window)
}

// PerRequest is component c's mean time per request.
func (g Group) PerRequest(c Component) time.Duration {
	if g.Requests == 0 {
		return 0
	}
	return g.Time[c] / time.Duration(g.Requests)
}

// Top returns the components with non-zero time, largest first.
func (g Group) Top() []Component { return topOf(g.Time) }

// StackTime is one stack's total time in a component over a group.
type StackTime struct {
	Component  Component
	Source     Source
	WaitReason string
	Stack      []uint64
	Time       time.Duration // summed Evidence.Overlap
	Count      int
}

// Summary compares the slowest requests with the fast reference set.
type Summary struct {
	// SlowThreshold: requests with Latency >= it are slow (the
	// SlowQuantile of the latencies); FastThreshold: requests with
	// Latency <= it are fast (the FastQuantile).
	SlowThreshold, FastThreshold time.Duration
	Slow, Fast                   Group
	// SlowStacks are the slow group's evidence stacks per component,
	// largest time first.
	SlowStacks map[Component][]StackTime
}

// Enrichment is component c's share among slow requests divided by its
// share among fast ones (+Inf when absent from fast requests but present
// in slow ones, 0 when absent from both).
func (s Summary) Enrichment(c Component) float64 {
	slow, fast := s.Slow.Share(c), s.Fast.Share(c)
	switch {
	case fast > 0:
		return slow / fast
	case slow > 0:
		return posInf
	}
	return 0
}

// Excess is component c's mean time per slow request minus its mean time
// per fast request: what c adds to a slow request over a fast one, the
// ranking key of contributors (Classify). Every request spends its own
// work on-CPU, so on-CPU time ranks only by how much more of it slow
// requests have. Negative when fast requests have more of c.
func (s Summary) Excess(c Component) time.Duration {
	return s.Slow.PerRequest(c) - s.Fast.PerRequest(c)
}

// TopExcess returns the components with time in slow requests and a
// positive Excess, largest Excess first (ties: more slow time first, then
// component order).
func (s Summary) TopExcess() []Component {
	var cs []Component
	for c := Component(0); c < NumComponents; c++ {
		if s.Slow.Time[c] > 0 && s.Excess(c) > 0 {
			cs = append(cs, c)
		}
	}
	sort.SliceStable(cs, func(i, j int) bool {
		a, b := cs[i], cs[j]
		if ea, eb := s.Excess(a), s.Excess(b); ea != eb {
			return ea > eb
		}
		return s.Slow.Time[a] > s.Slow.Time[b]
	})
	return cs
}

// Default quantiles of Summarize.
const (
	DefaultSlowQuantile = 0.99
	DefaultFastQuantile = 0.50
)

// Summarize splits breakdowns into slow (latency at or above the slowQ
// quantile, e.g. 0.99 for the slowest 1 %) and fast (at or below the
// fastQ quantile, e.g. 0.5) and aggregates each; quantiles are
// nearest-rank over Latency. Zero quantiles mean the defaults.
func Summarize(bds []Breakdown, slowQ, fastQ float64) Summary {
	if slowQ <= 0 {
		slowQ = DefaultSlowQuantile
	}
	if fastQ <= 0 {
		fastQ = DefaultFastQuantile
	}
	s := Summary{SlowStacks: map[Component][]StackTime{}}
	if len(bds) == 0 {
		return s
	}
	lat := make([]time.Duration, len(bds))
	for i := range bds {
		lat[i] = bds[i].Latency
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	s.SlowThreshold = nearestRank(lat, slowQ)
	s.FastThreshold = nearestRank(lat, fastQ)
	type key struct {
		c      Component
		src    Source
		reason string
		stack  string
	}
	stacks := map[key]*StackTime{}
	for i := range bds {
		b := &bds[i]
		if b.Latency <= s.FastThreshold {
			s.Fast.add(b)
		}
		if b.Latency < s.SlowThreshold {
			continue
		}
		s.Slow.add(b)
		for _, ev := range b.Evidence {
			k := key{ev.Component, ev.Source, ev.WaitReason, stackKey(ev.Stack)}
			st := stacks[k]
			if st == nil {
				st = &StackTime{Component: ev.Component, Source: ev.Source, WaitReason: ev.WaitReason, Stack: ev.Stack}
				stacks[k] = st
			}
			st.Time += ev.Overlap
			st.Count++
		}
	}
	for _, st := range stacks {
		s.SlowStacks[st.Component] = append(s.SlowStacks[st.Component], *st)
	}
	for c := range s.SlowStacks {
		l := s.SlowStacks[c]
		sort.Slice(l, func(i, j int) bool {
			if l[i].Time != l[j].Time {
				return l[i].Time > l[j].Time
			}
			return stackKey(l[i].Stack) < stackKey(l[j].Stack)
		})
	}
	return s
}

// nearestRank returns the q quantile of sorted values by nearest rank.
func nearestRank(sorted []time.Duration, q float64) time.Duration {
	if q >= 1 {
		return sorted[len(sorted)-1]
	}
	r := int(q*float64(len(sorted))+0.999999999) - 1
	r = max(0, min(r, len(sorted)-1))
	return sorted[r]
}

func stackKey(pcs []uint64) string {
	var b strings.Builder
	for _, pc := range pcs {
		fmt.Fprintf(&b, "%x;", pc)
	}
	return b.String()
}
