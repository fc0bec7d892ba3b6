package flame

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"sort"
	"strconv"
	"strings"
)

// Separator separates the frames of a folded stack, root first.
const Separator = ";"

// DefaultUnit is the unit of a profile whose values are sample counts.
const DefaultUnit = "samples"

// MaxLineBytes bounds one line of folded input, so a corrupt file cannot make
// the parser buffer without limit.
const MaxLineBytes = 16 << 20

// Profile is a set of folded stacks: each key is a stack, root first, frames
// joined by Separator ("main;handler;runtime.mallocgc"), and its value is the
// weight of that stack (a sample count, nanoseconds off-CPU, or a normalized
// fraction).
type Profile struct {
	// Stacks maps a folded stack to its value. Values are finite and
	// non-negative; a profile never stores a zero-valued stack after
	// parsing or normalization.
	Stacks map[string]float64
	// Unit names what a value measures: "samples", "nanoseconds",
	// "samples/request", "fraction". Empty means DefaultUnit.
	Unit string
	// Samples counts the raw samples or events that were folded in.
	Samples int64
	// Requests is the number of requests the profile covers; it is what
	// per-request normalization divides by. 0 means unknown.
	Requests int64

	buf  []byte            // scratch for Add
	keys map[string]string // interned keys, so Add allocates only for new stacks
}

// New returns an empty profile measured in unit.
func New(unit string) *Profile {
	return &Profile{Stacks: make(map[string]float64), Unit: unit}
}

// UnitOrDefault returns p.Unit, or DefaultUnit when it is empty.
func (p *Profile) UnitOrDefault() string {
	if p.Unit == "" {
		return DefaultUnit
	}
	return p.Unit
}

// Total returns the sum of all stack values.
func (p *Profile) Total() float64 {
	var t float64
	for _, k := range p.sortedKeys() {
		t += p.Stacks[k]
	}
	return t
}

// Clone returns a deep copy of p.
func (p *Profile) Clone() *Profile {
	c := &Profile{Stacks: make(map[string]float64, len(p.Stacks)), Unit: p.Unit, Samples: p.Samples, Requests: p.Requests}
	for k, v := range p.Stacks {
		c.Stacks[k] = v
	}
	return c
}

// AddStack adds v to the folded stack key. Keys must already be sanitized;
// use Add or JoinStack to build them from frame names.
func (p *Profile) AddStack(key string, v float64) {
	if p.Stacks == nil {
		p.Stacks = make(map[string]float64)
	}
	p.Stacks[key] += v
}

// Add folds one sample with value v whose frames are given root first.
// Frame names are sanitized as by JoinStack. An empty stack is ignored. It
// allocates only for a stack it has not seen; for millions of samples a
// Folder is faster still.
func (p *Profile) Add(frames []string, v float64) {
	if len(frames) == 0 {
		return
	}
	p.buf = appendStack(p.buf[:0], frames)
	if p.Stacks == nil {
		p.Stacks = make(map[string]float64)
	}
	// Look the key up through the intern table so that updating an
	// existing stack does not convert (and allocate) the key again.
	k, ok := p.keys[string(p.buf)]
	if !ok {
		k = string(p.buf)
		if p.keys == nil {
			p.keys = make(map[string]string)
		}
		p.keys[k] = k
	}
	p.Stacks[k] += v
	p.Samples++
}

// appendStack appends the folded form of frames to b. The common case,
// names that need no sanitizing, is checked on the joined bytes at once.
func appendStack(b []byte, frames []string) []byte {
	start := len(b)
	clean := true
	for i, f := range frames {
		if i > 0 {
			b = append(b, ';')
		}
		if len(f) == 0 {
			clean = false
		}
		b = append(b, f...)
	}
	joined := b[start:]
	if clean && bytes.Count(joined, []byte{';'}) == len(frames)-1 &&
		bytes.IndexByte(joined, '\n') < 0 && bytes.IndexByte(joined, '\r') < 0 {
		return b
	}
	b = b[:start]
	for i, f := range frames {
		if i > 0 {
			b = append(b, ';')
		}
		b = append(b, SanitizeFrame(f)...)
	}
	return b
}

// Folder aggregates stack samples into a Profile. It is the fast path for
// folding millions of samples: one hash per sample, an allocation only per
// new stack. It is not safe for concurrent use.
type Folder struct {
	unit    string
	idx     map[string]int32
	keys    []string
	vals    []float64
	samples int64
	buf     []byte
}

