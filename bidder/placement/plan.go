package placement

import (
	"fmt"
	"strconv"
	"strings"
	"syscall"
)

// DefaultNice is the priority a root launcher gives the bidder: at nice -10
// a runnable bidder thread has about nine times the CPU weight of a nice-0
// neighbour thread, so the neighbour mostly fills time the bidder leaves idle.
const DefaultNice = -10

// Environment variables the plan sets for each child, besides GOMAXPROCS.
const (
	EnvNode = "BIDDER_NUMA_NODE" // the node the child is bound to; -1 when unbound
	EnvCPUs = "BIDDER_CPUS"      // the child's CPU list, e.g. "0-3,8-11"
)

// Options tune Compute.
type Options struct {
	// Allowed are the CPUs the launcher may hand out (its own affinity, or
	// a cpuset); nil means every CPU of the topology.
	Allowed []int
	// ServeCPUs, in single-node mode, restricts the bidder to these CPUs
	// (leaving the others to the neighbours); nil keeps all allowed CPUs.
	ServeCPUs []int
	// Nice is the scheduling priority given to every child (-20..19); 0
	// leaves it unchanged.
	Nice int
}

// Child is the placement of one bidder process.
type Child struct {
	Node       int   // the NUMA node it is bound to; -1 in single-node mode
	CPUs       []int // sched_setaffinity mask
	MemBind    []int // set_mempolicy(MPOL_BIND) nodes; nil leaves the policy alone
	GOMAXPROCS int
	Nice       int      // setpriority value; 0 leaves it alone
	Env        []string // KEY=VALUE pairs to add to the child's environment
}

// Identity is who a launched bidder runs as.
type Identity struct {
	// Cred, if set, is the user and group to switch to (dropping root).
	Cred *syscall.Credential
	// AmbientCaps are capabilities the bidder keeps after the switch, e.g.
	// CAP_IPC_LOCK so the mlock fix can lock the index beyond
	// RLIMIT_MEMLOCK where the launcher cannot raise that limit (root
	// without CAP_SYS_RESOURCE, as in some containers).
	AmbientCaps []uintptr
}

// Plan is what the launcher does.
type Plan struct {
	Nodes    int    // online NUMA nodes in the topology
	PerNode  bool   // one child per node (else one child, single-node mode)
	Note     string // "NUMA: 2 nodes, one bidder per node" / "NUMA: 1 node"
	Children []Child
}

// Compute turns a topology into a plan. It is pure: everything it needs is
// in its arguments, so the 2-node plan is tested on a 1-node host.
func Compute(t *Topology, opts Options) (*Plan, error) {
	if t == nil || len(t.Nodes) == 0 {
		return nil, fmt.Errorf("placement: empty topology")
	}
	if opts.Nice < -20 || opts.Nice > 19 {
		return nil, fmt.Errorf("placement: nice %d: want -20..19", opts.Nice)
	}
	allowed := opts.Allowed
	if allowed == nil {
		allowed = t.CPUs()
	}
	p := &Plan{Nodes: len(t.Nodes)}

	// Usable nodes have allowed CPUs; a node also needs memory to bind to it.
	type usable struct {
		node Node
		cpus []int
	}
	var nodes []usable
	for _, n := range t.Nodes {
		if cpus := intersect(n.CPUs, allowed); len(cpus) > 0 {
			nodes = append(nodes, usable{n, cpus})
		}
	}
	if len(nodes) == 0 {
		return nil, fmt.Errorf("placement: no allowed CPU (%s) on any node", FormatList(allowed))
	}

	if len(nodes) >= 2 {
		if opts.ServeCPUs != nil {
			return nil, fmt.Errorf("placement: serve CPUs apply to single-node hosts; this one has %d usable nodes", len(nodes))
		}
		p.PerNode = true
		p.Note = fmt.Sprintf("NUMA: %d nodes, one bidder per node", len(nodes))
		for _, u := range nodes {
			c := Child{Node: u.node.ID, CPUs: u.cpus, GOMAXPROCS: len(u.cpus), Nice: opts.Nice}
			if u.node.HasMemory {
				c.MemBind = []int{u.node.ID}
			}
			c.Env = childEnv(c)
			p.Children = append(p.Children, c)
		}
		return p, nil
	}

	u := nodes[0]
	cpus := u.cpus
	if opts.ServeCPUs != nil {
		cpus = intersect(opts.ServeCPUs, u.cpus)
		if len(cpus) == 0 {
			return nil, fmt.Errorf("placement: serve CPUs %s: none is allowed (allowed %s)", FormatList(opts.ServeCPUs), FormatList(u.cpus))
		}
	}
	switch {
	case len(t.Nodes) == 1:
		p.Note = "NUMA: 1 node"
	default:
		p.Note = fmt.Sprintf("NUMA: %d nodes, 1 with allowed CPUs", len(t.Nodes))
	}
	c := Child{Node: -1, CPUs: cpus, GOMAXPROCS: len(cpus), Nice: opts.Nice}
	c.Env = childEnv(c)
	p.Children = []Child{c}
	return p, nil
}

func childEnv(c Child) []string {
	return []string{
		"GOMAXPROCS=" + strconv.Itoa(c.GOMAXPROCS),
		EnvNode + "=" + strconv.Itoa(c.Node),
		EnvCPUs + "=" + FormatList(c.CPUs),
	}
}

// String describes the child in one line.
func (c Child) String() string {
	s := fmt.Sprintf("CPUs %s, GOMAXPROCS=%d", FormatList(c.CPUs), c.GOMAXPROCS)
	if c.Node >= 0 {
		s = fmt.Sprintf("node %d: ", c.Node) + s
	}
	if c.MemBind != nil {
		s += ", memory bound to node " + FormatList(c.MemBind)
	} else {
		s += ", memory policy unchanged"
	}
	if c.Nice != 0 {
		s += fmt.Sprintf(", nice %d", c.Nice)
	}
	return s
}

// MergeEnv returns base with the KEY=VALUE pairs of add set, replacing
// earlier values of the same key (a process sees only one of duplicates,
// and which one depends on the reader).
func MergeEnv(base, add []string) []string {
	keys := map[string]bool{}
	for _, kv := range add {
		k, _, _ := strings.Cut(kv, "=")
		keys[k] = true
	}
	out := make([]string, 0, len(base)+len(add))
	for _, kv := range base {
		if k, _, _ := strings.Cut(kv, "="); !keys[k] {
			out = append(out, kv)
		}
	}
	return append(out, add...)
}
