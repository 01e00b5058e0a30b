package controller

import (
	"cmp"
	"context"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/strata-paas/strata/api"
	"github.com/strata-paas/strata/deploy/scheduler"
)

// Nodes tracks the executors from their heartbeats and applies their
// instance events to the instance rows.
type Nodes struct {
	*nodeRegistry
	cfg   Config
	log   *slog.Logger
	store nodesStore
	audit *audit
	sig   *signals

	startedMu sync.Mutex
	started   time.Time // when Run began; zero before
}

// nodesStore is what Nodes reads and writes.
type nodesStore interface {
	Instance(ctx context.Context, id string) (*api.Instance, error)
	UpdateInstance(ctx context.Context, in *api.Instance) error
	AppByID(ctx context.Context, id string) (*api.App, error)
}

// start notes when the controller began listening to heartbeats.
func (s *Nodes) start() {
	s.startedMu.Lock()
	s.started = s.cfg.Now()
	s.startedMu.Unlock()
}

// fresh reports whether the controller has run long enough (2×NodeTTL) to
// have heard from every live node.
func (s *Nodes) fresh() bool {
	s.startedMu.Lock()
	defer s.startedMu.Unlock()
	return !s.started.IsZero() && s.cfg.Now().Sub(s.started) >= 2*s.cfg.NodeTTL
}

// nodeRegistry keeps the latest heartbeat of every node, in memory only.
//
// While the controller's own NATS connection is down it hears from nobody,
// which says nothing about the nodes: the registry is then suspended and
// reports no node lost, and on reconnect every node's last-seen time is
// renewed, so a NATS outage never reschedules (or stops) running instances
// (docs/reliability.md rule 6).
type nodeRegistry struct {
	mu        sync.Mutex
	m         map[string]*nodeEntry
	suspended bool
	drained   map[string]bool // nodes an operator drains (from the database)
	// events holds the latest instance event per instance until a heartbeat
	// taken after it arrives: a heartbeat taken before an event but received
	// after it must not undo it (a running instance reported as starting).
	events map[string]eventMark
}

// eventMark is a noted instance event and when it was received.
type eventMark struct {
	ev *api.InstanceEvent
	at time.Time
}

// eventKeep bounds how long an event waits for a newer heartbeat (its node
// may never send one).
const eventKeep = time.Minute

// suspend stops nodes from being reported lost (the bus is down).
func (r *nodeRegistry) suspend() {
	r.mu.Lock()
	r.suspended = true
	r.mu.Unlock()
}

// resume renews every node's lease to now and ends a suspension.
func (r *nodeRegistry) resume(now time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.suspended = false
	for _, e := range r.m {
		e.seen = now
	}
}

type nodeEntry struct {
	hb     api.NodeHeartbeat
	seen   time.Time // receive time of the latest heartbeat
	seq    int       // heartbeats received from this node
	listed map[string]api.InstanceReport
}

func newNodeRegistry() *nodeRegistry {
	return &nodeRegistry{m: map[string]*nodeEntry{}, events: map[string]eventMark{}}
}

