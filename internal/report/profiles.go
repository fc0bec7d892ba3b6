package report

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/tailgate-ci/tailgate/internal/flame"
)

// Files read from a profiles directory (LoadProfiles).
const (
	// ProfilesFile holds a Profiles as JSON: "unavailable" (why there
	// are no profiles), "contributors" ([]ContributorSet) and "units"
	// (diff-set name -> unit of its values) and "labels" (diff-set name
	// -> [A label, B label]; default: tailgate's fast/slow, base/head).
	ProfilesFile = "profiles.json"
	// DiffSuffix ends the two-column folded file of a diff set written by
	// flame.WriteDiffSet; its SVGs share the set's name as prefix.
	DiffSuffix = "-diff.folded"
)

// DiffTop is how many grown and shrunk functions a FlameDiff keeps.
const DiffTop = 20

// profilesJSON is the on-disk form of ProfilesFile.
type profilesJSON struct {
	Unavailable  string            `json:"unavailable,omitempty"`
	Contributors []ContributorSet  `json:"contributors,omitempty"`
	Units        map[string]string `json:"units,omitempty"`
	// Labels: diff-set name -> [A label, B label].
	Labels map[string][]string `json:"labels,omitempty"`
}

// LoadProfiles reads a profiles directory: ProfilesFile (optional) and
// every diff set (NAME-diff.folded with its NAME-*.svg files, as written
// by flame.WriteDiffSet) anywhere under dir. A missing directory is not an
// error: the result says profiles are unavailable and why.
func LoadProfiles(dir string) (Profiles, error) {
	var p Profiles
	st, err := os.Stat(dir)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			p.Unavailable = fmt.Sprintf("no profiles directory %s", dir)
			return p, nil
		}
		return p, fmt.Errorf("profiles: %w", err)
	}
	if !st.IsDir() {
		return p, fmt.Errorf("profiles: %s is not a directory", dir)
	}
	var pj profilesJSON
	if b, err := os.ReadFile(filepath.Join(dir, ProfilesFile)); err == nil {
		if err := json.Unmarshal(b, &pj); err != nil {
			return p, fmt.Errorf("profiles: %s: %w", filepath.Join(dir, ProfilesFile), err)
		}
		for i, s := range pj.Contributors {
			for j, c := range s.Contributors {
				if c.SlowShare < 0 || c.SlowShare > 1 || c.FastShare < 0 || c.FastShare > 1 {
					return p, fmt.Errorf("profiles: %s: contributors[%d].contributors[%d] (%s): shares must be in [0,1]", ProfilesFile, i, j, c.Name)
				}
			}
		}
		p.Unavailable, p.Contributors = pj.Unavailable, pj.Contributors
	} else if !errors.Is(err, fs.ErrNotExist) {
		return p, fmt.Errorf("profiles: %w", err)
	}
	var diffs, svgs []string
	err = filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		switch {
		case d.IsDir():
		case strings.HasSuffix(d.Name(), DiffSuffix):
			diffs = append(diffs, path)
		case strings.HasSuffix(d.Name(), ".svg"):
			svgs = append(svgs, path)
		}
		return nil
	})
	if err != nil {
		return p, fmt.Errorf("profiles: %w", err)
	}
	sort.Strings(diffs)
	for _, path := range diffs {
		d, err := loadDiff(path, pj.Units, pj.Labels)
		if err != nil {
			return p, err
		}
		p.Diffs = append(p.Diffs, d)
	}
	// Flame graphs that belong to no diff set are embedded as they are.
	inSet := map[string]bool{}
	for _, d := range p.Diffs {
		for _, s := range d.SVGs {
			inSet[s] = true
		}
	}
	sort.Strings(svgs)
	for _, s := range svgs {
		if !inSet[s] {
			p.Graphs = append(p.Graphs, s)
		}
	}
	if p.Unavailable == "" && len(p.Contributors) == 0 && len(p.Diffs) == 0 {
		p.Unavailable = fmt.Sprintf("%s holds no %s and no diff sets", dir, ProfilesFile)
	}
	return p, nil
}

