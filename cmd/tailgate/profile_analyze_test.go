package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/tailgate-ci/tailgate/bpf/gort"
	"github.com/tailgate-ci/tailgate/internal/flame"
	"github.com/tailgate-ci/tailgate/internal/load"
	"github.com/tailgate-ci/tailgate/internal/tail"
)

// Functions whose addresses stand in for the target's stacks: the
// analysis symbolizes them offline from the recorded mappings snapshot
// (proc/PID/maps of this test process), as it would a bidder's.

//go:noinline
func synthHandler(n int) int {
	s := 0
	for i := 0; i < n; i++ {
		s += i * i
	}
	return s
}

//go:noinline
func synthLedgerTrySpend(n int) int {
	s := 1
	for i := 0; i < n; i++ {
		s ^= i << 1
	}
	return s
}

//go:noinline
func synthIndexLookup(n int) int {
	s := 2
	for i := 0; i < n; i++ {
		s += i >> 1
	}
	return s
}

func pcOf(f any) uint64 { return uint64(reflect.ValueOf(f).Pointer()) + 2 }

// synthRun describes a synthetic recorded run: n requests 5 ms apart,
// 1-1.45 ms each, of which the slow ones (every 50th) take 18-18.7 ms.
// Of those, the five at or above p99 (nearest rank) are the slow group.
type synthRun struct {
	slowLock  time.Duration // lock wait in each slow request, from 1 ms
	slowFault time.Duration // page fault in each slow request, from 11 ms
	slowSTW   time.Duration // GC pause in each slow request, from 13.5 ms
}

const (
	synthN     = 400
	synthT0    = int64(1_000_000_000_000)
	synthSpace = 5 * time.Millisecond
)

func synthSlow(i int) bool { return i%50 == 25 }

func synthWindow(i int) (start, end int64) {
	start = synthT0 + int64(i)*int64(synthSpace)
	lat := time.Millisecond + time.Duration(i%10)*50*time.Microsecond
	if synthSlow(i) {
		lat = 18*time.Millisecond + time.Duration(i/50)*100*time.Microsecond
	}
	return start, start + int64(lat)
}

