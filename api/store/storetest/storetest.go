package storetest

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/strata-paas/strata/api"
	"github.com/strata-paas/strata/api/controller"
)

// Run runs the conformance suite. open is called once per subtest and must
// return a fresh, empty store.
func Run(t *testing.T, open func(t *testing.T) controller.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s controller.Store)
	}{
		{"Orgs", testOrgs},
		{"Spaces", testSpaces},
		{"Users", testUsers},
		{"Tokens", testTokens},
		{"PasswordsAndUsers", testPasswordsAndUsers},
		{"Roles", testRoles},
		{"DeleteOrgsAndSpaces", testDeleteOrgsAndSpaces},
		{"Quotas", testQuotas},
		{"Buildpacks", testBuildpacks},
		{"Apps", testApps},
		{"UpdateApp", testUpdateApp},
		{"DeleteApp", testDeleteApp},
		{"Builds", testBuilds},
		{"UpdateBuildTransitions", testUpdateBuildTransitions},
		{"BuildsInState", testBuildsInState},
		{"Releases", testReleases},
		{"ConcurrentReleases", testConcurrentReleases},
		{"Processes", testProcesses},
		{"HealthCheck", testHealthCheck},
		{"ScaleToZero", testScaleToZero},
		{"Instances", testInstances},
		{"Routes", testRoutes},
		{"Events", testEvents},
		{"ConcurrentWriters", testConcurrentWriters},
		{"ConcurrentUpdateBuild", testConcurrentUpdateBuild},
		{"Timestamps", testTimestamps},
		{"CanceledContext", testCanceledContext},
		{"EmptyIDs", testEmptyIDs},
		{"Placements", testPlacements},
		{"NodeDrains", testNodeDrains},
		{"Certificates", testCertificates},
		{"AppLocks", testAppLocks},
		{"Idempotency", testIdempotency},
		{"Leases", testLeases}, {"FencedWrites", testFencedWrites}, {"FenceHoldsOffTakeover", testFenceHoldsOffTakeover},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := open(t)
			if err := s.Ping(context.Background()); err != nil {
				t.Fatalf("Ping: %v", err)
			}
			tc.fn(t, s)
		})
	}
}

func id() string { return uuid.NewString() }

// wantCode fails unless err carries the *api.Error code want.
func wantCode(t *testing.T, what string, err error, want string) {
	t.Helper()
	if got := api.ErrorCode(err); got != want {
		t.Fatalf("%s: got error code %q (%v), want %q", what, got, err, want)
	}
	if want != "" {
		var ae *api.Error
		if !errors.As(err, &ae) {
			t.Fatalf("%s: error %v is not an *api.Error", what, err)
		}
		if ae.Message == "" {
			t.Fatalf("%s: *api.Error has an empty message", what)
		}
	}
}