// NewFolder returns an empty Folder whose profile will be measured in unit.
func NewFolder(unit string) *Folder {
	return &Folder{unit: unit, idx: make(map[string]int32)}
}

// Add folds one sample with value v; frames are root first and sanitized
// as by JoinStack. An empty stack is ignored.
func (f *Folder) Add(frames []string, v float64) {
	if len(frames) == 0 {
		return
	}
	f.buf = appendStack(f.buf[:0], frames)
	i, ok := f.idx[string(f.buf)]
	if !ok {
		k := string(f.buf)
		i = int32(len(f.keys))
		f.idx[k] = i
		f.keys = append(f.keys, k)
		f.vals = append(f.vals, 0)
	}
	f.vals[i] += v
	f.samples++
}

// Len returns the number of distinct stacks folded so far.
func (f *Folder) Len() int { return len(f.keys) }

// Profile returns the folded profile. The Folder may keep adding; later
// samples do not change the returned profile.
func (f *Folder) Profile() *Profile {
	p := &Profile{Stacks: make(map[string]float64, len(f.keys)), Unit: f.unit, Samples: f.samples}
	for i, k := range f.keys {
		if f.vals[i] != 0 {
			p.Stacks[k] = f.vals[i]
		}
	}
	return p
}

// Merge adds every stack of q into p (aggregation); sample and request
// counts add up. Merging profiles of different units is an error.
func (p *Profile) Merge(q *Profile) error {
	if p.UnitOrDefault() != q.UnitOrDefault() {
		return fmt.Errorf("merge profiles: unit %q differs from %q", q.UnitOrDefault(), p.UnitOrDefault())
	}
	for k, v := range q.Stacks {
		p.AddStack(k, v)
	}
	p.Samples += q.Samples
	p.Requests += q.Requests
	return nil
}

// Aggregate merges profiles into a new one. All must share one unit.
func Aggregate(ps ...*Profile) (*Profile, error) {
	if len(ps) == 0 {
		return New(DefaultUnit), nil
	}
	out := New(ps[0].Unit)
	for i, p := range ps {
		if err := out.Merge(p); err != nil {
			return nil, fmt.Errorf("aggregate profile %d: %w", i, err)
		}
	}
	return out, nil
}

// ErrNoRequests is returned when per-request normalization is asked of a
// profile whose request count is unknown.
var ErrNoRequests = errors.New("profile has no request count")

// ErrEmpty is returned when per-total normalization is asked of a profile
// whose values sum to zero.
var ErrEmpty = errors.New("profile is empty")

// PerRequest returns a copy of p with every value divided by p.Requests, so
// profiles of runs with different request counts compare. The unit gains a
// "/request" suffix.
func (p *Profile) PerRequest() (*Profile, error) {
	if p.Requests <= 0 {
		return nil, fmt.Errorf("normalize per request: %w", ErrNoRequests)
	}
	out := p.divided(float64(p.Requests))
	out.Unit = p.UnitOrDefault() + "/request"
	return out, nil
}

// PerTotal returns a copy of p with every value divided by the total, so
// the values sum to 1 and the unit is "fraction".
func (p *Profile) PerTotal() (*Profile, error) {
	t := p.Total()
	if t <= 0 {
		return nil, fmt.Errorf("normalize per total: %w", ErrEmpty)
	}
	out := p.divided(t)
	out.Unit = "fraction"
	return out, nil
}

func (p *Profile) divided(d float64) *Profile {
	out := p.Clone()
	for k, v := range out.Stacks {
		out.Stacks[k] = v / d
	}
	return out
}

// JoinStack joins frame names, root first, into a folded stack. Characters
// the format cannot carry are replaced: the separator ';' becomes ':', and
// line breaks become spaces; an empty name becomes "[unknown]".
func JoinStack(frames []string) string {
	return string(appendStack(nil, frames))
}

// SanitizeFrame makes one frame name safe to embed in a folded stack.
func SanitizeFrame(f string) string {
	if f == "" {
		return "[unknown]"
	}
	if strings.IndexByte(f, ';') < 0 && strings.IndexByte(f, '\n') < 0 && strings.IndexByte(f, '\r') < 0 {
		return f
	}
	return strings.NewReplacer(";", ":", "\n", " ", "\r", " ").Replace(f)
}

