package deploy

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// The test binary doubles as the service under test: with FAKE_SERVICE set
// it runs fakeService instead of the tests, so every case starts a real
// process with a real HTTP health endpoint.
const fakeEnv = "FAKE_SERVICE"

// fakeBin is a copy of the test binary in a world-readable directory, so
// that it can run as an unprivileged user when the tests run as root.
var fakeBin string

func TestMain(m *testing.M) {
	if mode := os.Getenv(fakeEnv); mode != "" {
		fakeService(mode, os.Args[1:])
		return
	}
	dir, err := os.MkdirTemp("", "deploy-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := func() int {
		defer os.RemoveAll(dir)
		if err := copyExecutable(dir); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		return m.Run()
	}()
	os.Exit(code)
}

func copyExecutable(dir string) error {
	self, err := os.Executable()
	if err != nil {
		return err
	}
	data, err := os.ReadFile(self)
	if err != nil {
		return err
	}
	fakeBin = filepath.Join(dir, "fake-service")
	if err := os.WriteFile(fakeBin, data, 0o755); err != nil {
		return err
	}
	return os.Chmod(dir, 0o755)
}

// fakeService is a tiny HTTP service whose misbehaviour is chosen by mode.
func fakeService(mode string, args []string) {
	addr := ""
	if len(args) > 0 {
		addr = args[0]
	}
	fmt.Println("fake service starting, mode", mode)
	switch mode {
	case "exit-at-start":
		fmt.Println("loading index: open /nonexistent/index: no such file or directory")
		os.Exit(3)
	case "ignore-term":
		signal.Ignore(syscall.SIGTERM)
	case "sleep":
		// a neighbour: runs until stopped, writes its args.
		fmt.Println("neighbour args:", strings.Join(args, " "))
		for {
			time.Sleep(time.Hour)
		}
	case "fail":
		fmt.Println("neighbour failing")
		os.Exit(7)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) {
		if mode == "never-healthy" {
			http.Error(w, "warming up forever", http.StatusServiceUnavailable)
			return
		}
		io.WriteString(w, "ok")
	})
	mux.HandleFunc("/crash", func(w http.ResponseWriter, r *http.Request) {
		fmt.Println("panic: runtime error: invalid memory address (simulated)")
		os.Exit(2)
	})
	mux.HandleFunc("/info", func(w http.ResponseWriter, r *http.Request) {
		var lim unix.Rlimit
		unix.Getrlimit(unix.RLIMIT_MEMLOCK, &lim)
		// Lock 16 MiB, twice the unprivileged default limit.
		buf := make([]byte, 16<<20)
		mlock := "ok"
		if err := unix.Mlock(buf); err != nil {
			mlock = err.Error()
		} else {
			unix.Munlock(buf)
		}
		fmt.Fprintf(w, "mlock=%s ", mlock)
		fmt.Fprintf(w, "uid=%d memlock=%d home=%s secret=%s delta=%s args=%s", os.Getuid(), lim.Cur, os.Getenv("HOME"),
			os.Getenv("TEST_SECRET"), os.Getenv("FAKE_DELTA"), strings.Join(os.Args[1:], " "))
	})
	if err := http.ListenAndServe(addr, mux); err != nil {
		fmt.Println("listen:", err)
		os.Exit(1)
	}
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// spec returns a Spec for the fake service in mode.
func spec(t *testing.T, mode string) Spec {
	t.Helper()
	addr := freeAddr(t)
	dir := t.TempDir()
	return Spec{
		Name:          "fake",
		Path:          fakeBin,
		Args:          []string{addr},
		Env:           []string{fakeEnv + "=" + mode},
		Dir:           "/",
		LogPath:       filepath.Join(dir, "service.log"),
		HealthURL:     "http://" + addr + "/healthz",
		HealthTimeout: 10 * time.Second,
		StopTimeout:   5 * time.Second,
	}
}