func must(t *testing.T, what string, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// fixture holds an org, a space and an app created for a test.
type fixture struct {
	org   *api.Org
	space *api.Space
	app   *api.App
}

func newFixture(t *testing.T, s controller.Store) fixture {
	t.Helper()
	ctx := context.Background()
	f := fixture{
		org: &api.Org{ID: id(), Name: "org-" + id()[:8]},
	}
	must(t, "CreateOrg", s.CreateOrg(ctx, f.org))
	f.space = &api.Space{ID: id(), OrgID: f.org.ID, Name: "dev"}
	must(t, "CreateSpace", s.CreateSpace(ctx, f.space))
	f.app = newApp(t, s, f.space.ID, "hello")
	return f
}

func newApp(t *testing.T, s controller.Store, spaceID, name string) *api.App {
	t.Helper()
	a := &api.App{ID: id(), SpaceID: spaceID, Name: name, State: api.AppStarted}
	must(t, "CreateApp "+name, s.CreateApp(context.Background(), a))
	return a
}

func testOrgs(t *testing.T, s controller.Store) {
	ctx := context.Background()
	o := &api.Org{ID: id(), Name: "acme"}
	must(t, "CreateOrg", s.CreateOrg(ctx, o))
	if o.CreatedAt.IsZero() {
		t.Fatal("CreateOrg did not fill CreatedAt")
	}
	got, err := s.OrgByName(ctx, "acme")
	must(t, "OrgByName", err)
	if got.ID != o.ID || got.Name != "acme" || !got.CreatedAt.Equal(o.CreatedAt) {
		t.Fatalf("OrgByName: got %+v, want %+v", got, o)
	}
	wantCode(t, "duplicate org name", s.CreateOrg(ctx, &api.Org{ID: id(), Name: "acme"}), api.EConflict)
	wantCode(t, "duplicate org id", s.CreateOrg(ctx, &api.Org{ID: o.ID, Name: "other"}), api.EConflict)
	_, err = s.OrgByName(ctx, "nope")
	wantCode(t, "OrgByName missing", err, api.ENotFound)
}

func testSpaces(t *testing.T, s controller.Store) {
	ctx := context.Background()
	o1 := &api.Org{ID: id(), Name: "one"}
	o2 := &api.Org{ID: id(), Name: "two"}
	must(t, "CreateOrg", s.CreateOrg(ctx, o1))
	must(t, "CreateOrg", s.CreateOrg(ctx, o2))
	sp := &api.Space{ID: id(), OrgID: o1.ID, Name: "dev"}
	must(t, "CreateSpace", s.CreateSpace(ctx, sp))
	must(t, "same space name in another org", s.CreateSpace(ctx, &api.Space{ID: id(), OrgID: o2.ID, Name: "dev"}))
	wantCode(t, "duplicate space in org", s.CreateSpace(ctx, &api.Space{ID: id(), OrgID: o1.ID, Name: "dev"}), api.EConflict)
	wantCode(t, "space in missing org", s.CreateSpace(ctx, &api.Space{ID: id(), OrgID: id(), Name: "x"}), api.ENotFound)

	got, err := s.SpaceByName(ctx, o1.ID, "dev")
	must(t, "SpaceByName", err)
	if got.ID != sp.ID || got.OrgID != o1.ID || !got.CreatedAt.Equal(sp.CreatedAt) {
		t.Fatalf("SpaceByName: got %+v, want %+v", got, sp)
	}
	for _, tc := range []struct{ org, name string }{{o1.ID, "prod"}, {id(), "dev"}} {
		_, err := s.SpaceByName(ctx, tc.org, tc.name)
		wantCode(t, "SpaceByName "+tc.name, err, api.ENotFound)
	}
}

func testUsers(t *testing.T, s controller.Store) {
	ctx := context.Background()
	for _, u := range []*api.User{{ID: id(), Name: "alice", Admin: true}, {ID: id(), Name: "bob"}} {
		must(t, "CreateUser", s.CreateUser(ctx, u))
		got, err := s.UserByName(ctx, u.Name)
		must(t, "UserByName", err)
		if got.ID != u.ID || got.Admin != u.Admin || !got.CreatedAt.Equal(u.CreatedAt) {
			t.Fatalf("UserByName: got %+v, want %+v", got, u)
		}
	}
	wantCode(t, "duplicate user", s.CreateUser(ctx, &api.User{ID: id(), Name: "alice"}), api.EConflict)
	_, err := s.UserByName(ctx, "carol")
	wantCode(t, "UserByName missing", err, api.ENotFound)
}

func testTokens(t *testing.T, s controller.Store) {
	ctx := context.Background()
	u := &api.User{ID: id(), Name: "alice"}
	must(t, "CreateUser", s.CreateUser(ctx, u))
	const h1, h2, h3 = "aaaa1111aaaa1111aaaa", "bbbb2222bbbb2222bbbb", "eeee3333eeee3333eeee"
	later := time.Now().Add(time.Hour)
	earlier := time.Now().Add(-time.Hour)
	must(t, "CreateToken", s.CreateToken(ctx, &api.Token{Hash: h1, UserID: u.ID, Description: "laptop"}))
	must(t, "expiring token", s.CreateToken(ctx, &api.Token{Hash: h2, UserID: u.ID, ExpiresAt: &later}))
	must(t, "expired token", s.CreateToken(ctx, &api.Token{Hash: h3, UserID: u.ID, ExpiresAt: &earlier}))
	for _, h := range []string{h1, h2} {
		got, err := s.UserByTokenHash(ctx, h)
		must(t, "UserByTokenHash", err)
		if got.ID != u.ID || got.Name != "alice" {
			t.Fatalf("UserByTokenHash(%s): got %+v, want alice", h, got)
		}
	}
	_, err := s.UserByTokenHash(ctx, h3)
	wantCode(t, "expired token", err, api.ENotFound)
	wantCode(t, "duplicate token hash", s.CreateToken(ctx, &api.Token{Hash: h1, UserID: u.ID, Description: "again"}), api.EConflict)
	wantCode(t, "token of missing user", s.CreateToken(ctx, &api.Token{Hash: "cccc", UserID: id()}), api.ENotFound)
	wantCode(t, "empty token hash", s.CreateToken(ctx, &api.Token{UserID: u.ID}), api.EInvalid)
	_, err = s.UserByTokenHash(ctx, "dddd")
	wantCode(t, "unknown token", err, api.ENotFound)

	ts, err := s.Tokens(ctx, u.ID)
	must(t, "Tokens", err)
	if len(ts) != 3 || ts[0].Description != "laptop" || ts[0].ExpiresAt != nil || ts[1].ExpiresAt == nil ||
		!ts[1].ExpiresAt.Truncate(time.Second).Equal(later.UTC().Truncate(time.Second)) {
		t.Fatalf("Tokens: %+v", ts)
	}
	must(t, "DeleteToken", s.DeleteToken(ctx, h1))
	_, err = s.UserByTokenHash(ctx, h1)
	wantCode(t, "deleted token", err, api.ENotFound)
	wantCode(t, "DeleteToken again", s.DeleteToken(ctx, h1), api.ENotFound)
}

func testPasswordsAndUsers(t *testing.T, s controller.Store) {
	ctx := context.Background()
	a := &api.User{ID: id(), Name: "bob"}
	b := &api.User{ID: id(), Name: "alice", Admin: true}
	must(t, "CreateUser", s.CreateUser(ctx, a))
	must(t, "CreateUser", s.CreateUser(ctx, b))
	h, err := s.PasswordHash(ctx, a.ID)
	must(t, "PasswordHash", err)
	if h != "" {
		t.Errorf("new user's password hash %q, want empty", h)
	}
	must(t, "SetPasswordHash", s.SetPasswordHash(ctx, a.ID, "$argon2id$x"))
	if h, _ := s.PasswordHash(ctx, a.ID); h != "$argon2id$x" {
		t.Errorf("PasswordHash after set: %q", h)
	}
	wantCode(t, "SetPasswordHash missing user", s.SetPasswordHash(ctx, id(), "x"), api.ENotFound)
	_, err = s.PasswordHash(ctx, id())
	wantCode(t, "PasswordHash missing user", err, api.ENotFound)

	us, err := s.ListUsers(ctx)
	must(t, "ListUsers", err)
	if got := pluck(us, func(u *api.User) string { return u.Name }); fmt.Sprint(got) != "[alice bob]" || !us[0].Admin {
		t.Errorf("ListUsers: %v", got)
	}
	f := newFixture(t, s)
	must(t, "CreateToken", s.CreateToken(ctx, &api.Token{Hash: "ffff0000ffff0000ffff", UserID: a.ID}))
	must(t, "SetRole", s.SetRole(ctx, api.RoleBinding{UserID: a.ID, OrgID: f.org.ID, Role: api.RoleOrgAuditor}))
	must(t, "DeleteUser", s.DeleteUser(ctx, a.ID))
	_, err = s.UserByTokenHash(ctx, "ffff0000ffff0000ffff")
	wantCode(t, "token of a deleted user", err, api.ENotFound)
	if rs, _ := s.RolesInOrg(ctx, f.org.ID); len(rs) != 0 {
		t.Errorf("roles of a deleted user left: %+v", rs)
	}
	wantCode(t, "DeleteUser again", s.DeleteUser(ctx, a.ID), api.ENotFound)
}

func testRoles(t *testing.T, s controller.Store) {
	ctx := context.Background()
	f := newFixture(t, s)
	u := &api.User{ID: id(), Name: "dev"}
	must(t, "CreateUser", s.CreateUser(ctx, u))
	org := api.RoleBinding{UserID: u.ID, OrgID: f.org.ID, Role: api.RoleOrgManager}
	space := api.RoleBinding{UserID: u.ID, OrgID: f.org.ID, SpaceID: f.space.ID, Role: api.RoleSpaceDeveloper}
	must(t, "SetRole org", s.SetRole(ctx, org))
	must(t, "SetRole space", s.SetRole(ctx, space))
	must(t, "SetRole again", s.SetRole(ctx, space))
	wantCode(t, "SetRole missing user", s.SetRole(ctx, api.RoleBinding{UserID: id(), OrgID: f.org.ID, Role: api.RoleOrgAuditor}), api.ENotFound)
	rs, err := s.RolesOfUser(ctx, u.ID)
	must(t, "RolesOfUser", err)
	if len(rs) != 2 || rs[0] != org || rs[1] != space {
		t.Fatalf("RolesOfUser: %+v", rs)
	}
	if rs, _ := s.RolesInOrg(ctx, f.org.ID); len(rs) != 2 {
		t.Fatalf("RolesInOrg: %+v", rs)
	}
	must(t, "DeleteRole", s.DeleteRole(ctx, org))
	wantCode(t, "DeleteRole again", s.DeleteRole(ctx, org), api.ENotFound)
	if rs, _ := s.RolesOfUser(ctx, u.ID); len(rs) != 1 || rs[0] != space {
		t.Fatalf("RolesOfUser after DeleteRole: %+v", rs)
	}
}

func testDeleteOrgsAndSpaces(t *testing.T, s controller.Store) {
	ctx := context.Background()
	f := newFixture(t, s)
	u := &api.User{ID: id(), Name: "dev"}
	must(t, "CreateUser", s.CreateUser(ctx, u))
	empty := &api.Space{ID: id(), OrgID: f.org.ID, Name: "empty"}
	must(t, "CreateSpace", s.CreateSpace(ctx, empty))
	got, err := s.SpaceByID(ctx, empty.ID)
	must(t, "SpaceByID", err)
	if got.Name != "empty" || got.OrgID != f.org.ID {
		t.Errorf("SpaceByID: %+v", got)
	}
	_, err = s.SpaceByID(ctx, id())
	wantCode(t, "SpaceByID missing", err, api.ENotFound)
	must(t, "SetRole", s.SetRole(ctx, api.RoleBinding{UserID: u.ID, OrgID: f.org.ID, SpaceID: empty.ID, Role: api.RoleSpaceAuditor}))
	newApp(t, s, f.space.ID, "busy")
	wantCode(t, "DeleteSpace with apps", s.DeleteSpace(ctx, f.space.ID), api.EConflict)
	must(t, "DeleteSpace", s.DeleteSpace(ctx, empty.ID))
	if rs, _ := s.RolesOfUser(ctx, u.ID); len(rs) != 0 {
		t.Errorf("roles of a deleted space left: %+v", rs)
	}
	wantCode(t, "DeleteSpace again", s.DeleteSpace(ctx, empty.ID), api.ENotFound)
	wantCode(t, "DeleteOrg with spaces", s.DeleteOrg(ctx, f.org.ID), api.EConflict)

	lone := &api.Org{ID: id(), Name: "lone"}
	must(t, "CreateOrg", s.CreateOrg(ctx, lone))
	orgs, err := s.ListOrgs(ctx)
	must(t, "ListOrgs", err)
	if len(orgs) < 2 || !slices.Contains(pluck(orgs, func(o *api.Org) string { return o.Name }), "lone") {
		t.Errorf("ListOrgs: %+v", orgs)
	}
	must(t, "DeleteOrg", s.DeleteOrg(ctx, lone.ID))
	_, err = s.OrgByName(ctx, "lone")
	wantCode(t, "deleted org", err, api.ENotFound)
}

func testApps(t *testing.T, s controller.Store) {
	ctx := context.Background()
	f := newFixture(t, s)
	other := &api.Space{ID: id(), OrgID: f.org.ID, Name: "prod"}
	must(t, "CreateSpace", s.CreateSpace(ctx, other))
	b := newApp(t, s, f.space.ID, "alpha")
	c := newApp(t, s, other.ID, "hello") // same name, other space
	d := &api.App{ID: id(), SpaceID: f.space.ID, Name: "zeta"}
	must(t, "CreateApp without state", s.CreateApp(ctx, d))
	if d.State != api.AppStopped || d.CreatedAt.IsZero() || !d.UpdatedAt.Equal(d.CreatedAt) {
		t.Fatalf("CreateApp defaults: got state %q created %v updated %v", d.State, d.CreatedAt, d.UpdatedAt)
	}

	wantCode(t, "duplicate app name", s.CreateApp(ctx, &api.App{ID: id(), SpaceID: f.space.ID, Name: "hello"}), api.EConflict)
	wantCode(t, "app in missing space", s.CreateApp(ctx, &api.App{ID: id(), SpaceID: id(), Name: "x"}), api.ENotFound)

	got, err := s.AppByName(ctx, f.space.ID, "hello")
	must(t, "AppByName", err)
	if *got != *f.app {
		t.Fatalf("AppByName: got %+v, want %+v", got, f.app)
	}
	got, err = s.AppByID(ctx, c.ID)
	must(t, "AppByID", err)
	if *got != *c {
		t.Fatalf("AppByID: got %+v, want %+v", got, c)
	}
	_, err = s.AppByName(ctx, other.ID, "alpha")
	wantCode(t, "AppByName in wrong space", err, api.ENotFound)
	_, err = s.AppByID(ctx, id())
	wantCode(t, "AppByID missing", err, api.ENotFound)

	list, err := s.ListApps(ctx, f.space.ID)
	must(t, "ListApps", err)
	if got, want := names(list), []string{"alpha", "hello", "zeta"}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("ListApps: got %v, want %v", got, want)
	}
	list, err = s.ListApps(ctx, id())
	must(t, "ListApps empty space", err)
	if len(list) != 0 {
		t.Fatalf("ListApps of unknown space: got %d apps, want 0", len(list))
	}
	all, err := s.ListAllApps(ctx)
	must(t, "ListAllApps", err)
	ids := map[string]bool{}
	for _, a := range all {
		ids[a.ID] = true
	}
	for _, a := range []*api.App{f.app, b, c, d} {
		if !ids[a.ID] {
			t.Fatalf("ListAllApps: missing %s", a.Name)
		}
	}
	if len(all) != 4 {
		t.Fatalf("ListAllApps: got %d apps, want 4", len(all))
	}
}