// writeSynthProfile writes a `tailgate profile --go` directory for pid
// (this process) and returns it.
func writeSynthProfile(t *testing.T, r synthRun) string {
	t.Helper()
	dir := t.TempDir()
	pid := os.Getpid()
	handler, ledger, index := pcOf(synthHandler), pcOf(synthLedgerTrySpend), pcOf(synthIndexLookup)
	var goEvents []gort.Event
	type kev = jsonEvent
	var faults, oncpu []kev
	hex := func(pcs ...uint64) []string { return hexStack(pcs) }
	major := true
	for i := 0; i < synthN; i++ {
		start, end := synthWindow(i)
		goid, tid := uint64(1000+i), uint32(5000+i)
		goEvents = append(goEvents, gort.Event{Kind: gort.Request, PID: uint32(pid), TID: tid, StartNs: uint64(start), EndNs: uint64(end), Goid: goid})
		if synthSlow(i) {
			if r.slowLock > 0 {
				s := start + int64(time.Millisecond)
				e := s + int64(r.slowLock)
				goEvents = append(goEvents, gort.Event{Kind: gort.Block, PID: uint32(pid), TID: tid, EndTID: tid, StartNs: uint64(s), EndNs: uint64(e),
					ReadyNs: uint64(e - int64(200*time.Microsecond)), Goid: goid, WaitReason: "SyncMutexLock", Stack: []uint64{ledger, handler}})
			}
			if r.slowFault > 0 {
				faults = append(faults, kev{Kind: "pagefault", TsNs: uint64(start + int64(11*time.Millisecond)), DurNs: uint64(r.slowFault),
					PID: uint32(pid), TID: tid, Comm: "synth", UStack: hex(index, handler), KStack: []string{}, Major: &major})
			}
			if r.slowSTW > 0 {
				s := start + int64(13500*time.Microsecond)
				goEvents = append(goEvents, gort.Event{Kind: gort.STW, PID: uint32(pid), TID: tid, StartNs: uint64(s), EndNs: uint64(s + int64(r.slowSTW)),
					AccountedEndNs: uint64(s + int64(r.slowSTW)), Reason: gort.STWGCMarkTerm})
			}
		} else if i%10 == 3 {
			// Fast requests wait for the lock too, briefly.
			s := start + int64(100*time.Microsecond)
			goEvents = append(goEvents, gort.Event{Kind: gort.Block, PID: uint32(pid), TID: tid, EndTID: tid, StartNs: uint64(s), EndNs: uint64(s + int64(50*time.Microsecond)),
				Goid: goid, WaitReason: "SyncMutexLock", Stack: []uint64{ledger, handler}})
		}
		for ts := start + int64(100*time.Microsecond); ts < end; ts += int64(500 * time.Microsecond) {
			oncpu = append(oncpu, kev{Kind: "oncpu", TsNs: uint64(ts), PID: uint32(pid), TID: tid, Comm: "synth", UStack: hex(handler), KStack: []string{}})
		}
	}
	f, err := os.Create(filepath.Join(dir, tail.GoEventsFile))
	if err != nil {
		t.Fatal(err)
	}
	if err := tail.WriteGoEvents(f, goEvents); err != nil {
		t.Fatal(err)
	}
	f.Close()
	for name, evs := range map[string][]kev{"pagefault": faults, "oncpu": oncpu} {
		var b bytes.Buffer
		for _, e := range evs {
			line, _ := json.Marshal(e)
			b.Write(append(line, '\n'))
		}
		if err := os.WriteFile(filepath.Join(dir, name+".events.jsonl"), b.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	_, last := synthWindow(synthN - 1)
	sum, _ := json.Marshal(profileSummary{Schema: ProfileSchemaVersion, PIDs: []int{pid}, Collectors: []string{"pagefault", "oncpu"},
		MonoStartNs: synthT0 - int64(time.Second), MonoEndNs: last + int64(time.Second)})
	if err := os.WriteFile(filepath.Join(dir, "summary.json"), sum, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := snapshotMaps(dir, []int{pid}); err != nil {
		t.Fatal(err)
	}
	return dir
}

// analysisDoc is the part of contributors.json the tests read.
type analysisDoc struct {
	Schema int `json:"schema"`
	Head   struct {
		SlowRequests int `json:"slow_requests"`
		FastRequests int `json:"fast_requests"`
		Requests     int `json:"requests"`
		Top          []string
		Contributors []struct {
			Name       string  `json:"name"`
			Enrichment float64 `json:"enrichment"`
			SlowEvents int64   `json:"slow_events"`
			SlowTime   int64   `json:"slow_time_ns"`
			TopStacks  []struct {
				Frames []string `json:"frames"`
				Count  int64    `json:"count"`
			} `json:"top_stacks"`
		} `json:"contributors"`
		Slow []struct {
			Time []int64 `json:"time_ns"`
		} `json:"slow"`
	} `json:"head"`
	Base *struct {
		Top []string `json:"top"`
	} `json:"base"`
	Sets map[string]tail.SetInfo `json:"sets"`
}

func readAnalysis(t *testing.T, dir string) analysisDoc {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, tail.ContributorsFile))
	if err != nil {
		t.Fatal(err)
	}
	var d analysisDoc
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatal(err)
	}
	return d
}

