package symbol

import (
	"bufio"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
)

//go:noinline
func selfLeaf() []uint64 {
	pcs := make([]uintptr, 64)
	n := runtime.Callers(1, pcs)
	out := make([]uint64, n)
	for i, pc := range pcs[:n] {
		out[i] = uint64(pc)
	}
	return out
}

//go:noinline
func selfMiddle() []uint64 { return selfLeaf() }

func TestUserSelf(t *testing.T) {
	pcs := selfMiddle()
	frames := NewResolver().User(os.Getpid(), pcs)
	if len(frames) != len(pcs) {
		t.Fatalf("got %d frames for %d pcs", len(frames), len(pcs))
	}
	const pkg = "github.com/tailgate-ci/tailgate/internal/symbol."
	want := []string{pkg + "selfLeaf", pkg + "selfMiddle", pkg + "TestUserSelf", "testing.tRunner"}
	for i, w := range want {
		if frames[i].Func != w {
			t.Errorf("frame %d: got %q, want %q (all: %v)", i, frames[i].Func, w, frames)
		}
	}
	for i, f := range frames {
		// Every pc must agree with the runtime's own view of the outermost
		// function at that pc (runtime.CallersFrames expands inlining; the
		// last frame it yields for a pc is the physical function).
		rf := runtime.CallersFrames([]uintptr{uintptr(pcs[i])})
		var outer runtime.Frame
		for {
			fr, more := rf.Next()
			outer = fr
			if !more {
				break
			}
		}
		if outer.Function != "" && f.Func != outer.Function {
			t.Errorf("pc %#x: got %q, runtime says %q", pcs[i], f.Func, outer.Function)
		}
		if f.Addr != pcs[i] {
			t.Errorf("frame %d: Addr %#x, want %#x", i, f.Addr, pcs[i])
		}
	}
	// frames[0] is inside runtime.Callers inlined into selfLeaf, so its
	// position is in the runtime; selfMiddle's is in this file.
	if !strings.HasSuffix(frames[1].File, "symbol_test.go") || frames[1].Line == 0 {
		t.Errorf("selfMiddle position: %s:%d", frames[1].File, frames[1].Line)
	}
}

// startPrinter starts a test program that prints "0xpc name" lines and
// "ready"; it returns the process and the printed pcs and names.
func startPrinter(t *testing.T, bin string) (*exec.Cmd, []uint64, []string) {
	t.Helper()
	cmd := exec.Command(bin)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		stdin.Close()
		cmd.Process.Kill()
		cmd.Wait()
	})
	var pcs []uint64
	var names []string
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		line := sc.Text()
		if line == "ready" {
			return cmd, pcs, names
		}
		addr, name, ok := strings.Cut(line, " ")
		if !ok {
			t.Fatalf("bad line from %s: %q", bin, line)
		}
		pc, err := strconv.ParseUint(strings.TrimPrefix(addr, "0x"), 16, 64)
		if err != nil {
			t.Fatalf("bad pc from %s: %q", bin, line)
		}
		pcs = append(pcs, pc)
		names = append(names, name)
	}
	t.Fatalf("%s exited before ready: %v", bin, sc.Err())
	return nil, nil, nil
}

func buildGo(t *testing.T, args ...string) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds a Go program; skipped in -short")
	}
	out := filepath.Join(t.TempDir(), "goprog")
	cmd := exec.Command("go", append(append([]string{"build"}, args...), "-o", out, "./testdata/goprog")...)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build %v: %v\n%s", args, err, b)
	}
	return out
}

