package stager

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/strata-paas/strata/builder"
	"github.com/strata-paas/strata/deploy/driver/process/isolate"
)

// Confinement says whether build commands are confined.
type Confinement int

const (
	// ConfineAuto confines builds when the stager runs as root on Linux
	// with a cgroup memory controller and a probe build command runs
	// confined; otherwise builds run as the builder's user (logged as
	// "stager.unconfined").
	ConfineAuto Confinement = iota
	// ConfineNever runs build commands as process groups of the builder's
	// user.
	ConfineNever
	// ConfineAlways confines builds; New fails when it cannot.
	ConfineAlways
)

// Defaults of the build confinement.
const (
	DefaultBuildUID      = 1_999_999 // below the process driver's instance users (2,000,000 up)
	DefaultBuildMemoryMB = 4096
	DefaultBuildPidsMax  = 4096
	buildTmpMB           = 512 // the private /tmp; builds use TMPDIR in their sandbox
	buildCgroupParent    = "strata-builds"
)

// confiner runs build commands with the instance confinement of the process
// driver (package isolate): own PID, mount, UTS and IPC namespaces, a cgroup
// with memory and pids limits, an unprivileged user, every mount read-only
// but the build's own directories, and directories other users cannot
// search (the data directory) hidden. See docs/buildpacks.md.
type confiner struct {
	cgroups  *isolate.Cgroups
	parent   string // cgroup parent of this stager's builds
	uid      int
	memoryMB int
	pidsMax  int
	seq      atomic.Int64
}

// newConfiner checks that builds can be confined here and probes it.
func newConfiner(cfg Config) (*confiner, error) {
	if runtime.GOOS != "linux" {
		return nil, errors.New("build confinement needs Linux")
	}
	if os.Geteuid() != 0 {
		return nil, errors.New("the builder does not run as root")
	}
	cgs, err := isolate.DetectCgroups()
	if err != nil {
		return nil, err
	}
	c := &confiner{cgroups: cgs, parent: filepath.Join(buildCgroupParent, cacheHash(cfg.WorkDir)),
		uid: cfg.BuildUID, memoryMB: cfg.BuildMemoryMB, pidsMax: cfg.BuildPidsMax}
	cgs.Sweep(c.parent)
	dir, err := os.MkdirTemp(cfg.WorkDir, "probe-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var out bytes.Buffer // one writer for both streams: one copying goroutine
	r := c.runner([]string{dir}, "probe")
	if err := r.Run(ctx, &builder.Cmd{Dir: dir, Env: []string{"PATH=/usr/bin:/bin"}, Argv: []string{"/bin/sh", "-c", "exit 0"}, Stdout: &out, Stderr: &out}); err != nil {
		return nil, fmt.Errorf("a probe build command failed: %w %s", err, bytes.TrimSpace(out.Bytes()))
	}
	return c, nil
}

// runner returns the Runner of one build, whose commands may write only
// writable (the build's sandbox and cache dirs).
func (c *confiner) runner(writable []string, name string) *confinedRunner {
	return &confinedRunner{c: c, writable: writable, name: name}
}

type confinedRunner struct {
	c        *confiner
	writable []string
	name     string
}

var _ builder.Runner = (*confinedRunner)(nil)

// Run implements builder.Runner: the command runs confined as the build
// user; the writable dirs are handed to that user first (files the builder
// itself wrote there since the last command included).
func (r *confinedRunner) Run(ctx context.Context, cmd *builder.Cmd) error {
	if len(cmd.Argv) == 0 {
		return errors.New("build command has no argv")
	}
	path, err := builder.LookPath(cmd.Argv[0], cmd.Env)
	if err != nil {
		return err
	}
	var writable []string
	for _, w := range r.writable {
		real, err := filepath.EvalSymlinks(w)
		if err != nil {
			return err
		}
		writable = append(writable, real)
	}
	dir, err := filepath.EvalSymlinks(cmd.Dir)
	if err != nil {
		return err
	}
	if err := isolate.PrepareDirs(writable, r.c.uid, r.c.uid); err != nil {
		return err
	}
	result, err := os.CreateTemp("", "strata-build-result-")
	if err != nil {
		return err
	}
	defer os.Remove(result.Name())
	defer result.Close()
	id := fmt.Sprintf("%s-%d", r.name, r.c.seq.Add(1))
	cg, err := r.c.cgroups.Create(ctx, r.c.parent, id, isolate.Limits{MemoryMB: r.c.memoryMB, PidsMax: r.c.pidsMax})
	if err != nil {
		return err
	}
	defer cg.Destroy(context.Background())

	// One pipe when both streams go to the same writer, which need not be
	// safe for concurrent use; else one copy per stream.
	var copies sync.WaitGroup
	pipe := func(w io.Writer) (*os.File, error) {
		r, pw, err := os.Pipe()
		if err != nil {
			return nil, err
		}
		copies.Add(1)
		go func() { defer copies.Done(); io.Copy(writerOr(w), r); r.Close() }()
		return pw, nil
	}
	outW, err := pipe(cmd.Stdout)
	if err != nil {
		return err
	}
	errW := outW
	if cmd.Stderr != cmd.Stdout {
		if errW, err = pipe(cmd.Stderr); err != nil {
			outW.Close()
			copies.Wait()
			return err
		}
	}
	env := cmd.Env
	if env == nil {
		env = []string{}
	}
	init, err := isolate.Start(ctx, &isolate.InitConfig{
		Hostname: "build", Dir: dir, Writable: writable, Argv: append([]string{path}, cmd.Argv[1:]...),
		Env: env, UID: r.c.uid, GID: r.c.uid, TmpMB: buildTmpMB,
	}, isolate.Files{Stdout: outW, Stderr: errW, Result: result}, cg)
	outW.Close()
	if errW != outW {
		errW.Close()
	}
	if err != nil {
		copies.Wait()
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("start a confined build command: %w", err)
	}
	done := make(chan struct{})
	go func() {
		select {
		case <-ctx.Done():
			_ = init.Process.Kill() // the kernel kills the rest of its PID namespace
		case <-done:
		}
	}()
	_ = init.Wait()
	close(done)
	copies.Wait()
	if ctx.Err() != nil {
		return ctx.Err()
	}
	res, ok := isolate.ReadResult(result.Name())
	if !ok {
		return fmt.Errorf("confined build command %s ended without a result (killed, or out of memory?)", filepath.Base(path))
	}
	if res.ExitCode != 0 {
		return &builder.ExitError{Cmd: filepath.Base(path), Code: res.ExitCode}
	}
	return nil
}

func writerOr(w io.Writer) io.Writer {
	if w == nil {
		return io.Discard
	}
	return w
}
