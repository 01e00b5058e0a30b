package controller

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/strata-paas/strata/api"
	"github.com/strata-paas/strata/deploy/scheduler"
)

// Converger makes actual state match desired state: each pass reads apps,
// formations, instances and node reports, plans with the scheduler, and sends
// start and stop commands (docs/architecture.md, "Convergence").
type Converger struct {
	cfg         Config
	log         *slog.Logger
	store       convergeStore
	audit       *audit
	sig         *signals
	nodeCmds    nodeCommands
	nodes       *Nodes
	placement   *Placement
	builds      *Builds
	apps        *Apps
	unplaceable *unplaceable

	applyMu sync.Mutex // serialises passes; guards missing and routesSent
	missing map[string]missingStart
	// routesSent: instance id → its node's heartbeat count when its routes
	// were last sent (guarded by applyMu).
	routesSent map[string]int

	stopMu   sync.Mutex
	stopping map[string]bool // instance ids with a stop in flight
}

// releaseReader reads one release.
type releaseReader interface {
	Release(ctx context.Context, appID string, version int) (*api.Release, error)
}

// convergeStore is what the converger reads and writes.
type convergeStore interface {
	InstanceStore
	ListAllApps(ctx context.Context) ([]*api.App, error)
	Processes(ctx context.Context, appID string) ([]api.Process, error)
	releaseReader
	Routes(ctx context.Context, appID string) ([]*api.Route, error)
}

// resendAfter is how many heartbeats of its (live) node may omit an instance
// row before its start command is sent again.
const resendAfter = 3

// applyConcurrency bounds the node commands one converger pass sends at once.
const applyConcurrency = 16

// missingStart remembers the node heartbeat count at which an instance row
// was first seen missing from its node's heartbeats.
type missingStart struct{ seq int }

type procKey struct{ app, proc string }

// pass is the state read by one converger pass.
type pass struct {
	apps     map[string]*api.App
	procs    map[string][]api.Process
	releases map[string]*api.Release // app id + version → release
	routes   map[string][]string     // app id → route URIs of its web instances
	rows     map[string]*api.Instance
	views    map[string]*nodeView
	fresh    bool
}

// converge runs one pass: read desired state, plan, apply, repair. Any
// database error ends the pass before anything is stopped.
func (s *Converger) converge(ctx context.Context) {
	s.applyMu.Lock()
	defer s.applyMu.Unlock()
	if ctx.Err() != nil {
		return
	}
	s.builds.failStuckBuilds(ctx)
	p, forms, err := s.readPass(ctx)
	if err != nil {
		s.log.Warn("converge.read_failed", "err", err)
		return
	}
	s.reconcileReports(ctx, p)
	if s.rollbackUnhealthy(ctx, p) {
		// Current releases changed: plan from the new desired state.
		if p, forms, err = s.readPass(ctx); err != nil {
			s.log.Warn("converge.read_failed", "err", err)
			return
		}
	}

	snap := scheduler.Snapshot{Formations: forms, Overcommit: s.cfg.Overcommit}
	used := map[string]int{}
	for _, in := range p.rows {
		snap.Instances = append(snap.Instances, in)
		used[in.NodeID] += p.memoryOf(in.AppID, in.Process)
	}
	for id, v := range p.views {
		snap.Nodes = append(snap.Nodes, scheduler.Node{Node: v.node, UsedMB: used[id]})
	}
	if p.fresh {
		// Nodes that instance rows name but that have not heartbeated since
		// the gate opened are lost; before the gate they are merely unknown.
		for id := range used {
			if _, ok := p.views[id]; !ok {
				snap.Nodes = append(snap.Nodes, scheduler.Node{Node: api.Node{ID: id, State: scheduler.NodeLost}})
			}
		}
	}
	plan := scheduler.Plan(snap)
	s.noteUnplaceable(p, plan.Unplaceable)

	var wg sync.WaitGroup
	sem := make(chan struct{}, applyConcurrency)
	async := func(fn func()) {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			fn()
		}()
	}
	stopped := make(map[string]bool, len(plan.Stop))
	for _, id := range plan.Stop {
		stopped[id] = true
		if row := p.rows[id]; row != nil {
			in := *row
			async(func() { s.applyStop(ctx, p, &in) })
		}
	}
	created := map[string]bool{}
	for _, pl := range plan.Place {
		in := &api.Instance{
			ID: uuid.NewString(), AppID: pl.AppID, Process: pl.Process, Index: pl.Index,
			Release: pl.Release, NodeID: pl.NodeID, Isolation: pl.Isolation, State: api.InstanceStarting, CreatedAt: s.cfg.Now(),
		}
		if err := s.store.CreateInstance(ctx, in); err != nil {
			s.log.Warn("converge.create_instance_failed", "app", pl.AppID, "err", err)
			continue
		}
		created[in.ID] = true
		async(func() { s.applyStart(ctx, p, in) })
	}
	s.resendMissing(ctx, p, stopped, async)
	s.syncRoutes(ctx, p, stopped, async)
	if p.fresh {
		s.stopOrphans(ctx, p, created, async)
	}
	wg.Wait()
	if len(plan.Place)+len(plan.Stop) > 0 {
		s.sig.notifyChanged()
	}
}