// TestProfileAnalyzeRecorded analyzes recorded directories (no root): a
// head run whose slow requests wait on a lock, fault and pause for GC,
// against a base run whose slow requests only fault. It checks the
// ranking and evidence, and that every artifact of ARTIFACTS.md exists
// and parses.
func TestProfileAnalyzeRecorded(t *testing.T) {
	head := writeSynthProfile(t, synthRun{slowLock: 10 * time.Millisecond, slowFault: 2500 * time.Microsecond, slowSTW: 3 * time.Millisecond})
	base := writeSynthProfile(t, synthRun{slowFault: 2500 * time.Microsecond})
	out := filepath.Join(t.TempDir(), "analysis")
	var stdout, stderr bytes.Buffer
	err := run(context.Background(), []string{"profile", "--analyze", "--in", head, "--base", base, "--out", out}, &stdout, &stderr, os.Getenv)
	if err != nil {
		t.Fatalf("profile --analyze: %v\n%s", err, stderr.String())
	}
	t.Log(stdout.String())

	d := readAnalysis(t, out)
	if d.Head.Requests != synthN || d.Head.SlowRequests != 5 || d.Head.FastRequests < synthN/2 {
		t.Fatalf("requests %d, slow %d, fast %d; want %d, 5, >= %d", d.Head.Requests, d.Head.SlowRequests, d.Head.FastRequests, synthN, synthN/2)
	}
	// Per slow request: lock 10 ms, GC 3 ms, a 2.5 ms fault, and about
	// 2.5 ms on CPU (1.1 ms in fast ones): ranked lock, gc, pagefault, cpu.
	if len(d.Head.Top) < 3 || d.Head.Top[0] != "lock" || d.Head.Top[1] != "gc" || d.Head.Top[2] != "pagefault" || d.Head.Top[3] != "cpu" {
		t.Fatalf("top contributors %v, want lock, gc, pagefault, cpu", d.Head.Top)
	}
	byName := map[string]int{}
	for i, c := range d.Head.Contributors {
		byName[c.Name] = i
	}
	lock := d.Head.Contributors[byName["lock"]]
	// Blocked from the park to runtime.ready (9.8 ms); the 200 µs from
	// ready to running is waiting for a CPU (numa).
	const lockWait = 5 * 9800 * time.Microsecond
	if lock.SlowEvents != 5 || lock.SlowTime != int64(lockWait) {
		t.Errorf("lock: %d slow events, %v; want 5, %v", lock.SlowEvents, time.Duration(lock.SlowTime), lockWait)
	}
	// Fast requests wait 50 µs in 1 of 10: the slow share is far larger.
	if lock.Enrichment < 10 {
		t.Errorf("lock enrichment %.2f, want > 10", lock.Enrichment)
	}
	if len(lock.TopStacks) == 0 || !strings.HasSuffix(lock.TopStacks[0].Frames[len(lock.TopStacks[0].Frames)-1], "synthLedgerTrySpend") {
		t.Errorf("lock top stack %+v: want the ledger function (symbolized from proc/PID/maps) as leaf", lock.TopStacks)
	}
	if pf := d.Head.Contributors[byName["pagefault"]]; pf.SlowEvents != 5 || len(pf.TopStacks) == 0 || !strings.Contains(strings.Join(pf.TopStacks[0].Frames, ";"), "synthIndexLookup") {
		t.Errorf("pagefault evidence %+v, want 5 events under synthIndexLookup", pf)
	}
	if len(d.Head.Slow) != 5 || len(d.Head.Slow[0].Time) != len(d.Head.Contributors) {
		t.Errorf("per-request splits: %d slow requests", len(d.Head.Slow))
	}
	if d.Base == nil || len(d.Base.Top) != 2 || d.Base.Top[0] != "cpu" || d.Base.Top[1] != "pagefault" {
		t.Errorf("base analysis %+v, want cpu, pagefault (no lock, no GC)", d.Base)
	}

	// The layout of internal/tail/ARTIFACTS.md.
	for _, f := range []string{tail.ContributorsFile, tail.ProfilesFile, ContributorsTextFile} {
		if _, err := os.Stat(filepath.Join(out, f)); err != nil {
			t.Error(err)
		}
	}
	sets := []struct{ name, a, b string }{
		{"oncpu-slow-vs-fast", "fast", "slow"},
		{"offcpu-slow-vs-fast", "fast", "slow"},
		{"kind-block-slow-vs-fast", "fast", "slow"},
		{"oncpu-head-vs-base", "base", "head"},
		{"offcpu-head-vs-base", "base", "head"},
	}
	for _, s := range sets {
		info, ok := d.Sets[s.name]
		if !ok || info.ALabel != s.a || info.BLabel != s.b {
			t.Errorf("set %s: %+v (listed %v)", s.name, info, ok)
			continue
		}
		for _, suffix := range []string{s.a + ".folded", s.b + ".folded", s.a + ".svg", s.b + ".svg",
			s.b + "-over-" + s.a + ".svg", s.a + "-over-" + s.b + ".svg", "diff.folded", s.a + ".pb.gz", s.b + ".pb.gz"} {
			path := filepath.Join(out, tail.FlameDir, s.name+"-"+suffix)
			st, err := os.Stat(path)
			if err != nil || st.Size() == 0 {
				t.Errorf("%s: %v (size %d)", path, err, sizeOf(st))
			}
		}
	}
	// The slow side of the off-CPU graph holds the lock wait under the
	// contributor's root frame, and it parses as folded stacks.
	f, err := os.Open(filepath.Join(out, tail.FlameDir, "offcpu-slow-vs-fast-slow.folded"))
	if err != nil {
		t.Fatal(err)
	}
	p, err := flame.ParseFolded(bufio.NewReader(f), "offcpu-slow-vs-fast-slow.folded")
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	var lockNs float64
	for stack, v := range p.Stacks {
		if strings.HasPrefix(stack, "lock;") && strings.HasSuffix(stack, "[SyncMutexLock]") {
			lockNs += v
		}
	}
	if lockNs != float64(lockWait) {
		t.Errorf("slow off-CPU folded stacks: %v ns of lock wait, want %v", lockNs, float64(lockWait))
	}
	txt, err := os.ReadFile(filepath.Join(out, ContributorsTextFile))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"1. lock:", "2. gc:", "3. pagefault:", "4. cpu:", "synthLedgerTrySpend", "slowest requests"} {
		if !bytes.Contains(txt, []byte(want)) {
			t.Errorf("%s lacks %q:\n%s", ContributorsTextFile, want, txt)
		}
	}
}

