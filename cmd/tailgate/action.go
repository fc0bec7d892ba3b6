package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"

	"github.com/tailgate-ci/tailgate/action"
	"github.com/tailgate-ci/tailgate/internal/experiment"
	"github.com/tailgate-ci/tailgate/internal/report"
	"github.com/tailgate-ci/tailgate/internal/rules"
)

func init() {
	register(command{
		name:    "action",
		summary: "run as the GitHub Action step (reads INPUT_* and GITHUB_*; see action.yml)",
		run:     runAction,
	})
}

// runAction is the entry point of action.yml: the action package reads the
// inputs and the event and publishes; the pipeline below gates and reports.
func runAction(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) error {
	if len(args) > 0 {
		return usageErrorf("action: takes no arguments (configure it with the action's inputs)")
	}
	code := action.Main(ctx, action.Env(getenv), stdout, nil, func(ctx context.Context, req action.Request) (*action.Outcome, error) {
		return actionPipeline(ctx, req, stdout, stderr, getenv)
	})
	if code == ExitPass {
		return nil
	}
	return withExit(code, errSilent)
}

// actionPipeline runs `tailgate gate` for the PR's base and head into
// ARTIFACTS/gate, then writes the report set into ARTIFACTS/report and
// returns the verdict with the PR comment.
func actionPipeline(ctx context.Context, req action.Request, stdout, stderr io.Writer, getenv func(string) string) (*action.Outcome, error) {
	in := req.Inputs
	gateDir := filepath.Join(in.ArtifactsDir, "gate")
	args := []string{"--rules", in.Rules, "--out", gateDir, "--repo", "."}
	if prebuilt, err := rulesUsePrebuilt(in.Rules); err != nil {
		return nil, err
	} else if !prebuilt {
		args = append(args, "--base", in.BaseRef, "--head", in.HeadRef)
	}
	if in.Rate > 0 {
		args = append(args, "--rate", strconv.FormatFloat(in.Rate, 'f', -1, 64))
	}
	if in.SLO > 0 {
		args = append(args, "--slo", in.SLO.String())
	}
	if in.Rounds > 0 {
		args = append(args, "--max-rounds", strconv.Itoa(in.Rounds))
	}
	gateErr := runGate(ctx, args, stderr, stderr, getenv)
	raw, err := os.ReadFile(filepath.Join(gateDir, "result.json"))
	if err != nil {
		// No verdict document: the gate failed before measuring.
		if gateErr == nil {
			gateErr = err
		}
		return nil, fmt.Errorf("gate: %w", unsilence(gateErr))
	}
	doc, err := experiment.ParseDocument(raw)
	if err != nil {
		return nil, fmt.Errorf("gate result: %w", err)
	}
	rin := &report.Input{Gate: doc}
	if err := actionEvidence(in, rin); err != nil {
		return nil, err
	}
	if in.Soak > 0 {
		soakDir := filepath.Join(in.ArtifactsDir, "soak")
		soakArgs := []string{"--rules", in.Rules, "--out", soakDir, "--repo", ".", "--duration", in.Soak.String()}
		if serr := runSoak(ctx, soakArgs, stderr, stderr, getenv); serr != nil && exitCode(serr) == ExitError {
			rin.SoakUnavailable = "soak failed: " + unsilence(serr).Error()
		}
		if s, err := report.LoadSoak(filepath.Join(soakDir, "soak.json")); err == nil {
			rin.Soak = s
		} else if rin.SoakUnavailable == "" {
			rin.SoakUnavailable = "soak result unreadable: " + err.Error()
		}
	} else {
		rin.SoakUnavailable = "no soak requested (input soak-duration)"
	}
	reportDir := filepath.Join(in.ArtifactsDir, "report")
	man, err := report.Write(ctx, reportDir, rin, report.Options{})
	if err != nil {
		return nil, fmt.Errorf("report: %w", err)
	}
	for part, why := range man.Unavailable {
		fmt.Fprintf(stderr, "report: %s unavailable: %s\n", part, why)
	}
	comment, err := os.ReadFile(filepath.Join(reportDir, report.CommentFile))
	if err != nil {
		return nil, fmt.Errorf("report: %w", err)
	}
	g := doc.Gate
	return &action.Outcome{
		Verdict:    string(g.Verdict),
		Reasons:    g.Reasons,
		BaseP50:    g.P50.Base,
		HeadP50:    g.P50.Head,
		BaseP99:    g.P99.Base,
		HeadP99:    g.P99.Head,
		Comment:    string(comment),
		ReportPath: filepath.Join(reportDir, report.HTMLReport),
	}, nil
}

// actionEvidence adds the evidence earlier workflow steps produced (inputs
// profiles and experiment) to the report input, or says why there is none.
func actionEvidence(in action.Inputs, rin *report.Input) error {
	if in.Profiles == "" {
		rin.Profiles.Unavailable = "no profile evidence given (input profiles: the output directory of an earlier `tailgate profile --analyze` step)"
	} else {
		p, err := report.LoadProfiles(in.Profiles)
		if err != nil {
			return fmt.Errorf("input profiles: %w", err)
		}
		rin.Profiles = p
	}
	if in.Experiment == "" {
		return nil
	}
	raw, err := os.ReadFile(in.Experiment)
	if err != nil {
		return fmt.Errorf("input experiment: %w", err)
	}
	d, err := experiment.ParseDocument(raw)
	if err != nil {
		return fmt.Errorf("input experiment: %s: %w", in.Experiment, err)
	}
	if d.Kind != experiment.KindExperiment {
		return fmt.Errorf("input experiment: %s is a %q document, want the result of tailgate experiment", in.Experiment, d.Kind)
	}
	rin.Experiment = d
	// The declared fixes give the attribution table its hypotheses.
	if r, err := rules.Load(in.Rules); err == nil {
		for _, f := range r.Fixes {
			rin.Fixes = append(rin.Fixes, report.FixInfo{Name: f.Name, Contributor: f.Contributor, Hypothesis: f.Description})
		}
	}
	return nil
}

// rulesUsePrebuilt reports whether the rules name a prebuilt service.bin
// (then there is nothing to build at base and head).
func rulesUsePrebuilt(path string) (bool, error) {
	r, err := rules.Load(path)
	if err != nil {
		return false, fmt.Errorf("rules: %w", err)
	}
	return r.Service.Bin != "", nil
}

// unsilence turns an errSilent exit (already reported on stdout) into a
// readable error for the comment.
func unsilence(err error) error {
	if errors.Is(err, errSilent) {
		return fmt.Errorf("exit status %d", exitCode(err))
	}
	return err
}
