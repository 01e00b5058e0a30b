package client_test

import (
	"context"
	"strings"
	"testing"

	"github.com/strata-paas/strata/api"
	"github.com/strata-paas/strata/api/client"
)

// TestHealthCheckAndTask drives PUT health-check and the NDJSON task stream
// through the real HTTP server and controller; the node runs tasks with sh.
func TestHealthCheckAndTask(t *testing.T) {
	ctx := context.Background()
	e := newServer(t)
	url := e.URL
	c := client.New(url, e.UserToken)
	if _, err := c.RunTask(ctx, "hello", api.TaskRequest{Command: "echo hi"}, nil); code(err) != api.ENotFound {
		t.Fatalf("task of a missing app: %v, want not found", err)
	}
	if _, err := c.Push(ctx, "hello", strings.NewReader("src"), client.PushOptions{Create: true}); err != nil {
		t.Fatal(err)
	}
	p, err := c.SetHealthCheck(ctx, "hello", api.HealthCheckRequest{Type: api.HealthHTTP, Path: "/healthz", Timeout: 9})
	if err != nil || p.HealthCheck != api.HealthHTTP || p.HealthCheckPath != "/healthz" || p.HealthCheckTimeout != 9 {
		t.Fatalf("SetHealthCheck = %+v, %v", p, err)
	}
	if _, err := c.SetHealthCheck(ctx, "hello", api.HealthCheckRequest{Type: "tcp"}); code(err) != api.EInvalid {
		t.Fatalf("bad type: %v, want invalid", err)
	}
	if _, err := c.SetHealthCheck(ctx, "hello", api.HealthCheckRequest{Process: "worker", Type: api.HealthProcess}); code(err) != api.ENotFound {
		t.Fatalf("missing type: %v, want not found", err)
	}

	tests := []struct {
		cmd   string
		lines []string
		exit  int
	}{
		{"echo hi", []string{"stdout hi"}, 0},
		{"echo one; sleep 0.1; echo two >&2; exit 3", []string{"stdout one", "stderr two"}, 3},
	}
	for _, tc := range tests {
		var got []string
		started := false
		exit, err := c.RunTask(ctx, "hello", api.TaskRequest{Command: tc.cmd}, func(ev api.TaskEvent) {
			if ev.Type == api.TaskEventStarted {
				started = true
				return
			}
			got = append(got, ev.Stream+" "+ev.Line)
		})
		if err != nil {
			t.Fatalf("RunTask(%q): %v", tc.cmd, err)
		}
		if !started || strings.Join(got, "|") != strings.Join(tc.lines, "|") || exit.ExitCode == nil || *exit.ExitCode != tc.exit {
			t.Fatalf("RunTask(%q): started %v, lines %q, exit %+v; want %q and exit %d", tc.cmd, started, got, exit, tc.lines, tc.exit)
		}
	}
	if _, err := c.RunTask(ctx, "hello", api.TaskRequest{Command: "  "}, nil); code(err) != api.EInvalid {
		t.Fatalf("empty command: %v, want invalid", err)
	}
}