func TestUserGoBinaries(t *testing.T) {
	for _, tc := range []struct {
		name   string
		args   []string
		inline bool // symbol table present: inline expansion expected
	}{
		{"pie", []string{"-buildmode=pie"}, true},
		{"exe", []string{"-buildmode=exe"}, true},
		{"exe-stripped", []string{"-buildmode=exe", "-ldflags=-s -w"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			bin := buildGo(t, tc.args...)
			r := NewResolver()
			var first []Frame
			for i := 0; i < 2; i++ {
				cmd, pcs, names := startPrinter(t, bin)
				frames := r.User(cmd.Process.Pid, pcs)
				for j := range pcs {
					// The printer sent return addresses only.
					if j == 0 {
						continue
					}
					chain := strings.Split(names[j], ",")
					if frames[j].Func != chain[len(chain)-1] {
						t.Errorf("run %d pc %#x: got %q, want %q", i, pcs[j], frames[j].Func, chain[len(chain)-1])
					}
				}
				checkInline(t, r.UserInline(cmd.Process.Pid, pcs), pcs, names, tc.inline)
				// runtime.Callers lists middleFrame twice (once per
				// inlined level); collapse repeats.
				var distinct []string
				for _, f := range frames {
					if len(distinct) == 0 || distinct[len(distinct)-1] != f.Func {
						distinct = append(distinct, f.Func)
					}
				}
				if want := "main.leafFrame main.middleFrame main.outerFrame main.main"; !strings.HasPrefix(strings.Join(distinct, " "), want) {
					t.Errorf("run %d: stack %v, want it to start %s", i, frames, want)
				}
				if frames[1].Module != bin || !strings.HasSuffix(frames[1].File, "main.go") {
					t.Errorf("run %d: module %q file %q", i, frames[1].Module, frames[1].File)
				}
				if i == 1 && tc.name == "pie" && pcs[0] == first[0].Addr {
					t.Logf("both runs loaded at the same address (ASLR off?)")
				}
				first = frames
			}
			if n := r.CachedBinaries(); n != 1 {
				t.Errorf("two processes of one binary: %d cached binaries, want 1", n)
			}
		})
	}
}

// checkInline checks UserInline's frames against the runtime's view:
// names[i] is "innermost,physical" for pcs[i]. With inline tables each pc's
// group must run from the innermost to the physical function; without, it
// is the physical function alone.
func checkInline(t *testing.T, frames []Frame, pcs []uint64, names []string, inline bool) {
	t.Helper()
	expanded := false
	k := 0
	for i, pc := range pcs {
		want := strings.Split(names[i], ",")
		var got []Frame
		for k < len(frames) && frames[k].Addr == pc {
			got = append(got, frames[k])
			k++
		}
		if i == 0 || len(got) == 0 {
			if len(got) == 0 {
				t.Errorf("pc %#x: no frames", pc)
			}
			continue // the leaf is looked up exactly, the runtime used pc-1
		}
		inner, outer := got[0], got[len(got)-1]
		if outer.Func != want[1] || outer.Inline {
			t.Errorf("pc %#x: outermost %+v, want physical %s", pc, outer, want[1])
		}
		if inline && inner.Func != want[0] {
			t.Errorf("pc %#x: innermost %q, runtime says %q", pc, inner.Func, want[0])
		}
		if !inline && len(got) != 1 {
			t.Errorf("pc %#x: %d frames without inline tables", pc, len(got))
		}
		for _, f := range got[:len(got)-1] {
			if !f.Inline {
				t.Errorf("pc %#x: %q not marked Inline", pc, f.Func)
			}
		}
		expanded = expanded || len(got) > 1
	}
	if k != len(frames) {
		t.Errorf("%d frames not attributed to any pc", len(frames)-k)
	}
	if inline && !expanded {
		t.Errorf("no pc was expanded; the test program must have an inlined call")
	}
}

func TestUserC(t *testing.T) {
	gcc, err := exec.LookPath("gcc")
	if err != nil {
		t.Skip("gcc not found: cannot build the C test program")
	}
	for _, tc := range []struct {
		name string
		args []string
	}{
		{"pie", []string{"-fpie", "-pie"}},
		{"no-pie", []string{"-no-pie"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			bin := filepath.Join(t.TempDir(), "cprog")
			args := append([]string{"-O0", "-g0", "-o", bin}, tc.args...)
			if out, err := exec.Command(gcc, append(args, "testdata/cprog.c")...).CombinedOutput(); err != nil {
				t.Fatalf("gcc: %v\n%s", err, out)
			}
			cmd, pcs, names := startPrinter(t, bin)
			frames := NewResolver().User(cmd.Process.Pid, pcs)
			for i := range pcs {
				if frames[i].Func != names[i] {
					t.Errorf("pc %#x: got %q, want %q", pcs[i], frames[i].Func, names[i])
				}
			}
		})
	}
}

