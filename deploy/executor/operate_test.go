package executor_test

import (
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/strata-paas/strata/api"
	"github.com/strata-paas/strata/deploy/executor"
)

// TestLivenessUnroutesThenRestarts: an http-checked instance whose check
// starts failing while running is unrouted at once, then (after the failures
// in a row) stopped as crashed and restarted, and routed again once healthy.
// Its heartbeat reports memory use. The spec's check interval wins over the
// executor's default (an hour here, so only the spec's can see the failure).
func TestLivenessUnroutesThenRestarts(t *testing.T) {
	h := newHarness(t)
	data := t.TempDir()
	cfg := executor.Config{NodeID: "node-l", DataDir: data, HeartbeatInterval: 100 * time.Millisecond, Restart: fastRestart(),
		LivenessInterval: time.Hour, LivenessFailures: 3, StopGrace: 2 * time.Second}
	e, _ := h.run(cfg, processDriver(t, filepath.Join(data, "driver")))
	ref := h.webappDroplet()
	spec := webSpec("live-1", ref)
	spec.HealthCheck = api.HealthCheck{Type: api.HealthHTTP, Path: "/healthz", Interval: 100 * time.Millisecond}
	h.start(e.NodeID(), spec)
	_, reg := waitFor(t, h.rec, api.SubjectRouterRegister, 0, "registration", func(r *api.RouterRegistration) bool { return r.PrivateInstanceID == "live-1" })
	waitFor(t, h.rec, api.SubjectNodeHeartbeat, 0, "heartbeat with memory use", func(hb *api.NodeHeartbeat) bool {
		return len(hb.Instances) == 1 && hb.Instances[0].MemoryBytes > 0
	})

	mark := h.rec.len()
	if _, err := get(t, reg.Host, reg.Port, "/sick"); err != nil {
		t.Fatal(err)
	}
	u, _ := waitFor(t, h.rec, api.SubjectRouterUnregister, mark, "unregister on a failed check", func(r *api.RouterRegistration) bool { return r.PrivateInstanceID == "live-1" })
	c, crash := waitFor(t, h.rec, api.SubjectInstanceEvent, mark, "crash after failed checks", eventIs("live-1", api.InstanceCrashed))
	if u > c || crash.Reason == "" || crash.Instance.FailedStarts != 0 {
		t.Fatalf("unregister #%d, crash #%d %+v: want the unregister first, a reason, and no failed start (it was healthy)", u, c, crash)
	}
	// No registration between the failed check and the crash.
	for i := u; i < c; i++ {
		r, ok := decodeAt[api.RouterRegistration](h.rec, i, api.SubjectRouterRegister)
		if ok && r.PrivateInstanceID == "live-1" {
			t.Fatalf("instance re-registered (#%d) while its check failed", i)
		}
	}
	_, ev := waitFor(t, h.rec, api.SubjectInstanceEvent, c, "running again", eventIs("live-1", api.InstanceRunning))
	if ev.Instance.Restarts != 1 {
		t.Fatalf("restarts = %d, want 1", ev.Instance.Restarts)
	}
	waitFor(t, h.rec, api.SubjectRouterRegister, c, "routed again", func(r *api.RouterRegistration) bool { return r.PrivateInstanceID == "live-1" })
}

