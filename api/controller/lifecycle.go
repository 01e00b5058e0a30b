package controller

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/google/uuid"

	"github.com/strata-paas/strata/api"
)

var _ api.LifecycleService = (*Apps)(nil)

// Scale limits.
const (
	MaxInstances = 100
	MinMemoryMB  = 16
	MaxMemoryMB  = 64 << 10
	MinDiskMB    = 64
	MaxDiskMB    = 1 << 20
)

// Event limits of Events.
const (
	DefaultEventLimit = 100
	MaxEventLimit     = 1000
)

// Releases returns an app's releases, newest first.
func (s *Apps) Releases(ctx context.Context, name string) ([]*api.Release, error) {
	app, err := s.find.appByName(ctx, name, actRead)
	if err != nil {
		return nil, err
	}
	return s.store.ListReleases(ctx, app.ID)
}

// currentRelease returns the app's current release, or nil before the first.
func (s *Apps) currentRelease(ctx context.Context, app *api.App) (*api.Release, error) {
	if app.CurrentRelease == 0 {
		return nil, nil
	}
	return s.store.Release(ctx, app.ID, app.CurrentRelease)
}

// cut creates a new current release of app from base (which may be nil for
// a config-only release before the first build) with env, records an event
// of typ and wakes the converger, which rolls it out instance by instance.
func (s *Apps) cut(ctx context.Context, app *api.App, base *api.Release, env map[string]string, typ, description string) (*api.Release, error) {
	rel := &api.Release{ID: uuid.NewString(), AppID: app.ID, Env: env, Description: description, Actor: api.ActorName(ctx)}
	if base != nil {
		rel.BuildID, rel.DropletBlob, rel.Processes = base.BuildID, base.DropletBlob, maps.Clone(base.Processes)
		rel.Image, rel.ImageBlob = base.Image, base.ImageBlob
	}
	if err := s.store.CreateRelease(ctx, rel); err != nil {
		return nil, fmt.Errorf("create release: %w", err)
	}
	if len(rel.Processes) > 0 {
		if err := ensureFormation(ctx, s.store, app.ID, rel.Processes); err != nil {
			return nil, err
		}
	}
	s.audit.record(ctx, app, typ, "release v%d: %s", rel.Version, description)
	s.sig.Kick()
	s.sig.notifyChanged()
	return rel, nil
}

// Rollback makes a copy of an older release the app's new current release,
// without rebuilding. version 0 picks the newest release before the current
// one whose droplet or config differs from the current one (so restarts and
// scale releases are skipped).
func (s *Apps) Rollback(ctx context.Context, name string, version int) (*api.Release, error) {
	if version < 0 {
		return nil, api.Errorf(api.EInvalid, "release version %d is not valid — give a version from `strata releases %s`", version, name)
	}
	app, unlock, err := s.lockApp(ctx, name)
	if err != nil {
		return nil, err
	}
	defer unlock()
	rels, err := s.store.ListReleases(ctx, app.ID)
	if err != nil {
		return nil, err
	}
	var cur, target *api.Release
	for _, r := range rels {
		if r.Version == app.CurrentRelease {
			cur = r
		}
	}
	if cur == nil {
		return nil, api.Errorf(api.EConflict, "app %s has no release yet — push it first", name)
	}
	if version == 0 {
		for _, r := range rels { // newest first
			if r.Version < cur.Version && r.Runnable() && !sameContent(r, cur) {
				target = r
				break
			}
		}
		if target == nil {
			return nil, api.Errorf(api.EConflict, "app %s has no earlier release that differs from v%d — see `strata releases %s`", name, cur.Version, name)
		}
	} else {
		if version == cur.Version {
			return nil, api.Errorf(api.EConflict, "v%d is already the current release of %s — name an older version", version, name)
		}
		for _, r := range rels {
			if r.Version == version {
				target = r
			}
		}
		if target == nil {
			return nil, api.Errorf(api.ENotFound, "app %s has no release v%d — see `strata releases %s`", name, version, name)
		}
		if !target.Runnable() {
			return nil, api.Errorf(api.EInvalid, "release v%d has no build to run (it only set config) — choose a release with a build", version)
		}
	}
	return s.cut(ctx, app, target, maps.Clone(target.Env), "rollback", fmt.Sprintf("Rollback to v%d", target.Version))
}

func sameContent(a, b *api.Release) bool {
	return a.BuildID == b.BuildID && a.DropletBlob == b.DropletBlob && a.Image == b.Image && a.ImageBlob == b.ImageBlob && maps.Equal(a.Env, b.Env) && maps.Equal(a.Processes, b.Processes)
}

