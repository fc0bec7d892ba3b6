package load

import (
	"context"
	"encoding/json"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tailgate-ci/tailgate/internal/latency"
)

// TestVegetaCLIReadsResults checks the ecosystem promise end to end: the
// vegeta CLI's report and plot read what Run writes, in every encoding,
// and report our corrected figures.
func TestVegetaCLIReadsResults(t *testing.T) {
	skipNoClock(t)
	bin, err := exec.LookPath("vegeta")
	if err != nil {
		t.Skip("vegeta CLI not in PATH (go install github.com/tsenart/vegeta/v12@v12.13.0)")
	}
	srv := okServer(t)
	for _, format := range []string{"gob", "json", "csv"} {
		t.Run(format, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "results."+format)
			res, err := Run(context.Background(), Config{Rate: 100, Duration: 500 * time.Millisecond,
				Targeter: getTargeter(srv.URL), Name: "head-1", VegetaPath: path, VegetaFormat: format})
			if err != nil {
				t.Fatal(err)
			}
			out, err := exec.Command(bin, "report", "-type=json", path).Output()
			if err != nil {
				t.Fatalf("vegeta report: %v", err)
			}
			var rep struct {
				Requests  int64 `json:"requests"`
				Latencies struct {
					Max int64 `json:"max"` // ns
				} `json:"latencies"`
				StatusCodes map[string]int64 `json:"status_codes"`
			}
			if err := json.Unmarshal(out, &rep); err != nil {
				t.Fatalf("vegeta report output %q: %v", out, err)
			}
			if rep.Requests != res.Requests || rep.StatusCodes["200"] != res.Requests {
				t.Errorf("vegeta report: %d requests %v, want %d", rep.Requests, rep.StatusCodes, res.Requests)
			}
			got, ours := time.Duration(rep.Latencies.Max), latency.Max(res.Hist)
			if got > ours+time.Microsecond || got < ours-ours/500-time.Microsecond {
				t.Errorf("vegeta max latency %v, our corrected max %v", got, ours)
			}
			html, err := exec.Command(bin, "plot", path).Output()
			if err != nil || !strings.Contains(string(html), "<html") {
				t.Errorf("vegeta plot: %v, %d bytes", err, len(html))
			}
		})
	}
}
