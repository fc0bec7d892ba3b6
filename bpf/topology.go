package bpf

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// ParseCPUList parses a kernel CPU list such as "0-3,8,10-11".
func ParseCPUList(s string) ([]int, error) {
	var cpus []int
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	for _, part := range strings.Split(strings.TrimSpace(s), ",") {
		lo, hi, isRange := strings.Cut(part, "-")
		a, err := strconv.Atoi(lo)
		if err != nil || a < 0 {
			return nil, fmt.Errorf("cpu list %q: bad cpu %q", s, lo)
		}
		b := a
		if isRange {
			b, err = strconv.Atoi(hi)
			if err != nil || b < a {
				return nil, fmt.Errorf("cpu list %q: bad range %q", s, part)
			}
		}
		for c := a; c <= b; c++ {
			cpus = append(cpus, c)
		}
	}
	return cpus, nil
}

// ReadCPUNodes maps each CPU to its NUMA node from the nodeN/cpulist files
// under dir (normally /sys/devices/system/node). A host without the node
// directory is one node: it returns an empty map and every CPU reads as
// node 0.
func ReadCPUNodes(dir string) (map[int]int, error) {
	out := map[int]int{}
	ents, err := os.ReadDir(dir)
	if os.IsNotExist(err) {
		return out, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read numa topology: %w", err)
	}
	var names []string
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), "node") {
			if _, err := strconv.Atoi(strings.TrimPrefix(e.Name(), "node")); err == nil {
				names = append(names, e.Name())
			}
		}
	}
	sort.Strings(names)
	for _, n := range names {
		node, _ := strconv.Atoi(strings.TrimPrefix(n, "node"))
		path := filepath.Join(dir, n, "cpulist")
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("read numa topology: %w", err)
		}
		cpus, err := ParseCPUList(strings.TrimSpace(string(b)))
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		for _, c := range cpus {
			if prev, dup := out[c]; dup {
				return nil, fmt.Errorf("%s: cpu %d already on node %d", path, c, prev)
			}
			out[c] = node
		}
	}
	return out, nil
}