func (s *Converger) readPass(ctx context.Context) (*pass, []scheduler.Formation, error) {
	// Read the gate before the database so a pass that straddles the gate
	// opening still counts as not fresh.
	p := &pass{
		fresh: s.nodes.fresh(), apps: map[string]*api.App{}, procs: map[string][]api.Process{},
		releases: map[string]*api.Release{}, routes: map[string][]string{}, rows: map[string]*api.Instance{},
	}
	apps, err := s.store.ListAllApps(ctx)
	if err != nil {
		return nil, nil, err
	}
	rows, err := s.store.AllInstances(ctx)
	if err != nil {
		return nil, nil, err
	}
	for _, in := range rows {
		p.rows[in.ID] = in
	}
	var forms []scheduler.Formation
	for _, a := range apps {
		p.apps[a.ID] = a
		if a.State != api.AppStarted || a.CurrentRelease == 0 {
			continue
		}
		procs, err := s.store.Processes(ctx, a.ID)
		if err != nil {
			return nil, nil, err
		}
		p.procs[a.ID] = procs
		if p.routes[a.ID], err = s.routeURIs(ctx, a.ID); err != nil {
			return nil, nil, err
		}
		rel, err := p.release(ctx, s.store, a.ID, a.CurrentRelease)
		if err != nil {
			return nil, nil, err
		}
		for _, pr := range procs {
			if _, ok := rel.Processes[pr.Type]; !ok {
				continue // the release has no command for this type
			}
			n := pr.Instances
			if pr.Sleeping {
				n = 0 // scale to zero: stopped until a request wakes it (sleep.go)
			}
			forms = append(forms, scheduler.Formation{
				AppID: a.ID, Process: pr.Type, Instances: n, MemoryMB: pr.MemoryMB, Release: a.CurrentRelease,
			})
		}
	}
	if err := s.placement.readPlacement(ctx, p, forms); err != nil {
		return nil, nil, err
	}
	// An image runs only on an isolation that runs images: a policy that
	// names none gets a container (docs/containers.md).
	for i := range forms {
		if iso := forms[i].Policy.Isolation; forms[i].Release == 0 || iso != "" && iso != api.PlacementAny {
			continue
		}
		rel, err := p.release(ctx, s.store, forms[i].AppID, forms[i].Release)
		if err != nil {
			return nil, nil, err
		}
		if rel.IsImage() {
			forms[i].Policy.Isolation = api.IsolationContainer
		}
	}
	p.views = s.nodes.views(s.cfg.Now(), s.cfg.NodeTTL)
	return p, forms, nil
}

func (p *pass) memoryOf(appID, proc string) int {
	for _, pr := range p.procs[appID] {
		if pr.Type == proc && pr.MemoryMB > 0 {
			return pr.MemoryMB
		}
	}
	return api.DefaultMemoryMB
}

func (p *pass) release(ctx context.Context, st releaseReader, appID string, version int) (*api.Release, error) {
	key := appID + "/" + strconv.Itoa(version)
	if r, ok := p.releases[key]; ok {
		return r, nil
	}
	r, err := st.Release(ctx, appID, version)
	if err != nil {
		return nil, err
	}
	p.releases[key] = r
	return r, nil
}

