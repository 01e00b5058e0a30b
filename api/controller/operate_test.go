package controller_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/strata-paas/strata/api"
	"github.com/strata-paas/strata/api/bus"
)

// TestHealthCheckReachesSpec: a health check set on a process type is
// validated, recorded and sent in the specs of instances started afterwards.
func TestHealthCheckReachesSpec(t *testing.T) {
	e, x, ctx := deployed(t, nil)
	bad := []api.HealthCheckRequest{
		{Type: "tcp"},
		{Type: api.HealthHTTP},
		{Type: api.HealthHTTP, Path: "healthz"},
		{Type: api.HealthPort, Path: "/x"},
		{Type: api.HealthPort, Timeout: -1},
		{Type: api.HealthPort, Timeout: api.MaxHealthCheckTimeout + 1},
		{Type: api.HealthPort, Interval: -1},
		{Type: api.HealthPort, Interval: api.MaxHealthCheckInterval + 1},
		{Process: "../x", Type: api.HealthPort},
	}
	for _, req := range bad {
		if _, err := e.ctrl.Apps.SetHealthCheck(ctx, "hello", req); api.ErrorCode(err) != api.EInvalid {
			t.Errorf("SetHealthCheck(%+v): got %v, want invalid", req, err)
		}
	}
	if _, err := e.ctrl.Apps.SetHealthCheck(ctx, "hello", api.HealthCheckRequest{Process: "worker", Type: api.HealthProcess}); api.ErrorCode(err) != api.ENotFound {
		t.Errorf("SetHealthCheck of a missing type: got %v, want not found", err)
	}
	p, err := e.ctrl.Apps.SetHealthCheck(ctx, "hello", api.HealthCheckRequest{Type: api.HealthHTTP, Path: "/healthz", Timeout: 7, Interval: 2})
	if err != nil {
		t.Fatal(err)
	}
	if p.HealthCheck != api.HealthHTTP || p.HealthCheckPath != "/healthz" || p.HealthCheckTimeout != 7 || p.HealthCheckInterval != 2 || p.Instances != 1 {
		t.Fatalf("SetHealthCheck = %+v", p)
	}
	if _, err := e.ctrl.Apps.Restart(ctx, "hello"); err != nil {
		t.Fatal(err)
	}
	runningAt(t, e, ctx, 3)
	starts, _, _ := x.snapshot()
	last := starts[len(starts)-1]
	want := api.HealthCheck{Type: api.HealthHTTP, Path: "/healthz", Timeout: 7 * time.Second, Interval: 2 * time.Second}
	if last.HealthCheck != want {
		t.Fatalf("spec health check = %+v, want %+v", last.HealthCheck, want)
	}
	if !slices.Contains(eventTypes(t, e, ctx), "health-check") {
		t.Errorf("no health-check event")
	}
}

// TestUnhealthyReleaseRollsBack: a push whose instances never run fails with
// the reason, the previous release is current again and keeps running.
func TestUnhealthyReleaseRollsBack(t *testing.T) {
	srv := newServer(t)
	e := newEnv(t, srv, nil, nil)
	e.run()
	startBuilder(t, srv, &fakeBuilder{})
	x := startExecutor(t, srv, "node-1", nil)
	ctx := e.ctx()
	if _, err := e.ctrl.Deploys.Deploy(ctx, api.DeployRequest{App: "hello", Source: source(), CreateApp: true, Wait: true}); err != nil {
		t.Fatal(err)
	}
	x.mu.Lock()
	x.crash = "exited with code 1 before becoming healthy"
	x.mu.Unlock()
	var rec recorder
	_, err := e.ctrl.Deploys.Deploy(ctx, api.DeployRequest{App: "hello", Source: source(), Wait: true, Progress: rec.add})
	if api.ErrorCode(err) != api.ETimeout || !strings.Contains(api.ErrorMessage(err), "exited with code 1 before becoming healthy") ||
		!strings.Contains(api.ErrorMessage(err), "rolled back to v1") {
		t.Fatalf("unhealthy deploy: got %v, want a timeout naming the reason and the rollback", err)
	}
	if !rec.has(api.DeployEventStatus, "rolled back to v1") {
		t.Errorf("pusher saw no rollback status line")
	}
	d, err := e.ctrl.Apps.AppDetail(ctx, "hello")
	if err != nil {
		t.Fatal(err)
	}
	if d.CurrentRelease != 1 {
		t.Fatalf("current release %d after the rollback, want 1", d.CurrentRelease)
	}
	runningAt(t, e, ctx, 1) // v2's instance is stopped; v1's kept running
	evs, err := e.ctrl.Apps.Events(ctx, "hello", 0)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(evs, func(ev *api.Event) bool {
		return ev.Type == "rollback" && strings.Contains(ev.Message, "automatic rollback to v1")
	}) {
		t.Errorf("no rollback event in %+v", evs)
	}
	rels, _ := e.ctrl.Apps.Releases(ctx, "hello")
	if len(rels) != 2 {
		t.Errorf("%d releases, want 2 (the failed one stays in the history)", len(rels))
	}
}

