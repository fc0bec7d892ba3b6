package experiment

// This file is the runner: it executes a schedule round by round through a
// Driver (which deploys and loads the service; see runner_live.go), keeps
// every round's histogram, and calls the pure parts of this package and of
// internal/gate at the right moments (gate checkpoints, attribution).

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"

	"github.com/tailgate-ci/tailgate/internal/gate"
	"github.com/tailgate-ci/tailgate/internal/latency"
	"github.com/tailgate-ci/tailgate/internal/load"
)

// Measured is one round as a Driver ran it.
type Measured struct {
	// Hist holds the CO-corrected latencies in microseconds.
	Hist             *hdrhistogram.Histogram
	Requests, Errors int64
	// Timeouts are the requests (among Errors) that got no answer within
	// the timeout; unless the rules count them as errors they are
	// censored latencies, not a reason to invalidate the round.
	Timeouts int64
	// Valid is false when the load generator lagged, the error rate was
	// over the rule, or the service or a neighbour died; Invalid says why.
	Valid   bool
	Invalid []string
	// LagOnly marks an invalid round whose only fault is the load
	// generator's own send lag (load.Validity.LagOnly): the service was not
	// at fault. With LagFree (the same requests' latencies from their
	// actual send times) the gate can still use it (gate.Round.LagBounded),
	// and the runner may run the slot again (LagReruns).
	LagOnly bool
	LagFree *hdrhistogram.Histogram
	// OwnLagOnly: invalid only for the load generator's own lag, however
	// many sends it delayed (load.Validity.OwnLagOnly). An A/A round so
	// invalid is left out of the gate's noise floor instead of stopping
	// the gate (gate.Round.OwnLagOnly).
	OwnLagOnly bool
	// MaxLag is the load generator's largest send lag in the round.
	MaxLag time.Duration
	// Notes are caveats of the round (load.Validity.Notes: timeouts, send lag
	// that stalls of the host explain).
	Notes      []string
	Start, End time.Time
}

// Driver runs rounds. Service is the arm that serves the round: the slot's
// arm, except that an A/A slot (gate.ArmAA) is served by gate.ArmBase.
// An error means the round could not be run at all (not an invalid round).
type Driver interface {
	Round(ctx context.Context, service string, slot Slot) (*Measured, error)
}

// ServiceArm is the arm that serves a slot: A/A rounds run on base.
func ServiceArm(slot Slot) string {
	if slot.Arm == gate.ArmAA {
		return gate.ArmBase
	}
	return slot.Arm
}

// RecordFunc receives each round as soon as it ends, before any analysis
// (the commands write the raw histogram there). An error stops the run.
type RecordFunc func(slot Slot, m *Measured) error

// GateRun configures RunGate.
type GateRun struct {
	// Config is the decision rule (zero fields: defaults).
	Config gate.Config
	// Seed draws the schedule (recorded in the document).
	Seed   int64
	Driver Driver
	Record RecordFunc
	// LagReruns is how many rounds of the run may be run again because they
	// were invalid only for the load generator's own lag (0: none; an
	// invalid round then stops the gate). The discarded attempts are kept
	// in the document's Reruns.
	LagReruns int
	// Progress, if set, gets one line per round and per checkpoint.
	Progress io.Writer
}

