// Package goprobe owns the static analysis of Go binaries that the Go-aware
// uprobes need: where a function starts (file offset for the uprobe), where
// every RET instruction of it is (uprobes on RETs replace uretprobes, which
// crash Go programs when goroutine stacks move), the binary's Go version,
// the offsets of the runtime.g and runtime.m fields that give goroutine
// identity, and the runtime's wait-reason names.
//
// Offsets come from DWARF when the binary has it; a stripped binary
// (-ldflags=-w or -s) falls back to a per-Go-version table generated from
// real toolchains (see fallback.go). Only linux/amd64 ELF binaries are
// supported.
package goprobe

import (
	"debug/buildinfo"
	"debug/dwarf"
	"debug/elf"
	"debug/gosym"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"regexp"
	"strconv"
	"sync"

	"golang.org/x/arch/x86/x86asm"
)

// Sentinel errors callers branch on.
var (
	// ErrNotSupported: not an amd64 ELF Go binary.
	ErrNotSupported = errors.New("not supported")
	// ErrNoFunc: the function is not in the binary (inlined everywhere or
	// dead-code eliminated).
	ErrNoFunc = errors.New("function not found")
	// ErrUnknownVersion: no DWARF and no fallback table for this Go version.
	ErrUnknownVersion = errors.New("no offsets for this Go version")
)

// Binary is an opened Go executable. It holds the file open; Close it. Its
// methods are safe for concurrent use.
type Binary struct {
	path      string
	file      *os.File
	elf       *elf.File
	goVersion string
	syms      map[string]elf.Symbol // ELF symtab; empty when stripped with -s
	gotab     *gosym.Table          // from .gopclntab, present even with -s

	dwarfOnce sync.Once
	dwarfData *dwarf.Data
	dwarfErr  error
	dwarfMu   sync.Mutex // debug/dwarf is not safe for concurrent use
}

// dwarf parses the DWARF sections once; they are large in big binaries.
func (b *Binary) dwarf() (*dwarf.Data, error) {
	b.dwarfOnce.Do(func() { b.dwarfData, b.dwarfErr = b.elf.DWARF() })
	return b.dwarfData, b.dwarfErr
}

// Open parses the Go binary at path.
func Open(path string) (*Binary, error) {
	file, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open go binary: %w", err)
	}
	b, err := newBinary(path, file)
	if err != nil {
		file.Close()
		return nil, fmt.Errorf("open go binary %s: %w", path, err)
	}
	return b, nil
}

func newBinary(path string, file *os.File) (*Binary, error) {
	ef, err := elf.NewFile(file)
	if err != nil {
		return nil, err
	}
	if ef.Machine != elf.EM_X86_64 {
		return nil, fmt.Errorf("machine %v: %w (amd64 only)", ef.Machine, ErrNotSupported)
	}
	bi, err := buildinfo.Read(file)
	if err != nil {
		return nil, fmt.Errorf("read Go build info (not a Go binary?): %w", err)
	}
	b := &Binary{path: path, file: file, elf: ef, goVersion: bi.GoVersion, syms: map[string]elf.Symbol{}}
	syms, _ := ef.Symbols() // stripped binaries have none: fine
	for _, s := range syms {
		if _, dup := b.syms[s.Name]; !dup {
			b.syms[s.Name] = s
		}
	}
	sect := ef.Section(".gopclntab")
	if sect == nil {
		sect = ef.Section(".data.rel.ro.gopclntab")
	}
	if sect == nil {
		return nil, fmt.Errorf("no .gopclntab section: %w", ErrNotSupported)
	}
	data, err := sect.Data()
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", sect.Name, err)
	}
	text := uint64(0)
	if s, ok := b.syms["runtime.text"]; ok {
		text = s.Value
	} else if t := ef.Section(".text"); t != nil {
		text = t.Addr
	}
	b.gotab, err = gosym.NewTable(nil, gosym.NewLineTable(data, text))
	if err != nil {
		return nil, fmt.Errorf("parse %s: %w", sect.Name, err)
	}
	return b, nil
}

