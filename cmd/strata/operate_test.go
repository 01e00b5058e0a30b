package main

import (
	"strings"
	"testing"

	"github.com/strata-paas/strata/api"
)

func TestTaskCommand(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"echo $HOME"}, "echo $HOME"},
		{[]string{"sh", "-c", "exit 3"}, "sh -c 'exit 3'"},
		{[]string{"echo", "it's"}, `echo 'it'\''s'`},
		{[]string{"rake", "db:migrate", "--trace"}, "rake db:migrate --trace"},
	}
	for _, tc := range tests {
		if got := taskCommand(tc.args); got != tc.want {
			t.Errorf("taskCommand(%q) = %q, want %q", tc.args, got, tc.want)
		}
	}
}

// TestRunAndHealthCheck: strata run prints stdout and stderr apart and exits
// with the task's code; strata health-check sets the check.
func TestRunAndHealthCheck(t *testing.T) {
	c := newCLI(t).asUser()
	c.mustRun("push", "web", "-p", t.TempDir())
	// The node runs tasks with sh (httpapitest.Node).
	out, errs, code := c.run("run", "web", "--", "echo one; echo two >&2; exit 3")
	if code != 3 || out != "one\n" || !strings.Contains(errs, "two\n") || !strings.Contains(errs, "Running task") {
		t.Fatalf("run: exit %d, stdout %q, stderr %q; want 3, one, two", code, out, errs)
	}
	out, _, code = c.run("run", "web", "--", "echo", "hi")
	if code != 0 || out != "hi\n" {
		t.Fatalf("run echo hi: exit %d, stdout %q", code, out)
	}
	_, errs, code = c.run("run", "nope", "--", "true")
	wantError(t, errs, code, 1, "not found")
	_, _, code = c.run("run", "web")
	if code != 2 {
		t.Fatalf("run without a command: exit %d, want 2", code)
	}

	out = c.mustRun("health-check", "web", "--type", "http", "--timeout", "30", "--interval", "5")
	if !strings.Contains(out, "web: health http /, 30s start-up, every 5s") {
		t.Fatalf("health-check printed %q", out)
	}
	if p := c.srv.App("web").Processes[0]; p.HealthCheck != api.HealthHTTP || p.HealthCheckPath != "/" || p.HealthCheckTimeout != 30 || p.HealthCheckInterval != 5 {
		t.Fatalf("process after health-check = %+v", p)
	}
	_, errs, code = c.run("health-check", "web", "--type", "tcp")
	wantError(t, errs, code, 1, "not port, http or process")
}
