// Package rules owns perf-rules: the YAML file that says how to build, start
// and load a service under test (and, as later sections are added, how to
// gate it, which fixes exist and which contributors to attribute). Parsing is
// strict: an unknown key, a wrong type, a bad duration or rate is an error of
// the form "file:line: field: message", never a silent default.
//
// The grammar is the Rules struct: each field's `yaml` tag is its key. A new
// section is added by adding a field (and, for cross-field checks, a
// validate method); keys not declared there stay errors.
package rules

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Defaults applied when a key is absent.
const (
	DefaultHealthTimeout = 30 * time.Second
	DefaultStopTimeout   = 5 * time.Second
	DefaultDuration      = 30 * time.Second
	DefaultWarmup        = 10 * time.Second
	DefaultRoundWarmup   = time.Second
	DefaultRounds        = 5
	DefaultTimeout       = 2 * time.Second
	DefaultMaxErrorRate  = 0.01
	DefaultUser          = "nobody"
	CurrentVersion       = 1
)

// Template variables usable in service args, env, health, prepare,
// neighbours and the reqgen URL. PID is only known once the service runs,
// so it is allowed in neighbours only.
const (
	VarPort    = "port"    // the service's TCP port (service.port, or a free one)
	VarWorkdir = "workdir" // a per-run working directory the service may write
	VarBin     = "bin"     // the path of the built service binary
	VarPID     = "pid"     // the service's process id (neighbours only)
)

// Rules is a parsed perf-rules file.
type Rules struct {
	Version int      `yaml:"version"`
	Service Service  `yaml:"service"`
	Load    LoadSpec `yaml:"load"`
	// Gate is the decision rule of `tailgate gate` (gate.go).
	Gate Gate `yaml:"gate"`
	// Fixes are the declared fixes experiments attribute (fixes.go).
	Fixes []Fix `yaml:"fixes"`
	// Contributors classify the tail into contributors (contributors.go);
	// absent, ContributorRules returns DefaultContributors.
	Contributors Contributors `yaml:"contributors"`

	// Path is the file the rules came from (for messages and for resolving
	// relative paths); not a YAML key.
	Path string
}

// Service says how to build, prepare, start and health-check the service.
type Service struct {
	// Build is the Go package to build at the ref, relative to the
	// repository root (e.g. ./cmd/bidder). Exactly one of Build and Bin.
	Build string `yaml:"build"`
	// Bin is an already-built executable (relative to the rules file's
	// directory); for services not built from this repository.
	Bin  string            `yaml:"bin"`
	Args Argv              `yaml:"args"`
	Env  map[string]string `yaml:"env"`
	// Port is the TCP port the service listens on; 0 picks a free one.
	Port int `yaml:"port"`
	// Health is a URL that answers 2xx once the service is ready.
	Health        string        `yaml:"health"`
	HealthTimeout time.Duration `yaml:"health_timeout"`
	// StopTimeout is the grace between SIGTERM and SIGKILL.
	StopTimeout time.Duration `yaml:"stop_timeout"`
	// User runs the service (and unprivileged neighbours and prepare
	// commands) when tailgate runs as root.
	User string `yaml:"user"`
	// Prepare commands run once, in order, before the service starts.
	Prepare []Argv `yaml:"prepare"`
	// Neighbours are started beside the service once it is healthy and
	// stopped with it.
	Neighbours []Neighbour `yaml:"neighbours"`
}

// Neighbour is a process run beside the service (e.g. a noisy neighbour or
// a page-out injector); its args may use {{pid}}.
type Neighbour struct {
	Name string            `yaml:"name"`
	Args Argv              `yaml:"args"`
	Env  map[string]string `yaml:"env"`
	// Privileged keeps tailgate's own user (root) instead of the service
	// user, for injectors that act on another process.
	Privileged bool `yaml:"privileged"`
}