// RunGate runs a base/head gate: the ABBA schedule of GateSchedule in
// order, evaluating gate.Evaluate exactly at the checkpoints of the config
// (a checkpoint is reached when that many blocks are complete). An
// inconclusive checkpoint runs more blocks, up to MaxRounds; a decisive one
// stops. An invalid round stops the run at once and its verdict is
// invalid, never a pass — except an A/A round invalid only for the load
// generator's own lag, which leaves the noise floor (gate.Round.FloorOnly). The returned document has Kind gate, the schedule
// and seed, every round run with its histogram, and the gate result; the
// caller fills in Base, Head, Rate, Service and Tool.
func RunGate(ctx context.Context, o GateRun) (*Document, error) {
	if o.Driver == nil {
		return nil, errors.New("run gate: no driver")
	}
	slots, err := GateSchedule(o.Config, o.Seed)
	if err != nil {
		return nil, fmt.Errorf("run gate: %w", err)
	}
	cfg := o.Config.WithDefaults()
	doc := &Document{Kind: KindGate, ScheduleSeed: o.Seed, Schedule: slots, Started: time.Now().UTC()}
	var rounds []gate.Round
	target := cfg.Checkpoints()[0]
	complete := 0
	var res gate.Result
	evaluated := false
	reruns := o.LagReruns
	for i, s := range slots {
		r, err := runSlotReruns(ctx, o.Driver, o.Record, s, doc, o.Progress, &reruns)
		if err != nil {
			doc.Finished = time.Now().UTC()
			return doc, err
		}
		rounds = append(rounds, r)
		blockDone := i == len(slots)-1 || slots[i+1].Block != s.Block
		if !r.Valid && !r.LagBounded && !r.FloorOnly() {
			res = evaluateInvalid(cfg, rounds)
			evaluated = true
			break
		}
		if !blockDone {
			continue
		}
		complete++
		if complete < target {
			continue
		}
		res = gate.Evaluate(cfg, rounds)
		evaluated = true
		logf(o.Progress, "checkpoint %d/%d at %d pairs: %s", res.Checkpoint, res.Checkpoints, complete, res.Verdict)
		more, next := gate.ShouldContinue(res)
		if !more {
			break
		}
		target = next
	}
	if !evaluated {
		res = gate.Evaluate(cfg, rounds)
	}
	doc.Gate = &res
	for _, n := range []string{hostStallNote(doc.Rounds), timeoutNote(doc.Rounds), rerunNote(doc)} {
		if n != "" {
			doc.Notes = append(doc.Notes, n)
		}
	}
	doc.Finished = time.Now().UTC()
	return doc, nil
}

// hostStallNote says how many valid rounds sent requests late inside
// stalls of the host (empty when none did): their latencies include those
// stalls, which can only raise them.
func hostStallNote(rounds []RoundRecord) string {
	n := 0
	for _, r := range rounds {
		if r.Valid && hasNote(r.Notes, load.NoteHostStalls) {
			n++
		}
	}
	if n == 0 {
		return ""
	}
	return fmt.Sprintf(load.NoteHostStalls+" %d of %d rounds are valid although some requests went out more than the max lag late, because a real-time sleeper above the load generator was stalled over the same time (the generator's own lag stayed within the rule); those requests' latencies include the stall, which can only raise the figures (see each round's notes)", n, len(rounds))
}

// timeoutNote says how many rounds had timed-out requests (empty when none
// did): they are in the histograms at their latency, a lower bound.
func timeoutNote(rounds []RoundRecord) string {
	n, t, req := 0, int64(0), int64(0)
	for _, r := range rounds {
		req += r.Requests
		if r.Timeouts > 0 {
			n++
			t += r.Timeouts
		}
	}
	if n == 0 {
		return ""
	}
	return fmt.Sprintf(load.NoteTimeouts+" %d of %d rounds had requests with no answer within the timeout (%d of %d requests); each is in its round's histogram at its latency, a lower bound, so a quantile at or above the timeout is a lower bound too (and a p99 that far above the SLO fails it all the same)", n, len(rounds), t, req)
}

// rerunNote says how many attempts were discarded for the load generator's
// own lag (empty when none were).
func rerunNote(doc *Document) string {
	if len(doc.Reruns) == 0 {
		return ""
	}
	slots := map[int]bool{}
	for _, r := range doc.Reruns {
		slots[r.Order] = true
	}
	return fmt.Sprintf("lag re-runs: %d attempts of %d slots were invalid only for the load generator's own send lag and ran again (kept under reruns); %d rounds count", len(doc.Reruns), len(slots), len(doc.Rounds))
}

// hasNote reports whether a note starts with prefix.
func hasNote(notes []string, prefix string) bool {
	for _, n := range notes {
		if strings.HasPrefix(n, prefix) {
			return true
		}
	}
	return false
}

