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
