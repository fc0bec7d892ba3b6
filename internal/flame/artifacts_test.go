package flame

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/google/pprof/profile"
)

func TestWriteDiffSet(t *testing.T) {
	a, b := mustRead(t, "base.folded"), mustRead(t, "head.folded")
	a.Requests, b.Requests = 4, 8
	dir := filepath.Join(t.TempDir(), "flame")
	paths, d, err := WriteDiffSet(dir, DiffSet{Name: "oncpu-head-vs-base", A: a, B: b,
		ALabel: LabelBase, BLabel: LabelHead, Norm: NormPerRequest, Title: "on-CPU"})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, p := range paths {
		names = append(names, strings.TrimPrefix(filepath.Base(p), "oncpu-head-vs-base-"))
	}
	want := []string{"base.folded", "head.folded", "base.svg", "head.svg", "head-over-base.svg",
		"base-over-head.svg", "diff.folded", "base.pb.gz", "head.pb.gz"}
	if !reflect.DeepEqual(names, want) {
		t.Errorf("files %v, want %v", names, want)
	}
	for _, p := range paths {
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		switch {
		case strings.HasSuffix(p, ".svg"):
			if frames := parseSVG(t, data); len(frames) < 10 {
				t.Errorf("%s: %d frames", p, len(frames))
			}
		case strings.HasSuffix(p, ".pb.gz"):
			if _, err := profile.ParseData(data); err != nil {
				t.Errorf("%s: %v", p, err)
			}
		case strings.HasSuffix(p, "-base.folded"):
			if q, err := ReadFoldedFile(p); err != nil || !reflect.DeepEqual(q.Stacks, a.Stacks) {
				t.Errorf("%s: %v", p, err)
			}
		}
	}
	if d.Unit != "samples/request" {
		t.Errorf("diff unit %q", d.Unit)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != len(want) {
		t.Errorf("%d entries in %s, want %d (temp files left behind?)", len(entries), dir, len(want))
	}

	for _, bad := range []DiffSet{
		{Name: "../x", A: a, B: b, ALabel: "a", BLabel: "b"},
		{Name: "x", A: a, B: b, ALabel: "a/b", BLabel: "b"},
		{Name: "x", A: a, B: b, ALabel: "s", BLabel: "s"},
		{Name: "x", A: New("samples"), B: b, ALabel: "a", BLabel: "b", Norm: NormPerTotal},
	} {
		if _, _, err := WriteDiffSet(dir, bad); err == nil {
			t.Errorf("WriteDiffSet(%+v) succeeded", bad)
		}
	}
}

func TestRenderEmptyProfile(t *testing.T) {
	frames := parseSVG(t, renderT(t, New("samples"), Options{}))
	if len(frames) != 0 {
		t.Errorf("empty profile drew %d frames", len(frames))
	}
}
