// Package tail owns the join of profiling events to request windows: each
// request's time is split into components (on-CPU, runnable, GC
// stop-the-world, GC assist, lock wait, page faults, I/O, other off-CPU)
// from the Go-runtime events of bpf/gort and the kernel events of bpf, and
// slow requests are compared with fast ones. Contributor classification
// with perf-rules builds on the types here.
//
// Everything is a pure function over slices, all times CLOCK_MONOTONIC
// nanoseconds: the load generator's windows, bpf_ktime_get_ns in both
// collectors.
package tail

import (
	"math"
	"sort"
	"time"

	"github.com/tailgate-ci/tailgate/bpf"
	"github.com/tailgate-ci/tailgate/bpf/gort"
	"github.com/tailgate-ci/tailgate/internal/load"
)

var posInf = math.Inf(1)

// Input is what Join joins. Any slice may be empty.
type Input struct {
	// Client are the load generator's request windows. When empty, Join
	// returns one breakdown per server-side window instead.
	Client []load.Window
	// Go are the target's Go-runtime events (bpf/gort).
	Go []gort.Event
	// Kernel are the target's kernel events (bpf); only threads that ran
	// a request goroutine matter.
	Kernel []bpf.Event
	// PID keeps only the events of this process when non-zero.
	PID uint32
}

// charging priority: where events overlap, the highest wins. A GC pause
// stops everything; a page fault or block I/O explains the off-CPU time
// around it; a lock park is a fact about the goroutine, stronger than
// generic scheduling evidence.
var priority = [NumComponents]int{
	GCSTW:        9,
	PageFault:    8,
	IO:           7,
	LockWait:     6,
	GCAssist:     5,
	OtherOffCPU:  4,
	Runnable:     3,
	OnCPU:        2,
	Unattributed: 0,
}

// span is a labelled interval [lo, hi).
type span struct {
	lo, hi int64
	c      Component
	prio   int
}

// serverWin is a ServeHTTP window.
type serverWin struct {
	start, end int64
	goid       uint64
	tid        uint32
	idx        int
}

// runAt is a goroutine starting to run on a thread.
type runAt struct {
	ts   int64
	goid uint64
}

// index holds the events sorted for the per-request lookups.
type index struct {
	blocks  map[uint64][]*gort.Event // by goid, by StartNs
	assists map[uint64][]*gort.Event // by goid
	runs    map[uint64][]*gort.Event // Run events by goid
	stw     []*gort.Event            // by StartNs
	maxSTW  int64                    // longest STW, to bound the search
	thread  map[uint32][]runAt       // Run events by tid, by ts
	kernel  map[uint32][]*bpf.Event  // by tid, by TsNs
	maxKern int64                    // longest kernel interval
	hasRun  bool
}

func buildIndex(in Input) *index {
	ix := &index{
		blocks:  map[uint64][]*gort.Event{},
		assists: map[uint64][]*gort.Event{},
		runs:    map[uint64][]*gort.Event{},
		thread:  map[uint32][]runAt{},
		kernel:  map[uint32][]*bpf.Event{},
	}
	for i := range in.Go {
		e := &in.Go[i]
		if in.PID != 0 && e.PID != in.PID {
			continue
		}
		switch e.Kind {
		case gort.Block:
			ix.blocks[e.Goid] = append(ix.blocks[e.Goid], e)
		case gort.Assist:
			ix.assists[e.Goid] = append(ix.assists[e.Goid], e)
		case gort.STW:
			ix.stw = append(ix.stw, e)
			ix.maxSTW = max(ix.maxSTW, int64(e.Duration()))
		case gort.Run:
			ix.hasRun = true
			ix.runs[e.Goid] = append(ix.runs[e.Goid], e)
			ix.thread[e.TID] = append(ix.thread[e.TID], runAt{int64(e.StartNs), e.Goid})
		}
	}
	for i := range in.Kernel {
		e := &in.Kernel[i]
		if in.PID != 0 && e.PID != in.PID {
			continue
		}
		switch e.Kind {
		case bpf.OffCPU, bpf.RunQueue, bpf.PageFault, bpf.BlockIO, bpf.OnCPU:
			ix.kernel[e.TID] = append(ix.kernel[e.TID], e)
			ix.maxKern = max(ix.maxKern, int64(e.DurNs))
		}
	}
	byStart := func(l []*gort.Event) {
		sort.Slice(l, func(i, j int) bool { return l[i].StartNs < l[j].StartNs })
	}
	for _, l := range ix.blocks {
		byStart(l)
	}
	for _, l := range ix.assists {
		byStart(l)
	}
	for _, l := range ix.runs {
		byStart(l)
	}
	byStart(ix.stw)
	for _, l := range ix.thread {
		sort.Slice(l, func(i, j int) bool { return l[i].ts < l[j].ts })
	}
	for _, l := range ix.kernel {
		sort.Slice(l, func(i, j int) bool { return l[i].TsNs < l[j].TsNs })
	}
	return ix
}

