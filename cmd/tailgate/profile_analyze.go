package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/tailgate-ci/tailgate/bpf/gort"
	"github.com/tailgate-ci/tailgate/internal/flame"
	"github.com/tailgate-ci/tailgate/internal/load"
	"github.com/tailgate-ci/tailgate/internal/rules"
	"github.com/tailgate-ci/tailgate/internal/symbol"
	"github.com/tailgate-ci/tailgate/internal/tail"
	perfrules "github.com/tailgate-ci/tailgate/perf-rules"
)

// ContributorsTextFile is the human-readable breakdown `tailgate profile
// --analyze` writes beside internal/tail's files (ARTIFACTS.md).
const ContributorsTextFile = "contributors.txt"

// slowestShown is how many of the slowest requests contributors.txt
// splits one by one.
const slowestShown = 10

var safeLabel = regexp.MustCompile(`^[A-Za-z0-9._-]+$`)

// loadContributors returns the contributors of the perf-rules file at
// path, or of the embedded default rules when path is empty.
func loadContributors(path string) (rules.Contributors, error) {
	var r *rules.Rules
	var err error
	if path == "" {
		r, err = rules.Parse(perfrules.BidderName, perfrules.Bidder)
	} else {
		r, err = rules.Load(path)
	}
	if err != nil {
		return nil, fmt.Errorf("bad rules: %w", err)
	}
	return r.ContributorRules(), nil
}

// readWindowsPath reads the client request windows at path: one windows
// file, or every *.windows file of a directory (a `tailgate run` results
// directory has one per round).
func readWindowsPath(path string) ([]load.Window, []string, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, nil, fmt.Errorf("windows: %w", err)
	}
	files := []string{path}
	if st.IsDir() {
		files, err = filepath.Glob(filepath.Join(path, "*.windows"))
		if err != nil {
			return nil, nil, fmt.Errorf("windows: %w", err)
		}
		if len(files) == 0 {
			return nil, nil, fmt.Errorf("windows: %s has no *.windows file (a 'tailgate run' results directory has round-NN.windows)", path)
		}
		sort.Strings(files)
	}
	var out []load.Window
	for _, f := range files {
		ws, err := load.ReadWindows(f)
		if err != nil {
			return nil, nil, fmt.Errorf("windows: %w", err)
		}
		out = append(out, ws...)
	}
	return out, files, nil
}

// profileInput is one side (head or base) of an analysis: the recorded
// events, the windows, and how to symbolize the stacks.
type profileInput struct {
	dir     string
	in      tail.Input
	sym     tail.Symbolizer
	symNote string
	// windowsNote says where the request windows came from.
	windowsNote string
}

// readProfileInput reads a recorded directory and, when windowsPath is
// set, the client windows inside its profiled interval. res, when not
// nil, is the recording's own resolver (the targets are alive);
// otherwise the stacks are symbolized with the directory's snapshot of
// the targets' mappings (proc/PID/maps), or the live process, or left as
// addresses.
func readProfileInput(dir, windowsPath string, res *symbol.Resolver) (*profileInput, error) {
	pd, err := tail.ReadProfileDir(dir)
	if err != nil {
		return nil, err
	}
	pi := &profileInput{dir: dir, in: tail.Input{Go: pd.Go, Kernel: pd.Kernel}}
	var pid int
	if len(pd.PIDs) > 0 {
		pid = pd.PIDs[0]
	}
	if len(pd.PIDs) == 1 {
		pi.in.PID = uint32(pid)
	}
	if windowsPath != "" {
		ws, files, err := readWindowsPath(windowsPath)
		if err != nil {
			return nil, err
		}
		kept := ws
		if pd.MonoStart > 0 && pd.MonoEnd > pd.MonoStart {
			kept = ws[:0:0]
			for _, w := range ws {
				if w.Sent >= pd.MonoStart && w.Received <= pd.MonoEnd {
					kept = append(kept, w)
				}
			}
		}
		if len(kept) == 0 {
			return nil, fmt.Errorf("windows: none of the %d request windows in %s falls inside the profile of %s (CLOCK_MONOTONIC %d..%d): was the load run while profiling?",
				len(ws), strings.Join(files, ", "), dir, pd.MonoStart, pd.MonoEnd)
		}
		pi.in.Client = kept
		pi.windowsNote = fmt.Sprintf("client windows from %s (%d of %d inside the profile)", windowsPath, len(kept), len(ws))
	} else {
		n := 0
		for i := range pd.Go {
			if pd.Go[i].Kind == gort.Request && (pi.in.PID == 0 || pd.Go[i].PID == pi.in.PID) {
				n++
			}
		}
		if n == 0 {
			why := tail.GoEventsFile + ` is missing or empty (summary.json "go" says whether the Go probes attached)`
			if len(pd.Go) > 0 {
				why = tail.GoEventsFile + " has no request (ServeHTTP) events: is the target a net/http server?"
			}
			return nil, fmt.Errorf("analyze %s: no request windows: %s; give the load generator's windows with --windows", dir, why)
		}
		pi.windowsNote = fmt.Sprintf("server-side ServeHTTP windows (%d)", n)
	}
	switch {
	case pid == 0:
		pi.symNote = "no pid in summary.json: stacks left as addresses"
	case res != nil:
		pi.sym, pi.symNote = tail.ResolverSymbolizer(res, pid), fmt.Sprintf("pid %d, live", pid)
	default:
		snap := filepath.Join(dir, "proc")
		if _, err := os.Stat(filepath.Join(snap, fmt.Sprint(pid), "maps")); err == nil {
			r := symbol.NewResolverOptions(symbol.Options{ProcRoot: snap})
			pi.sym, pi.symNote = tail.ResolverSymbolizer(r, pid), fmt.Sprintf("pid %d, mappings from %s", pid, snap)
		} else if errors.Is(err, fs.ErrNotExist) {
			pi.sym, pi.symNote = tail.ResolverSymbolizer(symbol.NewResolver(), pid), fmt.Sprintf("pid %d, /proc (no mappings snapshot)", pid)
		} else {
			return nil, fmt.Errorf("analyze %s: %w", dir, err)
		}
	}
	return pi, nil
}

