package drivertest

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/strata-paas/strata/api"
	"github.com/strata-paas/strata/deploy/driver"
)

// Commands are the driver's commands for each case. An empty command skips
// the cases that need it.
type Commands struct {
	Exit3      string // exits with code 3 at once
	Forever    string // prints "ready" once set up, runs until stopped; on SIGTERM exits 0
	IgnoreTerm string // prints "ready" once it ignores SIGTERM; runs until SIGKILL
	// PrintEnv prints $STRATA_TEST_VALUE on one stdout line and its working
	// dir on the next, "stderr" on stderr, and exits 0.
	PrintEnv string
	// SpawnChild starts a long-lived child that ignores SIGTERM, writes the
	// child's PID to ./child.pid, prints "ready", and runs until stopped. Only drivers of
	// real processes have one. The PID may be followed by the child's PID
	// namespace as readlink /proc/self/ns/pid prints it ("pid:[N]"); the
	// suite then looks for the child in that namespace.
	SpawnChild string
	// SpawnChildExit starts a long-lived child that ignores SIGTERM, writes
	// the child's PID to ./child.pid and exits 0 at once.
	SpawnChildExit string
}

// ShellCommands are the Commands for drivers that run /bin/sh -c.
func ShellCommands() Commands {
	return Commands{
		Exit3:          "exit 3",
		Forever:        "trap 'exit 0' TERM; echo ready; while :; do sleep 0.05; done",
		IgnoreTerm:     "trap '' TERM; echo ready; while :; do sleep 0.05; done",
		PrintEnv:       `echo "$STRATA_TEST_VALUE"; pwd; echo stderr >&2`,
		SpawnChild:     `(trap '' TERM; exec sleep 1000) & echo $! $(readlink /proc/self/ns/pid) > child.pid; trap 'exit 0' TERM; echo ready; while :; do sleep 0.05; done`,
		SpawnChildExit: `(trap '' TERM; exec sleep 1000) & echo $! $(readlink /proc/self/ns/pid) > child.pid; exit 0`,
	}
}

// Options configure the suite.
type Options struct {
	Commands Commands
}

// Buffer is an io.Writer safe for concurrent use, for Spec.Stdout/Stderr.
type Buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

// Write appends p.
func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

