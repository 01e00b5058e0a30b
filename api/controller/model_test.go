package controller_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math/rand"
	"sync"
	"testing"
	"time"

	"github.com/strata-paas/strata/api"
	"github.com/strata-paas/strata/api/bus"
	"github.com/strata-paas/strata/api/controller"
)

// This is a model-based test of the converger. The controller runs for
// real on an embedded bus; between it and N fake executors sits a faulty
// network, applied where each executor sends and receives: with a seeded
// RNG it drops, duplicates and delays (so reorders) node commands, their
// replies, heartbeats and instance events, and it partitions whole nodes
// for a while (they keep their instances running, then come back). Random
// scale changes drive the desired count. The model checks, at every step:
//
//   - no instance slot (app, process, index) ever has more than 2 running
//     copies on reachable nodes (the keeper and one being replaced — the
//     bounded rolling overlap), and
//   - the running total never exceeds twice the largest desired count of
//     the recent steps (scale-downs are asynchronous);
//
// and, once faults stop and every node is back, that actual = desired
// (exactly one running copy of each index, and as many rows) within a
// bounded number of converge intervals.
//
// Two controllers share the database, and the leader lease moves between
// them: now and then the leader is paused (model_lease_test.go) until the
// other has taken over. The model checks that only the leader's writes are
// applied, that the deposed leader's late writes are refused by the fence,
// and the fake executors, like the real one, refuse commands of an older
// term than they have seen.

// faults is the faulty network's dice.
type faults struct {
	mu               sync.Mutex
	rng              *rand.Rand
	on               bool
	drop, dup, delay float64
}

type fate struct{ drop, dup, delay bool }

func (f *faults) roll() fate {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.on {
		return fate{}
	}
	return fate{drop: f.rng.Float64() < f.drop, dup: f.rng.Float64() < f.dup, delay: f.rng.Float64() < f.delay}
}

func (f *faults) jitter() time.Duration {
	f.mu.Lock()
	defer f.mu.Unlock()
	return time.Duration(20+f.rng.Intn(250)) * time.Millisecond
}

func (f *faults) set(on bool) {
	f.mu.Lock()
	f.on = on
	f.mu.Unlock()
}

// modelNode is a fake executor behind the faulty network.
type modelNode struct {
	id     string
	conn   *bus.Conn
	net    *faults
	mu     sync.Mutex
	down   bool // partitioned: sends nothing, answers nothing
	insts  map[string]api.InstanceReport
	gone   map[string]bool // instance ids stopped here (a late start must not revive them)
	starts int
	term   int64 // highest leader term seen in a command
	stale  int   // commands refused for an older term
}

