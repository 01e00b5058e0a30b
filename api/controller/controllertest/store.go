package controllertest

import (
	"cmp"
	"context"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/strata-paas/strata/api"
	"github.com/strata-paas/strata/api/controller"
)

var _ controller.Store = (*Store)(nil)

// Store is an in-memory controller.Store. Returned objects are copies.
// FailWith makes every method fail, to simulate a database outage. Safe for
// concurrent use.
type Store struct {
	mu        sync.Mutex
	fail      error
	orgs      map[string]*api.Org
	spaces    map[string]*api.Space
	users     map[string]*api.User
	tokens    map[string]string // hash → user id
	apps      map[string]*api.App
	builds    map[string]*api.Build
	releases  map[string][]*api.Release // app id → releases, oldest first
	processes map[string]map[string]api.Process
	instances map[string]*api.Instance
	routes    map[string]*api.Route
	events    []*api.Event
	now       func() time.Time
	placement placementData // see placement.go
}

// NewStore returns an empty Store.
func NewStore() *Store {
	return &Store{
		orgs: map[string]*api.Org{}, spaces: map[string]*api.Space{}, users: map[string]*api.User{},
		tokens: map[string]string{}, apps: map[string]*api.App{}, builds: map[string]*api.Build{},
		releases: map[string][]*api.Release{}, processes: map[string]map[string]api.Process{},
		instances: map[string]*api.Instance{}, routes: map[string]*api.Route{}, now: time.Now,
	}
}

// FailWith makes every later call return err (nil restores normal service).
func (s *Store) FailWith(err error) {
	s.mu.Lock()
	s.fail = err
	s.mu.Unlock()
}

func (s *Store) lock() error {
	s.mu.Lock()
	if s.fail != nil {
		err := s.fail
		s.mu.Unlock()
		return err
	}
	return nil
}

func notFound(kind, key string) error { return api.Errorf(api.ENotFound, "%s %q not found", kind, key) }

func clone[T any](v *T) *T { c := *v; return &c }

func stamp(t *time.Time, now time.Time) {
	if t.IsZero() {
		*t = now
	}
}

// CreateOrg implements controller.Store.
func (s *Store) CreateOrg(_ context.Context, o *api.Org) error {
	if err := s.lock(); err != nil {
		return err
	}
	defer s.mu.Unlock()
	for _, x := range s.orgs {
		if x.Name == o.Name {
			return api.Errorf(api.EConflict, "org %q exists", o.Name)
		}
	}
	stamp(&o.CreatedAt, s.now())
	s.orgs[o.ID] = clone(o)
	return nil
}

// OrgByName implements controller.Store.
func (s *Store) OrgByName(_ context.Context, name string) (*api.Org, error) {
	if err := s.lock(); err != nil {
		return nil, err
	}
	defer s.mu.Unlock()
	for _, x := range s.orgs {
		if x.Name == name {
			return clone(x), nil
		}
	}
	return nil, notFound("org", name)
}

// CreateSpace implements controller.Store.
func (s *Store) CreateSpace(_ context.Context, sp *api.Space) error {
	if err := s.lock(); err != nil {
		return err
	}
	defer s.mu.Unlock()
	for _, x := range s.spaces {
		if x.OrgID == sp.OrgID && x.Name == sp.Name {
			return api.Errorf(api.EConflict, "space %q exists", sp.Name)
		}
	}
	stamp(&sp.CreatedAt, s.now())
	s.spaces[sp.ID] = clone(sp)
	return nil
}

// SpaceByName implements controller.Store.
func (s *Store) SpaceByName(_ context.Context, orgID, name string) (*api.Space, error) {
	if err := s.lock(); err != nil {
		return nil, err
	}
	defer s.mu.Unlock()
	for _, x := range s.spaces {
		if x.OrgID == orgID && x.Name == name {
			return clone(x), nil
		}
	}
	return nil, notFound("space", name)
}