// pluck maps xs through f.
func pluck[T, U any](xs []T, f func(T) U) []U {
	out := make([]U, 0, len(xs))
	for _, x := range xs {
		out = append(out, f(x))
	}
	return out
}

func names(apps []*api.App) []string { return pluck(apps, func(a *api.App) string { return a.Name }) }

func testUpdateApp(t *testing.T, s controller.Store) {
	ctx := context.Background()
	f := newFixture(t, s)
	a := *f.app
	a.State = api.AppStopped
	a.CurrentRelease = 7
	a.Name = "renamed" // not saved by UpdateApp
	must(t, "UpdateApp", s.UpdateApp(ctx, &a))
	got, err := s.AppByID(ctx, a.ID)
	must(t, "AppByID", err)
	if got.State != api.AppStopped || got.CurrentRelease != 7 || got.Name != "hello" {
		t.Fatalf("after UpdateApp: got %+v", got)
	}
	if !got.UpdatedAt.Equal(a.UpdatedAt) || got.UpdatedAt.Before(f.app.UpdatedAt) {
		t.Fatalf("UpdatedAt: got %v, caller has %v, created %v", got.UpdatedAt, a.UpdatedAt, f.app.UpdatedAt)
	}

	explicit := time.Date(2030, 1, 2, 3, 4, 5, 6000, time.UTC)
	a.UpdatedAt = explicit
	must(t, "UpdateApp explicit time", s.UpdateApp(ctx, &a))
	got, err = s.AppByID(ctx, a.ID)
	must(t, "AppByID", err)
	if !got.UpdatedAt.Equal(explicit) {
		t.Fatalf("explicit UpdatedAt: got %v, want %v", got.UpdatedAt, explicit)
	}
	wantCode(t, "UpdateApp missing", s.UpdateApp(ctx, &api.App{ID: id(), State: api.AppStarted}), api.ENotFound)
}

func testDeleteApp(t *testing.T, s controller.Store) {
	ctx := context.Background()
	f := newFixture(t, s)
	keep := newApp(t, s, f.space.ID, "keep")
	for _, a := range []*api.App{f.app, keep} {
		populate(t, s, a)
	}
	must(t, "DeleteApp", s.DeleteApp(ctx, f.app.ID))

	_, err := s.AppByID(ctx, f.app.ID)
	wantCode(t, "AppByID after delete", err, api.ENotFound)
	counts := func(appID string) []int {
		ps, err := s.Processes(ctx, appID)
		must(t, "Processes", err)
		is, err := s.Instances(ctx, appID)
		must(t, "Instances", err)
		rs, err := s.Routes(ctx, appID)
		must(t, "Routes", err)
		rels, err := s.ListReleases(ctx, appID)
		must(t, "ListReleases", err)
		es, err := s.Events(ctx, appID, 0)
		must(t, "Events", err)
		return []int{len(ps), len(is), len(rs), len(rels), len(es)}
	}
	if got := counts(f.app.ID); fmt.Sprint(got) != "[0 0 0 0 1]" {
		t.Fatalf("deleted app [processes instances routes releases events]: got %v, want [0 0 0 0 1]", got)
	}
	_, err = s.LatestBuild(ctx, f.app.ID)
	wantCode(t, "LatestBuild after delete", err, api.ENotFound)
	if got := counts(keep.ID); fmt.Sprint(got) != "[1 1 1 1 1]" {
		t.Fatalf("other app [processes instances routes releases events]: got %v, want [1 1 1 1 1]", got)
	}
	if _, err := s.LatestBuild(ctx, keep.ID); err != nil {
		t.Fatalf("other app lost its build: %v", err)
	}
	wantCode(t, "DeleteApp twice", s.DeleteApp(ctx, f.app.ID), api.ENotFound)

	// The name and the route are free again.
	again := newApp(t, s, f.space.ID, "hello")
	must(t, "route reused", s.CreateRoute(ctx, &api.Route{ID: id(), AppID: again.ID, Host: "hello.localhost"}))
}