// evaluateInvalid evaluates rounds that hold an invalid one and makes sure
// the verdict says so: an invalid run is never a pass or a fail.
func evaluateInvalid(cfg gate.Config, rounds []gate.Round) gate.Result {
	res := gate.Evaluate(cfg, rounds)
	if res.Verdict != gate.Invalid {
		res.Verdict = gate.Invalid
		for _, r := range rounds {
			if !r.Valid {
				res.Reasons = append(res.Reasons, fmt.Sprintf("round %d (%s) invalid: %v", r.Order, r.Arm, r.Invalid))
			}
		}
	}
	res.Continue, res.NextCheckpoint = false, 0
	return res
}

// runSlotReruns runs a slot with runSlot and, while it is invalid only for
// the load generator's own lag and *left allows, runs it again: each
// discarded attempt moves from doc.Rounds to doc.Reruns (its histogram
// was recorded), and *left counts down. The last attempt stands, valid
// or not.
func runSlotReruns(ctx context.Context, d Driver, record RecordFunc, s Slot, doc *Document, progress io.Writer, left *int) (gate.Round, error) {
	for {
		r, m, err := runSlot(ctx, d, record, s, doc, progress)
		if err != nil || r.Valid || !m.LagOnly || *left <= 0 {
			return r, err
		}
		*left--
		last := len(doc.Rounds) - 1
		doc.Reruns = append(doc.Reruns, doc.Rounds[last])
		doc.Rounds = doc.Rounds[:last]
		s.Attempt++
		logf(progress, "round %d (%s #%d) is invalid only for the load generator's own lag: running it again (attempt %d; %d re-runs left)",
			s.Order+1, s.Arm, s.Index, s.Attempt+1, *left)
	}
}

// runSlot runs one slot, records it and appends its record to doc.
func runSlot(ctx context.Context, d Driver, record RecordFunc, s Slot, doc *Document, progress io.Writer) (gate.Round, *Measured, error) {
	if err := ctx.Err(); err != nil {
		return gate.Round{}, nil, err
	}
	m, err := d.Round(ctx, ServiceArm(s), s)
	if err != nil {
		return gate.Round{}, nil, fmt.Errorf("round %d (%s #%d): %w", s.Order, s.Arm, s.Index, err)
	}
	if m == nil || m.Hist == nil {
		return gate.Round{}, nil, fmt.Errorf("round %d (%s #%d): driver returned no histogram", s.Order, s.Arm, s.Index)
	}
	if record != nil {
		if err := record(s, m); err != nil {
			return gate.Round{}, nil, fmt.Errorf("record round %d: %w", s.Order, err)
		}
	}
	r := gate.Round{Arm: s.Arm, Index: s.Index, Block: s.Block, Order: s.Order, Hist: m.Hist, Valid: m.Valid, Invalid: m.Invalid,
		OwnLagOnly: !m.Valid && m.OwnLagOnly}
	if !m.Valid && m.LagOnly && m.LagFree != nil {
		r.LagBounded, r.LagFree = true, m.LagFree
	}
	rec := RoundRecord{RoundSummary: summarize(r), Requests: m.Requests, Errors: m.Errors, Timeouts: m.Timeouts, Attempt: s.Attempt}
	rec.Notes = m.Notes
	if enc, err := latency.Encode(m.Hist); err == nil {
		rec.Hist = enc
	} else {
		return r, m, fmt.Errorf("encode round %d: %w", s.Order, err)
	}
	if r.LagBounded {
		enc, err := latency.Encode(r.LagFree)
		if err != nil {
			return r, m, fmt.Errorf("encode round %d: %w", s.Order, err)
		}
		rec.LagFreeHist = enc
	}
	doc.Rounds = append(doc.Rounds, rec)
	valid := "valid"
	if hasNote(m.Notes, load.NoteHostStalls) {
		valid = fmt.Sprintf("valid (%s)", strings.Join(m.Notes, "; "))
	}
	if !m.Valid {
		valid = fmt.Sprintf("INVALID: %v", m.Invalid)
		if r.LagBounded {
			valid = fmt.Sprintf("over the lag rule only (the gate brackets its lag): %v", m.Invalid)
		}
	}
	logf(progress, "round %d (block %d, %s #%d): %d requests, p50 %s, p99 %s, max lag %s, %s", s.Order+1, s.Block, s.Arm, s.Index,
		m.Requests, fmtDur(rec.P50), fmtDur(rec.P99), m.MaxLag.Round(time.Microsecond), valid)
	return r, m, nil
}

