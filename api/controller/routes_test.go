package controller_test

import (
	"slices"
	"testing"

	"github.com/strata-paas/strata/api"
)

// TestMapRouteReachesRunningInstances: a mapped route (with a path) is
// validated, unique across apps, recorded, and sent to the app's running web
// instances without restarting them; unmapping sends the smaller set.
func TestMapRouteReachesRunningInstances(t *testing.T) {
	e, x, ctx := deployed(t, nil)
	ins := runningAt(t, e, ctx, 2)
	if len(ins) != 1 {
		t.Fatalf("instances = %d, want 1", len(ins))
	}
	id := ins[0].ID
	startsBefore := x.startsOf(id)
	if got := x.reported(id); !slices.Equal(got, []string{"hello.localhost"}) {
		t.Fatalf("routes at start = %q, want the default route", got)
	}

	for _, bad := range []api.RouteRequest{{Host: "blog.example.com"}, {Host: "blog.localhost", Path: "/../x"}, {Host: "api.localhost"}} {
		if _, err := e.ctrl.Routes.MapRoute(ctx, "hello", bad); api.ErrorCode(err) != api.EInvalid {
			t.Errorf("MapRoute(%+v): got %v, want invalid", bad, err)
		}
	}
	r, err := e.ctrl.Routes.MapRoute(ctx, "hello", api.RouteRequest{Host: "Blog.localhost", Path: "/api"})
	if err != nil {
		t.Fatal(err)
	}
	if r.Host != "blog.localhost" || r.Path != "/api" || r.App != "hello" {
		t.Fatalf("MapRoute = %+v", r)
	}
	if again, err := e.ctrl.Routes.MapRoute(ctx, "hello", api.RouteRequest{Host: "blog.localhost", Path: "/api"}); err != nil || again.ID != r.ID {
		t.Fatalf("mapping the same route again: %+v, %v; want the same route", again, err)
	}
	if _, err := e.ctrl.Apps.CreateApp(ctx, "other"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.ctrl.Routes.MapRoute(ctx, "other", api.RouteRequest{Host: "blog.localhost", Path: "/api"}); api.ErrorCode(err) != api.EConflict {
		t.Fatalf("mapping another app's route: got %v, want conflict", err)
	}
	want := []string{"blog.localhost/api", "hello.localhost"}
	eventually(t, "the running instance reports the new route", func() bool { return slices.Equal(x.reported(id), want) })
	if n := x.startsOf(id); n != startsBefore {
		t.Fatalf("instance started %d times, want %d: a route change must not restart it", n, startsBefore)
	}
	routes, err := e.ctrl.Routes.ListRoutes(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, r := range routes {
		names = append(names, r.App+" "+r.Host+r.Path)
	}
	if !slices.Equal(names, []string{"hello blog.localhost/api", "hello hello.localhost", "other other.localhost"}) {
		t.Fatalf("ListRoutes = %q", names)
	}

	if err := e.ctrl.Routes.UnmapRoute(ctx, "hello", api.RouteRequest{Host: "hello.localhost"}); err != nil {
		t.Fatal(err)
	}
	if err := e.ctrl.Routes.UnmapRoute(ctx, "hello", api.RouteRequest{Host: "hello.localhost"}); api.ErrorCode(err) != api.ENotFound {
		t.Fatalf("unmapping twice: got %v, want not found", err)
	}
	eventually(t, "the running instance drops the unmapped route", func() bool {
		return slices.Equal(x.reported(id), []string{"blog.localhost/api"})
	})
	if cmds := x.routeCommands(); len(cmds) < 2 || cmds[0].InstanceID != id {
		t.Fatalf("route commands = %+v, want at least two for %s", cmds, id)
	}
	types := eventTypes(t, e, ctx)
	if !slices.Contains(types, "route.map") || !slices.Contains(types, "route.unmap") {
		t.Errorf("events %q lack route.map / route.unmap", types)
	}
}
