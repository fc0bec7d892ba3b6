package symbol

import (
	"debug/elf"
	"debug/gosym"
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"
	"syscall"
)

// binary is one parsed executable or shared object.
type binary struct {
	path  string
	err   error
	segs  []loadSeg
	gotab *gosym.Table // nil for non-Go binaries
	goLo  uint64       // text range covered by gotab
	goHi  uint64
	syms  []elfSym // sorted by addr; functions from symtab and dynsym
	inl   *inlTab  // nil when inline trees are unavailable

	pcCache map[uint64]pcInfo // guarded by Resolver.mu
}

type loadSeg struct{ off, filesz, vaddr uint64 }

type elfSym struct {
	addr, size uint64
	name       string
}

// loadBinary opens the first of paths that is the file with the given inode
// (0: any) and parses it. Checking the inode matters: a service rebuilt in
// place leaves running processes mapping the old, deleted file, and
// symbolizing them with the new one would give confidently wrong names.
func loadBinary(inode uint64, paths ...string) *binary {
	var errs []error
	for _, p := range paths {
		f, err := os.Open(p)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if st, err := f.Stat(); err == nil && inode != 0 {
			if sys, ok := st.Sys().(*syscall.Stat_t); ok && sys.Ino != inode {
				f.Close()
				errs = append(errs, fmt.Errorf("%s: inode %d, mapping has %d (file replaced)", p, sys.Ino, inode))
				continue
			}
		}
		ef, err := elf.NewFile(f)
		if err != nil {
			f.Close()
			return &binary{err: fmt.Errorf("parse %s: %w", p, err)}
		}
		b, err := parseELF(ef)
		f.Close()
		if err != nil {
			return &binary{err: fmt.Errorf("parse %s: %w", p, err)}
		}
		return b
	}
	return &binary{err: fmt.Errorf("open binary: %w", errors.Join(errs...))}
}

func parseELF(f *elf.File) (*binary, error) {
	b := &binary{}
	for _, p := range f.Progs {
		if p.Type == elf.PT_LOAD {
			b.segs = append(b.segs, loadSeg{off: p.Off, filesz: p.Filesz, vaddr: p.Vaddr})
		}
	}
	if len(b.segs) == 0 {
		return nil, errors.New("no PT_LOAD segments")
	}

	syms, _ := f.Symbols() // absent in stripped binaries: not an error
	dyn, _ := f.DynamicSymbols()
	textSym := uint64(0)
	var goFunc elf.Symbol
	for _, s := range append(syms, dyn...) {
		switch s.Name {
		case "runtime.text":
			textSym = s.Value
		case "go:func.*":
			goFunc = s
		}
		if elf.ST_TYPE(s.Info) != elf.STT_FUNC || s.Value == 0 || s.Section == elf.SHN_UNDEF {
			continue
		}
		b.syms = append(b.syms, elfSym{addr: s.Value, size: s.Size, name: s.Name})
	}
	sort.Slice(b.syms, func(i, j int) bool {
		x, y := b.syms[i], b.syms[j]
		if x.addr != y.addr {
			return x.addr < y.addr
		}
		if x.size != y.size {
			return x.size > y.size
		}
		// Among aliases prefer the public name (malloc over __libc_malloc,
		// clock_gettime over __vdso_clock_gettime), then the lexically first,
		// so a frame's name does not depend on symbol-table order.
		ux, uy := len(x.name)-len(strings.TrimLeft(x.name, "_")), len(y.name)-len(strings.TrimLeft(y.name, "_"))
		if ux != uy {
			return ux < uy
		}
		return x.name < y.name
	})
	// Drop aliases at the same address; the first wins.
	dedup := b.syms[:0]
	for i, s := range b.syms {
		if i > 0 && s.addr == dedup[len(dedup)-1].addr {
			continue
		}
		dedup = append(dedup, s)
	}
	b.syms = dedup

	if err := b.loadGo(f, textSym, goFunc); err != nil {
		return nil, err
	}
	return b, nil
}

// symbolData returns the file contents of a data symbol.
func symbolData(f *elf.File, s elf.Symbol) []byte {
	for _, sect := range f.Sections {
		if sect.Type == elf.SHT_NOBITS || s.Value < sect.Addr || s.Value+s.Size > sect.Addr+sect.Size {
			continue
		}
		data, err := sect.Data()
		if err != nil {
			return nil
		}
		return data[s.Value-sect.Addr : s.Value-sect.Addr+s.Size]
	}
	return nil
}