// Env returns the config vars of the app's current release (empty before
// any release).
func (s *Apps) Env(ctx context.Context, name string) (map[string]string, error) {
	app, err := s.find.appByName(ctx, name, actDevelop)
	if err != nil {
		return nil, err
	}
	rel, err := s.currentRelease(ctx, app)
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	if rel != nil {
		maps.Copy(out, rel.Env)
	}
	return out, nil
}

// ChangeEnv validates a config change and makes a new release with the
// current droplet and the changed vars. Before the first push the release
// has no droplet: the next build's release inherits its vars. A change that
// changes nothing returns the current release and makes no new one. Event
// messages name the vars, never their values.
func (s *Apps) ChangeEnv(ctx context.Context, name string, ch api.EnvChange) (*api.Release, error) {
	if len(ch.Set) == 0 && len(ch.Unset) == 0 {
		return nil, api.Errorf(api.EInvalid, "no config vars to set or unset — give NAME=VALUE or NAME")
	}
	if len(ch.Set) > api.MaxEnvVars || len(ch.Unset) > api.MaxEnvVars {
		return nil, api.Errorf(api.EInvalid, "more than %d config vars in one change — split it", api.MaxEnvVars)
	}
	if err := api.ValidateEnv(ch.Set); err != nil {
		return nil, err
	}
	for _, k := range ch.Unset {
		if err := api.ValidateEnvName(k); err != nil {
			return nil, err
		}
		if _, ok := ch.Set[k]; ok {
			return nil, api.Errorf(api.EInvalid, "config var %s is both set and unset — do one or the other", k)
		}
	}
	app, unlock, err := s.lockApp(ctx, name)
	if err != nil {
		return nil, err
	}
	defer unlock()
	cur, err := s.currentRelease(ctx, app)
	if err != nil {
		return nil, err
	}
	env := map[string]string{}
	if cur != nil {
		maps.Copy(env, cur.Env)
	}
	set := changedVars(env, ch.Set)
	maps.Copy(env, ch.Set)
	var unset []string
	for _, k := range slices.Sorted(slices.Values(ch.Unset)) {
		if _, ok := env[k]; ok {
			unset = append(unset, k)
			delete(env, k)
		}
	}
	if len(set)+len(unset) == 0 {
		return cur, nil
	}
	if err := api.ValidateEnv(env); err != nil {
		return nil, err
	}
	var desc []string
	if len(set) > 0 {
		desc = append(desc, "Set "+strings.Join(set, ", "))
	}
	if len(unset) > 0 {
		desc = append(desc, "Unset "+strings.Join(unset, ", "))
	}
	return s.cut(ctx, app, cur, env, "env", strings.Join(desc, "; "))
}

// changedVars returns, sorted, the names of set whose values env does not
// already have.
func changedVars(env, set map[string]string) []string {
	var names []string
	for _, k := range slices.Sorted(maps.Keys(set)) {
		if old, ok := env[k]; !ok || old != set[k] {
			names = append(names, k)
		}
	}
	return names
}

