package process_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/strata-paas/strata/api"
	"github.com/strata-paas/strata/deploy/driver"
	"github.com/strata-paas/strata/deploy/driver/drivertest"
	"github.com/strata-paas/strata/deploy/driver/process"
)

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

func newDriver(t *testing.T, dir string, confine process.Confinement) *process.Driver {
	t.Helper()
	d, err := process.New(process.Config{StateDir: dir, Confine: confine,
		Logger: slog.New(slog.NewTextHandler(testWriter{t}, nil))})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// isolated returns an isolating driver, skipping the test where isolation is
// impossible (not root) — except in CI, which runs as root and must test it.
func isolated(t *testing.T, dir string) *process.Driver {
	t.Helper()
	if os.Geteuid() != 0 {
		if os.Getenv("CI") == "true" {
			t.Fatalf("CI=true but the tests do not run as root: process isolation cannot be tested — run them as root")
		}
		t.Skip("process isolation needs root")
	}
	return newDriver(t, dir, process.ConfineAlways)
}

var modes = []struct {
	name string
	new  func(t *testing.T, dir string) *process.Driver
}{
	{"unconfined", func(t *testing.T, dir string) *process.Driver { return newDriver(t, dir, process.ConfineNever) }},
	{"isolated", isolated},
}

func TestConformance(t *testing.T) {
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			drivertest.Run(t, func(t *testing.T) driver.Driver { return m.new(t, t.TempDir()) },
				drivertest.Options{Commands: drivertest.ShellCommands()})
		})
	}
}

func TestFingerprint(t *testing.T) {
	for _, tc := range []struct {
		mode string
		want api.Isolation
	}{{"unconfined", api.IsolationProcessUnconfined}, {"isolated", api.IsolationProcess}} {
		t.Run(tc.mode, func(t *testing.T) {
			var d *process.Driver
			for _, m := range modes {
				if m.name == tc.mode {
					d = m.new(t, t.TempDir())
				}
			}
			fp := d.Fingerprint()
			if fp.Driver != process.Name || len(fp.Isolations) != 1 || fp.Isolations[0] != tc.want {
				t.Fatalf("Fingerprint = %+v, want process with isolation %s", fp, tc.want)
			}
			if d.Isolated() != (tc.want == api.IsolationProcess) {
				t.Fatalf("Isolated() = %v with fingerprint %s", d.Isolated(), tc.want)
			}
		})
	}
}

func TestEnvNotInherited(t *testing.T) {
	t.Setenv("STRATA_SECRET_OF_EXECUTOR", "x")
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			d := m.new(t, t.TempDir())
			out := &drivertest.Buffer{}
			spec := &driver.Spec{ID: "env", Dir: t.TempDir(), Command: `echo "[$STRATA_SECRET_OF_EXECUTOR]"`, Stdout: out}
			if _, err := d.Start(context.Background(), spec); err != nil {
				t.Fatal(err)
			}
			defer d.Destroy(context.Background(), "env")
			if _, err := d.Wait(context.Background(), "env"); err != nil {
				t.Fatal(err)
			}
			if got := out.String(); got != "[]\n" {
				t.Fatalf("stdout = %q, want the executor's environment not inherited", got)
			}
		})
	}
}