// LoadSpec says how to drive the service.
type LoadSpec struct {
	Targets  Targets       `yaml:"targets"`
	Seed     int64         `yaml:"seed"`
	Rate     Rate          `yaml:"rate"`
	Duration time.Duration `yaml:"duration"`
	// Warmup drives the service at Rate once it is healthy, before the
	// first round; nothing of it is recorded.
	Warmup time.Duration `yaml:"warmup"`
	// RoundWarmup is the unrecorded lead-in of every round (new
	// connections, and the service settling after the previous arm).
	RoundWarmup time.Duration `yaml:"round_warmup"`
	Rounds      int           `yaml:"rounds"`
	Timeout     time.Duration `yaml:"timeout"`
	// Timeouts says what a request that hits Timeout is: TimeoutsLatency
	// (the default) records it at its latency, a lower bound, so a service
	// too slow to answer fails its SLO; TimeoutsError also counts it
	// against MaxErrorRate, so such a round is invalid.
	Timeouts string `yaml:"timeouts"`
	// MaxErrorRate is the fraction of failed requests above which a round
	// is invalid.
	MaxErrorRate float64 `yaml:"max_error_rate"`
	// Procs, if positive, is tailgate's GOMAXPROCS while it drives the
	// service (load.Config.Procs); 0 or absent leaves the Go runtime's.
	Procs int `yaml:"procs"`
}

// Values of load.timeouts.
const (
	TimeoutsLatency = "latency"
	TimeoutsError   = "error"
)

// TimeoutsAsErrors reports whether timed-out requests count as errors.
func (l *LoadSpec) TimeoutsAsErrors() bool { return l.Timeouts == TimeoutsError }

// Target kinds.
const (
	TargetsReqgen = "reqgen"
	TargetsFile   = "file"
)

// Targets selects the requests: the bidder's generator or a vegeta targets
// file.
type Targets struct {
	// Kind is reqgen or file; inferred from URL or File when absent.
	Kind string `yaml:"kind"`
	// URL is where reqgen requests are POSTed.
	URL string `yaml:"url"`
	// Users is reqgen's user population; it must match the service's
	// (the bidder's --users). 0 means reqgen's default.
	Users int `yaml:"users"`
	// File is a vegeta targets file, relative to the rules file.
	File string `yaml:"file"`
	// Format is the file's vegeta format: http (default) or json.
	Format string `yaml:"format"`
}

// Default returns the rules every file starts from before its keys are
// applied.
func Default() *Rules {
	return &Rules{
		Service: Service{
			HealthTimeout: DefaultHealthTimeout,
			StopTimeout:   DefaultStopTimeout,
			User:          DefaultUser,
		},
		Load: LoadSpec{
			Duration:     DefaultDuration,
			Warmup:       DefaultWarmup,
			RoundWarmup:  DefaultRoundWarmup,
			Rounds:       DefaultRounds,
			Timeout:      DefaultTimeout,
			MaxErrorRate: DefaultMaxErrorRate,
		},
	}
}

// Load reads and parses the rules file at path.
func Load(path string) (*Rules, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read rules: %w", err)
	}
	return Parse(path, data)
}

var yamlLine = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// Parse parses rules from data; name is used in messages and to resolve
// relative paths.
func Parse(name string, data []byte) (*Rules, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		msg := err.Error()
		if m := yamlLine.FindStringSubmatch(msg); m != nil {
			return nil, fmt.Errorf("%s:%s: %s", name, m[1], m[2])
		}
		return nil, fmt.Errorf("%s: %s", name, strings.TrimPrefix(msg, "yaml: "))
	}
	if len(doc.Content) == 0 {
		return nil, &FieldError{File: name, Line: 1, Msg: "empty rules file"}
	}
	r := Default()
	d := &decoder{file: name}
	d.decode(doc.Content[0], reflect.ValueOf(r).Elem(), "")
	if err := d.err(); err != nil {
		return nil, err
	}
	r.Path = name
	return r, nil
}

