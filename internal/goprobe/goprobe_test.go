package goprobe

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
)

// OldToolchain is the older Go release every test also runs against (the
// module proxy serves it through GOTOOLCHAIN; see shared/FACTS.md).
const OldToolchain = "go1.22.12"

var (
	buildDir string
	buildMu  sync.Mutex
	builds   = map[string]buildResult{}
)

type buildResult struct {
	path string
	skip string // reason to skip, when the toolchain is unavailable
	err  error
}

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "goprobe-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	buildDir = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// buildProg builds testdata/httpprog with toolchain ("local" or a goX.Y.Z
// release) and extra build flags, once per test binary run.
func buildProg(t testing.TB, toolchain string, flags ...string) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds Go programs; skipped in -short")
	}
	key := toolchain + " " + strings.Join(flags, " ")
	buildMu.Lock()
	defer buildMu.Unlock()
	r, ok := builds[key]
	if !ok {
		r = doBuild(toolchain, flags)
		builds[key] = r
	}
	if r.skip != "" {
		t.Skip(r.skip)
	}
	if r.err != nil {
		t.Fatal(r.err)
	}
	return r.path
}

func doBuild(toolchain string, flags []string) buildResult {
	env := append(os.Environ(), "GOTOOLCHAIN="+toolchain, "GOWORK=off", "GOFLAGS=")
	if toolchain != "local" {
		// Fetching the toolchain is the part that may fail offline: skip
		// then, but fail on a real compile error.
		cmd := exec.Command("go", "version")
		cmd.Env = env
		if out, err := cmd.CombinedOutput(); err != nil {
			return buildResult{skip: fmt.Sprintf("toolchain %s unavailable: %v: %s", toolchain, err, strings.TrimSpace(string(out)))}
		}
	}
	out := filepath.Join(buildDir, fmt.Sprintf("httpprog-%d", len(builds)))
	args := append([]string{"build", "-o", out}, flags...)
	cmd := exec.Command("go", append(args, ".")...)
	cmd.Dir = "testdata/httpprog"
	cmd.Env = env
	if b, err := cmd.CombinedOutput(); err != nil {
		return buildResult{err: fmt.Errorf("GOTOOLCHAIN=%s go %v: %v\n%s", toolchain, args, err, b)}
	}
	return buildResult{path: out}
}

