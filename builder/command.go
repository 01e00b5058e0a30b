package builder

import (
	"context"
	"errors"
	"os/exec"
	"syscall"
	"time"
)

// Command runs name with args (argv only, never through a shell) in dir with
// exactly env, streaming stdout and stderr to w.Out. The command runs in its
// own process group; when ctx ends the whole group is killed, so compilers
// and their children do not outlive a timed-out build. A non-zero exit is an
// *ExitError; when ctx ended first, ctx's error is returned instead.
func Command(ctx context.Context, w *Workspace, dir string, env []string, name string, args ...string) error {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	cmd.Env = env
	cmd.Stdout = w.Out
	cmd.Stderr = w.Out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error {
		return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	}
	cmd.WaitDelay = 5 * time.Second // children holding the output pipe
	err := cmd.Run()
	if cmd.Process != nil {
		// Reap stragglers left in the group even on success.
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	}
	if err == nil {
		return nil
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return &ExitError{Cmd: name, Code: ee.ExitCode()}
	}
	return err
}
