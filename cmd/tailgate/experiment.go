package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/tailgate-ci/tailgate/internal/deploy"
	"github.com/tailgate-ci/tailgate/internal/experiment"
)

func init() {
	register(command{
		name:    "experiment",
		summary: "attribute latency to the rules' fixes: baseline, each fix alone, all, all-but-one (or every subset)",
		run:     runExperiment,
	})
}

const experimentUsage = `usage: tailgate experiment [flags]

Builds the service at --ref once and starts one instance per variant of the
fixes (rules section fixes): the baseline, each fix alone, all fixes, and
each all-but-one (--attribution loo, the default), or every subset
(--attribution full, which adds Shapley values). Runs --blocks rounds of
every variant in seeded, mirrored order (ABC..CBA), then reports per fix the
isolation and leave-one-out Δp99/Δp50 with bootstrap confidence intervals
over rounds, interaction flags, and each variant judged by the gate against
the baseline. Writes to --out: result.json (the versioned result document;
its gate is all fixes vs the baseline), variants.json, rounds/*.hist, logs.

Exit status: 0 valid experiment, 1 invalid rounds or error, 2 usage.

flags:
`

func runExperiment(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) error {
	var l liveFlags
	var ref, fixesFlag, mode string
	var blocks int
	fs := flag.NewFlagSet("experiment", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, experimentUsage); fs.PrintDefaults() }
	l.register(fs, true)
	fs.StringVar(&ref, "ref", "", "git ref to build (default: the working tree)")
	fs.StringVar(&fixesFlag, "fixes", "", "comma-separated fixes to attribute (default: every fix in the rules)")
	fs.StringVar(&mode, "attribution", "loo", "loo: baseline, each alone, all, all-but-one; full: every subset plus Shapley values")
	fs.IntVar(&blocks, "blocks", 0, "rounds per variant (default: gate.min_rounds, 6)")
	if err := parseLive("experiment", fs, &l, args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	var m experiment.Mode
	switch mode {
	case "loo", "standard":
		m = experiment.ModeStandard
	case "full":
		m = experiment.ModeFull
	default:
		return usageErrorf("experiment: --attribution %q: want loo or full", mode)
	}
	if l.set["blocks"] && blocks < 2 {
		return usageErrorf("experiment: --blocks %d: want at least 2", blocks)
	}
	r, raw, err := loadLiveRules("experiment", &l)
	if err != nil {
		return err
	}
	if r.Service.Bin != "" && ref != "" {
		return usageErrorf("experiment: --ref needs service.build; %s gives a prebuilt service.bin", r.Path)
	}
	fixes := r.FixNames()
	if fixesFlag != "" {
		fixes = nil
		for _, f := range strings.Split(fixesFlag, ",") {
			f = strings.TrimSpace(f)
			if _, ok := r.FixByName(f); !ok {
				return usageErrorf("experiment: --fixes: unknown fix %q (%s has: %s)", f, r.Path, strings.Join(r.FixNames(), ", "))
			}
			fixes = append(fixes, f)
		}
	}
	if len(fixes) == 0 {
		return usageErrorf("experiment: %s declares no fixes (add a fixes section)", r.Path)
	}
	variants, err := experiment.Variants(fixes, m)
	if err != nil {
		return usageErrorf("experiment: %v", err)
	}
	out, err := prepareOut("experiment", l.out, raw)
	if err != nil {
		return err
	}
	fmt.Fprintf(stderr, "results: %s (rules %s); %d variants\n", out, r.Path, len(variants))
	arms := make([]experiment.ArmSpec, len(variants))
	for i, v := range variants {
		arms[i] = experiment.ArmSpec{Name: v.Name, Ref: ref, Fixes: v.Fixes}
	}
	start := time.Now()
	fleet, err := experiment.StartFleet(ctx, r, arms, l.fleetOptions(out, stderr))
	if err != nil {
		return fmt.Errorf("experiment: %w", err)
	}
	defer fleet.Close()
	cfg := r.Gate.Config()
	res, runErr := experiment.RunExperiment(ctx, experiment.ExperimentRun{
		Fixes: fixes, Mode: m, Blocks: blocks, Seed: l.seedOr(r), Gate: cfg,
		Attribution: experiment.AttributionConfig{Seed: cfg.Seed, Bootstrap: cfg.Bootstrap},
		Driver:      fleet, Record: histRecorder(out), Progress: stderr, LagReruns: r.Gate.LagReruns,
	})
	if res == nil {
		return fmt.Errorf("experiment: %w", runErr)
	}
	doc := res.Document
	doc.Tool = "tailgate"
	doc.Service = r.Service.Build + r.Service.Bin
	doc.Base = &experiment.Ref{Name: deploy.RefName(ref), Commit: fleet.Commit(experiment.Baseline)}
	doc.Rate = rateOf(r, l)
	doc.Notes = append(doc.Notes, fleet.Notes()...)
	doc.Notes = append(doc.Notes, fmt.Sprintf("experiment took %s", time.Since(start).Round(time.Second)))
	if runErr == nil {
		if err := writeDocument(out, doc); err != nil {
			runErr = err
		}
	}
	if b, err := json.MarshalIndent(res, "", "  "); err == nil {
		if err := os.WriteFile(filepath.Join(out, "variants.json"), append(b, '\n'), 0o644); err != nil && runErr == nil {
			runErr = err
		}
	}
	printRounds(stdout, doc)
	if doc.Attribution != nil {
		printExperiment(stdout, res)
	}
	fmt.Fprintf(stdout, "result: %s\n", filepath.Join(out, "result.json"))
	if runErr != nil {
		return fmt.Errorf("experiment: %w", runErr)
	}
	if len(res.Invalid) > 0 {
		return withExit(ExitError, fmt.Errorf("experiment invalid (not evidence): %s", strings.Join(res.Invalid, "; ")))
	}
	return nil
}

func printExperiment(w io.Writer, res *experiment.ExperimentResult) {
	a := res.Document.Attribution
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "variant\tp50\tp99\tgate\t")
	for _, v := range res.Variants {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t\n", v.Variant, fmtUs(v.P50.Microseconds()), fmtUs(v.P99.Microseconds()), v.Verdict)
	}
	tw.Flush()
	est := func(e experiment.Estimate) string {
		return fmt.Sprintf("%+.2fms [%+.2f, %+.2f]", ms(e.Value), ms(e.Lower), ms(e.Upper))
	}
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "fix\tisolation Δp99\tleave-one-out Δp99\tisolation Δp50\tinteraction\t\n")
	for _, f := range a.PerFix {
		inter := "no"
		if f.Interaction {
			inter = "YES"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t\n", f.Fix, est(f.IsolationP99), est(f.LeaveOneOutP99), est(f.IsolationP50), inter)
	}
	tw.Flush()
	fmt.Fprintf(w, "all fixes vs baseline: Δp99 %s (%.0f%% CIs over %d blocks)\n", est(a.CumulativeP99), a.Confidence*100, a.Blocks)
	if g := res.Document.Gate; g != nil {
		fmt.Fprintf(w, "gate, all fixes vs baseline: %s\n", strings.ToUpper(string(g.Verdict)))
	}
	for _, n := range res.Document.Notes {
		fmt.Fprintf(w, "  note: %s\n", n)
	}
}

func ms(d time.Duration) float64 { return float64(d) / 1e6 }
