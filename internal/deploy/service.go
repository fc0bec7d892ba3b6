package deploy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Defaults for Spec fields left zero.
const (
	DefaultHealthTimeout = 30 * time.Second
	DefaultStopTimeout   = 5 * time.Second
	DefaultUser          = "nobody"
	// LogLines is how many of the service's last log lines an error quotes.
	LogLines = 20
	// healthPoll is the interval between health checks.
	healthPoll = 50 * time.Millisecond
)

// PIDTemplate in a neighbour's argv or env is replaced by the service's pid.
const PIDTemplate = "{{pid}}"

// Spec describes a service to start.
type Spec struct {
	// Name is used in messages ("bidder").
	Name string
	// Path is the executable; Args excludes argv[0].
	Path string
	Args []string
	// Env is added (KEY=VALUE) to a minimal environment: PATH, HOME=Dir,
	// LANG. The caller's environment (tokens!) is not inherited.
	Env []string
	// Dir is the working directory (and HOME).
	Dir string
	// LogPath receives the service's stdout and stderr.
	LogPath string
	// HealthURL must answer 2xx within HealthTimeout after the start.
	HealthURL     string
	HealthTimeout time.Duration
	// StopTimeout is the grace between SIGTERM and SIGKILL.
	StopTimeout time.Duration
	// User runs the service when we are root ("" means DefaultUser);
	// ignored otherwise.
	User string
	// Memlock is the RLIMIT_MEMLOCK (bytes) the service gets when we are
	// root; 0 means unlimited. An unprivileged process can otherwise lock
	// only 8 MiB, which breaks mlock-based fixes.
	Memlock uint64
	// Neighbours start once the service is healthy and stop before it.
	Neighbours []Neighbour
}

// Neighbour is a process run beside the service.
type Neighbour struct {
	Name string
	// Argv is the full command; PIDTemplate is replaced by the service pid.
	Argv []string
	Env  []string
	// LogPath receives its output.
	LogPath string
	// Privileged keeps our own user instead of the service user.
	Privileged bool
}

// Service is a started service and its neighbours.
type Service struct {
	spec Spec
	proc *proc
	nbs  []*proc
	// killed is set when Stop had to SIGKILL the service.
	killed   atomic.Bool
	warnings []string
	stopOnce sync.Once
}

// Warnings lists what could not be set up as asked but did not stop the
// start (e.g. RLIMIT_MEMLOCK could not be raised); callers report them.
func (s *Service) Warnings() []string { return s.warnings }

// proc is one child process and its exit.
type proc struct {
	name     string
	cmd      *exec.Cmd
	log      *os.File
	logPath  string
	done     chan struct{}
	waitErr  error // set before done is closed
	stopping atomic.Bool
	// diedFirst is set when the process had already exited when Stop
	// came: its exit was not requested.
	diedFirst atomic.Bool
}

// unexpected reports an exit that Stop did not cause.
func (p *proc) unexpected() bool {
	select {
	case <-p.done:
	default:
		return false
	}
	return !p.stopping.Load() || p.diedFirst.Load()
}