func TestStartHealthyAndStop(t *testing.T) {
	t.Setenv("TEST_SECRET", "token-that-must-not-leak")
	sp := spec(t, "healthy")
	s, err := Start(context.Background(), sp)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get(strings.TrimSuffix(sp.HealthURL, "/healthz") + "/info")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	info := string(body)
	if strings.Contains(info, "token-that-must-not-leak") {
		t.Errorf("service inherited the caller's environment: %s", info)
	}
	if !strings.Contains(info, "home=/ ") {
		t.Errorf("HOME not set to the working directory: %s", info)
	}
	if os.Geteuid() == 0 {
		uid, _, err := LookupUser(DefaultUser)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(info, fmt.Sprintf("uid=%d ", uid)) {
			t.Errorf("service did not drop root: %s", info)
		}
		raised := strings.Contains(info, fmt.Sprintf("memlock=%d ", uint64(unix.RLIM_INFINITY)))
		warned := len(s.Warnings()) == 1 && strings.Contains(s.Warnings()[0], "RLIMIT_MEMLOCK")
		if raised == warned {
			t.Errorf("RLIMIT_MEMLOCK raised=%v but warnings=%q: %s", raised, s.Warnings(), info)
		}
		// Either way (the limit raised, or CAP_IPC_LOCK instead) the
		// unprivileged service can lock more than the 8 MiB default.
		if (raised || warned && strings.Contains(s.Warnings()[0], "CAP_IPC_LOCK")) && !strings.Contains(info, "mlock=ok") {
			t.Errorf("service cannot mlock 16 MiB: %s (warnings %q)", info, s.Warnings())
		}
		t.Logf("memlock: %s; warnings %q", info, s.Warnings())
	}
	if err := s.ExitErr(); err != nil {
		t.Fatalf("ExitErr while running = %v", err)
	}
	if err := s.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	select {
	case <-s.Exited():
	default:
		t.Fatal("Exited not closed after Stop")
	}
	if err := s.ExitErr(); err != nil {
		t.Fatalf("ExitErr after a requested stop = %v", err)
	}
	if s.Killed() {
		t.Fatal("a service that honours SIGTERM was SIGKILLed")
	}
	log, _ := os.ReadFile(sp.LogPath)
	if !strings.Contains(string(log), "fake service starting") {
		t.Fatalf("stdout not captured: %q", log)
	}
}

func TestStartFailures(t *testing.T) {
	for _, tc := range []struct {
		mode string
		want []string
	}{
		{"exit-at-start", []string{"exited before it became healthy: exit status 3", "open /nonexistent/index"}},
		{"never-healthy", []string{"not healthy after 1s", "503", "fake service starting"}},
	} {
		t.Run(tc.mode, func(t *testing.T) {
			sp := spec(t, tc.mode)
			sp.HealthTimeout = time.Second
			s, err := Start(context.Background(), sp)
			if err == nil {
				s.Stop(context.Background())
				t.Fatal("Start succeeded")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q\nwant it to contain %q", err, w)
				}
			}
		})
	}
}

func TestStartMissingBinary(t *testing.T) {
	sp := spec(t, "healthy")
	sp.Path = filepath.Join(t.TempDir(), "no-such-binary")
	if _, err := Start(context.Background(), sp); err == nil || !strings.Contains(err.Error(), "no-such-binary") {
		t.Fatalf("err = %v", err)
	}
}

func TestCrashMidRun(t *testing.T) {
	sp := spec(t, "healthy")
	s, err := Start(context.Background(), sp)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Stop(context.Background())
	http.Get(strings.TrimSuffix(sp.HealthURL, "/healthz") + "/crash")
	<-s.Exited()
	err = s.ExitErr()
	if err == nil {
		t.Fatal("ExitErr = nil after a crash")
	}
	for _, w := range []string{"exited during the run: exit status 2", "invalid memory address"} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q\nwant it to contain %q", err, w)
		}
	}
	// Stopping a crashed service does not turn the crash into a requested
	// exit.
	s.Stop(context.Background())
	if s.ExitErr() == nil {
		t.Fatal("ExitErr = nil after stopping a crashed service")
	}
}

