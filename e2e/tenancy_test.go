package e2e_test

import (
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// with returns a CLI of the same user whose commands act in org/space
// (STRATA_ORG, STRATA_SPACE).
func (c *cli) with(org, space string) *cli {
	return &cli{t: c.t, home: c.home, env: append(append([]string{}, c.env...), "STRATA_ORG="+org, "STRATA_SPACE="+space)}
}

// wantFail runs a command that must fail with out containing want.
func (c *cli) wantFail(want, dir, name string, args ...string) {
	c.t.Helper()
	out, code := c.run(dir, name, args...)
	if code == 0 || !strings.Contains(out, want) {
		c.t.Errorf("%s %s: exit %d, want a failure saying %q:\n%s", name, strings.Join(args, " "), code, want, out)
	}
}

// TestTenancy: an admin makes two orgs and users with roles; two developers
// push apps of the same name into their spaces with strata push and git
// push; neither can see, push to, scale or route to the other's; an auditor
// reads but changes nothing; tokens are listed and revoked by logout.
func TestTenancy(t *testing.T) {
	require(t, "go", "git")
	c := startCluster(t)
	c.executor("node-t", t.TempDir(), "--substrate", "metal")
	admin := c.cli

	for _, args := range [][]string{
		{"orgs", "create", "acme"}, {"orgs", "create", "globex"},
		{"spaces", "create", "dev", "--org", "acme"}, {"spaces", "create", "dev", "--org", "globex"},
	} {
		admin.must("", "strata", args...)
	}
	password := map[string]string{}
	for _, u := range []string{"alice", "bob", "carol"} {
		out := admin.must("", "strata", "users", "create", u)
		m := regexp.MustCompile(`(?m)^Password: (\S+)$`).FindStringSubmatch(out)
		if m == nil {
			t.Fatalf("users create %s printed no password:\n%s", u, out)
		}
		password[u] = m[1]
	}
	admin.must("", "strata", "users", "set-role", "alice", "space-developer", "--org", "acme", "--space", "dev")
	admin.must("", "strata", "users", "set-role", "bob", "space-developer", "--org", "globex", "--space", "dev")
	admin.must("", "strata", "users", "set-role", "carol", "space-auditor", "--org", "acme", "--space", "dev")
	if out := admin.must("", "strata", "users", "--org", "acme"); !regexp.MustCompile(`alice\s+space-developer\s+dev`).MatchString(out) ||
		!regexp.MustCompile(`carol\s+space-auditor\s+dev`).MatchString(out) || strings.Contains(out, "bob") {
		t.Errorf("users --org acme:\n%s", out)
	}

	login := func(name, org string) *cli {
		u := newCLI(t)
		if out, code := u.runStdin(password[name]+"\n", "", "strata", "login", "--api", c.apiURL, "--username", name, "--password-stdin"); code != 0 {
			t.Fatalf("login %s: exit %d\n%s", name, code, out)
		}
		if out := u.must("", "strata", "target", "--org", org, "--space", "dev"); !strings.Contains(out, "org:   "+org) || !strings.Contains(out, "space: dev") {
			t.Errorf("target of %s:\n%s", name, out)
		}
		return u
	}
	if out, code := newCLI(t).runStdin("wrong-password\n", "", "strata", "login", "--api", c.apiURL, "--username", "alice", "--password-stdin"); code == 0 || !strings.Contains(out, "wrong user name or password") {
		t.Errorf("login with a wrong password: exit %d\n%s", code, out)
	}
	alice, bob, carol := login("alice", "acme"), login("bob", "globex"), login("carol", "acme")
	if out := carol.must("", "strata", "events", "--org", "acme"); !regexp.MustCompile(`role.set\s+admin\s+alice is space-developer in space dev`).MatchString(out) {
		t.Errorf("events --org acme:\n%s", out)
	}
	// Users belong to no org: their creation is a platform event, for admins.
	if out := admin.must("", "strata", "events", "--platform"); !regexp.MustCompile(`user.create\s+admin\s+created user carol`).MatchString(out) {
		t.Errorf("events --platform:\n%s", out)
	}
	if out, code := carol.run("", "strata", "events", "--platform"); code == 0 {
		t.Errorf("a non-admin read the platform's events:\n%s", out)
	}

	// Same app name in two orgs: alice's gets hello.localhost, bob's starts
	// without a route and maps its own.
	src := copyDir(t, filepath.Join(repoRoot(), "examples", "hello-go"))
	alice.must(src, "strata", "push", "hello")
	waitBody(t, c.routerAddr, "hello.localhost", helloBody, 30*time.Second)
	out := bob.must(src, "strata", "push", "hello")
	if !strings.Contains(out, "hello.localhost is taken by another app") {
		t.Errorf("bob's push does not say the host is taken:\n%s", out)
	}
	bob.wantFail("already mapped to another app", "", "strata", "routes", "map", "hello", "hello.localhost")
	bob.must("", "strata", "routes", "map", "hello", "hello-globex.localhost")
	waitBody(t, c.routerAddr, "hello-globex.localhost", helloBody, 30*time.Second)

	// Quotas: over-quota push and scale are refused with the numbers.
	admin.must("", "strata", "quotas", "set", "--org", "acme", "--space", "dev", "--memory", "512M", "--apps", "1")
	alice.wantFail("the space dev may use 1 apps; it uses 1 and this asks 1 more", src, "strata", "push", "second")
	alice.wantFail("the space dev may use 512M memory; it uses 256M and this asks 512M more", "", "strata", "scale", "hello", "-i", "3")
	if out := alice.must("", "strata", "quotas"); !regexp.MustCompile(`space dev\s+256M / 512M\s+1 / -\s+1 / 1`).MatchString(out) {
		t.Errorf("alice's quotas:\n%s", out)
	}
	carol.wantFail("an admin", "", "strata", "quotas", "set", "--org", "acme", "--apps", "9")

	// Domains: acme's private domain serves alice's app; bob may not claim a
	// host under it.
	admin.must("", "strata", "domains", "create", "acme.test", "--org", "acme")
	alice.must("", "strata", "routes", "map", "hello", "shop.acme.test")
	waitBody(t, c.routerAddr, "shop.acme.test", helloBody, 30*time.Second)
	bob.wantFail("strata domains", "", "strata", "routes", "map", "hello", "steal.acme.test")
	if out := bob.must("", "strata", "domains"); strings.Contains(out, "acme.test") {
		t.Errorf("bob sees acme's private domain:\n%s", out)
	}

	// Each sees only its own.
	if out := alice.must("", "strata", "apps"); !strings.Contains(out, "hello.localhost") || strings.Contains(out, "globex") {
		t.Errorf("alice's apps:\n%s", out)
	}
	if out := bob.must("", "strata", "app", "hello"); !strings.Contains(out, "hello-globex.localhost") || strings.Contains(out, "http://hello.localhost") {
		t.Errorf("bob's app:\n%s", out)
	}
	intruder := bob.with("acme", "dev")
	intruder.wantFail("not found", "", "strata", "apps")
	intruder.wantFail("not found", "", "strata", "app", "hello")
	intruder.wantFail("not found", "", "strata", "scale", "hello", "-i", "2")
	intruder.wantFail("not found", "", "strata", "logs", "hello")
	intruder.wantFail("not found", src, "strata", "push", "hello")
	if out := bob.must("", "strata", "orgs"); strings.Contains(out, "acme") {
		t.Errorf("bob sees acme:\n%s", out)
	}

	// The auditor reads but changes nothing.
	if out := carol.must("", "strata", "apps"); !strings.Contains(out, "hello") {
		t.Errorf("carol's apps:\n%s", out)
	}
	carol.must("", "strata", "releases", "hello")
	carol.wantFail("space-developer", "", "strata", "scale", "hello", "-i", "2")
	carol.wantFail("space-developer", "", "strata", "env", "hello")
	carol.wantFail("space-developer", "", "strata", "routes", "map", "hello", "carol.localhost")
	carol.wantFail("space-developer", src, "strata", "push", "hello")
	carol.wantFail("an admin", "", "strata", "users")
	carol.wantFail("org-manager", "", "strata", "spaces", "create", "prod", "--org", "acme")

	// git push lands in the target space; bob cannot push to alice's repo.
	repo := copyDir(t, filepath.Join(repoRoot(), "examples", "hello-go"))
	gitRepo(t, alice, repo)
	alice.must(repo, "strata", "git-remote", "hello")
	if url := strings.TrimSpace(alice.must(repo, "git", "remote", "get-url", "strata")); !strings.HasSuffix(url, "/git/acme/dev/hello.git") {
		t.Errorf("alice's git remote %q, want …/git/acme/dev/hello.git", url)
	}
	if out := alice.must(repo, "git", "push", "strata", "main"); !strings.Contains(out, "remote: -----> Released v") {
		t.Errorf("alice's git push:\n%s", out)
	}
	if out, code := bob.run(repo, "git", "push", "strata", "main"); code == 0 || !strings.Contains(out, "not found") {
		t.Errorf("bob's git push to alice's remote: exit %d\n%s", code, out)
	}
	if out := alice.must("", "strata", "events", "hello"); !regexp.MustCompile(`push\s+alice`).MatchString(out) {
		t.Errorf("alice's events lack her pushes:\n%s", out)
	}

	// Tokens: listed, and logout revokes the saved one.
	if out := alice.must("", "strata", "tokens"); !strings.Contains(out, "(this one)") || !strings.Contains(out, "login from") {
		t.Errorf("alice's tokens:\n%s", out)
	}
	alice.must("", "strata", "logout")
	alice.wantFail("run strata login", "", "strata", "apps")

	// A space with apps is deleted only recursively.
	admin.wantFail("still has apps", "", "strata", "spaces", "delete", "dev", "--org", "globex")
	admin.must("", "strata", "spaces", "delete", "dev", "--org", "globex", "--recursive")
	if out, code := bob.run("", "strata", "apps"); code == 0 || !strings.Contains(out, "not found") {
		t.Errorf("bob's apps after his space is gone: exit %d\n%s", code, out)
	}
}
