package executor_test

import (
	"slices"
	"testing"
	"time"

	"github.com/strata-paas/strata/api"
	"github.com/strata-paas/strata/deploy/driver"
	"github.com/strata-paas/strata/deploy/driver/mock"
	"github.com/strata-paas/strata/deploy/executor"
)

// TestSeveralDrivers: an executor with two drivers offers both isolations in
// its heartbeats, hands each instance to the driver of its spec's isolation
// (the process driver when it names none), reports that isolation per
// instance, and refuses an isolation it does not offer.
func TestSeveralDrivers(t *testing.T) {
	h := newHarness(t)
	proc := mock.New(mock.Config{})
	ctr := mock.New(mock.Config{Name: "mock-container", Isolations: []api.Isolation{api.IsolationContainer}})
	e, _ := h.run(executor.Config{NodeID: "node-iso", DataDir: t.TempDir()}, ctr, proc)
	ref := h.blobs.add(droplet(t, map[string][]byte{"run.sh": []byte("#!/bin/sh\n")}))
	spec := func(id string, iso api.Isolation) api.InstanceSpec {
		return api.InstanceSpec{InstanceID: id, AppID: "app-i", AppName: "iso", Process: "worker",
			DropletBlob: ref, Command: "run", Isolation: iso, HealthCheck: api.HealthCheck{Type: api.HealthProcess}}
	}
	h.start(e.NodeID(), spec("in-ctr", api.IsolationContainer))
	h.start(e.NodeID(), spec("in-default", ""))
	mark := h.rec.len()
	err := h.command(e.NodeID(), api.NodeCommand{Kind: api.CmdStart, Start: &[]api.InstanceSpec{spec("in-vm", api.IsolationMicroVM)}[0]})
	if api.ErrorCode(err) != api.EInvalid {
		t.Fatalf("start with isolation microvm: %v, want invalid (not offered here)", err)
	}
	_, hb := waitFor(t, h.rec, api.SubjectNodeHeartbeat, mark, "a heartbeat with both instances running", func(hb *api.NodeHeartbeat) bool {
		n := 0
		for _, r := range hb.Instances {
			if r.State == api.InstanceRunning {
				n++
			}
		}
		return n == 2
	})
	if want := []api.Isolation{api.IsolationContainer, api.IsolationProcessUnconfined}; !slices.Equal(hb.Isolations, want) {
		t.Errorf("heartbeat isolations = %v, want %v", hb.Isolations, want)
	}
	for _, r := range hb.Instances {
		want := map[string]api.Isolation{"in-ctr": api.IsolationContainer, "in-default": api.IsolationProcessUnconfined}[r.InstanceID]
		if r.Isolation != want {
			t.Errorf("instance %s reports isolation %q, want %q", r.InstanceID, r.Isolation, want)
		}
	}
	ids := func(d *mock.Driver) []string {
		var out []string
		for _, s := range d.Starts() {
			out = append(out, s.ID)
		}
		return out
	}
	if got := ids(ctr); !slices.Equal(got, []string{"in-ctr"}) {
		t.Errorf("container driver started %v, want [in-ctr]", got)
	}
	if got := ids(proc); !slices.Equal(got, []string{"in-default"}) {
		t.Errorf("process driver started %v, want [in-default]", got)
	}
	for _, id := range []string{"in-ctr", "in-default"} {
		m := h.rec.len()
		h.stop(e.NodeID(), id, time.Second)
		waitFor(t, h.rec, api.SubjectInstanceEvent, m, id+" stopped", eventIs(id, api.InstanceStopped))
	}
}

// TestDuplicateIsolationRefused: two drivers offering one isolation are a
// configuration error.
func TestDuplicateIsolationRefused(t *testing.T) {
	h := newHarness(t)
	a := mock.New(mock.Config{Name: "a"})
	b := mock.New(mock.Config{Name: "b"})
	if _, err := executor.New(executor.Config{DataDir: t.TempDir()}, h.conn, h.blobs, a, b); api.ErrorCode(err) != api.EInvalid {
		t.Fatalf("New with two process-unconfined drivers: %v, want invalid", err)
	}
	var none []driver.Driver
	if _, err := executor.New(executor.Config{DataDir: t.TempDir()}, h.conn, h.blobs, none...); err == nil {
		t.Fatalf("New without drivers succeeded")
	}
}
