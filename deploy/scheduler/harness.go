package scheduler

import (
	"fmt"
	"slices"

	"github.com/strata-paas/strata/api"
)

// Harness simulates a cluster around Plan, for tests of the scheduler and of
// its users: Step plans, then applies the plan the way the controller does
// (new instances start in state starting; stopped ones disappear), keeping
// node load in step. It records every plan. It is not safe for concurrent use.
type Harness struct {
	Snapshot Snapshot
	Plans    []Result
	seq      int
}

// NewHarness returns a harness over nodes and formations with no instances.
func NewHarness(nodes []Node, forms []Formation) *Harness {
	return &Harness{Snapshot: Snapshot{Nodes: slices.Clone(nodes), Formations: slices.Clone(forms)}}
}

func (h *Harness) memoryOf(appID, proc string) int {
	for _, f := range h.Snapshot.Formations {
		if f.AppID == appID && f.Process == proc && f.MemoryMB > 0 {
			return f.MemoryMB
		}
	}
	return api.DefaultMemoryMB
}

func (h *Harness) addUsed(nodeID string, mb int) {
	for i := range h.Snapshot.Nodes {
		if h.Snapshot.Nodes[i].ID == nodeID {
			h.Snapshot.Nodes[i].UsedMB += mb
		}
	}
}

// Step runs Plan on the current snapshot, applies the result and returns it.
func (h *Harness) Step() Result {
	r := Plan(h.Snapshot)
	h.Plans = append(h.Plans, r)
	stop := make(map[string]bool, len(r.Stop))
	for _, id := range r.Stop {
		stop[id] = true
	}
	kept := h.Snapshot.Instances[:0:0]
	for _, in := range h.Snapshot.Instances {
		if stop[in.ID] {
			h.addUsed(in.NodeID, -h.memoryOf(in.AppID, in.Process))
			continue
		}
		kept = append(kept, in)
	}
	for _, pl := range r.Place {
		h.seq++
		kept = append(kept, &api.Instance{
			ID: fmt.Sprintf("i-%d", h.seq), AppID: pl.AppID, Process: pl.Process, Index: pl.Index,
			Release: pl.Release, NodeID: pl.NodeID, State: api.InstanceStarting,
		})
		h.addUsed(pl.NodeID, h.memoryOf(pl.AppID, pl.Process))
	}
	h.Snapshot.Instances = kept
	return r
}

// SetState sets the state of every instance for which match returns true.
func (h *Harness) SetState(state api.InstanceState, match func(*api.Instance) bool) {
	for _, in := range h.Snapshot.Instances {
		if match(in) {
			in.State = state
		}
	}
}

// RunAll marks every starting instance running.
func (h *Harness) RunAll() {
	h.SetState(api.InstanceRunning, func(in *api.Instance) bool { return in.State == api.InstanceStarting })
}

// Converge steps (marking new instances running after each step) until a plan
// neither places nor stops anything, at most max steps. It returns the number
// of steps taken and whether it converged.
func (h *Harness) Converge(max int) (int, bool) {
	for i := 1; i <= max; i++ {
		r := h.Step()
		h.RunAll()
		if len(r.Place) == 0 && len(r.Stop) == 0 {
			return i, true
		}
	}
	return max, false
}

// Count returns how many instances match.
func (h *Harness) Count(match func(*api.Instance) bool) int {
	n := 0
	for _, in := range h.Snapshot.Instances {
		if match(in) {
			n++
		}
	}
	return n
}