// SplitStack splits a folded stack into its frames, root first.
func SplitStack(key string) []string { return strings.Split(key, Separator) }

// ParseError reports bad folded input at a given line.
type ParseError struct {
	File string // name given to ParseFolded, e.g. the path
	Line int    // 1-based
	Msg  string
}

func (e *ParseError) Error() string { return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Msg) }

// ParseFolded reads folded stacks ("frame;frame;frame value" per line, the
// value after the last space) and aggregates repeated stacks. Blank lines
// are skipped; anything else malformed is a *ParseError naming name and the
// line. Values may be integers or decimals but must be finite and
// non-negative. The result's unit is DefaultUnit and Samples counts the
// lines read.
func ParseFolded(r io.Reader, name string) (*Profile, error) {
	p := New(DefaultUnit)
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), MaxLineBytes)
	line := 0
	for sc.Scan() {
		line++
		b := bytes.TrimRight(sc.Bytes(), "\r")
		if len(bytes.TrimSpace(b)) == 0 {
			continue
		}
		i := bytes.LastIndexByte(b, ' ')
		if i < 0 {
			return nil, &ParseError{name, line, "missing value: want \"stack value\""}
		}
		stack, num := b[:i], b[i+1:]
		stack = bytes.TrimRight(stack, " \t")
		if len(stack) == 0 {
			return nil, &ParseError{name, line, "empty stack"}
		}
		v, err := parseValue(num)
		if err != nil {
			return nil, &ParseError{name, line, err.Error()}
		}
		if err := checkStack(stack); err != nil {
			return nil, &ParseError{name, line, err.Error()}
		}
		if v == 0 {
			p.Samples++
			continue
		}
		if old, ok := p.Stacks[string(stack)]; ok {
			p.Stacks[string(stack)] = old + v
		} else {
			p.Stacks[string(stack)] = v
		}
		p.Samples++
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return nil, &ParseError{name, line + 1, fmt.Sprintf("line longer than %d bytes", MaxLineBytes)}
		}
		return nil, fmt.Errorf("read %s: %w", name, err)
	}
	return p, nil
}

// ReadFoldedFile parses the folded-stack file at path.
func ReadFoldedFile(path string) (*Profile, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read folded stacks: %w", err)
	}
	defer f.Close()
	return ParseFolded(f, path)
}

// parseValue parses a sample value; plain integers take a fast path
// because they are by far the common case.
func parseValue(b []byte) (float64, error) {
	if len(b) == 0 {
		return 0, errors.New("missing value after the last space")
	}
	if len(b) <= 15 {
		var n int64
		ok := true
		for _, c := range b {
			if c < '0' || c > '9' {
				ok = false
				break
			}
			n = n*10 + int64(c-'0')
		}
		if ok {
			return float64(n), nil
		}
	}
	v, err := strconv.ParseFloat(string(b), 64)
	if err != nil {
		return 0, fmt.Errorf("bad value %q: want a non-negative number", b)
	}
	if math.IsNaN(v) || math.IsInf(v, 0) || v < 0 {
		return 0, fmt.Errorf("bad value %q: want a finite non-negative number", b)
	}
	return v, nil
}

func checkStack(b []byte) error {
	start := 0
	n := 1
	for i := 0; i <= len(b); i++ {
		if i == len(b) || b[i] == ';' {
			if i == start {
				return fmt.Errorf("empty frame %d in stack", n)
			}
			start = i + 1
			n++
		}
	}
	return nil
}

// FormatValue formats a value as the folded format writes it: the
// shortest decimal that round-trips, never in exponent form.
func FormatValue(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) }

// WriteFolded writes p as folded stacks sorted by stack, one per line, so
// the same profile always yields the same bytes. Zero-valued stacks are
// omitted.
func WriteFolded(w io.Writer, p *Profile) error {
	bw := bufio.NewWriter(w)
	buf := make([]byte, 0, 32)
	for _, k := range p.sortedKeys() {
		v := p.Stacks[k]
		if v == 0 {
			continue
		}
		bw.WriteString(k)
		bw.WriteByte(' ')
		buf = strconv.AppendFloat(buf[:0], v, 'f', -1, 64)
		bw.Write(buf)
		bw.WriteByte('\n')
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("write folded stacks: %w", err)
	}
	return nil
}

func (p *Profile) sortedKeys() []string {
	keys := make([]string, 0, len(p.Stacks))
	for k := range p.Stacks {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
