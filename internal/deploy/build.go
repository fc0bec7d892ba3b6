// Package deploy owns getting a service under test running: building a Go
// package at a git ref (in a throw-away git worktree, so the caller's
// checkout is never touched), running one-off prepare commands, starting the
// service and its neighbours as an unprivileged user with their output in a
// log file, waiting for its health URL, noticing when it dies, and stopping
// it (SIGTERM, then SIGKILL). Plan ties these to a perf-rules file
// (templates, work directory, port, logs), for `tailgate run` and the
// experiments alike.
package deploy

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// WorkingTree as a ref means "the checkout as it is, uncommitted changes
// included" (as does the empty ref).
const WorkingTree = "WORKTREE"

// Build compiles the Go package pkg of the repository at repoDir, as it is
// at ref, into outDir and returns the binary's path. pkg is relative to the
// repository root (./cmd/bidder) or an import path. A ref other than ""
// or WorkingTree is checked out with `git worktree add --detach` into a
// temporary directory that is removed afterwards.
func Build(ctx context.Context, repoDir, ref, pkg, outDir string) (string, error) {
	if pkg == "" {
		return "", fmt.Errorf("build: no package given")
	}
	if err := os.MkdirAll(outDir, 0o755); err != nil {
		return "", fmt.Errorf("build %s: %w", pkg, err)
	}
	outDir, err := filepath.Abs(outDir)
	if err != nil {
		return "", fmt.Errorf("build %s: %w", pkg, err)
	}
	src := repoDir
	what := pkg + " (working tree)"
	if ref != "" && ref != WorkingTree {
		sha, err := git(ctx, repoDir, "rev-parse", "--verify", "--quiet", ref+"^{commit}")
		if err != nil {
			return "", fmt.Errorf("build %s: unknown git ref %q in %s", pkg, ref, repoDir)
		}
		tmp, err := os.MkdirTemp("", "tailgate-worktree-")
		if err != nil {
			return "", fmt.Errorf("build %s: %w", pkg, err)
		}
		if _, err := git(ctx, repoDir, "worktree", "add", "--detach", tmp, sha); err != nil {
			os.RemoveAll(tmp)
			return "", fmt.Errorf("build %s at %s: %w", pkg, ref, err)
		}
		defer func() {
			// A fresh context: cleanup must run even when ctx was cancelled.
			git(context.Background(), repoDir, "worktree", "remove", "--force", tmp)
			os.RemoveAll(tmp)
			git(context.Background(), repoDir, "worktree", "prune")
		}()
		src = tmp
		what = fmt.Sprintf("%s at %s (%.12s)", pkg, ref, sha)
	}
	name := filepath.Base(strings.TrimRight(pkg, "/"))
	if name == "." || name == "" {
		name = "service"
	}
	bin := filepath.Join(outDir, name)
	// A relative package is built from its own directory, so a module in a
	// subdirectory of the repository works too.
	dir, target := src, pkg
	if strings.HasPrefix(pkg, ".") {
		dir, target = filepath.Join(src, pkg), "."
	}
	// -buildvcs=false: git refuses to stamp repositories owned by another
	// user (we often run as root), and the ref is recorded by the caller.
	cmd := exec.CommandContext(ctx, "go", "build", "-buildvcs=false", "-o", bin, target)
	cmd.Dir = dir
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("build %s: %w\n%s", what, err, lastLines(out.Bytes(), 20))
	}
	return bin, nil
}

// git runs git in dir and returns its trimmed stdout.
func git(ctx context.Context, dir string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, "git", append([]string{"-C", dir}, args...)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("git %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return strings.TrimSpace(stdout.String()), nil
}

// RepoRoot returns the top of the git repository containing dir.
func RepoRoot(ctx context.Context, dir string) (string, error) {
	return git(ctx, dir, "rev-parse", "--show-toplevel")
}

// lastLines returns the last n lines of b.
func lastLines(b []byte, n int) string {
	s := strings.TrimRight(string(b), "\n")
	if s == "" {
		return ""
	}
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// tailFile returns the last n lines of the file at path (reading at most its
// last 64 KiB).
func tailFile(path string, n int) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	const max = 64 << 10
	if st, err := f.Stat(); err == nil && st.Size() > max {
		f.Seek(st.Size()-max, 0)
	}
	var buf bytes.Buffer
	buf.ReadFrom(f)
	return lastLines(buf.Bytes(), n)
}
