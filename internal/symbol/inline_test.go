package symbol

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// TestInlineSweep compares, for pcs across this test binary's text, the
// innermost function and source position from our own inline-tree decoder
// with what the Go runtime reports for the same pc.
func TestInlineSweep(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	b := loadBinary(0, exe)
	if b.err != nil {
		t.Fatal(b.err)
	}
	if b.inl == nil {
		// go test links with -s; go test -c keeps the symbol table.
		// Rebuild this test that way and run the sweep there.
		if os.Getenv("SYMBOL_SWEEP_CHILD") != "" {
			t.Fatal("child test binary has no inline tables either")
		}
		if testing.Short() {
			t.Skip("test binary has no go:func.* symbol (linked with -s); rebuilding it is skipped in -short")
		}
		bin := filepath.Join(t.TempDir(), "symbol.test")
		if out, err := exec.Command("go", "test", "-c", "-o", bin, ".").CombinedOutput(); err != nil {
			t.Fatalf("go test -c: %v\n%s", err, out)
		}
		cmd := exec.Command(bin, "-test.run", "^TestInlineSweep$", "-test.v")
		cmd.Env = append(os.Environ(), "SYMBOL_SWEEP_CHILD=1")
		out, err := cmd.CombinedOutput()
		if err != nil || !strings.Contains(string(out), "--- PASS: TestInlineSweep") {
			t.Fatalf("sweep in %s: %v\n%s", bin, err, out)
		}
		t.Logf("ran in a go test -c build:\n%s", out)
		return
	}
	// The test binary is not PIE, so link-time addresses are runtime ones.
	self := runtime.FuncForPC(uintptr(b.goLo))
	if self == nil {
		t.Skip("test binary is position-independent: link-time and runtime addresses differ")
	}
	checked, inlined := 0, 0
	for _, fn := range b.gotab.Funcs {
		for pc := fn.Entry; pc+1 < fn.End; pc += 7 {
			// The runtime finds the function of pc+1 (so stay inside fn), then
			// treats it as a return address and resolves pc.
			rf, _ := runtime.CallersFrames([]uintptr{uintptr(pc + 1)}).Next()
			if rf.Function == "" {
				continue
			}
			checked++
			chain := b.inl.chain(pc)
			name := fn.Name
			if len(chain) > 0 {
				inlined++
				name = chain[0].name
				if chain[len(chain)-1].name != fn.Name {
					t.Fatalf("pc %#x: chain ends in %q, physical function is %q", pc, chain[len(chain)-1].name, fn.Name)
				}
			}
			if printName(name) != rf.Function {
				t.Fatalf("pc %#x in %s: innermost %q, runtime %q", pc, fn.Name, name, rf.Function)
			}
			fs := b.lookupInline(pc)
			if len(fs) > 0 && (fs[0].File != rf.File || fs[0].Line != rf.Line) {
				t.Fatalf("pc %#x: position %s:%d, runtime %s:%d", pc, fs[0].File, fs[0].Line, rf.File, rf.Line)
			}
		}
	}
	t.Logf("checked %d pcs, %d inside inlined code", checked, inlined)
	if inlined == 0 {
		t.Fatal("no inlined code found: the decoder is not exercised")
	}
}