// String returns everything written so far.
func (b *Buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// Run runs the conformance suite against drivers made by newDriver.
func Run(t *testing.T, newDriver func(t *testing.T) driver.Driver, opts Options) {
	c := opts.Commands
	ctx := func(t *testing.T) context.Context {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		t.Cleanup(cancel)
		return ctx
	}
	start := func(t *testing.T, d driver.Driver, cmd string, env ...string) (*driver.Spec, *Buffer, *Buffer) {
		t.Helper()
		out, errb := &Buffer{}, &Buffer{}
		spec := &driver.Spec{ID: "i-" + strings.ReplaceAll(t.Name(), "/", "-"), Dir: t.TempDir(), Command: cmd,
			Env: append([]string{"PATH=/usr/local/bin:/usr/bin:/bin"}, env...), MemoryMB: 64, Stdout: out, Stderr: errb}
		h, err := d.Start(ctx(t), spec)
		if err != nil {
			t.Fatalf("Start(%q): %v", cmd, err)
		}
		if h.ID != spec.ID || h.Version != driver.HandleVersion || h.Driver == "" {
			t.Fatalf("Start returned handle %+v, want id %s, version %d and a driver name", h, spec.ID, driver.HandleVersion)
		}
		t.Cleanup(func() { _ = d.Destroy(context.Background(), spec.ID) })
		if cmd == c.Forever || cmd == c.IgnoreTerm || cmd == c.SpawnChild {
			WaitFor(t, "the instance to print ready", func() bool { return strings.HasPrefix(out.String(), "ready\n") })
		}
		return spec, out, errb
	}
	need := func(t *testing.T, cmds ...string) {
		for _, c := range cmds {
			if c == "" {
				t.Skip("driver has no command for this case")
			}
		}
	}

	t.Run("ExitCode", func(t *testing.T) {
		need(t, c.Exit3)
		d := newDriver(t)
		spec, _, _ := start(t, d, c.Exit3)
		res, err := d.Wait(ctx(t), spec.ID)
		if err != nil {
			t.Fatalf("Wait: %v", err)
		}
		if res.ExitCode != 3 || res.Signal != "" {
			t.Fatalf("Wait = %+v, want exit code 3 and no signal", res)
		}
		// Wait again after exit returns the same result.
		if res2, err := d.Wait(ctx(t), spec.ID); err != nil || res2.ExitCode != 3 {
			t.Fatalf("second Wait = %+v, %v; want exit code 3", res2, err)
		}
		if err := d.Stop(ctx(t), spec.ID, time.Second); err != nil {
			t.Fatalf("Stop after exit: %v, want nil", err)
		}
	})

	t.Run("StopHonoursSIGTERM", func(t *testing.T) {
		need(t, c.Forever)
		d := newDriver(t)
		spec, _, _ := start(t, d, c.Forever)
		wctx, cancel := context.WithTimeout(ctx(t), 100*time.Millisecond)
		if _, err := d.Wait(wctx, spec.ID); err == nil {
			t.Fatalf("Wait returned before the instance was stopped")
		}
		cancel()
		// A long grace: the instance must exit on SIGTERM, not on SIGKILL.
		if err := d.Stop(ctx(t), spec.ID, time.Minute); err != nil {
			t.Fatalf("Stop: %v", err)
		}
		res, err := d.Wait(ctx(t), spec.ID)
		if err != nil {
			t.Fatalf("Wait: %v", err)
		}
		if res.ExitCode != 0 || res.Signal != "" {
			t.Fatalf("Wait after Stop = %+v, want exit code 0 from the SIGTERM handler", res)
		}
	})

	t.Run("StopEscalatesToSIGKILL", func(t *testing.T) {
		need(t, c.IgnoreTerm)
		d := newDriver(t)
		spec, _, _ := start(t, d, c.IgnoreTerm)
		if err := d.Stop(ctx(t), spec.ID, 200*time.Millisecond); err != nil {
			t.Fatalf("Stop: %v", err)
		}
		res, err := d.Wait(ctx(t), spec.ID)
		if err != nil {
			t.Fatalf("Wait: %v", err)
		}
		if res.Signal != "killed" {
			t.Fatalf("Wait after Stop = %+v, want killed by SIGKILL", res)
		}
	})

	childPID := func(t *testing.T, spec *driver.Spec) Proc {
		t.Helper()
		var child Proc
		WaitFor(t, "child.pid to be written", func() bool {
			data, err := os.ReadFile(filepath.Join(spec.Dir, "child.pid"))
			if err != nil {
				return false
			}
			f := strings.Fields(string(data))
			if len(f) == 0 {
				return false
			}
			child.PID, err = strconv.Atoi(f[0])
			if len(f) > 1 {
				child.NS = f[1]
			}
			return err == nil && child.PID > 0
		})
		return child
	}

	t.Run("ProcessTreeDiesOnStop", func(t *testing.T) {
		need(t, c.SpawnChild)
		d := newDriver(t)
		spec, _, _ := start(t, d, c.SpawnChild)
		child := childPID(t, spec)
		if !child.Alive() {
			t.Fatalf("child %v is not running before Stop", child)
		}
		if err := d.Stop(ctx(t), spec.ID, 300*time.Millisecond); err != nil {
			t.Fatalf("Stop: %v", err)
		}
		if _, err := d.Wait(ctx(t), spec.ID); err != nil {
			t.Fatalf("Wait: %v", err)
		}
		WaitFor(t, fmt.Sprintf("child %v (ignores SIGTERM) to die with its instance", child), func() bool { return !child.Alive() })
	})

	t.Run("LeftoversDieOnExit", func(t *testing.T) {
		need(t, c.SpawnChildExit)
		d := newDriver(t)
		spec, _, _ := start(t, d, c.SpawnChildExit)
		res, err := d.Wait(ctx(t), spec.ID)
		if err != nil || res.ExitCode != 0 {
			t.Fatalf("Wait = %+v, %v; want exit 0", res, err)
		}
		child := childPID(t, spec)
		WaitFor(t, fmt.Sprintf("child %v left behind by the command to die", child), func() bool { return !child.Alive() })
	})

	t.Run("DestroyIdempotent", func(t *testing.T) {
		need(t, c.Forever)
		d := newDriver(t)
		spec, _, _ := start(t, d, c.Forever)
		for i := range 2 {
			if err := d.Destroy(ctx(t), spec.ID); err != nil {
				t.Fatalf("Destroy #%d: %v", i+1, err)
			}
		}
		if err := d.Destroy(ctx(t), "never-started"); err != nil {
			t.Fatalf("Destroy of an unknown id: %v, want nil", err)
		}
		if _, err := d.Wait(ctx(t), spec.ID); api.ErrorCode(err) != api.ENotFound {
			t.Fatalf("Wait after Destroy: %v, want not_found", err)
		}
		// The id can be used again after Destroy.
		start(t, d, c.Forever)
	})

	t.Run("UnknownID", func(t *testing.T) {
		d := newDriver(t)
		if _, err := d.Wait(ctx(t), "nope"); api.ErrorCode(err) != api.ENotFound {
			t.Errorf("Wait: %v, want not_found", err)
		}
		if err := d.Stop(ctx(t), "nope", time.Second); api.ErrorCode(err) != api.ENotFound {
			t.Errorf("Stop: %v, want not_found", err)
		}
	})

	t.Run("DuplicateStart", func(t *testing.T) {
		need(t, c.Forever)
		d := newDriver(t)
		spec, _, _ := start(t, d, c.Forever)
		dup := *spec
		if _, err := d.Start(ctx(t), &dup); api.ErrorCode(err) != api.EConflict {
			t.Fatalf("second Start of %s: %v, want conflict", spec.ID, err)
		}
	})

	t.Run("BadDir", func(t *testing.T) {
		need(t, c.Forever)
		d := newDriver(t)
		spec := &driver.Spec{ID: "bad-dir", Dir: filepath.Join(t.TempDir(), "missing"), Command: c.Forever}
		if _, err := d.Start(ctx(t), spec); err == nil {
			_ = d.Destroy(context.Background(), spec.ID)
			t.Fatalf("Start in a missing dir succeeded, want an error")
		}
	})

	t.Run("EnvDirOutput", func(t *testing.T) {
		need(t, c.PrintEnv)
		d := newDriver(t)
		spec, out, errb := start(t, d, c.PrintEnv, "STRATA_TEST_VALUE=hello world")
		res, err := d.Wait(ctx(t), spec.ID)
		if err != nil || res.ExitCode != 0 {
			t.Fatalf("Wait = %+v, %v; want exit 0", res, err)
		}
		dir, _ := filepath.EvalSymlinks(spec.Dir)
		if want := "hello world\n" + dir + "\n"; out.String() != want {
			t.Errorf("stdout = %q, want %q", out.String(), want)
		}
		if got := errb.String(); got != "stderr\n" {
			t.Errorf("stderr = %q, want %q", got, "stderr\n")
		}
	})
}

// WaitFor polls cond until it holds or 20 s pass, and fails t then.
func WaitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Answer polls GET url until it answers (with status 200 when need200) or
// 20 s pass, and fails t then, quoting output (the instance's, may be nil).
// It returns the body of the answer.
func Answer(t testing.TB, url string, need200 bool, output fmt.Stringer) string {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := http.Get(url)
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if !need200 || resp.StatusCode == http.StatusOK {
				return string(b)
			}
			err = fmt.Errorf("status %d", resp.StatusCode)
		}
		if time.Now().After(deadline) {
			out := ""
			if output != nil {
				out = output.String()
			}
			t.Fatalf("GET %s: %v (output %q)", url, err, out)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Proc names a process as an instance sees it: its PID in its own PID
// namespace, and that namespace ("pid:[N]") when known.
type Proc struct {
	PID int
	NS  string
}

// String formats p for messages.
func (p Proc) String() string { return strings.TrimSpace(fmt.Sprintf("%d %s", p.PID, p.NS)) }

// Alive reports whether the process runs and is not a zombie. Without a
// namespace, PID is a PID of this test's namespace.
func (p Proc) Alive() bool {
	if p.NS == "" {
		return alive(p.PID)
	}
	host, ok := HostPID(p.NS, p.PID)
	return ok && alive(host)
}

// HostPID finds the PID, in this test's namespace, of the process that is
// pid in the PID namespace ns ("pid:[N]").
func HostPID(ns string, pid int) (int, bool) {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return 0, false
	}
	want := strconv.Itoa(pid)
	for _, e := range ents {
		hp, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if l, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/pid", hp)); err != nil || l != ns {
			continue
		}
		status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", hp))
		if err != nil {
			continue
		}
		for line := range strings.SplitSeq(string(status), "\n") {
			if v, ok := strings.CutPrefix(line, "NSpid:"); ok {
				if f := strings.Fields(v); len(f) > 0 && f[len(f)-1] == want {
					return hp, true
				}
			}
		}
	}
	return 0, false
}

