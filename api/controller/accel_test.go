package controller_test

import (
	"context"
	"testing"
	"time"

	"github.com/strata-paas/strata/api"
	"github.com/strata-paas/strata/api/bus"
)

// startVMNode starts a fake executor whose heartbeats offer process and
// microvm isolation and say its microvm driver runs guests under accel.
func startVMNode(t *testing.T, srv *bus.Server, id, accel string) *fakeExecutor {
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
				Version: api.MessageVersion, NodeID: id, Substrate: api.SubstrateVM,
				Isolations: []api.Isolation{api.IsolationProcess, api.IsolationMicroVM}, Accel: accel,
				Capacity: api.Capacity{MemoryMB: 8192, CPUs: 2}, Time: time.Now(), Interval: 50 * time.Millisecond,
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

// TestNodeAccel: the acceleration a node's heartbeat reports is in the node
// list, and on the app detail's microvm instances (not on its others).
func TestNodeAccel(t *testing.T) {
	srv := newServer(t)
	e := newEnv(t, srv, nil, nil)
	e.run()
	startBuilder(t, srv, &fakeBuilder{})
	startVMNode(t, srv, "vm-1", "tcg")
	ctx := e.ctx()
	eventually(t, "the node", func() bool { return len(e.ctrl.Nodes.List()) == 1 })
	if n := e.ctrl.Nodes.List()[0]; n.Accel != "tcg" {
		t.Fatalf("node %s lists accel %q, want tcg", n.ID, n.Accel)
	}

	for _, app := range []string{"boxed", "plain"} {
		if _, err := e.ctrl.Apps.CreateApp(ctx, app); err != nil {
			t.Fatal(err)
		}
	}
	if err := e.ctrl.Placement.SetAppPlacement(ctx, "boxed", api.PlacementPolicy{Isolation: api.IsolationMicroVM}); err != nil {
		t.Fatal(err)
	}
	want := map[string]struct {
		iso   api.Isolation
		accel string
	}{"boxed": {api.IsolationMicroVM, "tcg"}, "plain": {api.IsolationProcess, ""}}
	for app, w := range want {
		if _, err := e.ctrl.Deploys.Deploy(ctx, api.DeployRequest{App: app, Source: source(), Wait: true}); err != nil {
			t.Fatal(err)
		}
		d, err := e.ctrl.Apps.AppDetail(ctx, app)
		if err != nil || len(d.Instances) == 0 {
			t.Fatalf("%s detail: %+v, %v", app, d, err)
		}
		for _, in := range d.Instances {
			if in.Isolation != w.iso || in.Accel != w.accel {
				t.Errorf("%s instance %s shows isolation %q accel %q, want %q %q", app, in.ID, in.Isolation, in.Accel, w.iso, w.accel)
			}
		}
	}
}
