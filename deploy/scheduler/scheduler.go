package scheduler

import (
	"cmp"
	"fmt"
	"slices"
	"sort"

	"github.com/strata-paas/strata/api"
)

// Node states as the controller reports them.
const (
	NodeReady    = "ready"
	NodeDraining = "draining"
	NodeLost     = "lost"
)

// Policy constrains where an app's instances may run: the app's effective
// placement policy (api.PlacementPolicy, whose Matches the planner uses).
type Policy = api.PlacementPolicy

// Node is a node and its current load.
type Node struct {
	api.Node
	// UsedMB is the memory used by instances already placed on the node.
	UsedMB int
}

// Formation is the desired state of one process type of an app.
type Formation struct {
	AppID     string
	Process   string
	Instances int
	MemoryMB  int // 0 = api.DefaultMemoryMB
	Release   int // the app's current release version
	Policy    Policy
}

// Snapshot is everything Plan looks at.
type Snapshot struct {
	Nodes      []Node
	Formations []Formation
	// Instances are the current placements (the controller's instance rows).
	// An instance of an app/process with no formation is stopped.
	Instances []*api.Instance
	// Overcommit multiplies each node's memory capacity (0 = 1.0).
	Overcommit float64
}

// Placement asks for a new instance on a node.
type Placement struct {
	AppID   string
	Process string
	Index   int
	Release int
	NodeID  string
	// Isolation is how the instance is to be wrapped on the node (see
	// Isolation): the start command's api.InstanceSpec.Isolation.
	Isolation api.Isolation
}

// isolationCost orders isolations from cheapest to dearest: a process, a
// container, a micro-VM.
var isolationCost = map[api.Isolation]int{
	api.IsolationProcess: 0, api.IsolationProcessUnconfined: 0, api.IsolationContainer: 1, api.IsolationMicroVM: 2,
}

// Isolation is the isolation an instance with policy pol gets on node n: the
// policy's when it names one, else the cheapest isolation n offers (process
// < container < microvm; of two equally cheap, the first n lists). It is ""
// when n offers none (an executor older than isolations in heartbeats),
// which keeps the node's process driver.
func Isolation(pol Policy, n *api.Node) api.Isolation {
	if pol.Isolation != "" && pol.Isolation != api.PlacementAny {
		return pol.Isolation
	}
	best, bestCost := api.Isolation(""), 0
	for _, iso := range n.Isolations {
		c, ok := isolationCost[iso]
		if !ok {
			c = len(isolationCost) // unknown to this scheduler: last
		}
		if best == "" || c < bestCost {
			best, bestCost = iso, c
		}
	}
	return best
}

// NoNodeMatches begins the reason of an Unplaceable whose policy no ready
// node satisfies (as opposed to nodes that are full).
const NoNodeMatches = "no node matches placement"

// Unplaceable is a desired instance that no node can take now.
type Unplaceable struct {
	AppID   string
	Process string
	Index   int
	Reason  string
}

// Result is the outcome of Plan: what to start, what to stop, and what
// cannot be placed.
type Result struct {
	Place       []Placement
	Stop        []string // instance IDs
	Unplaceable []Unplaceable
}

type procKey struct{ app, proc string }

type planner struct {
	nodes    []Node // sorted by ID
	byID     map[string]int
	used     []int   // memory used per node, including this plan's placements
	limit    []int   // memory capacity × overcommit
	count    []int32 // instances of the current app per node
	touched  []int
	policies map[string][]int
	anyReady bool
	plan     Result
}

// Plan computes placements and stops for s. It is a pure function: it does
// not modify s and is safe to call concurrently.
func Plan(s Snapshot) Result {
	p := newPlanner(s)

	byProc := make(map[procKey][]*api.Instance)
	for _, in := range s.Instances {
		k := procKey{in.AppID, in.Process}
		byProc[k] = append(byProc[k], in)
	}

	forms := slices.Clone(s.Formations)
	slices.SortFunc(forms, func(a, b Formation) int {
		return cmp.Or(cmp.Compare(a.AppID, b.AppID), cmp.Compare(a.Process, b.Process))
	})
	visited := make(map[procKey]bool, len(forms))
	for start := 0; start < len(forms); {
		end := start + 1
		for end < len(forms) && forms[end].AppID == forms[start].AppID {
			end++
		}
		p.planApp(forms[start:end], byProc, visited)
		start = end
	}

	var orphans []string
	for k, ins := range byProc {
		if visited[k] {
			continue
		}
		for _, in := range ins {
			orphans = append(orphans, in.ID)
		}
	}
	sort.Strings(orphans)
	p.plan.Stop = append(p.plan.Stop, orphans...)
	return p.plan
}

func newPlanner(s Snapshot) *planner {
	over := s.Overcommit
	if over <= 0 {
		over = 1
	}
	nodes := slices.Clone(s.Nodes)
	slices.SortFunc(nodes, func(a, b Node) int { return cmp.Compare(a.ID, b.ID) })
	p := &planner{
		nodes:    nodes,
		byID:     make(map[string]int, len(nodes)),
		used:     make([]int, len(nodes)),
		limit:    make([]int, len(nodes)),
		count:    make([]int32, len(nodes)),
		policies: make(map[string][]int),
	}
	for i := range nodes {
		p.byID[nodes[i].ID] = i
		p.used[i] = nodes[i].UsedMB
		p.limit[i] = int(float64(nodes[i].Capacity.MemoryMB) * over)
		if nodes[i].State == NodeReady {
			p.anyReady = true
		}
	}
	return p
}

