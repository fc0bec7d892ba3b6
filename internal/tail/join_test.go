package tail

import (
	"math"
	"reflect"
	"testing"
	"time"

	"github.com/tailgate-ci/tailgate/bpf"
	"github.com/tailgate-ci/tailgate/bpf/gort"
	"github.com/tailgate-ci/tailgate/internal/load"
)

// µs converts microseconds to monotonic nanoseconds.
func us(n int64) uint64 { return uint64(n * 1000) }

func d(n int64) time.Duration { return time.Duration(n) * time.Microsecond }

func req(goid uint64, tid uint32, s, e int64) gort.Event {
	return gort.Event{Kind: gort.Request, PID: 1, TID: tid, EndTID: tid, StartNs: us(s), EndNs: us(e), Goid: goid}
}

func park(goid uint64, tid, endTID uint32, s, ready, e int64, reason string) gort.Event {
	ev := gort.Event{Kind: gort.Block, PID: 1, TID: tid, EndTID: endTID, StartNs: us(s), EndNs: us(e), Goid: goid, WaitReason: reason, Stack: []uint64{0x1000, 0x2000}}
	if ready >= 0 {
		ev.ReadyNs = us(ready)
	}
	return ev
}

func run(goid uint64, tid uint32, at int64) gort.Event {
	return gort.Event{Kind: gort.Run, PID: 1, TID: tid, EndTID: tid, StartNs: us(at), EndNs: us(at), Goid: goid}
}

func stw(s, e int64, reason uint64) gort.Event {
	return gort.Event{Kind: gort.STW, PID: 1, StartNs: us(s), EndNs: us(e), Reason: reason}
}

func kev(kind bpf.Kind, tid uint32, s, dur int64) bpf.Event {
	return bpf.Event{Kind: kind, PID: 1, TID: tid, TsNs: us(s), DurNs: us(dur)}
}

// times builds a Time array from component/µs pairs.
func times(kv ...any) [NumComponents]time.Duration {
	var t [NumComponents]time.Duration
	for i := 0; i < len(kv); i += 2 {
		t[kv[i].(Component)] = d(int64(kv[i+1].(int)))
	}
	return t
}

