package experiment

import (
	"reflect"
	"strings"
	"testing"

	"github.com/tailgate-ci/tailgate/internal/gate"
)

func TestScheduleDeterministic(t *testing.T) {
	cfg := ScheduleConfig{Blocks: 14, AABlocks: 4, AAWithin: 6, Seed: 42}
	a, err := Schedule(cfg)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := Schedule(cfg)
	if !reflect.DeepEqual(a, b) {
		t.Fatal("same seed, different schedules")
	}
	cfg.Seed = 43
	c, _ := Schedule(cfg)
	if reflect.DeepEqual(a, c) {
		t.Error("different seeds gave the same schedule")
	}
}

// TestScheduleShape checks the design, for several seeds: every block runs
// each arm once, couples of blocks mirror each other (ABBA), A/A rounds sit
// next to a base round of their block within the first AAWithin blocks, and
// Order and Index count up.
func TestScheduleShape(t *testing.T) {
	for seed := int64(0); seed < 50; seed++ {
		arms := []string{"baseline", "gc", "locks"}
		slots, err := Schedule(ScheduleConfig{Arms: arms, Blocks: 8, AABlocks: 3, AAWithin: 4, Seed: seed})
		if err != nil {
			t.Fatal(err)
		}
		if len(slots) != 8*3+3 {
			t.Fatalf("seed %d: %d slots, want 27", seed, len(slots))
		}
		byBlock := map[int][]string{}
		index := map[string]int{}
		for i, s := range slots {
			if s.Order != i {
				t.Fatalf("seed %d: slot %d has order %d", seed, i, s.Order)
			}
			if s.Index != index[s.Arm] {
				t.Fatalf("seed %d: slot %d: %s index %d, want %d", seed, i, s.Arm, s.Index, index[s.Arm])
			}
			index[s.Arm]++
			byBlock[s.Block] = append(byBlock[s.Block], s.Arm)
		}
		aaBlocks := 0
		var prev []string
		for b := 0; b < 8; b++ {
			order := byBlock[b]
			var plain []string
			for i, a := range order {
				if a == gate.ArmAA {
					aaBlocks++
					if b >= 4 {
						t.Errorf("seed %d: A/A round in block %d, beyond aa_within 4", seed, b)
					}
					next := ""
					if i+1 < len(order) {
						next = order[i+1]
					}
					if (i == 0 || order[i-1] != "baseline") && next != "baseline" {
						t.Errorf("seed %d: block %d %v: A/A round not next to the baseline", seed, b, order)
					}
					continue
				}
				plain = append(plain, a)
			}
			if len(plain) != 3 {
				t.Errorf("seed %d: block %d runs %v", seed, b, plain)
			}
			if b%2 == 1 {
				for i := range plain {
					if plain[i] != prev[len(prev)-1-i] {
						t.Errorf("seed %d: block %d %v does not mirror block %d %v", seed, b, plain, b-1, prev)
						break
					}
				}
			}
			prev = plain
		}
		if aaBlocks != 3 {
			t.Errorf("seed %d: %d A/A rounds, want 3", seed, aaBlocks)
		}
	}
}

// Over many seeds, both ABBA orientations occur: the order is randomized.
func TestScheduleRandomized(t *testing.T) {
	first := map[string]int{}
	for seed := int64(0); seed < 40; seed++ {
		slots, _ := Schedule(ScheduleConfig{Blocks: 2, Seed: seed})
		first[slots[0].Arm]++
	}
	if first[gate.ArmBase] < 5 || first[gate.ArmHead] < 5 {
		t.Errorf("first arm over 40 seeds: %v", first)
	}
}

func TestScheduleErrors(t *testing.T) {
	tests := []struct {
		cfg  ScheduleConfig
		want string
	}{
		{ScheduleConfig{Blocks: 0}, "blocks: must be at least 1"},
		{ScheduleConfig{Blocks: 4, Arms: []string{"a", "a"}}, `duplicate arm "a"`},
		{ScheduleConfig{Blocks: 4, Arms: []string{"a", ""}}, "arms[1]: empty name"},
		{ScheduleConfig{Blocks: 4, Arms: []string{"a", "aa"}}, "reserved for A/A"},
		{ScheduleConfig{Blocks: 4, AABlocks: 5}, "aa_blocks: must be in [0, 4]"},
		{ScheduleConfig{Blocks: 4, AABlocks: 3, AAWithin: 2}, "aa_blocks: must be in [0, 2]"},
	}
	for _, tt := range tests {
		_, err := Schedule(tt.cfg)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%+v: error %v, want %q", tt.cfg, err, tt.want)
		}
	}
}

func TestGateSchedule(t *testing.T) {
	slots, err := GateSchedule(gate.Config{}, 7)
	if err != nil {
		t.Fatal(err)
	}
	arms := map[string]int{}
	for _, s := range slots {
		arms[s.Arm]++
		if s.Arm == gate.ArmAA && s.Block >= gate.DefaultMinRounds {
			t.Errorf("A/A round in block %d: the noise floor must be known at the first checkpoint", s.Block)
		}
	}
	want := map[string]int{gate.ArmBase: gate.DefaultMaxRounds, gate.ArmHead: gate.DefaultMaxRounds, gate.ArmAA: gate.DefaultAARounds}
	if !reflect.DeepEqual(arms, want) {
		t.Errorf("arms %v, want %v", arms, want)
	}
	if _, err := GateSchedule(gate.Config{Alpha: 2}, 1); err == nil {
		t.Error("bad gate config accepted")
	}
}