// Start starts the service, waits until its health URL answers 2xx and then
// starts its neighbours. If the service exits or never becomes healthy the
// error says so and quotes its last log lines; nothing is left running.
func Start(ctx context.Context, spec Spec) (*Service, error) {
	if spec.Name == "" {
		spec.Name = "service"
	}
	if spec.HealthTimeout <= 0 {
		spec.HealthTimeout = DefaultHealthTimeout
	}
	if spec.StopTimeout <= 0 {
		spec.StopTimeout = DefaultStopTimeout
	}
	if spec.LogPath == "" {
		return nil, fmt.Errorf("start %s: no log path", spec.Name)
	}
	cred, err := credential(spec.User)
	if err != nil {
		return nil, fmt.Errorf("start %s: %w", spec.Name, err)
	}
	var warnings []string
	var ambient []uintptr
	if err := raiseMemlock(spec.Memlock); err != nil {
		// Degrade, never lie: without CAP_SYS_RESOURCE (e.g. in a
		// container) the limit stays; an unprivileged service can then
		// still lock memory with CAP_IPC_LOCK, and only that, if we have it.
		if cred != nil && hasCap(capIPCLock) {
			ambient = []uintptr{capIPCLock}
			warnings = append(warnings, fmt.Sprintf("%s: %v; gave the service CAP_IPC_LOCK instead", spec.Name, err))
		} else {
			warnings = append(warnings, fmt.Sprintf("%s: %v; the service keeps the current limit", spec.Name, err))
		}
	}
	p, err := startProc(spec.Name, append([]string{spec.Path}, spec.Args...), spec.Env, spec.Dir, spec.LogPath, cred, ambient)
	if err != nil {
		return nil, fmt.Errorf("start %s: %w", spec.Name, err)
	}
	s := &Service{spec: spec, proc: p, warnings: warnings}
	if err := s.waitHealthy(ctx); err != nil {
		s.Stop(context.Background())
		if len(warnings) > 0 {
			err = fmt.Errorf("%w\n(warnings: %s)", err, strings.Join(warnings, "; "))
		}
		return nil, err
	}
	pid := strconv.Itoa(p.cmd.Process.Pid)
	for i, nb := range spec.Neighbours {
		name := nb.Name
		if name == "" {
			name = fmt.Sprintf("neighbour %d", i)
		}
		argv := make([]string, len(nb.Argv))
		for j, a := range nb.Argv {
			argv[j] = strings.ReplaceAll(a, PIDTemplate, pid)
		}
		env := make([]string, len(nb.Env))
		for j, e := range nb.Env {
			env[j] = strings.ReplaceAll(e, PIDTemplate, pid)
		}
		c := cred
		if nb.Privileged {
			c = nil
		}
		if len(argv) == 0 {
			s.Stop(context.Background())
			return nil, fmt.Errorf("start %s: %s: empty command", spec.Name, name)
		}
		np, err := startProc(name, argv, env, spec.Dir, nb.LogPath, c, nil)
		if err != nil {
			s.Stop(context.Background())
			return nil, fmt.Errorf("start %s: %s: %w", spec.Name, name, err)
		}
		s.nbs = append(s.nbs, np)
	}
	return s, nil
}

// startProc starts argv in its own process group with output to logPath,
// as cred (nil: ourselves) with the given ambient capabilities.
func startProc(name string, argv, env []string, dir, logPath string, cred *syscall.Credential, ambient []uintptr) (*proc, error) {
	var log *os.File
	if logPath != "" {
		f, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			return nil, fmt.Errorf("open log: %w", err)
		}
		log = f
	}
	path, err := exec.LookPath(argv[0])
	if err != nil {
		if log != nil {
			log.Close()
		}
		return nil, err
	}
	cmd := exec.Command(path, argv[1:]...)
	cmd.Args[0] = argv[0]
	cmd.Dir = dir
	cmd.Env = append(baseEnv(dir), env...)
	if log != nil {
		cmd.Stdout, cmd.Stderr = log, log
	}
	cmd.SysProcAttr = sysProcAttr(cred, ambient)
	p := &proc{name: name, cmd: cmd, log: log, logPath: logPath, done: make(chan struct{})}
	started := make(chan error, 1)
	go func() {
		// Pdeathsig fires when the thread that forked the child exits, not
		// the process, and the Go runtime ends a thread whose locking
		// goroutine exits. Forking from a goroutine locked to its thread
		// for the child's whole life keeps the thread (and the child)
		// alive until the child is done.
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		if err := cmd.Start(); err != nil {
			started <- err
			return
		}
		started <- nil
		p.waitErr = cmd.Wait()
		if p.log != nil {
			p.log.Close()
		}
		close(p.done)
	}()
	if err := <-started; err != nil {
		if log != nil {
			log.Close()
		}
		return nil, err
	}
	return p, nil
}

func baseEnv(dir string) []string {
	path := os.Getenv("PATH")
	if path == "" {
		path = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
	}
	env := []string{"PATH=" + path, "LANG=C.UTF-8"}
	if dir != "" {
		env = append(env, "HOME="+dir)
	}
	return env
}

func (s *Service) waitHealthy(ctx context.Context) error {
	deadline := time.NewTimer(s.spec.HealthTimeout)
	defer deadline.Stop()
	tick := time.NewTicker(healthPoll)
	defer tick.Stop()
	client := &http.Client{Timeout: time.Second}
	var last error = errors.New("no answer yet")
	for {
		if err := probe(ctx, client, s.spec.HealthURL); err == nil {
			return nil
		} else {
			last = err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("start %s: %w", s.spec.Name, ctx.Err())
		case <-s.proc.done:
			return fmt.Errorf("start %s: exited before it became healthy: %s%s",
				s.spec.Name, exitStatus(s.proc.waitErr), s.logTail())
		case <-deadline.C:
			return fmt.Errorf("start %s: not healthy after %s (GET %s: %v)%s",
				s.spec.Name, s.spec.HealthTimeout, s.spec.HealthURL, last, s.logTail())
		case <-tick.C:
		}
	}
}