// TestCrashEventLastLinesAndFailedStarts: a crash event carries the exit
// code and the last output lines; runs that never pass the port check count
// as failed starts.
func TestCrashEventLastLinesAndFailedStarts(t *testing.T) {
	h := newHarness(t)
	data := t.TempDir()
	cfg := executor.Config{NodeID: "node-c", DataDir: data, Restart: fastRestart()}
	e, _ := h.run(cfg, processDriver(t, filepath.Join(data, "driver")))
	ref := h.webappDroplet()
	spec := webSpec("crash-1", ref)
	spec.Command = "echo one; echo two; echo three >&2; sleep 0.2; exit 4"
	h.start(e.NodeID(), spec)
	from := 0
	for i := 1; i <= 2; i++ {
		var ev *api.InstanceEvent
		from, ev = waitFor(t, h.rec, api.SubjectInstanceEvent, from, "crash", eventIs("crash-1", api.InstanceCrashed))
		from++
		if ev.ExitCode == nil || *ev.ExitCode != 4 {
			t.Fatalf("crash %d: exit code %v, want 4", i, ev.ExitCode)
		}
		for _, want := range []string{"one", "two", "three"} {
			if !slices.Contains(ev.LastLines, want) {
				t.Fatalf("crash %d: last lines %q lack %q", i, ev.LastLines, want)
			}
		}
		if len(ev.LastLines) != 3 {
			t.Fatalf("crash %d: last lines %q, want only this run's 3 lines", i, ev.LastLines)
		}
		if ev.Instance.FailedStarts != i {
			t.Fatalf("crash %d: failed starts %d, want %d (it never listened)", i, ev.Instance.FailedStarts, i)
		}
	}
	h.stop(e.NodeID(), "crash-1", time.Second)
}

// TestStopDrainsBeforeSIGTERM: the routes of a stopped instance are withdrawn
// and the drain delay passes before the app gets SIGTERM.
func TestStopDrainsBeforeSIGTERM(t *testing.T) {
	h := newHarness(t)
	data := t.TempDir()
	drain := 300 * time.Millisecond
	e, _ := h.run(executor.Config{NodeID: "node-d", DataDir: data, DrainDelay: drain}, processDriver(t, filepath.Join(data, "driver")))
	ref := h.webappDroplet()
	h.start(e.NodeID(), webSpec("drain-1", ref))
	waitFor(t, h.rec, api.SubjectRouterRegister, 0, "registration", func(r *api.RouterRegistration) bool { return r.PrivateInstanceID == "drain-1" })
	mark := h.rec.len()
	sent := time.Now()
	h.stop(e.NodeID(), "drain-1", 5*time.Second)
	u, _ := waitFor(t, h.rec, api.SubjectRouterUnregister, mark, "unregister", func(r *api.RouterRegistration) bool { return r.PrivateInstanceID == "drain-1" })
	g, line := waitFor(t, h.rec, api.SubjectLogs("app-id-1"), mark, "SIGTERM line", func(l *api.LogEnvelope) bool { return l.Line == "got SIGTERM, bye" })
	if u > g {
		t.Fatalf("unregister #%d after the SIGTERM line #%d", u, g)
	}
	if gap := line.Time.Sub(sent); gap < drain {
		t.Fatalf("SIGTERM %s after the stop command, want at least the drain delay %s", gap, drain)
	}
}

// TestTask runs one-off tasks: output tagged task/<id> precedes the exit
// event with the command's exit code; tasks never show in heartbeats; a
// stop ends a long task.
func TestTask(t *testing.T) {
	h := newHarness(t)
	data := t.TempDir()
	e, _ := h.run(executor.Config{NodeID: "node-t", DataDir: data, HeartbeatInterval: 50 * time.Millisecond}, processDriver(t, filepath.Join(data, "driver")))
	ref := h.webappDroplet()
	spec := webSpec("task-1", ref)
	spec.Task, spec.Routes, spec.Process = true, nil, "task"
	spec.Command = "echo hi $GREETING; exit 3"
	if err := h.command(e.NodeID(), api.NodeCommand{Kind: api.CmdStart, Start: &spec}); api.ErrorCode(err) != api.EInvalid {
		t.Fatalf("start of a task spec: got %v, want invalid", err)
	}
	mark := h.rec.len()
	if err := h.command(e.NodeID(), api.NodeCommand{Kind: api.CmdRun, Start: &spec}); err != nil {
		t.Fatal(err)
	}
	l, _ := waitFor(t, h.rec, api.SubjectLogs("app-id-1"), mark, "task output", func(l *api.LogEnvelope) bool {
		return l.Source == "task/task-1" && l.Line == "hi hi"
	})
	x, ev := waitFor(t, h.rec, api.SubjectTaskExit("task-1"), mark, "task exit", func(*api.InstanceEvent) bool { return true })
	if ev.ExitCode == nil || *ev.ExitCode != 3 || l > x {
		t.Fatalf("exit %+v (#%d) after output #%d: want exit code 3 after the output", ev, x, l)
	}
	for i := mark; i < h.rec.len(); i++ {
		if hb, ok := decodeAt[api.NodeHeartbeat](h.rec, i, api.SubjectNodeHeartbeat); ok && len(hb.Instances) > 0 {
			t.Fatalf("heartbeat lists %+v while only a task ran", hb.Instances)
		}
	}

	long := spec
	long.InstanceID, long.Command = "task-2", "echo started; sleep 60"
	mark = h.rec.len()
	if err := h.command(e.NodeID(), api.NodeCommand{Kind: api.CmdRun, Start: &long}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, h.rec, api.SubjectLogs("app-id-1"), mark, "long task output", func(l *api.LogEnvelope) bool { return l.Line == "started" })
	h.stop(e.NodeID(), "task-2", time.Second)
	_, ev = waitFor(t, h.rec, api.SubjectTaskExit("task-2"), mark, "stopped task exit", func(*api.InstanceEvent) bool { return true })
	if ev.ExitCode != nil && *ev.ExitCode == 0 {
		t.Fatalf("stopped task exit %+v, want a failure", ev)
	}
}

