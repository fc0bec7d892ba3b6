package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"

	"github.com/tailgate-ci/tailgate/internal/experiment"
	"github.com/tailgate-ci/tailgate/internal/report"
)

func init() {
	register(command{
		name:    "report",
		summary: "write the PR comment, HTML report, per-fix notes, cumulative validation and write-up (PDF) from result documents",
		run:     runReport,
	})
}

const reportUsage = `usage: tailgate report --in RESULT.json [--in RESULT.json] [flags] --out DIR

Builds every human-facing artifact from a gate and/or an experiment result
document (give --in once per document; at most one of each kind) and writes
into DIR:

  comment.md                 the sticky PR comment (under GitHub's 65,536 limit)
  report.html                single-file HTML report, inline SVG plots
  fixes/<fix>.md             one experiment note per fix
  cumulative.md              all fixes together, the soak, the p50 check
  writeup.html, writeup.pdf  platform-lead write-up (PDF with headless Chromium)
  flame/*.svg                flame graphs and diffs copied from --profiles
  manifest.json              files written; what is unavailable and why

--profiles DIR holds profiles.json (contributor breakdowns, or
"unavailable": reason) and flame diff sets (NAME-diff.folded with its SVGs).
Missing profiles, soak or Chromium are reported, not errors.

flags:
`

// reportOptions are the parsed flags of `tailgate report`.
type reportOptions struct {
	in          []string
	profiles    string
	soak        string
	fixes       string
	out         string
	artifactURL string
	noPDF       bool
	chromium    string
}

func parseReportFlags(args []string, stderr io.Writer) (*reportOptions, error) {
	o := &reportOptions{}
	fs := flag.NewFlagSet("report", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, reportUsage)
		fs.PrintDefaults()
	}
	fs.Func("in", "result document (JSON) of `tailgate gate` or `tailgate experiment`; repeat for both", func(s string) error {
		o.in = append(o.in, s)
		return nil
	})
	fs.StringVar(&o.profiles, "profiles", "", "profiles directory (profiles.json, *-diff.folded and SVGs)")
	fs.StringVar(&o.soak, "soak", "", "soak result (JSON: variant, window_ns, slo_ns, windows[{start_ns, requests, errors, p50_ns, p99_ns, heap_bytes, rss_bytes, gc_cycles}])")
	fs.StringVar(&o.fixes, "fixes", "", "fix descriptions (JSON list of {name, contributor, hypothesis})")
	fs.StringVar(&o.out, "out", "", "output directory")
	fs.StringVar(&o.artifactURL, "artifact-url", "", "base URL the comment links artifacts under (default: relative paths)")
	fs.BoolVar(&o.noPDF, "no-pdf", false, "do not print the write-up to PDF")
	fs.StringVar(&o.chromium, "chromium", "", "headless Chromium to print the PDF with (default: chromium on PATH)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil, err
		}
		return nil, usageErrorf("report: %v", err)
	}
	if fs.NArg() > 0 {
		return nil, usageErrorf("report: unexpected argument %q", fs.Arg(0))
	}
	if len(o.in) == 0 {
		return nil, usageErrorf("report: --in is required")
	}
	if o.out == "" {
		return nil, usageErrorf("report: --out is required")
	}
	return o, nil
}

// loadReportInput reads the documents and optional parts named by o.
func loadReportInput(o *reportOptions) (*report.Input, error) {
	in := &report.Input{ArtifactURL: o.artifactURL}
	for _, path := range o.in {
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("report: %w", err)
		}
		d, err := experiment.ParseDocument(b)
		if err != nil {
			return nil, fmt.Errorf("report: %s: %w", path, err)
		}
		slot := &in.Gate
		if d.Kind == experiment.KindExperiment {
			slot = &in.Experiment
		}
		if *slot != nil {
			return nil, usageErrorf("report: %s: a second %s document", path, d.Kind)
		}
		*slot = d
	}
	if o.profiles == "" {
		in.Profiles.Unavailable = "no profiles directory given (--profiles)"
	} else {
		p, err := report.LoadProfiles(o.profiles)
		if err != nil {
			return nil, err
		}
		in.Profiles = p
	}
	if o.soak == "" {
		in.SoakUnavailable = "no soak result given (--soak)"
	} else {
		s, err := report.LoadSoak(o.soak)
		if err != nil {
			return nil, err
		}
		in.Soak = s
	}
	if o.fixes != "" {
		b, err := os.ReadFile(o.fixes)
		if err != nil {
			return nil, fmt.Errorf("report: %w", err)
		}
		if err := json.Unmarshal(b, &in.Fixes); err != nil {
			return nil, fmt.Errorf("report: %s: %w", o.fixes, err)
		}
		for i, f := range in.Fixes {
			if f.Name == "" {
				return nil, fmt.Errorf("report: %s: [%d].name: missing", o.fixes, i)
			}
		}
	}
	return in, nil
}

func runReport(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) error {
	o, err := parseReportFlags(args, stderr)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	in, err := loadReportInput(o)
	if err != nil {
		return err
	}
	m, err := report.Write(ctx, o.out, in, report.Options{NoPDF: o.noPDF, Chromium: o.chromium})
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "wrote %d files to %s:\n", len(m.Files), o.out)
	for _, f := range m.Files {
		fmt.Fprintf(stdout, "  %s\n", f)
	}
	keys := make([]string, 0, len(m.Unavailable))
	for k := range m.Unavailable {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Fprintf(stdout, "unavailable: %s: %s\n", k, m.Unavailable[k])
	}
	return nil
}