// alive reports whether pid runs and is not a zombie.
func alive(pid int) bool {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	s := string(data)
	i := strings.LastIndexByte(s, ')')
	if i < 0 || i+3 >= len(s) {
		return false
	}
	return s[i+2] != 'Z' && s[i+2] != 'X'
}

// Logger returns a logger writing to t.Log, for drivers under test.
func Logger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(tlogWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type tlogWriter struct{ t testing.TB }

func (w tlogWriter) Write(p []byte) (int, error) {
	w.t.Log(string(bytes.TrimRight(p, "\n")))
	return len(p), nil
}

// Missing skips t because dependency dep (e.g. "docker") is not there, or
// fails it when CI=true and STRATA_REQUIRE (a comma-separated list) names
// dep: CI must not pass by skipping what it was meant to test.
func Missing(t testing.TB, dep, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if Required(dep) {
		t.Fatalf("%s (CI=true and STRATA_REQUIRE contains %s)", msg, dep)
	}
	t.Skip(msg)
}

// Required reports whether CI=true and STRATA_REQUIRE names dep.
func Required(dep string) bool {
	if os.Getenv("CI") != "true" {
		return false
	}
	for r := range strings.SplitSeq(os.Getenv("STRATA_REQUIRE"), ",") {
		if strings.TrimSpace(r) == dep {
			return true
		}
	}
	return false
}