func summarize(r gate.Round) gate.RoundSummary {
	s := gate.RoundSummary{Arm: r.Arm, Index: r.Index, Block: r.Block, Order: r.Order, Valid: r.Valid, Invalid: r.Invalid, LagBounded: r.LagBounded, FloorOnly: r.FloorOnly()}
	if r.Hist != nil && r.Hist.TotalCount() > 0 {
		s.Count = r.Hist.TotalCount()
		s.P50 = latency.Quantile(r.Hist, 0.5)
		s.P99 = latency.Quantile(r.Hist, 0.99)
		s.Max = latency.Max(r.Hist)
	}
	return s
}

func logf(w io.Writer, format string, a ...any) {
	if w != nil {
		fmt.Fprintf(w, format+"\n", a...)
	}
}

func fmtDur(d time.Duration) string {
	return fmt.Sprintf("%.2fms", float64(d)/1e6)
}

// ExperimentRun configures RunExperiment.
type ExperimentRun struct {
	// Fixes are the fix names, in the rules' order.
	Fixes []string
	// Mode is ModeStandard (baseline, each alone, all, all-but-one) or
	// ModeFull (every subset, adds Shapley values).
	Mode Mode
	// Blocks is the number of rounds per variant (default: the gate's
	// MinRounds).
	Blocks int
	// Seed draws the schedule.
	Seed int64
	// Gate judges each variant against the SLO and the baseline's p50.
	Gate        gate.Config
	Attribution AttributionConfig
	Driver      Driver
	Record      RecordFunc
	// LagReruns: as GateRun's.
	LagReruns int
	Progress  io.Writer
}

// VariantVerdict is one variant judged as the head of a gate whose base is
// the baseline (the baseline is judged against itself: its p99 against the
// SLO), over the experiment's blocks at a single checkpoint.
type VariantVerdict struct {
	Variant string       `json:"variant"`
	Fixes   []string     `json:"fixes"`
	Verdict gate.Verdict `json:"verdict"`
	// P99 is the pooled p99 of the variant's rounds; P99Upper its upper
	// confidence bound as the gate computed it.
	P99     time.Duration `json:"p99_ns"`
	P50     time.Duration `json:"p50_ns"`
	Reasons []string      `json:"reasons"`
}

// ExperimentResult is the experiment document plus each variant's verdict
// (written beside the document as variants.json).
type ExperimentResult struct {
	Document *Document        `json:"-"`
	Variants []VariantVerdict `json:"variants"`
	// Invalid lists the invalid rounds; an experiment with any is invalid.
	Invalid []string `json:"invalid,omitempty"`
}

