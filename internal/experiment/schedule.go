// Package experiment owns the pure parts of tailgate's experiments: the
// interleaved ABBA round schedule for base/head gates and fix variants, the
// per-fix attribution of latency changes (isolation, cumulative,
// leave-one-out and Shapley values) with bootstrap confidence intervals over
// rounds, and the versioned JSON result document that the report and the
// action consume. It does no I/O: the runner that deploys variants and
// drives rounds executes the Slots it returns and feeds the measured rounds
// back in.
package experiment

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"

	"github.com/tailgate-ci/tailgate/internal/gate"
)

// Slot is one round to run: which arm, and where it sits in the design.
type Slot struct {
	// Order is the position in time (run slots in Order).
	Order int `json:"order"`
	// Block groups the rounds that run back to back; rounds of the same
	// block are compared pairwise.
	Block int `json:"block"`
	// Arm is the arm (gate.ArmBase, gate.ArmHead, gate.ArmAA or a variant).
	Arm string `json:"arm"`
	// Index is the round's number within its arm.
	Index int `json:"index"`
	// Attempt counts the runs of this slot that were discarded before
	// (invalid only for the load generator's own lag); 0 in a schedule.
	Attempt int `json:"attempt,omitempty"`
}

// FileName names a file of the slot's round: round-<order>-<arm>.<ext>,
// with .rerun<n> before the extension for a slot's later attempts, so no
// attempt overwrites another's.
func (s Slot) FileName(ext string) string {
	arm := safe(s.Arm)
	if s.Attempt > 0 {
		return fmt.Sprintf("round-%03d-%s.rerun%d.%s", s.Order, arm, s.Attempt, ext)
	}
	return fmt.Sprintf("round-%03d-%s.%s", s.Order, arm, ext)
}

// ScheduleConfig describes an interleaved design.
type ScheduleConfig struct {
	// Arms are run once in every block. Default: [base, head].
	Arms []string `json:"arms"`
	// Blocks is the number of blocks, i.e. rounds per arm.
	Blocks int `json:"blocks"`
	// AABlocks is how many blocks also run an A/A round (gate.ArmAA), a
	// second round of Arms[0] right before or after it, for the noise floor.
	AABlocks int `json:"aa_blocks"`
	// AAWithin limits the A/A blocks to the first AAWithin blocks, so the
	// noise floor is known at the first checkpoint (0: all blocks).
	AAWithin int `json:"aa_within"`
	// Seed randomizes the orders; record it, the schedule is a pure
	// function of the config.
	Seed int64 `json:"seed"`
}

// Schedule returns the rounds of an interleaved, randomized design. Blocks
// come in mirrored couples: a block runs the arms in a random order and the
// next block runs them in the reverse order (ABBA for two arms, ABCCBA for
// three), so a linear drift of the host affects every arm equally within a
// couple. A/A rounds sit right next to the reference arm's round. The same
// config always gives the same schedule.
func Schedule(cfg ScheduleConfig) ([]Slot, error) {
	arms := cfg.Arms
	if len(arms) == 0 {
		arms = []string{gate.ArmBase, gate.ArmHead}
	}
	var errs []error
	seen := map[string]bool{}
	for i, a := range arms {
		switch {
		case a == "":
			errs = append(errs, fmt.Errorf("schedule: arms[%d]: empty name", i))
		case a == gate.ArmAA:
			errs = append(errs, fmt.Errorf("schedule: arms[%d]: %q is reserved for A/A rounds", i, a))
		case seen[a]:
			errs = append(errs, fmt.Errorf("schedule: arms[%d]: duplicate arm %q", i, a))
		}
		seen[a] = true
	}
	if cfg.Blocks < 1 {
		errs = append(errs, fmt.Errorf("schedule: blocks: must be at least 1, got %d", cfg.Blocks))
	}
	within := cfg.AAWithin
	if within == 0 || within > cfg.Blocks {
		within = cfg.Blocks
	}
	if cfg.AAWithin < 0 {
		errs = append(errs, fmt.Errorf("schedule: aa_within: must not be negative, got %d", cfg.AAWithin))
	}
	if cfg.AABlocks < 0 || (cfg.Blocks >= 1 && cfg.AABlocks > within) {
		errs = append(errs, fmt.Errorf("schedule: aa_blocks: must be in [0, %d], got %d", within, cfg.AABlocks))
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}

	rng := rand.New(rand.NewPCG(uint64(cfg.Seed), 0xab_ba))
	aa := make([]bool, cfg.Blocks)
	for _, b := range rng.Perm(within)[:cfg.AABlocks] {
		aa[b] = true
	}
	var slots []Slot
	index := map[string]int{}
	add := func(block int, arm string) {
		slots = append(slots, Slot{Order: len(slots), Block: block, Arm: arm, Index: index[arm]})
		index[arm]++
	}
	var order []string
	for b := 0; b < cfg.Blocks; b++ {
		if b%2 == 0 {
			order = slices.Clone(arms)
			rng.Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
		} else {
			slices.Reverse(order)
		}
		aaBefore := rng.IntN(2) == 0
		for _, a := range order {
			if a == arms[0] && aa[b] && aaBefore {
				add(b, gate.ArmAA)
			}
			add(b, a)
			if a == arms[0] && aa[b] && !aaBefore {
				add(b, gate.ArmAA)
			}
		}
	}
	return slots, nil
}

// GateSchedule is the schedule of a base/head gate with config c: MaxRounds
// ABBA blocks, with the A/A rounds among the first MinRounds blocks. The
// runner stops early when gate.Evaluate at a checkpoint is decisive.
func GateSchedule(c gate.Config, seed int64) ([]Slot, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	c = c.WithDefaults()
	return Schedule(ScheduleConfig{
		Arms:     []string{gate.ArmBase, gate.ArmHead},
		Blocks:   c.MaxRounds,
		AABlocks: min(c.AARounds, c.MaxRounds),
		AAWithin: max(c.MinRounds, min(c.AARounds, c.MaxRounds)),
		Seed:     seed,
	})
}
