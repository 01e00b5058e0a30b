package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/strata-paas/strata/api"
	"github.com/strata-paas/strata/api/client"
	"github.com/strata-paas/strata/manifest"
)

// pushPlan is what a manifest adds to a push.
type pushPlan struct {
	app      *manifest.App
	procfile []byte             // generated Procfile to add to the upload (nil: none)
	routes   []api.RouteRequest // the manifest's routes, parsed by checkPlan
}

// loadPlan reads the manifest (path, or auto-detected in dir unless path is
// "-none-") and returns the app to push and its plan; a nil plan means no
// manifest. name is the app named on the command line ("" for none).
func loadPlan(path, dir, name string) (string, *pushPlan, error) {
	if path == "" {
		path = manifest.Find(dir)
	}
	if path == "" {
		return name, nil, nil
	}
	m, err := manifest.Load(path)
	if err != nil {
		return "", nil, err
	}
	var app *manifest.App
	switch {
	case name != "":
		for i := range m.Applications {
			if m.Applications[i].Name == name {
				app = &m.Applications[i]
			}
		}
		if app == nil {
			return "", nil, api.Errorf(api.EInvalid, "%s has no application named %s — add it or push without a name", filepath.Base(path), name)
		}
	case len(m.Applications) == 1:
		app = &m.Applications[0]
	default:
		var names []string
		for _, a := range m.Applications {
			names = append(names, a.Name)
		}
		return "", nil, api.Errorf(api.EInvalid, "%s describes several apps (%s) — name the one to push: strata push NAME", filepath.Base(path), strings.Join(names, ", "))
	}
	plan := &pushPlan{app: app}
	if plan.procfile, err = procfileFor(app, dir); err != nil {
		return "", nil, err
	}
	return app.Name, plan, nil
}

// procfileFor returns the Procfile that carries the manifest's start
// commands, or nil when the manifest sets none.
func procfileFor(a *manifest.App, dir string) ([]byte, error) {
	lines := map[string]string{}
	if a.Command != "" {
		lines["web"] = a.Command
	}
	for _, p := range a.Processes {
		if p.Command != "" {
			lines[p.Type] = p.Command
		}
	}
	if len(lines) == 0 {
		return nil, nil
	}
	if _, err := os.Lstat(filepath.Join(dir, "Procfile")); err == nil {
		return nil, api.Errorf(api.EInvalid, "line %d: the manifest sets start commands but the app also has a Procfile — keep the commands in one place", a.Line)
	}
	if _, ok := lines["web"]; !ok {
		return nil, api.Errorf(api.EInvalid, "line %d: processes have commands but the web process has none — add command: for web, or write a Procfile", a.Line)
	}
	types := make([]string, 0, len(lines))
	for t := range lines {
		types = append(types, t)
	}
	sort.Strings(types)
	var b strings.Builder
	for _, t := range types {
		fmt.Fprintf(&b, "%s: %s\n", t, lines[t])
	}
	return []byte(b.String()), nil
}

// checkPlan parses the manifest's routes, refuses settings Strata cannot honour yet, and warns
// about ones it ignores.
func (m *Main) checkPlan(ctx context.Context, c *client.Client, p *pushPlan) error {
	a := p.app
	if len(a.Routes) > 0 {
		info, err := c.Info(ctx)
		if err != nil {
			return err
		}
		for _, r := range a.Routes {
			req, err := api.ParseRoute(r.Route, info.Domain)
			if err != nil {
				return fmt.Errorf("line %d: %w", r.Line, err)
			}
			p.routes = append(p.routes, req)
		}
	}
	if a.NoRoute || a.RandomRoute {
		return api.Errorf(api.EUnsupported, "line %d: no-route and random-route are not supported yet — remove them", a.Line)
	}
	if len(a.Buildpacks) > 0 || a.Buildpack != "" || a.Stack != "" || a.Path != "" {
		fmt.Fprintf(m.Stderr, "warning: line %d: buildpacks, stack and path are ignored — Strata detects the buildpack itself\n", a.Line)
	}
	if _, err := placementOf(a); err != nil {
		return err
	}
	return nil
}

