// Package symbol owns turning raw instruction addresses from BPF stacks into
// function names: Go user stacks through .gopclntab (debug/gosym), C and
// other ELF binaries through their symtab/dynsym, kernel stacks through
// /proc/kallsyms. Position-independent executables and ASLR are handled by
// mapping every address through the process's /proc/PID/maps to a file
// offset and from there to the ELF virtual address.
//
// Parsed binaries are cached per file identity (device and inode from the
// maps line, else path), so many processes of one binary share one table. An
// address that cannot be resolved is never dropped: it is rendered as
// "module+0xoffset" when its mapping is known and "[unknown] 0x..." otherwise,
// so stacks keep their depth and flame graphs stay honest.
package symbol

import (
	"bufio"
	"bytes"
	"debug/elf"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
)

// Frame is one resolved stack frame.
type Frame struct {
	// Func is the function name, or "module+0xoff" / "[unknown] 0x..." when
	// the address could not be resolved to a symbol.
	Func string
	// File and Line are the source position when known (Go binaries); for
	// inlined calls the position is the inlined callee's while Func is the
	// outermost function (debug/gosym does not expand inline trees).
	File string
	Line int
	// Module is the mapped file (full path as in /proc/PID/maps), a pseudo
	// mapping such as "[vdso]", "[kernel]" or a kernel module name, or "" when
	// the address is in no known mapping.
	Module string
	// Addr is the address as given (runtime virtual address).
	Addr uint64
	// Inline marks a frame that the compiler inlined into the next frame
	// (same Addr); only UserInline produces such frames.
	Inline bool
}

// String renders the frame as "func (file:line)" or just "func".
func (f Frame) String() string {
	if f.File == "" {
		return f.Func
	}
	return fmt.Sprintf("%s (%s:%d)", f.Func, f.File, f.Line)
}

// Known reports whether the frame resolved to a symbol.
func (f Frame) Known() bool {
	return !strings.HasPrefix(f.Func, "[unknown]") && !strings.Contains(f.Func, "+0x")
}

// DefaultProcRoot and DefaultKallsyms are where Options' zero values point.
const (
	DefaultProcRoot = "/proc"
	DefaultKallsyms = "/proc/kallsyms"
)

// Options configures a Resolver; the zero value means the defaults.
type Options struct {
	// ProcRoot is the procfs mount (DefaultProcRoot if empty).
	ProcRoot string
	// Kallsyms is the kernel symbol file (DefaultKallsyms if empty).
	Kallsyms string
}

// Resolver symbolizes user and kernel stacks. It is safe for concurrent use.
// It caches /proc/PID/maps per PID (re-read when an address falls outside
// every known mapping) and parsed binaries per file identity.
type Resolver struct {
	opts Options

	mu    sync.Mutex
	procs map[int]*procMaps
	bins  map[binKey]*binary

	kernOnce sync.Once
	kern     *Kallsyms
	kernErr  error
}

// NewResolver returns a Resolver reading the real /proc.
func NewResolver() *Resolver { return NewResolverOptions(Options{}) }

// NewResolverOptions returns a Resolver with the given options.
func NewResolverOptions(o Options) *Resolver {
	if o.ProcRoot == "" {
		o.ProcRoot = DefaultProcRoot
	}
	if o.Kallsyms == "" {
		o.Kallsyms = DefaultKallsyms
	}
	return &Resolver{opts: o, procs: map[int]*procMaps{}, bins: map[binKey]*binary{}}
}

// Prime reads and caches the mappings of pid now, so its stacks can still be
// symbolized after the process exits. Call it when a target process starts.
func (r *Resolver) Prime(pid int) error {
	pm, err := readMaps(r.opts.ProcRoot, pid)
	if err != nil {
		return err
	}
	r.mu.Lock()
	r.procs[pid] = pm
	r.mu.Unlock()
	return nil
}

// Forget drops the cached mappings of pid (call it when the process exited,
// before its PID can be reused). Cached binaries are kept.
func (r *Resolver) Forget(pid int) {
	r.mu.Lock()
	delete(r.procs, pid)
	r.mu.Unlock()
}

// User resolves a user stack of process pid. pcs[0] is taken as an exact
// instruction address (the leaf); later entries are return addresses and are
// looked up at pc-1 so a call that ends a function is charged to its caller.
// The result has exactly one Frame per pc, in the same order.
func (r *Resolver) User(pid int, pcs []uint64) []Frame {
	return r.user(pid, pcs, false)
}