func (r *Rules) validate(d *decoder, n *yaml.Node, path string) {
	if !has(n, "version") {
		d.errorf(n, "version", "missing (want version: %d)", CurrentVersion)
	} else if r.Version != CurrentVersion {
		d.errorf(lineOf(n, "version"), "version", "unsupported version %d (want %d)", r.Version, CurrentVersion)
	}
	if !has(n, "service") {
		d.errorf(n, "service", "missing")
	}
	if !has(n, "load") {
		d.errorf(n, "load", "missing")
	}
	r.validateFixes(d, n)
	// A timeout recorded as a latency is a lower bound: it must lie above
	// the SLO, or a service that never answers could pass on it.
	if slo := r.Gate.Config().WithDefaults().SLO; !r.Load.TimeoutsAsErrors() && r.Load.Timeout > 0 && r.Load.Timeout <= slo {
		ln := lineOf(lineOf(n, "load"), "timeout")
		d.errorf(ln, "load.timeout", "%v is not above the SLO %v: a timed-out request is recorded at the timeout, so it must be a latency that fails the SLO (raise the timeout, or set load.timeouts: error)",
			r.Load.Timeout, slo)
	}
}

func (s *Service) validate(d *decoder, n *yaml.Node, path string) {
	switch {
	case s.Build == "" && s.Bin == "":
		d.errorf(n, path, "want build (a Go package, e.g. ./cmd/bidder) or bin (an executable)")
	case s.Build != "" && s.Bin != "":
		d.errorf(lineOf(n, "bin"), join(path, "bin"), "give build or bin, not both")
	}
	if s.Port < 0 || s.Port > 65535 {
		d.errorf(lineOf(n, "port"), join(path, "port"), "%d is not a TCP port", s.Port)
	}
	if s.Health == "" {
		d.errorf(n, join(path, "health"), "missing (a URL that answers 2xx when ready, e.g. http://127.0.0.1:{{port}}/healthz)")
	} else if !strings.HasPrefix(s.Health, "http://") && !strings.HasPrefix(s.Health, "https://") {
		d.errorf(lineOf(n, "health"), join(path, "health"), "%q is not an http(s) URL", s.Health)
	}
	if s.HealthTimeout <= 0 {
		d.errorf(lineOf(n, "health_timeout"), join(path, "health_timeout"), "must be positive")
	}
	if s.StopTimeout <= 0 {
		d.errorf(lineOf(n, "stop_timeout"), join(path, "stop_timeout"), "must be positive")
	}
	if s.User == "" {
		d.errorf(lineOf(n, "user"), join(path, "user"), "must not be empty")
	}
	base := []string{VarPort, VarWorkdir, VarBin}
	checkTemplates(d, lineOf(n, "health"), join(path, "health"), s.Health, base)
	checkArgv(d, lineOf(n, "args"), join(path, "args"), s.Args, base)
	checkEnv(d, lineOf(n, "env"), join(path, "env"), s.Env, base)
	pn := lineOf(n, "prepare")
	for i, a := range s.Prepare {
		p := fmt.Sprintf("%s[%d]", join(path, "prepare"), i)
		node := pn
		if pn != nil && pn.Kind == yaml.SequenceNode && i < len(pn.Content) {
			node = pn.Content[i]
		}
		if len(a) == 0 {
			d.errorf(node, p, "empty command")
		}
		checkArgv(d, node, p, a, base)
	}
}

func (nb *Neighbour) validate(d *decoder, n *yaml.Node, path string) {
	if len(nb.Args) == 0 {
		d.errorf(n, join(path, "args"), "missing (the command to run, e.g. \"{{bin}} chaos cpu --threads 1\")")
	}
	vars := []string{VarPort, VarWorkdir, VarBin, VarPID}
	checkArgv(d, lineOf(n, "args"), join(path, "args"), nb.Args, vars)
	checkEnv(d, lineOf(n, "env"), join(path, "env"), nb.Env, vars)
}

