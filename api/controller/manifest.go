package controller

import (
	"context"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"

	"github.com/strata-paas/strata/api"
	"github.com/strata-paas/strata/api/archive"
	"github.com/strata-paas/strata/manifest"
)

// A pushed source may carry a manifest (strata.yml, else manifest.yml; see
// docs/cli.md, "Manifest"). Deploy applies it here for `strata push` and
// `git push` alike: readManifest finds it in the stored source,
// planManifest validates every value without changing anything, and
// applyBefore / applyAfter apply the plan around the build.

// manifestPlan is a manifest resolved for one app: every value checked,
// nothing applied yet.
type manifestPlan struct {
	file   string // e.g. "strata.yml"
	app    manifest.App
	routes []api.RouteRequest
	// buildpacks the manifest names, in order (empty: detection).
	buildpacks []string
	image      string // docker: {image: …}: deploy it instead of building
	env        map[string]string
	place      *api.PlacementPolicy
	web        *api.ScaleRequest       // nil: the manifest scales nothing of web
	health     *api.HealthCheckRequest // of web
	procs      []procPlan              // applied once the release has the types
	procfile   string                  // the manifest's start commands as a Procfile ("" for none)
	warnings   []string
}

// procPlan is one entry of an application's processes.
type procPlan struct {
	line   int
	scale  *api.ScaleRequest
	health *api.HealthCheckRequest
}

// sourceManifest is what readManifest finds at the root of a source.
type sourceManifest struct {
	file        string
	data        []byte
	hasProcfile bool
}

// putSource stores a pushed source and, with scan, finds the manifest at its
// root (the first of manifest.Names there; nil when it has none) while the
// source streams into the blob store, so the archive is read once.
func (s *Deploys) putSource(ctx context.Context, src io.Reader, scan bool) (api.BlobRef, *sourceManifest, error) {
	if !scan {
		ref, err := s.blobs.Put(ctx, src)
		return ref, nil, err
	}
	pr, pw := io.Pipe()
	type scanned struct {
		m   *sourceManifest
		err error
	}
	done := make(chan scanned, 1)
	go func() {
		m, err := findManifest(ctx, pr)
		_, _ = io.Copy(io.Discard, pr) // the rest of the upload still flows into the store
		done <- scanned{m, err}
	}()
	ref, err := s.blobs.Put(ctx, io.TeeReader(src, pw))
	pw.CloseWithError(err) // nil: the scan sees the end of the source
	found := <-done
	if err != nil {
		return ref, nil, err
	}
	return ref, found.m, found.err
}

