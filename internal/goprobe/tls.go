package goprobe

import (
	"debug/elf"
	"fmt"
)

// TLSGOffset returns where the runtime keeps the current goroutine's g
// pointer, as an offset from the thread pointer (the FS base on amd64; in
// BPF, task->thread.fsbase): g = *(fsbase + off). Scheduler hooks that do not
// run on a Go stack (r14 is not g there) read g this way.
//
// A statically linked Go binary stores g at -8. When the binary has a TLS
// segment (PIE, cgo/external linking), g is runtime.tlsg inside the main
// executable's static TLS block, which ends at the thread pointer (x86-64
// TLS variant II): off = tlsg - roundup(PT_TLS.Memsz, PT_TLS.Align).
func (b *Binary) TLSGOffset() (int64, error) {
	var tls *elf.Prog
	for _, p := range b.elf.Progs {
		if p.Type == elf.PT_TLS {
			tls = p
		}
	}
	if tls == nil {
		return -8, nil
	}
	align := max(tls.Align, 1)
	block := (tls.Memsz + align - 1) / align * align
	if s, ok := b.syms["runtime.tlsg"]; ok {
		return int64(s.Value) - int64(block), nil
	}
	if tls.Memsz == 8 {
		// The segment holds only runtime.tlsg.
		return -int64(block), nil
	}
	return 0, fmt.Errorf("g TLS slot of %s: TLS segment of %d bytes and no runtime.tlsg symbol (stripped cgo binary): %w",
		b.path, tls.Memsz, ErrNotSupported)
}