// TestRecover starts an instance with one driver value and adopts it with
// another one using the same state dir, as after an executor restart.
func TestRecover(t *testing.T) {
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			state := t.TempDir()
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			d1 := m.new(t, state)
			spec := &driver.Spec{ID: "rec", Dir: t.TempDir(), Command: `while :; do echo tick; sleep 0.05; done`, MemoryMB: 64}
			h, err := d1.Start(ctx, spec)
			if err != nil {
				t.Fatal(err)
			}
			defer d1.Destroy(context.Background(), "rec")
			if h.PID <= 0 || h.StartTime == 0 {
				t.Fatalf("handle %+v has no pid or start time", h)
			}
			// Round-trip the handle as the executor persists it.
			raw, _ := json.Marshal(h)
			var loaded driver.Handle
			if err := json.Unmarshal(raw, &loaded); err != nil {
				t.Fatal(err)
			}

			d2 := m.new(t, state)
			stale := loaded
			stale.StartTime++
			if err := d2.Recover(ctx, &stale); api.ErrorCode(err) != api.ENotFound {
				t.Fatalf("Recover with a wrong start time: %v, want not_found (a reused pid must not be adopted)", err)
			}
			out := &drivertest.Buffer{}
			if err := d2.RecoverOutput(ctx, &loaded, out, nil); err != nil {
				t.Fatalf("RecoverOutput: %v", err)
			}
			waitFor(t, "output delivered after recovery", func() bool { return out.String() != "" })
			if err := d2.Stop(ctx, "rec", 5*time.Second); err != nil {
				t.Fatalf("Stop of a recovered instance: %v", err)
			}
			res, err := d2.Wait(ctx, "rec")
			if err != nil {
				t.Fatalf("Wait: %v", err)
			}
			if d2.Isolated() {
				// The init outlived the executor and wrote how the command ended.
				if res.Err != nil || res.Signal != "terminated" {
					t.Fatalf("Wait of a recovered isolated instance = %+v, want terminated by SIGTERM", res)
				}
				noCgroupsLeft(t, h, "the instance ended")
			} else if res.Err == nil {
				t.Fatalf("Wait of a recovered instance = %+v, want ErrExitUnknown", res)
			}
			if _, err := process.StartTime(h.PID); err == nil {
				t.Fatalf("pid %d still running after Stop", h.PID)
			}
			if err := d2.Recover(ctx, h); err != nil && api.ErrorCode(err) != api.ENotFound {
				t.Fatalf("Recover of a known, exited instance: %v", err)
			}
		})
	}
}

func TestRecoverBadHandleData(t *testing.T) {
	d := newDriver(t, t.TempDir(), process.ConfineNever)
	h := &driver.Handle{Version: driver.HandleVersion, Driver: process.Name, ID: "x", PID: os.Getpid(), PGID: os.Getpid(),
		Data: json.RawMessage(`{"cgroup":{"version":1,"paths":[]}}`)}
	if err := d.Recover(context.Background(), h); api.ErrorCode(err) != api.EInvalid {
		t.Fatalf("Recover with a cgroup without paths: %v, want invalid", err)
	}
}

// waitFor polls cond until it holds or 20 s pass, and fails t then.
var waitFor = drivertest.WaitFor

// cgroupPaths returns the cgroup paths an isolated instance's handle
// records, failing t when it has none.
func cgroupPaths(t *testing.T, h *driver.Handle) []string {
	t.Helper()
	var data struct {
		Cgroup struct{ Paths []string } `json:"cgroup"`
	}
	if err := json.Unmarshal(h.Data, &data); err != nil || len(data.Cgroup.Paths) == 0 {
		t.Fatalf("handle data %s has no cgroup: %v", h.Data, err)
	}
	return data.Cgroup.Paths
}

// noCgroupsLeft fails t for each cgroup of h's instance that still exists
// after what.
func noCgroupsLeft(t *testing.T, h *driver.Handle, after string) {
	t.Helper()
	for _, p := range cgroupPaths(t, h) {
		if _, err := os.Stat(p); err == nil {
			t.Errorf("cgroup %s still exists after %s", p, after)
		}
	}
}

func FuzzParseStat(f *testing.F) {
	f.Add([]byte("1 (sh) S 0 1 1 0 -1 4194560 1 0 0 0 0 0 0 0 20 0 1 0 12345 1 1"))
	f.Add([]byte("1 (a) b) Z 0"))
	f.Fuzz(func(t *testing.T, data []byte) {
		_, _ = process.ParseStat(data)
	})
}

// run starts cmd on d and returns its stdout, stderr and result.
func run(t *testing.T, d *process.Driver, spec *driver.Spec) (string, string, *driver.ExitResult) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, errb := &drivertest.Buffer{}, &drivertest.Buffer{}
	spec.Stdout, spec.Stderr = out, errb
	if spec.Env == nil {
		spec.Env = []string{"PATH=/usr/local/bin:/usr/bin:/bin"}
	}
	if _, err := d.Start(ctx, spec); err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() { _ = d.Destroy(context.Background(), spec.ID) })
	res, err := d.Wait(ctx, spec.ID)
	if err != nil {
		t.Fatalf("Wait: %v", err)
	}
	return out.String(), errb.String(), res
}
