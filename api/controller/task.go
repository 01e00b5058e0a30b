package controller

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	"github.com/google/uuid"

	"github.com/strata-paas/strata/api"
	"github.com/strata-paas/strata/api/bus"
	"github.com/strata-paas/strata/deploy/scheduler"
)

// MaxTaskCommand is the longest task command accepted, in bytes.
const MaxTaskCommand = 4096

// taskLineBuffer is how many output lines of a task may wait for the client
// before lines are dropped (and counted).
const taskLineBuffer = 4096

// RunTask runs req.Command once, as its own instance of the app's current
// release (droplet, config vars, the web formation's memory and disk), on
// the ready node with the fewest instances. It is not routed, health-checked
// or restarted. fn gets a started event, the output lines and the exit event,
// which RunTask also returns. Ending ctx stops the task and returns ctx's
// error; a task whose node is lost ends with EUnavailable.
func (c *Controller) RunTask(ctx context.Context, name string, req api.TaskRequest, fn func(api.TaskEvent) error) (*api.TaskEvent, error) {
	if strings.TrimSpace(req.Command) == "" {
		return nil, api.Errorf(api.EInvalid, "no command to run — write e.g. strata run APP -- echo hi")
	}
	if len(req.Command) > MaxTaskCommand || strings.ContainsRune(req.Command, 0) {
		return nil, api.Errorf(api.EInvalid, "the command is longer than %d bytes or holds a NUL byte — put it in a script in the app", MaxTaskCommand)
	}
	app, err := c.appByName(ctx, name)
	if err != nil {
		return nil, err
	}
	rel, err := c.currentRelease(ctx, app)
	if err != nil {
		return nil, err
	}
	if rel == nil || !rel.DropletBlob.Valid() {
		return nil, api.Errorf(api.EInvalid, "app %s has no release yet — push it first", name)
	}
	nodeID := c.taskNode()
	if nodeID == "" {
		return nil, api.Errorf(api.EUnavailable, "no node is ready to run the task — check strata nodes")
	}
	spec := &api.InstanceSpec{
		InstanceID: uuid.NewString(), AppID: app.ID, AppName: app.Name, SpaceID: app.SpaceID,
		Process: "task", Release: rel.Version, DropletBlob: rel.DropletBlob, Command: req.Command, Env: rel.Env,
		MemoryMB: api.DefaultMemoryMB, DiskMB: api.DefaultDiskMB, HealthCheck: api.HealthCheck{Type: api.HealthProcess}, Task: true,
	}
	procs, err := c.store.Processes(ctx, app.ID)
	if err != nil {
		return nil, err
	}
	for _, p := range procs {
		if p.Type == api.ProcessWeb && p.MemoryMB > 0 {
			spec.MemoryMB, spec.DiskMB = p.MemoryMB, max(p.DiskMB, api.DefaultDiskMB)
		}
	}
	id := spec.InstanceID

	// Subscribe before the task exists so no line is lost.
	lines := make(chan api.LogEnvelope, taskLineBuffer)
	var dropped atomic.Int64
	source := "task/" + id
	logSub, err := bus.SubscribeJSON(c.conn, api.SubjectLogs(app.Name), "", func(_ string, e *api.LogEnvelope) {
		if e.Source != source {
			return
		}
		select {
		case lines <- *e:
		default:
			dropped.Add(1)
		}
	})
	if err != nil {
		return nil, err
	}
	defer func() { _ = logSub.Unsubscribe() }()
	exitCh := make(chan api.InstanceEvent, 1)
	exitSub, err := bus.SubscribeJSON(c.conn, api.SubjectTaskExit(id), "", func(_ string, ev *api.InstanceEvent) {
		select {
		case exitCh <- *ev:
		default:
		}
	})
	if err != nil {
		return nil, err
	}
	defer func() { _ = exitSub.Unsubscribe() }()
	if err := c.flush(ctx); err != nil {
		return nil, err
	}
	if err := c.command(ctx, nodeID, &api.NodeCommand{Version: api.MessageVersion, Kind: api.CmdRun, Start: spec}); err != nil {
		return nil, fmt.Errorf("start task: %w", err)
	}
	c.record(ctx, app, "task", "task %s started on release v%d: %s", id, rel.Version, clip(req.Command))
	stop := func() {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.cfg.CommandTimeout)
		defer cancel()
		if err := c.command(sctx, nodeID, &api.NodeCommand{Version: api.MessageVersion, Kind: api.CmdStop, InstanceID: id}); err != nil {
			c.log.Info("task.stop_failed", "task", id, "err", err)
		}
	}
	send := func(e api.LogEnvelope) error {
		return fn(api.TaskEvent{Type: api.TaskEventLog, TaskID: id, Stream: e.Stream, Line: e.Line})
	}
	if err := fn(api.TaskEvent{Type: api.TaskEventStarted, TaskID: id, Line: "running on node " + nodeID}); err != nil {
		stop()
		return nil, err
	}
	check := time.NewTicker(time.Second)
	defer check.Stop()
	for {
		select {
		case e := <-lines:
			if err := send(e); err != nil {
				stop()
				return nil, err
			}
		case ev := <-exitCh:
			// Every line was published before the exit: after a round trip
			// they are queued here; take them until a short quiet period.
			_ = c.flush(ctx)
			for quiet := false; !quiet; {
				select {
				case e := <-lines:
					if err := send(e); err != nil {
						return nil, err
					}
				case <-time.After(50 * time.Millisecond):
					quiet = true
				}
			}
			if n := dropped.Load(); n > 0 {
				_ = fn(api.TaskEvent{Type: api.TaskEventLog, TaskID: id, Stream: "stderr", Line: fmt.Sprintf("strata: %d output lines dropped: the client could not keep up", n)})
			}
			exit := &api.TaskEvent{Type: api.TaskEventExit, TaskID: id, ExitCode: ev.ExitCode, Reason: ev.Reason}
			c.record(ctx, app, "task", "task %s finished: %s", id, ev.Reason)
			return exit, fn(*exit)
		case <-check.C:
			if v := c.nodes.views(c.cfg.Now(), c.cfg.NodeTTL)[nodeID]; v == nil || v.node.State == scheduler.NodeLost {
				return nil, api.Errorf(api.EUnavailable, "node %s running task %s was lost — run it again", nodeID, id)
			}
		case <-ctx.Done():
			stop()
			return nil, ctx.Err()
		}
	}
}

// taskNode picks the ready node with the fewest instances ("" if none).
func (c *Controller) taskNode() string {
	best, n := "", 0
	for id, v := range c.nodes.views(c.cfg.Now(), c.cfg.NodeTTL) {
		if v.node.State != scheduler.NodeReady {
			continue
		}
		if best == "" || v.node.Instances < n || v.node.Instances == n && id < best {
			best, n = id, v.node.Instances
		}
	}
	return best
}