func sizeOf(st os.FileInfo) int64 {
	if st == nil {
		return -1
	}
	return st.Size()
}

// With the load generator's windows, slow and fast are the client's
// latencies; windows outside the profiled interval are left out, and
// none inside is an error.
func TestProfileAnalyzeClientWindows(t *testing.T) {
	head := writeSynthProfile(t, synthRun{slowLock: 10 * time.Millisecond, slowFault: 2500 * time.Microsecond, slowSTW: 3 * time.Millisecond})
	runDir := t.TempDir()
	ww, err := load.CreateWindowFile(filepath.Join(runDir, "round-01.windows"), load.WindowHeader{ClockID: 1, Interval: synthSpace, StartMono: synthT0})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < synthN; i++ {
		s, e := synthWindow(i)
		sent, recv := s-int64(100*time.Microsecond), e+int64(100*time.Microsecond)
		if err := ww.Write(load.Window{Seq: uint64(i), Intended: sent, Sent: sent, Received: recv, Status: 200}); err != nil {
			t.Fatal(err)
		}
	}
	// A window long after the profile ended.
	if err := ww.Write(load.Window{Seq: synthN, Intended: synthT0 + int64(time.Hour), Sent: synthT0 + int64(time.Hour), Received: synthT0 + int64(time.Hour) + 1}); err != nil {
		t.Fatal(err)
	}
	if err := ww.Close(); err != nil {
		t.Fatal(err)
	}
	out := t.TempDir()
	var stdout, stderr bytes.Buffer
	if err := run(context.Background(), []string{"profile", "--analyze", "--in", head, "--windows", runDir, "--out", out}, &stdout, &stderr, os.Getenv); err != nil {
		t.Fatalf("profile --analyze --windows: %v\n%s", err, stderr.String())
	}
	if !strings.Contains(stdout.String(), "400 of 401 inside the profile") {
		t.Errorf("output does not count the windows kept:\n%s", stdout.String())
	}
	d := readAnalysis(t, out)
	if d.Head.Requests != synthN || d.Head.SlowRequests != 5 || len(d.Head.Top) == 0 || d.Head.Top[0] != "lock" {
		t.Fatalf("client-window analysis: %d requests, %d slow, top %v", d.Head.Requests, d.Head.SlowRequests, d.Head.Top)
	}

	// --slo: slow = above 18.45 ms (server-side windows): the three slowest.
	out2 := t.TempDir()
	if err := run(context.Background(), []string{"profile", "--analyze", "--in", head, "--slo", "18.45ms", "--out", out2}, &stdout, &stderr, os.Getenv); err != nil {
		t.Fatal(err)
	}
	if d := readAnalysis(t, out2); d.Head.SlowRequests != 3 {
		t.Errorf("--slo 18.45ms: %d slow requests, want 3 (18.5..18.7 ms)", d.Head.SlowRequests)
	}

	// Windows of another run: none inside the profile.
	other := filepath.Join(t.TempDir(), "other.windows")
	ww, err = load.CreateWindowFile(other, load.WindowHeader{ClockID: 1, Interval: synthSpace})
	if err != nil {
		t.Fatal(err)
	}
	ww.Write(load.Window{Seq: 0, Intended: 5, Sent: 5, Received: 10, Status: 200})
	ww.Close()
	err = run(context.Background(), []string{"profile", "--analyze", "--in", head, "--windows", other, "--out", t.TempDir()}, &stdout, &stderr, os.Getenv)
	if err == nil || !strings.Contains(err.Error(), "falls inside the profile") {
		t.Errorf("windows outside the profile: err %v", err)
	}
}