// populate gives an app one of everything.
func populate(t *testing.T, s controller.Store, a *api.App) {
	t.Helper()
	ctx := context.Background()
	b := &api.Build{ID: id(), AppID: a.ID, SourceBlob: blob('a')}
	must(t, "CreateBuild", s.CreateBuild(ctx, b))
	must(t, "CreateRelease", s.CreateRelease(ctx, &api.Release{ID: id(), AppID: a.ID, BuildID: b.ID, DropletBlob: blob('b')}))
	must(t, "SetProcess", s.SetProcess(ctx, api.Process{AppID: a.ID, Type: "web", Instances: 1, MemoryMB: 256, DiskMB: 1024}))
	must(t, "CreateInstance", s.CreateInstance(ctx, &api.Instance{ID: id(), AppID: a.ID, Process: "web", Release: 1, State: api.InstanceStarting}))
	must(t, "CreateRoute", s.CreateRoute(ctx, &api.Route{ID: id(), AppID: a.ID, Host: a.Name + ".localhost"}))
	must(t, "AddEvent", s.AddEvent(ctx, &api.Event{ID: id(), AppID: a.ID, Type: "push", Actor: "alice", Message: "pushed"}))
}

func blob(c byte) api.BlobRef {
	d := make([]byte, 64)
	for i := range d {
		d[i] = c
	}
	return api.BlobRef("sha256:" + string(d))
}

