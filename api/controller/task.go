package controller

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/google/uuid"

	"github.com/strata-paas/strata/api"
	"github.com/strata-paas/strata/api/bus"
	"github.com/strata-paas/strata/deploy/scheduler"
)

// Tasks runs one-off commands as instances of an app's current release: the
// task half of api.OperateService.
type Tasks struct {
	cfg      Config
	log      *slog.Logger
	store    FormationStore
	conn     taskBus
	find     appFinder
	audit    *audit
	apps     *Apps
	nodes    *Nodes
	nodeCmds nodeCommands
}

// taskBus is what Tasks needs of the bus: the task's output and exit arrive
// on subscriptions made before the run command is sent.
type taskBus interface {
	flusher
	bus.Subscriber
}

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
func (s *Tasks) RunTask(ctx context.Context, name string, req api.TaskRequest, fn func(api.TaskEvent) error) (*api.TaskEvent, error) {
	if strings.TrimSpace(req.Command) == "" {
		return nil, api.Errorf(api.EInvalid, "no command to run — write e.g. strata run APP -- echo hi")
	}
	if len(req.Command) > MaxTaskCommand || strings.ContainsRune(req.Command, 0) {
		return nil, api.Errorf(api.EInvalid, "the command is longer than %d bytes or holds a NUL byte — put it in a script in the app", MaxTaskCommand)
	}
	app, err := s.find.appByName(ctx, name, actDevelop)
	if err != nil {
		return nil, err
	}
	rel, err := s.apps.currentRelease(ctx, app)
	if err != nil {
		return nil, err
	}
	if rel == nil || !rel.Runnable() {
		return nil, api.Errorf(api.EInvalid, "app %s has no release yet — push it first", name)
	}
	// An image runs only in a container (docs/containers.md): the task of
	// an image app goes to a node that offers one.
	var iso api.Isolation
	if rel.IsImage() {
		iso = api.IsolationContainer
	}
	nodeID := s.taskNode(iso)
	if nodeID == "" && iso != "" {
		return nil, api.Errorf(api.EUnavailable, "no ready node offers the %s isolation the task of an image app needs — check strata nodes", iso)
	}
	if nodeID == "" {
		return nil, api.Errorf(api.EUnavailable, "no node is ready to run the task — check strata nodes")
	}
	spec := &api.InstanceSpec{
		InstanceID: uuid.NewString(), AppID: app.ID, AppName: app.Name, SpaceID: app.SpaceID,
		Process: "task", Release: rel.Version, DropletBlob: rel.DropletBlob, Image: rel.Image, ImageBlob: rel.ImageBlob, Command: req.Command, Env: rel.Env,
		MemoryMB: api.DefaultMemoryMB, DiskMB: api.DefaultDiskMB, HealthCheck: api.HealthCheck{Type: api.HealthProcess}, Task: true, Isolation: iso,
	}
	procs, err := s.store.Processes(ctx, app.ID)
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
	logSub, err := bus.SubscribeJSON(s.conn, api.SubjectLogs(app.ID), "", func(_ string, e *api.LogEnvelope) {
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
	exitSub, err := bus.SubscribeJSON(s.conn, api.SubjectTaskExit(id), "", func(_ string, ev *api.InstanceEvent) {
		select {
		case exitCh <- *ev:
		default:
		}
	})
	if err != nil {
		return nil, err
	}
	defer func() { _ = exitSub.Unsubscribe() }()
	if err := flushBus(ctx, s.conn, s.cfg.CommandTimeout); err != nil {
		return nil, err
	}
	if err := s.nodeCmds.send(ctx, nodeID, &api.NodeCommand{Version: api.MessageVersion, Kind: api.CmdRun, Start: spec}); err != nil {
		return nil, fmt.Errorf("start task: %w", err)
	}
	s.audit.record(ctx, app, "task", "task %s started on release v%d: %s", id, rel.Version, clip(req.Command))
	stop := func() {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.cfg.CommandTimeout)
		defer cancel()
		if err := s.nodeCmds.send(sctx, nodeID, &api.NodeCommand{Version: api.MessageVersion, Kind: api.CmdStop, InstanceID: id}); err != nil {
			s.log.Info("task.stop_failed", "task", id, "err", err)
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
			_ = flushBus(ctx, s.conn, s.cfg.CommandTimeout)
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
			s.audit.record(ctx, app, "task", "task %s finished: %s", id, ev.Reason)
			return exit, fn(*exit)
		case <-check.C:
			if v := s.nodes.views(s.cfg.Now(), s.cfg.NodeTTL)[nodeID]; v == nil || v.node.State == scheduler.NodeLost {
				return nil, api.Errorf(api.EUnavailable, "node %s running task %s was lost — run it again", nodeID, id)
			}
		case <-ctx.Done():
			stop()
			return nil, ctx.Err()
		}
	}
}

// taskNode picks the ready node with the fewest instances ("" if none).
func (s *Tasks) taskNode(iso api.Isolation) string {
	best, n := "", 0
	for id, v := range s.nodes.views(s.cfg.Now(), s.cfg.NodeTTL) {
		if v.node.State != scheduler.NodeReady || iso != "" && !slices.Contains(v.node.Isolations, iso) {
			continue
		}
		if best == "" || v.node.Instances < n || v.node.Instances == n && id < best {
			best, n = id, v.node.Instances
		}
	}
	return best
}
