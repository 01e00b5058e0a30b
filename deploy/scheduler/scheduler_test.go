package scheduler_test

import (
	"fmt"
	"slices"
	"testing"

	"github.com/strata-paas/strata/api"
	"github.com/strata-paas/strata/deploy/scheduler"
)

func node(id string, memMB int, opts ...func(*scheduler.Node)) scheduler.Node {
	n := scheduler.Node{Node: api.Node{
		ID: id, State: scheduler.NodeReady, Substrate: api.SubstrateVM,
		Isolations: []api.Isolation{api.IsolationProcess}, Capacity: api.Capacity{MemoryMB: memMB},
	}}
	for _, o := range opts {
		o(&n)
	}
	return n
}

func withState(s string) func(*scheduler.Node) { return func(n *scheduler.Node) { n.State = s } }
func withUsed(mb int) func(*scheduler.Node)    { return func(n *scheduler.Node) { n.UsedMB = mb } }
func metal(n *scheduler.Node)                  { n.Substrate = api.SubstrateMetal }
func withLabel(k, v string) func(*scheduler.Node) {
	return func(n *scheduler.Node) { n.Labels = map[string]string{k: v} }
}

func inst(id, app, proc string, index, release int, nodeID string, st api.InstanceState) *api.Instance {
	return &api.Instance{ID: id, AppID: app, Process: proc, Index: index, Release: release, NodeID: nodeID, State: st}
}

func web(app string, count, mem, release int) scheduler.Formation {
	return scheduler.Formation{AppID: app, Process: "web", Instances: count, MemoryMB: mem, Release: release}
}

// one is a snapshot of app's web formation of one 256 MB instance of release
// on nodes, with instances already there.
func one(release int, nodes []scheduler.Node, instances ...*api.Instance) scheduler.Snapshot {
	return scheduler.Snapshot{Nodes: nodes, Formations: []scheduler.Formation{web("app", 1, 256, release)}, Instances: instances}
}

// nodes is a list of nodes, for table rows.
func nodes(ns ...scheduler.Node) []scheduler.Node { return ns }

// placed is the placement of app's web instance index of release on nodeID
// with process isolation.
func placed(index, release int, nodeID string) scheduler.Placement {
	return scheduler.Placement{AppID: "app", Process: "web", Index: index, Release: release, NodeID: nodeID, Isolation: api.IsolationProcess}
}

// unplaced is app's web instance 0 that could not be placed for reason.
func unplaced(reason string) []scheduler.Unplaceable {
	return []scheduler.Unplaceable{{AppID: "app", Process: "web", Index: 0, Reason: reason}}
}

// withPolicy is f with placement policy p.
func withPolicy(f scheduler.Formation, p scheduler.Policy) []scheduler.Formation {
	f.Policy = p
	return []scheduler.Formation{f}
}