func (l *LoadSpec) validate(d *decoder, n *yaml.Node, path string) {
	if !has(n, "rate") {
		d.errorf(n, join(path, "rate"), "missing (requests per second, e.g. 1500/s)")
	}
	if l.Duration <= 0 {
		d.errorf(lineOf(n, "duration"), join(path, "duration"), "must be positive")
	}
	if l.Rounds < 1 {
		d.errorf(lineOf(n, "rounds"), join(path, "rounds"), "%d: want at least 1", l.Rounds)
	}
	if l.Timeout <= 0 {
		d.errorf(lineOf(n, "timeout"), join(path, "timeout"), "must be positive")
	}
	if l.MaxErrorRate < 0 || l.MaxErrorRate > 1 || math.IsNaN(l.MaxErrorRate) {
		d.errorf(lineOf(n, "max_error_rate"), join(path, "max_error_rate"), "%g: want a fraction in [0,1]", l.MaxErrorRate)
	}
	switch l.Timeouts {
	case "":
		l.Timeouts = TimeoutsLatency
	case TimeoutsLatency, TimeoutsError:
	default:
		d.errorf(lineOf(n, "timeouts"), join(path, "timeouts"), "%q: want %s (recorded at the timeout, a lower bound) or %s (counted against max_error_rate)",
			l.Timeouts, TimeoutsLatency, TimeoutsError)
	}
	if l.Procs < 0 {
		d.errorf(lineOf(n, "procs"), join(path, "procs"), "%d: want a number of Ps, or 0 for the Go runtime's default", l.Procs)
	}
	if !has(n, "targets") {
		d.errorf(n, join(path, "targets"), "missing (kind: reqgen with url, or kind: file with file and format)")
	}
}

func (t *Targets) validate(d *decoder, n *yaml.Node, path string) {
	if t.Kind == "" {
		switch {
		case t.File != "":
			t.Kind = TargetsFile
		case t.URL != "":
			t.Kind = TargetsReqgen
		}
	}
	switch t.Kind {
	case TargetsReqgen:
		if t.URL == "" {
			d.errorf(n, join(path, "url"), "missing (reqgen POSTs to this URL)")
		}
		if t.File != "" || t.Format != "" {
			d.errorf(lineOf(n, "file"), path, "file and format are for kind: file, not reqgen")
		}
		if t.Users < 0 {
			d.errorf(lineOf(n, "users"), join(path, "users"), "%d is negative", t.Users)
		}
		checkTemplates(d, lineOf(n, "url"), join(path, "url"), t.URL, []string{VarPort})
	case TargetsFile:
		if t.File == "" {
			d.errorf(n, join(path, "file"), "missing (a vegeta targets file)")
		}
		if t.URL != "" {
			d.errorf(lineOf(n, "url"), join(path, "url"), "url is for kind: reqgen; a targets file names its own URLs")
		}
		if t.Users != 0 {
			d.errorf(lineOf(n, "users"), join(path, "users"), "users is for kind: reqgen")
		}
		if t.Format == "" {
			t.Format = "http"
		}
		if t.Format != "http" && t.Format != "json" {
			d.errorf(lineOf(n, "format"), join(path, "format"), "%q: want http or json", t.Format)
		}
	case "":
		d.errorf(n, path, "want kind: reqgen (with url) or kind: file (with file)")
	default:
		d.errorf(lineOf(n, "kind"), join(path, "kind"), "%q: want reqgen or file", t.Kind)
	}
}

func has(n *yaml.Node, key string) bool {
	if n == nil || n.Kind != yaml.MappingNode {
		return false
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return true
		}
	}
	return false
}

// Rate is a request rate in requests per second. It is written "1500",
// "1500/s", "90000/1m" or "2/ms".
type Rate float64

func (r *Rate) decodeScalar(s string) error {
	v, err := ParseRate(s)
	if err != nil {
		return err
	}
	*r = Rate(v)
	return nil
}