func TestStopEscalatesToSIGKILL(t *testing.T) {
	sp := spec(t, "ignore-term")
	sp.StopTimeout = 300 * time.Millisecond
	s, err := Start(context.Background(), sp)
	if err != nil {
		t.Fatal(err)
	}
	s.Stop(context.Background())
	if !s.Killed() {
		t.Fatal("Killed = false for a service that ignores SIGTERM")
	}
	if err := s.ExitErr(); err != nil {
		t.Fatalf("ExitErr after a requested stop = %v", err)
	}
	log, _ := os.ReadFile(sp.LogPath)
	if !strings.Contains(string(log), "sending SIGKILL") {
		t.Fatalf("log does not record the SIGKILL: %q", log)
	}
}

func TestNeighbours(t *testing.T) {
	sp := spec(t, "healthy")
	dir := filepath.Dir(sp.LogPath)
	sp.Neighbours = []Neighbour{
		{Name: "sleeper", Argv: []string{fakeBin, "--pid", PIDTemplate}, Env: []string{fakeEnv + "=sleep"}, LogPath: filepath.Join(dir, "sleeper.log")},
		{Name: "failer", Argv: []string{fakeBin}, Env: []string{fakeEnv + "=fail"}, LogPath: filepath.Join(dir, "failer.log"), Privileged: true},
	}
	s, err := Start(context.Background(), sp)
	if err != nil {
		t.Fatal(err)
	}
	<-s.nbs[1].done
	sleeperLog := filepath.Join(dir, "sleeper.log")
	want := "--pid " + strconv.Itoa(s.PID())
	waitForFile(t, sleeperLog, want)
	if err := s.NeighbourErr(); err == nil || !strings.Contains(err.Error(), "neighbour failer exited during the run: exit status 7") {
		t.Fatalf("NeighbourErr = %v", err)
	}
	s.Stop(context.Background())
	select {
	case <-s.nbs[0].done:
	default:
		t.Fatal("neighbour still running after Stop")
	}
}