// healthRequest returns the health check of one process type the manifest
// asks for (nil when it sets none): health-check-type, its http endpoint
// (default /), timeout (the start-up timeout) and health-check-interval.
func healthRequest(typ string, h manifest.HealthCheckType, path string, timeout, interval *int) *api.HealthCheckRequest {
	if h.Type == "" && timeout == nil && interval == nil {
		return nil
	}
	req := &api.HealthCheckRequest{Process: typ, Type: h.Type, Path: path}
	if req.Type == "" {
		req.Type = api.HealthProcess
		if typ == "web" {
			req.Type = api.HealthPort
		}
	}
	if req.Type == api.HealthHTTP && req.Path == "" {
		req.Path = "/"
	}
	if timeout != nil {
		req.Timeout = *timeout
	}
	if interval != nil {
		req.Interval = *interval
	}
	return req
}

// scaleRequest returns the scale of one process type the manifest asks for
// (nil when it asks for nothing).
func scaleRequest(typ string, instances *int, memory, disk manifest.Size) *api.ScaleRequest {
	req := api.ScaleRequest{Process: typ, Instances: instances}
	if memory.MB > 0 {
		req.MemoryMB = &memory.MB
	}
	if disk.MB > 0 {
		req.DiskMB = &disk.MB
	}
	if req.Instances == nil && req.MemoryMB == nil && req.DiskMB == nil {
		return nil
	}
	return &req
}

// applyBefore creates the app if needed and applies env and the web
// formation, so the push's release already carries them. Unchanged values
// make no new release.
func (m *Main) applyBefore(ctx context.Context, c *client.Client, p *pushPlan) error {
	a := p.app
	if _, err := c.CreateApp(ctx, a.Name); err != nil && api.ErrorCode(err) != api.EConflict {
		return err
	}
	for i, req := range p.routes {
		if _, err := c.MapRoute(ctx, a.Name, req); err != nil {
			return fmt.Errorf("line %d: %w", a.Routes[i].Line, err)
		}
	}
	if len(a.Env) > 0 {
		if _, err := c.ChangeEnv(ctx, a.Name, api.EnvChange{Set: a.Env}); err != nil {
			return err
		}
	}
	if p, _ := placementOf(a); p != nil {
		if err := c.SetAppPlacement(ctx, a.Name, *p); err != nil {
			return err
		}
		fmt.Fprintf(m.Stdout, "Placement: %s\n", p.String())
	}
	if req := scaleRequest("web", a.Instances, a.Memory, a.DiskQuota); req != nil {
		if _, err := c.Scale(ctx, a.Name, *req); err != nil {
			return err
		}
	}
	if req := healthRequest("web", a.HealthCheck, a.HealthPath, a.Timeout, a.Interval); req != nil {
		if _, err := c.SetHealthCheck(ctx, a.Name, *req); err != nil {
			return fmt.Errorf("line %d: %w", a.Line, err)
		}
	}
	return nil
}

// applyAfter sets the health checks of the other process types and scales
// them, which exist once the push's release has them (a type new in this
// push runs its first instances with the default check).
func (m *Main) applyAfter(ctx context.Context, c *client.Client, p *pushPlan) error {
	for _, pr := range p.app.Processes {
		if h := healthRequest(pr.Type, pr.HealthCheck, pr.HealthPath, pr.Timeout, pr.Interval); h != nil {
			if _, err := c.SetHealthCheck(ctx, p.app.Name, *h); err != nil {
				return fmt.Errorf("line %d: %w", pr.Line, err)
			}
		}
		req := scaleRequest(pr.Type, pr.Instances, pr.Memory, pr.DiskQuota)
		if req == nil {
			continue
		}
		res, err := c.Scale(ctx, p.app.Name, *req)
		if err != nil {
			return fmt.Errorf("line %d: %w", pr.Line, err)
		}
		fmt.Fprintf(m.Stdout, "Scaled %s to %d×\n", pr.Type, res.Process.Instances)
	}
	return nil
}

// placementOf returns the placement policy the manifest sets (nil when it
// has no placement key), validated.
func placementOf(a *manifest.App) (*api.PlacementPolicy, error) {
	if a.Placement == nil {
		return nil, nil
	}
	p := &api.PlacementPolicy{
		Substrate: api.Substrate(a.Placement.Substrate), Isolation: api.Isolation(a.Placement.Isolation), Labels: a.Placement.Labels,
	}
	if err := p.Validate(); err != nil {
		return nil, fmt.Errorf("line %d: placement: %w", a.Line, err)
	}
	return p, nil
}