// UserInline is User with inlined calls expanded, as runtime.CallersFrames
// does: a pc inside inlined code yields the inlined functions (innermost
// first, Inline set) followed by the physical function, so the result may be
// longer than pcs. Expansion needs the binary's symbol table (go:func.*);
// binaries stripped with -s get one frame per pc, as from User.
func (r *Resolver) UserInline(pid int, pcs []uint64) []Frame {
	return r.user(pid, pcs, true)
}

func (r *Resolver) user(pid int, pcs []uint64, inline bool) []Frame {
	out := make([]Frame, 0, len(pcs))
	r.mu.Lock()
	defer r.mu.Unlock()
	pm := r.procs[pid]
	reloaded := false
	if pm == nil {
		pm = r.reloadLocked(pid)
		reloaded = true
	}
	for i, pc := range pcs {
		lookup := pc
		if i > 0 && pc > 0 {
			lookup = pc - 1
		}
		m := pm.find(lookup)
		if m == nil && !reloaded {
			// A mapping created after we read maps (dlopen, a new
			// executable after exec): read them once more.
			pm = r.reloadLocked(pid)
			reloaded = true
			m = pm.find(lookup)
		}
		out = r.resolveLocked(out, pid, m, pc, lookup, inline)
	}
	return out
}

// reloadLocked re-reads pid's maps; on failure the old (or an empty) table
// is kept so addresses still render as unknown.
func (r *Resolver) reloadLocked(pid int) *procMaps {
	pm, err := readMaps(r.opts.ProcRoot, pid)
	if err != nil {
		if old := r.procs[pid]; old != nil {
			return old
		}
		return &procMaps{}
	}
	r.procs[pid] = pm
	return pm
}

// resolveLocked appends the frame(s) for one pc to out.
func (r *Resolver) resolveLocked(out []Frame, pid int, m *mapping, pc, lookup uint64, inline bool) []Frame {
	f := Frame{Addr: pc}
	if m == nil {
		f.Func = fmt.Sprintf("[unknown] 0x%x", pc)
		return append(out, f)
	}
	f.Module = m.path
	fileOff := lookup - m.start + m.offset
	var b *binary
	switch {
	case m.path == vdsoPath:
		b = r.vdsoLocked(pid, m)
	case m.path == "" || m.path[0] == '[' || m.inode == 0:
		f.Func = fmt.Sprintf("%s+0x%x", moduleName(m.path), lookup-m.start)
		return append(out, f)
	default:
		b = r.binaryLocked(pid, m)
	}
	if b.err == nil {
		if vaddr, ok := b.fileOffToVaddr(fileOff); ok {
			if inline {
				if fs := b.lookupInline(vaddr); fs != nil {
					for _, in := range fs {
						in.Addr, in.Module = pc, m.path
						out = append(out, in)
					}
					return out
				}
			}
			if fn, file, line, ok := b.lookup(vaddr); ok {
				f.Func, f.File, f.Line = fn, file, line
				return append(out, f)
			}
		}
	}
	f.Func = fmt.Sprintf("%s+0x%x", moduleName(m.path), fileOff)
	return append(out, f)
}

func moduleName(path string) string {
	if path == "" {
		return "[anon]"
	}
	return filepath.Base(strings.TrimSuffix(path, " (deleted)"))
}

// binaryLocked returns the cached binary for m, loading it on first use.
// Failures are cached too, so a missing file costs one open, not one per pc.
func (r *Resolver) binaryLocked(pid int, m *mapping) *binary {
	k := binKey{dev: m.dev, inode: m.inode, path: m.path}
	if b := r.bins[k]; b != nil {
		return b
	}
	b := loadBinary(m.inode, r.binaryPaths(pid, m)...)
	b.path = m.path
	r.bins[k] = b
	return b
}

const vdsoPath = "[vdso]"

// vdsoLocked returns the parsed vDSO, read from the process's memory (it has
// no file). Every process of one kernel maps the same image, so one copy is
// cached; the read needs ptrace access to pid (root, or the same user).
func (r *Resolver) vdsoLocked(pid int, m *mapping) *binary {
	k := binKey{path: vdsoPath}
	if b := r.bins[k]; b != nil && b.err == nil {
		return b
	}
	// A failed read is remembered per process (another process may be
	// readable), so it costs one open per pid, not one per frame.
	failKey := binKey{path: vdsoPath, dev: "pid " + strconv.Itoa(pid)}
	if b := r.bins[failKey]; b != nil {
		return b
	}
	b := &binary{path: vdsoPath}
	mem, err := os.Open(filepath.Join(r.opts.ProcRoot, strconv.Itoa(pid), "mem"))
	if err == nil {
		img := make([]byte, m.end-m.start)
		if _, err = mem.ReadAt(img, int64(m.start)); err == nil {
			var ef *elf.File
			if ef, err = elf.NewFile(bytes.NewReader(img)); err == nil {
				var pb *binary
				if pb, err = parseELF(ef); err == nil {
					b = pb
					b.path = vdsoPath
				}
			}
		}
		mem.Close()
	}
	if err != nil {
		b.err = fmt.Errorf("read vdso of pid %d: %w", pid, err)
		r.bins[failKey] = b
		return b
	}
	r.bins[k] = b
	return b
}