// TestJoinServer checks the split of server-side windows against overlaps
// computed by hand (times in µs; window [0, 1000) unless said otherwise).
func TestJoinServer(t *testing.T) {
	tests := []struct {
		name    string
		in      Input
		want    [NumComponents]time.Duration
		samples int
	}{
		{
			name: "lock park then ready wait, no scheduling events",
			in: Input{Go: []gort.Event{
				req(7, 10, 0, 1000),
				park(7, 10, 10, 100, 500, 600, "SyncMutexLock"),
			}},
			// blocked 100-500, runnable 500-600, the rest on CPU
			want: times(LockWait, 400, Runnable, 100, OnCPU, 500),
		},
		{
			name: "GC pause overlapping the end wins over the lock park",
			in: Input{Go: []gort.Event{
				req(7, 10, 0, 1000),
				park(7, 10, 10, 700, -1, 900, "SyncRWMutexLock"),
				stw(800, 1200, gort.STWGCMarkTerm),
			}},
			want: times(OnCPU, 700, LockWait, 100, GCSTW, 200),
		},
		{
			name: "a non-GC stop-the-world is other off-CPU",
			in: Input{Go: []gort.Event{
				req(7, 10, 0, 1000),
				stw(950, 1050, 0),
			}},
			want: times(OtherOffCPU, 50, OnCPU, 950),
		},
		{
			name: "page fault beats the off-CPU interval it caused; block I/O beats off-CPU",
			in: Input{
				Go: []gort.Event{req(7, 10, 0, 1000)},
				Kernel: []bpf.Event{
					kev(bpf.OffCPU, 10, 100, 300),    // 100-400
					kev(bpf.PageFault, 10, 90, 200),  // 90-290
					kev(bpf.BlockIO, 10, 350, 100),   // 350-450
					kev(bpf.RunQueue, 10, 600, 50),   // 600-650
					kev(bpf.OnCPU, 10, 700, 0),       // a sample
					kev(bpf.OffCPU, 11, 100, 500),    // another thread: ignored
					kev(bpf.PageFault, 10, 1100, 50), // after the window
				},
			},
			// fault 90-290, offcpu 290-350, io 350-450, runq 600-650
			want:    times(PageFault, 200, OtherOffCPU, 60, IO, 100, Runnable, 50, OnCPU, 590),
			samples: 1,
		},
		{
			name: "goroutine follows threads; another goroutine's kernel events are not charged",
			in: Input{
				Go: []gort.Event{
					req(7, 10, 0, 1000),
					run(7, 10, -20),
					run(9, 10, 300), // preempted: thread 10 runs goroutine 9
					run(7, 11, 500), // back on thread 11
				},
				Kernel: []bpf.Event{
					kev(bpf.OffCPU, 10, 400, 50), // goroutine 9's: ignored
					kev(bpf.OffCPU, 11, 600, 100),
					kev(bpf.OffCPU, 10, 200, 50), // while 7 ran on 10
				},
			},
			// on 10: 0-300 (offcpu 200-250); runnable 300-500; on 11: 500-1000 (offcpu 600-700)
			want: times(OnCPU, 250+400, OtherOffCPU, 50+100, Runnable, 200),
		},
		{
			name: "park on one thread, resume on another; kernel events follow",
			in: Input{
				Go: []gort.Event{
					req(7, 10, 0, 1000),
					run(7, 10, 0),
					park(7, 10, 12, 200, 300, 400, "IOWait"),
					run(7, 12, 390),
					run(8, 10, 210),
				},
				Kernel: []bpf.Event{
					kev(bpf.PageFault, 10, 250, 100), // thread 10 now runs goroutine 8
					kev(bpf.PageFault, 12, 800, 100),
				},
			},
			// on 0-200, IO 200-300, runnable 300-400 (the park lasts to
			// 400 though execute ran at 390), on 400-800, fault 800-900,
			// on 900-1000.
			want: times(OnCPU, 200+400+100, IO, 100, Runnable, 100, PageFault, 100),
		},
		{
			name: "assist with a GC assist wait park inside",
			in: Input{Go: []gort.Event{
				req(7, 10, 0, 1000),
				{Kind: gort.Assist, PID: 1, TID: 10, StartNs: us(100), EndNs: us(400), Goid: 7},
				park(7, 10, 10, 200, -1, 350, "GCAssistWait"),
				park(7, 10, 10, 500, 560, 600, "ChanReceive"),
			}},
			want: times(GCAssist, 300, OtherOffCPU, 60, Runnable, 40, OnCPU, 600),
		},
		{
			name: "other goroutines' and other processes' events are ignored",
			in: Input{
				PID: 1,
				Go: []gort.Event{
					req(7, 10, 0, 1000),
					park(8, 10, 10, 100, 500, 600, "SyncMutexLock"),
					{Kind: gort.Block, PID: 2, TID: 10, EndTID: 10, StartNs: us(100), EndNs: us(600), Goid: 7, WaitReason: "SyncMutexLock"},
				},
				Kernel: []bpf.Event{{Kind: bpf.OffCPU, PID: 2, TID: 10, TsNs: us(100), DurNs: us(300)}},
			},
			want: times(OnCPU, 1000),
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			bds := Join(tc.in)
			if len(bds) != 1 {
				t.Fatalf("%d breakdowns, want 1", len(bds))
			}
			b := bds[0]
			if !b.Server || b.Goid != 7 {
				t.Errorf("Server=%v Goid=%d, want server window of goroutine 7", b.Server, b.Goid)
			}
			if b.Time != tc.want {
				t.Errorf("time:\n got %v\nwant %v", fmtTimes(b.Time), fmtTimes(tc.want))
			}
			var sum time.Duration
			for _, v := range b.Time {
				sum += v
			}
			if sum != b.Window() {
				t.Errorf("components sum to %v, window is %v", sum, b.Window())
			}
			if b.OnCPUSamples != tc.samples {
				t.Errorf("on-CPU samples %d, want %d", b.OnCPUSamples, tc.samples)
			}
		})
	}
}