// reconcileReports copies state, port and restarts from live heartbeats into
// instance rows that disagree (instance events can be lost on the bus).
func (s *Converger) reconcileReports(ctx context.Context, p *pass) {
	changed := false
	for _, in := range p.rows {
		v := p.views[in.NodeID]
		if v == nil || !v.live() || in.State == api.InstanceStopping {
			continue
		}
		rep, ok := v.listed[in.ID]
		if !ok || rep.State == "" || rep.State == in.State && rep.Port == in.Port && rep.Restarts == in.Restarts {
			continue
		}
		// The row may have changed since the pass read it: an instance event
		// applied meanwhile carries what a heartbeat does not (a crash's
		// reason), so the copy starts from the row as it is now.
		cur, err := s.store.Instance(ctx, in.ID)
		if err != nil {
			continue
		}
		if cur.State == api.InstanceStopping || rep.State == cur.State && rep.Port == cur.Port && rep.Restarts == cur.Restarts {
			*in = *cur
			continue
		}
		cur.State, cur.Port, cur.Restarts = rep.State, rep.Port, rep.Restarts
		if !rep.StartedAt.IsZero() {
			cur.StartedAt = rep.StartedAt
		}
		*in = *cur
		if err := s.store.UpdateInstance(ctx, in); err != nil {
			s.log.Warn("converge.reconcile_failed", "instance", in.ID, "err", err)
			continue
		}
		changed = true
	}
	if changed {
		s.sig.notifyChanged()
	}
}

// rollbackUnhealthy makes an older release current again for every app whose
// current release has an instance that ended FailedStarts runs in a row
// without becoming healthy while instances of the older release still run —
// a config change, restart, rollback or unwatched push that broke the app.
// The older instances never stopped (rollouts keep them until replacements
// run), so they keep serving; the failed release's instances are stopped by
// the plan. It reports whether any app was rolled back.
func (s *Converger) rollbackUnhealthy(ctx context.Context, p *pass) bool {
	type verdict struct {
		failing bool
		reason  string
		older   int // newest other release with a running instance
	}
	byApp := map[string]*verdict{}
	for _, in := range p.rows {
		app := p.apps[in.AppID]
		v := p.views[in.NodeID]
		if app == nil || app.State != api.AppStarted || app.CurrentRelease == 0 || v == nil || !v.live() {
			continue
		}
		d := byApp[app.ID]
		if d == nil {
			d = &verdict{}
			byApp[app.ID] = d
		}
		rep, listed := v.listed[in.ID]
		switch {
		case in.Release == app.CurrentRelease && listed && rep.State != api.InstanceRunning && rep.FailedStarts >= s.cfg.FailedStarts:
			d.failing = true
			if in.Reason != "" {
				d.reason = in.Reason
			}
		case in.Release != app.CurrentRelease && listed && rep.State == api.InstanceRunning:
			d.older = max(d.older, in.Release)
		}
	}
	rolled := false
	for appID, d := range byApp {
		if !d.failing || d.older == 0 {
			continue
		}
		if d.reason == "" {
			d.reason = "its instances keep failing to start"
		}
		reason := fmt.Sprintf("%s (%d failed starts in a row)", d.reason, s.cfg.FailedStarts)
		cur, err := s.apps.rollBackTo(ctx, appID, p.apps[appID].CurrentRelease, d.older, reason)
		if err != nil {
			s.log.Warn("converge.rollback_failed", "app", appID, "err", err)
			continue
		}
		rolled = rolled || cur == d.older
	}
	return rolled
}

// noteUnplaceable remembers the latest placement problem per app and tells
// the app's log when it first appears.
func (s *Converger) noteUnplaceable(p *pass, un []scheduler.Unplaceable) {
	now := map[string]string{}
	for _, u := range un {
		if _, ok := now[u.AppID]; !ok {
			now[u.AppID] = u.Process + "/" + strconv.Itoa(u.Index) + " cannot be placed: " + u.Reason
		}
	}
	prev := s.unplaceable.swap(now)
	if !p.fresh {
		return // right after start, nodes may simply not have heartbeated yet
	}
	for appID, msg := range now {
		if prev[appID] != msg {
			if a := p.apps[appID]; a != nil {
				s.log.Warn("converge.unplaceable", "app", a.Name, "reason", msg)
				s.audit.strataLine(a, msg)
			}
		}
	}
}

// unplaceable holds the latest placement problem of each app: the
// converger writes it each pass; deploys and `strata app` read it.
type unplaceable struct {
	mu sync.Mutex
	m  map[string]string // app id → problem
}

func (u *unplaceable) swap(now map[string]string) (prev map[string]string) {
	u.mu.Lock()
	defer u.mu.Unlock()
	prev, u.m = u.m, now
	return prev
}

func (u *unplaceable) reason(appID string) string {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.m[appID]
}

// nodeGone reports whether the node of an instance is lost: silent for
// NodeTTL, or (after the fresh-state gate) never heard from.
func (p *pass) nodeGone(nodeID string) bool {
	v, ok := p.views[nodeID]
	if !ok {
		return p.fresh
	}
	return v.node.State == scheduler.NodeLost
}

