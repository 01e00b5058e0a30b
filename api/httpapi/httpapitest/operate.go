package httpapitest

import (
	"context"
	"slices"
	"strconv"
	"strings"

	"github.com/strata-paas/strata/api"
)

var _ api.OperateService = (*Fake)(nil)

// SetHealthCheck implements api.OperateService: it stores the check on the
// app's process type (ENotFound for a missing app or type, EInvalid for an
// unknown check type).
func (f *Fake) SetHealthCheck(_ context.Context, name string, req api.HealthCheckRequest) (*api.Process, error) {
	if req.Process == "" {
		req.Process = "web"
	}
	if req.Type != api.HealthPort && req.Type != api.HealthHTTP && req.Type != api.HealthProcess {
		return nil, api.Errorf(api.EInvalid, "health check type %q is not port, http or process", req.Type)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	d, err := f.appLocked(name)
	if err != nil {
		return nil, err
	}
	i := slices.IndexFunc(d.Processes, func(p api.Process) bool { return p.Type == req.Process })
	if i < 0 {
		return nil, api.Errorf(api.ENotFound, "app %s has no process type %q", name, req.Process)
	}
	p := &d.Processes[i]
	p.HealthCheck, p.HealthCheckPath, p.HealthCheckTimeout, p.HealthCheckInterval = req.Type, req.Path, req.Timeout, req.Interval
	cp := *p
	return &cp, nil
}

// RunTask implements api.OperateService with a script: it sends started,
// then each ';'-separated part of the command as a stdout line ("err X"
// goes to stderr), and exits with N when the last part is "exit N" (else
// 0). An app without a release is EInvalid.
func (f *Fake) RunTask(ctx context.Context, name string, req api.TaskRequest, fn func(api.TaskEvent) error) (*api.TaskEvent, error) {
	f.mu.Lock()
	d, err := f.appLocked(name)
	current := 0
	if err == nil {
		current = d.CurrentRelease
	}
	f.mu.Unlock()
	if err != nil {
		return nil, err
	}
	if current == 0 {
		return nil, api.Errorf(api.EInvalid, "app %s has no release yet — push it first", name)
	}
	if strings.TrimSpace(req.Command) == "" {
		return nil, api.Errorf(api.EInvalid, "no command to run")
	}
	if err := fn(api.TaskEvent{Type: api.TaskEventStarted, TaskID: "task-1", Line: "running on node fake"}); err != nil {
		return nil, err
	}
	code := 0
	for _, part := range strings.Split(req.Command, ";") {
		part = strings.TrimSpace(part)
		if n, ok := strings.CutPrefix(part, "exit "); ok {
			code, _ = strconv.Atoi(n)
			continue
		}
		ev := api.TaskEvent{Type: api.TaskEventLog, TaskID: "task-1", Stream: "stdout", Line: part}
		if l, ok := strings.CutPrefix(part, "err "); ok {
			ev.Stream, ev.Line = "stderr", l
		}
		if err := fn(ev); err != nil {
			return nil, err
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
	}
	exit := &api.TaskEvent{Type: api.TaskEventExit, TaskID: "task-1", ExitCode: &code, Reason: "exited with code " + strconv.Itoa(code)}
	return exit, fn(*exit)
}