func testBuilds(t *testing.T, s controller.Store) {
	ctx := context.Background()
	f := newFixture(t, s)
	_, err := s.LatestBuild(ctx, f.app.ID)
	wantCode(t, "LatestBuild with no builds", err, api.ENotFound)

	b := &api.Build{ID: id(), AppID: f.app.ID, SourceBlob: blob('1'), Actor: "alice"}
	must(t, "CreateBuild", s.CreateBuild(ctx, b))
	if b.State != api.BuildPending || b.CreatedAt.IsZero() {
		t.Fatalf("CreateBuild defaults: got state %q created %v", b.State, b.CreatedAt)
	}
	got, err := s.Build(ctx, b.ID)
	must(t, "Build", err)
	if *got != *b {
		t.Fatalf("Build: got %+v, want %+v", got, b)
	}
	_, err = s.Build(ctx, id())
	wantCode(t, "Build missing", err, api.ENotFound)
	wantCode(t, "build of missing app", s.CreateBuild(ctx, &api.Build{ID: id(), AppID: id()}), api.ENotFound)
	wantCode(t, "duplicate build id", s.CreateBuild(ctx, &api.Build{ID: b.ID, AppID: f.app.ID}), api.EConflict)

	// LatestBuild is the newest by creation, ties broken by insertion order.
	later := &api.Build{ID: id(), AppID: f.app.ID, CreatedAt: b.CreatedAt.Add(time.Hour)}
	must(t, "CreateBuild later", s.CreateBuild(ctx, later))
	tie := &api.Build{ID: id(), AppID: f.app.ID, CreatedAt: later.CreatedAt}
	must(t, "CreateBuild tie", s.CreateBuild(ctx, tie))
	latest, err := s.LatestBuild(ctx, f.app.ID)
	must(t, "LatestBuild", err)
	if latest.ID != tie.ID {
		t.Fatalf("LatestBuild: got %s, want the last created %s", latest.ID, tie.ID)
	}

	// UpdateBuild saves what fn changed, except identity fields.
	saved, err := s.UpdateBuild(ctx, b.ID, func(x *api.Build) error {
		x.State = api.BuildStaging
		x.Buildpack = "go"
		x.AppID = "someone-else"
		x.ID = "other"
		return nil
	})
	must(t, "UpdateBuild", err)
	got, err = s.Build(ctx, b.ID)
	must(t, "Build", err)
	if got.State != api.BuildStaging || got.Buildpack != "go" || got.AppID != f.app.ID || got.ID != b.ID {
		t.Fatalf("after UpdateBuild: got %+v", got)
	}
	if *saved != *got {
		t.Fatalf("UpdateBuild returned %+v, stored %+v", saved, got)
	}
	if got.UpdatedAt.Before(b.UpdatedAt) {
		t.Fatalf("UpdatedAt went back: %v < %v", got.UpdatedAt, b.UpdatedAt)
	}

	// An error from fn aborts the update and comes back unchanged.
	boom := api.Errorf(api.EInvalid, "boom")
	_, err = s.UpdateBuild(ctx, b.ID, func(x *api.Build) error {
		x.State = api.BuildFailed
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("UpdateBuild fn error: got %v, want %v", err, boom)
	}
	got, err = s.Build(ctx, b.ID)
	must(t, "Build", err)
	if got.State != api.BuildStaging {
		t.Fatalf("failed UpdateBuild saved state %q", got.State)
	}
	_, err = s.UpdateBuild(ctx, id(), func(*api.Build) error { return nil })
	wantCode(t, "UpdateBuild missing", err, api.ENotFound)

	// Staged, with a droplet.
	_, err = s.UpdateBuild(ctx, b.ID, func(x *api.Build) error {
		x.State, x.DropletBlob = api.BuildStaged, blob('d')
		return nil
	})
	must(t, "UpdateBuild staged", err)
	got, err = s.Build(ctx, b.ID)
	must(t, "Build", err)
	if got.DropletBlob != blob('d') || got.State != api.BuildStaged {
		t.Fatalf("staged build: got %+v", got)
	}
}

func testUpdateBuildTransitions(t *testing.T, s controller.Store) {
	ctx := context.Background()
	f := newFixture(t, s)
	all := []api.BuildState{api.BuildPending, api.BuildStaging, api.BuildStaged, api.BuildFailed}
	// path reaches each state from pending through allowed moves.
	path := map[api.BuildState][]api.BuildState{
		api.BuildPending: nil,
		api.BuildStaging: {api.BuildStaging},
		api.BuildStaged:  {api.BuildStaging, api.BuildStaged},
		api.BuildFailed:  {api.BuildFailed},
	}
	for _, from := range all {
		for _, to := range all {
			t.Run(fmt.Sprintf("%s_to_%s", from, to), func(t *testing.T) {
				b := &api.Build{ID: id(), AppID: f.app.ID}
				must(t, "CreateBuild", s.CreateBuild(ctx, b))
				for _, st := range path[from] {
					_, err := s.UpdateBuild(ctx, b.ID, func(x *api.Build) error { x.State = st; return nil })
					must(t, "setup move to "+string(st), err)
				}
				_, err := s.UpdateBuild(ctx, b.ID, func(x *api.Build) error {
					x.State = to
					x.Reason = "changed"
					return nil
				})
				got, gerr := s.Build(ctx, b.ID)
				must(t, "Build", gerr)
				if from == to || from.CanTransitionTo(to) {
					must(t, "allowed UpdateBuild", err)
					if got.State != to || got.Reason != "changed" {
						t.Fatalf("got state %q reason %q, want %q changed", got.State, got.Reason, to)
					}
					return
				}
				wantCode(t, "forbidden transition", err, api.EConflict)
				if got.State != from || got.Reason != "" {
					t.Fatalf("forbidden transition saved: state %q reason %q", got.State, got.Reason)
				}
			})
		}
	}
}

func testBuildsInState(t *testing.T, s controller.Store) {
	ctx := context.Background()
	f := newFixture(t, s)
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	mk := func(offset time.Duration, st api.BuildState) *api.Build {
		b := &api.Build{ID: id(), AppID: f.app.ID, State: st, CreatedAt: base.Add(offset)}
		must(t, "CreateBuild", s.CreateBuild(ctx, b))
		return b
	}
	p2 := mk(2*time.Minute, api.BuildPending)
	s1 := mk(1*time.Minute, api.BuildStaging)
	p0 := mk(0, api.BuildPending)
	mk(3*time.Minute, api.BuildFailed)
	p3 := mk(3*time.Minute, api.BuildPending)

	tests := []struct {
		states []api.BuildState
		want   []*api.Build
	}{
		{[]api.BuildState{api.BuildPending}, []*api.Build{p0, p2, p3}},
		{[]api.BuildState{api.BuildPending, api.BuildStaging}, []*api.Build{p0, s1, p2, p3}},
		{[]api.BuildState{api.BuildStaged}, nil},
		{nil, nil},
	}
	for _, tc := range tests {
		got, err := s.BuildsInState(ctx, tc.states...)
		must(t, "BuildsInState", err)
		buildID := func(b *api.Build) string { return b.ID }
		gotIDs, wantIDs := pluck(got, buildID), pluck(tc.want, buildID)
		if fmt.Sprint(gotIDs) != fmt.Sprint(wantIDs) {
			t.Fatalf("BuildsInState(%v): got %v, want %v", tc.states, gotIDs, wantIDs)
		}
	}
}

func testReleases(t *testing.T, s controller.Store) {
	ctx := context.Background()
	f := newFixture(t, s)
	other := newApp(t, s, f.space.ID, "other")
	_, err := s.Release(ctx, f.app.ID, 1)
	wantCode(t, "Release before any", err, api.ENotFound)

	var rels []*api.Release
	for i := 1; i <= 3; i++ {
		r := &api.Release{
			ID: id(), AppID: f.app.ID, Version: 99, BuildID: id(), DropletBlob: blob('c'),
			Processes:   map[string]string{"web": "./server --port $PORT", "worker": "./work"},
			Env:         map[string]string{"N": fmt.Sprint(i), "QUOTE": `a "b" \c`},
			Description: fmt.Sprintf("deploy %d", i), Actor: "alice",
		}
		if i == 2 {
			r.Env = nil
		}
		must(t, "CreateRelease", s.CreateRelease(ctx, r))
		if r.Version != i {
			t.Fatalf("CreateRelease %d: got version %d", i, r.Version)
		}
		a, err := s.AppByID(ctx, f.app.ID)
		must(t, "AppByID", err)
		if a.CurrentRelease != i {
			t.Fatalf("after release %d: CurrentRelease %d", i, a.CurrentRelease)
		}
		rels = append(rels, r)
	}
	must(t, "release of other app", s.CreateRelease(ctx, &api.Release{ID: id(), AppID: other.ID}))
	img := &api.Release{ID: id(), AppID: other.ID, Image: "strata/stack:bookworm", ImageBlob: blob('e'), Processes: map[string]string{"web": ""}}
	must(t, "image release", s.CreateRelease(ctx, img))
	if got, err := s.Release(ctx, other.ID, img.Version); err != nil || got.Image != img.Image || got.ImageBlob != img.ImageBlob || got.DropletBlob != "" || !got.IsImage() {
		t.Fatalf("image release: got %+v %v, want %+v", got, err, img)
	}

	got, err := s.Release(ctx, f.app.ID, 2)
	must(t, "Release", err)
	if got.ID != rels[1].ID || got.Version != 2 || got.BuildID != rels[1].BuildID || got.DropletBlob != blob('c') ||
		got.Description != "deploy 2" || got.Actor != "alice" || !got.CreatedAt.Equal(rels[1].CreatedAt) ||
		!maps.Equal(got.Processes, rels[1].Processes) || len(got.Env) != 0 {
		t.Fatalf("Release 2: got %+v, want %+v", got, rels[1])
	}
	got, err = s.Release(ctx, f.app.ID, 3)
	must(t, "Release 3", err)
	if !maps.Equal(got.Env, rels[2].Env) {
		t.Fatalf("Release 3 env: got %v, want %v", got.Env, rels[2].Env)
	}
	_, err = s.Release(ctx, f.app.ID, 4)
	wantCode(t, "Release 4", err, api.ENotFound)

	list, err := s.ListReleases(ctx, f.app.ID)
	must(t, "ListReleases", err)
	vs := pluck(list, func(r *api.Release) int { return r.Version })
	if fmt.Sprint(vs) != "[3 2 1]" {
		t.Fatalf("ListReleases versions: got %v, want [3 2 1]", vs)
	}
	r := &api.Release{ID: id(), AppID: id()}
	wantCode(t, "release of missing app", s.CreateRelease(ctx, r), api.ENotFound)
	wantCode(t, "duplicate release id", s.CreateRelease(ctx, &api.Release{ID: rels[0].ID, AppID: f.app.ID}), api.EConflict)
	a, err := s.AppByID(ctx, f.app.ID)
	must(t, "AppByID", err)
	if a.CurrentRelease != 3 {
		t.Fatalf("failed CreateRelease changed CurrentRelease to %d", a.CurrentRelease)
	}
}

func testConcurrentReleases(t *testing.T, s controller.Store) {
	ctx := context.Background()
	f := newFixture(t, s)
	const n = 16
	versions := make(chan int, n)
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for range n {
		wg.Go(func() {
			r := &api.Release{ID: id(), AppID: f.app.ID, Description: "concurrent"}
			if err := s.CreateRelease(ctx, r); err != nil {
				errs <- err
				return
			}
			versions <- r.Version
		})
	}
	wg.Wait()
	close(errs)
	close(versions)
	for err := range errs {
		t.Fatalf("concurrent CreateRelease: %v", err)
	}
	seen := map[int]bool{}
	for v := range versions {
		if seen[v] {
			t.Fatalf("version %d assigned twice", v)
		}
		seen[v] = true
	}
	for v := 1; v <= n; v++ {
		if !seen[v] {
			t.Fatalf("versions are not 1..%d: %v missing (got %v)", n, v, seen)
		}
	}
	a, err := s.AppByID(ctx, f.app.ID)
	must(t, "AppByID", err)
	if a.CurrentRelease != n {
		t.Fatalf("CurrentRelease: got %d, want %d", a.CurrentRelease, n)
	}
}

func testProcesses(t *testing.T, s controller.Store) {
	ctx := context.Background()
	f := newFixture(t, s)
	ps, err := s.Processes(ctx, f.app.ID)
	must(t, "Processes", err)
	if len(ps) != 0 {
		t.Fatalf("new app has processes %v", ps)
	}
	web := api.Process{AppID: f.app.ID, Type: "web", Instances: 2, MemoryMB: 256, DiskMB: 1024}
	worker := api.Process{AppID: f.app.ID, Type: "worker", Instances: 1, MemoryMB: 128, DiskMB: 512}
	must(t, "SetProcess worker", s.SetProcess(ctx, worker))
	must(t, "SetProcess web", s.SetProcess(ctx, web))
	web.Instances, web.MemoryMB = 5, 512
	must(t, "SetProcess web again", s.SetProcess(ctx, web))
	ps, err = s.Processes(ctx, f.app.ID)
	must(t, "Processes", err)
	if fmt.Sprint(ps) != fmt.Sprint([]api.Process{web, worker}) {
		t.Fatalf("Processes: got %v, want %v", ps, []api.Process{web, worker})
	}
	tests := []struct {
		name string
		p    api.Process
		want string
	}{
		{"missing app", api.Process{AppID: id(), Type: "web", Instances: 1}, api.ENotFound},
		{"empty type", api.Process{AppID: f.app.ID, Instances: 1}, api.EInvalid},
		{"negative instances", api.Process{AppID: f.app.ID, Type: "web", Instances: -1}, api.EInvalid},
		{"zero instances", api.Process{AppID: f.app.ID, Type: "clock"}, ""},
	}
	for _, tc := range tests {
		wantCode(t, "SetProcess "+tc.name, s.SetProcess(ctx, tc.p), tc.want)
	}
}

// testHealthCheck: SetHealthCheck stores the check of one type, a later
// SetProcess (scale) keeps it, and missing types are ENotFound.
func testHealthCheck(t *testing.T, s controller.Store) {
	ctx := context.Background()
	f := newFixture(t, s)
	web := api.Process{AppID: f.app.ID, Type: "web", Instances: 1, MemoryMB: 256, DiskMB: 1024}
	must(t, "SetProcess", s.SetProcess(ctx, web))
	hc := web
	hc.HealthCheck, hc.HealthCheckPath, hc.HealthCheckTimeout, hc.HealthCheckInterval = "http", "/healthz", 30, 5
	must(t, "SetHealthCheck", s.SetHealthCheck(ctx, hc))
	web.Instances = 3
	must(t, "SetProcess scale", s.SetProcess(ctx, web))
	ps, err := s.Processes(ctx, f.app.ID)
	must(t, "Processes", err)
	want := hc
	want.Instances = 3
	if len(ps) != 1 || ps[0] != want {
		t.Fatalf("Processes after SetHealthCheck and scale: got %+v, want %+v", ps, want)
	}
	wantCode(t, "SetHealthCheck missing type", s.SetHealthCheck(ctx, api.Process{AppID: f.app.ID, Type: "worker", HealthCheck: "process"}), api.ENotFound)
	wantCode(t, "SetHealthCheck negative timeout", s.SetHealthCheck(ctx, api.Process{AppID: f.app.ID, Type: "web", HealthCheckTimeout: -1}), api.EInvalid)
	wantCode(t, "SetHealthCheck negative interval", s.SetHealthCheck(ctx, api.Process{AppID: f.app.ID, Type: "web", HealthCheckInterval: -1}), api.EInvalid)
}

// testScaleToZero: SetProcess stores the idle time, SetSleeping the sleeping
// mark, a later SetProcess (scale) keeps the mark, and missing types are
// ENotFound.
func testScaleToZero(t *testing.T, s controller.Store) {
	ctx := context.Background()
	f := newFixture(t, s)
	web := api.Process{AppID: f.app.ID, Type: "web", Instances: 2, MemoryMB: 256, DiskMB: 1024, ScaleToZero: 600}
	must(t, "SetProcess", s.SetProcess(ctx, web))
	must(t, "SetSleeping", s.SetSleeping(ctx, f.app.ID, "web", true))
	web.Instances, web.ScaleToZero = 3, 120
	must(t, "SetProcess scale", s.SetProcess(ctx, web))
	ps, err := s.Processes(ctx, f.app.ID)
	must(t, "Processes", err)
	want := web
	want.Sleeping = true
	if len(ps) != 1 || ps[0] != want {
		t.Fatalf("Processes after SetSleeping and scale: got %+v, want %+v", ps, want)
	}
	must(t, "SetSleeping awake", s.SetSleeping(ctx, f.app.ID, "web", false))
	if ps, err = s.Processes(ctx, f.app.ID); err != nil || len(ps) != 1 || ps[0].Sleeping {
		t.Fatalf("Processes after waking: %+v, %v", ps, err)
	}
	wantCode(t, "SetSleeping missing type", s.SetSleeping(ctx, f.app.ID, "worker", true), api.ENotFound)
	wantCode(t, "SetProcess negative scale-to-zero", s.SetProcess(ctx, api.Process{AppID: f.app.ID, Type: "web", ScaleToZero: -1}), api.EInvalid)
}

func testInstances(t *testing.T, s controller.Store) {
	ctx := context.Background()
	f := newFixture(t, s)
	other := newApp(t, s, f.space.ID, "other")
	mk := func(appID, proc string, idx int) *api.Instance {
		in := &api.Instance{ID: id(), AppID: appID, Process: proc, Index: idx, Release: 3, NodeID: "node-1", State: api.InstanceStarting}
		must(t, "CreateInstance", s.CreateInstance(ctx, in))
		return in
	}
	w1 := mk(f.app.ID, "web", 1)
	w0 := &api.Instance{ID: id(), AppID: f.app.ID, Process: "web", Index: 0, Release: 3, NodeID: "node-1", State: api.InstanceStarting, Isolation: api.IsolationContainer}
	must(t, "CreateInstance", s.CreateInstance(ctx, w0))
	k0 := mk(f.app.ID, "worker", 0)
	o0 := mk(other.ID, "web", 0)
	if w0.CreatedAt.IsZero() || !w0.StartedAt.IsZero() {
		t.Fatalf("CreateInstance timestamps: %+v", w0)
	}
	got, err := s.Instance(ctx, w0.ID)
	must(t, "Instance", err)
	if *got != *w0 {
		t.Fatalf("Instance: got %+v, want %+v", got, w0)
	}
	_, err = s.Instance(ctx, id())
	wantCode(t, "Instance missing", err, api.ENotFound)
	wantCode(t, "duplicate instance", s.CreateInstance(ctx, &api.Instance{ID: w0.ID, AppID: f.app.ID, Process: "web", State: api.InstanceStarting}), api.EConflict)
	wantCode(t, "instance of missing app", s.CreateInstance(ctx, &api.Instance{ID: id(), AppID: id(), Process: "web", State: api.InstanceStarting}), api.ENotFound)

	list, err := s.Instances(ctx, f.app.ID)
	must(t, "Instances", err)
	if got, want := instanceIDs(list), []string{w0.ID, w1.ID, k0.ID}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("Instances order: got %v, want %v", got, want)
	}
	all, err := s.AllInstances(ctx)
	must(t, "AllInstances", err)
	if len(all) != 4 {
		t.Fatalf("AllInstances: got %d, want 4", len(all))
	}

	started := time.Date(2026, 5, 6, 7, 8, 9, 123456000, time.UTC)
	up := *w0
	up.NodeID, up.State, up.Port, up.Reason, up.Restarts, up.StartedAt = "node-2", api.InstanceRunning, 61001, "healthy", 2, started
	up.Process, up.Index, up.Release = "ignored", 99, 99 // not saved by UpdateInstance
	must(t, "UpdateInstance", s.UpdateInstance(ctx, &up))
	got, err = s.Instance(ctx, w0.ID)
	must(t, "Instance", err)
	want := *w0
	want.NodeID, want.State, want.Port, want.Reason, want.Restarts, want.StartedAt, want.UpdatedAt = "node-2", api.InstanceRunning, 61001, "healthy", 2, started, up.UpdatedAt
	if *got != want {
		t.Fatalf("after UpdateInstance: got %+v, want %+v", got, want)
	}
	up.StartedAt = time.Time{}
	must(t, "UpdateInstance clear StartedAt", s.UpdateInstance(ctx, &up))
	got, err = s.Instance(ctx, w0.ID)
	must(t, "Instance", err)
	if !got.StartedAt.IsZero() {
		t.Fatalf("StartedAt not cleared: %v", got.StartedAt)
	}
	wantCode(t, "UpdateInstance missing", s.UpdateInstance(ctx, &api.Instance{ID: id()}), api.ENotFound)

	must(t, "DeleteInstance", s.DeleteInstance(ctx, w1.ID))
	_, err = s.Instance(ctx, w1.ID)
	wantCode(t, "Instance after delete", err, api.ENotFound)
	wantCode(t, "DeleteInstance twice", s.DeleteInstance(ctx, w1.ID), api.ENotFound)
	if _, err := s.Instance(ctx, o0.ID); err != nil {
		t.Fatalf("other app's instance: %v", err)
	}
}

