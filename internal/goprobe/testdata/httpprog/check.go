package main

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"syscall"
	"unsafe"
)

// checkOffsets does the pointer chase the BPF programs do, with offsets
// handed in by the test: g from FS base+tls, then g.goid, g.m, m.curg,
// m.procid, and compares with what the runtime and kernel say.
func checkOffsets(tls, goidOff, mOff, curgOff, procidOff int64) error {
	mem, err := os.Open("/proc/self/mem")
	if err != nil {
		return err
	}
	defer mem.Close()
	read := func(addr uint64) (uint64, error) {
		var buf [8]byte
		_, err := mem.ReadAt(buf[:], int64(addr))
		return binary.LittleEndian.Uint64(buf[:]), err
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	var fsbase uint64
	if _, _, errno := syscall.Syscall(syscall.SYS_ARCH_PRCTL, 0x1003, uintptr(unsafe.Pointer(&fsbase)), 0); errno != 0 {
		return errno
	}
	var g, goid, m, curg, procid uint64
	for _, step := range []struct {
		dst  *uint64
		addr func() uint64
	}{
		{&g, func() uint64 { return uint64(int64(fsbase) + tls) }},
		{&goid, func() uint64 { return g + uint64(goidOff) }},
		{&m, func() uint64 { return g + uint64(mOff) }},
		{&curg, func() uint64 { return m + uint64(curgOff) }},
		{&procid, func() uint64 { return m + uint64(procidOff) }},
	} {
		if *step.dst, err = read(step.addr()); err != nil {
			return err
		}
	}
	stack := make([]byte, 64)
	stack = stack[:runtime.Stack(stack, false)]
	want, err := strconv.ParseUint(string(bytes.Fields(stack)[1]), 10, 64)
	if err != nil {
		return err
	}
	if goid != want || curg != g || procid != uint64(syscall.Gettid()) {
		return fmt.Errorf("goid %d (want %d), m.curg %#x (want g %#x), m.procid %d (want %d)",
			goid, want, curg, g, procid, syscall.Gettid())
	}
	return nil
}
