package controller_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/strata-paas/strata/api"
	"github.com/strata-paas/strata/api/bus"
)

// startNode starts a fake executor that heartbeats as the given substrate
// with labels (the shared fake always reports vm without labels).
func startNode(t *testing.T, srv *bus.Server, id string, sub api.Substrate, labels map[string]string) *fakeExecutor {
	x := startExecutor(t, srv, id, func(x *fakeExecutor) { x.heartbeats = false })
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	t.Cleanup(func() { cancel(); <-done })
	go func() {
		defer close(done)
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for {
			x.mu.Lock()
			hb := api.NodeHeartbeat{
				Version: api.MessageVersion, NodeID: id, Substrate: sub, Labels: labels,
				Isolations: []api.Isolation{api.IsolationProcess}, Capacity: api.Capacity{MemoryMB: 8192, CPUs: 2},
				Time: time.Now(), Interval: 50 * time.Millisecond,
			}
			for _, in := range x.instances {
				hb.Instances = append(hb.Instances, in)
			}
			x.mu.Unlock()
			_ = x.conn.Publish(api.SubjectNodeHeartbeat, hb)
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
	}()
	return x
}

func nodesOf(t *testing.T, e *env, ctx context.Context, app string) map[string]int {
	t.Helper()
	d, err := e.ctrl.Apps.AppDetail(ctx, app)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]int{}
	for _, in := range d.Instances {
		if in.State == api.InstanceRunning {
			out[in.NodeID]++
		}
	}
	return out
}