func probe(ctx context.Context, client *http.Client, url string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16))
	resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("status %s", resp.Status)
	}
	return nil
}

func (s *Service) logTail() string {
	t := tailFile(s.spec.LogPath, LogLines)
	if t == "" {
		return fmt.Sprintf("\n(log %s is empty)", s.spec.LogPath)
	}
	return fmt.Sprintf("\nlast lines of %s:\n%s", s.spec.LogPath, t)
}

// exitStatus describes how a process ended.
func exitStatus(err error) string {
	if err == nil {
		return "exit status 0"
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return "killed by signal " + ws.Signal().String()
		}
	}
	return err.Error()
}

// PID returns the service's process id.
func (s *Service) PID() int { return s.proc.cmd.Process.Pid }

// LogPath returns the service's log file.
func (s *Service) LogPath() string { return s.spec.LogPath }

// Exited is closed when the service process has exited, for whatever
// reason.
func (s *Service) Exited() <-chan struct{} { return s.proc.done }

// ExitErr reports an exit that Stop did not ask for: nil while the service
// runs and after a requested stop; otherwise an error naming the exit
// status and quoting the last log lines. A run during which ExitErr became
// non-nil is invalid.
func (s *Service) ExitErr() error {
	if !s.proc.unexpected() {
		return nil
	}
	return fmt.Errorf("%s (pid %d) exited during the run: %s%s", s.spec.Name, s.PID(), exitStatus(s.proc.waitErr), s.logTail())
}

// NeighbourErr reports a neighbour that failed (exited non-zero) before
// Stop; nil otherwise. A neighbour that exits 0 has simply finished.
func (s *Service) NeighbourErr() error {
	for _, n := range s.nbs {
		if !n.unexpected() || n.waitErr == nil {
			continue
		}
		tail := ""
		if n.logPath != "" {
			tail = "\nlast lines of " + n.logPath + ":\n" + tailFile(n.logPath, LogLines)
		}
		return fmt.Errorf("neighbour %s exited during the run: %s%s", n.name, exitStatus(n.waitErr), tail)
	}
	return nil
}

// Killed reports whether Stop had to SIGKILL the service.
func (s *Service) Killed() bool { return s.killed.Load() }

// Stop stops the neighbours, then the service: SIGTERM to each process
// group, SIGKILL after the stop timeout (or when ctx ends). It returns once
// every process has exited; later calls do nothing.
func (s *Service) Stop(ctx context.Context) error {
	s.stopOnce.Do(func() { s.stop(ctx) })
	return nil
}

func (s *Service) stop(ctx context.Context) {
	var wg sync.WaitGroup
	for _, n := range s.nbs {
		wg.Add(1)
		go func() { defer wg.Done(); n.stop(ctx, s.spec.StopTimeout) }()
	}
	wg.Wait()
	if s.proc.stop(ctx, s.spec.StopTimeout) {
		s.killed.Store(true)
	}
}

// stop terminates p's process group and reports whether SIGKILL was needed.
func (p *proc) stop(ctx context.Context, grace time.Duration) bool {
	pgid := p.cmd.Process.Pid
	select {
	case <-p.done:
		p.diedFirst.Store(true)
		p.stopping.Store(true)
		// The leader is gone; reap anything it left in its group.
		syscall.Kill(-pgid, syscall.SIGKILL)
		return false
	default:
	}
	p.stopping.Store(true)
	syscall.Kill(-pgid, syscall.SIGTERM)
	t := time.NewTimer(grace)
	defer t.Stop()
	killed := false
	select {
	case <-p.done:
	case <-t.C:
		killed = true
	case <-ctx.Done():
		killed = true
	}
	if killed && p.log != nil {
		fmt.Fprintf(p.log, "tailgate: %s did not exit within %s of SIGTERM; sending SIGKILL\n", p.name, grace)
	}
	syscall.Kill(-pgid, syscall.SIGKILL)
	<-p.done
	return killed
}
