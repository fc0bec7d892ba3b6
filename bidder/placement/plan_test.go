package placement

import (
	"reflect"
	"strings"
	"testing"
)

func TestParseList(t *testing.T) {
	tests := []struct {
		in      string
		want    []int
		wantErr string
	}{
		{"0", []int{0}, ""},
		{"0-3,8-11\n", []int{0, 1, 2, 3, 8, 9, 10, 11}, ""},
		{"4,0,2-3,2", []int{0, 2, 3, 4}, ""},
		{"", nil, ""},
		{" \n", nil, ""},
		{"3-1", nil, "runs backwards"},
		{"0-x", nil, `"x" is not a CPU`},
		{"-1", nil, "is not a CPU"},
		{"0,,1", nil, "is not a CPU"},
		{"0-99999", nil, "above the supported maximum"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseList(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("ParseList(%q) error = %v, want %q", tt.in, err, tt.wantErr)
				}
				return
			}
			if err != nil || !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("ParseList(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
			}
			if back, _ := ParseList(FormatList(got)); !reflect.DeepEqual(back, got) {
				t.Fatalf("FormatList(%v) = %q does not round-trip", got, FormatList(got))
			}
		})
	}
	if got := FormatList([]int{11, 0, 1, 2, 3, 8, 9, 10, 5}); got != "0-3,5,8-11" {
		t.Fatalf("FormatList = %q", got)
	}
}

func TestReadTopology(t *testing.T) {
	tests := []struct {
		root    string
		want    *Topology
		wantErr string
	}{
		{"testdata/sys-2node", &Topology{Nodes: []Node{
			{ID: 0, CPUs: []int{0, 1, 2, 3, 8, 9, 10, 11}, HasMemory: true},
			{ID: 1, CPUs: []int{4, 5, 6, 7, 12, 13, 14, 15}, HasMemory: true},
		}}, ""},
		{"testdata/sys-1node", &Topology{Nodes: []Node{{ID: 0, CPUs: []int{0, 1}, HasMemory: true}}}, ""},
		{"testdata/sys-nonuma", &Topology{Nodes: []Node{{ID: 0, CPUs: []int{0, 1, 2, 3}, HasMemory: true}}, NoNUMA: true}, ""},
		{"testdata/sys-3node-memless", &Topology{Nodes: []Node{
			{ID: 0, CPUs: []int{0, 1}, HasMemory: true},
			{ID: 1, CPUs: []int{2, 3}, HasMemory: true},
			{ID: 2, CPUs: []int{4, 5}, HasMemory: false},
		}}, ""},
		{"testdata/sys-bad-cpulist", nil, "sys-bad-cpulist/devices/system/node/node1/cpulist: list \"4-x\""},
		{"testdata/sys-missing-node", nil, "node 1: open testdata/sys-missing-node/devices/system/node/node1/cpulist"},
		{"testdata/no-such-root", nil, "no-such-root/devices/system/cpu/online"},
	}
	for _, tt := range tests {
		t.Run(tt.root, func(t *testing.T) {
			got, err := ReadTopology(tt.root)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("ReadTopology error = %v, want it to contain %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("ReadTopology = %+v, want %+v", got, tt.want)
			}
		})
	}
}