// binaryPaths lists where the mapped file can be opened: through the
// process's root (other mount namespaces), through map_files (deleted or
// replaced files; needs root), and by its plain path.
func (r *Resolver) binaryPaths(pid int, m *mapping) []string {
	path := strings.TrimSuffix(m.path, " (deleted)")
	pidDir := filepath.Join(r.opts.ProcRoot, strconv.Itoa(pid))
	return []string{
		filepath.Join(pidDir, "root", path),
		filepath.Join(pidDir, "map_files", fmt.Sprintf("%x-%x", m.start, m.end)),
		path,
	}
}

// CachedBinaries reports how many distinct binaries are cached (for tests and
// diagnostics).
func (r *Resolver) CachedBinaries() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.bins)
}

type binKey struct {
	dev   string
	inode uint64
	path  string
}

// mapping is one line of /proc/PID/maps.
type mapping struct {
	start, end, offset uint64
	dev                string
	inode              uint64
	path               string
}

type procMaps struct {
	m []mapping // sorted by start
}

func (pm *procMaps) find(addr uint64) *mapping {
	i := sort.Search(len(pm.m), func(i int) bool { return pm.m[i].end > addr })
	if i < len(pm.m) && pm.m[i].start <= addr {
		return &pm.m[i]
	}
	return nil
}

func readMaps(procRoot string, pid int) (*procMaps, error) {
	path := filepath.Join(procRoot, strconv.Itoa(pid), "maps")
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read maps of pid %d: %w", pid, err)
	}
	defer f.Close()
	pm, err := parseMaps(f, path)
	if err != nil {
		return nil, err
	}
	return pm, nil
}

// parseMaps parses /proc/PID/maps text; only executable mappings are kept
// since stacks point at code.
func parseMaps(f io.Reader, name string) (*procMaps, error) {
	pm := &procMaps{}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	line := 0
	for sc.Scan() {
		line++
		m, exec, err := parseMapsLine(sc.Text())
		if err != nil {
			return nil, fmt.Errorf("%s:%d: %w", name, line, err)
		}
		if exec {
			pm.m = append(pm.m, m)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read %s: %w", name, err)
	}
	sort.Slice(pm.m, func(i, j int) bool { return pm.m[i].start < pm.m[j].start })
	return pm, nil
}

var errMapsLine = errors.New("malformed maps line")

// parseMapsLine parses "start-end perms offset dev inode [path]".
func parseMapsLine(s string) (m mapping, exec bool, err error) {
	fields := strings.Fields(s)
	if len(fields) < 5 {
		return m, false, fmt.Errorf("%w: %q", errMapsLine, s)
	}
	lo, hi, ok := strings.Cut(fields[0], "-")
	if !ok {
		return m, false, fmt.Errorf("%w: range %q", errMapsLine, fields[0])
	}
	if m.start, err = strconv.ParseUint(lo, 16, 64); err != nil {
		return m, false, fmt.Errorf("%w: start: %v", errMapsLine, err)
	}
	if m.end, err = strconv.ParseUint(hi, 16, 64); err != nil {
		return m, false, fmt.Errorf("%w: end: %v", errMapsLine, err)
	}
	if m.offset, err = strconv.ParseUint(fields[2], 16, 64); err != nil {
		return m, false, fmt.Errorf("%w: offset: %v", errMapsLine, err)
	}
	m.dev = fields[3]
	if m.inode, err = strconv.ParseUint(fields[4], 10, 64); err != nil {
		return m, false, fmt.Errorf("%w: inode: %v", errMapsLine, err)
	}
	if len(fields) > 5 {
		m.path = afterFields(s, 5)
	}
	return m, strings.Contains(fields[1], "x"), nil
}

// afterFields returns s after its first n whitespace-separated fields, trimmed:
// a mapped path may itself contain spaces.
func afterFields(s string, n int) string {
	for ; n > 0; n-- {
		s = strings.TrimLeft(s, " \t")
		i := strings.IndexAny(s, " \t")
		if i < 0 {
			return ""
		}
		s = s[i:]
	}
	return strings.TrimSpace(s)
}