func instanceIDs(ins []*api.Instance) []string {
	return pluck(ins, func(in *api.Instance) string { return in.ID })
}

func testRoutes(t *testing.T, s controller.Store) {
	ctx := context.Background()
	f := newFixture(t, s)
	other := newApp(t, s, f.space.ID, "other")
	r1 := &api.Route{ID: id(), AppID: f.app.ID, Host: "hello.localhost"}
	r2 := &api.Route{ID: id(), AppID: f.app.ID, Host: "hello.localhost", Path: "/api"}
	r3 := &api.Route{ID: id(), AppID: f.app.ID, Host: "a.localhost"}
	for _, r := range []*api.Route{r1, r2, r3} {
		must(t, "CreateRoute", s.CreateRoute(ctx, r))
	}
	tests := []struct {
		name string
		r    *api.Route
		want string
	}{
		{"same host and path, other app", &api.Route{ID: id(), AppID: other.ID, Host: "hello.localhost"}, api.EConflict},
		{"same host and path, same app", &api.Route{ID: id(), AppID: f.app.ID, Host: "hello.localhost", Path: "/api"}, api.EConflict},
		{"same id", &api.Route{ID: r1.ID, AppID: other.ID, Host: "x.localhost"}, api.EConflict},
		{"missing app", &api.Route{ID: id(), AppID: id(), Host: "y.localhost"}, api.ENotFound},
		{"empty host", &api.Route{ID: id(), AppID: other.ID}, api.EInvalid},
		{"same host, other path", &api.Route{ID: id(), AppID: other.ID, Host: "hello.localhost", Path: "/other"}, ""},
	}
	for _, tc := range tests {
		wantCode(t, "CreateRoute "+tc.name, s.CreateRoute(ctx, tc.r), tc.want)
	}
	list, err := s.Routes(ctx, f.app.ID)
	must(t, "Routes", err)
	if fmt.Sprint(deref(list)) != fmt.Sprint([]api.Route{*r3, *r1, *r2}) {
		t.Fatalf("Routes: got %v, want %v", deref(list), []api.Route{*r3, *r1, *r2})
	}
	must(t, "DeleteRoute", s.DeleteRoute(ctx, r1.ID))
	wantCode(t, "DeleteRoute twice", s.DeleteRoute(ctx, r1.ID), api.ENotFound)
	must(t, "route freed", s.CreateRoute(ctx, &api.Route{ID: id(), AppID: other.ID, Host: "hello.localhost"}))
	list, err = s.Routes(ctx, f.app.ID)
	must(t, "Routes", err)
	if len(list) != 2 {
		t.Fatalf("Routes after delete: got %d, want 2", len(list))
	}
}