// Close releases the file.
func (b *Binary) Close() error { return b.file.Close() }

// Path is the file the Binary was opened from.
func (b *Binary) Path() string { return b.path }

// GoVersion is the toolchain that built the binary, e.g. "go1.26.8".
func (b *Binary) GoVersion() string { return b.goVersion }

var goVersionRE = regexp.MustCompile(`^go1\.(\d+)`)

// GoMinor returns the minor release of the binary's Go version (22 for
// go1.22.12), or 0 if it cannot be parsed (development toolchains).
func (b *Binary) GoMinor() int {
	m := goVersionRE.FindStringSubmatch(b.goVersion)
	if m == nil {
		return 0
	}
	n, _ := strconv.Atoi(m[1])
	return n
}

// Func locates a function in the binary.
type Func struct {
	Name string
	// Entry and End are link-time virtual addresses, [Entry, End).
	Entry, End uint64
	// FileOffset is the file offset of Entry: what a uprobe attaches to
	// (cilium/ebpf link.UprobeOptions.Address takes this value).
	FileOffset uint64
}

// FuncRange returns where name (e.g. "runtime.gopark",
// "net/http.serverHandler.ServeHTTP") starts and ends. It uses the ELF
// symbol table and falls back to .gopclntab in stripped binaries.
func (b *Binary) FuncRange(name string) (Func, error) {
	f := Func{Name: name}
	if s, ok := b.syms[name]; ok && elf.ST_TYPE(s.Info) == elf.STT_FUNC && s.Size > 0 {
		f.Entry, f.End = s.Value, s.Value+s.Size
	} else if gf := b.gotab.LookupFunc(name); gf != nil {
		f.Entry, f.End = gf.Entry, gf.End
	} else {
		return f, fmt.Errorf("%s in %s: %w", name, b.path, ErrNoFunc)
	}
	off, err := b.fileOffset(f.Entry)
	if err != nil {
		return f, fmt.Errorf("%s: %w", name, err)
	}
	f.FileOffset = off
	return f, nil
}

// fileOffset maps a virtual address in an executable segment to its file
// offset (uprobes are placed by file offset, which is PIE-independent).
func (b *Binary) fileOffset(vaddr uint64) (uint64, error) {
	for _, p := range b.elf.Progs {
		if p.Type == elf.PT_LOAD && p.Flags&elf.PF_X != 0 && vaddr >= p.Vaddr && vaddr < p.Vaddr+p.Filesz {
			return vaddr - p.Vaddr + p.Off, nil
		}
	}
	return 0, fmt.Errorf("address %#x is in no executable segment", vaddr)
}

// RetOffsets returns the offsets, relative to the function's entry, of every
// RET instruction of name, found by decoding the whole function as x86-64.
// Add them to Func.FileOffset for absolute file offsets, or pass them as
// link.UprobeOptions.Offset with the symbol. A decoding failure is an error
// rather than a guess: a uprobe placed mid-instruction corrupts the target.
func (b *Binary) RetOffsets(name string) ([]uint64, error) {
	f, err := b.FuncRange(name)
	if err != nil {
		return nil, err
	}
	code := make([]byte, f.End-f.Entry)
	if _, err := b.file.ReadAt(code, int64(f.FileOffset)); err != nil {
		return nil, fmt.Errorf("read code of %s: %w", name, err)
	}
	rets, err := findRets(code)
	if err != nil {
		return nil, fmt.Errorf("decode %s: %w", name, err)
	}
	return rets, nil
}

