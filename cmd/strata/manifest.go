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
	procfile []byte // generated Procfile to add to the upload (nil: none)
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

// unsupported refuses manifest settings Strata cannot honour yet, and warns
// about ones it ignores.
func (m *Main) checkPlan(ctx context.Context, c *client.Client, p *pushPlan) error {
	a := p.app
	for _, h := range append([]manifest.HealthCheckType{a.HealthCheck}, procHealth(a)...) {
		if h.Type != "" && h.Type != "port" && h.Type != "process" {
			return api.Errorf(api.EUnsupported, "line %d: health-check-type %s is not supported yet — remove it to use the default (port for web, process for others)", h.Line, h.Type)
		}
		if h.Type == "process" {
			fmt.Fprintf(m.Stderr, "warning: line %d: health-check-type process is ignored — web uses the port check, other processes the process check\n", h.Line)
		}
	}
	if len(a.Routes) > 0 {
		info, err := c.Info(ctx)
		if err != nil {
			return err
		}
		want := a.Name + "." + info.Domain
		for _, r := range a.Routes {
			if r.Route != want {
				return api.Errorf(api.EUnsupported, "line %d: route %s is not supported yet — only the default route %s works today", r.Line, r.Route, want)
			}
		}
	}
	if a.NoRoute || a.RandomRoute {
		return api.Errorf(api.EUnsupported, "line %d: no-route and random-route are not supported yet — remove them", a.Line)
	}
	if len(a.Buildpacks) > 0 || a.Buildpack != "" || a.Stack != "" || a.Path != "" || a.Timeout != nil {
		fmt.Fprintf(m.Stderr, "warning: line %d: buildpacks, stack, path and timeout are ignored — Strata detects the buildpack itself\n", a.Line)
	}
	if _, err := placementOf(a); err != nil {
		return err
	}
	return nil
}

func procHealth(a *manifest.App) []manifest.HealthCheckType {
	var out []manifest.HealthCheckType
	for _, p := range a.Processes {
		out = append(out, p.HealthCheck)
	}
	return out
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
	return nil
}

// applyAfter scales the other process types, which exist once the push's
// release has them.
func (m *Main) applyAfter(ctx context.Context, c *client.Client, p *pushPlan) error {
	for _, pr := range p.app.Processes {
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
