package deploy

import (
	"context"
	"fmt"
	"strings"
	"syscall"
)

// Command is a one-off command run to completion before the service starts
// (e.g. building the index the service loads). It runs as the service user,
// in Dir, with the same minimal environment as the service.
type Command struct {
	Argv    []string
	Env     []string
	Dir     string
	LogPath string
	// User as in Spec.User.
	User string
}

// RunCommand runs c and waits for it. A failure names the exit status and
// quotes the last log lines; cancelling ctx kills the command's process
// group.
func RunCommand(ctx context.Context, c Command) error {
	if len(c.Argv) == 0 {
		return fmt.Errorf("run command: empty command")
	}
	what := strings.Join(c.Argv, " ")
	cred, err := credential(c.User)
	if err != nil {
		return fmt.Errorf("run %s: %w", what, err)
	}
	p, err := startProc(c.Argv[0], c.Argv, c.Env, c.Dir, c.LogPath, cred, nil)
	if err != nil {
		return fmt.Errorf("run %s: %w", what, err)
	}
	select {
	case <-p.done:
	case <-ctx.Done():
		syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
		<-p.done
		return fmt.Errorf("run %s: %w", what, ctx.Err())
	}
	// The leader is done; nothing it started may linger into the run.
	syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
	if p.waitErr != nil {
		tail := ""
		if c.LogPath != "" {
			tail = fmt.Sprintf("\nlast lines of %s:\n%s", c.LogPath, tailFile(c.LogPath, LogLines))
		}
		return fmt.Errorf("run %s: %s%s", what, exitStatus(p.waitErr), tail)
	}
	return nil
}