func deref(rs []*api.Route) []api.Route { return pluck(rs, func(r *api.Route) api.Route { return *r }) }

func testEvents(t *testing.T, s controller.Store) {
	ctx := context.Background()
	f := newFixture(t, s)
	base := time.Date(2026, 2, 3, 4, 5, 6, 0, time.UTC)
	var ids []string
	for i, off := range []time.Duration{0, time.Minute, time.Minute, 2 * time.Minute} {
		e := &api.Event{ID: id(), AppID: f.app.ID, Type: "push", Actor: "alice", Message: fmt.Sprint("event ", i), Time: base.Add(off)}
		must(t, "AddEvent", s.AddEvent(ctx, e))
		ids = append(ids, e.ID)
	}
	must(t, "AddEvent other app", s.AddEvent(ctx, &api.Event{ID: id(), AppID: id(), Type: "push"}))
	now := &api.Event{ID: id(), AppID: "gone-app", Type: "app.delete"}
	must(t, "AddEvent without time", s.AddEvent(ctx, now))
	if now.Time.IsZero() {
		t.Fatal("AddEvent did not fill Time")
	}
	wantCode(t, "duplicate event", s.AddEvent(ctx, &api.Event{ID: ids[0], AppID: f.app.ID}), api.EConflict)
	// Org-level events: those of the org with no app, newest first.
	orgEv := &api.Event{ID: id(), OrgID: f.org.ID, Type: "role.set", Actor: "admin", Message: "alice is org-manager", Time: base.Add(time.Hour)}
	must(t, "AddEvent org", s.AddEvent(ctx, orgEv))
	other := newApp(t, s, f.space.ID, "evapp")
	must(t, "AddEvent app of the org", s.AddEvent(ctx, &api.Event{ID: id(), AppID: other.ID, OrgID: f.org.ID, SpaceID: f.space.ID, Type: "push", Time: base.Add(2 * time.Hour)}))
	oes, err := s.OrgEvents(ctx, f.org.ID, 0)
	must(t, "OrgEvents", err)
	if len(oes) != 1 || oes[0].ID != orgEv.ID || oes[0].OrgID != f.org.ID || oes[0].Message != "alice is org-manager" {
		t.Fatalf("OrgEvents: %+v", oes)
	}

	tests := []struct {
		limit int
		want  []string
	}{
		{0, []string{ids[3], ids[2], ids[1], ids[0]}},
		{2, []string{ids[3], ids[2]}},
		{10, []string{ids[3], ids[2], ids[1], ids[0]}},
	}
	for _, tc := range tests {
		es, err := s.Events(ctx, f.app.ID, tc.limit)
		must(t, "Events", err)
		got := pluck(es, func(e *api.Event) string { return e.ID })
		if fmt.Sprint(got) != fmt.Sprint(tc.want) {
			t.Fatalf("Events(limit %d): got %v, want %v", tc.limit, got, tc.want)
		}
	}
	es, err := s.Events(ctx, f.app.ID, 1)
	must(t, "Events", err)
	if e := es[0]; e.Type != "push" || e.Actor != "alice" || e.Message != "event 3" || !e.Time.Equal(base.Add(2*time.Minute)) {
		t.Fatalf("event fields: got %+v", e)
	}
}