// CreateUser implements controller.Store.
func (s *Store) CreateUser(_ context.Context, u *api.User) error {
	if err := s.lock(); err != nil {
		return err
	}
	defer s.mu.Unlock()
	for _, x := range s.users {
		if x.Name == u.Name {
			return api.Errorf(api.EConflict, "user %q exists", u.Name)
		}
	}
	stamp(&u.CreatedAt, s.now())
	s.users[u.ID] = clone(u)
	return nil
}

// UserByName implements controller.Store.
func (s *Store) UserByName(_ context.Context, name string) (*api.User, error) {
	if err := s.lock(); err != nil {
		return nil, err
	}
	defer s.mu.Unlock()
	for _, x := range s.users {
		if x.Name == name {
			return clone(x), nil
		}
	}
	return nil, notFound("user", name)
}

// CreateToken implements controller.Store.
func (s *Store) CreateToken(_ context.Context, userID, tokenHash, _ string) error {
	if err := s.lock(); err != nil {
		return err
	}
	defer s.mu.Unlock()
	if _, ok := s.users[userID]; !ok {
		return notFound("user", userID)
	}
	s.tokens[tokenHash] = userID
	return nil
}

// UserByTokenHash implements controller.Store.
func (s *Store) UserByTokenHash(_ context.Context, tokenHash string) (*api.User, error) {
	if err := s.lock(); err != nil {
		return nil, err
	}
	defer s.mu.Unlock()
	if u, ok := s.users[s.tokens[tokenHash]]; ok {
		return clone(u), nil
	}
	return nil, notFound("token", "")
}

// CreateApp implements controller.Store.
func (s *Store) CreateApp(_ context.Context, a *api.App) error {
	if err := s.lock(); err != nil {
		return err
	}
	defer s.mu.Unlock()
	for _, x := range s.apps {
		if x.SpaceID == a.SpaceID && x.Name == a.Name {
			return api.Errorf(api.EConflict, "app %q exists", a.Name)
		}
	}
	stamp(&a.CreatedAt, s.now())
	stamp(&a.UpdatedAt, s.now())
	s.apps[a.ID] = clone(a)
	return nil
}

// AppByName implements controller.Store.
func (s *Store) AppByName(_ context.Context, spaceID, name string) (*api.App, error) {
	if err := s.lock(); err != nil {
		return nil, err
	}
	defer s.mu.Unlock()
	for _, x := range s.apps {
		if x.SpaceID == spaceID && x.Name == name {
			return clone(x), nil
		}
	}
	return nil, notFound("app", name)
}

// AppByID implements controller.Store.
func (s *Store) AppByID(_ context.Context, id string) (*api.App, error) {
	if err := s.lock(); err != nil {
		return nil, err
	}
	defer s.mu.Unlock()
	if a, ok := s.apps[id]; ok {
		return clone(a), nil
	}
	return nil, notFound("app", id)
}

func (s *Store) listApps(match func(*api.App) bool) []*api.App {
	var out []*api.App
	for _, a := range s.apps {
		if match(a) {
			out = append(out, clone(a))
		}
	}
	slices.SortFunc(out, func(a, b *api.App) int { return cmp.Compare(a.Name, b.Name) })
	return out
}

// ListApps implements controller.Store.
func (s *Store) ListApps(_ context.Context, spaceID string) ([]*api.App, error) {
	if err := s.lock(); err != nil {
		return nil, err
	}
	defer s.mu.Unlock()
	return s.listApps(func(a *api.App) bool { return a.SpaceID == spaceID }), nil
}

// ListAllApps implements controller.Store.
func (s *Store) ListAllApps(_ context.Context) ([]*api.App, error) {
	if err := s.lock(); err != nil {
		return nil, err
	}
	defer s.mu.Unlock()
	return s.listApps(func(*api.App) bool { return true }), nil
}

// UpdateApp implements controller.Store.
func (s *Store) UpdateApp(_ context.Context, a *api.App) error {
	if err := s.lock(); err != nil {
		return err
	}
	defer s.mu.Unlock()
	x, ok := s.apps[a.ID]
	if !ok {
		return notFound("app", a.ID)
	}
	x.State, x.CurrentRelease, x.UpdatedAt = a.State, a.CurrentRelease, s.now()
	return nil
}