// Scale changes the formation of one process type. Changing the instance
// count needs no release: the converger starts or stops instances. Changing
// memory or disk makes a new release (same droplet and config) so that the
// instances are replaced one by one with the new limits.
func (s *Apps) Scale(ctx context.Context, name string, req api.ScaleRequest) (*api.ScaleResult, error) {
	if req.Process == "" {
		req.Process = api.ProcessWeb
	}
	if err := validateScale(req); err != nil {
		return nil, err
	}
	app, unlock, err := s.lockApp(ctx, name)
	if err != nil {
		return nil, err
	}
	defer unlock()
	procs, err := s.store.Processes(ctx, app.ID)
	if err != nil {
		return nil, err
	}
	i, err := processIndex(procs, name, req.Process)
	if err != nil {
		return nil, err
	}
	p := procs[i]
	old := p
	if req.Instances != nil {
		p.Instances = *req.Instances
	}
	if req.MemoryMB != nil {
		p.MemoryMB = *req.MemoryMB
	}
	if req.DiskMB != nil {
		p.DiskMB = *req.DiskMB
	}
	if req.ScaleToZero != nil {
		p.ScaleToZero = *req.ScaleToZero
	}
	res := &api.ScaleResult{Process: p}
	if p == old {
		return res, nil
	}
	memOf := func(p api.Process) int {
		if p.MemoryMB == 0 {
			return p.Instances * api.DefaultMemoryMB
		}
		return p.Instances * p.MemoryMB
	}
	if err := s.quotas.check(ctx, app.SpaceID, api.Quota{Instances: p.Instances - old.Instances, MemoryMB: memOf(p) - memOf(old)}); err != nil {
		return nil, err
	}
	if err := s.store.SetProcess(ctx, p); err != nil {
		return nil, fmt.Errorf("scale: %w", err)
	}
	desc := fmt.Sprintf("scaled %s to %d× %s memory, %s disk", p.Type, p.Instances, mb(p.MemoryMB), mb(p.DiskMB))
	if p.ScaleToZero != old.ScaleToZero {
		desc += ", scale-to-zero " + api.IdleTime(p.ScaleToZero)
		if p.ScaleToZero == 0 && p.Sleeping {
			// Off wakes a sleeping app: nothing would wake it later.
			if err := s.store.SetSleeping(ctx, app.ID, p.Type, false); err != nil {
				return nil, fmt.Errorf("scale: %w", err)
			}
			p.Sleeping = false
			res.Process = p
		}
	}
	if p.MemoryMB == old.MemoryMB && p.DiskMB == old.DiskMB {
		s.audit.record(ctx, app, "scale", "%s", desc)
		s.sig.Kick()
		return res, nil
	}
	cur, err := s.currentRelease(ctx, app)
	if err != nil {
		return nil, err
	}
	if cur == nil || !cur.Runnable() {
		s.audit.record(ctx, app, "scale", "%s", desc)
		return res, nil
	}
	res.Release, err = s.cut(ctx, app, cur, maps.Clone(cur.Env), "scale", strings.ToUpper(desc[:1])+desc[1:])
	return res, err
}

func validateScale(req api.ScaleRequest) error {
	if err := validateProcessType(req.Process); err != nil {
		return err
	}
	if req.Instances == nil && req.MemoryMB == nil && req.DiskMB == nil && req.ScaleToZero == nil {
		return api.Errorf(api.EInvalid, "nothing to scale — give instances (-i), memory (-m), disk (-k) or --scale-to-zero")
	}
	if z := req.ScaleToZero; z != nil {
		if req.Process != api.ProcessWeb {
			return api.Errorf(api.EInvalid, "scale-to-zero applies to web only: process %s has no routes to wake it", req.Process)
		}
		if *z != 0 && (*z < api.MinScaleToZero || *z > api.MaxScaleToZero) {
			return api.Errorf(api.EInvalid, "scale-to-zero %s is outside %s–%s — use e.g. 15m, or off", api.IdleTime(*z), api.IdleTime(api.MinScaleToZero), api.IdleTime(api.MaxScaleToZero))
		}
	}
	if n := req.Instances; n != nil && (*n < 0 || *n > MaxInstances) {
		return api.Errorf(api.EInvalid, "%d instances is out of range — use 0 to %d", *n, MaxInstances)
	}
	if m := req.MemoryMB; m != nil && (*m < MinMemoryMB || *m > MaxMemoryMB) {
		return api.Errorf(api.EInvalid, "memory %dM is out of range — use %dM to %s", *m, MinMemoryMB, mb(MaxMemoryMB))
	}
	if d := req.DiskMB; d != nil && (*d < MinDiskMB || *d > MaxDiskMB) {
		return api.Errorf(api.EInvalid, "disk %dM is out of range — use %dM to %s", *d, MinDiskMB, mb(MaxDiskMB))
	}
	return nil
}

// validateProcessType checks a Procfile process type name.
func validateProcessType(t string) error {
	if t == "" || len(t) > 63 {
		return api.Errorf(api.EInvalid, "process type %q is not valid — use a Procfile type such as web or worker", t)
	}
	for i := 0; i < len(t); i++ {
		ch := t[i]
		if !(ch >= 'a' && ch <= 'z' || ch >= 'A' && ch <= 'Z' || ch >= '0' && ch <= '9' || ch == '_' || ch == '-') {
			return api.Errorf(api.EInvalid, "process type %q is not valid — use letters, digits, '_' and '-'", t)
		}
	}
	return nil
}

func mb(n int) string {
	if n > 0 && n%1024 == 0 {
		return fmt.Sprintf("%dG", n/1024)
	}
	return fmt.Sprintf("%dM", n)
}

func orNone(names []string) string {
	if len(names) == 0 {
		return "none yet (push first)"
	}
	return strings.Join(names, ", ")
}

