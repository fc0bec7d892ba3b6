package flame

import (
	"math/rand"
	"strings"
	"testing"
)

func TestSharedFrames(t *testing.T) {
	tests := []struct {
		a, b        string
		frames, off int
	}{
		{"", "a;b", 0, 0},
		{"a;b", "a;b", 2, 4},
		{"a;b", "a;b;c", 2, 4},
		{"a;b;c", "a;b", 2, 4},
		{"a;b", "a;bc", 1, 2},
		{"a;bc", "a;b", 1, 2},
		{"a;b1;x", "a;b;x", 1, 2},
		{"ab;x", "a;x", 0, 0},
		{"x", "y", 0, 0},
	}
	for _, tt := range tests {
		f, o := sharedFrames(tt.a, tt.b)
		if f != tt.frames || o != tt.off {
			t.Errorf("sharedFrames(%q, %q) = %d, %d; want %d, %d", tt.a, tt.b, f, o, tt.frames, tt.off)
		}
	}
}

// TestBuildTreeMatchesNaive checks the path-reusing tree builder against a
// direct one on stacks made to stress the sort order ("a", "a1", "a;b",
// names that are prefixes of others, repeated names).
func TestBuildTreeMatchesNaive(t *testing.T) {
	rng := rand.New(rand.NewSource(3))
	names := []string{"a", "a1", "a b", "ab", "b", "a.", "a(", "x", "a;"[:1]}
	p := New(DefaultUnit)
	for i := 0; i < 3000; i++ {
		n := 1 + rng.Intn(6)
		fr := make([]string, n)
		for j := range fr {
			fr[j] = names[rng.Intn(len(names))]
		}
		p.Add(fr, float64(1+rng.Intn(5)))
	}
	got, _ := buildTree(p)

	want := &node{name: "all"}
	for k, v := range p.Stacks {
		want.total[0] += v
		cur := want
		for _, f := range strings.Split(k, ";") {
			cur = cur.child(f)
			cur.total[0] += v
		}
		cur.self[0] += v
	}
	want.finish()
	var cmp func(path string, a, b *node)
	cmp = func(path string, a, b *node) {
		if a.name != b.name || a.total != b.total || a.self != b.self || len(a.children) != len(b.children) {
			t.Fatalf("%s: got %s total %v self %v (%d children), want %s %v %v (%d)", path,
				a.name, a.total, a.self, len(a.children), b.name, b.total, b.self, len(b.children))
		}
		for i := range a.children {
			cmp(path+";"+a.children[i].name, a.children[i], b.children[i])
		}
	}
	cmp("all", got, want)
}