// analyzeProfile runs internal/tail's analysis of o.in (or of the
// directory just recorded, o.out) and writes it into o.out.
func analyzeProfile(o *profileOptions, res *symbol.Resolver, stdout, stderr io.Writer) error {
	cs, err := loadContributors(o.rulesPath)
	if err != nil {
		return withExit(ExitUsage, fmt.Errorf("profile: %w", err))
	}
	src := o.in
	if src == "" {
		src = o.out
	}
	head, err := readProfileInput(src, o.windows, res)
	if err != nil {
		return fmt.Errorf("profile: %w", err)
	}
	ao := tail.AnalyzeOptions{
		Options: tail.Options{Contributors: cs, Symbolize: head.sym, SLO: o.slo},
		Variant: o.variant,
	}
	var base *profileInput
	if o.base != "" {
		if base, err = readProfileInput(o.base, o.baseWindows, nil); err != nil {
			return fmt.Errorf("profile: base: %w", err)
		}
		ao.Base, ao.BaseSymbolize = &base.in, base.sym
		if ao.BaseSymbolize == nil {
			ao.BaseSymbolize = tail.HexFrames
		}
	}
	if err := os.MkdirAll(o.out, 0o755); err != nil {
		return fmt.Errorf("profile: %w", err)
	}
	a, err := tail.Analyze(o.out, head.in, ao)
	if err != nil {
		return fmt.Errorf("profile: %w", err)
	}
	if a.Head.SlowRequests == 0 || a.Head.FastRequests == 0 {
		return fmt.Errorf("profile: analyze %s: %d requests, %d slow and %d fast: nothing to compare", src, a.Head.Requests, a.Head.SlowRequests, a.Head.FastRequests)
	}

	var buf bytes.Buffer
	fmt.Fprintf(&buf, "analysis of %s (%s): %s; symbols: %s\n", src, o.variant, head.windowsNote, head.symNote)
	writeBreakdown(&buf, a.Head, o.variant)
	if a.Base != nil {
		fmt.Fprintf(&buf, "\nbase %s (%s): %s; symbols: %s\n", o.base, flame.LabelBase, base.windowsNote, base.symNote)
		writeBreakdown(&buf, a.Base, flame.LabelBase)
	}
	writeSlowest(&buf, a.Head, slowestShown)
	txt := filepath.Join(o.out, ContributorsTextFile)
	if err := os.WriteFile(txt, buf.Bytes(), 0o644); err != nil {
		return fmt.Errorf("profile: %w", err)
	}
	// stdout gets the breakdown without the per-request table.
	out := buf.String()
	if i := strings.Index(out, slowestHeading); i >= 0 {
		out = out[:i]
	}
	fmt.Fprint(stdout, out)
	fmt.Fprintf(stdout, "wrote %d files into %s (%s, %s, %s, %s/; layout: internal/tail/ARTIFACTS.md)\n",
		len(a.Files)+1, o.out, tail.ContributorsFile, ContributorsTextFile, tail.ProfilesFile, tail.FlameDir)
	for _, s := range a.Skipped {
		fmt.Fprintf(stderr, "tailgate profile: note: diff set not written: %s\n", s)
	}
	return nil
}

