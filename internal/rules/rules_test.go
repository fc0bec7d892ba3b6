package rules

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const good = `version: 1
service:
  build: ./cmd/bidder
  args: ["serve", "--addr", "127.0.0.1:{{port}}", "--index", "{{workdir}}/index"]
  env:
    GOGC: 100
  health: http://127.0.0.1:{{port}}/healthz
  health_timeout: 20s
  prepare:
    - "{{bin}} index build --out {{workdir}}/index --size 64MiB"
    - [echo, hello]
  neighbours:
    - name: pageout
      args: "{{bin}} chaos pageout --pid {{pid}} --every 200ms"
      privileged: true
load:
  targets:
    kind: reqgen
    url: http://127.0.0.1:{{port}}/openrtb2/bid
  seed: 42
  rate: 1500/s
  duration: 20s
  warmup: 3s
  round_warmup: 500ms
  rounds: 3
  timeout: 1s
  max_error_rate: 0.001
`

func TestParseGood(t *testing.T) {
	r, err := Parse("good.yaml", []byte(good))
	if err != nil {
		t.Fatal(err)
	}
	if r.Version != 1 || r.Service.Build != "./cmd/bidder" || r.Service.HealthTimeout != 20*time.Second {
		t.Fatalf("service = %+v", r.Service)
	}
	if r.Service.StopTimeout != DefaultStopTimeout || r.Service.User != DefaultUser {
		t.Fatalf("defaults not applied: %+v", r.Service)
	}
	if got := r.Service.Env["GOGC"]; got != "100" {
		t.Fatalf("env GOGC = %q", got)
	}
	if len(r.Service.Prepare) != 2 || strings.Join(r.Service.Prepare[0], " ") != "{{bin}} index build --out {{workdir}}/index --size 64MiB" ||
		strings.Join(r.Service.Prepare[1], " ") != "echo hello" {
		t.Fatalf("prepare = %q", r.Service.Prepare)
	}
	nb := r.Service.Neighbours
	if len(nb) != 1 || !nb[0].Privileged || nb[0].Args[4] != "{{pid}}" {
		t.Fatalf("neighbours = %+v", nb)
	}
	l := r.Load
	if l.Rate.PerSecond() != 1500 || l.Duration != 20*time.Second || l.Warmup != 3*time.Second || l.RoundWarmup != 500*time.Millisecond ||
		l.Rounds != 3 || l.Timeout != time.Second || l.MaxErrorRate != 0.001 || l.Seed != 42 {
		t.Fatalf("load = %+v", l)
	}
	if l.Targets.Kind != TargetsReqgen {
		t.Fatalf("targets = %+v", l.Targets)
	}
}

func TestParseDefaultsAndInference(t *testing.T) {
	r, err := Parse("min.yaml", []byte(`version: 1
service: {bin: ./svc, health: "http://127.0.0.1:9/h"}
load: {targets: {file: t.txt}, rate: 10}
`))
	if err != nil {
		t.Fatal(err)
	}
	l := r.Load
	if l.Targets.Kind != TargetsFile || l.Targets.Format != "http" {
		t.Fatalf("targets = %+v", l.Targets)
	}
	if l.Duration != DefaultDuration || l.Warmup != DefaultWarmup || l.RoundWarmup != DefaultRoundWarmup || l.Rounds != DefaultRounds ||
		l.Timeout != DefaultTimeout || l.MaxErrorRate != DefaultMaxErrorRate {
		t.Fatalf("defaults = %+v", l)
	}
	if got := r.Resolve(l.Targets.File); got != "t.txt" {
		t.Fatalf("Resolve = %q", got)
	}
	r.Path = "/etc/perf/x.yaml"
	if got := r.Resolve("t.txt"); got != "/etc/perf/t.txt" {
		t.Fatalf("Resolve = %q", got)
	}
}