// Join returns one Breakdown per client window (in the order of
// in.Client), or, without client windows, one per server-side request
// window (ServeHTTP). A client window uses the server-side window of the
// same request when one is found: a ServeHTTP window inside [Sent,
// Received], each used once (see matchWindows). Otherwise the client window
// itself is split, and only global events (GC pauses) can be charged.
func Join(in Input) []Breakdown {
	ix := buildIndex(in)
	var servers []serverWin
	for i := range in.Go {
		e := &in.Go[i]
		if e.Kind != gort.Request || (in.PID != 0 && e.PID != in.PID) || e.EndNs < e.StartNs {
			continue
		}
		servers = append(servers, serverWin{start: int64(e.StartNs), end: int64(e.EndNs), goid: e.Goid, tid: e.TID, idx: i})
	}
	sort.Slice(servers, func(i, j int) bool { return servers[i].start < servers[j].start })

	if len(in.Client) == 0 {
		out := make([]Breakdown, len(servers))
		for i, sw := range servers {
			out[i] = ix.server(sw)
			out[i].Seq = uint64(sw.idx)
			out[i].Latency = time.Duration(sw.end - sw.start)
		}
		return out
	}

	match := matchWindows(in.Client, servers)
	out := make([]Breakdown, len(in.Client))
	for i, w := range in.Client {
		var b Breakdown
		if j := match[i]; j >= 0 {
			b = ix.server(servers[j])
		} else {
			b = ix.client(w)
		}
		b.Seq = w.Seq
		b.Status = w.Status
		b.Latency = w.Latency()
		b.Outside = max(0, b.Latency-b.Window())
		out[i] = b
	}
	return out
}

// matchWindows pairs client windows with server windows they contain;
// match[i] is the server index or -1. Pairs are assigned globally by
// trailing slack (Received - server end) first, then leading slack: a
// response reaches the client right after ServeHTTP returns, while a
// request may wait long in the accept queue or behind a busy connection,
// so a slow client window still finds its own server window even when it
// contains hundreds of others.
func matchWindows(client []load.Window, servers []serverWin) []int {
	type pair struct {
		trail, lead int64
		c, s        int
	}
	var pairs []pair
	for ci, w := range client {
		lo := sort.Search(len(servers), func(j int) bool { return servers[j].start >= w.Sent })
		for j := lo; j < len(servers) && servers[j].start <= w.Received; j++ {
			if servers[j].end > w.Received {
				continue
			}
			pairs = append(pairs, pair{w.Received - servers[j].end, servers[j].start - w.Sent, ci, j})
		}
	}
	sort.Slice(pairs, func(a, b int) bool {
		pa, pb := pairs[a], pairs[b]
		if pa.trail != pb.trail {
			return pa.trail < pb.trail
		}
		if pa.lead != pb.lead {
			return pa.lead < pb.lead
		}
		if pa.c != pb.c {
			return pa.c < pb.c
		}
		return pa.s < pb.s
	})
	match := make([]int, len(client))
	for i := range match {
		match[i] = -1
	}
	used := make([]bool, len(servers))
	for _, p := range pairs {
		if match[p.c] < 0 && !used[p.s] {
			match[p.c] = p.s
			used[p.s] = true
		}
	}
	return match
}

