package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/strata-paas/strata/api"
	"github.com/strata-paas/strata/api/httpapi/httpapitest"
)

func TestRoutes(t *testing.T) {
	c := newCLI(t).loggedIn(httpapitest.UserToken)
	c.mustRun("apps", "create", "web")
	c.mustRun("apps", "create", "other")

	out := c.mustRun("routes", "map", "web", "blog/api")
	if !strings.Contains(out, "Mapped blog.localhost/api to web: http://blog.localhost:8080/api") {
		t.Fatalf("routes map printed %q", out)
	}
	c.mustRun("routes", "map", "web", "shop.localhost")
	_, errs, code := c.run("routes", "map", "other", "shop")
	wantError(t, errs, code, 1, "already mapped to another app")
	_, errs, code = c.run("routes", "map", "web", "shop.example.com")
	wantError(t, errs, code, 1, "not under the domain localhost")
	_, errs, code = c.run("routes", "map", "web", "blog/../x")
	wantError(t, errs, code, 1, "\"..\"")

	out = c.mustRun("routes")
	if !strings.Contains(out, "blog.localhost") || !strings.Contains(out, "/api") || !strings.Contains(out, "shop.localhost") {
		t.Fatalf("routes printed %q", out)
	}
	var routes []api.RouteInfo
	if err := json.Unmarshal([]byte(c.mustRun("routes", "--json")), &routes); err != nil || len(routes) != 2 || routes[0].App != "web" {
		t.Fatalf("routes --json = %+v, %v", routes, err)
	}

	c.mustRun("routes", "unmap", "web", "shop")
	_, errs, code = c.run("routes", "unmap", "web", "shop")
	wantError(t, errs, code, 1, "has no route shop.localhost")
	if rs, _ := c.fake.ListRoutes(context.Background()); len(rs) != 1 || rs[0].Host != "blog.localhost" {
		t.Fatalf("routes after unmap = %+v", rs)
	}
}

// TestPushManifestRoutes: the manifest's routes are mapped before the push;
// a bad route fails the push naming its line, before anything is uploaded.
func TestPushManifestRoutes(t *testing.T) {
	c := newCLI(t).loggedIn(httpapitest.UserToken)
	dir := filepath.Join(c.dir, "src")
	os.MkdirAll(dir, 0o755)
	os.WriteFile(filepath.Join(dir, "main.go"), []byte("package main\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "strata.yml"), []byte("applications:\n- name: site\n  routes:\n  - route: site.localhost\n  - route: www-site.localhost/docs\n"), 0o644)
	c.mustRun("push", "-p", "src")
	rs, _ := c.fake.ListRoutes(context.Background())
	var got []string
	for _, r := range rs {
		got = append(got, r.App+" "+r.Host+r.Path)
	}
	if !slices.Equal(got, []string{"site site.localhost", "site www-site.localhost/docs"}) {
		t.Fatalf("routes after push = %q", got)
	}

	os.WriteFile(filepath.Join(dir, "strata.yml"), []byte("applications:\n- name: site\n  routes:\n  - route: site.localhost\n  - route: evil.example.com\n"), 0o644)
	_, errs, code := c.run("push", "-p", "src")
	wantError(t, errs, code, 1, "line 5: route host \"evil.example.com\" is not under the domain localhost")
	if n := len(c.fake.Pushes()); n != 1 {
		t.Fatalf("pushes = %d, want the bad manifest refused before uploading", n)
	}
}
