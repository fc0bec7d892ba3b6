package flame_test

import (
	"fmt"
	"os"
	"strings"

	"github.com/tailgate-ci/tailgate/internal/flame"
)

func ExampleParseFolded() {
	in := "main;handler;json.Marshal 3\nmain;handler 1\nmain;handler;json.Marshal 2\n"
	p, err := flame.ParseFolded(strings.NewReader(in), "cpu.folded")
	if err != nil {
		fmt.Println(err)
		return
	}
	flame.WriteFolded(os.Stdout, p)

	_, err = flame.ParseFolded(strings.NewReader("main;handler 1\nmain;;x 2\n"), "bad.folded")
	fmt.Println(err)
	// Output:
	// main;handler 1
	// main;handler;json.Marshal 5
	// bad.folded:2: empty frame 2 in stack
}

func ExampleDiffProfile_TopChanges() {
	fast := &flame.Profile{Unit: "nanoseconds", Requests: 1000, Stacks: map[string]float64{
		"main;serve;sync.(*Mutex).Lock;runtime.gopark": 2e6,
		"main;serve;index.Lookup":                      50e6,
	}}
	slow := &flame.Profile{Unit: "nanoseconds", Requests: 10, Stacks: map[string]float64{
		"main;serve;sync.(*Mutex).Lock;runtime.gopark": 40e6,
		"main;serve;index.Lookup;runtime.pageFault":    3e6,
		"main;serve;index.Lookup":                      0.4e6,
	}}
	d, err := flame.Diff(fast, slow, flame.NormPerRequest)
	if err != nil {
		fmt.Println(err)
		return
	}
	grew, shrank := d.TopChanges(2, flame.BySelf)
	for _, f := range grew {
		fmt.Printf("grew   %-16s %+.0f %s\n", f.Name, f.SelfDelta(), d.Unit)
	}
	for _, f := range shrank {
		fmt.Printf("shrank %-16s %+.0f %s\n", f.Name, f.SelfDelta(), d.Unit)
	}
	// Output:
	// grew   runtime.gopark   +3998000 nanoseconds/request
	// grew   runtime.pageFault +300000 nanoseconds/request
	// shrank index.Lookup     -10000 nanoseconds/request
}