// findRets decodes code from its start and returns the offsets of RETs.
func findRets(code []byte) ([]uint64, error) {
	var rets []uint64
	for pc := 0; pc < len(code); {
		inst, err := x86asm.Decode(code[pc:], 64)
		if err == nil && inst.Op == 0 {
			// x86asm reports a truncated instruction as a lone
			// prefix with no opcode rather than an error.
			err = x86asm.ErrTruncated
		}
		if err != nil {
			// Go pads functions with INT3; anything else undecodable
			// means we lost instruction boundaries.
			if code[pc] == 0xcc {
				pc++
				continue
			}
			return nil, fmt.Errorf("offset %#x (bytes % x): %w", pc, code[pc:min(pc+8, len(code))], err)
		}
		if inst.Op == x86asm.RET {
			rets = append(rets, uint64(pc))
		}
		pc += inst.Len
	}
	return rets, nil
}

// Offsets are byte offsets of runtime struct fields; -1 marks a field the
// binary's runtime does not have.
type Offsets struct {
	GGoid       int64 // runtime.g.goid (uint64)
	GM          int64 // runtime.g.m (*m)
	GWaitReason int64 // runtime.g.waitreason (uint8)
	MCurg       int64 // runtime.m.curg (*g)
	MProcid     int64 // runtime.m.procid (uint64, the thread id)
	GSched      int64 // runtime.g.sched (runtime.gobuf): a parked goroutine's saved context
	GobufBP     int64 // runtime.gobuf.bp: the frame pointer to unwind a parked goroutine from
	// Source says where the values came from: "dwarf" or "table go1.NN".
	Source string
}

// offsetFields maps struct and member names to Offsets fields.
var offsetFields = []struct {
	strct, member string
	field         func(*Offsets) *int64
}{
	{"runtime.g", "goid", func(o *Offsets) *int64 { return &o.GGoid }},
	{"runtime.g", "m", func(o *Offsets) *int64 { return &o.GM }},
	{"runtime.g", "waitreason", func(o *Offsets) *int64 { return &o.GWaitReason }},
	{"runtime.m", "curg", func(o *Offsets) *int64 { return &o.MCurg }},
	{"runtime.m", "procid", func(o *Offsets) *int64 { return &o.MProcid }},
	{"runtime.g", "sched", func(o *Offsets) *int64 { return &o.GSched }},
	{"runtime.gobuf", "bp", func(o *Offsets) *int64 { return &o.GobufBP }},
}

// layoutStructs are the runtime structs offsetFields reads.
var layoutStructs = map[string]bool{"runtime.g": true, "runtime.m": true, "runtime.gobuf": true}

// SchedBP is the offset in runtime.g of sched.bp: where a goroutine that
// is not running keeps the frame pointer its stack unwinds from.
func (o Offsets) SchedBP() int64 { return o.GSched + o.GobufBP }

// Offsets returns the runtime struct offsets from DWARF, or from the
// fallback table for the binary's Go minor version when DWARF is absent.
func (b *Binary) Offsets() (Offsets, error) {
	b.dwarfMu.Lock()
	defer b.dwarfMu.Unlock()
	d, err := b.dwarf()
	if err == nil {
		o, derr := dwarfOffsets(d)
		if derr == nil {
			return o, nil
		}
		err = derr
	}
	if t, ok := fallback[b.GoMinor()]; ok {
		o := t.Offsets
		o.Source = fmt.Sprintf("table go1.%d", b.GoMinor())
		return o, nil
	}
	return Offsets{}, fmt.Errorf("offsets for %s (%s): no usable DWARF (%v): %w", b.path, b.goVersion, err, ErrUnknownVersion)
}

// DWARFOffsets returns the offsets from DWARF only (for comparing with the
// fallback table).
func (b *Binary) DWARFOffsets() (Offsets, error) {
	b.dwarfMu.Lock()
	defer b.dwarfMu.Unlock()
	d, err := b.dwarf()
	if err != nil {
		return Offsets{}, fmt.Errorf("read DWARF of %s: %w", b.path, err)
	}
	return dwarfOffsets(d)
}