// DeleteApp implements controller.Store.
func (s *Store) DeleteApp(_ context.Context, id string) error {
	if err := s.lock(); err != nil {
		return err
	}
	defer s.mu.Unlock()
	if _, ok := s.apps[id]; !ok {
		return notFound("app", id)
	}
	delete(s.apps, id)
	delete(s.releases, id)
	delete(s.processes, id)
	maps.DeleteFunc(s.builds, func(_ string, b *api.Build) bool { return b.AppID == id })
	maps.DeleteFunc(s.instances, func(_ string, in *api.Instance) bool { return in.AppID == id })
	maps.DeleteFunc(s.routes, func(_ string, r *api.Route) bool { return r.AppID == id })
	return nil
}

// CreateBuild implements controller.Store.
func (s *Store) CreateBuild(_ context.Context, b *api.Build) error {
	if err := s.lock(); err != nil {
		return err
	}
	defer s.mu.Unlock()
	stamp(&b.CreatedAt, s.now())
	stamp(&b.UpdatedAt, s.now())
	s.builds[b.ID] = clone(b)
	return nil
}

// Build implements controller.Store.
func (s *Store) Build(_ context.Context, id string) (*api.Build, error) {
	if err := s.lock(); err != nil {
		return nil, err
	}
	defer s.mu.Unlock()
	if b, ok := s.builds[id]; ok {
		return clone(b), nil
	}
	return nil, notFound("build", id)
}

// UpdateBuild implements controller.Store.
func (s *Store) UpdateBuild(_ context.Context, id string, fn func(b *api.Build) error) (*api.Build, error) {
	if err := s.lock(); err != nil {
		return nil, err
	}
	defer s.mu.Unlock()
	cur, ok := s.builds[id]
	if !ok {
		return nil, notFound("build", id)
	}
	b := clone(cur)
	if err := fn(b); err != nil {
		return nil, err
	}
	if b.State != cur.State && !cur.State.CanTransitionTo(b.State) {
		return nil, api.Errorf(api.EConflict, "build %s cannot go from %s to %s", id, cur.State, b.State)
	}
	b.UpdatedAt = s.now()
	s.builds[id] = b
	return clone(b), nil
}

// BuildsInState implements controller.Store.
func (s *Store) BuildsInState(_ context.Context, states ...api.BuildState) ([]*api.Build, error) {
	if err := s.lock(); err != nil {
		return nil, err
	}
	defer s.mu.Unlock()
	var out []*api.Build
	for _, b := range s.builds {
		if slices.Contains(states, b.State) {
			out = append(out, clone(b))
		}
	}
	slices.SortFunc(out, func(a, b *api.Build) int { return a.CreatedAt.Compare(b.CreatedAt) })
	return out, nil
}

// LatestBuild implements controller.Store.
func (s *Store) LatestBuild(_ context.Context, appID string) (*api.Build, error) {
	if err := s.lock(); err != nil {
		return nil, err
	}
	defer s.mu.Unlock()
	var best *api.Build
	for _, b := range s.builds {
		if b.AppID == appID && (best == nil || !b.CreatedAt.Before(best.CreatedAt)) {
			best = b
		}
	}
	if best == nil {
		return nil, notFound("build of app", appID)
	}
	return clone(best), nil
}

// CreateRelease implements controller.Store.
func (s *Store) CreateRelease(_ context.Context, r *api.Release) error {
	if err := s.lock(); err != nil {
		return err
	}
	defer s.mu.Unlock()
	a, ok := s.apps[r.AppID]
	if !ok {
		return notFound("app", r.AppID)
	}
	r.Version = len(s.releases[r.AppID]) + 1
	stamp(&r.CreatedAt, s.now())
	c := clone(r)
	c.Processes, c.Env = maps.Clone(r.Processes), maps.Clone(r.Env)
	s.releases[r.AppID] = append(s.releases[r.AppID], c)
	a.CurrentRelease, a.UpdatedAt = r.Version, s.now()
	return nil
}