func TestUserUnknown(t *testing.T) {
	r := NewResolver()
	pcs := []uint64{0x10, 0xdeadbeef}
	frames := r.User(os.Getpid(), pcs)
	for i, f := range frames {
		if !strings.HasPrefix(f.Func, "[unknown] 0x") || f.Known() || f.Addr != pcs[i] {
			t.Errorf("frame %d: %+v", i, f)
		}
	}
	// A process that does not exist still yields one frame per pc.
	frames = r.User(1<<30, pcs)
	if len(frames) != 2 || frames[1].Func != "[unknown] 0xdeadbeef" {
		t.Errorf("missing pid: %+v", frames)
	}
}

func TestParseMapsLine(t *testing.T) {
	for _, tc := range []struct {
		line string
		want mapping
		exec bool
		err  bool
	}{
		{"558bf962a000-558bf962f000 r-xp 00002000 fe:00 247026                     /usr/bin/cat",
			mapping{0x558bf962a000, 0x558bf962f000, 0x2000, "fe:00", 247026, "/usr/bin/cat"}, true, false},
		{"7f0000000000-7f0000001000 r-xp 00001000 08:01 12 /tmp/with space/bin (deleted)",
			mapping{0x7f0000000000, 0x7f0000001000, 0x1000, "08:01", 12, "/tmp/with space/bin (deleted)"}, true, false},
		{"7ffd1000-7ffd3000 r-xp 00000000 00:00 0                          [vdso]",
			mapping{0x7ffd1000, 0x7ffd3000, 0, "00:00", 0, "[vdso]"}, true, false},
		{"7f00-7f10 rw-p 00000000 00:00 0 ", mapping{0x7f00, 0x7f10, 0, "00:00", 0, ""}, false, false},
		{"zz-10 r-xp 0 00:00 0", mapping{}, false, true},
		{"10 r-xp", mapping{}, false, true},
	} {
		m, ex, err := parseMapsLine(tc.line)
		if (err != nil) != tc.err {
			t.Errorf("%q: err %v", tc.line, err)
			continue
		}
		if tc.err {
			continue
		}
		if m != tc.want || ex != tc.exec {
			t.Errorf("%q: got %+v exec=%v, want %+v exec=%v", tc.line, m, ex, tc.want, tc.exec)
		}
	}
}

func TestParseMapsError(t *testing.T) {
	_, err := parseMaps(strings.NewReader("10-20 r-xp 0 00:00 0 /a\nbogus\n"), "maps")
	if err == nil || !strings.Contains(err.Error(), "maps:2:") {
		t.Fatalf("want error naming maps:2, got %v", err)
	}
}

func TestKallsymsSynthetic(t *testing.T) {
	r := NewResolverOptions(Options{Kallsyms: "testdata/kallsyms.txt"})
	if err := r.KernelErr(); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		pcs  []uint64
		want []Frame
	}{
		{[]uint64{0xffffffff81002010}, []Frame{{Func: "schedule", Module: KernelModule, Addr: 0xffffffff81002010}}},
		// Data symbols are skipped: this address belongs to schedule's text.
		{[]uint64{0xffffffff81002500}, []Frame{{Func: "schedule", Module: KernelModule, Addr: 0xffffffff81002500}}},
		// A return address right after a symbol start is charged to the
		// previous function (looked up at pc-1).
		{[]uint64{0xffffffff81002010, 0xffffffff81002800}, []Frame{
			{Func: "schedule", Module: KernelModule, Addr: 0xffffffff81002010},
			{Func: "schedule", Module: KernelModule, Addr: 0xffffffff81002800}}},
		{[]uint64{0xffffffffc0002004}, []Frame{{Func: "ext4_write", Module: "ext4", Addr: 0xffffffffc0002004}}},
		{[]uint64{0x1000}, []Frame{{Func: "[unknown] 0x1000", Addr: 0x1000}}},
		{[]uint64{0xffffffffc1000000}, []Frame{{Func: "[unknown] 0xffffffffc1000000", Addr: 0xffffffffc1000000}}},
		{[]uint64{0xffffffff81003001}, []Frame{{Func: "weak_fn", Module: KernelModule, Addr: 0xffffffff81003001}}},
	} {
		got := r.Kernel(tc.pcs)
		if len(got) != len(tc.want) {
			t.Fatalf("%x: %v", tc.pcs, got)
		}
		for i := range got {
			if got[i] != tc.want[i] {
				t.Errorf("%x[%d]: got %+v, want %+v", tc.pcs, i, got[i], tc.want[i])
			}
		}
	}
}

