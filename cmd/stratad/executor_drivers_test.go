package main

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"testing"

	"github.com/strata-paas/strata/deploy/driver"
)

// TestOpenDrivers: --drivers names drivers to open; microvm opens or says
// what it lacks, an unknown name is refused, and the default opens every
// driver that works here (at least the process driver).
func TestOpenDrivers(t *testing.T) {
	env := driverEnv{dataDir: t.TempDir(), nodeID: "node-flags", advertise: "127.0.0.1", log: slog.New(slog.DiscardHandler)}
	names := func(ds []driver.Driver) []string {
		var out []string
		for _, d := range ds {
			out = append(out, d.(driver.Fingerprinter).Fingerprint().Driver)
		}
		return out
	}
	for _, tt := range []struct{ list, wantErr string }{
		{"process,bogus", `unknown driver "bogus"`},
	} {
		if _, err := openDrivers(context.Background(), tt.list, env); err == nil || !strings.Contains(err.Error(), tt.wantErr) {
			t.Errorf("--drivers %s: %v, want an error saying %q", tt.list, err, tt.wantErr)
		}
	}
	if ds, err := openDrivers(context.Background(), "microvm", env); err == nil {
		if got := strings.Join(names(ds), ","); got != "microvm" {
			t.Errorf("--drivers microvm opened %s", got)
		}
		for _, d := range ds {
			if c, ok := d.(io.Closer); ok {
				c.Close()
			}
		}
	} else if strings.Contains(err.Error(), "not supported yet") || !strings.Contains(err.Error(), "microvm") {
		t.Errorf("--drivers microvm: %v, want it opened or an error saying what the microvm driver lacks", err)
	}
	ds, err := openDrivers(context.Background(), "process", env)
	if err != nil || strings.Join(names(ds), ",") != "process" {
		t.Fatalf("--drivers process: %v, %v; want the process driver", names(ds), err)
	}
	ds, err = openDrivers(context.Background(), "", env)
	if err != nil || len(ds) == 0 || names(ds)[0] != "process" {
		t.Fatalf("default drivers: %v, %v; want the process driver first, then whatever else works here", names(ds), err)
	}
	t.Logf("drivers that work here: %v", names(ds))
	for _, d := range ds {
		if c, ok := d.(io.Closer); ok {
			c.Close()
		}
	}
}