// Release implements controller.Store.
func (s *Store) Release(_ context.Context, appID string, version int) (*api.Release, error) {
	if err := s.lock(); err != nil {
		return nil, err
	}
	defer s.mu.Unlock()
	rs := s.releases[appID]
	if version < 1 || version > len(rs) {
		return nil, notFound("release", appID)
	}
	return clone(rs[version-1]), nil
}

// ListReleases implements controller.Store.
func (s *Store) ListReleases(_ context.Context, appID string) ([]*api.Release, error) {
	if err := s.lock(); err != nil {
		return nil, err
	}
	defer s.mu.Unlock()
	rs := s.releases[appID]
	out := make([]*api.Release, 0, len(rs))
	for i := len(rs) - 1; i >= 0; i-- {
		out = append(out, clone(rs[i]))
	}
	return out, nil
}

// Processes implements controller.Store.
func (s *Store) Processes(_ context.Context, appID string) ([]api.Process, error) {
	if err := s.lock(); err != nil {
		return nil, err
	}
	defer s.mu.Unlock()
	out := slices.Collect(maps.Values(s.processes[appID]))
	slices.SortFunc(out, func(a, b api.Process) int { return cmp.Compare(a.Type, b.Type) })
	return out, nil
}

// SetProcess implements controller.Store.
func (s *Store) SetProcess(_ context.Context, p api.Process) error {
	if err := s.lock(); err != nil {
		return err
	}
	defer s.mu.Unlock()
	if _, ok := s.apps[p.AppID]; !ok {
		return notFound("app", p.AppID)
	}
	if s.processes[p.AppID] == nil {
		s.processes[p.AppID] = map[string]api.Process{}
	}
	if old, ok := s.processes[p.AppID][p.Type]; ok {
		p.HealthCheck, p.HealthCheckPath, p.HealthCheckTimeout, p.HealthCheckInterval = old.HealthCheck, old.HealthCheckPath, old.HealthCheckTimeout, old.HealthCheckInterval
	}
	s.processes[p.AppID][p.Type] = p
	return nil
}

// SetHealthCheck implements controller.Store.
func (s *Store) SetHealthCheck(_ context.Context, p api.Process) error {
	if err := s.lock(); err != nil {
		return err
	}
	defer s.mu.Unlock()
	old, ok := s.processes[p.AppID][p.Type]
	if !ok {
		return notFound("process type", p.Type)
	}
	if p.HealthCheckTimeout < 0 || p.HealthCheckInterval < 0 {
		return api.Errorf(api.EInvalid, "negative health check timeout or interval")
	}
	old.HealthCheck, old.HealthCheckPath, old.HealthCheckTimeout, old.HealthCheckInterval = p.HealthCheck, p.HealthCheckPath, p.HealthCheckTimeout, p.HealthCheckInterval
	s.processes[p.AppID][p.Type] = old
	return nil
}

// CreateInstance implements controller.Store.
func (s *Store) CreateInstance(_ context.Context, in *api.Instance) error {
	if err := s.lock(); err != nil {
		return err
	}
	defer s.mu.Unlock()
	if _, ok := s.instances[in.ID]; ok {
		return api.Errorf(api.EConflict, "instance %s exists", in.ID)
	}
	stamp(&in.CreatedAt, s.now())
	stamp(&in.UpdatedAt, s.now())
	s.instances[in.ID] = clone(in)
	return nil
}

// Instance implements controller.Store.
func (s *Store) Instance(_ context.Context, id string) (*api.Instance, error) {
	if err := s.lock(); err != nil {
		return nil, err
	}
	defer s.mu.Unlock()
	if in, ok := s.instances[id]; ok {
		return clone(in), nil
	}
	return nil, notFound("instance", id)
}

func (s *Store) listInstances(match func(*api.Instance) bool) []*api.Instance {
	var out []*api.Instance
	for _, in := range s.instances {
		if match(in) {
			out = append(out, clone(in))
		}
	}
	slices.SortFunc(out, func(a, b *api.Instance) int {
		return cmp.Or(cmp.Compare(a.AppID, b.AppID), cmp.Compare(a.Process, b.Process), cmp.Compare(a.Index, b.Index), a.CreatedAt.Compare(b.CreatedAt))
	})
	return out
}

