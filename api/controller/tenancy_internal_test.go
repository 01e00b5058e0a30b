package controller

import (
	"context"
	"encoding/json"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/strata-paas/strata/api"
	"github.com/strata-paas/strata/api/blobstore"
	"github.com/strata-paas/strata/api/store"
)

// newTenancyEnv is a controller on SQLite and an in-memory bus, bootstrapped,
// with the admin's context.
func newTenancyEnv(t *testing.T) (*Controller, context.Context, *fakeClock, string) {
	t.Helper()
	clock := &fakeClock{now: time.Unix(2_000_000, 0)}
	st, err := store.Open(context.Background(), store.Config{Driver: "sqlite", DSN: filepath.Join(t.TempDir(), "strata.db"), Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	blobs, err := blobstore.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	c, err := New(Config{Now: clock.Now}, st, blobs, &memBus{})
	if err != nil {
		t.Fatal(err)
	}
	token, _, err := c.Tenancy.Bootstrap(context.Background(), "admin")
	if err != nil {
		t.Fatal(err)
	}
	return c, as(t, c, token, api.Target{}), clock, token
}

// as is the context of a request with token, acting in target.
func as(t *testing.T, c *Controller, token string, target api.Target) context.Context {
	t.Helper()
	p, err := c.Tenancy.Authenticate(context.Background(), token)
	if err != nil {
		t.Fatalf("Authenticate: %v", err)
	}
	return api.WithTarget(api.WithPrincipal(context.Background(), p), target)
}

func wantCode(t *testing.T, what string, err error, code string) {
	t.Helper()
	if api.ErrorCode(err) != code {
		t.Errorf("%s: got %v (code %q), want code %q", what, err, api.ErrorCode(err), code)
	}
}

// Users log in with passwords and act only where their roles let them: a
// developer changes apps in their space, an auditor reads, a stranger sees
// nothing (404, not 403).
func TestTenantsAndRoles(t *testing.T) {
	c, admin, _, _ := newTenancyEnv(t)
	must := func(what string, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	_, err := c.Orgs.CreateOrg(admin, "acme")
	must("CreateOrg", err)
	_, err = c.Orgs.CreateSpace(admin, "acme", "dev")
	must("CreateSpace", err)
	login := func(name string) string {
		t.Helper()
		res, err := c.Users.Login(context.Background(), api.LoginRequest{Username: name, Password: "pw-of-" + name}, "127.0.0.1")
		must("Login "+name, err)
		return res.Token
	}
	for _, u := range []struct {
		name string
		role api.Role
	}{{"alice", api.RoleSpaceDeveloper}, {"carol", api.RoleSpaceAuditor}, {"bob", ""}} {
		created, err := c.Users.CreateUser(admin, api.UserRequest{Name: u.name, Password: "pw-of-" + u.name})
		must("CreateUser", err)
		if created.GeneratedPassword != "" {
			t.Errorf("a given password came back generated")
		}
		if u.role != "" {
			must("SetRole", c.Orgs.SetRole(admin, api.RoleRequest{User: u.name, Role: u.role, Org: "acme", Space: "dev"}))
		}
	}
	acmeDev := api.Target{Org: "acme", Space: "dev"}
	alice := as(t, c, login("alice"), acmeDev)
	carol := as(t, c, login("carol"), acmeDev)
	bob := as(t, c, login("bob"), acmeDev)

	_, err = c.Apps.CreateApp(alice, "hello")
	must("developer creates an app", err)
	if apps, err := c.Apps.ListApps(carol); err != nil || len(apps) != 1 || apps[0].Name != "hello" {
		t.Errorf("auditor lists %v, %v; want hello", apps, err)
	}
	_, err = c.Apps.CreateApp(carol, "nope")
	wantCode(t, "auditor creates an app", err, api.EForbidden)
	_, err = c.Apps.Env(carol, "hello")
	wantCode(t, "auditor reads env (secrets)", err, api.EForbidden)
	_, err = c.Apps.ListApps(bob)
	wantCode(t, "stranger lists the space", err, api.ENotFound)
	_, err = c.Apps.AppDetail(bob, "hello")
	wantCode(t, "stranger reads the app", err, api.ENotFound)
	// The default space is not theirs either.
	_, err = c.Apps.ListApps(api.WithTarget(alice, api.Target{}))
	wantCode(t, "developer lists another space", err, api.ENotFound)
	// Same app name in another space is another app.
	_, err = c.Apps.CreateApp(admin, "hello-default")
	must("admin creates in the default space", err)
	if _, err := c.Apps.AppDetail(alice, "hello-default"); api.ErrorCode(err) != api.ENotFound {
		t.Errorf("developer sees an app of another space: %v", err)
	}
	if orgs, err := c.Orgs.ListOrgs(alice); err != nil || len(orgs) != 1 || orgs[0].Name != "acme" || strings.Join(orgs[0].Spaces, ",") != "dev" {
		t.Errorf("developer's orgs: %+v %v", orgs, err)
	}
	_, err = c.Orgs.CreateSpace(alice, "acme", "prod")
	wantCode(t, "developer creates a space", err, api.EForbidden)
	wantCode(t, "developer deletes the space", c.Orgs.DeleteSpace(alice, "acme", "dev", true), api.EForbidden)
	wantCode(t, "developer grants roles", c.Orgs.SetRole(alice, api.RoleRequest{User: "bob", Role: api.RoleSpaceDeveloper, Org: "acme", Space: "dev"}), api.EForbidden)
	wantCode(t, "stranger grants roles", c.Orgs.SetRole(bob, api.RoleRequest{User: "bob", Role: api.RoleOrgManager, Org: "acme"}), api.ENotFound)
	_, err = c.Users.ListUsers(alice)
	wantCode(t, "developer lists users", err, api.EForbidden)

	// Org-level changes are events of the org, with their actor; app events
	// record their org and space.
	evs, err := c.Orgs.OrgEvents(carol, "acme", 0)
	must("OrgEvents", err)
	var got []string
	for _, e := range evs {
		got = append(got, e.Type+" "+e.Actor+": "+e.Message)
	}
	if strings.Join(got, "|") != "role.set admin: carol is space-auditor in space dev|role.set admin: alice is space-developer in space dev|space.create admin: created space dev" {
		t.Errorf("org events: %q", got)
	}
	if _, err := c.Orgs.OrgEvents(bob, "acme", 0); api.ErrorCode(err) != api.ENotFound {
		t.Errorf("a stranger reads the org's events: %v", err)
	}
	if appEvs, err := c.Apps.Events(alice, "hello", 0); err != nil || len(appEvs) == 0 || appEvs[0].OrgID == "" || appEvs[0].SpaceID == "" {
		t.Errorf("app events without org and space: %+v %v", appEvs, err)
	}

	members, err := c.Orgs.Members(admin, "acme")
	must("Members", err)
	if len(members) != 2 {
		t.Errorf("members: %+v", members)
	}
	wantCode(t, "space with apps", c.Orgs.DeleteSpace(admin, "acme", "dev", false), api.EConflict)
	must("recursive space delete", c.Orgs.DeleteSpace(admin, "acme", "dev", true))
	must("DeleteOrg", c.Orgs.DeleteOrg(admin, "acme", false))
}

// Logins: a wrong password and an unknown user answer alike; tokens expire,
// can be listed and revoked; logout revokes the request's token; passwords
// change only with the old one.
func TestLoginTokensPasswords(t *testing.T) {
	c, admin, clock, adminToken := newTenancyEnv(t)
	created, err := c.Users.CreateUser(admin, api.UserRequest{Name: "dana"})
	if err != nil || len(created.GeneratedPassword) != 20 {
		t.Fatalf("CreateUser without a password: %+v %v", created, err)
	}
	pw := created.GeneratedPassword
	_, err = c.Users.Login(context.Background(), api.LoginRequest{Username: "dana", Password: "wrong-one"}, "a")
	wantCode(t, "wrong password", err, api.EUnauthorized)
	_, err2 := c.Users.Login(context.Background(), api.LoginRequest{Username: "nobody", Password: "wrong-one"}, "a")
	if err == nil || err2 == nil || err.Error() != err2.Error() {
		t.Errorf("unknown user and wrong password differ: %v / %v", err, err2)
	}
	res, err := c.Users.Login(context.Background(), api.LoginRequest{Username: "dana", Password: pw}, "a")
	if err != nil {
		t.Fatal(err)
	}
	if !res.ExpiresAt.Equal(clock.Now().Add(TokenTTL)) {
		t.Errorf("token expires %s, want now+%s", res.ExpiresAt, TokenTTL)
	}
	dana := as(t, c, res.Token, api.Target{})
	res2, _ := c.Users.Login(context.Background(), api.LoginRequest{Username: "dana", Password: pw}, "b")
	toks, err := c.Users.Tokens(dana)
	if err != nil || len(toks) != 2 || toks[0].Current == toks[1].Current {
		t.Fatalf("Tokens: %+v %v, want two, one of them current", toks, err)
	}
	other := toks[0]
	if other.Current {
		other = toks[1]
	}
	if err := c.Users.RevokeToken(dana, other.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Tenancy.Authenticate(context.Background(), res2.Token); api.ErrorCode(err) != api.EUnauthorized {
		t.Errorf("revoked token still works: %v", err)
	}
	wantCode(t, "change with a wrong old password", c.Users.ChangePassword(dana, api.PasswordChange{Old: "nope-nope", New: "a new password"}), api.EForbidden)
	if err := c.Users.ChangePassword(dana, api.PasswordChange{Old: pw, New: "a new password"}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Users.Login(context.Background(), api.LoginRequest{Username: "dana", Password: "a new password"}, "a"); err != nil {
		t.Errorf("login with the new password: %v", err)
	}
	if err := c.Users.Logout(dana); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Tenancy.Authenticate(context.Background(), res.Token); api.ErrorCode(err) != api.EUnauthorized {
		t.Errorf("token after logout: %v", err)
	}
	// Expiry uses the store's clock.
	res3, _ := c.Users.Login(context.Background(), api.LoginRequest{Username: "dana", Password: "a new password"}, "a")
	clock.add(TokenTTL + time.Second)
	if _, err := c.Tenancy.Authenticate(context.Background(), res3.Token); api.ErrorCode(err) != api.EUnauthorized {
		t.Errorf("expired token: %v", err)
	}
	// The bootstrap admin token does not expire.
	if _, err := c.Users.ListUsers(as(t, c, adminToken, api.Target{})); err != nil {
		t.Errorf("admin after a month: %v", err)
	}
	wantCode(t, "admin deletes themself", c.Users.DeleteUser(admin, "admin"), api.EInvalid)

	// Users' changes are platform events, which only admins read.
	res4, err := c.Users.Login(context.Background(), api.LoginRequest{Username: "dana", Password: "a new password"}, "a")
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Orgs.PlatformEvents(as(t, c, res4.Token, api.Target{}), 0)
	wantCode(t, "a user reads the platform's events", err, api.EForbidden)
	if err := c.Users.DeleteUser(admin, "dana"); err != nil {
		t.Fatal(err)
	}
	evs, err := c.Orgs.PlatformEvents(admin, 0)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range evs {
		got = append(got, e.Type+" "+e.Actor+": "+e.Message)
	}
	want := []string{"user.delete admin: deleted user dana", "user.password dana: dana changed their password", "user.create admin: created user dana"}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("platform events:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// Two apps of one name in two spaces are two apps: each has its own log,
// and the second starts without the default host the first holds.
func TestSameNameAppsKeepLogsApart(t *testing.T) {
	c, admin, _, _ := newTenancyEnv(t)
	if _, err := c.Orgs.CreateOrg(admin, "acme"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Orgs.CreateSpace(admin, "acme", "dev"); err != nil {
		t.Fatal(err)
	}
	acme := api.WithTarget(admin, api.Target{Org: "acme", Space: "dev"})
	mine, err := c.Apps.CreateApp(admin, "hello")
	if err != nil {
		t.Fatal(err)
	}
	theirs, err := c.Apps.CreateApp(acme, "hello")
	if err != nil {
		t.Fatalf("same name in another space: %v", err)
	}
	if mine.ID == theirs.ID {
		t.Fatal("one app for two spaces")
	}
	if d, err := c.Apps.AppDetail(acme, "hello"); err != nil || len(d.URLs) != 0 {
		t.Errorf("second hello: urls %v, %v; want none (the host is taken)", d.URLs, err)
	}
	c.Logs.add(api.LogEnvelope{AppID: mine.ID, App: "hello", Source: "app/web/0", Line: "default line"})
	c.Logs.add(api.LogEnvelope{AppID: theirs.ID, App: "hello", Source: "app/web/0", Line: "acme line"})
	read := func(ctx context.Context) []string {
		var lines []string
		if err := c.Logs.Logs(ctx, api.LogQuery{App: "hello", Source: "app"}, func(e api.LogEnvelope) error {
			lines = append(lines, e.Line)
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		return lines
	}
	if got := read(admin); strings.Join(got, "|") != "default line" {
		t.Errorf("default space's hello logs: %q", got)
	}
	if got := read(acme); strings.Join(got, "|") != "acme line" {
		t.Errorf("acme/dev hello logs: %q", got)
	}
}

// Quotas of a space and of its org refuse creating, scaling and routing
// past them with the numbers; what fits goes through; `strata quotas`
// shows use.
func TestQuotas(t *testing.T) {
	c, admin, _, _ := newTenancyEnv(t)
	if _, err := c.Orgs.CreateOrg(admin, "acme"); err != nil {
		t.Fatal(err)
	}
	for _, sp := range []string{"dev", "prod"} {
		if _, err := c.Orgs.CreateSpace(admin, "acme", sp); err != nil {
			t.Fatal(err)
		}
	}
	dev := api.WithTarget(admin, api.Target{Org: "acme", Space: "dev"})
	prod := api.WithTarget(admin, api.Target{Org: "acme", Space: "prod"})
	if _, err := c.Quotas.SetQuota(dev, api.QuotaRequest{Org: "acme", Space: "dev", Quota: api.Quota{MemoryMB: 1024, Apps: 2}}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Quotas.SetQuota(dev, api.QuotaRequest{Org: "acme", Quota: api.Quota{Instances: 5, Routes: 4}}); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"one", "two"} {
		if _, err := c.Apps.CreateApp(dev, name); err != nil {
			t.Fatalf("create %s within the quota: %v", name, err)
		}
	}
	_, err := c.Apps.CreateApp(dev, "three")
	if api.ErrorCode(err) != api.EQuota || !strings.Contains(err.Error(), "the space dev may use 2 apps; it uses 2 and this asks 1 more") {
		t.Errorf("third app: %v", err)
	}
	// 2 × 256M used; 4 instances of one take 768M more: 1280M > 1G.
	three, four := 3, 4
	_, err = c.Apps.Scale(dev, "one", api.ScaleRequest{Process: api.ProcessWeb, Instances: &four})
	if api.ErrorCode(err) != api.EQuota || !strings.Contains(err.Error(), "may use 1G memory; it uses 512M and this asks 768M more") {
		t.Errorf("scale past memory: %v", err)
	}
	two := 2
	if _, err := c.Apps.Scale(dev, "one", api.ScaleRequest{Process: api.ProcessWeb, Instances: &two}); err != nil {
		t.Errorf("scale within the quota: %v", err)
	}
	// The org counts both spaces: 3 instances in dev, 2 more in prod fit, a third does not.
	if _, err := c.Apps.CreateApp(prod, "p1"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Apps.Scale(prod, "p1", api.ScaleRequest{Process: api.ProcessWeb, Instances: &two}); err != nil {
		t.Errorf("prod within the org's instances: %v", err)
	}
	_, err = c.Apps.Scale(prod, "p1", api.ScaleRequest{Process: api.ProcessWeb, Instances: &three})
	if api.ErrorCode(err) != api.EQuota || !strings.Contains(err.Error(), "the org may use 5 instances") {
		t.Errorf("prod past the org's instances: %v", err)
	}
	// Routes: 3 default routes + 1 = the org's 4; the fifth is refused.
	if _, err := c.Routes.MapRoute(prod, "p1", api.RouteRequest{Host: "extra.localhost"}); err != nil {
		t.Errorf("route within the quota: %v", err)
	}
	if _, err := c.Routes.MapRoute(prod, "p1", api.RouteRequest{Host: "more.localhost"}); api.ErrorCode(err) != api.EQuota {
		t.Errorf("route past the quota: %v", err)
	}
	infos, err := c.Quotas.Quotas(admin, "acme")
	if err != nil || len(infos) != 3 || infos[0].Space != "" || infos[0].Used.Instances != 5 || infos[0].Used.Routes != 4 ||
		infos[1].Space != "dev" || infos[1].Used.MemoryMB != 768 || infos[1].Quota.Apps != 2 {
		t.Errorf("quotas: %+v %v", infos, err)
	}
	// Zero removes a quota.
	for _, req := range []api.QuotaRequest{{Org: "acme", Space: "dev"}, {Org: "acme"}} {
		if _, err := c.Quotas.SetQuota(dev, req); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := c.Apps.CreateApp(dev, "three"); err != nil {
		t.Errorf("after the space's quota is removed: %v", err)
	}
}

// Passwords, their hashes and tokens never reach the log, the audit trail or
// an API answer.
func TestSecretsStayOut(t *testing.T) {
	var logs strings.Builder
	clock := &fakeClock{now: time.Unix(3_000_000, 0)}
	st, err := store.Open(context.Background(), store.Config{Driver: "sqlite", DSN: filepath.Join(t.TempDir(), "strata.db"), Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	blobs, _ := blobstore.New(t.TempDir())
	c, err := New(Config{Now: clock.Now, Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))}, st, blobs, &memBus{})
	if err != nil {
		t.Fatal(err)
	}
	adminToken, _, err := c.Tenancy.Bootstrap(context.Background(), "admin")
	if err != nil {
		t.Fatal(err)
	}
	admin := as(t, c, adminToken, api.Target{})
	const pw = "correct horse battery"
	created, err := c.Users.CreateUser(admin, api.UserRequest{Name: "erin", Password: pw})
	if err != nil {
		t.Fatal(err)
	}
	_, _ = c.Users.Login(context.Background(), api.LoginRequest{Username: "erin", Password: "wrong " + pw}, "10.1.1.1")
	res, err := c.Users.Login(context.Background(), api.LoginRequest{Username: "erin", Password: pw}, "10.1.1.1")
	if err != nil {
		t.Fatal(err)
	}
	u, _ := st.UserByName(context.Background(), "erin")
	hash, _ := st.PasswordHash(context.Background(), u.ID)
	erin := as(t, c, res.Token, api.Target{})
	users, _ := c.Users.ListUsers(admin)
	toks, _ := c.Users.Tokens(erin)
	who := api.PrincipalFrom(erin)
	if _, err := c.Apps.CreateApp(admin, "probe"); err != nil {
		t.Fatal(err)
	}
	events, _ := c.Apps.Events(admin, "probe", 0)
	platform, _ := c.Orgs.PlatformEvents(admin, 0)
	answers, _ := json.Marshal([]any{created, users, toks, who, res.User, events, platform})
	for what, secret := range map[string]string{"password": pw, "hash": hash, "token": res.Token, "admin token": adminToken, "token hash": hashToken(res.Token)} {
		if secret == "" {
			t.Fatalf("no %s to look for", what)
		}
		if strings.Contains(logs.String(), secret) {
			t.Errorf("the log holds the %s", what)
		}
		if strings.Contains(string(answers), secret) {
			t.Errorf("an API answer holds the %s: %s", what, answers)
		}
	}
}

// Routes may use the platform's domain, shared domains and their org's
// private ones; a host under another org's private domain is refused, and
// only the org's managers register private domains.
func TestDomains(t *testing.T) {
	c, admin, _, _ := newTenancyEnv(t)
	for _, org := range []string{"acme", "globex"} {
		if _, err := c.Orgs.CreateOrg(admin, org); err != nil {
			t.Fatal(err)
		}
		if _, err := c.Orgs.CreateSpace(admin, org, "dev"); err != nil {
			t.Fatal(err)
		}
	}
	acme := api.WithTarget(admin, api.Target{Org: "acme", Space: "dev"})
	globex := api.WithTarget(admin, api.Target{Org: "globex", Space: "dev"})
	if _, err := c.Domains.CreateDomain(admin, api.DomainInfo{Name: "shared.example.com"}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Domains.CreateDomain(admin, api.DomainInfo{Name: "acme.example.com", Org: "acme"}); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []api.DomainInfo{{Name: "localhost"}, {Name: "x.localhost"}, {Name: "nodot"}, {Name: "a..b"}, {Name: "shared.example.com"}} {
		if _, err := c.Domains.CreateDomain(admin, bad); err == nil {
			t.Errorf("CreateDomain(%+v) succeeded", bad)
		}
	}
	for _, ctx := range []context.Context{acme, globex} {
		if _, err := c.Apps.CreateApp(ctx, "web"); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := c.Routes.MapRoute(acme, "web", api.RouteRequest{Host: "www.acme.example.com"}); err != nil {
		t.Errorf("acme on its private domain: %v", err)
	}
	if _, err := c.Routes.MapRoute(globex, "web", api.RouteRequest{Host: "steal.acme.example.com"}); api.ErrorCode(err) != api.EForbidden {
		t.Errorf("globex on acme's private domain: %v, want forbidden", err)
	}
	if _, err := c.Routes.MapRoute(globex, "web", api.RouteRequest{Host: "g.shared.example.com", Path: "/shop"}); err != nil {
		t.Errorf("globex on a shared domain: %v", err)
	}
	if _, err := c.Routes.MapRoute(globex, "web", api.RouteRequest{Host: "www.elsewhere.org"}); api.ErrorCode(err) != api.EInvalid {
		t.Errorf("a host under no domain: %v, want invalid", err)
	}
	// A manifest may name a route under any registered domain; the space's
	// right to it is checked when it is mapped.
	p, err := planManifest(&sourceManifest{file: "strata.yml", data: []byte("applications:\n- name: web\n  routes:\n  - route: shop.acme.example.com/v1\n")}, "web", []string{"localhost", "acme.example.com"})
	if err != nil || len(p.routes) != 1 || p.routes[0].Host != "shop.acme.example.com" {
		t.Errorf("manifest route on a registered domain: %+v %v", p, err)
	}
	ds, err := c.Domains.ListDomains(globex)
	if err != nil || len(ds) != 3 || ds[0].Name != "localhost" || ds[1] != (api.DomainInfo{Name: "acme.example.com", Org: "acme"}) || ds[2].Name != "shared.example.com" {
		t.Errorf("domains the admin lists: %+v %v", ds, err)
	}
	if err := c.Domains.DeleteDomain(admin, "acme.example.com"); err != nil {
		t.Errorf("delete a private domain: %v", err)
	}
}

// An app's metrics come from its router access lines (requests, mean
// latency) and heartbeats (CPU, memory summed over nodes), per minute, for
// the last hour; older minutes are dropped.
func TestMetrics(t *testing.T) {
	clock := &fakeClock{now: time.Unix(6_000_000, 0)}
	m := newMetrics(clock.Now)
	line := func(ms float64) {
		m.routerLine(api.LogEnvelope{AppID: "a1", Source: api.LogSourceRouter, Line: "GET / 200", LatencyMs: ms, Time: clock.Now()})
	}
	line(2)
	line(4)
	m.routerLine(api.LogEnvelope{AppID: "a1", Source: "app/web/0", Line: "GET / 200 1B 100ms", LatencyMs: 100, Time: clock.Now()})
	m.heartbeat(&api.NodeHeartbeat{NodeID: "n1", Instances: []api.InstanceReport{{AppID: "a1", CPUPercent: 10, MemoryBytes: 100}, {AppID: "a1", CPUPercent: 5, MemoryBytes: 50}}}, clock.Now())
	m.heartbeat(&api.NodeHeartbeat{NodeID: "n2", Instances: []api.InstanceReport{{AppID: "a1", CPUPercent: 1, MemoryBytes: 1}}}, clock.Now())
	m.heartbeat(&api.NodeHeartbeat{NodeID: "n1", Instances: []api.InstanceReport{{AppID: "a1", CPUPercent: 20, MemoryBytes: 200}}}, clock.Now()) // replaces n1's
	s := m.series("a1")
	last := s[len(s)-1]
	if len(s) != metricMinutes || last.Requests != 2 || last.LatencyMs != 3 || last.CPUPercent != 21 || last.MemoryBytes != 201 {
		t.Fatalf("last minute %+v (of %d)", last, len(s))
	}
	clock.add(2 * time.Minute)
	line(1)
	s = m.series("a1")
	if s[len(s)-1].Requests != 1 || s[len(s)-3].Requests != 2 || s[len(s)-2].Requests != 0 {
		t.Errorf("after two minutes: %+v %+v %+v", s[len(s)-3], s[len(s)-2], s[len(s)-1])
	}
	clock.add(time.Hour)
	for _, p := range m.series("a1") {
		if p.Requests != 0 || p.CPUPercent != 0 {
			t.Fatalf("a minute older than an hour is still there: %+v", p)
		}
	}
	if got := m.series("unknown"); len(got) != metricMinutes {
		t.Errorf("an unknown app has %d minutes", len(got))
	}
}