func TestPlan(t *testing.T) {
	running, starting := api.InstanceRunning, api.InstanceStarting
	tests := []struct {
		name        string
		snap        scheduler.Snapshot
		wantPlace   []scheduler.Placement
		wantStop    []string
		wantUnplace []scheduler.Unplaceable
	}{
		{
			name:      "places missing instance on the least loaded node",
			snap:      one(1, nodes(node("a", 1024, withUsed(512)), node("b", 1024))),
			wantPlace: []scheduler.Placement{placed(0, 1, "b")},
		},
		{
			name: "spreads an app across nodes before filling by memory",
			snap: scheduler.Snapshot{
				Nodes:      nodes(node("a", 4096), node("b", 4096, withUsed(1024))),
				Formations: []scheduler.Formation{web("app", 2, 256, 1)},
			},
			wantPlace: []scheduler.Placement{placed(0, 1, "a"), placed(1, 1, "b")},
		},
		{
			name: "nothing to do when the formation is satisfied",
			snap: one(1, nodes(node("a", 1024)), inst("i1", "app", "web", 0, 1, "a", running)),
		},
		{
			name:     "stops instances above the count",
			snap:     one(1, nodes(node("a", 1024)), inst("i1", "app", "web", 0, 1, "a", running), inst("i2", "app", "web", 1, 1, "a", running)),
			wantStop: []string{"i2"},
		},
		{
			name: "keeps the old release until the new one runs",
			snap: one(2, nodes(node("a", 1024)), inst("old", "app", "web", 0, 1, "a", running), inst("new", "app", "web", 0, 2, "a", starting)),
		},
		{
			name:     "stops the old release once the new one runs",
			snap:     one(2, nodes(node("a", 1024)), inst("old", "app", "web", 0, 1, "a", running), inst("new", "app", "web", 0, 2, "a", running)),
			wantStop: []string{"old"},
		},
		{
			name:      "places the new release beside the old one",
			snap:      one(2, nodes(node("a", 1024)), inst("old", "app", "web", 0, 1, "a", running)),
			wantPlace: []scheduler.Placement{placed(0, 2, "a")},
		},
		{
			name:      "replaces instances of a lost node and stops the old ones",
			snap:      one(1, nodes(node("a", 1024, withState(scheduler.NodeLost)), node("b", 1024)), inst("i1", "app", "web", 0, 1, "a", running)),
			wantPlace: []scheduler.Placement{placed(0, 1, "b")},
			wantStop:  []string{"i1"},
		},
		{
			name: "leaves instances on nodes not heard from yet",
			snap: one(1, nodes(node("b", 1024)), inst("i1", "app", "web", 0, 1, "unknown", running)),
		},
		{
			name:      "skips draining nodes",
			snap:      one(1, nodes(node("a", 4096, withState(scheduler.NodeDraining)), node("b", 1024, withUsed(512)))),
			wantPlace: []scheduler.Placement{placed(0, 1, "b")},
		},
		{
			name: "reports memory shortage",
			snap: scheduler.Snapshot{
				Nodes:      nodes(node("a", 1024, withUsed(768))),
				Formations: []scheduler.Formation{web("app", 1, 512, 1)},
			},
			wantUnplace: unplaced("no node has 512 MB free"),
		},
		{
			name: "overcommit lets more fit",
			snap: scheduler.Snapshot{
				Nodes:      nodes(node("a", 1024, withUsed(768))),
				Formations: []scheduler.Formation{web("app", 1, 512, 1)},
				Overcommit: 2,
			},
			wantPlace: []scheduler.Placement{placed(0, 1, "a")},
		},
		{
			name: "reports unmatched policy",
			snap: scheduler.Snapshot{
				Nodes:      nodes(node("a", 1024)),
				Formations: withPolicy(web("app", 1, 256, 1), scheduler.Policy{Substrate: api.SubstrateMetal}),
			},
			wantUnplace: unplaced("no node matches placement substrate=metal"),
		},
		{
			name: "honours substrate, isolation and labels",
			snap: scheduler.Snapshot{
				Nodes: nodes(node("a", 8192), node("b", 1024, metal), node("c", 1024, metal, withLabel("zone", "x"))),
				Formations: withPolicy(web("app", 1, 256, 1),
					scheduler.Policy{Substrate: api.SubstrateMetal, Isolation: api.IsolationProcess, Labels: map[string]string{"zone": "x"}}),
			},
			wantPlace: []scheduler.Placement{placed(0, 1, "c")},
		},
		{
			name: "any policy matches everything",
			snap: scheduler.Snapshot{
				Nodes:      nodes(node("b", 1024, metal)),
				Formations: withPolicy(web("app", 1, 256, 1), scheduler.Policy{Substrate: "any", Isolation: "any"}),
			},
			wantPlace: []scheduler.Placement{placed(0, 1, "b")},
		},
		{
			name:        "no ready node",
			snap:        one(1, nodes(node("a", 1024, withState(scheduler.NodeLost)))),
			wantUnplace: unplaced("no node is ready to run instances"),
		},
		{
			name: "stops instances of apps or processes no longer desired",
			snap: one(1, nodes(node("a", 1024)),
				inst("w", "app", "web", 0, 1, "a", running),
				inst("x", "app", "worker", 0, 1, "a", running),
				inst("y", "gone", "web", 0, 1, "a", running),
			),
			wantStop: []string{"x", "y"},
		},
		{
			name:     "stops duplicates, keeping the running one",
			snap:     one(1, nodes(node("a", 1024)), inst("d1", "app", "web", 0, 1, "a", starting), inst("d2", "app", "web", 0, 1, "a", running)),
			wantStop: []string{"d1"},
		},
		{
			name:      "re-stops a stopping instance and replaces it",
			snap:      one(1, nodes(node("a", 1024)), inst("s", "app", "web", 0, 1, "a", api.InstanceStopping)),
			wantPlace: []scheduler.Placement{placed(0, 1, "a")},
			wantStop:  []string{"s"},
		},
		{
			name: "a crashed instance keeps its slot (the executor restarts it)",
			snap: one(1, nodes(node("a", 1024)), inst("c", "app", "web", 0, 1, "a", api.InstanceCrashed)),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := scheduler.Plan(tt.snap)
			if !slices.Equal(got.Place, tt.wantPlace) {
				t.Errorf("Place = %+v, want %+v", got.Place, tt.wantPlace)
			}
			gotStop := slices.Sorted(slices.Values(got.Stop))
			if !slices.Equal(gotStop, tt.wantStop) {
				t.Errorf("Stop = %v, want %v", gotStop, tt.wantStop)
			}
			if !slices.Equal(got.Unplaceable, tt.wantUnplace) {
				t.Errorf("Unplaceable = %+v, want %+v", got.Unplaceable, tt.wantUnplace)
			}
		})
	}
}

