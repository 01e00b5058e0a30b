package mock_test

import (
	"context"
	"testing"

	"github.com/strata-paas/strata/api"
	"github.com/strata-paas/strata/deploy/driver"
	"github.com/strata-paas/strata/deploy/driver/drivertest"
	"github.com/strata-paas/strata/deploy/driver/mock"
)

func TestConformance(t *testing.T) {
	drivertest.Run(t, func(t *testing.T) driver.Driver { return mock.New(mock.Config{}) },
		drivertest.Options{Commands: drivertest.Commands{
			Exit3: "exit 3", Forever: "run", IgnoreTerm: "ignore-term", PrintEnv: "print STRATA_TEST_VALUE",
		}})
}

func TestScript(t *testing.T) {
	ctx := context.Background()
	d := mock.New(mock.Config{})
	dir := t.TempDir()
	if _, err := d.Start(ctx, &driver.Spec{ID: "f", Dir: dir, Command: "fail no such thing"}); api.ErrorCode(err) != api.EInvalid {
		t.Fatalf("fail command: %v, want invalid", err)
	}
	if _, err := d.Start(ctx, &driver.Spec{ID: "x", Dir: dir, Command: "bogus"}); err == nil {
		t.Fatalf("unknown command started")
	}
	h, err := d.Start(ctx, &driver.Spec{ID: "e", Dir: dir, Command: "exit 7 10ms"})
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Recover(ctx, h); err != nil && api.ErrorCode(err) != api.ENotFound {
		t.Fatalf("Recover: %v", err)
	}
	res, err := d.Wait(ctx, "e")
	if err != nil || res.ExitCode != 7 {
		t.Fatalf("Wait = %+v, %v; want exit 7", res, err)
	}
	if err := d.Recover(ctx, h); api.ErrorCode(err) != api.ENotFound {
		t.Fatalf("Recover after exit: %v, want not_found", err)
	}
	if got := len(d.Starts()); got != 1 {
		t.Fatalf("Starts() has %d specs, want 1", got)
	}
}
