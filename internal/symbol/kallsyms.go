package symbol

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
	"strings"
)

// ErrKernelSymbolsHidden is returned by KernelErr when /proc/kallsyms shows
// only zero addresses: kernel.kptr_restrict hides them from this process
// (they are real when read as root with kptr_restrict <= 1).
var ErrKernelSymbolsHidden = errors.New("kernel symbol addresses are hidden (kptr_restrict; run as root)")

// KernelModule is the Module of frames in the core kernel image.
const KernelModule = "[kernel]"

// Kallsyms is a sorted table of kernel text symbols.
type Kallsyms struct {
	syms []ksym
}

type ksym struct {
	addr   uint64
	name   string
	module string
}

// Len reports the number of text symbols.
func (k *Kallsyms) Len() int { return len(k.syms) }

// ParseKallsyms reads /proc/kallsyms format ("addr type name [module]") and
// keeps text symbols (types t, T, w, W). name is used in error messages.
// If every address is zero (kptr_restrict) it returns ErrKernelSymbolsHidden
// along with an empty table.
func ParseKallsyms(r io.Reader, name string) (*Kallsyms, error) {
	k := &Kallsyms{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	line, zeros := 0, 0
	for sc.Scan() {
		line++
		fields := strings.Fields(sc.Text())
		if len(fields) == 0 {
			continue
		}
		if len(fields) < 3 {
			return nil, fmt.Errorf("%s:%d: want \"addr type name [module]\", got %q", name, line, sc.Text())
		}
		addr, err := strconv.ParseUint(fields[0], 16, 64)
		if err != nil {
			return nil, fmt.Errorf("%s:%d: address: %w", name, line, err)
		}
		switch fields[1] {
		case "t", "T", "w", "W":
		default:
			continue
		}
		if addr == 0 {
			zeros++
			continue
		}
		s := ksym{addr: addr, name: fields[2], module: KernelModule}
		if len(fields) > 3 {
			s.module = strings.Trim(fields[3], "[]")
		}
		k.syms = append(k.syms, s)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read %s: %w", name, err)
	}
	sort.SliceStable(k.syms, func(i, j int) bool { return k.syms[i].addr < k.syms[j].addr })
	if len(k.syms) == 0 && zeros > 0 {
		return k, ErrKernelSymbolsHidden
	}
	return k, nil
}

// maxKernelSymSize bounds how far past the last symbol an address may lie
// and still be attributed to it; beyond, it is unknown rather than wrong.
const maxKernelSymSize = 1 << 20

// Lookup returns the symbol containing pc and pc's offset in it.
func (k *Kallsyms) Lookup(pc uint64) (name, module string, off uint64, ok bool) {
	i := sort.Search(len(k.syms), func(i int) bool { return k.syms[i].addr > pc }) - 1
	if i < 0 {
		return "", "", 0, false
	}
	s := k.syms[i]
	if i == len(k.syms)-1 && pc-s.addr > maxKernelSymSize {
		return "", "", 0, false
	}
	return s.name, s.module, pc - s.addr, true
}

func (r *Resolver) kallsyms() (*Kallsyms, error) {
	r.kernOnce.Do(func() {
		f, err := os.Open(r.opts.Kallsyms)
		if err != nil {
			r.kern, r.kernErr = &Kallsyms{}, fmt.Errorf("read kernel symbols: %w", err)
			return
		}
		defer f.Close()
		k, err := ParseKallsyms(f, r.opts.Kallsyms)
		if k == nil {
			k = &Kallsyms{}
		}
		r.kern, r.kernErr = k, err
	})
	return r.kern, r.kernErr
}

// KernelErr reports why kernel frames would render as unknown, or nil when
// kernel symbols are available. It loads /proc/kallsyms on first use.
func (r *Resolver) KernelErr() error {
	_, err := r.kallsyms()
	return err
}

// Kernel resolves a kernel stack. As in User, pcs[0] is exact and later
// entries are return addresses looked up at pc-1. Unresolvable addresses
// render as "[unknown] 0x...".
func (r *Resolver) Kernel(pcs []uint64) []Frame {
	k, _ := r.kallsyms()
	out := make([]Frame, len(pcs))
	for i, pc := range pcs {
		lookup := pc
		if i > 0 && pc > 0 {
			lookup = pc - 1
		}
		out[i].Addr = pc
		name, mod, _, ok := k.Lookup(lookup)
		if !ok {
			out[i].Func = fmt.Sprintf("[unknown] 0x%x", pc)
			continue
		}
		out[i].Func, out[i].Module = name, mod
	}
	return out
}
