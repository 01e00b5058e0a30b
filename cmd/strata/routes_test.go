package main

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/strata-paas/strata/api"
)

func TestRoutes(t *testing.T) {
	c := newCLI(t).asUser()
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
	// The list also has each app's own route (<app>.localhost), sorted by
	// host.
	var routes []*api.RouteInfo
	if err := json.Unmarshal([]byte(c.mustRun("routes", "--json")), &routes); err != nil || hosts(routes) != "blog.localhost/api other.localhost shop.localhost web.localhost" || routes[0].App != "web" {
		t.Fatalf("routes --json = %+v, %v", routes, err)
	}

	c.mustRun("routes", "unmap", "web", "shop")
	_, errs, code = c.run("routes", "unmap", "web", "shop")
	wantError(t, errs, code, 1, "has no route shop.localhost")
	if rs, _ := c.srv.Controller.Routes.ListRoutes(c.srv.AdminContext()); hosts(rs) != "blog.localhost/api other.localhost web.localhost" {
		t.Fatalf("routes after unmap = %+v", rs)
	}
}

func hosts(rs []*api.RouteInfo) string {
	var hs []string
	for _, r := range rs {
		hs = append(hs, r.Host+r.Path)
	}
	return strings.Join(hs, " ")
}
