package executor

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/strata-paas/strata/api"
)

// startTask starts a one-off task: the spec's command in its release's
// droplet and env, not routed, not health-checked, never restarted. Its
// output is published with source task/<id>, then its end on
// api.SubjectTaskExit. A task id already known is accepted and ignored.
func (e *Executor) startTask(spec *api.InstanceSpec) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if _, ok := e.tasks[spec.InstanceID]; ok {
		return nil
	}
	if _, ok := e.insts[spec.InstanceID]; ok {
		return api.Errorf(api.EConflict, "%s is an instance, not a task", spec.InstanceID)
	}
	drv, iso, err := e.drivers.forSpec(spec)
	if err != nil {
		return err
	}
	in := newInstance(e, *spec, drv, iso)
	in.dir = filepath.Join(e.taskDir, spec.InstanceID)
	e.tasks[spec.InstanceID] = in
	e.wg.Add(1)
	go e.runTask(in)
	return nil
}

// runTask runs a task to its end (or TaskTimeout, or a stop) and reports it.
func (e *Executor) runTask(in *instance) {
	defer e.wg.Done()
	id := in.spec.InstanceID
	ev := &api.InstanceEvent{}
	if reason := e.launch(in); reason != "" {
		ev.Reason = reason
	} else {
		in.log.Info("task.started")
		ctx, cancel := context.WithTimeout(e.detach, e.cfg.TaskTimeout)
		exitCh := make(chan waitResult, 1)
		go func() {
			r, err := in.drv.Wait(context.Background(), id)
			exitCh <- waitResult{r, err}
		}()
		var w waitResult
		select {
		case w = <-exitCh:
		case <-in.stopCh:
			ev.Reason = "stopped"
		case <-ctx.Done():
			ev.Reason = fmt.Sprintf("ran longer than %s", e.cfg.TaskTimeout)
		}
		cancel()
		if ev.Reason != "" {
			sctx, scancel := context.WithTimeout(context.Background(), e.cfg.StopGrace+30*time.Second)
			_ = in.drv.Stop(sctx, id, e.cfg.StopGrace)
			scancel()
			w = <-exitCh
		}
		code, why := describeExit(w)
		ev.ExitCode = code
		if ev.Reason == "" {
			ev.Reason = why
		}
	}
	dctx, dcancel := context.WithTimeout(context.Background(), 30*time.Second)
	_ = in.drv.Destroy(dctx, id)
	dcancel()
	in.flushLogs()
	_ = os.RemoveAll(in.dir)
	in.mu.Lock()
	in.state = api.InstanceStopped
	in.mu.Unlock()
	ev.Instance = in.report()
	in.log.Info("task.finished", "reason", ev.Reason)
	// The end goes out after every output line of the task.
	done := make(chan struct{})
	actx, acancel := context.WithTimeout(context.Background(), 5*time.Second)
	e.logs.after(actx, func() {
		e.publishTo(api.SubjectTaskExit(id), ev)
		close(done)
	})
	<-done
	acancel()
	e.mu.Lock()
	delete(e.tasks, id)
	e.mu.Unlock()
}

// stopTask stops a running task; it reports whether id is a task here.
func (e *Executor) stopTask(id string, grace time.Duration) bool {
	e.mu.Lock()
	in := e.tasks[id]
	e.mu.Unlock()
	if in == nil {
		return false
	}
	in.requestStop(grace)
	return true
}