// threeRunning is a harness of three 4 GB nodes a, b and c with app's
// three web instances of release 1 placed and running.
func threeRunning(t *testing.T) *scheduler.Harness {
	t.Helper()
	h := scheduler.NewHarness(
		[]scheduler.Node{node("a", 4096), node("b", 4096), node("c", 4096)},
		[]scheduler.Formation{web("app", 3, 256, 1)},
	)
	if _, ok := h.Converge(5); !ok {
		t.Fatal("release 1 did not converge")
	}
	return h
}

func TestRollingDeployNeverDropsBelowDesired(t *testing.T) {
	h := threeRunning(t)
	h.Snapshot.Formations[0].Release = 2
	running := func(in *api.Instance) bool { return in.State == api.InstanceRunning }
	for step := 0; step < 10; step++ {
		r := h.Step()
		if got := h.Count(running); got < 3 {
			t.Fatalf("step %d: %d running instances, want at least 3 during a rolling deploy", step, got)
		}
		// Only one instance becomes healthy per step, to exercise the rolling order.
		for _, in := range h.Snapshot.Instances {
			if in.State == api.InstanceStarting {
				in.State = api.InstanceRunning
				break
			}
		}
		if len(r.Place) == 0 && len(r.Stop) == 0 && h.Count(func(in *api.Instance) bool { return in.State != api.InstanceRunning }) == 0 {
			break
		}
	}
	if got := h.Count(func(in *api.Instance) bool { return in.Release == 2 && in.State == api.InstanceRunning }); got != 3 {
		t.Errorf("release 2 running = %d, want 3", got)
	}
	if got := len(h.Snapshot.Instances); got != 3 {
		t.Errorf("instances = %d, want 3 after the roll", got)
	}
}

func TestLostNodeReschedulesAndSpreads(t *testing.T) {
	h := threeRunning(t)
	perNode := map[string]int{}
	for _, in := range h.Snapshot.Instances {
		perNode[in.NodeID]++
	}
	if len(perNode) != 3 {
		t.Fatalf("instances on %d nodes (%v), want spread over 3", len(perNode), perNode)
	}
	h.Snapshot.Nodes[0].State = scheduler.NodeLost
	h.Converge(5)
	if got := h.Count(func(in *api.Instance) bool { return in.NodeID == "a" }); got != 0 {
		t.Errorf("%d instances left on the lost node", got)
	}
	if got := len(h.Snapshot.Instances); got != 3 {
		t.Errorf("instances = %d, want 3", got)
	}
}

func TestPlanDoesNotModifySnapshot(t *testing.T) {
	nodes := []scheduler.Node{node("b", 1024), node("a", 1024)}
	s := scheduler.Snapshot{Nodes: nodes, Formations: []scheduler.Formation{web("app", 2, 256, 1)}}
	scheduler.Plan(s)
	if nodes[0].ID != "b" || nodes[0].UsedMB != 0 {
		t.Errorf("Plan modified its input: %+v", nodes)
	}
}

// cluster builds a snapshot of nodes (64 GB each) and apps web formations of
// per instances each, with nothing placed yet.
func cluster(nodes, apps, per int) scheduler.Snapshot {
	var s scheduler.Snapshot
	for i := 0; i < nodes; i++ {
		s.Nodes = append(s.Nodes, node(fmt.Sprintf("node-%04d", i), 64*1024))
	}
	for a := 0; a < apps; a++ {
		s.Formations = append(s.Formations, web(fmt.Sprintf("app-%05d", a), per, 256, 1))
	}
	return s
}

func BenchmarkPlan(b *testing.B) {
	// 1,000 nodes and 100,000 instances (10,000 apps × 10): a full placement
	// from empty, the worst case for the planner.
	s := cluster(1000, 10000, 10)
	placed := 0
	for b.Loop() {
		r := scheduler.Plan(s)
		placed += len(r.Place)
	}
	b.ReportMetric(float64(placed)/b.Elapsed().Seconds(), "placements/s")
}

func BenchmarkPlanSteady(b *testing.B) {
	// The converger's common case: everything placed, nothing to do.
	s := cluster(1000, 10000, 10)
	r := scheduler.Plan(s)
	for i, p := range r.Place {
		s.Instances = append(s.Instances, inst(fmt.Sprint(i), p.AppID, p.Process, p.Index, p.Release, p.NodeID, api.InstanceRunning))
	}
	for b.Loop() {
		if r := scheduler.Plan(s); len(r.Place)+len(r.Stop) != 0 {
			b.Fatalf("steady plan changed something: %d places %d stops", len(r.Place), len(r.Stop))
		}
	}
	b.ReportMetric(float64(len(s.Instances)), "instances")
}

