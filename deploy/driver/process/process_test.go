package process_test

import (
	"context"
	"testing"
	"time"

	"github.com/strata-paas/strata/api"
	"github.com/strata-paas/strata/deploy/driver"
	"github.com/strata-paas/strata/deploy/driver/drivertest"
	"github.com/strata-paas/strata/deploy/driver/process"
)

func newDriver(t *testing.T, dir string) *process.Driver {
	t.Helper()
	d, err := process.New(process.Config{StateDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func TestConformance(t *testing.T) {
	drivertest.Run(t, func(t *testing.T) driver.Driver { return newDriver(t, t.TempDir()) },
		drivertest.Options{Commands: drivertest.ShellCommands()})
}

func TestFingerprint(t *testing.T) {
	fp := newDriver(t, t.TempDir()).Fingerprint()
	if fp.Driver != process.Name || len(fp.Isolations) != 1 || fp.Isolations[0] != api.IsolationProcessUnconfined {
		t.Fatalf("Fingerprint = %+v, want process with isolation %s", fp, api.IsolationProcessUnconfined)
	}
}

func TestEnvNotInherited(t *testing.T) {
	t.Setenv("STRATA_SECRET_OF_EXECUTOR", "x")
	d := newDriver(t, t.TempDir())
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
}

// TestRecover starts an instance with one driver value and adopts it with
// another one using the same state dir, as after an executor restart.
func TestRecover(t *testing.T) {
	state := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	d1 := newDriver(t, state)
	spec := &driver.Spec{ID: "rec", Dir: t.TempDir(), Command: `while :; do echo tick; sleep 0.05; done`}
	h, err := d1.Start(ctx, spec)
	if err != nil {
		t.Fatal(err)
	}
	defer d1.Destroy(context.Background(), "rec")
	if h.PID <= 0 || h.StartTime == 0 {
		t.Fatalf("handle %+v has no pid or start time", h)
	}

	d2 := newDriver(t, state)
	stale := *h
	stale.StartTime++
	if err := d2.Recover(ctx, &stale); api.ErrorCode(err) != api.ENotFound {
		t.Fatalf("Recover with a wrong start time: %v, want not_found (a reused pid must not be adopted)", err)
	}
	out := &drivertest.Buffer{}
	if err := d2.RecoverOutput(ctx, h, out, nil); err != nil {
		t.Fatalf("RecoverOutput: %v", err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for out.String() == "" && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if out.String() == "" {
		t.Fatalf("no output delivered after recovery")
	}
	if err := d2.Stop(ctx, "rec", 5*time.Second); err != nil {
		t.Fatalf("Stop of a recovered instance: %v", err)
	}
	res, err := d2.Wait(ctx, "rec")
	if err != nil {
		t.Fatalf("Wait: %v", err)
	}
	if res.Err == nil {
		t.Fatalf("Wait of a recovered instance = %+v, want ErrExitUnknown", res)
	}
	if _, err := process.StartTime(h.PID); err == nil {
		t.Fatalf("pid %d still running after Stop", h.PID)
	}
	if err := d2.Recover(ctx, h); err != nil && api.ErrorCode(err) != api.ENotFound {
		t.Fatalf("Recover of a known, exited instance: %v", err)
	}
}

func FuzzParseStat(f *testing.F) {
	f.Add([]byte("1 (sh) S 0 1 1 0 -1 4194560 1 0 0 0 0 0 0 0 20 0 1 0 12345 1 1"))
	f.Add([]byte("1 (a) b) Z 0"))
	f.Fuzz(func(t *testing.T, data []byte) {
		_, _ = process.ParseStat(data)
	})
}