// applyStop stops one instance: its row becomes stopping, the executor is
// asked to stop it, and the row is deleted once the executor confirms (or
// directly when its node is lost).
func (s *Converger) applyStop(ctx context.Context, p *pass, in *api.Instance) {
	if !s.beginStop(in.ID) {
		return
	}
	defer s.endStop(in.ID)
	log := s.log.With("instance", in.ID, "node", in.NodeID)
	if !p.nodeGone(in.NodeID) {
		if in.State != api.InstanceStopping {
			in.State = api.InstanceStopping
			if err := s.store.UpdateInstance(ctx, in); err != nil {
				log.Warn("converge.mark_stopping_failed", "err", err)
				return
			}
		}
		if err := s.nodeCmds.stop(ctx, in); err != nil {
			log.Info("converge.stop_failed", "err", err)
			return
		}
	}
	if err := s.store.DeleteInstance(ctx, in.ID); err != nil && api.ErrorCode(err) != api.ENotFound {
		log.Warn("converge.delete_instance_failed", "err", err)
	}
}

func (s *Converger) beginStop(id string) bool {
	s.stopMu.Lock()
	defer s.stopMu.Unlock()
	if s.stopping[id] {
		return false
	}
	s.stopping[id] = true
	return true
}

func (s *Converger) endStop(id string) {
	s.stopMu.Lock()
	delete(s.stopping, id)
	s.stopMu.Unlock()
}

// applyStart sends the start command of a new (or missing) instance. An
// executor that refuses it marks the row crashed with its reason; one that
// does not answer is retried by resendMissing.
func (s *Converger) applyStart(ctx context.Context, p *pass, in *api.Instance) {
	log := s.log.With("instance", in.ID, "node", in.NodeID)
	spec, err := s.spec(ctx, p, in)
	if err != nil {
		log.Warn("converge.spec_failed", "err", err)
		return
	}
	err = s.nodeCmds.send(ctx, in.NodeID, &api.NodeCommand{Version: api.MessageVersion, Kind: api.CmdStart, Start: spec})
	if err == nil {
		return
	}
	log.Info("converge.start_failed", "err", err)
	var refused *api.Error
	if api.ErrorCode(err) != api.EUnavailable && asError(err, &refused) {
		in.State, in.Reason = api.InstanceCrashed, refused.Message
		if err := s.store.UpdateInstance(ctx, in); err != nil {
			log.Warn("converge.mark_crashed_failed", "err", err)
		}
	}
}

// spec builds the InstanceSpec of an instance row. The pass's caches are
// only read here: everything spec needs was loaded by readPass, except
// releases other than the current one, which are fetched without caching.
func (s *Converger) spec(ctx context.Context, p *pass, in *api.Instance) (*api.InstanceSpec, error) {
	app := p.apps[in.AppID]
	if app == nil {
		return nil, api.Errorf(api.ENotFound, "app %s of instance %s is gone", in.AppID, in.ID)
	}
	rel := p.releases[in.AppID+"/"+strconv.Itoa(in.Release)]
	if rel == nil {
		var err error
		if rel, err = s.store.Release(ctx, in.AppID, in.Release); err != nil {
			return nil, err
		}
	}
	spec := &api.InstanceSpec{
		InstanceID: in.ID, AppID: app.ID, AppName: app.Name, SpaceID: app.SpaceID,
		Process: in.Process, Index: in.Index, Release: in.Release, DropletBlob: rel.DropletBlob, Image: rel.Image, ImageBlob: rel.ImageBlob,
		Command: rel.Processes[in.Process], Env: rel.Env, Isolation: in.Isolation,
		MemoryMB: api.DefaultMemoryMB, DiskMB: api.DefaultDiskMB,
		HealthCheck: api.HealthCheck{Type: api.DefaultHealthCheck(in.Process)},
	}
	for _, pr := range p.procs[app.ID] {
		if pr.Type == in.Process {
			if pr.MemoryMB > 0 {
				spec.MemoryMB = pr.MemoryMB
			}
			if pr.DiskMB > 0 {
				spec.DiskMB = pr.DiskMB
			}
			if pr.HealthCheck != "" {
				spec.HealthCheck.Type, spec.HealthCheck.Path = pr.HealthCheck, pr.HealthCheckPath
			}
			spec.HealthCheck.Timeout = time.Duration(pr.HealthCheckTimeout) * time.Second
			spec.HealthCheck.Interval = time.Duration(pr.HealthCheckInterval) * time.Second
		}
	}
	if in.Process == api.ProcessWeb {
		uris, ok := p.routes[app.ID]
		if !ok {
			var err error
			if uris, err = s.routeURIs(ctx, app.ID); err != nil {
				return nil, err
			}
		}
		spec.Routes = slices.Clone(uris)
	}
	return spec, nil
}