func startModelNode(t *testing.T, srv *bus.Server, id string, net *faults) *modelNode {
	n := &modelNode{id: id, conn: connect(t, srv, "model-"+id), net: net, insts: map[string]api.InstanceReport{}, gone: map[string]bool{}}
	sub, err := n.conn.Subscribe(api.SubjectNodeCommand(id), "", n.receive)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	t.Cleanup(func() { cancel(); <-done; _ = sub.Unsubscribe() })
	go func() {
		defer close(done)
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for {
			n.heartbeat()
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
	}()
	return n
}

// send publishes through the faulty network: maybe dropped, duplicated or
// delayed (a delayed message arrives after later ones: reordering).
func (n *modelNode) send(subject string, v any) {
	n.mu.Lock()
	down := n.down
	n.mu.Unlock()
	if down {
		return
	}
	f := n.net.roll()
	if f.drop {
		return
	}
	copies := 1
	if f.dup {
		copies = 2
	}
	for range copies {
		if f.delay {
			d := n.net.jitter()
			go func() { time.Sleep(d); _ = n.conn.Publish(subject, v) }()
		} else {
			_ = n.conn.Publish(subject, v)
		}
	}
}

func (n *modelNode) heartbeat() {
	n.mu.Lock()
	hb := api.NodeHeartbeat{
		Version: api.MessageVersion, NodeID: n.id, Substrate: api.SubstrateVM,
		Isolations: []api.Isolation{api.IsolationProcess}, Capacity: api.Capacity{MemoryMB: 8192, CPUs: 2},
		Time: time.Now(), Interval: 50 * time.Millisecond,
	}
	for _, in := range n.insts {
		hb.Instances = append(hb.Instances, in)
	}
	n.mu.Unlock()
	n.send(api.SubjectNodeHeartbeat, hb)
}

// receive handles one command: a partitioned node ignores it; otherwise it
// may be lost before acting, acted on twice, acted on late, and its reply
// may be lost.
func (n *modelNode) receive(m *bus.Msg) {
	var cmd api.NodeCommand
	if err := json.Unmarshal(m.Data, &cmd); err != nil {
		return
	}
	n.mu.Lock()
	down := n.down
	n.mu.Unlock()
	if down {
		return
	}
	if cmd.Term > 0 {
		n.mu.Lock()
		stale := cmd.Term < n.term
		if stale {
			n.stale++
		} else {
			n.term = cmd.Term
		}
		n.mu.Unlock()
		if stale { // as deploy/executor does
			_ = m.Reply(api.NodeCommandReply{Version: api.MessageVersion, Error: api.Errorf(api.EConflict, "older term")})
			return
		}
	}
	f := n.net.roll()
	if f.drop && f.dup { // lost on the way in
		return
	}
	act := func() { n.apply(cmd) }
	if f.delay {
		d := n.net.jitter()
		go func() { time.Sleep(d); act() }()
	} else {
		act()
	}
	if f.dup {
		act()
	}
	if !f.drop { // otherwise the reply is lost
		_ = m.Reply(api.NodeCommandReply{Version: api.MessageVersion})
	}
}

func (n *modelNode) apply(cmd api.NodeCommand) {
	n.mu.Lock()
	defer n.mu.Unlock()
	switch cmd.Kind {
	case api.CmdStart:
		s := cmd.Start
		if _, ok := n.insts[s.InstanceID]; ok || n.gone[s.InstanceID] {
			return // idempotent by instance id, like the real executor
		}
		n.starts++
		rep := api.InstanceReport{InstanceID: s.InstanceID, AppID: s.AppID, Process: s.Process, Index: s.Index, Release: s.Release, State: api.InstanceStarting, Routes: s.Routes}
		n.insts[s.InstanceID] = rep
		go func() {
			time.Sleep(30 * time.Millisecond)
			n.mu.Lock()
			cur, ok := n.insts[rep.InstanceID]
			if !ok || cur.State != api.InstanceStarting {
				n.mu.Unlock()
				return
			}
			rep.State, rep.Port, rep.StartedAt = api.InstanceRunning, 40000+n.starts, time.Now()
			n.insts[rep.InstanceID] = rep
			n.mu.Unlock()
			n.send(api.SubjectInstanceEvent, api.InstanceEvent{Version: api.MessageVersion, NodeID: n.id, Instance: rep, Time: time.Now()})
		}()
	case api.CmdRoutes:
		if rep, ok := n.insts[cmd.InstanceID]; ok {
			rep.Routes = cmd.Routes
			n.insts[cmd.InstanceID] = rep
		}
	case api.CmdStop:
		n.gone[cmd.InstanceID] = true
		rep, ok := n.insts[cmd.InstanceID]
		if !ok {
			return
		}
		delete(n.insts, cmd.InstanceID)
		rep.State = api.InstanceStopped
		go n.send(api.SubjectInstanceEvent, api.InstanceEvent{Version: api.MessageVersion, NodeID: n.id, Instance: rep, Time: time.Now()})
	}
}

func (n *modelNode) setDown(down bool) {
	n.mu.Lock()
	n.down = down
	n.mu.Unlock()
}

func (n *modelNode) isDown() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.down
}

// running returns index → running copies on this node.
func (n *modelNode) running() map[int]int {
	n.mu.Lock()
	defer n.mu.Unlock()
	out := map[int]int{}
	for _, in := range n.insts {
		if in.State == api.InstanceRunning {
			out[in.Index]++
		}
	}
	return out
}

func TestConvergerModel(t *testing.T) {
	seeds := []int64{1, 2, 3}
	if testing.Short() {
		seeds = seeds[:1]
	}
	for _, seed := range seeds {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) { runModel(t, seed) })
	}
}

