// Package placement owns where the bidder runs: the NUMA topology read from
// sysfs (under a configurable root, so a synthetic tree can stand in for a
// 2-socket host), the pure plan that turns a topology into per-child CPU
// affinity, memory policy, GOMAXPROCS, priority and environment, and the
// Linux mechanics that apply a plan to a thread before fork or exec
// (sched_setaffinity, set_mempolicy(MPOL_BIND) and setpriority are
// per-thread and survive exec).
//
// It is the `placement` fix: with two or more nodes, `bidder launch` runs
// one bidder per node, each bound to its node's CPUs and memory and sharing
// the port with SO_REUSEPORT; with one node it keeps the bidder ahead of the
// CPU-heavy neighbour by priority (and optionally affinity) and says
// "NUMA: 1 node".
package placement

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// DefaultSysfsRoot is where the kernel's sysfs is mounted.
const DefaultSysfsRoot = "/sys"

// maxCPU bounds CPU and node numbers accepted from sysfs, so a corrupt file
// cannot make us allocate a huge list.
const maxCPU = 1 << 14

// Node is one online NUMA node.
type Node struct {
	ID        int
	CPUs      []int // online CPUs of the node, ascending; empty for a memory-only node
	HasMemory bool  // the node has memory, so MPOL_BIND to it can be satisfied
}

// Topology is the host's NUMA layout.
type Topology struct {
	Nodes []Node
	// NoNUMA is set when sysfs has no node directory (a kernel without
	// CONFIG_NUMA): the topology is then one node 0 with every online CPU.
	NoNUMA bool
}

// CPUs returns every CPU of every node, ascending.
func (t *Topology) CPUs() []int {
	var all []int
	for _, n := range t.Nodes {
		all = append(all, n.CPUs...)
	}
	sort.Ints(all)
	return all
}

// ReadTopology reads the online nodes and their CPU lists under root (""
// means DefaultSysfsRoot): devices/system/node/online, nodeN/cpulist and
// has_memory. Errors name the file.
func ReadTopology(root string) (*Topology, error) {
	if root == "" {
		root = DefaultSysfsRoot
	}
	nodeDir := filepath.Join(root, "devices", "system", "node")
	online, err := readList(filepath.Join(nodeDir, "online"))
	if errors.Is(err, os.ErrNotExist) {
		if _, statErr := os.Stat(nodeDir); errors.Is(statErr, os.ErrNotExist) {
			cpus, err := readList(filepath.Join(root, "devices", "system", "cpu", "online"))
			if err != nil {
				return nil, fmt.Errorf("topology: %w", err)
			}
			return &Topology{Nodes: []Node{{ID: 0, CPUs: cpus, HasMemory: true}}, NoNUMA: true}, nil
		}
	}
	if err != nil {
		return nil, fmt.Errorf("topology: %w", err)
	}
	if len(online) == 0 {
		return nil, fmt.Errorf("topology: %s: no online node", filepath.Join(nodeDir, "online"))
	}
	// has_memory lists nodes with memory; older kernels lack it, and then
	// every node is assumed to have memory.
	withMem, err := readList(filepath.Join(nodeDir, "has_memory"))
	memKnown := err == nil
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("topology: %w", err)
	}
	t := &Topology{}
	for _, id := range online {
		cpus, err := readList(filepath.Join(nodeDir, "node"+strconv.Itoa(id), "cpulist"))
		if err != nil {
			return nil, fmt.Errorf("topology: node %d: %w", id, err)
		}
		t.Nodes = append(t.Nodes, Node{ID: id, CPUs: cpus, HasMemory: !memKnown || contains(withMem, id)})
	}
	return t, nil
}

func readList(path string) ([]int, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	l, err := ParseList(string(b))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return l, nil
}

// ParseList parses a kernel CPU or node list such as "0-3,8-11" or "0,2"
// (the format of cpulist, online and Cpus_allowed_list). An empty or
// whitespace-only string is the empty list.
func ParseList(s string) ([]int, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, nil
	}
	seen := map[int]bool{}
	var out []int
	for _, part := range strings.Split(s, ",") {
		lo, hi, isRange := strings.Cut(part, "-")
		a, err := listNumber(lo)
		if err != nil {
			return nil, fmt.Errorf("list %q: %w", s, err)
		}
		b := a
		if isRange {
			if b, err = listNumber(hi); err != nil {
				return nil, fmt.Errorf("list %q: %w", s, err)
			}
			if b < a {
				return nil, fmt.Errorf("list %q: range %q runs backwards", s, part)
			}
		}
		for i := a; i <= b; i++ {
			if !seen[i] {
				seen[i] = true
				out = append(out, i)
			}
		}
	}
	sort.Ints(out)
	return out, nil
}

func listNumber(s string) (int, error) {
	n, err := strconv.Atoi(strings.TrimSpace(s))
	if err != nil || n < 0 {
		return 0, fmt.Errorf("%q is not a CPU or node number", s)
	}
	if n >= maxCPU {
		return 0, fmt.Errorf("%d is above the supported maximum %d", n, maxCPU-1)
	}
	return n, nil
}

// FormatList is the inverse of ParseList: ascending, ranges collapsed.
func FormatList(l []int) string {
	s := append([]int(nil), l...)
	sort.Ints(s)
	var b strings.Builder
	for i := 0; i < len(s); {
		j := i
		for j+1 < len(s) && s[j+1] <= s[j]+1 {
			j++
		}
		if b.Len() > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.Itoa(s[i]))
		if s[j] != s[i] {
			b.WriteByte('-')
			b.WriteString(strconv.Itoa(s[j]))
		}
		i = j + 1
	}
	return b.String()
}

func contains(l []int, v int) bool {
	for _, x := range l {
		if x == v {
			return true
		}
	}
	return false
}

func intersect(a, b []int) []int {
	var out []int
	for _, x := range a {
		if contains(b, x) {
			out = append(out, x)
		}
	}
	return out
}