// TestComputeTwoNodes is the acceptance check: the children's
// affinity and memory policy, computed from a synthetic 2-node tree.
func TestComputeTwoNodes(t *testing.T) {
	topo, err := ReadTopology("testdata/sys-2node")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		opts Options
		want *Plan
	}{
		{"whole host", Options{Nice: -10}, &Plan{Nodes: 2, PerNode: true, Note: "NUMA: 2 nodes, one bidder per node", Children: []Child{
			{Node: 0, CPUs: []int{0, 1, 2, 3, 8, 9, 10, 11}, MemBind: []int{0}, GOMAXPROCS: 8, Nice: -10,
				Env: []string{"GOMAXPROCS=8", "BIDDER_NUMA_NODE=0", "BIDDER_CPUS=0-3,8-11"}},
			{Node: 1, CPUs: []int{4, 5, 6, 7, 12, 13, 14, 15}, MemBind: []int{1}, GOMAXPROCS: 8, Nice: -10,
				Env: []string{"GOMAXPROCS=8", "BIDDER_NUMA_NODE=1", "BIDDER_CPUS=4-7,12-15"}},
		}}},
		{"cpuset 2-5", Options{Allowed: []int{2, 3, 4, 5}}, &Plan{Nodes: 2, PerNode: true, Note: "NUMA: 2 nodes, one bidder per node", Children: []Child{
			{Node: 0, CPUs: []int{2, 3}, MemBind: []int{0}, GOMAXPROCS: 2,
				Env: []string{"GOMAXPROCS=2", "BIDDER_NUMA_NODE=0", "BIDDER_CPUS=2-3"}},
			{Node: 1, CPUs: []int{4, 5}, MemBind: []int{1}, GOMAXPROCS: 2,
				Env: []string{"GOMAXPROCS=2", "BIDDER_NUMA_NODE=1", "BIDDER_CPUS=4-5"}},
		}}},
		{"cpuset inside node 1", Options{Allowed: []int{12, 13}}, &Plan{Nodes: 2, Note: "NUMA: 2 nodes, 1 with allowed CPUs", Children: []Child{
			{Node: -1, CPUs: []int{12, 13}, GOMAXPROCS: 2,
				Env: []string{"GOMAXPROCS=2", "BIDDER_NUMA_NODE=-1", "BIDDER_CPUS=12-13"}},
		}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Compute(topo, tt.opts)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("Compute =\n%+v\nwant\n%+v", got, tt.want)
			}
		})
	}
}

func TestComputeSingleNode(t *testing.T) {
	topo, err := ReadTopology("testdata/sys-1node")
	if err != nil {
		t.Fatal(err)
	}
	p, err := Compute(topo, Options{Nice: DefaultNice})
	if err != nil {
		t.Fatal(err)
	}
	want := &Plan{Nodes: 1, Note: "NUMA: 1 node", Children: []Child{{Node: -1, CPUs: []int{0, 1}, GOMAXPROCS: 2, Nice: -10,
		Env: []string{"GOMAXPROCS=2", "BIDDER_NUMA_NODE=-1", "BIDDER_CPUS=0-1"}}}}
	if !reflect.DeepEqual(p, want) {
		t.Fatalf("Compute = %+v, want %+v", p, want)
	}
	// Serve CPUs keep the bidder off the CPUs left to the neighbour.
	p, err = Compute(topo, Options{ServeCPUs: []int{1}})
	if err != nil {
		t.Fatal(err)
	}
	if c := p.Children[0]; !reflect.DeepEqual(c.CPUs, []int{1}) || c.GOMAXPROCS != 1 || c.MemBind != nil {
		t.Fatalf("with serve CPUs 1: %+v", c)
	}
}

func TestComputeMemorylessNode(t *testing.T) {
	topo, err := ReadTopology("testdata/sys-3node-memless")
	if err != nil {
		t.Fatal(err)
	}
	p, err := Compute(topo, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Children) != 3 || p.Children[2].MemBind != nil || !reflect.DeepEqual(p.Children[1].MemBind, []int{1}) {
		t.Fatalf("a node without memory must keep the default policy: %+v", p.Children)
	}
}

func TestComputeErrors(t *testing.T) {
	two, _ := ReadTopology("testdata/sys-2node")
	one, _ := ReadTopology("testdata/sys-1node")
	tests := []struct {
		name string
		topo *Topology
		opts Options
		want string
	}{
		{"nil topology", nil, Options{}, "empty topology"},
		{"nice too low", one, Options{Nice: -21}, "nice -21"},
		{"nice too high", one, Options{Nice: 20}, "nice 20"},
		{"nothing allowed", two, Options{Allowed: []int{99}}, "no allowed CPU (99)"},
		{"serve CPUs on 2 nodes", two, Options{ServeCPUs: []int{1}}, "single-node"},
		{"serve CPUs not allowed", one, Options{ServeCPUs: []int{7}}, "serve CPUs 7: none is allowed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Compute(tt.topo, tt.opts)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Compute error = %v, want %q", err, tt.want)
			}
		})
	}
}

func TestMergeEnv(t *testing.T) {
	got := MergeEnv([]string{"PATH=/bin", "GOMAXPROCS=64", "HOME=/root"}, []string{"GOMAXPROCS=8", "BIDDER_CPUS=0-7"})
	want := []string{"PATH=/bin", "HOME=/root", "GOMAXPROCS=8", "BIDDER_CPUS=0-7"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("MergeEnv = %q, want %q", got, want)
	}
}