// routeURIs returns the URIs (host or host/path) web instances of an app
// register, in the store's order.
func (s *Converger) routeURIs(ctx context.Context, appID string) ([]string, error) {
	routes, err := s.store.Routes(ctx, appID)
	if err != nil {
		return nil, err
	}
	uris := make([]string, 0, len(routes))
	for _, r := range routes {
		uris = append(uris, r.Host+r.Path)
	}
	return uris, nil
}

// syncRoutes sends the app's current routes to running web instances whose
// heartbeat reports other ones (a route was mapped or unmapped since they
// started), again after resendAfter heartbeats if nothing changed.
func (s *Converger) syncRoutes(ctx context.Context, p *pass, stopped map[string]bool, async func(func())) {
	for id := range s.routesSent {
		if _, ok := p.rows[id]; !ok {
			delete(s.routesSent, id)
		}
	}
	for id, in := range p.rows {
		want, ok := p.routes[in.AppID]
		v := p.views[in.NodeID]
		if !ok || in.Process != api.ProcessWeb || stopped[id] || v == nil || !v.live() {
			continue
		}
		rep, listed := v.listed[id]
		if !listed || rep.State != api.InstanceRunning || slices.Equal(rep.Routes, want) {
			delete(s.routesSent, id)
			continue
		}
		if seq, sent := s.routesSent[id]; sent && v.seq-seq < resendAfter {
			continue
		}
		s.routesSent[id] = v.seq
		cmd := &api.NodeCommand{Version: api.MessageVersion, Kind: api.CmdRoutes, InstanceID: id, Routes: slices.Clone(want)}
		nodeID := in.NodeID
		async(func() {
			if err := s.nodeCmds.send(ctx, nodeID, cmd); err != nil {
				s.log.Info("converge.routes_failed", "instance", id, "node", nodeID, "err", err)
			}
		})
	}
}

// resendMissing re-sends the start of instance rows that their live node
// has left out of resendAfter heartbeats — how apps come back after the
// node (or the whole microcloud) restarted with no instances.
func (s *Converger) resendMissing(ctx context.Context, p *pass, stopped map[string]bool, async func(func())) {
	for id := range s.missing {
		if _, ok := p.rows[id]; !ok {
			delete(s.missing, id)
		}
	}
	for id, in := range p.rows {
		v := p.views[in.NodeID]
		if v == nil || !v.live() || stopped[id] ||
			in.State == api.InstanceStopping || in.State == api.InstanceStopped {
			delete(s.missing, id)
			continue
		}
		if _, ok := v.listed[id]; ok {
			delete(s.missing, id)
			continue
		}
		m, ok := s.missing[id]
		if !ok {
			s.missing[id] = missingStart{seq: v.seq}
			continue
		}
		if v.seq-m.seq < resendAfter {
			continue
		}
		s.missing[id] = missingStart{seq: v.seq}
		s.log.Info("converge.resend_start", "instance", id, "node", in.NodeID)
		cp := *in
		async(func() { s.applyStart(ctx, p, &cp) })
	}
}

// stopOrphans stops instances that live nodes report but no row knows. It
// runs only behind the fresh-state gate, and never when the database holds
// no apps at all (an empty or wrong database must not mass-stop).
func (s *Converger) stopOrphans(ctx context.Context, p *pass, created map[string]bool, async func(func())) {
	for nodeID, v := range p.views {
		if !v.live() {
			continue
		}
		for id, rep := range v.listed {
			if _, ok := p.rows[id]; ok || created[id] {
				continue
			}
			if rep.State == api.InstanceStopping || rep.State == api.InstanceStopped {
				continue
			}
			if len(p.apps) == 0 {
				s.log.Warn("converge.orphans_kept_empty_database", "node", nodeID, "instance", id)
				continue
			}
			orphan := &api.Instance{ID: id, AppID: rep.AppID, NodeID: nodeID}
			async(func() {
				if !s.beginStop(id) {
					return
				}
				defer s.endStop(id)
				s.log.Info("converge.stop_orphan", "instance", id, "node", nodeID)
				if err := s.nodeCmds.stop(ctx, orphan); err != nil {
					s.log.Info("converge.stop_orphan_failed", "instance", id, "err", err)
				}
			})
		}
	}
}

func asError(err error, target **api.Error) bool { return errors.As(err, target) }
