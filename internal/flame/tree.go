package flame

import (
	"slices"
	"strings"
)

// node is one frame of the merged call tree. It holds up to two series so
// one tree serves both a plain profile (series 0) and a differential one
// (series 0 = A, series 1 = B).
type node struct {
	name     string
	total    [2]float64 // inclusive value
	self     [2]float64 // value of stacks that end here
	children []*node    // sorted by name once built
	index    map[string]*node
	slab     *[]node // shared allocation pool of the tree; nil allocates singly
}

// newNode allocates nodes in blocks: a 1M-sample profile has around a
// million frames, and one allocation each would dominate building it.
func (n *node) newNode(name string) *node {
	if n.slab == nil {
		return &node{name: name}
	}
	if len(*n.slab) == cap(*n.slab) {
		*n.slab = make([]node, 0, min(2*cap(*n.slab), 4096))
	}
	*n.slab = append(*n.slab, node{name: name, slab: n.slab})
	return &(*n.slab)[len(*n.slab)-1]
}

// child returns the child called name, creating it if needed. Small
// fan-outs are scanned; a map is built once a node has many children.
func (n *node) child(name string) *node {
	if n.index != nil {
		if c, ok := n.index[name]; ok {
			return c
		}
	} else {
		for _, c := range n.children {
			if c.name == name {
				return c
			}
		}
	}
	c := n.newNode(name)
	n.children = append(n.children, c)
	if n.index != nil {
		n.index[name] = c
	} else if len(n.children) > 16 {
		n.index = make(map[string]*node, 32)
		for _, c := range n.children {
			n.index[c.name] = c
		}
	}
	return c
}

// sharedFrames returns how many whole leading frames the folded stacks a
// and b have in common, and the byte offset in b where the rest starts.
func sharedFrames(a, b string) (frames, offset int) {
	l := 0
	for l < len(a) && l < len(b) && a[l] == b[l] {
		l++
	}
	for i := 0; i < l; i++ {
		if b[i] == ';' {
			frames++
			offset = i + 1
		}
	}
	if (l == len(a) || a[l] == ';') && (l == len(b) || b[l] == ';') && l > offset {
		frames++
		offset = l + 1
	}
	return frames, offset
}

// finish sorts children by name (the flamegraph.pl order, which makes
// the layout independent of map iteration) and drops the build index.
func (n *node) finish() int {
	depth := 0
	if len(n.children) > 1 {
		slices.SortFunc(n.children, func(a, b *node) int { return strings.Compare(a.name, b.name) })
	}
	n.index = nil
	for _, c := range n.children {
		if d := c.finish() + 1; d > depth {
			depth = d
		}
	}
	return depth
}

// buildTree merges profiles into one tree rooted at a frame named "all";
// profile i goes into series i. Stacks are added in sorted order, which
// makes the floating-point sums (and so the output) deterministic and lets
// each stack reuse the path of the previous one up to where they diverge.
func buildTree(ps ...*Profile) (*node, int) {
	slab := make([]node, 0, 32) // blocks double up to 4096 nodes
	root := &node{name: "all", slab: &slab}
	path := make([]*node, 0, 64)
	for s, p := range ps {
		path = append(path[:0], root)
		prev := ""
		for _, k := range p.sortedKeys() {
			v := p.Stacks[k]
			if v == 0 {
				continue
			}
			shared, off := sharedFrames(prev, k)
			if shared > len(path)-1 {
				shared, off = len(path)-1, frameOffset(k, len(path)-1)
			}
			path = path[:shared+1]
			cur := path[shared]
			if off <= len(k) {
				rest := k[off:]
				for {
					i := strings.IndexByte(rest, ';')
					name := rest
					if i >= 0 {
						name = rest[:i]
					}
					cur = cur.child(name)
					path = append(path, cur)
					if i < 0 {
						break
					}
					rest = rest[i+1:]
				}
			}
			for _, n := range path {
				n.total[s] += v
			}
			cur.self[s] += v
			prev = k
		}
	}
	return root, root.finish()
}

// frameOffset returns the byte offset of frame n (0-based) in key.
func frameOffset(key string, n int) int {
	off := 0
	for ; n > 0; n-- {
		i := strings.IndexByte(key[off:], ';')
		if i < 0 {
			return len(key) + 1
		}
		off += i + 1
	}
	return off
}