// client splits a client-side window: GC pauses, the rest unattributed.
func (ix *index) client(w load.Window) Breakdown {
	b := Breakdown{Start: w.Sent, End: w.Received}
	if b.End < b.Start {
		b.End = b.Start
	}
	spans := []span{{b.Start, b.End, Unattributed, priority[Unattributed]}}
	spans = ix.addSTW(spans, &b)
	b.Time = charge(b.Start, b.End, spans)
	return b
}

func (ix *index) addSTW(spans []span, b *Breakdown) []span {
	lo := sort.Search(len(ix.stw), func(i int) bool { return int64(ix.stw[i].StartNs) >= b.Start-ix.maxSTW })
	for _, e := range ix.stw[lo:] {
		s, t := int64(e.StartNs), int64(e.EndNs)
		if s >= b.End {
			break
		}
		if t <= b.Start {
			continue
		}
		c, p := GCSTW, priority[GCSTW]
		if !e.IsGCSTW() {
			// The world stopped for something else: everything waited,
			// but it is not GC.
			c, p = OtherOffCPU, priority[GCSTW]
		}
		spans = append(spans, span{s, t, c, p})
		b.Evidence = append(b.Evidence, Evidence{Component: c, Source: FromGo, Kind: e.Kind.String(), Overlap: overlap(s, t, b.Start, b.End), TID: e.TID})
	}
	return spans
}

// parkComponent maps a Go wait reason to the component its blocked time
// is charged to.
func parkComponent(reason string) Component {
	switch reason {
	case "SyncMutexLock", "SyncRWMutexRLock", "SyncRWMutexLock":
		return LockWait
	case "GCAssistWait", "GCAssistMarking":
		return GCAssist
	case "IOWait":
		return IO
	case "Preempted":
		return Runnable
	}
	return OtherOffCPU
}

// placement: from ts on, the goroutine is on thread tid.
type placement struct {
	ts  int64
	tid uint32
}

// server splits the ServeHTTP window of one goroutine.
func (ix *index) server(sw serverWin) Breakdown {
	b := Breakdown{Server: true, Goid: sw.goid, Start: sw.start, End: sw.end}
	base := OnCPU
	if ix.hasRun {
		// With scheduling events, time on a thread is known exactly:
		// the rest, outside parks, is waiting to be scheduled.
		base = Runnable
	}
	spans := []span{{b.Start, b.End, base, 0}}
	spans = ix.addSTW(spans, &b)

	for _, e := range ix.assists[sw.goid] {
		s, t := int64(e.StartNs), int64(e.EndNs)
		if s >= b.End {
			break
		}
		if t <= b.Start {
			continue
		}
		spans = append(spans, span{s, t, GCAssist, priority[GCAssist]})
		b.Evidence = append(b.Evidence, Evidence{Component: GCAssist, Source: FromGo, Kind: e.Kind.String(), Overlap: overlap(s, t, b.Start, b.End), TID: e.TID})
	}

	// Parks, and the placements on threads they end with.
	places := []placement{{b.Start, sw.tid}}
	var parkStarts []int64
	for _, e := range ix.blocks[sw.goid] {
		s, t := int64(e.StartNs), int64(e.EndNs)
		if s >= b.End {
			break
		}
		if t <= b.Start {
			continue
		}
		c := parkComponent(e.WaitReason)
		blockedEnd := t
		if e.ReadyNs != 0 && int64(e.ReadyNs) >= s && int64(e.ReadyNs) <= t {
			blockedEnd = int64(e.ReadyNs)
			spans = append(spans, span{blockedEnd, t, Runnable, priority[Runnable]})
		}
		spans = append(spans, span{s, blockedEnd, c, priority[c]})
		b.Evidence = append(b.Evidence, Evidence{Component: c, Source: FromGo, Kind: e.Kind.String(), WaitReason: e.WaitReason,
			Overlap: overlap(s, blockedEnd, b.Start, b.End), TID: e.TID, Stack: e.Stack})
		parkStarts = append(parkStarts, s)
		places = append(places, placement{t, e.EndTID})
	}
	for _, e := range ix.runs[sw.goid] {
		s := int64(e.StartNs)
		if s >= b.End {
			break
		}
		if s > b.Start {
			places = append(places, placement{s, e.TID})
		}
	}
	sort.Slice(places, func(i, j int) bool { return places[i].ts < places[j].ts })

	// Running segments: from a placement until the next placement, the
	// next park, the thread running another goroutine, or the window end.
	for i, p := range places {
		end := b.End
		if i+1 < len(places) {
			end = min(end, places[i+1].ts)
		}
		if k := sort.Search(len(parkStarts), func(k int) bool { return parkStarts[k] >= p.ts }); k < len(parkStarts) {
			end = min(end, parkStarts[k])
		}
		runs := ix.thread[p.tid]
		for k := sort.Search(len(runs), func(k int) bool { return runs[k].ts > p.ts }); k < len(runs) && runs[k].ts < end; k++ {
			if runs[k].goid != sw.goid {
				end = runs[k].ts
				break
			}
		}
		if end <= p.ts {
			continue
		}
		spans = append(spans, span{p.ts, end, OnCPU, priority[OnCPU]})
		spans = ix.addKernel(spans, &b, p.tid, p.ts, end)
	}
	b.Time = charge(b.Start, b.End, spans)
	return b
}