func TestPlacementPolicies(t *testing.T) {
	srv := newServer(t)
	e := newEnv(t, srv, nil, nil)
	e.run()
	startBuilder(t, srv, &fakeBuilder{})
	startNode(t, srv, "metal-1", api.SubstrateMetal, map[string]string{"zone": "a"})
	startNode(t, srv, "metal-2", api.SubstrateMetal, map[string]string{"zone": "b"})
	startNode(t, srv, "vm-1", api.SubstrateVM, map[string]string{"zone": "a"})
	ctx := e.ctx()
	eventually(t, "three nodes", func() bool { return len(e.ctrl.Nodes.List()) == 3 })

	if _, err := e.ctrl.Apps.CreateApp(ctx, "hello"); err != nil {
		t.Fatal(err)
	}
	if err := e.ctrl.Placement.SetAppPlacement(ctx, "hello", api.PlacementPolicy{Substrate: "bare"}); api.ErrorCode(err) != api.EInvalid {
		t.Fatalf("bad substrate: err = %v, want invalid", err)
	}
	if err := e.ctrl.Placement.SetAppPlacement(ctx, "hello", api.PlacementPolicy{Substrate: api.SubstrateMetal}); err != nil {
		t.Fatal(err)
	}
	three := 3
	if _, err := e.ctrl.Apps.Scale(ctx, "hello", api.ScaleRequest{Instances: &three}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.ctrl.Deploys.Deploy(ctx, api.DeployRequest{App: "hello", Source: source(), Wait: true}); err != nil {
		t.Fatal(err)
	}
	got := nodesOf(t, e, ctx, "hello")
	if got["vm-1"] != 0 || got["metal-1"] == 0 || got["metal-2"] == 0 {
		t.Fatalf("instances per node = %v, want only and both metal nodes", got)
	}
	d, _ := e.ctrl.Apps.AppDetail(ctx, "hello")
	for _, in := range d.Instances {
		if in.Substrate != api.SubstrateMetal || in.Isolation != api.IsolationProcess {
			t.Errorf("instance %s on %s shows substrate %q isolation %q", in.ID, in.NodeID, in.Substrate, in.Isolation)
		}
	}
	if d.Placement.Substrate != api.SubstrateMetal {
		t.Errorf("detail placement = %+v", d.Placement)
	}

	// A space default of zone=a combines with the app's substrate=metal:
	// only metal-1 matches, and the instances move there.
	if _, err := e.ctrl.Placement.SetSpacePlacement(ctx, "default", api.PlacementPolicy{Labels: map[string]string{"zone": "a"}}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "instances moved to metal-1", func() bool {
		got := nodesOf(t, e, ctx, "hello")
		return got["metal-1"] == 3 && len(got) == 1
	})
	spaces, err := e.ctrl.Placement.Spaces(ctx)
	if err != nil || len(spaces) != 1 || spaces[0].Placement.Labels["zone"] != "a" {
		t.Fatalf("Spaces = %+v, %v", spaces, err)
	}

	// An app policy that nothing matches is unplaceable, with the reason shown.
	if err := e.ctrl.Placement.SetAppPlacement(ctx, "hello", api.PlacementPolicy{Substrate: api.SubstrateVM, Labels: map[string]string{"zone": "b"}}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "unplaceable reason", func() bool {
		d, _ := e.ctrl.Apps.AppDetail(ctx, "hello")
		return strings.Contains(d.Unplaceable, "no node matches placement substrate=vm zone=b")
	})
	// The old instances keep serving meanwhile (nothing to roll onto).
	if got := nodesOf(t, e, ctx, "hello"); got["metal-1"] != 3 {
		t.Errorf("instances per node while unplaceable = %v, want the 3 on metal-1 kept", got)
	}
}

func TestDrainMovesInstancesAndSurvivesRestart(t *testing.T) {
	srv := newServer(t)
	e := newEnv(t, srv, nil, nil)
	e.run()
	startBuilder(t, srv, &fakeBuilder{})
	a := startNode(t, srv, "node-a", api.SubstrateMetal, nil)
	ctx := e.ctx()
	eventually(t, "node-a", func() bool { return len(e.ctrl.Nodes.List()) == 1 })
	if _, err := e.ctrl.Deploys.Deploy(ctx, api.DeployRequest{App: "hello", Source: source(), CreateApp: true, Wait: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.ctrl.Placement.DrainNode(context.Background(), "node-a"); api.ErrorCode(err) != api.EForbidden {
		t.Fatalf("drain without admin: err = %v, want forbidden", err)
	}
	if _, err := e.ctrl.Placement.DrainNode(ctx, "nope"); api.ErrorCode(err) != api.ENotFound {
		t.Fatalf("drain unknown node: err = %v, want not_found", err)
	}
	n, err := e.ctrl.Placement.DrainNode(ctx, "node-a")
	if err != nil || n.State != "draining" {
		t.Fatalf("DrainNode = %+v, %v", n, err)
	}
	// With nowhere to go, the instance stays.
	time.Sleep(200 * time.Millisecond)
	if got := nodesOf(t, e, ctx, "hello"); got["node-a"] != 1 {
		t.Fatalf("instances = %v, want the one on node-a kept while nowhere else", got)
	}
	b := startNode(t, srv, "node-b", api.SubstrateMetal, nil)
	eventually(t, "instance moved to node-b", func() bool {
		got := nodesOf(t, e, ctx, "hello")
		return got["node-b"] == 1 && len(got) == 1
	})
	// The replacement was running before the old instance was stopped.
	_, stops, _ := a.snapshot()
	if len(stops) != 1 {
		t.Fatalf("node-a stops = %v, want 1", stops)
	}
	starts, _, timeline := b.snapshot()
	if len(starts) != 1 || len(timeline) < 2 || !strings.HasPrefix(timeline[1], "running") {
		t.Fatalf("node-b timeline = %v", timeline)
	}

	// A new controller on the same store still sees node-a draining.
	e2 := newEnv(t, srv, e.store, nil)
	e2.token = e.token // the admin exists, so the new controller made no token
	e2.run()
	eventually(t, "node-a draining after restart", func() bool {
		for _, n := range e2.ctrl.Nodes.List() {
			if n.ID == "node-a" {
				return n.State == "draining"
			}
		}
		return false
	})
	if n, err := e2.ctrl.Placement.UndrainNode(e2.ctx(), "node-a"); err != nil || n.State != "ready" {
		t.Fatalf("UndrainNode = %+v, %v", n, err)
	}
}