// TestRunTask runs a task on a scripted node: the client gets started, the
// output lines in order and the exit with its code; the node gets the
// release's droplet and env in a task spec.
func TestRunTask(t *testing.T) {
	e, _, ctx := deployed(t, nil)
	if _, err := e.ctrl.Apps.ChangeEnv(ctx, "hello", api.EnvChange{Set: map[string]string{"GREETING": "hi"}}); err != nil {
		t.Fatal(err)
	}
	// A second node that runs tasks (and nothing else), and has no instances,
	// so it is picked.
	conn := connect(t, e.srv, "task-node")
	specs := make(chan api.InstanceSpec, 1)
	sub, err := bus.Handle(conn, api.SubjectNodeCommand("node-0"), "", func(_ context.Context, cmd *api.NodeCommand) (*api.NodeCommandReply, error) {
		if cmd.Kind != api.CmdRun {
			return &api.NodeCommandReply{Version: api.MessageVersion}, nil
		}
		s := *cmd.Start
		specs <- s
		go func() {
			for _, l := range []string{"one", "two", "three"} {
				_ = conn.Publish(api.SubjectLogs(s.AppID), api.LogEnvelope{AppID: s.AppID, App: s.AppName, Source: "task/" + s.InstanceID, Stream: "stdout", Line: l})
			}
			code := 3
			_ = conn.Publish(api.SubjectTaskExit(s.InstanceID), api.InstanceEvent{Version: api.MessageVersion, ExitCode: &code, Reason: "exited with code 3"})
		}()
		return &api.NodeCommandReply{Version: api.MessageVersion}, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	hbCtx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		for hbCtx.Err() == nil {
			_ = conn.Publish(api.SubjectNodeHeartbeat, api.NodeHeartbeat{Version: api.MessageVersion, NodeID: "node-0", Capacity: api.Capacity{MemoryMB: 1024}, Instances: []api.InstanceReport{}})
			time.Sleep(50 * time.Millisecond)
		}
	}()
	eventually(t, "task node known", func() bool {
		for _, n := range e.ctrl.Nodes.List() {
			if n.ID == "node-0" {
				return true
			}
		}
		return false
	})

	if _, err := e.ctrl.Tasks.RunTask(ctx, "hello", api.TaskRequest{Command: " "}, nil); api.ErrorCode(err) != api.EInvalid {
		t.Fatalf("empty command: got %v, want invalid", err)
	}
	var got []api.TaskEvent
	exit, err := e.ctrl.Tasks.RunTask(ctx, "hello", api.TaskRequest{Command: "echo $GREETING"}, func(ev api.TaskEvent) error {
		got = append(got, ev)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if exit.ExitCode == nil || *exit.ExitCode != 3 {
		t.Fatalf("exit = %+v, want code 3", exit)
	}
	var lines []string
	for _, ev := range got {
		if ev.Type == api.TaskEventLog {
			lines = append(lines, ev.Line)
		}
	}
	if got[0].Type != api.TaskEventStarted || got[len(got)-1].Type != api.TaskEventExit || strings.Join(lines, ",") != "one,two,three" {
		t.Fatalf("events = %+v, want started, one, two, three, exit", got)
	}
	s := <-specs
	if !s.Task || s.Command != "echo $GREETING" || s.Env["GREETING"] != "hi" || s.Release != 3 || !s.DropletBlob.Valid() || len(s.Routes) != 0 {
		t.Fatalf("task spec = %+v, want a task of release 3 with its env and droplet, no routes", s)
	}
}

// TestConfigChangeRollsBack: an env change whose instances never become
// healthy is rolled back by the converger — the release before it is current
// again and its instance, which never stopped, keeps running.
func TestConfigChangeRollsBack(t *testing.T) {
	e, x, ctx := deployed(t, nil)
	runningAt(t, e, ctx, 2)
	x.mu.Lock()
	x.crash = "exited with code 2 before becoming healthy"
	x.mu.Unlock()
	rel, err := e.ctrl.Apps.ChangeEnv(ctx, "hello", api.EnvChange{Set: map[string]string{"DATABASE_URL": "broken"}})
	if err != nil {
		t.Fatal(err)
	}
	if rel.Version != 3 {
		t.Fatalf("env change made release v%d, want v3", rel.Version)
	}
	eventually(t, "v2 current again", func() bool {
		d, err := e.ctrl.Apps.AppDetail(ctx, "hello")
		return err == nil && d.CurrentRelease == 2
	})
	ins := runningAt(t, e, ctx, 2)
	if len(ins) != 1 {
		t.Fatalf("%d instances after the rollback, want v2's one", len(ins))
	}
	// The event is written just after the app is rolled back.
	eventually(t, "a rollback event naming the reason", func() bool {
		evs, err := e.ctrl.Apps.Events(ctx, "hello", 0)
		return err == nil && slices.ContainsFunc(evs, func(ev *api.Event) bool {
			return ev.Type == "rollback" && strings.Contains(ev.Message, "automatic rollback to v2: release v3 did not become healthy: exited with code 2")
		})
	})
}