// RunExperiment runs every variant of the fixes once per block in
// mirrored, seeded order (ABC…CBA), then attributes the latency changes to
// the fixes (Attribute) and judges each variant with the gate. The
// document's Gate holds the all-fixes variant judged against the baseline.
// Invalid rounds make the result invalid (Invalid non-empty); they are left
// out of the attribution, which notes it.
func RunExperiment(ctx context.Context, o ExperimentRun) (*ExperimentResult, error) {
	if o.Driver == nil {
		return nil, errors.New("run experiment: no driver")
	}
	if o.Mode == "" {
		o.Mode = ModeStandard
	}
	variants, err := Variants(o.Fixes, o.Mode)
	if err != nil {
		return nil, fmt.Errorf("run experiment: %w", err)
	}
	gcfg := o.Gate.WithDefaults()
	if o.Blocks == 0 {
		o.Blocks = gcfg.MinRounds
	}
	slots, err := ExperimentSchedule(variants, o.Blocks, o.Seed)
	if err != nil {
		return nil, fmt.Errorf("run experiment: %w", err)
	}
	doc := &Document{Kind: KindExperiment, ScheduleSeed: o.Seed, Schedule: slots, Started: time.Now().UTC()}
	out := &ExperimentResult{Document: doc}
	var rounds []gate.Round
	reruns := o.LagReruns
	lagBounded := 0
	for _, s := range slots {
		r, err := runSlotReruns(ctx, o.Driver, o.Record, s, doc, o.Progress, &reruns)
		if err != nil {
			doc.Finished = time.Now().UTC()
			return out, err
		}
		switch {
		case r.LagBounded:
			lagBounded++
		case !r.Valid:
			out.Invalid = append(out.Invalid, fmt.Sprintf("round %d (%s #%d): %v", r.Order, r.Arm, r.Index, r.Invalid))
		}
		rounds = append(rounds, r)
	}
	doc.Finished = time.Now().UTC()

	acfg := o.Attribution
	acfg.Fixes, acfg.Mode = o.Fixes, o.Mode
	if acfg.Quantile == 0 {
		acfg.Quantile = gcfg.Quantile
	}
	// The attribution takes rounds over the lag rule only as measured
	// (their lag included: it can only raise a latency), and says so.
	attRounds := slices.Clone(rounds)
	for i := range attRounds {
		if attRounds[i].LagBounded {
			attRounds[i].Valid = true
		}
	}
	att, err := Attribute(acfg, attRounds)
	if err != nil {
		return out, fmt.Errorf("attribute: %w", err)
	}
	if lagBounded > 0 {
		att.Notes = append(att.Notes, fmt.Sprintf("%d of %d rounds went over the max-lag rule by the load generator's own lag alone; they count here as measured, their latency from the intended send time including that lag (which can only raise it), and each variant's verdict brackets it (with and without the lag)", lagBounded, len(rounds)))
	}
	doc.Attribution = att

	// Each variant as the head of a one-checkpoint gate against the
	// baseline.
	vcfg := o.Gate
	vcfg.MinRounds, vcfg.MaxRounds, vcfg.AARounds = o.Blocks, o.Blocks, 0
	vcfg.MinRounds = max(vcfg.MinRounds, 2)
	vcfg.MaxRounds = vcfg.MinRounds
	all := VariantName(o.Fixes)
	for _, v := range variants {
		var gr []gate.Round
		for _, r := range rounds {
			switch r.Arm {
			case Baseline:
				b := r
				b.Arm = gate.ArmBase
				gr = append(gr, b)
				if v.Name == Baseline {
					h := r
					h.Arm = gate.ArmHead
					gr = append(gr, h)
				}
			case v.Name:
				h := r
				h.Arm = gate.ArmHead
				gr = append(gr, h)
			}
		}
		res := gate.Evaluate(vcfg, gr)
		if len(out.Invalid) > 0 && res.Verdict != gate.Invalid {
			res = evaluateInvalid(vcfg, gr)
			if res.Verdict != gate.Invalid { // only other variants' rounds were invalid
				res.Verdict = gate.Invalid
			}
		}
		vv := VariantVerdict{Variant: v.Name, Fixes: v.Fixes, Verdict: res.Verdict, Reasons: res.Reasons}
		for _, st := range att.Variants {
			if st.Name == v.Name {
				vv.P99, vv.P50 = st.P99, st.P50
			}
		}
		out.Variants = append(out.Variants, vv)
		doc.Notes = append(doc.Notes, fmt.Sprintf("variant %s: %s (p99 %s, p50 %s)", v.Name, res.Verdict, fmtDur(vv.P99), fmtDur(vv.P50)))
		if v.Name == all {
			r := res
			doc.Gate = &r
		}
	}
	if len(out.Invalid) > 0 {
		doc.Notes = append(doc.Notes, fmt.Sprintf("INVALID: %d invalid rounds; the experiment is not evidence", len(out.Invalid)))
	}
	for _, n := range []string{hostStallNote(doc.Rounds), timeoutNote(doc.Rounds), rerunNote(doc)} {
		if n != "" {
			doc.Notes = append(doc.Notes, n)
		}
	}
	return out, nil
}
