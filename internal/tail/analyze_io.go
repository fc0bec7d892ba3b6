package tail

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/tailgate-ci/tailgate/bpf"
	"github.com/tailgate-ci/tailgate/bpf/gort"
	"github.com/tailgate-ci/tailgate/internal/symbol"
)

// GoEventsFile is the Go-runtime events of a profile directory, one JSON
// object (GoEventJSON) per line. `tailgate profile` writes the kernel
// events as KIND.events.jsonl; the Go events go here (WriteGoEvents).
const GoEventsFile = "go.events.jsonl"

// GoEventJSON is one line of GoEventsFile: a gort.Event with hex stacks.
type GoEventJSON struct {
	Kind           string   `json:"kind"`
	PID            uint32   `json:"pid"`
	TID            uint32   `json:"tid"`
	EndTID         uint32   `json:"end_tid,omitempty"`
	StartNs        uint64   `json:"start_ns"`
	EndNs          uint64   `json:"end_ns"`
	Goid           uint64   `json:"goid,omitempty"`
	ReadyNs        uint64   `json:"ready_ns,omitempty"`
	AccountedEndNs uint64   `json:"accounted_end_ns,omitempty"`
	Reason         uint64   `json:"reason,omitempty"`
	WaitReason     string   `json:"wait_reason,omitempty"`
	Stack          []string `json:"stack,omitempty"`
	StackErr       int32    `json:"stack_err,omitempty"`
}

func hexPCs(pcs []uint64) []string {
	if len(pcs) == 0 {
		return nil
	}
	out := make([]string, len(pcs))
	for i, pc := range pcs {
		out[i] = "0x" + strconv.FormatUint(pc, 16)
	}
	return out
}

func parsePCs(ss []string) ([]uint64, error) {
	if len(ss) == 0 {
		return nil, nil
	}
	out := make([]uint64, len(ss))
	for i, s := range ss {
		v, err := strconv.ParseUint(strings.TrimPrefix(s, "0x"), 16, 64)
		if err != nil {
			return nil, fmt.Errorf("stack[%d]: %q is not a hex address", i, s)
		}
		out[i] = v
	}
	return out, nil
}

// WriteGoEvents writes events as GoEventsFile lines.
func WriteGoEvents(w io.Writer, events []gort.Event) error {
	bw := bufio.NewWriter(w)
	enc := json.NewEncoder(bw)
	for i := range events {
		e := &events[i]
		if err := enc.Encode(GoEventJSON{Kind: e.Kind.String(), PID: e.PID, TID: e.TID, EndTID: e.EndTID, StartNs: e.StartNs, EndNs: e.EndNs,
			Goid: e.Goid, ReadyNs: e.ReadyNs, AccountedEndNs: e.AccountedEndNs, Reason: e.Reason, WaitReason: e.WaitReason,
			Stack: hexPCs(e.Stack), StackErr: e.StackErr}); err != nil {
			return fmt.Errorf("write go events: %w", err)
		}
	}
	return bw.Flush()
}

var goKinds = func() map[string]gort.Kind {
	m := map[string]gort.Kind{}
	for _, k := range gort.AllKinds {
		m[k.String()] = k
	}
	return m
}()

// ReadGoEvents reads GoEventsFile lines; errors name the file and line.
func ReadGoEvents(r io.Reader, name string) ([]gort.Event, error) {
	var out []gort.Event
	err := scanLines(r, name, func(line []byte) error {
		var j GoEventJSON
		if err := json.Unmarshal(line, &j); err != nil {
			return err
		}
		k, ok := goKinds[j.Kind]
		if !ok {
			return fmt.Errorf("kind: unknown Go event kind %q", j.Kind)
		}
		st, err := parsePCs(j.Stack)
		if err != nil {
			return err
		}
		out = append(out, gort.Event{Kind: k, PID: j.PID, TID: j.TID, EndTID: j.EndTID, StartNs: j.StartNs, EndNs: j.EndNs, Goid: j.Goid,
			ReadyNs: j.ReadyNs, AccountedEndNs: j.AccountedEndNs, Reason: j.Reason, WaitReason: j.WaitReason, Stack: st, StackErr: j.StackErr})
		return nil
	})
	return out, err
}

// kernelEventJSON is the part of a `tailgate profile` KIND.events.jsonl
// line the join uses (schema 1, cmd/tailgate/profile.go).
type kernelEventJSON struct {
	Kind      string   `json:"kind"`
	TsNs      uint64   `json:"ts_ns"`
	DurNs     uint64   `json:"dur_ns"`
	PID       uint32   `json:"pid"`
	TID       uint32   `json:"tid"`
	CPU       uint32   `json:"cpu"`
	Comm      string   `json:"comm"`
	UStack    []string `json:"ustack"`
	KStack    []string `json:"kstack"`
	State     *uint32  `json:"state"`
	Preempted *bool    `json:"preempted"`
	Major     *bool    `json:"major"`
	FromNode  *uint32  `json:"from_node"`
	ToNode    *uint32  `json:"to_node"`
}

