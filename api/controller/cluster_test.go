package controller_test

import (
	"context"
	"testing"
	"time"

	"github.com/strata-paas/strata/api"
	"github.com/strata-paas/strata/api/controller"
)

// runUntil runs e's controller until the returned stop is called (or the
// test ends).
func runUntil(t *testing.T, e *env) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := e.ctrl.Run(ctx); err != nil {
			t.Errorf("Run: %v", err)
		}
	}()
	stop = func() { cancel(); <-done }
	t.Cleanup(stop)
	select {
	case <-e.ctrl.Ready():
	case <-time.After(10 * time.Second):
		t.Fatal("controller not ready after 10s")
	}
	return stop
}

// Two controllers share the database and the bus (docs/architecture.md,
// "Leader lease"): a deploy made through the one that does not lead sees its
// instance running — the instance events reach every controller, and the
// leader writes the row — and when the leader goes, the other takes over
// and a scale made through it completes.
func TestTwoControllers(t *testing.T) {
	srv := newServer(t)
	st := openSQLite(t)
	cfg := func(id string) func(*controller.Config) {
		return func(c *controller.Config) { c.ControllerID, c.LeaseTTL = id, time.Second }
	}
	a := newEnv(t, srv, st, cfg("controller-a"))
	b := newEnv(t, srv, st, cfg("controller-b"))
	b.token = a.token // the first bootstrap made the admin
	stopA, stopB := runUntil(t, a), runUntil(t, b)
	startBuilder(t, srv, &fakeBuilder{})
	startExecutor(t, srv, "node-1", nil)

	var leader, follower *env
	stop := map[*env]func(){a: stopA, b: stopB}
	eventually(t, "a leader", func() bool {
		ta, tb := a.ctrl.LeaderTerm(), b.ctrl.LeaderTerm()
		switch {
		case ta > 0 && tb > 0:
			t.Fatalf("both controllers lead (terms %d, %d)", ta, tb)
		case ta > 0:
			leader, follower = a, b
		case tb > 0:
			leader, follower = b, a
		}
		return leader != nil
	})

	ctx := follower.ctx()
	res, err := follower.ctrl.Deploys.Deploy(ctx, api.DeployRequest{App: "hello", Source: source(), CreateApp: true, Wait: true})
	if err != nil {
		t.Fatalf("deploy through the follower: %v", err)
	}
	if res.Running != 1 || res.Desired != 1 {
		t.Fatalf("deploy through the follower: running %d/%d, want 1/1", res.Running, res.Desired)
	}
	for _, e := range []*env{a, b} {
		eventually(t, e.cfg.ControllerID+" listing the instance as running", func() bool {
			d, err := e.ctrl.Apps.AppDetail(ctx, "hello")
			return err == nil && len(d.Instances) == 1 && d.Instances[0].State == api.InstanceRunning
		})
	}

	// The leader goes; the follower takes over and acts on a scale made
	// through it.
	stop[leader]()
	eventually(t, "the follower leading", func() bool { return follower.ctrl.LeaderTerm() > 0 })
	n := 2
	if _, err := follower.ctrl.Apps.Scale(ctx, "hello", api.ScaleRequest{Instances: &n}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "two instances running after the takeover", func() bool {
		d, err := follower.ctrl.Apps.AppDetail(ctx, "hello")
		if err != nil {
			return false
		}
		running := 0
		for _, in := range d.Instances {
			if in.State == api.InstanceRunning {
				running++
			}
		}
		return running == 2
	})
}
