package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/tailgate-ci/tailgate/internal/deploy"
	"github.com/tailgate-ci/tailgate/internal/experiment"
	"github.com/tailgate-ci/tailgate/internal/gate"
)

func init() {
	register(command{
		name:    "soak",
		summary: "drive one build at peak rate for a long time: p99 per window, drift, memory and GC trend",
		run:     runSoak,
	})
}

const soakUsage = `usage: tailgate soak [flags]

Builds the service at --ref (with --fixes applied), starts it, warms it up,
then drives it at --rate (default: the rules' load.rate) for --duration in
back-to-back --window windows. Reports p99 per window, the pooled p99
against gate.slo, drift of the p99 trend (Theil–Sen slope, Mann–Kendall
test) and the service's RSS, live heap and GC rate per window (VmRSS and
its /metrics). Writes to --out: soak.json, rounds/round-NNN-soak.hist, logs.

Exit status: 0 pass, 3 fail (p99 over the SLO or drifting up), 4
inconclusive, 1 invalid window or error, 2 usage.

flags:
`

func runSoak(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) error {
	var l liveFlags
	var ref, fixesFlag, metrics string
	var duration, window time.Duration
	var drift float64
	fs := flag.NewFlagSet("soak", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, soakUsage); fs.PrintDefaults() }
	l.register(fs, false)
	fs.StringVar(&ref, "ref", "", "git ref to build (default: the working tree)")
	fs.StringVar(&fixesFlag, "fixes", "", "comma-separated fixes to apply (default: none; \"all\" for every fix in the rules)")
	fs.DurationVar(&duration, "duration", time.Hour, "length of the soak")
	fs.DurationVar(&window, "window", experiment.DefaultSoakWindow, "length of one measured window")
	fs.Float64Var(&drift, "drift", experiment.DefaultDriftThreshold, "relative p99 change over the soak that counts as drift (with a significant Mann–Kendall trend)")
	fs.StringVar(&metrics, "metrics-url", "", "Prometheus endpoint of the service (default: the health URL with path /metrics; \"none\" to skip)")
	if err := parseLive("soak", fs, &l, args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	if window <= 0 || duration < window {
		return usageErrorf("soak: --duration %s must hold at least one --window %s", duration, window)
	}
	if drift <= 0 {
		return usageErrorf("soak: --drift %g: want a positive fraction", drift)
	}
	r, raw, err := loadLiveRules("soak", &l)
	if err != nil {
		return err
	}
	if r.Service.Bin != "" && ref != "" {
		return usageErrorf("soak: --ref needs service.build; %s gives a prebuilt service.bin", r.Path)
	}
	var fixes []string
	switch fixesFlag {
	case "", "none":
	case "all":
		fixes = r.FixNames()
	default:
		for _, f := range strings.Split(fixesFlag, ",") {
			f = strings.TrimSpace(f)
			if _, ok := r.FixByName(f); !ok {
				return usageErrorf("soak: --fixes: unknown fix %q (%s has: %s)", f, r.Path, strings.Join(r.FixNames(), ", "))
			}
			fixes = append(fixes, f)
		}
	}
	out, err := prepareOut("soak", l.out, raw)
	if err != nil {
		return err
	}
	fmt.Fprintf(stderr, "results: %s (rules %s)\n", out, r.Path)
	const arm = "soak"
	fo := l.fleetOptions(out, stderr)
	fo.RoundDuration, fo.RoundWarmup = window, -1
	fleet, err := experiment.StartFleet(ctx, r, []experiment.ArmSpec{{Name: arm, Ref: ref, Fixes: fixes}}, fo)
	if err != nil {
		return fmt.Errorf("soak: %w", err)
	}
	defer fleet.Close()
	murl := metrics
	switch metrics {
	case "":
		murl = fleet.MetricsURL(arm)
	case "none":
		murl = ""
	}
	res, runErr := experiment.RunSoak(ctx, experiment.SoakRun{
		Duration: duration, Window: window, SLO: r.Gate.Config().WithDefaults().SLO, DriftThreshold: drift,
		Arm: arm, Driver: fleet, Sample: experiment.ProcSampler(fleet.PID(arm), murl),
		Record: histRecorder(out), Progress: stderr,
	})
	if res == nil {
		return fmt.Errorf("soak: %w", runErr)
	}
	res.Service = r.Service.Build + r.Service.Bin
	res.Ref = &experiment.Ref{Name: deploy.RefName(ref), Commit: fleet.Commit(arm)}
	res.Rate = rateOf(r, l)
	res.Notes = append(res.Notes, fleet.Notes()...)
	if len(fixes) > 0 {
		res.Notes = append(res.Notes, "fixes: "+experiment.VariantName(fixes))
	}
	if err := writeJSON(filepath.Join(out, "soak.json"), res); err != nil && runErr == nil {
		runErr = err
	}
	printSoak(stdout, res, out)
	if runErr != nil {
		return fmt.Errorf("soak: %w", runErr)
	}
	if res.Verdict == gate.Pass {
		return nil
	}
	return withExit(gate.ExitCode(res.Verdict), errSilent)
}

func printSoak(w io.Writer, res *experiment.SoakResult, out string) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "window\trequests\tp50\tp99\tmax\trss MiB\theap MiB\tgc cycles\tvalid\t")
	for _, x := range res.Windows {
		valid := "yes"
		if !x.Valid {
			valid = "NO"
		}
		rss, heap, gcs := "-", "-", "-"
		if s := x.Sample; s != nil {
			if s.RSSBytes > 0 {
				rss = fmt.Sprintf("%.0f", float64(s.RSSBytes)/(1<<20))
			}
			if s.HeapLiveBytes >= 0 {
				heap = fmt.Sprintf("%.0f", s.HeapLiveBytes/(1<<20))
			}
			if s.GCCycles >= 0 {
				gcs = fmt.Sprintf("%.0f", s.GCCycles)
			}
		}
		fmt.Fprintf(tw, "%d\t%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t\n", x.Index+1, x.Requests, fmtUs(x.P50.Microseconds()),
			fmtUs(x.P99.Microseconds()), fmtUs(x.Max.Microseconds()), rss, heap, gcs, valid)
	}
	tw.Flush()
	t := res.P99Trend
	fmt.Fprintf(w, "p99 trend: %+.3f ms/h (%+.1f%% over the soak), Mann–Kendall z %.2f p %.3g, drift %v\n",
		t.SlopePerHour/1e6, t.Relative*100, t.Z, t.P, t.Drift)
	if m := res.RSSTrend; m != nil {
		fmt.Fprintf(w, "RSS trend: %+.1f MiB/h (%+.1f%%), drift %v; GC %.2f cycles/min\n", m.SlopePerHour/(1<<20), m.Relative*100, m.Drift, res.GCPerMinute)
	}
	fmt.Fprintf(w, "soak: %s, p99 %s (bounds %s..%s)\n", strings.ToUpper(string(res.Verdict)),
		fmtUs(res.P99.Microseconds()), fmtUs(res.P99Lower.Microseconds()), fmtUs(res.P99Upper.Microseconds()))
	for _, r := range res.Reasons {
		fmt.Fprintf(w, "  - %s\n", r)
	}
	for _, n := range res.Notes {
		fmt.Fprintf(w, "  note: %s\n", n)
	}
	fmt.Fprintf(w, "result: %s\n", filepath.Join(out, "soak.json"))
}
