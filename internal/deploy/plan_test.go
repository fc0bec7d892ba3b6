package deploy

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tailgate-ci/tailgate/internal/rules"
)

// TestPlan deploys the fake service from perf-rules: prepare writes into
// {{workdir}} as the service user, a fix-like delta adds env and args, and
// every log lands in LogDir under the prefix.
func TestPlan(t *testing.T) {
	y := fmt.Sprintf(`version: 1
service:
  bin: %s
  args: ["127.0.0.1:{{port}}"]
  env: {FAKE_SERVICE: healthy}
  health: http://127.0.0.1:{{port}}/healthz
  prepare:
    - [sh, -c, "echo prepared > {{workdir}}/marker"]
  neighbours:
    - name: side car
      args: ["%s", "--pid", "{{pid}}"]
      env: {FAKE_SERVICE: sleep}
load:
  targets: {url: "http://127.0.0.1:{{port}}/"}
  rate: 1
`, fakeBin, fakeBin)
	r, err := rules.Parse("plan.yaml", []byte(y))
	if err != nil {
		t.Fatal(err)
	}
	logs := t.TempDir()
	p, err := NewPlan(context.Background(), r, PlanOptions{LogDir: logs, LogPrefix: "head-"})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		p.Close()
		if _, err := os.Stat(p.Workdir); !os.IsNotExist(err) {
			t.Errorf("work directory left behind: %v", err)
		}
	}()
	if p.Bin != fakeBin || p.Port == 0 || p.Name() != "fake-service" {
		t.Fatalf("plan = %+v", p)
	}
	if err := p.Prepare(context.Background()); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(p.Workdir, "marker")); err != nil || string(b) != "prepared\n" {
		t.Fatalf("prepare did not run in the work directory: %q, %v", b, err)
	}
	p.Env = []string{"FAKE_DELTA=gc"}
	p.Args = []string{"--extra"}
	s, err := p.Start(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Stop(context.Background())
	resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/info", p.Port))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(body), "delta=gc") || !strings.Contains(string(body), "--extra") ||
		!strings.Contains(string(body), "home="+p.Workdir) {
		t.Fatalf("delta not applied: %s", body)
	}
	waitForFile(t, filepath.Join(logs, "head-neighbour-side_car.log"), fmt.Sprintf("--pid %d", s.PID()))
	for _, f := range []string{"head-service.log", "head-prepare.log"} {
		if _, err := os.Stat(filepath.Join(logs, f)); err != nil {
			t.Error(err)
		}
	}
}

func TestPlanBadRef(t *testing.T) {
	r, err := rules.Parse("plan.yaml", []byte("version: 1\nservice: {bin: /bin/true, health: 'http://x/'}\nload: {rate: 1, targets: {url: 'http://x/'}}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := NewPlan(context.Background(), r, PlanOptions{Ref: "main"}); err == nil || !strings.Contains(err.Error(), "prebuilt service.bin") {
		t.Fatalf("err = %v", err)
	}
}

func TestFreePort(t *testing.T) {
	p, err := FreePort()
	if err != nil || p <= 0 || p > 65535 {
		t.Fatalf("FreePort = %d, %v", p, err)
	}
}