// findManifest reads a source archive for putSource.
func findManifest(ctx context.Context, r io.Reader) (*sourceManifest, error) {
	found, err := archive.RootFiles(ctx, r, append(slices.Clone(manifest.Names), "Procfile"), manifest.MaxBytes, archive.DefaultLimits())
	if api.ErrorCode(err) == api.EInvalid {
		// The builder refuses the same archive with the same reason and
		// records it as the build's failure, as for any bad source.
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	_, procfile := found["Procfile"]
	for _, name := range manifest.Names {
		f, ok := found[name]
		if !ok {
			continue
		}
		if !f.Regular {
			return nil, api.Errorf(api.EInvalid, "%s is not a regular file (a symlink or directory) — commit the manifest itself", name)
		}
		if f.Size > manifest.MaxBytes {
			return nil, api.Errorf(api.EInvalid, "%s is larger than %d bytes — keep it short", name, manifest.MaxBytes)
		}
		return &sourceManifest{file: name, data: f.Data, hasProcfile: procfile}, nil
	}
	return nil, nil
}

// planManifest parses a manifest and checks everything it asks of the app
// named appName: the application of that name, else the only one. domain
// completes route hosts without one.
func planManifest(src *sourceManifest, appName string, domains []string) (*manifestPlan, error) {
	fail := func(err error) error { return manifestErr(src.file, 0, err) }
	lineErr := func(line int, err error) error { return manifestErr(src.file, line, err) }
	m, err := manifest.Parse(src.data)
	if err != nil {
		return nil, fail(err)
	}
	var a *manifest.App
	for i := range m.Applications {
		if m.Applications[i].Name == appName {
			a = &m.Applications[i]
		}
	}
	p := &manifestPlan{file: src.file}
	if a == nil {
		if len(m.Applications) > 1 {
			var names []string
			for _, x := range m.Applications {
				names = append(names, x.Name)
			}
			return nil, fail(api.Errorf(api.EInvalid, "describes several apps (%s) and none is named %s — add an application named %s", strings.Join(names, ", "), appName, appName))
		}
		a = &m.Applications[0]
		p.warnings = append(p.warnings, fmt.Sprintf("line %d: the manifest's only application is named %s; its settings are applied to %s", a.Line, a.Name, appName))
	}
	p.app = *a
	if a.NoRoute || a.RandomRoute {
		return nil, lineErr(a.Line, api.Errorf(api.EUnsupported, "no-route and random-route are not supported yet — remove them"))
	}
	if a.Stack != "" || a.Path != "" {
		p.warnings = append(p.warnings, fmt.Sprintf("line %d: stack and path are ignored — Strata picks the stack, and pushes the directory given", a.Line))
	}
	p.buildpacks = append([]string{}, a.Buildpacks...)
	if a.Buildpack != "" {
		p.buildpacks = append(p.buildpacks, a.Buildpack)
	}
	if err := validBuildpacks(p.buildpacks); err != nil {
		return nil, lineErr(a.Line, err)
	}
	if a.Docker != nil {
		if err := validImageRef(a.Docker.Image); err != nil {
			return nil, lineErr(a.Line, err)
		}
		if len(p.buildpacks) > 0 || len(a.Processes) > 0 {
			return nil, lineErr(a.Line, api.Errorf(api.EInvalid, "docker: runs an image — drop buildpacks and processes"))
		}
		p.image = a.Docker.Image
	}
	for _, r := range a.Routes {
		req, err := api.ParseRouteIn(r.Route, domains)
		if err != nil {
			return nil, lineErr(r.Line, err)
		}
		p.routes = append(p.routes, req)
	}
	if len(p.routes) > api.MaxRoutesPerApp {
		return nil, lineErr(a.Line, api.Errorf(api.EInvalid, "%d routes are more than an app may have (%d) — map fewer", len(p.routes), api.MaxRoutesPerApp))
	}
	if len(a.Env) > 0 {
		if err := api.ValidateEnv(a.Env); err != nil {
			return nil, lineErr(a.Line, err)
		}
		p.env = maps.Clone(a.Env)
	}
	if a.Placement != nil {
		pl := &api.PlacementPolicy{Substrate: api.Substrate(a.Placement.Substrate), Isolation: api.Isolation(a.Placement.Isolation), Labels: a.Placement.Labels}
		if err := pl.Validate(); err != nil {
			return nil, lineErr(a.Line, fmt.Errorf("placement: %w", err))
		}
		p.place = pl
	}
	p.web = scaleRequest(api.ProcessWeb, a.Instances, a.Memory, a.DiskQuota)
	if a.ScaleToZero != nil {
		if p.web == nil {
			p.web = &api.ScaleRequest{Process: api.ProcessWeb}
		}
		p.web.ScaleToZero = &a.ScaleToZero.Seconds
	}
	if p.web != nil {
		if err := validateScale(*p.web); err != nil {
			return nil, lineErr(a.Line, err)
		}
	}
	if p.health = healthRequest(api.ProcessWeb, a.HealthCheck, a.HealthPath, a.Timeout, a.Interval); p.health != nil {
		if err := validateHealthCheck(*p.health); err != nil {
			return nil, lineErr(a.Line, err)
		}
	}
	for _, pr := range a.Processes {
		if err := validateProcessType(pr.Type); err != nil {
			return nil, lineErr(pr.Line, err)
		}
		pp := procPlan{line: pr.Line, scale: scaleRequest(pr.Type, pr.Instances, pr.Memory, pr.DiskQuota),
			health: healthRequest(pr.Type, pr.HealthCheck, pr.HealthPath, pr.Timeout, pr.Interval)}
		if pp.scale != nil {
			if err := validateScale(*pp.scale); err != nil {
				return nil, lineErr(pr.Line, err)
			}
		}
		if pp.health != nil {
			if err := validateHealthCheck(*pp.health); err != nil {
				return nil, lineErr(pr.Line, err)
			}
		}
		p.procs = append(p.procs, pp)
	}
	if p.procfile, err = procfileFor(a, src.hasProcfile); err != nil {
		return nil, fail(err)
	}
	return p, nil
}

// procfileFor returns the Procfile that carries the manifest's start
// commands ("" when it sets none).
func procfileFor(a *manifest.App, hasProcfile bool) (string, error) {
	lines := map[string]string{}
	if a.Command != "" {
		lines[api.ProcessWeb] = a.Command
	}
	for _, p := range a.Processes {
		if p.Command != "" {
			lines[p.Type] = p.Command
		}
	}
	if len(lines) == 0 {
		return "", nil
	}
	if hasProcfile {
		return "", api.Errorf(api.EInvalid, "line %d: the manifest sets start commands but the app also has a Procfile — keep the commands in one place", a.Line)
	}
	if _, ok := lines[api.ProcessWeb]; !ok {
		return "", api.Errorf(api.EInvalid, "line %d: processes have commands but the web process has none — add command: for web, or write a Procfile", a.Line)
	}
	types := slices.Sorted(maps.Keys(lines))
	var b strings.Builder
	for _, t := range types {
		if strings.ContainsAny(lines[t], "\r\n\x00") {
			return "", api.Errorf(api.EInvalid, "line %d: the command of %s spans several lines — write it on one line", a.Line, t)
		}
		fmt.Fprintf(&b, "%s: %s\n", t, lines[t])
	}
	return b.String(), nil
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
		req.Type = api.DefaultHealthCheck(typ)
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

// applyBefore applies what the push's release must already carry: routes,
// env (a config release of the current droplet when it changes, as `strata
// env set` makes), placement, and the web process's scale and health check.
// It returns what changed, in words; values of config vars are never named.
// A failure unmaps the routes this call mapped.
func (s *Deploys) applyBefore(ctx context.Context, app *api.App, p *manifestPlan) (changes []string, err error) {
	have, err := s.store.Routes(ctx, app.ID)
	if err != nil {
		return nil, err
	}
	var mapped []api.RouteRequest
	defer func() {
		if err != nil {
			for _, r := range mapped {
				_ = s.routes.UnmapRoute(context.WithoutCancel(ctx), app.Name, r)
			}
		}
	}()
	for i, r := range p.routes {
		if slices.ContainsFunc(have, func(h *api.Route) bool { return h.Host == r.Host && h.Path == r.Path }) {
			continue
		}
		if _, err := s.routes.MapRoute(ctx, app.Name, r); err != nil {
			return nil, p.lineErr(p.app.Routes[i].Line, err)
		}
		mapped = append(mapped, r)
		changes = append(changes, "route "+r.String())
	}
	if len(p.env) > 0 {
		cur, err := s.apps.Env(ctx, app.Name)
		if err != nil {
			return nil, err
		}
		if set := changedVars(cur, p.env); len(set) > 0 {
			if _, err := s.apps.ChangeEnv(ctx, app.Name, api.EnvChange{Set: p.env}); err != nil {
				return nil, p.lineErr(p.app.Line, err)
			}
			changes = append(changes, "env "+strings.Join(set, ", "))
		}
	}
	if p.place != nil {
		old, err := s.placement.AppPlacement(ctx, app.Name)
		if err != nil {
			return nil, err
		}
		if old.String() != p.place.String() {
			if err := s.placement.SetAppPlacement(ctx, app.Name, *p.place); err != nil {
				return nil, p.lineErr(p.app.Line, err)
			}
			changes = append(changes, "placement "+p.place.String())
		}
	}
	ch, err := s.applyProcess(ctx, app, p, p.app.Line, p.web, p.health)
	return append(changes, ch...), err
}

// applyAfter scales the other process types and sets their health checks:
// they exist once the push's release has them.
func (s *Deploys) applyAfter(ctx context.Context, app *api.App, p *manifestPlan) ([]string, error) {
	var changes []string
	for _, pr := range p.procs {
		ch, err := s.applyProcess(ctx, app, p, pr.line, pr.scale, pr.health)
		if err != nil {
			return changes, err
		}
		changes = append(changes, ch...)
	}
	return changes, nil
}

// applyProcess applies the scale and health check of one process type,
// saying what changed ("instances 1 → 2"; other types than web are named).
func (s *Deploys) applyProcess(ctx context.Context, app *api.App, p *manifestPlan, line int, scale *api.ScaleRequest, health *api.HealthCheckRequest) ([]string, error) {
	if scale == nil && health == nil {
		return nil, nil
	}
	typ := ""
	if scale != nil {
		typ = scale.Process
	} else {
		typ = health.Process
	}
	procs, err := s.store.Processes(ctx, app.ID)
	if err != nil {
		return nil, err
	}
	var old api.Process
	if i := slices.IndexFunc(procs, func(p api.Process) bool { return p.Type == typ }); i >= 0 {
		old = procs[i]
	}
	prefix := ""
	if typ != api.ProcessWeb {
		prefix = typ + " "
	}
	var changes []string
	if scale != nil {
		res, err := s.apps.Scale(ctx, app.Name, *scale)
		if err != nil {
			return nil, p.lineErr(line, err)
		}
		now := res.Process
		if now.Instances != old.Instances {
			changes = append(changes, fmt.Sprintf("%sinstances %d → %d", prefix, old.Instances, now.Instances))
		}
		if now.MemoryMB != old.MemoryMB {
			changes = append(changes, fmt.Sprintf("%smemory %s → %s", prefix, mb(old.MemoryMB), mb(now.MemoryMB)))
		}
		if now.DiskMB != old.DiskMB {
			changes = append(changes, fmt.Sprintf("%sdisk %s → %s", prefix, mb(old.DiskMB), mb(now.DiskMB)))
		}
		if now.ScaleToZero != old.ScaleToZero {
			changes = append(changes, fmt.Sprintf("scale-to-zero %s → %s", api.IdleTime(old.ScaleToZero), api.IdleTime(now.ScaleToZero)))
		}
	}
	if health != nil {
		now, err := s.apps.SetHealthCheck(ctx, app.Name, *health)
		if err != nil {
			return nil, p.lineErr(line, err)
		}
		if now.HealthCheck != old.HealthCheck || now.HealthCheckPath != old.HealthCheckPath ||
			now.HealthCheckTimeout != old.HealthCheckTimeout || now.HealthCheckInterval != old.HealthCheckInterval {
			changes = append(changes, strings.TrimSpace(fmt.Sprintf("%shealth check %s %s", prefix, now.HealthCheck, now.HealthCheckPath)))
		}
	}
	return changes, nil
}

// lineErr prefixes err's message with the manifest file and a line.
func (p *manifestPlan) lineErr(line int, err error) error { return manifestErr(p.file, line, err) }

// manifestErr prefixes err's message with the manifest file and, when not
// 0, a line, keeping its code.
func manifestErr(file string, line int, err error) error {
	msg := api.ErrorMessage(err)
	if line > 0 {
		msg = fmt.Sprintf("line %d: %s", line, msg)
	}
	return &api.Error{Code: api.ErrorCode(err), Message: file + ": " + msg}
}

// describeChanges is the push's status line about what a manifest changed.
func describeChanges(file string, changes []string) string {
	if len(changes) == 0 {
		return "manifest " + file + ": nothing to change"
	}
	return "manifest: " + strings.Join(changes, ", ")
}

// manifestApplied tells the pusher what the manifest changed and records it
// as an event of the pusher.
func (s *Deploys) manifestApplied(ctx context.Context, app *api.App, p *manifestPlan, changes []string, progress func(api.DeployEvent)) {
	progress(api.DeployEvent{Type: api.DeployEventStatus, Line: describeChanges(p.file, changes)})
	if len(changes) > 0 {
		s.audit.record(ctx, app, "manifest", "%s applied: %s", p.file, strings.Join(changes, ", "))
	}
}

// MaxBuildpacks is how many buildpacks one build may name.
const MaxBuildpacks = 8

// validBuildpacks checks buildpack names as users give them (the builder
// knows which exist): at most MaxBuildpacks, each a short printable name.
func validBuildpacks(names []string) error {
	if len(names) > MaxBuildpacks {
		return api.Errorf(api.EInvalid, "%d buildpacks are more than a build may run (%d)", len(names), MaxBuildpacks)
	}
	for _, n := range names {
		if n == "" || len(n) > 200 || strings.IndexFunc(n, func(r rune) bool { return r < ' ' || r == 0x7f }) >= 0 {
			return api.Errorf(api.EInvalid, "buildpack name %q is empty, too long or holds control characters — name a buildpack of strata buildpacks or a built-in one (go, nodejs, python, static, procfile)", clip(n))
		}
	}
	return nil
}