func TestDrainMovesInstancesRunningBeforeStopping(t *testing.T) {
	h := threeRunning(t)
	h.Snapshot.Nodes[0].State = scheduler.NodeDraining
	running := func(in *api.Instance) bool { return in.State == api.InstanceRunning }
	for step := 0; step < 10; step++ {
		h.Step()
		if got := h.Count(running); got < 3 {
			t.Fatalf("step %d: %d running instances, want at least 3 while draining", step, got)
		}
		if got := len(h.Snapshot.Instances); got > 4 {
			t.Fatalf("step %d: %d instances, want at most 3 + 1 replacement", step, got)
		}
		h.RunAll()
	}
	if got := h.Count(func(in *api.Instance) bool { return in.NodeID == "a" }); got != 0 {
		t.Errorf("%d instances left on the draining node", got)
	}
	if got := h.Count(running); got != 3 || len(h.Snapshot.Instances) != 3 {
		t.Errorf("running = %d of %d instances, want 3 of 3", got, len(h.Snapshot.Instances))
	}
}

func TestDrainKeepsInstanceWhenNowhereElse(t *testing.T) {
	r := scheduler.Plan(scheduler.Snapshot{
		Nodes:      []scheduler.Node{node("a", 4096, withState(scheduler.NodeDraining))},
		Formations: []scheduler.Formation{web("app", 1, 256, 1)},
		Instances:  []*api.Instance{inst("i1", "app", "web", 0, 1, "a", api.InstanceRunning)},
	})
	if len(r.Stop) != 0 || len(r.Place) != 0 || len(r.Unplaceable) != 1 {
		t.Fatalf("plan = %+v, want the instance kept and one unplaceable replacement", r)
	}
}

func TestPolicyChangeMovesInstances(t *testing.T) {
	h := scheduler.NewHarness(
		[]scheduler.Node{node("a", 4096), node("b", 4096, metal), node("c", 4096, metal)},
		[]scheduler.Formation{web("app", 2, 256, 1)},
	)
	h.Converge(5)
	h.Snapshot.Formations[0].Policy = scheduler.Policy{Substrate: api.SubstrateMetal}
	h.Converge(10)
	if got := h.Count(func(in *api.Instance) bool { return in.NodeID == "a" }); got != 0 || len(h.Snapshot.Instances) != 2 {
		t.Fatalf("%d instances left on the vm node, %d in all; want 0 of 2", got, len(h.Snapshot.Instances))
	}
}

func TestIsolation(t *testing.T) {
	tests := []struct {
		name   string
		policy scheduler.Policy
		offers []api.Isolation
		want   api.Isolation
	}{
		{"the cheapest the node offers", scheduler.Policy{}, []api.Isolation{api.IsolationMicroVM, api.IsolationContainer, api.IsolationProcess}, api.IsolationProcess},
		{"container before microvm", scheduler.Policy{Isolation: api.PlacementAny}, []api.Isolation{api.IsolationMicroVM, api.IsolationContainer}, api.IsolationContainer},
		{"an unconfined process is a process", scheduler.Policy{}, []api.Isolation{api.IsolationContainer, api.IsolationProcessUnconfined}, api.IsolationProcessUnconfined},
		{"the policy's", scheduler.Policy{Isolation: api.IsolationContainer}, []api.Isolation{api.IsolationProcess, api.IsolationContainer}, api.IsolationContainer},
		{"none offered keeps the process driver", scheduler.Policy{}, nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := scheduler.Isolation(tt.policy, &api.Node{Isolations: tt.offers}); got != tt.want {
				t.Errorf("Isolation(%v, offers %v) = %q, want %q", tt.policy, tt.offers, got, tt.want)
			}
		})
	}
	// A plan carries it: a container policy on a node offering both.
	n := node("a", 1024)
	n.Isolations = []api.Isolation{api.IsolationProcess, api.IsolationContainer}
	f := web("app", 1, 256, 1)
	f.Policy = scheduler.Policy{Isolation: api.IsolationContainer}
	got := scheduler.Plan(scheduler.Snapshot{Nodes: []scheduler.Node{n}, Formations: []scheduler.Formation{f}})
	if len(got.Place) != 1 || got.Place[0].Isolation != api.IsolationContainer {
		t.Fatalf("Place = %+v, want one placement with isolation container", got.Place)
	}
}