func openT(t *testing.T, path string) *Binary {
	t.Helper()
	b, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

var toolchains = []string{"local", OldToolchain}

// TestOffsetsMatchTable checks, for the repo toolchain and an old one, that
// the DWARF-derived offsets and wait reasons equal the fallback table, and
// that a stripped build (-w: no DWARF; -s -w: no symbols either) gets the
// table's values.
func TestOffsetsMatchTable(t *testing.T) {
	for _, tc := range toolchains {
		t.Run(tc, func(t *testing.T) {
			full := openT(t, buildProg(t, tc))
			minor := full.GoMinor()
			if tc == OldToolchain && minor != 22 {
				t.Fatalf("%s built a binary reporting %s", tc, full.GoVersion())
			}
			entry, ok := fallback[minor]
			if !ok {
				t.Fatalf("no fallback table for %s: regenerate with GOPROBE_GEN_FALLBACK=1", full.GoVersion())
			}
			d, err := full.DWARFOffsets()
			if err != nil {
				t.Fatal(err)
			}
			want := entry.Offsets
			want.Source = "dwarf"
			if d != want {
				t.Errorf("%s: DWARF %+v, table %+v", full.GoVersion(), d, entry.Offsets)
			}
			if o, err := full.Offsets(); err != nil || o != d {
				t.Errorf("Offsets() = %+v, %v; want DWARF's %+v", o, err, d)
			}
			wr, src, err := full.WaitReasons()
			if err != nil || src != "binary" {
				t.Fatalf("WaitReasons: source %q, %v", src, err)
			}
			if !reflect.DeepEqual(wr, entry.WaitReasons) {
				t.Errorf("wait reasons from binary differ from the table:\n got %v\nwant %v", wr, entry.WaitReasons)
			}
			checkKnownReasons(t, wr)

			for _, flags := range [][]string{{"-ldflags=-w"}, {"-ldflags=-s -w"}} {
				stripped := openT(t, buildProg(t, tc, flags...))
				o, err := stripped.Offsets()
				if err != nil {
					t.Fatalf("%v: %v", flags, err)
				}
				if wantSrc := fmt.Sprintf("table go1.%d", minor); o.Source != wantSrc {
					t.Errorf("%v: source %q, want %q", flags, o.Source, wantSrc)
				}
				o.Source = "dwarf"
				if o != d {
					t.Errorf("%v: %+v, want %+v", flags, o, d)
				}
				if _, err := stripped.DWARFOffsets(); err == nil {
					t.Errorf("%v: DWARFOffsets succeeded on a binary without DWARF", flags)
				}
				swr, ssrc, err := stripped.WaitReasons()
				if err != nil || !strings.HasPrefix(ssrc, "table") || !reflect.DeepEqual(swr, wr) {
					t.Errorf("%v: wait reasons from %q (%v) differ", flags, ssrc, err)
				}
			}
		})
	}
}

// checkKnownReasons checks a few wait reasons the collectors classify by.
func checkKnownReasons(t *testing.T, wr []WaitReason) {
	t.Helper()
	want := map[string]string{
		"SyncMutexLock":   "sync.Mutex.Lock",
		"SyncRWMutexLock": "sync.RWMutex.Lock",
		"ChanReceive":     "chan receive",
		"Select":          "select",
		"IOWait":          "IO wait",
		"GCAssistWait":    "GC assist wait",
	}
	for _, r := range wr {
		if s, ok := want[r.Name]; ok {
			if r.String != s {
				t.Errorf("wait reason %s: %q, want %q", r.Name, r.String, s)
			}
			delete(want, r.Name)
		}
	}
	if len(want) > 0 {
		t.Errorf("missing wait reasons: %v", want)
	}
}

// TestOffsetsLive runs binaries built by each toolchain (static and PIE,
// with and without DWARF) with the offsets goprobe derives for them; the
// program chases g through its own TLS and checks goid, m.curg and m.procid.
func TestOffsetsLive(t *testing.T) {
	for _, tc := range toolchains {
		variants := [][]string{nil, {"-ldflags=-s -w"}}
		if tc == "local" {
			variants = append(variants, []string{"-buildmode=pie"})
		}
		for _, flags := range variants {
			t.Run(tc+strings.Join(flags, ""), func(t *testing.T) {
				path := buildProg(t, tc, flags...)
				b := openT(t, path)
				o, err := b.Offsets()
				if err != nil {
					t.Fatal(err)
				}
				tls, err := b.TLSGOffset()
				if err != nil {
					t.Fatal(err)
				}
				arg := fmt.Sprintf("%d,%d,%d,%d,%d", tls, o.GGoid, o.GM, o.MCurg, o.MProcid)
				out, err := exec.Command(path, "-check", arg).CombinedOutput()
				if err != nil || strings.TrimSpace(string(out)) != "ok" {
					t.Errorf("%s -check %s (offsets from %s): %v\n%s", b.GoVersion(), arg, o.Source, err, out)
				}
			})
		}
	}
}

func TestWaitReasonsPIE(t *testing.T) {
	// PIE pointer slots are zero in the file and filled by relocations.
	b := openT(t, buildProg(t, "local", "-buildmode=pie"))
	wr, src, err := b.WaitReasons()
	if err != nil || src != "binary" {
		t.Fatalf("source %q, %v", src, err)
	}
	checkKnownReasons(t, wr)
}

func TestRetOffsets(t *testing.T) {
	for _, tc := range toolchains {
		variants := [][]string{nil, {"-ldflags=-s -w"}}
		if tc == "local" {
			// PIE recompiles the standard library: only with the toolchain
			// whose cache is warm.
			variants = append(variants, []string{"-buildmode=pie"})
		}
		for _, flags := range variants {
			t.Run(tc+strings.Join(flags, ""), func(t *testing.T) {
				b := openT(t, buildProg(t, tc, flags...))
				raw, err := os.ReadFile(b.Path())
				if err != nil {
					t.Fatal(err)
				}
				for _, name := range []string{"net/http.serverHandler.ServeHTTP", "runtime.gopark", "runtime.gcStart", "main.handle"} {
					f, err := b.FuncRange(name)
					if err != nil {
						t.Fatal(err)
					}
					if f.End <= f.Entry || f.FileOffset == 0 || f.FileOffset >= uint64(len(raw)) {
						t.Fatalf("%s: implausible range %+v", name, f)
					}
					rets, err := b.RetOffsets(name)
					if err != nil {
						t.Fatal(err)
					}
					if len(rets) == 0 {
						t.Errorf("%s: no RET found", name)
					}
					for _, off := range rets {
						if off >= f.End-f.Entry || raw[f.FileOffset+off] != 0xc3 {
							t.Errorf("%s: RET offset %#x is not a 0xc3 byte inside the function", name, off)
						}
					}
				}
				if _, err := b.FuncRange("main.noSuchFunction"); !errors.Is(err, ErrNoFunc) {
					t.Errorf("missing function: %v", err)
				}
			})
		}
	}
}

func TestFindRets(t *testing.T) {
	for _, tc := range []struct {
		name string
		code []byte
		want []uint64
		err  bool
	}{
		{"ret only", []byte{0xc3}, []uint64{0}, false},
		// mov eax, 0xc3 contains a 0xc3 byte that is not an instruction.
		{"immediate c3", []byte{0xb8, 0xc3, 0, 0, 0, 0xc3}, []uint64{5}, false},
		// push rbp; mov rbp,rsp; ret; int3 padding
		{"padded", []byte{0x55, 0x48, 0x89, 0xe5, 0xc3, 0xcc, 0xcc, 0xcc}, []uint64{4}, false},
		// two exits: test eax,eax; je +1; ret; ret
		{"two rets", []byte{0x85, 0xc0, 0x74, 0x01, 0xc3, 0xc3}, []uint64{4, 5}, false},
		{"ret imm16", []byte{0xc2, 0x08, 0x00}, []uint64{0}, false},
		{"none", []byte{0x90, 0x90}, nil, false},
		{"truncated", []byte{0xc3, 0x48, 0x8b}, nil, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := findRets(tc.code)
			if (err != nil) != tc.err {
				t.Fatalf("err %v", err)
			}
			if !tc.err && !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
		})
	}
}

