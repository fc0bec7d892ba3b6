package perfrules

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tailgate-ci/tailgate/internal/load"
	"github.com/tailgate-ci/tailgate/internal/rules"
)

// TestBidderRulesParse keeps the embedded default valid.
func TestBidderRulesParse(t *testing.T) {
	r, err := rules.Parse(BidderName, Bidder)
	if err != nil {
		t.Fatal(err)
	}
	if r.Service.Build != "./cmd/bidder" || r.Load.Targets.Kind != rules.TargetsReqgen {
		t.Fatalf("unexpected default rules: %+v", r)
	}
}

// TestReadmeExamplesParse keeps the full examples in README.md valid.
func TestReadmeExamplesParse(t *testing.T) {
	b, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for i, block := range strings.Split(string(b), "```yaml\n")[1:] {
		block, _, _ = strings.Cut(block, "```")
		if !strings.HasPrefix(block, "version:") {
			continue
		}
		n++
		if _, err := rules.Parse(fmt.Sprintf("README.md yaml block %d", i+1), []byte(block)); err != nil {
			t.Error(err)
		}
	}
	if n == 0 {
		t.Fatal("no full example in README.md")
	}
}

// TestExamplesParse keeps perf-rules/examples valid: every rules file
// parses and every targets file it names loads.
func TestExamplesParse(t *testing.T) {
	files, err := filepath.Glob("examples/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no examples: %v", err)
	}
	for _, f := range files {
		r, err := rules.Load(f)
		if err != nil {
			t.Error(err)
			continue
		}
		if tg := r.Load.Targets; tg.Kind == rules.TargetsFile {
			if _, err := load.FileTargeter(r.Resolve(tg.File), tg.Format); err != nil {
				t.Errorf("%s: %v", f, err)
			}
		}
	}
	if _, err := load.FileTargeter("examples/targets.json", "json"); err != nil {
		t.Error(err)
	}
}