// loadGo parses .gopclntab when present. The text start is runtime.text when
// the symbol table has it (correct also for externally linked cgo binaries
// whose .text starts with C code), else the .text section address.
func (b *binary) loadGo(f *elf.File, textSym uint64, goFunc elf.Symbol) error {
	sect := f.Section(".gopclntab")
	if sect == nil {
		sect = f.Section(".data.rel.ro.gopclntab") // PIE
	}
	if sect == nil {
		return nil // not a Go binary
	}
	data, err := sect.Data()
	if err != nil {
		return fmt.Errorf("read %s: %w", sect.Name, err)
	}
	text := textSym
	if text == 0 {
		if t := f.Section(".text"); t != nil {
			text = t.Addr
		}
	}
	tab, err := gosym.NewTable(nil, gosym.NewLineTable(data, text))
	if err != nil {
		return fmt.Errorf("parse %s: %w", sect.Name, err)
	}
	if len(tab.Funcs) == 0 {
		return fmt.Errorf("parse %s: no functions (unsupported pclntab version?)", sect.Name)
	}
	b.gotab = tab
	if goFunc.Size > 0 {
		if gf := symbolData(f, goFunc); gf != nil {
			b.inl, _ = newInlTab(data, text, gf) // no tables: no expansion
		}
	}
	b.goLo = tab.Funcs[0].Entry
	b.goHi = tab.Funcs[len(tab.Funcs)-1].End
	return nil
}

// fileOffToVaddr maps a file offset to the link-time virtual address through
// the PT_LOAD segment containing it. This is what makes PIE and non-PIE look
// the same: the runtime load address cancels out through /proc/PID/maps.
func (b *binary) fileOffToVaddr(off uint64) (uint64, bool) {
	for _, s := range b.segs {
		if off >= s.off && off < s.off+s.filesz {
			return off - s.off + s.vaddr, true
		}
	}
	return 0, false
}

// maxCachedPCs bounds the per-binary pc cache (about 100 bytes an entry).
const maxCachedPCs = 1 << 16

type pcInfo struct {
	fn, file string
	line     int
	ok       bool
}

// lookup resolves a link-time virtual address. Stacks repeat the same pcs
// over and over, so results are cached; the caller holds the Resolver lock.
func (b *binary) lookup(vaddr uint64) (fn, file string, line int, ok bool) {
	if c, hit := b.pcCache[vaddr]; hit {
		return c.fn, c.file, c.line, c.ok
	}
	fn, file, line, ok = b.lookupUncached(vaddr)
	if b.pcCache == nil || len(b.pcCache) >= maxCachedPCs {
		b.pcCache = make(map[uint64]pcInfo)
	}
	b.pcCache[vaddr] = pcInfo{fn, file, line, ok}
	return fn, file, line, ok
}

func (b *binary) lookupUncached(vaddr uint64) (fn, file string, line int, ok bool) {
	if b.gotab != nil && vaddr >= b.goLo && vaddr < b.goHi {
		file, line, f := b.gotab.PCToLine(vaddr)
		if f != nil {
			return printName(f.Name), file, line, true
		}
	}
	i := sort.Search(len(b.syms), func(i int) bool { return b.syms[i].addr > vaddr }) - 1
	if i < 0 {
		return "", "", 0, false
	}
	s := b.syms[i]
	if s.size > 0 && vaddr >= s.addr+s.size {
		return "", "", 0, false
	}
	return s.name, "", 0, true
}

// lookupInline resolves vaddr with inlined calls expanded, innermost first;
// Inline is set on every frame but the physical (outermost) function. It
// returns nil when there is nothing to expand.
func (b *binary) lookupInline(vaddr uint64) []Frame {
	if b.inl == nil || vaddr < b.goLo || vaddr >= b.goHi {
		return nil
	}
	chain := b.inl.chain(vaddr)
	if len(chain) == 0 {
		return nil
	}
	out := make([]Frame, len(chain))
	for i, c := range chain {
		file, line, _ := b.gotab.PCToLine(c.pc)
		out[i] = Frame{Func: printName(c.name), File: file, Line: line, Inline: i < len(chain)-1}
	}
	return out
}

// printName shortens type arguments as the runtime does when it prints a
// function (runtime.funcNameForPrint): "F[go.shape.int]" becomes "F[...]",
// which keeps flame-graph frames of one generic function together.
func printName(name string) string {
	i := strings.IndexByte(name, '[')
	if i < 0 {
		return name
	}
	j := strings.LastIndexByte(name, ']')
	if j <= i {
		return name
	}
	return name[:i] + "[...]" + name[j+1:]
}
