package deploy

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/tailgate-ci/tailgate/internal/rules"
)

// Plan is one perf-rules service at one ref, built and ready to prepare and
// start: the glue between rules and Build/RunCommand/Start, shared by
// `tailgate run` and the experiments (which make one Plan per arm and
// apply a fix's delta through Env and Args).
type Plan struct {
	Rules *rules.Rules
	// Bin is the built (or given) service binary: {{bin}}.
	Bin string
	// Workdir is {{workdir}}: a temporary directory owned by the service
	// user, removed by Close.
	Workdir string
	// Port is {{port}}.
	Port int
	// Commit is the commit built ("" for service.bin or outside git);
	// Dirty says the working tree built had uncommitted changes.
	Commit string
	Dirty  bool
	// LogDir receives <LogPrefix>service.log, prepare.log and
	// neighbour-<name>.log.
	LogDir, LogPrefix string
	// Env and Args are added after the rules' own (a fix's delta).
	Env  []string
	Args []string
	// Progress, if set, gets one line per step (build, prepare, start).
	Progress io.Writer
}

// PlanOptions say where and at which ref to build.
type PlanOptions struct {
	// Repo is a directory inside the repository (default ".").
	Repo string
	// Ref is the git ref to build; "" or WorkingTree builds the checkout.
	Ref string
	// Port, if not 0, is {{port}}; otherwise service.port, or a free port.
	Port int
	// LogDir and LogPrefix as in Plan.
	LogDir, LogPrefix string
	Progress          io.Writer
}

// NewPlan makes the work directory, picks the port and builds the service
// (service.build at opts.Ref, or service.bin as it is). Close removes the
// work directory.
func NewPlan(ctx context.Context, r *rules.Rules, opts PlanOptions) (*Plan, error) {
	p := &Plan{Rules: r, LogDir: opts.LogDir, LogPrefix: opts.LogPrefix, Progress: opts.Progress, Port: opts.Port}
	if p.Port == 0 {
		p.Port = r.Service.Port
	}
	if p.LogDir == "" {
		p.LogDir = "."
	}
	if p.Port == 0 {
		port, err := FreePort()
		if err != nil {
			return nil, fmt.Errorf("pick a port: %w", err)
		}
		p.Port = port
	}
	wd, err := os.MkdirTemp("", "tailgate-work-")
	if err != nil {
		return nil, fmt.Errorf("make work directory: %w", err)
	}
	p.Workdir = wd
	bin, err := p.build(ctx, opts)
	if err != nil {
		p.Close()
		return nil, err
	}
	p.Bin = bin
	if err := PrepareDir(wd, r.Service.User); err != nil {
		p.Close()
		return nil, err
	}
	return p, nil
}

func (p *Plan) build(ctx context.Context, opts PlanOptions) (string, error) {
	r := p.Rules
	if r.Service.Bin != "" {
		if opts.Ref != "" && opts.Ref != WorkingTree {
			return "", fmt.Errorf("ref %s: %s gives a prebuilt service.bin, not service.build", opts.Ref, r.Path)
		}
		bin, err := filepath.Abs(r.Resolve(r.Service.Bin))
		if err != nil {
			return "", err
		}
		if _, err := os.Stat(bin); err != nil {
			return "", fmt.Errorf("service.bin: %w", err)
		}
		return bin, nil
	}
	repo := opts.Repo
	if repo == "" {
		repo = "."
	}
	if root, err := RepoRoot(ctx, repo); err == nil {
		repo = root
		if opts.Ref == "" || opts.Ref == WorkingTree {
			p.Commit, _ = git(ctx, repo, "rev-parse", "HEAD")
			st, _ := git(ctx, repo, "status", "--porcelain", "--untracked-files=no")
			p.Dirty = st != ""
		} else if sha, err := git(ctx, repo, "rev-parse", "--verify", "--quiet", opts.Ref+"^{commit}"); err == nil {
			p.Commit = sha
		}
	} else if opts.Ref != "" && opts.Ref != WorkingTree {
		return "", fmt.Errorf("ref %s: %s is not in a git repository", opts.Ref, opts.Repo)
	}
	p.logf("build: %s at %s in %s", r.Service.Build, RefName(opts.Ref), repo)
	return Build(ctx, repo, opts.Ref, r.Service.Build, filepath.Join(p.Workdir, "bin"))
}

// RefName names a ref for messages: "" is WorkingTree.
func RefName(ref string) string {
	if ref == "" {
		return WorkingTree
	}
	return ref
}

