package scheduler_test

import (
	"fmt"
	"testing"

	"github.com/strata-paas/strata/api"
	"github.com/strata-paas/strata/deploy/scheduler"
)

// snapshotFrom builds a small arbitrary snapshot from fuzz bytes.
func snapshotFrom(data []byte) scheduler.Snapshot {
	next := func() int {
		if len(data) == 0 {
			return 0
		}
		b := int(data[0])
		data = data[1:]
		return b
	}
	var s scheduler.Snapshot
	states := []string{scheduler.NodeReady, scheduler.NodeReady, scheduler.NodeDraining, scheduler.NodeLost}
	nNodes := next() % 6
	for i := 0; i < nNodes; i++ {
		n := node(fmt.Sprintf("n%d", i), 256*(next()%8), withState(states[next()%4]))
		if next()%2 == 0 {
			metal(&n)
		}
		s.Nodes = append(s.Nodes, n)
	}
	nForms := next() % 4
	for i := 0; i < nForms; i++ {
		f := web(fmt.Sprintf("app%d", i), next()%5, 128*(1+next()%4), 1+next()%3)
		if next()%3 == 0 {
			f.Policy.Substrate = api.SubstrateMetal
		}
		s.Formations = append(s.Formations, f)
	}
	instStates := []api.InstanceState{api.InstanceRunning, api.InstanceStarting, api.InstanceCrashed, api.InstanceStopping}
	nInst := next() % 10
	for i := 0; i < nInst; i++ {
		s.Instances = append(s.Instances, inst(fmt.Sprintf("i%d", i), fmt.Sprintf("app%d", next()%5), "web",
			next()%6, 1+next()%3, fmt.Sprintf("n%d", next()%7), instStates[next()%4]))
	}
	return s
}

// FuzzPlan checks Plan's invariants on arbitrary snapshots: placements only
// on ready, matching nodes within capacity; every instance stopped at most
// once; every desired slot either kept, placed, or reported unplaceable.
func FuzzPlan(f *testing.F) {
	f.Add([]byte{3, 8, 0, 0, 4, 1, 1, 2, 2, 1, 2, 1, 3, 0, 0, 1, 1, 0, 0})
	f.Add([]byte{1, 7, 0, 1, 1, 3, 1, 2, 2, 4, 0, 0, 1, 1, 0, 1, 1, 1, 2})
	f.Fuzz(func(t *testing.T, data []byte) {
		s := snapshotFrom(data)
		r := scheduler.Plan(s)
		nodes := map[string]scheduler.Node{}
		used := map[string]int{}
		for _, n := range s.Nodes {
			nodes[n.ID] = n
			used[n.ID] = n.UsedMB
		}
		forms := map[string]scheduler.Formation{}
		for _, fm := range s.Formations {
			forms[fm.AppID] = fm
		}
		slots := map[string]int{}
		for _, p := range r.Place {
			n, ok := nodes[p.NodeID]
			fm := forms[p.AppID]
			if !ok || n.State != scheduler.NodeReady || !fm.Policy.Matches(&n.Node) {
				t.Fatalf("placed %+v on unsuitable node %+v", p, n)
			}
			used[p.NodeID] += fm.MemoryMB
			if used[p.NodeID] > n.Capacity.MemoryMB {
				t.Fatalf("node %s over capacity: %d > %d", n.ID, used[p.NodeID], n.Capacity.MemoryMB)
			}
			if p.Release != fm.Release || p.Index >= fm.Instances {
				t.Fatalf("placement %+v outside formation %+v", p, fm)
			}
			slots[fmt.Sprint(p.AppID, p.Index)]++
		}
		stopped := map[string]bool{}
		for _, id := range r.Stop {
			if stopped[id] {
				t.Fatalf("instance %s stopped twice", id)
			}
			stopped[id] = true
		}
		for _, in := range s.Instances {
			fm, ok := forms[in.AppID]
			if ok && !stopped[in.ID] && in.Release == fm.Release && in.Index < fm.Instances {
				slots[fmt.Sprint(in.AppID, in.Index)]++
			}
		}
		for _, u := range r.Unplaceable {
			slots[fmt.Sprint(u.AppID, u.Index)]++
		}
		for _, fm := range s.Formations {
			for i := 0; i < fm.Instances; i++ {
				if got := slots[fmt.Sprint(fm.AppID, i)]; got != 1 {
					t.Fatalf("slot %s/%d covered %d times, want 1 (plan %+v)", fm.AppID, i, got, r)
				}
			}
		}
	})
}