// testConcurrentWriters hammers the store with writers and readers at once;
// no call may fail (SQLite must not report "database is locked").
func testConcurrentWriters(t *testing.T, s controller.Store) {
	ctx := context.Background()
	f := newFixture(t, s)
	const writers, rounds = 8, 50
	builds := make([]*api.Build, writers)
	for i := range builds {
		builds[i] = &api.Build{ID: id(), AppID: f.app.ID}
		must(t, "CreateBuild", s.CreateBuild(ctx, builds[i]))
	}
	var wg sync.WaitGroup
	errs := make(chan error, writers*rounds*3)
	for w := range writers {
		wg.Go(func() {
			for i := range rounds {
				_, err := s.UpdateBuild(ctx, builds[w].ID, func(b *api.Build) error {
					b.Reason = fmt.Sprint(i)
					return nil
				})
				if err != nil {
					errs <- fmt.Errorf("UpdateBuild: %w", err)
				}
				if err := s.AddEvent(ctx, &api.Event{ID: id(), AppID: f.app.ID, Type: "hammer", Message: fmt.Sprint(w, i)}); err != nil {
					errs <- fmt.Errorf("AddEvent: %w", err)
				}
				if _, err := s.Events(ctx, f.app.ID, 5); err != nil {
					errs <- fmt.Errorf("events: %w", err)
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("concurrent writers: %v", err)
	}
	es, err := s.Events(ctx, f.app.ID, 0)
	must(t, "Events", err)
	if len(es) != writers*rounds {
		t.Fatalf("events: got %d, want %d", len(es), writers*rounds)
	}
	for _, b := range builds {
		got, err := s.Build(ctx, b.ID)
		must(t, "Build", err)
		if got.Reason != fmt.Sprint(rounds-1) {
			t.Fatalf("build %s: reason %q, want %q", b.ID, got.Reason, fmt.Sprint(rounds-1))
		}
	}
}

// testConcurrentUpdateBuild increments a counter kept in one build's Reason
// from many goroutines: UpdateBuild's read-modify-write must lose none.
func testConcurrentUpdateBuild(t *testing.T, s controller.Store) {
	ctx := context.Background()
	f := newFixture(t, s)
	b := &api.Build{ID: id(), AppID: f.app.ID, Reason: "0"}
	must(t, "CreateBuild", s.CreateBuild(ctx, b))
	const workers, rounds = 8, 20
	var wg sync.WaitGroup
	errs := make(chan error, workers*rounds)
	for range workers {
		wg.Go(func() {
			for range rounds {
				_, err := s.UpdateBuild(ctx, b.ID, func(x *api.Build) error {
					var n int
					if _, err := fmt.Sscan(x.Reason, &n); err != nil {
						return err
					}
					x.Reason = fmt.Sprint(n + 1)
					return nil
				})
				if err != nil {
					errs <- err
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("UpdateBuild: %v", err)
	}
	got, err := s.Build(ctx, b.ID)
	must(t, "Build", err)
	if want := fmt.Sprint(workers * rounds); got.Reason != want {
		t.Fatalf("counter: got %s, want %s (lost updates)", got.Reason, want)
	}
}

// testTimestamps checks that given timestamps come back equal, in UTC, at
// microsecond precision, whatever zone they were given in.
func testTimestamps(t *testing.T, s controller.Store) {
	ctx := context.Background()
	zone := time.FixedZone("X", -7*3600)
	at := time.Date(2026, 3, 4, 5, 6, 7, 891234000, zone)
	o := &api.Org{ID: id(), Name: "zoned", CreatedAt: at.Add(567)} // sub-microsecond part is dropped
	must(t, "CreateOrg", s.CreateOrg(ctx, o))
	got, err := s.OrgByName(ctx, "zoned")
	must(t, "OrgByName", err)
	if !got.CreatedAt.Equal(at) || got.CreatedAt.Location() != time.UTC {
		t.Fatalf("CreatedAt: got %v, want %v in UTC", got.CreatedAt, at)
	}
	if !o.CreatedAt.Equal(got.CreatedAt) {
		t.Fatalf("CreateOrg wrote back %v, stored %v", o.CreatedAt, got.CreatedAt)
	}
}

func testCanceledContext(t *testing.T, s controller.Store) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := s.OrgByName(ctx, "x")
	wantCode(t, "read with canceled context", err, api.ETimeout)
	err = s.CreateOrg(ctx, &api.Org{ID: id(), Name: "x"})
	wantCode(t, "write with canceled context", err, api.ETimeout)
}

func testEmptyIDs(t *testing.T, s controller.Store) {
	ctx := context.Background()
	f := newFixture(t, s)
	tests := []struct {
		name string
		err  error
	}{
		{"org", s.CreateOrg(ctx, &api.Org{Name: "a"})},
		{"space", s.CreateSpace(ctx, &api.Space{OrgID: f.org.ID, Name: "a"})},
		{"user", s.CreateUser(ctx, &api.User{Name: "a"})},
		{"app", s.CreateApp(ctx, &api.App{SpaceID: f.space.ID, Name: "a"})},
		{"build", s.CreateBuild(ctx, &api.Build{AppID: f.app.ID})},
		{"release", s.CreateRelease(ctx, &api.Release{AppID: f.app.ID})},
		{"instance", s.CreateInstance(ctx, &api.Instance{AppID: f.app.ID, Process: "web"})},
		{"route", s.CreateRoute(ctx, &api.Route{AppID: f.app.ID, Host: "a.localhost"})},
		{"event", s.AddEvent(ctx, &api.Event{AppID: f.app.ID})},
	}
	for _, tc := range tests {
		wantCode(t, "empty "+tc.name+" id", tc.err, api.EInvalid)
	}
}

func testQuotas(t *testing.T, s controller.Store) {
	ctx := context.Background()
	f := newFixture(t, s)
	org := api.StoredQuota{Scope: api.QuotaOrg, OwnerID: f.org.ID, Quota: api.Quota{MemoryMB: 4096, Instances: 10}}
	space := api.StoredQuota{Scope: api.QuotaSpace, OwnerID: f.space.ID, Quota: api.Quota{Apps: 3, Routes: 5}}
	must(t, "SetQuota org", s.SetQuota(ctx, org))
	must(t, "SetQuota space", s.SetQuota(ctx, space))
	org.Quota.Instances = 12
	must(t, "SetQuota org again", s.SetQuota(ctx, org))
	qs, err := s.Quotas(ctx)
	must(t, "Quotas", err)
	if len(qs) != 2 || qs[0] != org || qs[1] != space {
		t.Fatalf("Quotas: %+v, want %+v %+v", qs, org, space)
	}
	must(t, "SetQuota zero", s.SetQuota(ctx, api.StoredQuota{Scope: api.QuotaSpace, OwnerID: f.space.ID}))
	if qs, _ := s.Quotas(ctx); len(qs) != 1 || qs[0] != org {
		t.Fatalf("Quotas after a zero quota: %+v", qs)
	}
}

func testBuildpacks(t *testing.T, s controller.Store) {
	ctx := context.Background()
	order := func() string {
		bps, err := s.ListBuildpacks(ctx)
		must(t, "ListBuildpacks", err)
		var out []string
		for _, b := range bps {
			out = append(out, fmt.Sprintf("%d:%s", b.Position, b.Name))
		}
		return strings.Join(out, " ")
	}
	for _, name := range []string{"a", "b", "c"} {
		_, err := s.PutBuildpack(ctx, api.BuildpackInfo{Name: name, Blob: blob('a')}, true)
		must(t, "PutBuildpack "+name, err)
	}
	if got := order(); got != "1:a 2:b 3:c" {
		t.Fatalf("order after three creates: %s", got)
	}
	_, err := s.PutBuildpack(ctx, api.BuildpackInfo{Name: "b", Blob: blob('a')}, true)
	wantCode(t, "create an existing buildpack", err, api.EConflict)
	_, err = s.PutBuildpack(ctx, api.BuildpackInfo{Name: "zzz", Blob: blob('a')}, false)
	wantCode(t, "update a missing buildpack", err, api.ENotFound)
	got, err := s.PutBuildpack(ctx, api.BuildpackInfo{Name: "c", Position: 1, Blob: blob('b')}, false)
	must(t, "move c first", err)
	if got.Position != 1 || got.Blob != blob('b') || order() != "1:c 2:a 3:b" {
		t.Fatalf("after moving c first: %+v, %s", got, order())
	}
	if _, err := s.PutBuildpack(ctx, api.BuildpackInfo{Name: "a", Blob: blob('c')}, false); err != nil || order() != "1:c 2:a 3:b" {
		t.Fatalf("update in place moved it: %v %s", err, order())
	}
	must(t, "DeleteBuildpack", s.DeleteBuildpack(ctx, "c"))
	if got := order(); got != "1:a 2:b" {
		t.Fatalf("after delete: %s", got)
	}
	wantCode(t, "delete again", s.DeleteBuildpack(ctx, "c"), api.ENotFound)
}