// waitForFile waits (up to a generous bound, not a timing assertion) until
// the file at path contains want.
func waitForFile(t *testing.T, path, want string) {
	t.Helper()
	for i := 0; i < 600; i++ {
		b, _ := os.ReadFile(path)
		if strings.Contains(string(b), want) {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	b, _ := os.ReadFile(path)
	t.Fatalf("%s never contained %q: %q", path, want, b)
}

func TestRunCommand(t *testing.T) {
	dir := t.TempDir()
	logPath := filepath.Join(dir, "prepare.log")
	ok := Command{Argv: []string{fakeBin}, Env: []string{fakeEnv + "=exit-at-start"}, Dir: "/", LogPath: logPath}
	err := RunCommand(context.Background(), ok)
	if err == nil || !strings.Contains(err.Error(), "exit status 3") || !strings.Contains(err.Error(), "no such file") {
		t.Fatalf("err = %v", err)
	}
	if err := RunCommand(context.Background(), Command{Argv: []string{"true"}, Dir: "/"}); err != nil {
		t.Fatal(err)
	}
	if err := RunCommand(context.Background(), Command{}); err == nil {
		t.Fatal("empty command accepted")
	}
}

// TestBuildAtRef builds a tiny module at an older commit through a git
// worktree, and the working tree with an uncommitted change.
func TestBuildAtRef(t *testing.T) {
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("git not installed")
	}
	repo := t.TempDir()
	run := func(args ...string) string {
		t.Helper()
		cmd := exec.Command(args[0], args[1:]...)
		cmd.Dir = repo
		cmd.Env = append(os.Environ(), "GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@example.com",
			"GIT_COMMITTER_NAME=t", "GIT_COMMITTER_EMAIL=t@example.com")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%v: %v\n%s", args, err, out)
		}
		return strings.TrimSpace(string(out))
	}
	write := func(msg string) {
		t.Helper()
		src := fmt.Sprintf("package main\n\nimport \"fmt\"\n\nfunc main() { fmt.Print(%q) }\n", msg)
		if err := os.WriteFile(filepath.Join(repo, "cmd", "tiny", "main.go"), []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	os.MkdirAll(filepath.Join(repo, "cmd", "tiny"), 0o755)
	os.WriteFile(filepath.Join(repo, "go.mod"), []byte("module example.com/tiny\n\ngo 1.22\n"), 0o644)
	run("git", "init", "-q")
	write("v1")
	run("git", "add", ".")
	run("git", "commit", "-q", "-m", "v1")
	run("git", "tag", "v1")
	write("v2")
	run("git", "commit", "-q", "-am", "v2")
	write("v3 uncommitted")

	ctx := context.Background()
	out := t.TempDir()
	for _, tc := range []struct{ ref, want string }{
		{"v1", "v1"},
		{"HEAD", "v2"},
		{"", "v3 uncommitted"},
		{WorkingTree, "v3 uncommitted"},
	} {
		bin, err := Build(ctx, repo, tc.ref, "./cmd/tiny", filepath.Join(out, "ref"+tc.ref))
		if err != nil {
			t.Fatalf("Build %q: %v", tc.ref, err)
		}
		if got, err := exec.Command(bin).Output(); err != nil || string(got) != tc.want {
			t.Fatalf("binary built at %q prints %q (%v), want %q", tc.ref, got, err, tc.want)
		}
	}
	if wts := run("git", "worktree", "list"); strings.Count(wts, "\n") != 0 {
		t.Fatalf("worktrees left behind:\n%s", wts)
	}
	if _, err := Build(ctx, repo, "no-such-ref", "./cmd/tiny", out); err == nil || !strings.Contains(err.Error(), `unknown git ref "no-such-ref"`) {
		t.Fatalf("bad ref: err = %v", err)
	}
	os.WriteFile(filepath.Join(repo, "cmd", "tiny", "main.go"), []byte("package main\n\nfunc main() { undefined() }\n"), 0o644)
	if _, err := Build(ctx, repo, "", "./cmd/tiny", out); err == nil || !strings.Contains(err.Error(), "undefined") {
		t.Fatalf("compile error: err = %v", err)
	}
	if got := run("git", "status", "--porcelain"); !strings.Contains(got, "main.go") {
		t.Fatalf("working tree changed unexpectedly: %q", got)
	}
}

// TestServiceSurvivesThreadExits: Pdeathsig fires when the thread that
// forked the child exits, and the Go runtime ends a thread whose locked
// goroutine returns. Start is called here from such a goroutine; the
// service must outlive it.
func TestServiceSurvivesThreadExits(t *testing.T) {
	sp := spec(t, "healthy")
	var s *Service
	errc := make(chan error)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread exits with the goroutine
		var err error
		s, err = Start(context.Background(), sp)
		errc <- err
	}()
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	defer s.Stop(context.Background())
	for i := 0; i < 100; i++ {
		resp, err := http.Get(sp.HealthURL)
		if err != nil {
			t.Fatalf("service died after the starting thread exited: %v (exit: %v)", err, s.ExitErr())
		}
		resp.Body.Close()
	}
	if err := s.ExitErr(); err != nil {
		t.Fatal(err)
	}
}

// TestConcurrentStartStop starts and stops several services at once, as
// an experiment with base and head arms may; run under -race in CI.
func TestConcurrentStartStop(t *testing.T) {
	const n = 3
	errs := make(chan error, n)
	for i := 0; i < n; i++ {
		sp := spec(t, "healthy")
		go func() {
			s, err := Start(context.Background(), sp)
			if err != nil {
				errs <- err
				return
			}
			go s.ExitErr() // readers race with Stop
			s.Stop(context.Background())
			if err := s.ExitErr(); err != nil {
				errs <- err
				return
			}
			errs <- nil
		}()
	}
	for i := 0; i < n; i++ {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
}