func TestProfileAnalyzeErrors(t *testing.T) {
	head := writeSynthProfile(t, synthRun{slowLock: time.Millisecond})
	noGo := t.TempDir()
	os.WriteFile(filepath.Join(noGo, "oncpu.events.jsonl"), []byte(`{"kind":"oncpu","ts_ns":1,"pid":1,"tid":1}`+"\n"), 0o644)
	badEvents := t.TempDir()
	os.WriteFile(filepath.Join(badEvents, "oncpu.events.jsonl"), []byte(`{"kind":"oncpu","ts_ns":1}`+"\n"+`{"kind":"oncpu","ustack":["zz"]}`+"\n"), 0o644)
	badRules := filepath.Join(t.TempDir(), "rules.yaml")
	os.WriteFile(badRules, []byte("version: 1\ncontributors:\n  - name: lock\n    wait_reasons: ['Sync(']\n"), 0o644)
	for _, tc := range []struct {
		name string
		args []string
		code int
		want string
	}{
		{"in without analyze", []string{"--in", head}, ExitUsage, "--in needs --analyze"},
		{"base without analyze", []string{"--pid", "1", "--out", "x", "--base", head}, ExitUsage, "--base needs --analyze"},
		{"pid with in", []string{"--analyze", "--in", head, "--pid", "1"}, ExitUsage, "--in analyzes a recorded one"},
		{"base windows without base", []string{"--analyze", "--in", head, "--base-windows", "w"}, ExitUsage, "--base-windows needs --base"},
		{"negative slo", []string{"--analyze", "--in", head, "--slo", "-1ms"}, ExitUsage, "must not be negative"},
		{"bad variant", []string{"--analyze", "--in", head, "--variant", "a b"}, ExitUsage, "--variant"},
		{"bad rules", []string{"--analyze", "--in", head, "--out", t.TempDir(), "--rules", badRules}, ExitUsage, `rules.yaml:4: contributors[0].wait_reasons[0]: bad regexp "Sync("`},
		{"not a profile", []string{"--analyze", "--in", t.TempDir()}, ExitError, "no *.events.jsonl"},
		{"no request windows", []string{"--analyze", "--in", noGo, "--out", t.TempDir()}, ExitError, "no request windows"},
		{"bad event line", []string{"--analyze", "--in", badEvents, "--out", t.TempDir()}, ExitError, "oncpu.events.jsonl:2: ustack"},
		{"missing windows", []string{"--analyze", "--in", head, "--out", t.TempDir(), "--windows", filepath.Join(head, "nope")}, ExitError, "windows:"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := run(context.Background(), append([]string{"profile"}, tc.args...), &bytes.Buffer{}, &bytes.Buffer{}, os.Getenv)
			if exitCode(err) != tc.code || err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err %v (exit %d), want exit %d containing %q", err, exitCode(err), tc.code, tc.want)
			}
		})
	}
}

func TestShortStack(t *testing.T) {
	lockWait := []string{"runtime.goexit", "net/http.(*conn).serve", "bidder.(*Bidder).serveBid", "bidder.(*Bidder).auction", "bidder.(*GlobalLedger).TrySpend",
		"sync.(*Mutex).Lock", "internal/sync.(*Mutex).lockSlow", "runtime.semacquire1", "runtime.goparkunlock", "runtime.gopark"}
	fault := []string{"bidder", "runtime.goexit", "net/http.(*conn).serve", "bidder.(*Bidder).serveBid", "bidder.(*Bidder).auction",
		"asm_exc_page_fault_[k]", "exc_page_fault_[k]", "handle_mm_fault_[k]", "filemap_fault_[k]", "folio_wait_bit_common_[k]"}
	for _, tc := range []struct {
		frames []string
		want   string
	}{
		{nil, "(no stack)"},
		{[]string{"main.main", "main.work"}, "main.main;main.work"},
		{lockWait, "...;bidder.(*Bidder).serveBid;bidder.(*Bidder).auction;bidder.(*GlobalLedger).TrySpend;...;runtime.semacquire1;runtime.goparkunlock;runtime.gopark"},
		{fault, "...;net/http.(*conn).serve;bidder.(*Bidder).serveBid;bidder.(*Bidder).auction;...;handle_mm_fault_[k];filemap_fault_[k];folio_wait_bit_common_[k]"},
		{[]string{"main.f", "main.g", "runtime.mallocgc"}, "main.f;main.g;runtime.mallocgc"},
		{[]string{"a_[k]", "b_[k]", "c_[k]", "d_[k]", "e_[k]", "f_[k]", "g_[k]"}, "...;b_[k];c_[k];d_[k];e_[k];f_[k];g_[k]"},
	} {
		if got := shortStack(tc.frames, 3); got != tc.want {
			t.Errorf("shortStack(%q)\n got %q\nwant %q", tc.frames, got, tc.want)
		}
	}
}
