package symbol

import (
	"bytes"
	encbin "encoding/binary"
	"errors"
)

// inlTab decodes the inline trees of a Go ≥1.20 .gopclntab, which
// debug/gosym does not expose: for a pc, the chain of functions inlined at
// it, as runtime.CallersFrames reports them. It needs the go:func.* symbol
// (funcdata lives there), so binaries stripped with -s get no expansion.
type inlTab struct {
	textStart   uint64
	quantum     uint64
	nfunc       int
	funcnametab []byte
	pctab       []byte
	functab     []byte // functab pairs, followed by the _func records
	gofunc      []byte // contents of go:func.*
}

const (
	go120magic          = 0xfffffff1
	pcdataInlTreeIndex  = 2
	funcdataInlTree     = 3
	inlinedCallSize     = 16
	funcHeaderSize      = 44 // _func up to and including nfuncdata
	funcNpcdataOffset   = 28
	funcNfuncdataOffset = 43
)

var errNoInline = errors.New("no inline tables")

func newInlTab(pcln []byte, textStart uint64, gofunc []byte) (*inlTab, error) {
	if len(pcln) < 8+8*8 || encbin.LittleEndian.Uint32(pcln) != go120magic || pcln[7] != 8 {
		return nil, errNoInline
	}
	word := func(i int) uint64 { return encbin.LittleEndian.Uint64(pcln[8+i*8:]) }
	sub := func(i int) ([]byte, bool) {
		off := word(i)
		if off >= uint64(len(pcln)) {
			return nil, false
		}
		return pcln[off:], true
	}
	t := &inlTab{textStart: textStart, quantum: uint64(pcln[6]), nfunc: int(word(0)), gofunc: gofunc}
	var ok1, ok2, ok3 bool
	t.funcnametab, ok1 = sub(3)
	t.pctab, ok2 = sub(6)
	t.functab, ok3 = sub(7)
	if !ok1 || !ok2 || !ok3 || t.quantum == 0 || len(t.functab) < (t.nfunc+1)*8 {
		return nil, errNoInline
	}
	return t, nil
}

// inlFrame is one level of an inline chain: the function name and the pc
// whose source position belongs to that level.
type inlFrame struct {
	name string
	pc   uint64
}

// chain returns the inline chain at vaddr, innermost first, ending with the
// physical function; nil when vaddr has no inlining or tables are damaged.
func (t *inlTab) chain(vaddr uint64) []inlFrame {
	if vaddr < t.textStart {
		return nil
	}
	off := uint32(vaddr - t.textStart)
	// functab: nfunc+1 pairs {entryOff, funcOff}; find the last entry <= off.
	lo, hi := 0, t.nfunc
	for lo < hi {
		mid := (lo + hi) / 2
		if encbin.LittleEndian.Uint32(t.functab[(mid+1)*8:]) <= off {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	if lo >= t.nfunc {
		return nil
	}
	funcOff := encbin.LittleEndian.Uint32(t.functab[lo*8+4:])
	if uint64(funcOff)+funcHeaderSize > uint64(len(t.functab)) {
		return nil
	}
	f := t.functab[funcOff:]
	entry := t.textStart + uint64(encbin.LittleEndian.Uint32(f))
	npcdata := encbin.LittleEndian.Uint32(f[funcNpcdataOffset:])
	nfuncdata := uint32(f[funcNfuncdataOffset])
	if npcdata <= pcdataInlTreeIndex || nfuncdata <= funcdataInlTree ||
		uint64(funcHeaderSize+4*(npcdata+nfuncdata)) > uint64(len(f)) {
		return nil
	}
	pcdataOff := encbin.LittleEndian.Uint32(f[funcHeaderSize+4*pcdataInlTreeIndex:])
	treeOff := encbin.LittleEndian.Uint32(f[funcHeaderSize+4*npcdata+4*funcdataInlTree:])
	if pcdataOff == 0 || treeOff == ^uint32(0) || uint64(treeOff) >= uint64(len(t.gofunc)) {
		return nil
	}
	tree := t.gofunc[treeOff:]
	outerName := t.name(int32(encbin.LittleEndian.Uint32(f[4:])))

	var out []inlFrame
	pc := vaddr
	for depth := 0; depth < 64; depth++ {
		ix, ok := t.pcvalue(pcdataOff, entry, pc)
		if !ok {
			return nil
		}
		if ix < 0 {
			break
		}
		rec := uint64(ix) * inlinedCallSize
		if rec+inlinedCallSize > uint64(len(tree)) {
			return nil
		}
		call := tree[rec:]
		out = append(out, inlFrame{name: t.name(int32(encbin.LittleEndian.Uint32(call[4:]))), pc: pc})
		pc = entry + uint64(int64(int32(encbin.LittleEndian.Uint32(call[8:]))))
	}
	if len(out) == 0 {
		return nil
	}
	return append(out, inlFrame{name: outerName, pc: pc})
}

func (t *inlTab) name(off int32) string {
	if off < 0 || int(off) >= len(t.funcnametab) {
		return "?"
	}
	s := t.funcnametab[off:]
	if i := bytes.IndexByte(s, 0); i >= 0 {
		s = s[:i]
	}
	return string(s)
}

// pcvalue decodes the pc-value table at off (as runtime.pcvalue does) and
// returns the value at target.
func (t *inlTab) pcvalue(off uint32, entry, target uint64) (int32, bool) {
	if uint64(off) >= uint64(len(t.pctab)) {
		return 0, false
	}
	p := t.pctab[off:]
	pc, val := entry, int32(-1)
	for first := true; ; first = false {
		uv, n := encbin.Uvarint(p)
		if n <= 0 {
			return 0, false
		}
		if uv == 0 && !first {
			return -1, true // past the end of the table
		}
		p = p[n:]
		d := uint32(uv)
		val += int32(-(d & 1) ^ (d >> 1))
		pcd, n := encbin.Uvarint(p)
		if n <= 0 {
			return 0, false
		}
		p = p[n:]
		pc += pcd * t.quantum
		if target < pc {
			return val, true
		}
	}
}