// TestParseBad checks that each bad file names the line and field.
func TestParseBad(t *testing.T) {
	// base is a valid file in which each case replaces one line.
	lines := strings.Split(good, "\n")
	replace := func(prefix, with string) string {
		out := make([]string, len(lines))
		found := false
		for i, l := range lines {
			if strings.HasPrefix(l, prefix) && !found {
				out[i] = with
				found = true
			} else {
				out[i] = l
			}
		}
		if !found {
			t.Fatalf("no line %q", prefix)
		}
		return strings.Join(out, "\n")
	}
	for _, tc := range []struct {
		name, data, want string
	}{
		{"unknown top-level key", good + "gates: {p99: 25ms}\n", "bad.yaml:28: gates: unknown field"},
		{"unknown service key", replace("  health_timeout:", "  healt_timeout: 20s"), "bad.yaml:8: service.healt_timeout: unknown field"},
		{"unknown load key", replace("  rounds:", "  round: 3"), "bad.yaml:25: load.round: unknown field"},
		{"rate word", replace("  rate:", "  rate: fast/s"), `bad.yaml:21: load.rate: "fast/s" is not a rate`},
		{"rate zero", replace("  rate:", "  rate: 0"), `bad.yaml:21: load.rate: "0": rate must be positive`},
		{"rate bad unit", replace("  rate:", "  rate: 10/parsec"), `bad.yaml:21: load.rate: "10/parsec" is not a rate`},
		{"rate list", replace("  rate:", "  rate: [1, 2]"), "bad.yaml:21: load.rate: want a single value, got a list"},
		{"duration no unit", replace("  duration:", "  duration: 20"), `bad.yaml:22: load.duration: "20" is not a duration`},
		{"duration word", replace("  duration:", "  duration: forever"), `bad.yaml:22: load.duration: "forever" is not a duration`},
		{"duration negative", replace("  warmup:", "  warmup: -3s"), `bad.yaml:23: load.warmup: -3s is negative`},
		{"duration zero", replace("  duration:", "  duration: 0s"), `bad.yaml:22: load.duration: must be positive`},
		{"rounds string", replace("  rounds:", "  rounds: many"), `bad.yaml:25: load.rounds: "many" is not an integer`},
		{"rounds zero", replace("  rounds:", "  rounds: 0"), `load.rounds: 0: want at least 1`},
		{"error rate", replace("  max_error_rate:", "  max_error_rate: 2"), `bad.yaml:27: load.max_error_rate: 2: want a fraction in [0,1]`},
		{"timeouts word", replace("  max_error_rate:", "  max_error_rate: 0.001\n  timeouts: ignore"), `bad.yaml:28: load.timeouts: "ignore": want latency`},
		{"procs", replace("  max_error_rate:", "  max_error_rate: 0.001\n  procs: -1"), `bad.yaml:28: load.procs: -1: want a number of Ps`},
		{"timeout under the SLO", replace("  timeout:", "  timeout: 20ms"), `bad.yaml:26: load.timeout: 20ms is not above the SLO 25ms`},
		{"timeout under a set SLO", good + "gate:\n  slo: 2s\n", `bad.yaml:26: load.timeout: 1s is not above the SLO 2s`},
		{"seed type", replace("  seed:", "  seed: {a: 1}"), `bad.yaml:20: load.seed: want an integer, got a mapping`},
		{"bool type", replace("      privileged:", "      privileged: sometimes"), `bad.yaml:15: service.neighbours[0].privileged: "sometimes" is not true or false`},
		{"service not mapping", "version: 1\nservice: [a]\nload: {rate: 1, targets: {url: 'http://x'}}\n", "bad.yaml:2: service: want a mapping, got a list"},
		{"version", replace("version:", "version: 2"), "bad.yaml:1: version: unsupported version 2"},
		{"version missing", replace("version:", "# no version"), "version: missing"},
		{"load missing", "version: 1\nservice: {bin: x, health: 'http://x/'}\n", "load: missing"},
		{"rate missing", replace("  rate:", "  # no rate"), "load.rate: missing"},
		{"no build or bin", replace("  build:", "  # nothing"), "service: want build"},
		{"build and bin", replace("  build:", "  build: ./x\n  bin: ./y"), "service.bin: give build or bin, not both"},
		{"health not url", replace("  health:", "  health: localhost:8080"), `bad.yaml:7: service.health: "localhost:8080" is not an http(s) URL`},
		{"unknown template", replace("  args:", `  args: ["--addr", "{{host}}:{{port}}"]`), "bad.yaml:4: service.args: unknown template {{host}}"},
		{"pid outside neighbours", replace("  args:", `  args: ["--pid", "{{pid}}"]`), "service.args: unknown template {{pid}}"},
		{"unbalanced template", replace("  args:", `  args: ["{{port"]`), "service.args: unbalanced"},
		{"neighbour without args", replace("      args:", "      env: {A: b}"), "service.neighbours[0].args: missing"},
		{"neighbour unknown key", replace("      privileged:", "      privilegd: true"), "bad.yaml:15: service.neighbours[0].privilegd: unknown field"},
		{"empty prepare", replace(`    - [echo, hello]`, "    - []"), "bad.yaml:11: service.prepare[1]: empty command"},
		{"targets kind", replace("    kind:", "    kind: magic"), `bad.yaml:18: load.targets.kind: "magic": want reqgen or file`},
		{"reqgen no url", replace("    url:", "    # no url"), "load.targets.url: missing"},
		{"file format", replace("    url:", "    file: t.txt\n    format: xml"), "bad.yaml:19: load.targets: file and format are for kind: file, not reqgen"},
		{"file bad format", "version: 1\nservice: {bin: x, health: 'http://x/'}\nload:\n  rate: 1\n  targets: {file: t, format: xml}\n", `bad.yaml:5: load.targets.format: "xml": want http or json`},
		{"duplicate key", replace("  seed:", "  seed: 1\n  seed: 2"), "load.seed: duplicate key"},
		{"yaml syntax", "version: 1\nservice:\n  build: [\n", "bad.yaml:"},
		{"empty", "", "bad.yaml:1: empty rules file"},
		{"port range", replace("  build:", "  build: ./x\n  port: 70000"), "service.port: 70000 is not a TCP port"},
		{"users negative", replace("    kind:", "    kind: reqgen\n    users: -1"), "load.targets.users: -1 is negative"},
		{"users on file", "version: 1\nservice: {bin: x, health: 'http://x/'}\nload:\n  rate: 1\n  targets: {file: t, users: 5}\n", "bad.yaml:5: load.targets.users: users is for kind: reqgen"},
		{"env name", replace("    GOGC:", "    \"A=B\": 1"), `service.env: "A=B" is not an environment variable name`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("bad.yaml", []byte(tc.data))
			if err == nil {
				t.Fatalf("no error; want %q", tc.want)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %q\nwant it to contain %q", err, tc.want)
			}
		})
	}
}

