package builder

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// Cmd is one build command: argv only, never through a shell.
type Cmd struct {
	Dir    string
	Env    []string // exactly the command's environment
	Argv   []string // Argv[0] is absolute or found on Env's PATH
	Stdout io.Writer
	Stderr io.Writer
}

// Runner runs build commands. The stager supplies one that confines every
// command of untrusted code (buildpack scripts, compilers running the app's
// build steps); a nil Workspace.Runner runs them as process groups of the
// builder's own user (HostRunner).
type Runner interface {
	// Run runs c to completion. A non-zero exit is an *ExitError; when ctx
	// ended first, ctx's error is returned and nothing c started is left
	// running.
	Run(ctx context.Context, c *Cmd) error
}

// HostRunner runs commands as the builder's user, each in its own process
// group; when ctx ends the whole group is killed, so compilers and their
// children do not outlive a timed-out build.
type HostRunner struct{}

var _ Runner = HostRunner{}

// Run implements Runner.
func (HostRunner) Run(ctx context.Context, c *Cmd) error {
	if len(c.Argv) == 0 {
		return errors.New("build command has no argv")
	}
	path, err := LookPath(c.Argv[0], c.Env)
	if err != nil {
		return err
	}
	cmd := exec.CommandContext(ctx, path, c.Argv[1:]...)
	cmd.Args[0] = c.Argv[0]
	cmd.Dir = c.Dir
	cmd.Env = c.Env
	cmd.Stdout = c.Stdout
	cmd.Stderr = c.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error {
		return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	}
	cmd.WaitDelay = 5 * time.Second // children holding the output pipe
	err = cmd.Run()
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
		return &ExitError{Cmd: filepath.Base(c.Argv[0]), Code: ee.ExitCode()}
	}
	return err
}

// LookPath resolves name against the PATH in env (not the builder's own), as
// a shell started with env would. Names with a slash are returned as they
// are, made absolute.
func LookPath(name string, env []string) (string, error) {
	if strings.Contains(name, "/") {
		return filepath.Abs(name)
	}
	path := ""
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, "PATH="); ok {
			path = v
		}
	}
	for _, dir := range filepath.SplitList(path) {
		if dir == "" || !filepath.IsAbs(dir) {
			continue
		}
		p := filepath.Join(dir, name)
		if isExecutable(p) {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s not found on the build's PATH (%s)", name, path)
}

// Command runs name with args in dir with exactly env through w's Runner,
// streaming stdout and stderr to w.Out. A non-zero exit is an *ExitError;
// when ctx ended first, ctx's error is returned instead.
func Command(ctx context.Context, w *Workspace, dir string, env []string, name string, args ...string) error {
	return w.run(ctx, &Cmd{Dir: dir, Env: env, Argv: append([]string{name}, args...), Stdout: w.Out, Stderr: w.Out})
}

func (w *Workspace) run(ctx context.Context, c *Cmd) error {
	r := w.Runner
	if r == nil {
		r = HostRunner{}
	}
	return r.Run(ctx, c)
}