func TestKallsymsErrors(t *testing.T) {
	for _, tc := range []struct {
		name, in, want string
	}{
		{"short line", "ffffffff81000000 T\n", "k:1:"},
		{"bad address", "ffffffff81000000 T a\nxyz T b\n", "k:2: address"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseKallsyms(strings.NewReader(tc.in), "k")
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want %q", err, tc.want)
			}
		})
	}
	k, err := ParseKallsyms(strings.NewReader("0000000000000000 T _text\n0000000000000000 t schedule\n"), "k")
	if err != ErrKernelSymbolsHidden || k == nil || k.Len() != 0 {
		t.Fatalf("hidden addresses: %v, %v", k, err)
	}
	r := NewResolverOptions(Options{Kallsyms: filepath.Join(t.TempDir(), "missing")})
	if r.KernelErr() == nil {
		t.Fatal("missing kallsyms: no error")
	}
	if f := r.Kernel([]uint64{0xffffffff81000000}); f[0].Func != "[unknown] 0xffffffff81000000" {
		t.Fatalf("missing kallsyms: %+v", f)
	}
}

func TestKallsymsReal(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("not root: /proc/kallsyms addresses are hidden by kptr_restrict")
	}
	f, err := os.Open(DefaultKallsyms)
	if err != nil {
		t.Skipf("no kallsyms: %v", err)
	}
	defer f.Close()
	data, err := io.ReadAll(f)
	if err != nil {
		t.Fatal(err)
	}
	// Find the real address of schedule and check the resolver maps an
	// address inside it back to it.
	var addr uint64
	for _, line := range strings.Split(string(data), "\n") {
		fs := strings.Fields(line)
		if len(fs) >= 3 && fs[2] == "schedule" && (fs[1] == "T" || fs[1] == "t") {
			addr, _ = strconv.ParseUint(fs[0], 16, 64)
		}
	}
	if addr == 0 {
		t.Skip("schedule not in kallsyms")
	}
	r := NewResolver()
	if err := r.KernelErr(); err != nil {
		t.Fatalf("as root: %v", err)
	}
	k, _ := r.kallsyms()
	if k.Len() < 1000 {
		t.Errorf("only %d kernel text symbols", k.Len())
	}
	got := r.Kernel([]uint64{addr + 4})
	if got[0].Func != "schedule" || got[0].Module != KernelModule {
		t.Errorf("got %+v, want schedule", got[0])
	}
}

func BenchmarkUserSelf(b *testing.B) {
	pcs := selfMiddle()
	r := NewResolver()
	r.User(os.Getpid(), pcs) // warm the caches: steady state is what matters
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		r.User(os.Getpid(), pcs)
	}
	b.ReportMetric(float64(b.N*len(pcs))/b.Elapsed().Seconds(), "frames/s")
}

func BenchmarkKernel(b *testing.B) {
	r := NewResolverOptions(Options{Kallsyms: "testdata/kallsyms.txt"})
	if os.Geteuid() == 0 {
		r = NewResolver()
	}
	if err := r.KernelErr(); err != nil {
		b.Skip(err)
	}
	k, _ := r.kallsyms()
	pcs := make([]uint64, 64)
	for i := range pcs {
		pcs[i] = k.syms[(i*7919)%len(k.syms)].addr + 3
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		r.Kernel(pcs)
	}
	b.ReportMetric(float64(b.N*len(pcs))/b.Elapsed().Seconds(), "frames/s")
}

