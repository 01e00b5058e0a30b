package main

import (
	"strings"
	"testing"
	"time"

	"github.com/strata-paas/strata/api"
	"github.com/strata-paas/strata/api/httpapi/httpapitest"
)

// TestNodesAccel: `strata nodes` shows microvm with the acceleration its
// node's driver uses.
func TestNodesAccel(t *testing.T) {
	c := newCLI(t).loggedIn(httpapitest.AdminToken)
	c.fake.Nodes = []api.Node{{ID: "n1", State: "ready", Substrate: api.SubstrateVM,
		Isolations: []api.Isolation{api.IsolationProcess, api.IsolationMicroVM}, Accel: "tcg",
		Capacity: api.Capacity{CPUs: 2, MemoryMB: 4096}, Instances: 1, LastSeen: testNow.Add(-5 * time.Second)}}
	out := c.mustRun("nodes")
	want := "ID  STATE  SUBSTRATE  ISOLATIONS           CPUS  MEMORY  INSTANCES  LAST SEEN\n" +
		"n1  ready  vm         process,microvm/tcg  2     4G      1          5s ago\n"
	if out != want {
		t.Fatalf("nodes printed\n%s\nwant\n%s", out, want)
	}
	if js := c.mustRun("nodes", "--json"); !strings.Contains(js, `"accel":"tcg"`) && !strings.Contains(js, `"accel": "tcg"`) {
		t.Errorf("nodes --json has no accel:\n%s", js)
	}
}

// TestAppAccel: `strata app` shows a microvm instance's acceleration.
func TestAppAccel(t *testing.T) {
	c := newCLI(t).loggedIn(httpapitest.UserToken)
	c.fake.AddApp(api.AppDetail{
		App:       api.App{Name: "boxed", State: api.AppStarted, CurrentRelease: 1},
		Release:   &api.Release{Version: 1, Description: "push"},
		Processes: []api.Process{{Type: "web", Instances: 1, MemoryMB: 128, DiskMB: 1024}},
		Instances: []*api.Instance{{Process: "web", Index: 0, State: api.InstanceRunning, NodeID: "n1", Release: 1,
			StartedAt: testNow.Add(-3 * time.Second), Substrate: api.SubstrateVM, Isolation: api.IsolationMicroVM, Accel: "tcg"}},
		Placement: api.PlacementPolicy{Isolation: api.IsolationMicroVM},
	})
	out := c.mustRun("app", "boxed")
	var row []string
	for _, l := range strings.Split(out, "\n") {
		if f := strings.Fields(l); len(f) > 0 && f[0] == "0" {
			row = f
		}
	}
	if len(row) < 5 || row[4] != "microvm/tcg" {
		t.Fatalf("app printed\n%s\nwant instance 0 with isolation microvm/tcg", out)
	}
}