func fmtTimes(t [NumComponents]time.Duration) map[string]time.Duration {
	m := map[string]time.Duration{}
	for c, v := range t {
		if v != 0 {
			m[Component(c).String()] = v
		}
	}
	return m
}

// TestJoinClient checks the pairing of client and server windows and the
// client-only fallback.
func TestJoinClient(t *testing.T) {
	in := Input{
		Client: []load.Window{
			{Seq: 0, Intended: int64(us(-10)), Sent: int64(us(0)), Received: int64(us(1000)), Status: 200},
			{Seq: 1, Intended: int64(us(100)), Sent: int64(us(100)), Received: int64(us(1100)), Status: 200},
			{Seq: 2, Intended: int64(us(5000)), Sent: int64(us(5000)), Received: int64(us(6000)), Status: 0},
		},
		Go: []gort.Event{
			// Both server windows fit in client 1's window; only the
			// first fits in client 0's. Trailing slack: 1<-B (50), 0<-A (30)
			// is taken before 1<-A (130).
			req(7, 10, 20, 970),   // A
			req(8, 11, 150, 1050), // B
			park(8, 11, 11, 300, -1, 500, "SyncMutexLock"),
			stw(5900, 6100, gort.STWGCSweepTerm),
		},
	}
	bds := Join(in)
	if len(bds) != 3 {
		t.Fatalf("%d breakdowns, want 3", len(bds))
	}
	if b := bds[0]; !b.Server || b.Goid != 7 || b.Latency != d(1010) || b.Outside != d(1010-950) || b.Time != times(OnCPU, 950) {
		t.Errorf("client 0: %+v", b)
	}
	if b := bds[1]; !b.Server || b.Goid != 8 || b.Time != times(OnCPU, 700, LockWait, 200) {
		t.Errorf("client 1: %+v %v", b, fmtTimes(b.Time))
	}
	if b := bds[2]; b.Server || b.Status != 0 || b.Time != times(Unattributed, 900, GCSTW, 100) || b.Outside != 0 {
		t.Errorf("client 2: %+v %v", b, fmtTimes(b.Time))
	}
	if ev := bds[1].Evidence; len(ev) != 1 || ev[0].WaitReason != "SyncMutexLock" || ev[0].Overlap != d(200) || !reflect.DeepEqual(ev[0].Stack, []uint64{0x1000, 0x2000}) {
		t.Errorf("client 1 evidence: %+v", ev)
	}
}

// TestMatchGreedy: a server window that fits two client windows goes to
// the one whose response came soonest after it, and each server window is
// used once.
func TestMatchGreedy(t *testing.T) {
	client := []load.Window{
		{Sent: 0, Received: 1000},
		{Sent: 10, Received: 990},
	}
	servers := []serverWin{{start: 20, end: 980}, {start: 500, end: 600}}
	got := matchWindows(client, servers)
	// trailing slack: c1-s0 10, c0-s0 20, c1-s1 390, c0-s1 400.
	if want := []int{1, 0}; !reflect.DeepEqual(got, want) {
		t.Errorf("match = %v, want %v", got, want)
	}
}

func TestCharge(t *testing.T) {
	tests := []struct {
		name  string
		spans []span
		want  [NumComponents]time.Duration
	}{
		{"empty is unattributed", nil, times(Unattributed, 100)},
		{"priority wins", []span{{0, 100, OnCPU, 1}, {20, 40, LockWait, 5}, {30, 60, GCSTW, 9}}, times(OnCPU, 60, LockWait, 10, GCSTW, 30)},
		{"tie goes to the first", []span{{0, 100, OnCPU, 1}, {0, 50, Runnable, 1}}, times(OnCPU, 100)},
		{"clipped to the window", []span{{-50, 150, IO, 1}}, times(IO, 100)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := charge(0, 100*1000, scaleSpans(tc.spans))
			if got != tc.want {
				t.Errorf("got %v want %v", fmtTimes(got), fmtTimes(tc.want))
			}
		})
	}
}