// Instances implements controller.Store.
func (s *Store) Instances(_ context.Context, appID string) ([]*api.Instance, error) {
	if err := s.lock(); err != nil {
		return nil, err
	}
	defer s.mu.Unlock()
	return s.listInstances(func(in *api.Instance) bool { return in.AppID == appID }), nil
}

// AllInstances implements controller.Store.
func (s *Store) AllInstances(_ context.Context) ([]*api.Instance, error) {
	if err := s.lock(); err != nil {
		return nil, err
	}
	defer s.mu.Unlock()
	return s.listInstances(func(*api.Instance) bool { return true }), nil
}

// UpdateInstance implements controller.Store.
func (s *Store) UpdateInstance(_ context.Context, in *api.Instance) error {
	if err := s.lock(); err != nil {
		return err
	}
	defer s.mu.Unlock()
	x, ok := s.instances[in.ID]
	if !ok {
		return notFound("instance", in.ID)
	}
	x.NodeID, x.State, x.Port, x.Reason, x.Restarts, x.StartedAt = in.NodeID, in.State, in.Port, in.Reason, in.Restarts, in.StartedAt
	x.UpdatedAt = s.now()
	return nil
}

// DeleteInstance implements controller.Store.
func (s *Store) DeleteInstance(_ context.Context, id string) error {
	if err := s.lock(); err != nil {
		return err
	}
	defer s.mu.Unlock()
	if _, ok := s.instances[id]; !ok {
		return notFound("instance", id)
	}
	delete(s.instances, id)
	return nil
}

// CreateRoute implements controller.Store.
func (s *Store) CreateRoute(_ context.Context, r *api.Route) error {
	if err := s.lock(); err != nil {
		return err
	}
	defer s.mu.Unlock()
	for _, x := range s.routes {
		if x.Host == r.Host && x.Path == r.Path {
			return api.Errorf(api.EConflict, "route %s%s is taken", r.Host, r.Path)
		}
	}
	s.routes[r.ID] = clone(r)
	return nil
}

// Routes implements controller.Store.
func (s *Store) Routes(_ context.Context, appID string) ([]*api.Route, error) {
	if err := s.lock(); err != nil {
		return nil, err
	}
	defer s.mu.Unlock()
	var out []*api.Route
	for _, r := range s.routes {
		if r.AppID == appID {
			out = append(out, clone(r))
		}
	}
	slices.SortFunc(out, func(a, b *api.Route) int { return cmp.Compare(a.Host+a.Path, b.Host+b.Path) })
	return out, nil
}

// DeleteRoute implements controller.Store.
func (s *Store) DeleteRoute(_ context.Context, id string) error {
	if err := s.lock(); err != nil {
		return err
	}
	defer s.mu.Unlock()
	if _, ok := s.routes[id]; !ok {
		return notFound("route", id)
	}
	delete(s.routes, id)
	return nil
}

// AddEvent implements controller.Store.
func (s *Store) AddEvent(_ context.Context, e *api.Event) error {
	if err := s.lock(); err != nil {
		return err
	}
	defer s.mu.Unlock()
	stamp(&e.Time, s.now())
	s.events = append(s.events, clone(e))
	return nil
}

// Events implements controller.Store.
func (s *Store) Events(_ context.Context, appID string, limit int) ([]*api.Event, error) {
	if err := s.lock(); err != nil {
		return nil, err
	}
	defer s.mu.Unlock()
	var out []*api.Event
	for i := len(s.events) - 1; i >= 0 && (limit <= 0 || len(out) < limit); i-- {
		if s.events[i].AppID == appID {
			out = append(out, clone(s.events[i]))
		}
	}
	return out, nil
}

// Ping implements controller.Store.
func (s *Store) Ping(context.Context) error {
	if err := s.lock(); err != nil {
		return err
	}
	s.mu.Unlock()
	return nil
}

// Close implements controller.Store.
func (s *Store) Close() error { return nil }
