package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"sync"

	"github.com/tailgate-ci/tailgate/bpf/gort"
	"github.com/tailgate-ci/tailgate/internal/tail"
)

// goSummary is summary.json's "go": what the Go-runtime collectors saw.
type goSummary struct {
	// Events, Lost and MapFull are per gort kind, over every target.
	Events  map[string]uint64 `json:"events"`
	Lost    map[string]uint64 `json:"lost,omitempty"`
	MapFull map[string]uint64 `json:"map_full,omitempty"`
	Decode  uint64            `json:"decode_errors,omitempty"`
	Unread  uint64            `json:"unread,omitempty"`
	// Targets are the processes the probes attached to, with the Go
	// version and where the struct offsets came from.
	Targets []goTarget `json:"targets,omitempty"`
	// Skipped says, per pid, why the Go probes could not attach.
	Skipped map[string]string `json:"skipped,omitempty"`
	// Programs are the uprobe programs' hits and CPU time, with
	// --program-stats (summed over targets).
	Programs map[string]programCost `json:"bpf_programs,omitempty"`
}

type goTarget struct {
	PID       int    `json:"pid"`
	GoVersion string `json:"go_version"`
	Offsets   string `json:"offsets"`
	Probes    int    `json:"probes"`
}

// goRecorder runs one Go-runtime session per target and keeps its events
// in memory (the join needs them all at once).
type goRecorder struct {
	mu       sync.Mutex
	sessions []*gort.Session
	targets  []goTarget
	skipped  map[string]string
	events   []gort.Event
	wg       sync.WaitGroup
	stats    []gort.Stats
}

// startGoRecorder attaches the Go probes to every pid. A target the
// probes do not support (not Go, no privileges) is skipped with its
// reason, never silently: the analysis then has only client windows.
func startGoRecorder(ctx context.Context, pids []int, kinds []gort.Kind, stderr io.Writer, sched *consumerSched) *goRecorder {
	g := &goRecorder{skipped: map[string]string{}}
	for _, pid := range pids {
		s, err := gort.Start(ctx, gort.Options{PID: pid, Kinds: kinds})
		if err != nil {
			g.skipped[strconv.Itoa(pid)] = err.Error()
			fmt.Fprintf(stderr, "tailgate profile: warning: pid %d: no Go-runtime events: %v\n", pid, err)
			continue
		}
		info := s.Info()
		g.sessions = append(g.sessions, s)
		g.targets = append(g.targets, goTarget{PID: pid, GoVersion: info.GoVersion, Offsets: info.OffsetsSource, Probes: len(info.Probes)})
		g.wg.Add(1)
		go func() {
			defer g.wg.Done()
			var local []gort.Event
			for e := range s.Events() {
				sched.observe(e.EndNs)
				local = append(local, e)
			}
			g.mu.Lock()
			g.events = append(g.events, local...)
			g.mu.Unlock()
		}()
	}
	return g
}

// stop detaches every session and waits for their events.
func (g *goRecorder) stop() error {
	var errs []error
	for i, s := range g.sessions {
		st, err := s.Stop()
		if err != nil {
			errs = append(errs, fmt.Errorf("stop go collectors of pid %d: %w", g.targets[i].PID, err))
		}
		g.stats = append(g.stats, st)
	}
	g.sessions = nil
	g.wg.Wait()
	return errors.Join(errs...)
}

func (g *goRecorder) summary() *goSummary {
	s := &goSummary{Events: map[string]uint64{}, Lost: map[string]uint64{}, MapFull: map[string]uint64{}, Targets: g.targets}
	if len(g.skipped) > 0 {
		s.Skipped = g.skipped
	}
	for _, st := range g.stats {
		for k, v := range st.Events {
			s.Events[k.String()] += v
		}
		for k, v := range st.Lost {
			s.Lost[k.String()] += v
		}
		for k, v := range st.MapFull {
			s.MapFull[k.String()] += v
		}
		s.Decode += st.Decode
		s.Unread += st.Unread
		for name, c := range st.Programs {
			if s.Programs == nil {
				s.Programs = map[string]programCost{}
			}
			pc := s.Programs[name]
			pc.Runs += c.Runs
			pc.RuntimeNs += c.Runtime.Nanoseconds()
			s.Programs[name] = pc
		}
	}
	return s
}

// write writes the events, in time order, as tail.GoEventsFile lines.
func (g *goRecorder) write(path string) error {
	sort.SliceStable(g.events, func(i, j int) bool { return g.events[i].StartNs < g.events[j].StartNs })
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := tail.WriteGoEvents(f, g.events); err != nil {
		f.Close()
		return fmt.Errorf("%s: %w", path, err)
	}
	return f.Close()
}

// report prints the Go collectors' counts under the kernel ones.
func (g *goRecorder) report(w io.Writer) {
	s := g.summary()
	var lost uint64
	for _, v := range s.Lost {
		lost += v
	}
	for _, v := range s.MapFull {
		lost += v
	}
	lost += s.Decode + s.Unread
	var n uint64
	for _, v := range s.Events {
		n += v
	}
	fmt.Fprintf(w, "  %-9s %8d events (gc %d, stw %d, assist %d, block %d, request %d, run %d)", "go", n,
		s.Events["gc"], s.Events["stw"], s.Events["assist"], s.Events["block"], s.Events["request"], s.Events["run"])
	if lost > 0 {
		fmt.Fprintf(w, "  (%d LOST)", lost)
	}
	fmt.Fprintln(w)
	for pid, why := range s.Skipped {
		fmt.Fprintf(w, "  go        pid %s skipped: %s\n", pid, why)
	}
}

// snapshotMaps copies /proc/PID/maps of every target into
// DIR/proc/PID/maps, so `profile --analyze --in DIR` can symbolize the
// stacks after the targets exit (symbol.Options.ProcRoot). A target that
// has exited keeps its earlier snapshot.
func snapshotMaps(dir string, pids []int) error {
	var errs []error
	for _, pid := range pids {
		b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "maps"))
		if err != nil {
			errs = append(errs, fmt.Errorf("snapshot maps of pid %d: %w", pid, err))
			continue
		}
		d := filepath.Join(dir, "proc", strconv.Itoa(pid))
		if err := os.MkdirAll(d, 0o755); err != nil {
			errs = append(errs, err)
			continue
		}
		if err := os.WriteFile(filepath.Join(d, "maps"), b, 0o644); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