func scaleSpans(in []span) []span {
	out := make([]span, len(in))
	for i, s := range in {
		out[i] = span{s.lo * 1000, s.hi * 1000, s.c, s.prio}
	}
	return out
}

func TestSummarize(t *testing.T) {
	var bds []Breakdown
	// 100 requests: latency i+1 ms; the slowest (100 ms) is all lock
	// wait, the rest on CPU.
	for i := 0; i < 100; i++ {
		b := Breakdown{Latency: time.Duration(i+1) * time.Millisecond, Start: 0, End: int64(i+1) * 1e6, Server: true}
		if i == 99 {
			b.Time[LockWait] = 80 * time.Millisecond
			b.Time[OnCPU] = 20 * time.Millisecond
			b.Evidence = []Evidence{
				{Component: LockWait, Source: FromGo, WaitReason: "SyncMutexLock", Overlap: 50 * time.Millisecond, Stack: []uint64{1, 2}},
				{Component: LockWait, Source: FromGo, WaitReason: "SyncMutexLock", Overlap: 30 * time.Millisecond, Stack: []uint64{1, 2}},
				{Component: LockWait, Source: FromGo, WaitReason: "SyncMutexLock", Overlap: 40 * time.Millisecond, Stack: []uint64{1, 3}},
			}
		} else {
			b.Time[OnCPU] = b.Latency
		}
		bds = append(bds, b)
	}
	s := Summarize(bds, 0.99, 0.5)
	if s.SlowThreshold != 99*time.Millisecond || s.FastThreshold != 50*time.Millisecond {
		t.Errorf("thresholds %v %v, want 99ms 50ms", s.SlowThreshold, s.FastThreshold)
	}
	if s.Slow.Requests != 2 || s.Fast.Requests != 50 {
		t.Errorf("slow %d fast %d, want 2 and 50", s.Slow.Requests, s.Fast.Requests)
	}
	if got, want := s.Slow.Share(LockWait), 80.0/199; math.Abs(got-want) > 1e-12 {
		t.Errorf("slow lock share %v, want %v", got, want)
	}
	if top := s.Slow.Top(); len(top) != 2 || top[0] != OnCPU || top[1] != LockWait {
		t.Errorf("slow top %v", top)
	}
	if e := s.Enrichment(LockWait); !math.IsInf(e, 1) {
		t.Errorf("lock enrichment %v, want +Inf", e)
	}
	if e := s.Enrichment(GCSTW); e != 0 {
		t.Errorf("gc enrichment %v, want 0", e)
	}
	// Excess: slow on-CPU (99+20)/2 ms minus fast mean (1..50 ms) 25.5 ms;
	// lock wait 80/2 ms minus 0. It ranks lock wait first, unlike Top.
	if e := s.Excess(OnCPU); e != 34*time.Millisecond {
		t.Errorf("on-CPU excess %v, want 34ms", e)
	}
	if e := s.Excess(LockWait); e != 40*time.Millisecond {
		t.Errorf("lock excess %v, want 40ms", e)
	}
	if top := s.TopExcess(); len(top) != 2 || top[0] != LockWait || top[1] != OnCPU {
		t.Errorf("slow top by excess %v, want [lock-wait on-cpu]", top)
	}
	st := s.SlowStacks[LockWait]
	if len(st) != 2 || st[0].Time != 80*time.Millisecond || st[0].Count != 2 || !reflect.DeepEqual(st[0].Stack, []uint64{1, 2}) || st[1].Time != 40*time.Millisecond {
		t.Errorf("lock stacks %+v", st)
	}
	if s := Summarize(nil, 0, 0); s.Slow.Requests != 0 || s.Slow.Share(OnCPU) != 0 {
		t.Errorf("empty summary %+v", s)
	}
}

func TestComponentNames(t *testing.T) {
	for c := Component(0); c < NumComponents; c++ {
		got, err := ParseComponent(c.String())
		if err != nil || got != c {
			t.Errorf("ParseComponent(%q) = %v, %v", c.String(), got, err)
		}
	}
	if _, err := ParseComponent("nope"); err == nil {
		t.Error("want an error for an unknown component")
	}
}
