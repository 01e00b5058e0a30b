package httpapitest

import (
	"context"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/strata-paas/strata/api"
)

var _ api.LifecycleService = (*Fake)(nil)

// app returns the app detail, or ENotFound. f.mu must be held.
func (f *Fake) appLocked(name string) (*api.AppDetail, error) {
	d, ok := f.apps[name]
	if !ok {
		return nil, api.Errorf(api.ENotFound, "app %q not found — see strata apps", name)
	}
	return d, nil
}

// releaseLocked appends a release copying base's droplet with env and makes
// it current. f.mu must be held.
func (f *Fake) releaseLocked(ctx context.Context, d *api.AppDetail, base *api.Release, env map[string]string, typ, desc string) *api.Release {
	rel := &api.Release{AppID: d.ID, Version: d.CurrentRelease + 1, Env: env, Description: desc, Actor: api.ActorName(ctx), CreatedAt: f.now()}
	if base != nil {
		rel.BuildID, rel.DropletBlob, rel.Processes = base.BuildID, base.DropletBlob, maps.Clone(base.Processes)
	}
	rel.ID = "rel-" + d.Name + "-" + strings.Repeat("i", rel.Version)
	f.releases[d.Name] = append(f.releases[d.Name], rel)
	d.CurrentRelease, d.Release = rel.Version, rel
	f.eventLocked(ctx, d, typ, desc)
	return rel
}

func (f *Fake) eventLocked(ctx context.Context, d *api.AppDetail, typ, msg string) {
	f.events[d.Name] = append(f.events[d.Name], &api.Event{ID: typ + "-" + d.Name, AppID: d.ID, Type: typ, Actor: api.ActorName(ctx), Message: msg, Time: f.now()})
}

// Releases implements api.LifecycleService.
func (f *Fake) Releases(_ context.Context, name string) ([]*api.Release, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, err := f.appLocked(name); err != nil {
		return nil, err
	}
	out := slices.Clone(f.releases[name])
	slices.Reverse(out)
	return out, nil
}

// Rollback implements api.LifecycleService: version 0 is the previous one.
func (f *Fake) Rollback(ctx context.Context, name string, version int) (*api.Release, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	d, err := f.appLocked(name)
	if err != nil {
		return nil, err
	}
	if version == 0 {
		version = d.CurrentRelease - 1
	}
	for _, r := range f.releases[name] {
		if r.Version == version && version != d.CurrentRelease {
			return f.releaseLocked(ctx, d, r, maps.Clone(r.Env), "rollback", "Rollback to v"+strconv.Itoa(version)), nil
		}
	}
	return nil, api.Errorf(api.ENotFound, "app %s has no release v%d — see strata releases %s", name, version, name)
}

// Env implements api.LifecycleService.
func (f *Fake) Env(_ context.Context, name string) (map[string]string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	d, err := f.appLocked(name)
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	if d.Release != nil {
		maps.Copy(out, d.Release.Env)
	}
	return out, nil
}

// ChangeEnv implements api.LifecycleService with the real validation.
func (f *Fake) ChangeEnv(ctx context.Context, name string, ch api.EnvChange) (*api.Release, error) {
	if err := api.ValidateEnv(ch.Set); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	d, err := f.appLocked(name)
	if err != nil {
		return nil, err
	}
	env := map[string]string{}
	if d.Release != nil {
		maps.Copy(env, d.Release.Env)
	}
	maps.Copy(env, ch.Set)
	for _, k := range ch.Unset {
		delete(env, k)
	}
	keys := slices.Sorted(maps.Keys(ch.Set))
	return f.releaseLocked(ctx, d, d.Release, env, "env", "Set "+strings.Join(keys, ", ")), nil
}

// Scale implements api.LifecycleService.
func (f *Fake) Scale(ctx context.Context, name string, req api.ScaleRequest) (*api.ScaleResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	d, err := f.appLocked(name)
	if err != nil {
		return nil, err
	}
	if req.Process == "" {
		req.Process = "web"
	}
	i := slices.IndexFunc(d.Processes, func(p api.Process) bool { return p.Type == req.Process })
	if i < 0 && req.Process == "web" { // like the controller, every app has a web formation
		d.Processes = append(d.Processes, api.Process{AppID: d.ID, Type: "web", Instances: 1, MemoryMB: api.DefaultMemoryMB, DiskMB: api.DefaultDiskMB})
		i = len(d.Processes) - 1
	}
	if i < 0 {
		return nil, api.Errorf(api.ENotFound, "app %s has no process type %q — check the Procfile", name, req.Process)
	}
	p := &d.Processes[i]
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
	f.scales = append(f.scales, req)
	f.eventLocked(ctx, d, "scale", "scaled "+p.Type)
	return &api.ScaleResult{Process: *p}, nil
}

// Scales returns the Scale requests seen so far.
func (f *Fake) Scales() []api.ScaleRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.scales)
}

// SetState implements api.LifecycleService.
func (f *Fake) SetState(ctx context.Context, name string, state api.AppState) (*api.App, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	d, err := f.appLocked(name)
	if err != nil {
		return nil, err
	}
	d.State = state
	typ := "app.start"
	if state == api.AppStopped {
		typ = "app.stop"
	}
	f.eventLocked(ctx, d, typ, string(state))
	app := d.App
	return &app, nil
}

// Restart implements api.LifecycleService.
func (f *Fake) Restart(ctx context.Context, name string) (*api.Release, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	d, err := f.appLocked(name)
	if err != nil {
		return nil, err
	}
	if d.Release == nil {
		return nil, api.Errorf(api.EConflict, "app %s has no build to restart — push it first", name)
	}
	return f.releaseLocked(ctx, d, d.Release, maps.Clone(d.Release.Env), "restart", "Restart"), nil
}

// Events implements api.LifecycleService.
func (f *Fake) Events(_ context.Context, name string, limit int) ([]*api.Event, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, err := f.appLocked(name); err != nil {
		return nil, err
	}
	out := slices.Clone(f.events[name])
	slices.Reverse(out)
	if limit > 0 && len(out) > limit {
		out = out[:limit]
	}
	return out, nil
}
