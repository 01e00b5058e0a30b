package controller

import (
	"testing"
	"time"

	"github.com/strata-paas/strata/api"
	"github.com/strata-paas/strata/deploy/scheduler"
)

// A NATS outage of the controller's own connection must not make nodes lost.
func TestNodeRegistrySuspendedDuringBusOutage(t *testing.T) {
	r := newNodeRegistry()
	t0 := time.Unix(1000, 0)
	ttl := 5 * time.Second
	r.heartbeat(&api.NodeHeartbeat{NodeID: "n1"}, t0)

	if got := r.views(t0.Add(10*time.Second), ttl)["n1"].node.State; got != scheduler.NodeLost {
		t.Fatalf("silent node with the bus up: state %q, want lost", got)
	}
	r.suspend()
	if got := r.views(t0.Add(40*time.Second), ttl)["n1"].node.State; got != scheduler.NodeReady {
		t.Fatalf("silent node while the bus is down: state %q, want ready", got)
	}
	r.resume(t0.Add(40 * time.Second))
	if got := r.views(t0.Add(43*time.Second), ttl)["n1"].node.State; got != scheduler.NodeReady {
		t.Fatalf("node just after reconnect: state %q, want ready (lease renewed)", got)
	}
	if got := r.views(t0.Add(46*time.Second), ttl)["n1"].node.State; got != scheduler.NodeLost {
		t.Fatalf("node silent for a TTL after reconnect: state %q, want lost", got)
	}
}

// A heartbeat taken before an instance event but received after it does not
// undo the event; a heartbeat taken after it wins again.
func TestNodeRegistryStaleHeartbeatAfterEvent(t *testing.T) {
	r := newNodeRegistry()
	t0 := time.Unix(1000, 0)
	starting := api.InstanceReport{InstanceID: "i1", State: api.InstanceStarting}
	running := api.InstanceReport{InstanceID: "i1", State: api.InstanceRunning, Port: 4000}
	state := func(now time.Time) api.InstanceState { return r.views(now, time.Minute)["n1"].listed["i1"].State }

	r.heartbeat(&api.NodeHeartbeat{NodeID: "n1", Time: t0, Instances: []api.InstanceReport{starting}}, t0)
	r.event(&api.InstanceEvent{NodeID: "n1", Time: t0.Add(2 * time.Second), Instance: running}, t0.Add(2*time.Second))
	if got := state(t0.Add(2 * time.Second)); got != api.InstanceRunning {
		t.Fatalf("after the running event: %q, want running", got)
	}
	// Taken at t0+1s, received at t0+3s: older than the event.
	r.heartbeat(&api.NodeHeartbeat{NodeID: "n1", Time: t0.Add(time.Second), Instances: []api.InstanceReport{starting}}, t0.Add(3*time.Second))
	if got := state(t0.Add(3 * time.Second)); got != api.InstanceRunning {
		t.Fatalf("after a stale heartbeat: %q, want running kept", got)
	}
	if p := r.views(t0.Add(3*time.Second), time.Minute)["n1"].listed["i1"].Port; p != 4000 {
		t.Fatalf("port after a stale heartbeat: %d, want the event's 4000", p)
	}
	// A heartbeat taken after the event is the truth again (here: crashed).
	crashed := api.InstanceReport{InstanceID: "i1", State: api.InstanceCrashed}
	r.heartbeat(&api.NodeHeartbeat{NodeID: "n1", Time: t0.Add(4 * time.Second), Instances: []api.InstanceReport{crashed}}, t0.Add(4*time.Second))
	if got := state(t0.Add(4 * time.Second)); got != api.InstanceCrashed {
		t.Fatalf("after a newer heartbeat: %q, want crashed", got)
	}
	if len(r.events) != 0 {
		t.Fatalf("%d events kept after a newer heartbeat, want none", len(r.events))
	}
}