func TestParseTimeouts(t *testing.T) {
	r, err := Parse("good.yaml", []byte(good))
	if err != nil {
		t.Fatal(err)
	}
	if r.Load.Timeouts != TimeoutsLatency || r.Load.TimeoutsAsErrors() {
		t.Fatalf("default timeouts %q, as errors %v: want latency", r.Load.Timeouts, r.Load.TimeoutsAsErrors())
	}
	// Counted as errors, a timeout under the SLO is allowed: it cannot
	// pass as a latency then.
	data := strings.Replace(good, "  timeout: 1s", "  timeout: 20ms\n  timeouts: error", 1)
	if r, err = Parse("err.yaml", []byte(data)); err != nil {
		t.Fatal(err)
	}
	if !r.Load.TimeoutsAsErrors() || r.Load.Timeout != 20*time.Millisecond {
		t.Fatalf("timeouts %q timeout %v: want error, 20ms", r.Load.Timeouts, r.Load.Timeout)
	}
}

func TestParseRate(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want float64
		bad  bool
	}{
		{"1500", 1500, false},
		{"1500/s", 1500, false},
		{"1500/1s", 1500, false},
		{"90000/1m", 1500, false},
		{"2/ms", 2000, false},
		{"0.5", 0.5, false},
		{"fast/s", 0, true},
		{"", 0, true},
		{"-5/s", 0, true},
		{"10/", 0, true},
		{"NaN", 0, true},
		{"Inf/s", 0, true},
		{"10/0s", 0, true},
	} {
		got, err := ParseRate(tc.in)
		if (err != nil) != tc.bad || (!tc.bad && got != tc.want) {
			t.Errorf("ParseRate(%q) = %v, %v; want %v (bad %v)", tc.in, got, err, tc.want, tc.bad)
		}
	}
}

func TestExpand(t *testing.T) {
	vars := map[string]string{"port": "8080", "pid": "42"}
	if got := Expand("127.0.0.1:{{port}} {{ pid }}", vars); got != "127.0.0.1:8080 42" {
		t.Fatalf("Expand = %q", got)
	}
	if got := ExpandAll([]string{"{{port}}", "x"}, vars); got[0] != "8080" || got[1] != "x" {
		t.Fatalf("ExpandAll = %q", got)
	}
}

func TestLoad(t *testing.T) {
	p := filepath.Join(t.TempDir(), "r.yaml")
	if err := os.WriteFile(p, []byte(good), 0o644); err != nil {
		t.Fatal(err)
	}
	r, err := Load(p)
	if err != nil || r.Path != p {
		t.Fatalf("Load = %+v, %v", r, err)
	}
	if _, err := Load(p + ".missing"); err == nil || !strings.Contains(err.Error(), "read rules") {
		t.Fatalf("missing file error = %v", err)
	}
}