// TestUserReplacedBinary checks that a binary replaced on disk while its
// process runs is not symbolized with the new file: as root the old file is
// read through /proc/PID/map_files, otherwise frames stay unresolved.
func TestUserReplacedBinary(t *testing.T) {
	gcc, err := exec.LookPath("gcc")
	if err != nil {
		t.Skip("gcc not found: cannot build the C test program")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "cprog")
	if out, err := exec.Command(gcc, "-O0", "-o", bin, "testdata/cprog.c").CombinedOutput(); err != nil {
		t.Fatalf("gcc: %v\n%s", err, out)
	}
	cmd, pcs, names := startPrinter(t, bin)
	// Replace the file: a different binary under the same path.
	sh, err := os.ReadFile("/bin/true")
	if err != nil {
		t.Skip("no /bin/true to replace the binary with")
	}
	tmp := filepath.Join(dir, "new")
	if err := os.WriteFile(tmp, sh, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, bin); err != nil {
		t.Fatal(err)
	}
	frames := NewResolver().User(cmd.Process.Pid, pcs)
	for i, f := range frames {
		switch {
		case f.Func == names[i]:
		case os.Geteuid() != 0 && strings.HasPrefix(f.Func, "cprog+0x"):
		default:
			t.Errorf("pc %#x: got %q, want %q (or unresolved when not root)", pcs[i], f.Func, names[i])
		}
	}
	if os.Geteuid() == 0 && frames[0].Func != "beta" {
		t.Errorf("as root, map_files should give the old binary: %+v", frames[0])
	}
}

// TestResolverConcurrent exercises the caches from many goroutines (CI runs
// it under -race).
func TestResolverConcurrent(t *testing.T) {
	r := NewResolverOptions(Options{Kallsyms: "testdata/kallsyms.txt"})
	pcs := selfMiddle()
	want := r.User(os.Getpid(), pcs)
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := 0; i < 50; i++ {
				if g%2 == 0 {
					r.Forget(os.Getpid())
				}
				got := r.User(os.Getpid(), pcs)
				for j := range got {
					if got[j] != want[j] {
						t.Errorf("goroutine %d: frame %d: %+v, want %+v", g, j, got[j], want[j])
						return
					}
				}
				r.UserInline(os.Getpid(), pcs)
				if k := r.Kernel([]uint64{0xffffffff81002010}); k[0].Func != "schedule" {
					t.Errorf("kernel: %+v", k[0])
					return
				}
			}
		}(g)
	}
	wg.Wait()
}

func TestUserVDSO(t *testing.T) {
	pm, err := readMaps(DefaultProcRoot, os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	var vdso *mapping
	for i := range pm.m {
		if pm.m[i].path == vdsoPath {
			vdso = &pm.m[i]
		}
	}
	if vdso == nil {
		t.Skip("no [vdso] mapping in this process")
	}
	r := NewResolver()
	b := r.vdsoLocked(os.Getpid(), vdso)
	if b.err != nil {
		t.Fatal(b.err)
	}
	// Every exported vDSO function must resolve to itself (or an alias at
	// the same address) through the process mapping.
	checked := 0
	for _, s := range b.syms {
		if !strings.Contains(s.name, "gettime") && !strings.Contains(s.name, "getcpu") {
			continue
		}
		off := s.addr - b.segs[0].vaddr + b.segs[0].off // vDSO file offset == mapping offset
		pc := vdso.start + off + 1
		f := r.User(os.Getpid(), []uint64{pc})[0]
		if f.Func != s.name || f.Module != vdsoPath {
			t.Errorf("vdso %s at %#x: got %+v", s.name, pc, f)
		}
		checked++
	}
	if checked == 0 {
		t.Fatalf("no gettime/getcpu symbols in the vDSO: %v", b.syms)
	}
}

// BenchmarkLookupUncached measures the cold path (first sight of a pc):
// .gopclntab decoding for pcs spread over this binary's functions.
func BenchmarkLookupUncached(b *testing.B) {
	exe, err := os.Executable()
	if err != nil {
		b.Fatal(err)
	}
	bin := loadBinary(0, exe)
	if bin.err != nil || bin.gotab == nil {
		b.Skip("cannot parse own executable")
	}
	funcs := bin.gotab.Funcs
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		f := funcs[(i*7919)%len(funcs)]
		bin.lookupUncached(f.Entry + (f.End-f.Entry)/2)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "frames/s")
}