// TestRoutesCommand: the routes command changes what a running instance
// registers without restarting it — removed URIs are unregistered at once,
// the new set is registered and reported in heartbeats — and bad routes are
// refused.
func TestRoutesCommand(t *testing.T) {
	h := newHarness(t)
	data := t.TempDir()
	e, _ := h.run(executor.Config{NodeID: "node-r", DataDir: data, HeartbeatInterval: 50 * time.Millisecond}, processDriver(t, filepath.Join(data, "driver")))
	ref := h.webappDroplet()
	h.start(e.NodeID(), webSpec("routes-1", ref))
	_, first := waitFor(t, h.rec, api.SubjectInstanceEvent, 0, "running", eventIs("routes-1", api.InstanceRunning))
	waitFor(t, h.rec, api.SubjectRouterRegister, 0, "registration", func(r *api.RouterRegistration) bool { return r.PrivateInstanceID == "routes-1" })

	mark := h.rec.len()
	want := []string{"blog.localhost/api", "shop.localhost"}
	if err := h.command(e.NodeID(), api.NodeCommand{Kind: api.CmdRoutes, InstanceID: "routes-1", Routes: want}); err != nil {
		t.Fatal(err)
	}
	_, u := waitFor(t, h.rec, api.SubjectRouterUnregister, mark, "old route unregistered", func(r *api.RouterRegistration) bool { return r.PrivateInstanceID == "routes-1" })
	if !slices.Equal(u.URIs, []string{"hello.localhost"}) || !u.Forget {
		t.Fatalf("unregistered %q (forget %v), want only the removed route, to be forgotten", u.URIs, u.Forget)
	}
	waitFor(t, h.rec, api.SubjectRouterRegister, mark, "new routes registered", func(r *api.RouterRegistration) bool {
		return r.PrivateInstanceID == "routes-1" && slices.Equal(r.URIs, want)
	})
	_, hb := waitFor(t, h.rec, api.SubjectNodeHeartbeat, mark, "heartbeat with the new routes", func(hb *api.NodeHeartbeat) bool {
		return len(hb.Instances) == 1 && slices.Equal(hb.Instances[0].Routes, want)
	})
	if in := hb.Instances[0]; in.Restarts != 0 || !in.StartedAt.Equal(first.Instance.StartedAt) {
		t.Fatalf("instance after the routes command = %+v: it must keep running, not restart", in)
	}
	for _, bad := range [][]string{{""}, {"a b"}, {"x\n"}} {
		if err := h.command(e.NodeID(), api.NodeCommand{Kind: api.CmdRoutes, InstanceID: "routes-1", Routes: bad}); api.ErrorCode(err) != api.EInvalid {
			t.Errorf("routes %q: got %v, want invalid", bad, err)
		}
	}
	h.stop(e.NodeID(), "routes-1", time.Second)
}