type need struct {
	f     *Formation
	index int
}

// planApp decides stops and placements for all formations of one app.
func (p *planner) planApp(forms []Formation, byProc map[procKey][]*api.Instance, visited map[procKey]bool) {
	var needs []need
	for fi := range forms {
		f := &forms[fi]
		k := procKey{f.AppID, f.Process}
		visited[k] = true
		cur := make(map[int][]*api.Instance)
		old := make(map[int][]*api.Instance)
		for _, in := range byProc[k] {
			switch {
			case p.lost(in.NodeID),
				in.State == api.InstanceStopping || in.State == api.InstanceStopped,
				in.Index < 0 || in.Index >= f.Instances:
				p.plan.Stop = append(p.plan.Stop, in.ID)
			case p.draining(in.NodeID) || p.misplaced(in.NodeID, &f.Policy):
				// Moved off like an old release: replaced elsewhere first,
				// stopped once the replacement runs.
				old[in.Index] = append(old[in.Index], in)
			case in.Release == f.Release:
				cur[in.Index] = append(cur[in.Index], in)
			default:
				old[in.Index] = append(old[in.Index], in)
			}
		}
		for i := 0; i < f.Instances; i++ {
			keep := pickKeeper(cur[i])
			for _, in := range cur[i] {
				if in != keep {
					p.plan.Stop = append(p.plan.Stop, in.ID)
				}
			}
			if keep == nil {
				needs = append(needs, need{f, i})
			} else {
				p.countOn(keep.NodeID)
			}
			rolled := keep != nil && keep.State == api.InstanceRunning
			for _, in := range old[i] {
				if rolled {
					p.plan.Stop = append(p.plan.Stop, in.ID)
				} else {
					p.countOn(in.NodeID)
				}
			}
		}
	}
	for _, n := range needs {
		p.place(n)
	}
	for _, i := range p.touched {
		p.count[i] = 0
	}
	p.touched = p.touched[:0]
}

// pickKeeper chooses which of several instances in one slot survives:
// running over starting over crashed, then the oldest, then the lowest ID.
func pickKeeper(ins []*api.Instance) *api.Instance {
	var best *api.Instance
	for _, in := range ins {
		if best == nil || better(in, best) {
			best = in
		}
	}
	return best
}

func stateRank(s api.InstanceState) int {
	switch s {
	case api.InstanceRunning:
		return 0
	case api.InstanceStarting:
		return 1
	}
	return 2
}

func better(a, b *api.Instance) bool {
	if ra, rb := stateRank(a.State), stateRank(b.State); ra != rb {
		return ra < rb
	}
	if !a.CreatedAt.Equal(b.CreatedAt) {
		return a.CreatedAt.Before(b.CreatedAt)
	}
	return a.ID < b.ID
}

func (p *planner) lost(nodeID string) bool {
	i, ok := p.byID[nodeID]
	return ok && p.nodes[i].State == NodeLost
}

func (p *planner) draining(nodeID string) bool {
	i, ok := p.byID[nodeID]
	return ok && p.nodes[i].State == NodeDraining
}

// misplaced reports whether a known node no longer matches a policy (the
// policy changed after the instance was placed).
func (p *planner) misplaced(nodeID string, pol *Policy) bool {
	if pol.Substrate == "" && pol.Isolation == "" && len(pol.Labels) == 0 {
		return false
	}
	i, ok := p.byID[nodeID]
	return ok && !pol.Matches(&p.nodes[i].Node)
}

func (p *planner) countOn(nodeID string) {
	if i, ok := p.byID[nodeID]; ok {
		if p.count[i] == 0 {
			p.touched = append(p.touched, i)
		}
		p.count[i]++
	}
}

func (p *planner) eligible(pol Policy) []int {
	key := pol.String()
	if idx, ok := p.policies[key]; ok {
		return idx
	}
	var idx []int
	for i := range p.nodes {
		if p.nodes[i].State == NodeReady && pol.Matches(&p.nodes[i].Node) {
			idx = append(idx, i)
		}
	}
	p.policies[key] = idx
	return idx
}

func (p *planner) place(n need) {
	mem := n.f.MemoryMB
	if mem <= 0 {
		mem = api.DefaultMemoryMB
	}
	cands := p.eligible(n.f.Policy)
	best := -1
	for _, i := range cands {
		if p.limit[i]-p.used[i] < mem {
			continue
		}
		if best < 0 || p.count[i] < p.count[best] || p.count[i] == p.count[best] && p.used[i] < p.used[best] {
			best = i
		}
	}
	if best < 0 {
		var reason string
		switch {
		case !p.anyReady:
			reason = "no node is ready to run instances"
		case len(cands) == 0:
			reason = NoNodeMatches + " " + n.f.Policy.String()
		default:
			reason = fmt.Sprintf("no node has %d MB free", mem)
		}
		p.plan.Unplaceable = append(p.plan.Unplaceable, Unplaceable{
			AppID: n.f.AppID, Process: n.f.Process, Index: n.index, Reason: reason,
		})
		return
	}
	p.used[best] += mem
	if p.count[best] == 0 {
		p.touched = append(p.touched, best)
	}
	p.count[best]++
	p.plan.Place = append(p.plan.Place, Placement{
		AppID: n.f.AppID, Process: n.f.Process, Index: n.index, Release: n.f.Release, NodeID: p.nodes[best].ID,
		Isolation: Isolation(n.f.Policy, &p.nodes[best].Node),
	})
}