// SetState starts or stops an app. A stopped app keeps its formation and
// releases; the converger stops its instances, and starts them again (at
// the current release) when it is started.
func (s *Apps) SetState(ctx context.Context, name string, state api.AppState) (*api.App, error) {
	if state != api.AppStarted && state != api.AppStopped {
		return nil, api.Errorf(api.EInvalid, "app state %q is not valid — use started or stopped", state)
	}
	app, unlock, err := s.lockApp(ctx, name)
	if err != nil {
		return nil, err
	}
	defer unlock()
	if app.State == state {
		return app, nil
	}
	app.State = state
	if err := s.store.UpdateApp(ctx, app); err != nil {
		return nil, fmt.Errorf("update app: %w", err)
	}
	typ, verb := "app.start", "started"
	if state == api.AppStopped {
		typ, verb = "app.stop", "stopped"
	}
	s.audit.record(ctx, app, typ, "%s app %s", verb, name)
	s.sig.Kick()
	s.sig.notifyChanged()
	return app, nil
}

// Restart replaces the app's instances one by one: it makes a new release
// with the current droplet and config, which the converger rolls out like
// any release (new instance running before the old one stops).
func (s *Apps) Restart(ctx context.Context, name string) (*api.Release, error) {
	app, unlock, err := s.lockApp(ctx, name)
	if err != nil {
		return nil, err
	}
	defer unlock()
	if app.State != api.AppStarted {
		return nil, api.Errorf(api.EConflict, "app %s is stopped — start it with `strata start %s`", name, name)
	}
	cur, err := s.currentRelease(ctx, app)
	if err != nil {
		return nil, err
	}
	if cur == nil || !cur.Runnable() {
		return nil, api.Errorf(api.EConflict, "app %s has no build to restart — push it first", name)
	}
	return s.cut(ctx, app, cur, maps.Clone(cur.Env), "restart", fmt.Sprintf("Restart (v%d)", cur.Version))
}

// Events returns an app's audit trail, newest first, at most limit
// (DefaultEventLimit when <= 0, capped at MaxEventLimit).
func (s *Apps) Events(ctx context.Context, name string, limit int) ([]*api.Event, error) {
	app, err := s.find.appByName(ctx, name, actRead)
	if err != nil {
		return nil, err
	}
	if limit <= 0 {
		limit = DefaultEventLimit
	}
	limit = min(limit, MaxEventLimit)
	return s.store.Events(ctx, app.ID, limit)
}

// rollBackTo makes release to current again if failed still is, recording
// why, and returns the app's current release afterwards. Both the deploy
// watch and the converger roll back through it, under the app's lock.
func (s *Apps) rollBackTo(ctx context.Context, appID string, failed, to int, reason string) (int, error) {
	unlock, err := s.locks.lock(ctx, appID)
	if err != nil {
		return 0, err
	}
	defer unlock()
	app, err := s.store.AppByID(ctx, appID)
	if err != nil {
		return 0, err
	}
	if app.CurrentRelease != failed {
		return app.CurrentRelease, nil
	}
	app.CurrentRelease = to
	if err := s.store.UpdateApp(ctx, app); err != nil {
		return failed, err
	}
	s.audit.record(ctx, app, "rollback", "automatic rollback to v%d: release v%d did not become healthy: %s", to, failed, reason)
	s.log.Info("controller.rolled_back", "app", app.Name, "from", failed, "to", to)
	s.sig.Kick()
	return to, nil
}

// lockApp finds an app the caller may change, takes its lock and reads it
// again under the lock (so a concurrent change is not lost); call unlock
// when done.
func (s *Apps) lockApp(ctx context.Context, name string) (*api.App, func(), error) {
	app, err := s.find.appByName(ctx, name, actDevelop)
	if err != nil {
		return nil, nil, err
	}
	unlock, err := s.locks.lock(ctx, app.ID)
	if err != nil {
		return nil, nil, err
	}
	if app, err = s.store.AppByID(ctx, app.ID); err != nil {
		unlock()
		return nil, nil, err
	}
	return app, unlock, nil
}

// processIndex returns the index of process type typ in procs, or
// ENotFound naming the app's types.
func processIndex(procs []api.Process, app, typ string) (int, error) {
	i := slices.IndexFunc(procs, func(p api.Process) bool { return p.Type == typ })
	if i < 0 {
		var types []string
		for _, p := range procs {
			types = append(types, p.Type)
		}
		return -1, api.Errorf(api.ENotFound, "app %s has no process type %q — its types are %s (from the Procfile)", app, typ, orNone(types))
	}
	return i, nil
}
