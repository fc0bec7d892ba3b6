//go:build linux && amd64

package goprobe

import (
	"bytes"
	"encoding/binary"
	"os"
	"runtime"
	"strconv"
	"syscall"
	"testing"
	"unsafe"
)

// TestLiveOffsets checks the offsets against this very process: from the
// thread's FS base and TLSGOffset it reads g from /proc/self/mem, then
// g.goid must equal the goroutine id runtime.Stack prints, g.m.curg must be
// g, and g.m.procid must be the thread id. That is exactly the pointer chase
// the BPF programs do.
func TestLiveOffsets(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	b := openT(t, exe)
	o, err := b.Offsets()
	if err != nil {
		t.Fatal(err)
	}
	// go test links test binaries without DWARF: then this checks the
	// fallback table itself against the running runtime.
	t.Logf("offsets from %s: %+v", o.Source, o)
	if want := fallback[b.GoMinor()].Offsets; want.GGoid != o.GGoid || want.MCurg != o.MCurg || want.MProcid != o.MProcid || want.GM != o.GM || want.SchedBP() != o.SchedBP() {
		t.Errorf("test binary offsets %+v differ from the go1.%d table %+v", o, b.GoMinor(), want)
	}
	tlsOff, err := b.TLSGOffset()
	if err != nil {
		t.Fatal(err)
	}
	mem, err := os.Open("/proc/self/mem")
	if err != nil {
		t.Skipf("cannot read /proc/self/mem: %v", err)
	}
	defer mem.Close()
	read := func(addr uint64) uint64 {
		var buf [8]byte
		if _, err := mem.ReadAt(buf[:], int64(addr)); err != nil {
			t.Fatalf("read %#x: %v", addr, err)
		}
		return binary.LittleEndian.Uint64(buf[:])
	}

	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	var fsbase uint64
	const archGetFS = 0x1003
	if _, _, errno := syscall.Syscall(syscall.SYS_ARCH_PRCTL, archGetFS, uintptr(unsafe.Pointer(&fsbase)), 0); errno != 0 {
		t.Fatalf("arch_prctl(ARCH_GET_FS): %v", errno)
	}
	g := read(uint64(int64(fsbase) + tlsOff))
	goid := read(g + uint64(o.GGoid))
	m := read(g + uint64(o.GM))
	curg := read(m + uint64(o.MCurg))
	procid := read(m + uint64(o.MProcid))

	stack := make([]byte, 64)
	stack = stack[:runtime.Stack(stack, false)]
	fields := bytes.Fields(stack)
	want, err := strconv.ParseUint(string(fields[1]), 10, 64)
	if err != nil {
		t.Fatalf("parse goroutine id from %q: %v", stack, err)
	}
	if goid != want {
		t.Errorf("goid via g+%d = %d, runtime says %d", o.GGoid, goid, want)
	}
	if curg != g {
		t.Errorf("m.curg = %#x, want g %#x", curg, g)
	}
	if tid := uint64(syscall.Gettid()); procid != tid {
		t.Errorf("m.procid = %d, want tid %d", procid, tid)
	}
}