func dwarfOffsets(d *dwarf.Data) (Offsets, error) {
	o := Offsets{GGoid: -1, GM: -1, GWaitReason: -1, MCurg: -1, MProcid: -1, GSched: -1, GobufBP: -1, Source: "dwarf"}
	found := map[string]bool{}
	r := d.Reader()
	for len(found) < len(layoutStructs) {
		e, err := r.Next()
		if err != nil {
			return o, fmt.Errorf("read DWARF: %w", err)
		}
		if e == nil {
			break
		}
		if e.Tag == dwarf.TagCompileUnit {
			continue
		}
		name, _ := e.Val(dwarf.AttrName).(string)
		if e.Tag != dwarf.TagStructType || !layoutStructs[name] || found[name] {
			r.SkipChildren()
			continue
		}
		found[name] = true
		for {
			c, err := r.Next()
			if err != nil {
				return o, fmt.Errorf("read DWARF %s: %w", name, err)
			}
			if c == nil || c.Tag == 0 {
				break
			}
			member, _ := c.Val(dwarf.AttrName).(string)
			loc, ok := c.Val(dwarf.AttrDataMemberLoc).(int64)
			if c.Tag != dwarf.TagMember || !ok {
				continue
			}
			for _, f := range offsetFields {
				if f.strct == name && f.member == member {
					*f.field(&o) = loc
				}
			}
		}
	}
	if !found["runtime.g"] || !found["runtime.m"] || !found["runtime.gobuf"] || o.GGoid < 0 || o.MCurg < 0 || o.GSched < 0 || o.GobufBP < 0 {
		return o, fmt.Errorf("DWARF has no runtime.g/m/gobuf layout (goid %d, curg %d, sched %d, gobuf.bp %d)", o.GGoid, o.MCurg, o.GSched, o.GobufBP)
	}
	return o, nil
}

// WaitReason is one value of the runtime's waitReason enumeration.
type WaitReason struct {
	// Name is the constant without its prefix: "SyncMutexLock" for
	// runtime.waitReasonSyncMutexLock.
	Name string
	// String is what the runtime prints (runtime.waitReasonStrings):
	// "sync.Mutex.Lock". Empty when the binary's table could not be read.
	String string
}

// WaitReasons returns the waitReason enumeration indexed by value and where
// it came from: "binary" (runtime.waitReasonStrings read from the data
// section, names from DWARF constants), or "table go1.NN".
func (b *Binary) WaitReasons() ([]WaitReason, string, error) {
	strs, serr := b.waitReasonStrings()
	names, nerr := b.waitReasonNames()
	if serr == nil && nerr == nil && len(strs) == len(names) {
		out := make([]WaitReason, len(strs))
		for i := range out {
			out[i] = WaitReason{Name: names[i], String: strs[i]}
		}
		return out, "binary", nil
	}
	if t, ok := fallback[b.GoMinor()]; ok {
		return t.WaitReasons, fmt.Sprintf("table go1.%d", b.GoMinor()), nil
	}
	return nil, "", fmt.Errorf("wait reasons of %s (%s): strings: %v; names: %v: %w",
		b.path, b.goVersion, serr, nerr, ErrUnknownVersion)
}

// waitReasonNames reads the runtime.waitReason* constants from DWARF.
func (b *Binary) waitReasonNames() ([]string, error) {
	b.dwarfMu.Lock()
	defer b.dwarfMu.Unlock()
	d, err := b.dwarf()
	if err != nil {
		return nil, fmt.Errorf("read DWARF: %w", err)
	}
	const prefix = "runtime.waitReason"
	byVal := map[int64]string{}
	maxVal := int64(-1)
	r := d.Reader()
	for {
		e, err := r.Next()
		if err != nil {
			return nil, fmt.Errorf("read DWARF: %w", err)
		}
		if e == nil {
			break
		}
		if e.Tag != dwarf.TagConstant {
			if e.Tag != dwarf.TagCompileUnit {
				r.SkipChildren()
			}
			continue
		}
		name, _ := e.Val(dwarf.AttrName).(string)
		v, ok := e.Val(dwarf.AttrConstValue).(int64)
		if !ok || len(name) <= len(prefix) || name[:len(prefix)] != prefix {
			continue
		}
		byVal[v] = name[len(prefix):]
		maxVal = max(maxVal, v)
	}
	if maxVal < 0 || maxVal > 255 {
		return nil, errors.New("no runtime.waitReason constants in DWARF")
	}
	out := make([]string, maxVal+1)
	for v, n := range byVal {
		out[v] = n
	}
	return out, nil
}