// ParseRate parses a rate ("1500", "1500/s", "90000/1m") into requests per
// second.
func ParseRate(s string) (float64, error) {
	num, per, hasPer := strings.Cut(strings.TrimSpace(s), "/")
	bad := fmt.Errorf("%q is not a rate: want requests per second like 1500 or 1500/s", s)
	f, err := strconv.ParseFloat(strings.TrimSpace(num), 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
		return 0, bad
	}
	if f <= 0 {
		return 0, fmt.Errorf("%q: rate must be positive", s)
	}
	if !hasPer {
		return f, nil
	}
	per = strings.TrimSpace(per)
	if per != "" && (per[0] < '0' || per[0] > '9') {
		per = "1" + per
	}
	d, err := time.ParseDuration(per)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("%q is not a rate: the unit after / must be a duration like s, ms or 1m", s)
	}
	return f / d.Seconds(), nil
}

// PerSecond returns the rate in requests per second.
func (r Rate) PerSecond() float64 { return float64(r) }

func (r Rate) String() string { return strconv.FormatFloat(float64(r), 'g', -1, 64) + "/s" }

// Argv is a command line: a YAML list of arguments, or a string split on
// white space (no shell: no quoting, globbing or variables beyond the
// {{templates}}).
type Argv []string

func (a *Argv) decodeNode(d *decoder, n *yaml.Node, path string) {
	switch n.Kind {
	case yaml.ScalarNode:
		if n.Tag == "!!null" {
			d.errorf(n, path, "want a command (string or list), got null")
			return
		}
		*a = strings.Fields(n.Value)
	case yaml.SequenceNode:
		out := make([]string, 0, len(n.Content))
		for i, c := range n.Content {
			s, ok := d.scalar(c, fmt.Sprintf("%s[%d]", path, i), "a string")
			if ok {
				out = append(out, s)
			}
		}
		*a = out
	default:
		d.errorf(n, path, "want a command (string or list), got %s", kindName(n))
	}
}

var templateRE = regexp.MustCompile(`\{\{\s*([^{}]*?)\s*\}\}`)

// checkTemplates reports {{names}} not in allowed and unbalanced braces.
func checkTemplates(d *decoder, n *yaml.Node, path, s string, allowed []string) {
	for _, m := range templateRE.FindAllStringSubmatch(s, -1) {
		ok := false
		for _, a := range allowed {
			ok = ok || m[1] == a
		}
		if !ok {
			d.errorf(n, path, "unknown template {{%s}} (allowed here: {{%s}})", m[1], strings.Join(allowed, "}}, {{"))
		}
	}
	rest := templateRE.ReplaceAllString(s, "")
	if strings.Contains(rest, "{{") || strings.Contains(rest, "}}") {
		d.errorf(n, path, "unbalanced {{ }} in %q", s)
	}
}

func checkArgv(d *decoder, n *yaml.Node, path string, a Argv, allowed []string) {
	for _, s := range a {
		checkTemplates(d, n, path, s, allowed)
	}
}

func checkEnv(d *decoder, n *yaml.Node, path string, env map[string]string, allowed []string) {
	for k, v := range env {
		if k == "" || strings.ContainsAny(k, "= \t") {
			d.errorf(n, path, "%q is not an environment variable name", k)
		}
		checkTemplates(d, n, join(path, k), v, allowed)
	}
}

// Expand replaces {{name}} with vars[name]; names were checked at parse
// time, so a missing one expands to "".
func Expand(s string, vars map[string]string) string {
	return templateRE.ReplaceAllStringFunc(s, func(m string) string {
		return vars[templateRE.FindStringSubmatch(m)[1]]
	})
}

// ExpandAll expands every element of a.
func ExpandAll(a []string, vars map[string]string) []string {
	out := make([]string, len(a))
	for i, s := range a {
		out[i] = Expand(s, vars)
	}
	return out
}

// Resolve returns p relative to the rules file's directory (absolute paths
// are returned as they are).
func (r *Rules) Resolve(p string) string {
	if p == "" || filepath.IsAbs(p) || r.Path == "" {
		return p
	}
	return filepath.Join(filepath.Dir(r.Path), p)
}