// addKernel charges the kernel events of thread tid within [lo, hi), a
// stretch when the request goroutine was on it.
func (ix *index) addKernel(spans []span, b *Breakdown, tid uint32, lo, hi int64) []span {
	evs := ix.kernel[tid]
	k := sort.Search(len(evs), func(k int) bool { return int64(evs[k].TsNs) >= lo-ix.maxKern })
	for _, e := range evs[k:] {
		s := int64(e.TsNs)
		if s >= hi {
			break
		}
		t := s + int64(e.DurNs)
		var c Component
		switch e.Kind {
		case bpf.OnCPU:
			if s >= lo {
				b.OnCPUSamples++
			}
			continue
		case bpf.PageFault:
			c = PageFault
		case bpf.BlockIO:
			c = IO
		case bpf.RunQueue:
			c = Runnable
		case bpf.OffCPU:
			c = OtherOffCPU
		default:
			continue
		}
		if t <= lo {
			continue
		}
		spans = append(spans, span{max(s, lo), min(t, hi), c, priority[c]})
		b.Evidence = append(b.Evidence, Evidence{Component: c, Source: FromKernel, Kind: e.Kind.String(),
			Overlap: overlap(s, t, max(lo, b.Start), min(hi, b.End)), TID: tid, Stack: e.UserStack, KernelStack: e.KernelStack})
	}
	return spans
}

func overlap(s, t, lo, hi int64) time.Duration {
	return time.Duration(max(0, min(t, hi)-max(s, lo)))
}

// charge splits [lo, hi) among the spans: each elementary interval goes to
// the highest-priority span covering it (the earliest-listed on ties).
func charge(lo, hi int64, spans []span) [NumComponents]time.Duration {
	var out [NumComponents]time.Duration
	if hi <= lo {
		return out
	}
	cuts := make([]int64, 0, 2*len(spans)+2)
	cuts = append(cuts, lo, hi)
	for _, s := range spans {
		if s.lo > lo && s.lo < hi {
			cuts = append(cuts, s.lo)
		}
		if s.hi > lo && s.hi < hi {
			cuts = append(cuts, s.hi)
		}
	}
	sort.Slice(cuts, func(i, j int) bool { return cuts[i] < cuts[j] })
	for i := 0; i+1 < len(cuts); i++ {
		a, z := cuts[i], cuts[i+1]
		if a == z {
			continue
		}
		best := -1
		for j, s := range spans {
			if s.lo <= a && s.hi >= z && (best < 0 || s.prio > spans[best].prio) {
				best = j
			}
		}
		c := Unattributed
		if best >= 0 {
			c = spans[best].c
		}
		out[c] += time.Duration(z - a)
	}
	return out
}