// writeBreakdown writes the aggregate slow-vs-fast breakdown: every
// contributor with time, ranked, then the evidence of the top ones.
func writeBreakdown(w io.Writer, cl *tail.Classification, variant string) {
	slowBy := fmt.Sprintf("latency >= p%.4g = %v", 100*cl.SlowQuantile, roundDur(cl.SlowThreshold))
	if cl.SlowBy == "slo" {
		slowBy = fmt.Sprintf("latency > SLO %v", cl.SlowThreshold)
	}
	fmt.Fprintf(w, "%s: %d requests; slow (%s): %d, %d split on their ServeHTTP window; fast (latency <= p%.4g = %v): %d\n",
		variant, cl.Requests, slowBy, cl.SlowRequests, cl.SlowServerWindows, 100*cl.FastQuantile, roundDur(cl.FastThreshold), cl.FastRequests)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "rank\tcontributor\tslow/req\tfast/req\texcess/req\tslow share\tfast share\tenrichment\tslow events\tslow time\t")
	for i, c := range cl.Contributors {
		if c.SlowTime == 0 && c.FastTime == 0 {
			continue
		}
		fmt.Fprintf(tw, "%d\t%s\t%v\t%v\t%v\t%.1f%%\t%.1f%%\t%s\t%d\t%v\t\n", i+1, c.Name,
			roundDur(c.SlowPerRequest), roundDur(c.FastPerRequest), roundDur(c.Excess),
			100*c.SlowShare, 100*c.FastShare, enrichment(c.Enrichment), c.SlowEvents, roundDur(c.SlowTime))
	}
	tw.Flush()
	if len(cl.Top) == 0 {
		fmt.Fprintln(w, "top contributors: none adds time to slow requests over fast ones")
		return
	}
	fmt.Fprintf(w, "top %d contributors of the slow requests: %s\n", len(cl.Top), strings.Join(cl.Top, ", "))
	for i, name := range cl.Top {
		c, _ := cl.Contributor(name)
		fmt.Fprintf(w, "%d. %s: +%v per slow request (enrichment %s), in %d of %d slow requests; %d events, %v in slow requests (%d events in fast)\n",
			i+1, name, roundDur(c.Excess), enrichment(c.Enrichment), c.SlowRequestsWith, cl.SlowRequests, c.SlowEvents, roundDur(c.SlowTime), c.FastEvents)
		if len(c.TopStacks) == 0 {
			fmt.Fprintln(w, "     no stack evidence (time from the component's remainder)")
		}
		for _, st := range c.TopStacks {
			// The evidence's overlap with the requests, before overlapping
			// evidence is resolved: it can exceed the contributor's time.
			fmt.Fprintf(w, "     %v overlap in %d events: %s\n", roundDur(st.Time), st.Count, shortStack(st.Frames, 3))
		}
	}
}

const slowestHeading = "\nslowest requests"

// writeSlowest writes the per-request split of the n slowest requests.
func writeSlowest(w io.Writer, cl *tail.Classification, n int) {
	slow := append([]tail.RequestContributors(nil), cl.Slow...)
	sort.SliceStable(slow, func(i, j int) bool { return slow[i].Latency > slow[j].Latency })
	if len(slow) > n {
		slow = slow[:n]
	}
	fmt.Fprintf(w, "%s (%d of %d; per-request splits of every slow and fast request: %s):\n", slowestHeading, len(slow), cl.SlowRequests, tail.ContributorsFile)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprint(tw, "seq\tlatency\t")
	for _, name := range cl.Names {
		fmt.Fprintf(tw, "%s\t", name)
	}
	fmt.Fprintln(tw)
	for _, r := range slow {
		fmt.Fprintf(tw, "%d\t%v\t", r.Seq, roundDur(r.Latency))
		for _, d := range r.Time {
			fmt.Fprintf(tw, "%v\t", roundDur(d))
		}
		fmt.Fprintln(tw)
	}
	tw.Flush()
}

func enrichment(e float64) string {
	switch {
	case e == 0:
		return "-"
	case e > 1e308:
		return "inf"
	}
	return fmt.Sprintf("%.2fx", e)
}

func roundDur(d time.Duration) time.Duration {
	switch {
	case d >= time.Second:
		return d.Round(time.Millisecond)
	case d >= time.Millisecond:
		return d.Round(time.Microsecond)
	}
	return d
}

// shortStack renders a root-first stack for one line: the leaf-most
// application frame with up to n-1 callers, then up to n leaf frames
// (what it waited in), with "..." where frames are left out, e.g.
// "...;bidder.(*Bidder).auction;bidder.(*GlobalLedger).TrySpend;...;runtime.goparkunlock;runtime.gopark".
func shortStack(frames []string, n int) string {
	if len(frames) == 0 {
		return "(no stack)"
	}
	app := -1
	for i := len(frames) - 1; i >= 0; i-- {
		if isAppFrame(frames[i]) {
			app = i
			break
		}
	}
	if app < 0 || len(frames) <= 2*n {
		if len(frames) <= 2*n {
			return strings.Join(frames, ";")
		}
		return "...;" + strings.Join(frames[len(frames)-2*n:], ";")
	}
	var parts []string
	lo := max(0, app-(n-1))
	if lo > 0 {
		parts = append(parts, "...")
	}
	parts = append(parts, frames[lo:app+1]...)
	leaf := max(app+1, len(frames)-n)
	if leaf > app+1 {
		parts = append(parts, "...")
	}
	return strings.Join(append(parts, frames[leaf:]...), ";")
}

// isAppFrame reports whether a frame is the program's own code rather
// than the Go runtime's, the standard library's locking or the kernel's.
func isAppFrame(f string) bool {
	if strings.HasSuffix(f, "_[k]") || strings.HasPrefix(f, "[") || strings.HasPrefix(f, "0x") {
		return false
	}
	for _, p := range []string{"runtime.", "internal/", "sync.", "syscall.", "net/http.", "net.", "bufio.", "io."} {
		if strings.HasPrefix(f, p) {
			return false
		}
	}
	return true
}
