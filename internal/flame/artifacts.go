package flame

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
)

// Comparison labels for the two pairs tailgate draws. A is always the
// reference side, so red always means "more in the side under suspicion".
const (
	LabelFast = "fast" // A: requests at or below p50
	LabelSlow = "slow" // B: requests above p99 (or the SLO)
	LabelBase = "base" // A: the PR's base commit
	LabelHead = "head" // B: the PR's head commit
)

// DiffSet describes one comparison to write as a set of artefacts.
type DiffSet struct {
	// Name prefixes every file, e.g. "offcpu-slow-vs-fast"; letters,
	// digits, '.', '_' and '-' only.
	Name           string
	A, B           *Profile // raw (unnormalized) sides
	ALabel, BLabel string   // e.g. LabelFast/LabelSlow or LabelBase/LabelHead
	Norm           Normalization
	Palette        Palette // palette of the two plain graphs
	Title          string  // optional prefix of the graph titles
}

var safeName = regexp.MustCompile(`^[A-Za-z0-9._-]+$`)

// WriteDiffSet writes, under dir, for a comparison named N with labels a
// and b:
//
//	N-a.folded, N-b.folded            raw folded stacks of each side
//	N-a.svg, N-b.svg                  plain flame graphs of each side
//	N-b-over-a.svg, N-a-over-b.svg    differential graphs, both directions
//	N-diff.folded                     normalized two-column folded stacks
//	N-a.pb.gz, N-b.pb.gz              pprof profiles of the raw sides; compare
//	                                  with go tool pprof -normalize -diff_base=N-a.pb.gz N-b.pb.gz
//
// It returns the paths written, in that order, and the diff (for
// TopChanges). Files are written whole or not at all (temp file + rename).
func WriteDiffSet(dir string, s DiffSet) ([]string, *DiffProfile, error) {
	if !safeName.MatchString(s.Name) {
		return nil, nil, fmt.Errorf("write diff set: name %q: want letters, digits, '.', '_' or '-'", s.Name)
	}
	for _, l := range []string{s.ALabel, s.BLabel} {
		if !safeName.MatchString(l) {
			return nil, nil, fmt.Errorf("write diff set %s: label %q: want letters, digits, '.', '_' or '-'", s.Name, l)
		}
	}
	if s.ALabel == s.BLabel {
		return nil, nil, fmt.Errorf("write diff set %s: both sides labelled %q", s.Name, s.ALabel)
	}
	d, err := Diff(s.A, s.B, s.Norm)
	if err != nil {
		return nil, nil, fmt.Errorf("write diff set %s: %w", s.Name, err)
	}
	title := func(t string) string {
		if s.Title == "" {
			return t
		}
		return s.Title + ": " + t
	}
	type file struct {
		name  string
		write func(io.Writer) error
	}
	plain := func(p *Profile, label string) func(io.Writer) error {
		return func(w io.Writer) error {
			return RenderSVG(w, p, Options{Palette: s.Palette, Title: title(label),
				Subtitle: fmt.Sprintf("%s, %d samples, %d requests", formatQuantity(p.Total(), p.UnitOrDefault()), p.Samples, p.Requests)})
		}
	}
	diff := func(dir Direction, shape, other string) func(io.Writer) error {
		return func(w io.Writer) error {
			return RenderDiffSVG(w, d, DiffOptions{Direction: dir, ALabel: s.ALabel, BLabel: s.BLabel,
				Options: Options{Title: title(shape + " over " + other)}})
		}
	}
	a, b := s.ALabel, s.BLabel
	files := []file{
		{a + ".folded", func(w io.Writer) error { return WriteFolded(w, s.A) }},
		{b + ".folded", func(w io.Writer) error { return WriteFolded(w, s.B) }},
		{a + ".svg", plain(s.A, a)},
		{b + ".svg", plain(s.B, b)},
		{b + "-over-" + a + ".svg", diff(BOverA, b, a)},
		{a + "-over-" + b + ".svg", diff(AOverB, a, b)},
		{"diff.folded", func(w io.Writer) error { return WriteDiffFolded(w, d) }},
		{a + ".pb.gz", func(w io.Writer) error { return WritePprof(w, s.A, PprofOptions{Comments: []string{s.Name + " " + a}}) }},
		{b + ".pb.gz", func(w io.Writer) error { return WritePprof(w, s.B, PprofOptions{Comments: []string{s.Name + " " + b}}) }},
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, nil, fmt.Errorf("write diff set %s: %w", s.Name, err)
	}
	var paths []string
	for _, f := range files {
		path := filepath.Join(dir, s.Name+"-"+f.name)
		var buf bytes.Buffer
		if err := f.write(&buf); err != nil {
			return paths, nil, fmt.Errorf("write %s: %w", path, err)
		}
		if err := writeFileAtomic(path, buf.Bytes()); err != nil {
			return paths, nil, err
		}
		paths = append(paths, path)
	}
	return paths, d, nil
}

func writeFileAtomic(path string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}