func runModel(t *testing.T, seed int64) {
	const (
		nodes    = 4
		steps    = 150
		interval = 50 * time.Millisecond
		window   = 30 // steps a scale-down may take to show
	)
	srv := newServer(t)
	ledger := newLeaseLedger(t)
	db := openSQLite(t)
	stores := []*pausableStore{{Store: db, ledger: ledger}, {Store: db, ledger: ledger}}
	e := newEnv(t, srv, stores[0], func(c *controller.Config) {
		c.ConvergeInterval, c.NodeTTL, c.CommandTimeout = interval, 400*time.Millisecond, 300*time.Millisecond
		c.ControllerID, c.LeaseTTL = "c0", 400*time.Millisecond
		c.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	})
	e.run()
	eventually(t, "c0 leads", func() bool { return e.ctrl.LeaderTerm() > 0 })
	cfg2 := e.cfg
	cfg2.ControllerID = "c1"
	ctrl2, err := controller.New(cfg2, stores[1], e.blobs, connect(t, srv, "controller-2"))
	if err != nil {
		t.Fatal(err)
	}
	runController(t, ctrl2)
	ctrls := []*controller.Controller{e.ctrl, ctrl2}
	t.Cleanup(func() { // a paused controller could not stop
		for _, s := range stores {
			s.resume()
		}
	})
	startBuilder(t, srv, &fakeBuilder{})
	rng := rand.New(rand.NewSource(seed))
	net := &faults{rng: rand.New(rand.NewSource(seed + 1000)), drop: 0.15, dup: 0.1, delay: 0.15}
	var ns []*modelNode
	for i := range nodes {
		ns = append(ns, startModelNode(t, srv, fmt.Sprint("n", i), net))
	}
	ctx := e.ctx()
	if _, err := e.ctrl.Deploys.Deploy(ctx, api.DeployRequest{App: "model", Source: source(), CreateApp: true, Wait: true}); err != nil {
		t.Fatal(err)
	}
	net.set(true)

	desired := 1
	history := []int{desired}
	var downNode *modelNode
	downUntil, calmUntil := 0, 0
	// The lease moves: the leader is paused at step 20 and then at random,
	// until the other controller leads (or for at most 40 steps).
	paused, pausedAt := -1, 0
	leaderIndex := func() int {
		for i, c := range ctrls {
			if c.LeaderTerm() > 0 {
				return i
			}
		}
		return -1
	}
	maxRecent := func() int {
		m := 0
		for _, d := range history[max(0, len(history)-window):] {
			m = max(m, d)
		}
		return m
	}
	check := func(step int) {
		total, perIndex := 0, map[int]int{}
		for _, n := range ns {
			if n.isDown() {
				continue
			}
			for idx, c := range n.running() {
				perIndex[idx] += c
				total += c
			}
		}
		for idx, c := range perIndex {
			if c > 2 {
				t.Fatalf("seed %d step %d: index %d has %d running copies on reachable nodes, want at most 2", seed, step, idx, c)
			}
		}
		if limit := 2 * maxRecent(); total > limit {
			t.Fatalf("seed %d step %d: %d running, more than %d (twice the recent desired %v)", seed, step, total, limit, history[max(0, len(history)-window):])
		}
	}
	for step := 0; step < steps; step++ {
		switch r := rng.Float64(); {
		case r < 0.1:
			desired = rng.Intn(6)
			// Through either controller: one that does not lead serves
			// REST too, and the leader applies the change.
			if _, err := ctrls[rng.Intn(len(ctrls))].Apps.Scale(ctx, "model", api.ScaleRequest{Instances: &desired}); err != nil {
				t.Fatalf("scale to %d: %v", desired, err)
			}
		case r < 0.15 && downNode == nil && step >= calmUntil:
			downNode = ns[rng.Intn(len(ns))]
			downNode.setDown(true)
			downUntil = step + 10 + rng.Intn(20)
		}
		if downNode != nil && step >= downUntil {
			downNode.setDown(false)
			downNode, calmUntil = nil, step+window
		}
		if paused < 0 && (step == 20 || step > 20 && rng.Float64() < 0.04) {
			if i := leaderIndex(); i >= 0 {
				paused, pausedAt = i, step
				stores[i].pause()
			}
		}
		if paused >= 0 && (ctrls[1-paused].LeaderTerm() > 0 || step-pausedAt >= 40) {
			stores[paused].resume()
			if rows, _ := e.store.Instances(ctx, mustApp(t, e, ctx).ID); len(rows) > 0 {
				stores[paused].lateWrite(t, rows[0])
			}
			paused = -1
		}
		history = append(history, desired)
		time.Sleep(interval)
		check(step)
	}

	// Faults stop and every node is back: actual = desired within a bound.
	if paused >= 0 {
		stores[paused].resume()
	}
	granted, holders, applied, refused, late := ledger.counts()
	stale := 0
	for _, n := range ns {
		n.mu.Lock()
		stale += n.stale
		n.mu.Unlock()
	}
	t.Logf("seed %d: lease terms up to %d, held by %d controllers; fenced writes: %d applied, %d refused (%d of them late writes of a paused leader); %d commands of an older term refused by executors",
		seed, granted, holders, applied, refused, late, stale)
	if granted < 2 || holders < 2 {
		t.Fatalf("seed %d: the lease never moved (term %d, %d holders)", seed, granted, holders)
	}
	net.set(false)
	for _, n := range ns {
		n.setDown(false)
	}
	const bound = 200 // converge intervals
	var last map[int]int
	for i := 0; i < bound; i++ {
		history = append(history, desired)
		check(steps + i)
		last = map[int]int{}
		for _, n := range ns {
			for idx, c := range n.running() {
				last[idx] += c
			}
		}
		rows, _ := e.store.Instances(ctx, mustApp(t, e, ctx).ID)
		if converged(last, desired) && len(rows) == desired {
			t.Logf("seed %d: converged to %d instances %d intervals after faults stopped", seed, desired, i)
			return
		}
		time.Sleep(interval)
	}
	t.Fatalf("seed %d: not converged to %d within %d intervals after faults stopped: running per index %v", seed, desired, bound, last)
}

func converged(perIndex map[int]int, desired int) bool {
	if len(perIndex) != desired {
		return false
	}
	for i := range desired {
		if perIndex[i] != 1 {
			return false
		}
	}
	return true
}

func mustApp(t *testing.T, e *env, ctx context.Context) *api.App {
	t.Helper()
	d, err := e.ctrl.Apps.AppDetail(ctx, "model")
	if err != nil {
		t.Fatal(err)
	}
	return &d.App
}