func (p *Plan) logf(format string, a ...any) {
	if p.Progress != nil {
		fmt.Fprintf(p.Progress, format+"\n", a...)
	}
}

// Vars returns the template variables; {{pid}} stays a template for Start
// to fill in.
func (p *Plan) Vars() map[string]string {
	return map[string]string{
		rules.VarPort:    strconv.Itoa(p.Port),
		rules.VarWorkdir: p.Workdir,
		rules.VarBin:     p.Bin,
		rules.VarPID:     PIDTemplate,
	}
}

// Name is the service's name for messages (the package's last element).
func (p *Plan) Name() string {
	s := p.Rules.Service.Build
	if s == "" {
		s = p.Rules.Service.Bin
	}
	return filepath.Base(s)
}

func (p *Plan) logPath(name string) string {
	return filepath.Join(p.LogDir, p.LogPrefix+name+".log")
}

// Prepare runs service.prepare, in order, as the service user.
func (p *Plan) Prepare(ctx context.Context) error {
	vars := p.Vars()
	for i, argv := range p.Rules.Service.Prepare {
		argv = rules.ExpandAll(argv, vars)
		p.logf("prepare: %s", strings.Join(argv, " "))
		err := RunCommand(ctx, Command{
			Argv: argv, Env: p.env(p.Rules.Service.Env, vars), Dir: p.Workdir,
			LogPath: p.logPath("prepare"), User: p.Rules.Service.User,
		})
		if err != nil {
			return fmt.Errorf("service.prepare[%d]: %w", i, err)
		}
	}
	return nil
}

// env turns a rules env map into sorted KEY=VALUE pairs, then p.Env.
func (p *Plan) env(env map[string]string, vars map[string]string) []string {
	out := make([]string, 0, len(env)+len(p.Env))
	for k, v := range env {
		out = append(out, k+"="+rules.Expand(v, vars))
	}
	sort.Strings(out)
	return append(out, p.Env...)
}

// Spec is the Start spec for the rules' service and neighbours.
func (p *Plan) Spec() Spec {
	s := p.Rules.Service
	vars := p.Vars()
	spec := Spec{
		Name:          p.Name(),
		Path:          p.Bin,
		Args:          append(rules.ExpandAll(s.Args, vars), p.Args...),
		Env:           p.env(s.Env, vars),
		Dir:           p.Workdir,
		LogPath:       p.logPath("service"),
		HealthURL:     rules.Expand(s.Health, vars),
		HealthTimeout: s.HealthTimeout,
		StopTimeout:   s.StopTimeout,
		User:          s.User,
	}
	for i, nb := range s.Neighbours {
		name := nb.Name
		if name == "" {
			name = fmt.Sprintf("neighbour-%d", i)
		}
		env := make([]string, 0, len(nb.Env))
		for k, v := range nb.Env {
			env = append(env, k+"="+rules.Expand(v, vars))
		}
		sort.Strings(env)
		spec.Neighbours = append(spec.Neighbours, Neighbour{
			Name: name, Argv: rules.ExpandAll(nb.Args, vars), Env: env,
			LogPath: p.logPath("neighbour-" + safeName(name)), Privileged: nb.Privileged,
		})
	}
	return spec
}

// Start starts the service and its neighbours (see Start).
func (p *Plan) Start(ctx context.Context) (*Service, error) {
	spec := p.Spec()
	p.logf("start: %s (waiting up to %s for %s)", strings.Join(append([]string{spec.Path}, spec.Args...), " "), spec.HealthTimeout, spec.HealthURL)
	return Start(ctx, spec)
}

// Close removes the work directory (the built binary and whatever the
// service wrote there).
func (p *Plan) Close() error {
	if p.Workdir == "" {
		return nil
	}
	return os.RemoveAll(p.Workdir)
}

func safeName(s string) string {
	return strings.Map(func(c rune) rune {
		if c == '/' || c == ' ' || c == os.PathSeparator {
			return '_'
		}
		return c
	}, s)
}

// FreePort picks a free loopback port below the ephemeral range, where no
// outgoing connection (ours, or another process's) can take it between
// this check and the service's bind.
func FreePort() (int, error) {
	lo, hi := 20000, 32000
	if b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range"); err == nil {
		if f := strings.Fields(string(b)); len(f) == 2 {
			if eph, err := strconv.Atoi(f[0]); err == nil && eph > 2048 {
				hi = eph
				lo = max(1024, eph-12000)
			}
		}
	}
	for range 100 {
		port := lo + rand.IntN(hi-lo)
		l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
		if err == nil {
			l.Close()
			return port, nil
		}
	}
	// Fall back on the kernel's choice.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