func loadDiff(path string, units map[string]string, labels map[string][]string) (FlameDiff, error) {
	name := strings.TrimSuffix(filepath.Base(path), DiffSuffix)
	f, err := os.Open(path)
	if err != nil {
		return FlameDiff{}, fmt.Errorf("profiles: %w", err)
	}
	defer f.Close()
	a, b, err := flame.ParseDiffFolded(f, path)
	if err != nil {
		return FlameDiff{}, fmt.Errorf("profiles: %w", err)
	}
	unit := units[name]
	if unit == "" {
		// tailgate profile folds nanoseconds for every kind but on-CPU
		// samples and NUMA events.
		unit = "ns"
		if strings.Contains(name, "oncpu") || strings.Contains(name, "numa") {
			unit = flame.DefaultUnit
		}
	}
	a.Unit, b.Unit = unit, unit
	d, err := flame.Diff(a, b, flame.NormNone)
	if err != nil {
		return FlameDiff{}, fmt.Errorf("profiles: %s: %w", path, err)
	}
	alabel, blabel := "a", "b"
	if l := labels[name]; len(l) == 2 {
		alabel, blabel = l[0], l[1]
	}
	svgs, _ := filepath.Glob(filepath.Join(filepath.Dir(path), globEscape(name)+"-*.svg"))
	var pair []string
	for _, s := range svgs {
		rest := strings.TrimSuffix(strings.TrimPrefix(filepath.Base(s), name+"-"), ".svg")
		if x, y, ok := strings.Cut(rest, "-over-"); ok && !strings.Contains(y, "-over-") && len(pair) == 0 {
			pair = []string{x, y}
		}
	}
	if len(labels[name]) != 2 && len(pair) == 2 {
		// Both directions are drawn, so the file names alone cannot say
		// which side is A: tailgate's own pairs have a fixed reference
		// side (fast, base); otherwise take the names in sorted order.
		sort.Strings(pair)
		alabel, blabel = pair[0], pair[1]
		for _, ref := range [][2]string{{flame.LabelFast, flame.LabelSlow}, {flame.LabelBase, flame.LabelHead}} {
			if (pair[0] == ref[0] && pair[1] == ref[1]) || (pair[0] == ref[1] && pair[1] == ref[0]) {
				alabel, blabel = ref[0], ref[1]
			}
		}
	}
	first := name + "-" + blabel + "-over-" + alabel + ".svg"
	sort.Slice(svgs, func(i, j int) bool { // B over A first, then the other diff, then the plain graphs
		rank := func(p string) int {
			switch {
			case filepath.Base(p) == first:
				return 0
			case strings.Contains(filepath.Base(p), "-over-"):
				return 1
			}
			return 2
		}
		if ri, rj := rank(svgs[i]), rank(svgs[j]); ri != rj {
			return ri < rj
		}
		return svgs[i] < svgs[j]
	})
	return DiffFrom(name, alabel, blabel, d, svgs), nil
}

func globEscape(s string) string {
	return strings.NewReplacer("*", "\\*", "?", "\\?", "[", "\\[").Replace(s)
}

// MaxDiffShare is the largest change, as a multiple of side A's total,
// that a flame-graph diff row shows as a percentage (1000 %).
const MaxDiffShare = 10

// DiffFrom summarizes a flame.DiffProfile as a FlameDiff with its DiffTop
// grown and shrunk functions (by inclusive value) and the SVGs drawn for it.
func DiffFrom(name, aLabel, bLabel string, d *flame.DiffProfile, svgs []string) FlameDiff {
	fd := FlameDiff{Name: name, ALabel: aLabel, BLabel: bLabel, Unit: d.Unit, SVGs: svgs}
	total := d.A.Total()
	conv := func(fs []flame.FunctionDelta) []FrameChange {
		out := make([]FrameChange, len(fs))
		for i, x := range fs {
			out[i] = FrameChange{Name: x.Name, A: x.TotalA, B: x.TotalB, Delta: x.Delta(), SelfDelta: x.SelfDelta()}
			// A share of A's total only means something while A is a
			// real comparison base: against a nearly empty A (a fast
			// side with hardly any run-queue time) it would read
			// "+338170%"; the A and B columns already say "0 → 0.23 ms".
			if total > 0 && math.Abs(x.Delta()) <= MaxDiffShare*total {
				out[i].Share = x.Delta() / total
			}
		}
		return out
	}
	grew, shrank := d.TopChanges(DiffTop, flame.ByTotal)
	fd.Grew, fd.Shrank = conv(grew), conv(shrank)
	return fd
}

// LoadSoak reads a SoakResult from a JSON file.
func LoadSoak(path string) (*SoakResult, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("soak: %w", err)
	}
	var s SoakResult
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("soak: %s: %w", path, err)
	}
	if err := s.Validate(); err != nil {
		return nil, fmt.Errorf("soak: %s: %w", path, err)
	}
	return &s, nil
}

// timeDur converts a float nanosecond value to a Duration, saturating.
func timeDur(v float64) time.Duration {
	switch {
	case math.IsNaN(v):
		return 0
	case v > math.MaxInt64:
		return math.MaxInt64
	case v < math.MinInt64:
		return math.MinInt64
	}
	return time.Duration(v)
}