// ReadKernelEvents reads a `tailgate profile` KIND.events.jsonl stream.
func ReadKernelEvents(r io.Reader, name string) ([]bpf.Event, error) {
	var out []bpf.Event
	err := scanLines(r, name, func(line []byte) error {
		var j kernelEventJSON
		if err := json.Unmarshal(line, &j); err != nil {
			return err
		}
		k, err := bpf.ParseKind(j.Kind)
		if err != nil {
			return fmt.Errorf("kind: %v", err)
		}
		e := bpf.Event{Kind: k, TsNs: j.TsNs, DurNs: j.DurNs, PID: j.PID, TID: j.TID, CPU: j.CPU, Comm: j.Comm}
		if e.UserStack, err = parsePCs(j.UStack); err != nil {
			return fmt.Errorf("ustack: %v", err)
		}
		if e.KernelStack, err = parsePCs(j.KStack); err != nil {
			return fmt.Errorf("kstack: %v", err)
		}
		if j.State != nil {
			e.State = *j.State
		}
		if j.Preempted != nil {
			e.Preempted = *j.Preempted
		}
		if j.Major != nil {
			e.Major = *j.Major
		}
		if j.FromNode != nil {
			e.FromNode = *j.FromNode
		}
		if j.ToNode != nil {
			e.ToNode = *j.ToNode
		}
		out = append(out, e)
		return nil
	})
	return out, err
}

func scanLines(r io.Reader, name string, f func([]byte) error) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	n := 0
	for sc.Scan() {
		n++
		line := sc.Bytes()
		if len(strings.TrimSpace(string(line))) == 0 {
			continue
		}
		if err := f(line); err != nil {
			return fmt.Errorf("%s:%d: %v", name, n, err)
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("%s:%d: %w", name, n+1, err)
	}
	return nil
}

// ProfileDir is a profile directory's events, read by ReadProfileDir.
type ProfileDir struct {
	Kernel []bpf.Event
	Go     []gort.Event
	// PIDs are the profiled processes (summary.json "pids"), when known.
	PIDs []int
	// MonoStart and MonoEnd bound the profiled interval (summary.json
	// "mono_start_ns", "mono_end_ns", CLOCK_MONOTONIC); 0 when unknown.
	MonoStart, MonoEnd int64
	// Files are the event files read.
	Files []string
}

// ReadProfileDir reads every KIND.events.jsonl, GoEventsFile and
// summary.json of a `tailgate profile` directory. A directory with no
// event file is an error.
func ReadProfileDir(dir string) (*ProfileDir, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("read profile: %w", err)
	}
	pd := &ProfileDir{}
	var names []string
	for _, e := range ents {
		if !e.IsDir() && strings.HasSuffix(e.Name(), ".events.jsonl") {
			names = append(names, e.Name())
		}
	}
	sort.Strings(names)
	for _, n := range names {
		path := filepath.Join(dir, n)
		f, err := os.Open(path)
		if err != nil {
			return nil, fmt.Errorf("read profile: %w", err)
		}
		if n == GoEventsFile {
			evs, err := ReadGoEvents(f, path)
			f.Close()
			if err != nil {
				return nil, fmt.Errorf("read profile: %w", err)
			}
			pd.Go = append(pd.Go, evs...)
		} else {
			evs, err := ReadKernelEvents(f, path)
			f.Close()
			if err != nil {
				return nil, fmt.Errorf("read profile: %w", err)
			}
			pd.Kernel = append(pd.Kernel, evs...)
		}
		pd.Files = append(pd.Files, path)
	}
	if len(pd.Files) == 0 {
		return nil, fmt.Errorf("read profile: %s has no *.events.jsonl (not a tailgate profile directory?)", dir)
	}
	b, err := os.ReadFile(filepath.Join(dir, "summary.json"))
	switch {
	case err == nil:
		var s struct {
			PIDs      []int `json:"pids"`
			MonoStart int64 `json:"mono_start_ns"`
			MonoEnd   int64 `json:"mono_end_ns"`
		}
		if err := json.Unmarshal(b, &s); err != nil {
			return nil, fmt.Errorf("read profile: %s: %w", filepath.Join(dir, "summary.json"), err)
		}
		pd.PIDs, pd.MonoStart, pd.MonoEnd = s.PIDs, s.MonoStart, s.MonoEnd
	case !errors.Is(err, fs.ErrNotExist):
		return nil, fmt.Errorf("read profile: %w", err)
	}
	return pd, nil
}

// ResolverSymbolizer symbolizes stacks of process pid with r (inlined Go
// calls expanded, kernel frames suffixed "_[k]"), root first. The process
// must be alive or primed (symbol.Resolver.Prime) for user frames to
// resolve; unknown ones keep their addresses.
func ResolverSymbolizer(r *symbol.Resolver, pid int) Symbolizer {
	return func(user, kernel []uint64) []string {
		var out []string
		if len(user) > 0 {
			fs := r.UserInline(pid, user)
			for i := len(fs) - 1; i >= 0; i-- {
				out = append(out, fs[i].Func)
			}
		}
		if len(kernel) > 0 {
			fs := r.Kernel(kernel)
			for i := len(fs) - 1; i >= 0; i-- {
				out = append(out, fs[i].Func+"_[k]")
			}
		}
		return out
	}
}