// waitReasonStrings reads the runtime.waitReasonStrings array ([N]string)
// from the binary's data, applying R_X86_64_RELATIVE relocations for PIE
// binaries, whose pointer slots are filled in by the loader.
func (b *Binary) waitReasonStrings() ([]string, error) {
	s, ok := b.syms["runtime.waitReasonStrings"]
	if !ok || s.Size == 0 || s.Size%16 != 0 {
		return nil, errors.New("no runtime.waitReasonStrings symbol")
	}
	raw, err := b.readVaddr(s.Value, s.Size)
	if err != nil {
		return nil, fmt.Errorf("read runtime.waitReasonStrings: %w", err)
	}
	relocs, err := b.relativeRelocs(s.Value, s.Value+s.Size)
	if err != nil {
		return nil, err
	}
	out := make([]string, s.Size/16)
	for i := range out {
		slot := s.Value + uint64(i)*16
		ptr := binary.LittleEndian.Uint64(raw[i*16:])
		if v, ok := relocs[slot]; ok {
			ptr = v
		}
		n := binary.LittleEndian.Uint64(raw[i*16+8:])
		if n == 0 {
			continue
		}
		if n > 256 {
			return nil, fmt.Errorf("runtime.waitReasonStrings[%d]: implausible length %d", i, n)
		}
		str, err := b.readVaddr(ptr, n)
		if err != nil {
			return nil, fmt.Errorf("runtime.waitReasonStrings[%d]: %w", i, err)
		}
		out[i] = string(str)
	}
	return out, nil
}

// readVaddr reads n bytes at a link-time virtual address from the file.
func (b *Binary) readVaddr(vaddr, n uint64) ([]byte, error) {
	for _, p := range b.elf.Progs {
		if p.Type != elf.PT_LOAD || vaddr < p.Vaddr || vaddr+n > p.Vaddr+p.Memsz {
			continue
		}
		out := make([]byte, n)
		if vaddr >= p.Vaddr+p.Filesz {
			return out, nil // .bss: zero
		}
		avail := min(n, p.Vaddr+p.Filesz-vaddr)
		if _, err := b.file.ReadAt(out[:avail], int64(vaddr-p.Vaddr+p.Off)); err != nil {
			return nil, err
		}
		return out, nil
	}
	return nil, fmt.Errorf("address %#x+%d is in no loadable segment", vaddr, n)
}

// relativeRelocs returns R_X86_64_RELATIVE addends for slots in [lo, hi).
func (b *Binary) relativeRelocs(lo, hi uint64) (map[uint64]uint64, error) {
	out := map[uint64]uint64{}
	for _, sect := range b.elf.Sections {
		if sect.Type != elf.SHT_RELA {
			continue
		}
		data, err := sect.Data()
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", sect.Name, err)
		}
		for i := 0; i+24 <= len(data); i += 24 {
			off := binary.LittleEndian.Uint64(data[i:])
			info := binary.LittleEndian.Uint64(data[i+8:])
			if elf.R_X86_64(elf.R_TYPE64(info)) == elf.R_X86_64_RELATIVE && off >= lo && off < hi {
				out[off] = binary.LittleEndian.Uint64(data[i+16:])
			}
		}
	}
	return out, nil
}