// event notes an instance event and applies it to its node's listing.
func (r *nodeRegistry) event(ev *api.InstanceEvent, now time.Time) {
	if ev.NodeID == "" || ev.Time.IsZero() || ev.Instance.InstanceID == "" {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	id := ev.Instance.InstanceID
	if old, ok := r.events[id]; ok && old.ev.Time.After(ev.Time) {
		return
	}
	cp := *ev
	r.events[id] = eventMark{ev: &cp, at: now}
	if e := r.m[ev.NodeID]; e != nil && e.hb.Time.Before(ev.Time) {
		if _, ok := e.listed[id]; ok {
			listed := maps.Clone(e.listed) // views share the old map
			listed[id] = mergeEvent(listed[id], ev)
			e.listed = listed
		}
	}
}

// mergeEvent returns a heartbeat report updated with a newer event's state.
func mergeEvent(rep api.InstanceReport, ev *api.InstanceEvent) api.InstanceReport {
	rep.State, rep.Port, rep.Restarts, rep.FailedStarts = ev.Instance.State, ev.Instance.Port, ev.Instance.Restarts, ev.Instance.FailedStarts
	if !ev.Instance.StartedAt.IsZero() {
		rep.StartedAt = ev.Instance.StartedAt
	}
	return rep
}

func (r *nodeRegistry) heartbeat(hb *api.NodeHeartbeat, now time.Time) {
	if hb.NodeID == "" {
		return
	}
	listed := make(map[string]api.InstanceReport, len(hb.Instances))
	for _, in := range hb.Instances {
		listed[in.InstanceID] = in
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for id, m := range r.events {
		ev := m.ev
		if now.Sub(m.at) > eventKeep {
			delete(r.events, id)
			continue
		}
		if ev.NodeID != hb.NodeID {
			continue
		}
		if !ev.Time.After(hb.Time) {
			delete(r.events, id) // this heartbeat already reflects it
			continue
		}
		if rep, ok := listed[id]; ok {
			listed[id] = mergeEvent(rep, ev)
		}
	}
	e := r.m[hb.NodeID]
	if e == nil {
		e = &nodeEntry{}
		r.m[hb.NodeID] = e
	}
	e.hb, e.seen, e.listed = *hb, now, listed
	e.seq++
}

// nodeView is a copy of one node's soft state at a moment.
type nodeView struct {
	node   api.Node
	seq    int
	listed map[string]api.InstanceReport
}

func (r *nodeRegistry) views(now time.Time, ttl time.Duration) map[string]*nodeView {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make(map[string]*nodeView, len(r.m))
	for id, e := range r.m {
		state := scheduler.NodeReady
		if now.Sub(e.seen) > ttl && !r.suspended {
			state = scheduler.NodeLost
		} else if r.drained[id] {
			state = scheduler.NodeDraining
		}
		out[id] = &nodeView{
			node: api.Node{
				ID: id, Address: e.hb.Address, Substrate: e.hb.Substrate,
				Isolations: slices.Clone(e.hb.Isolations), Capacity: e.hb.Capacity,
				Labels: maps.Clone(e.hb.Labels), State: state, LastSeen: e.seen, Instances: len(e.listed),
				Accel: e.hb.Accel,
			},
			seq:    e.seq,
			listed: e.listed, // replaced, never mutated, on each heartbeat
		}
	}
	return out
}

// Nodes is List for an admin (GET /v1/nodes and the console's nodes page).
func (s *Nodes) Nodes(ctx context.Context) ([]api.Node, error) {
	if err := requireAdmin(ctx, "listing nodes"); err != nil {
		return nil, err
	}
	return s.List(), nil
}

// List returns the executors heard from since start, sorted by ID, each
// "ready", "draining" (strata nodes drain) or "lost" (silent for NodeTTL).
func (s *Nodes) List() []api.Node {
	views := s.views(s.cfg.Now(), s.cfg.NodeTTL)
	out := make([]api.Node, 0, len(views))
	for _, v := range views {
		out = append(out, v.node)
	}
	slices.SortFunc(out, func(a, b api.Node) int { return cmp.Compare(a.ID, b.ID) })
	return out
}

// instanceEvent applies an executor's report of an instance transition to
// its row. Events for unknown instances, for instances placed on another
// node, and (except "stopped") for instances being stopped are ignored.
func (s *Nodes) instanceEvent(ctx context.Context, ev *api.InstanceEvent) {
	rep := ev.Instance
	in, err := s.store.Instance(ctx, rep.InstanceID)
	if err != nil {
		if api.ErrorCode(err) != api.ENotFound {
			s.log.Warn("instance_event.read_failed", "instance", rep.InstanceID, "err", err)
		}
		return
	}
	if in.NodeID != ev.NodeID {
		return
	}
	if in.State == api.InstanceStopping && rep.State != api.InstanceStopped {
		return
	}
	in.State, in.Restarts = rep.State, rep.Restarts
	if rep.Port != 0 {
		in.Port = rep.Port
	}
	if !rep.StartedAt.IsZero() {
		in.StartedAt = rep.StartedAt
	}
	if rep.State == api.InstanceRunning {
		in.Reason = ""
	} else if ev.Reason != "" {
		in.Reason = ev.Reason
	}
	if err := s.store.UpdateInstance(ctx, in); err != nil {
		s.log.Warn("instance_event.update_failed", "instance", in.ID, "err", err)
		return
	}
	if rep.State == api.InstanceCrashed {
		if app, err := s.store.AppByID(ctx, in.AppID); err == nil {
			s.audit.record(ctx, app, "instance.crashed", "%s", crashMessage(in, ev))
		}
	}
	s.sig.notifyChanged()
	if rep.State == api.InstanceRunning || rep.State == api.InstanceStopped {
		s.sig.Kick() // a new instance running may let the rollout stop an old one
	}
}