func TestOpenErrors(t *testing.T) {
	dir := t.TempDir()
	notELF := filepath.Join(dir, "text")
	os.WriteFile(notELF, []byte("hello"), 0o644)
	for _, tc := range []struct{ name, path, want string }{
		{"missing", filepath.Join(dir, "missing"), "no such file"},
		{"not elf", notELF, notELF},
		{"not go", "/bin/sh", "not a Go binary"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, err := Open(tc.path)
			if err == nil {
				b.Close()
				t.Fatal("no error")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %q does not mention %q", err, tc.want)
			}
		})
	}
}

func BenchmarkRetOffsets(b *testing.B) {
	bin, err := Open(buildProg(b, "local"))
	if err != nil {
		b.Fatal(err)
	}
	defer bin.Close()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := bin.RetOffsets("net/http.(*conn).serve"); err != nil {
			b.Fatal(err)
		}
	}
}

// TestProbeTargets checks that every uprobe target exists with RETs in the
// binaries of each toolchain.
func TestProbeTargets(t *testing.T) {
	for _, tc := range toolchains {
		t.Run(tc, func(t *testing.T) {
			b := openT(t, buildProg(t, tc, "-ldflags=-s -w"))
			for _, name := range ProbeTargets {
				rets, err := b.RetOffsets(name)
				if err != nil || len(rets) == 0 {
					t.Errorf("%s: %d RETs, %v", name, len(rets), err)
				}
			}
		})
	}
}

// TestArgRegisters checks the ABI register assignment from DWARF against
// the no-DWARF table, for each toolchain, and the table's use when stripped.
func TestArgRegisters(t *testing.T) {
	for _, tc := range toolchains {
		t.Run(tc, func(t *testing.T) {
			full := openT(t, buildProg(t, tc))
			stripped := openT(t, buildProg(t, tc, "-ldflags=-w"))
			for k, want := range knownArgs {
				got, err := full.ArgRegisters(k[0], k[1])
				if err != nil || !reflect.DeepEqual(got, want) {
					t.Errorf("%s(%s): DWARF gives %v, %v; table has %v", k[0], k[1], got, err, want)
				}
				if got, err := stripped.ArgRegisters(k[0], k[1]); err != nil || !reflect.DeepEqual(got, want) {
					t.Errorf("stripped %s(%s): %v, %v", k[0], k[1], got, err)
				}
			}
			if _, err := full.ArgRegisters("runtime.gopark", "nosuch"); err == nil {
				t.Error("unknown parameter: no error")
			}
			if _, err := stripped.ArgRegisters("runtime.gopark", "nosuch"); !errors.Is(err, ErrUnknownVersion) {
				t.Errorf("stripped, unknown parameter: %v", err)
			}
		})
	}
}

// TestBinaryConcurrent uses one Binary from several goroutines (CI runs it
// under -race).
func TestBinaryConcurrent(t *testing.T) {
	b := openT(t, buildProg(t, "local"))
	var wg sync.WaitGroup
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := b.Offsets(); err != nil {
				t.Error(err)
			}
			if _, _, err := b.WaitReasons(); err != nil {
				t.Error(err)
			}
			if regs, err := b.ArgRegisters("runtime.gopark", "reason"); err != nil || len(regs) != 1 {
				t.Error(regs, err)
			}
			if _, err := b.RetOffsets("runtime.gopark"); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
}
