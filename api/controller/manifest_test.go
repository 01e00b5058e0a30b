package controller_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/strata-paas/strata/api"
	"github.com/strata-paas/strata/api/archive"
)

// tarball is a source archive holding files (name → contents).
func tarball(t *testing.T, files map[string]string) io.Reader {
	t.Helper()
	var buf bytes.Buffer
	w, err := archive.NewWriter(&buf, 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range slices.Sorted(maps.Keys(files)) {
		if err := w.AddFile(name, []byte(files[name]), false); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return &buf
}

// manifestEnv is a running controller on SQLite with a builder whose
// droplets have web and worker, and one (vm) node.
type manifestEnv struct {
	*env
	b *fakeBuilder
}

func newManifestEnv(t *testing.T) *manifestEnv {
	st := openSQLite(t)
	srv := newServer(t)
	e := newEnv(t, srv, st, nil)
	e.run()
	b := &fakeBuilder{procs: map[string]string{"web": "./web", "worker": "./work"}}
	startBuilder(t, srv, b)
	startExecutor(t, srv, "node-1", nil)
	return &manifestEnv{env: e, b: b}
}

func (e *manifestEnv) deploy(req api.DeployRequest) (*api.DeployResult, *recorder, error) {
	rec := &recorder{}
	req.Progress = rec.add
	res, err := e.ctrl.Deploys.Deploy(e.ctx(), req)
	return res, rec, err
}

func (e *manifestEnv) detail(app string) *api.AppDetail {
	e.t.Helper()
	d, err := e.ctrl.Apps.AppDetail(e.ctx(), app)
	if err != nil {
		e.t.Fatal(err)
	}
	return d
}

func process(d *api.AppDetail, typ string) api.Process {
	for _, p := range d.Processes {
		if p.Type == typ {
			return p
		}
	}
	return api.Process{}
}

const fullManifest = `applications:
- name: other
  instances: 5
- name: shop
  instances: 2
  memory: 128M
  env: {GREETING: "from the manifest"}
  health-check-type: http
  health-check-http-endpoint: /healthz
  routes:
  - route: shop.localhost
  - route: docs.localhost/guide
  placement: {substrate: vm}
  buildpacks: [nodejs, shout]
  command: ./web --port $PORT
  processes:
  - {type: worker, instances: 1, command: ./work --queue q}
`

// TestDeployAppliesManifest: the one manifest path of `strata push` and `git
// push` applies every key of the app's entry before the release rolls out,
// says what changed, records it, and a later push without a manifest keeps
// the settings.
func TestDeployAppliesManifest(t *testing.T) {
	e := newManifestEnv(t)
	res, rec, err := e.deploy(api.DeployRequest{App: "shop", CreateApp: true, Wait: true,
		Source: tarball(t, map[string]string{"strata.yml": fullManifest, "main.go": "package main\n"})})
	if err != nil {
		t.Fatal(err)
	}
	// shop.localhost is the app's default route already.
	want := "manifest: route docs.localhost/guide, env GREETING, placement substrate=vm, instances 1 → 2, memory 256M → 128M, health check http /healthz"
	if !rec.has(api.DeployEventStatus, want) {
		t.Errorf("push output lacks %q:\n%+v", want, rec.events)
	}
	if !rec.has(api.DeployEventStatus, "manifest: worker instances 0 → 1") {
		t.Errorf("push output lacks the worker's scale:\n%+v", rec.events)
	}
	if res.Running != 2 || res.Desired != 2 {
		t.Errorf("running %d/%d, want 2/2", res.Running, res.Desired)
	}
	d := e.detail("shop")
	web, worker := process(d, "web"), process(d, "worker")
	if web.Instances != 2 || web.MemoryMB != 128 || web.HealthCheck != api.HealthHTTP || web.HealthCheckPath != "/healthz" || worker.Instances != 1 {
		t.Errorf("processes = %+v", d.Processes)
	}
	if d.Placement.String() != "substrate=vm" {
		t.Errorf("placement = %q", d.Placement.String())
	}
	if d.Release == nil || d.Release.Env["GREETING"] != "from the manifest" {
		t.Errorf("release = %+v", d.Release)
	}
	if !slices.Equal(d.URLs, []string{"http://docs.localhost:8080/guide", "http://shop.localhost:8080"}) {
		t.Errorf("urls = %v", d.URLs)
	}
	e.b.mu.Lock()
	job := e.b.jobs[len(e.b.jobs)-1]
	e.b.mu.Unlock()
	if job.Procfile != "web: ./web --port $PORT\nworker: ./work --queue q\n" {
		t.Errorf("build job Procfile = %q", job.Procfile)
	}
	// The manifest's buildpacks run in order, and the build sees the config
	// vars (ENV_DIR of classic buildpacks), the manifest's included.
	if !slices.Equal(job.Buildpacks, []string{"nodejs", "shout"}) || job.Env["GREETING"] != "from the manifest" || job.NoCache {
		t.Errorf("build job buildpacks %q env %v no-cache %v", job.Buildpacks, job.Env, job.NoCache)
	}
	evs, err := e.ctrl.Apps.Events(e.ctx(), "shop", 0)
	if err != nil {
		t.Fatal(err)
	}
	var applied []string
	for _, ev := range evs {
		if ev.Type == "manifest" {
			applied = append(applied, ev.Actor+": "+ev.Message)
			if strings.Contains(ev.Message, "from the manifest") {
				t.Errorf("event leaks a config value: %s", ev.Message)
			}
		}
	}
	// Newest first: the worker's scale came after the release.
	if len(applied) != 2 || applied[0] != "admin: strata.yml applied: worker instances 0 → 1" || !strings.HasPrefix(applied[1], "admin: strata.yml applied: route docs.localhost/guide, env GREETING") {
		t.Errorf("manifest events = %q", applied)
	}

	// The same manifest again changes nothing and says so.
	_, rec, err = e.deploy(api.DeployRequest{App: "shop", Wait: true,
		Source: tarball(t, map[string]string{"strata.yml": fullManifest, "main.go": "package main\n"})})
	if err != nil {
		t.Fatal(err)
	}
	if !rec.has(api.DeployEventStatus, "manifest strata.yml: nothing to change") {
		t.Errorf("second push output:\n%+v", rec.events)
	}
	// No manifest: the app keeps its settings. -b and --no-cache reach the
	// build.
	if _, _, err := e.deploy(api.DeployRequest{App: "shop", Wait: true, Buildpacks: []string{"go"}, NoCache: true, Source: tarball(t, map[string]string{"main.go": "package main\n"})}); err != nil {
		t.Fatal(err)
	}
	e.b.mu.Lock()
	job = e.b.jobs[len(e.b.jobs)-1]
	e.b.mu.Unlock()
	if !slices.Equal(job.Buildpacks, []string{"go"}) || !job.NoCache {
		t.Errorf("push -b go --no-cache: job buildpacks %q no-cache %v", job.Buildpacks, job.NoCache)
	}
	d = e.detail("shop")
	if process(d, "web").Instances != 2 || d.Placement.String() != "substrate=vm" || d.Release.Env["GREETING"] != "from the manifest" {
		t.Errorf("a push without a manifest reset settings: %+v %s %v", d.Processes, d.Placement.String(), d.Release.Env)
	}
	if job.Procfile != "" {
		t.Errorf("a push without a manifest sent a Procfile %q", job.Procfile)
	}
}

// TestDeployRefusesBadManifest: a manifest error fails the push naming the
// file and the line, and changes nothing — no app, build, release, route or
// setting.
func TestDeployRefusesBadManifest(t *testing.T) {
	e := newManifestEnv(t)
	if _, _, err := e.deploy(api.DeployRequest{App: "kept", CreateApp: true, Wait: true, Source: tarball(t, map[string]string{"main.go": "x"})}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.ctrl.Routes.MapRoute(e.ctx(), "kept", api.RouteRequest{Host: "taken.localhost"}); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, app string
		files     map[string]string
		code      string
		want      string
	}{
		{"unknown key", "kept", map[string]string{"strata.yml": "applications:\n- name: kept\n  instances: 3\n  colour: blue\n"}, api.EInvalid, `strata.yml: line 4: unknown key "colour"`},
		{"bad yaml", "kept", map[string]string{"manifest.yml": "applications:\n- name: kept\n  instances: [\n"}, api.EInvalid, "manifest.yml: "},
		{"bad value", "kept", map[string]string{"strata.yml": "applications:\n- name: kept\n  instances: 3\n  memory: lots\n"}, api.EInvalid, `strata.yml: line 4: size "lots" is not valid`},
		{"scale out of range", "kept", map[string]string{"strata.yml": "applications:\n- name: kept\n  env: {A: b}\n  instances: 1000\n"}, api.EInvalid, "strata.yml: line 2: instances 1000 is out of range"},
		{"bad placement", "kept", map[string]string{"strata.yml": "applications:\n- name: kept\n  placement: {substrate: mainframe}\n"}, api.EInvalid, `strata.yml: line 2: substrate "mainframe" is not known`},
		{"foreign route", "kept", map[string]string{"strata.yml": "applications:\n- name: kept\n  routes:\n  - route: kept2.localhost\n  - route: evil.example.com\n"}, api.EInvalid, `strata.yml: line 5: route host "evil.example.com" is not under the domain localhost`},
		{"route of another app", "next", map[string]string{"strata.yml": "applications:\n- name: next\n  routes:\n  - route: next.localhost\n  - route: taken.localhost\n"}, api.EConflict, "strata.yml: line 5: route taken.localhost is already mapped to another app"},
		{"unsupported", "kept", map[string]string{"strata.yml": "applications:\n- name: kept\n  no-route: true\n"}, api.EUnsupported, "strata.yml: line 2: no-route and random-route are not supported yet"},
		{"commands and a Procfile", "kept", map[string]string{"strata.yml": "applications:\n- name: kept\n  command: ./x\n", "Procfile": "web: ./y\n"}, api.EInvalid, "also has a Procfile"},
		{"worker command without web", "kept", map[string]string{"strata.yml": "applications:\n- name: kept\n  processes:\n  - {type: worker, command: ./w}\n"}, api.EInvalid, "the web process has none"},
		{"several apps, none named", "kept", map[string]string{"strata.yml": "applications:\n- name: a\n- name: b\n"}, api.EInvalid, "describes several apps (a, b) and none is named kept"},
		{"symlinked manifest", "kept", nil, api.EInvalid, "strata.yml is not a regular file"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			src := tarball(t, tc.files)
			if tc.files == nil {
				src = symlinkTarball(t, "strata.yml", "other.yml")
			}
			before := e.snapshot(tc.app)
			_, _, err := e.deploy(api.DeployRequest{App: tc.app, CreateApp: true, Wait: true, Source: src})
			if api.ErrorCode(err) != tc.code || !strings.Contains(api.ErrorMessage(err), tc.want) {
				t.Fatalf("err = %v (%s), want %s containing %q", err, api.ErrorCode(err), tc.code, tc.want)
			}
			if after := e.snapshot(tc.app); after != before {
				t.Errorf("the refused push changed the app:\nbefore %s\nafter  %s", before, after)
			}
		})
	}
}

// snapshot describes everything a manifest could change of an app.
func (e *manifestEnv) snapshot(app string) string {
	d, err := e.ctrl.Apps.AppDetail(e.ctx(), app)
	if api.ErrorCode(err) == api.ENotFound {
		return "no app"
	}
	if err != nil {
		e.t.Fatal(err)
	}
	rels, _ := e.ctrl.Apps.Releases(e.ctx(), app)
	routes, _ := e.ctrl.Routes.ListRoutes(e.ctx())
	var rs []string
	for _, r := range routes {
		rs = append(rs, r.App+" "+r.Host+r.Path)
	}
	e.b.mu.Lock()
	builds := len(e.b.builds)
	e.b.mu.Unlock()
	var env map[string]string
	if d.Release != nil {
		env = d.Release.Env
	}
	return strings.Join([]string{
		d.Placement.String(), strings.Join(rs, ","), fmt.Sprint(len(rels)), fmt.Sprint(builds), fmt.Sprint(env), fmt.Sprintf("%+v", d.Processes),
	}, " | ")
}

func symlinkTarball(t *testing.T, name, target string) io.Reader {
	t.Helper()
	dir := t.TempDir()
	if err := os.Symlink(target, filepath.Join(dir, name)); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := archive.Pack(context.Background(), &buf, dir, archive.PackOptions{}); err != nil {
		t.Fatal(err)
	}
	return &buf
}

// TestDeployManifestPlacementNoNodeMatches: a placement no node satisfies
// leaves the app unplaceable with the reason — never running elsewhere —
// and the push fails at once rather than waiting.
func TestDeployManifestPlacementNoNodeMatches(t *testing.T) {
	e := newManifestEnv(t)
	_, rec, err := e.deploy(api.DeployRequest{App: "metalonly", CreateApp: true, Wait: true,
		Source: tarball(t, map[string]string{"strata.yml": "applications:\n- name: metalonly\n  placement: {substrate: metal}\n"})})
	if api.ErrorCode(err) != api.ETimeout || !strings.Contains(api.ErrorMessage(err), "no node matches placement substrate=metal") {
		t.Fatalf("err = %v, want the placement named", err)
	}
	if !rec.has(api.DeployEventStatus, "manifest: placement substrate=metal") {
		t.Errorf("push output:\n%+v", rec.events)
	}
	d := e.detail("metalonly")
	if !strings.Contains(d.Unplaceable, "no node matches placement substrate=metal") || d.Placement.String() != "substrate=metal" {
		t.Errorf("app shows placement %q, unplaceable %q", d.Placement.String(), d.Unplaceable)
	}
	for _, in := range d.Instances {
		if in.NodeID != "" {
			t.Errorf("instance %s placed on %s despite the policy", in.ID, in.NodeID)
		}
	}
}

// TestDeployIgnoreManifest: strata push --no-manifest leaves the manifest
// in the source unapplied.
func TestDeployIgnoreManifest(t *testing.T) {
	e := newManifestEnv(t)
	_, _, err := e.deploy(api.DeployRequest{App: "plain", CreateApp: true, Wait: true, IgnoreManifest: true,
		Source: tarball(t, map[string]string{"strata.yml": "applications:\n- name: plain\n  instances: 2\n  colour: blue\n"})})
	if err != nil {
		t.Fatal(err)
	}
	if n := process(e.detail("plain"), "web").Instances; n != 1 {
		t.Errorf("web instances = %d, want the default 1", n)
	}
}

// An image deploy makes a release without a build: its start commands carry
// the image and run in a container (the only isolation that runs images),
// on the node that offers one; the image's own command runs (empty
// Command). An image file is stored as a blob and sent as ImageBlob.
func TestDeployImage(t *testing.T) {
	srv := newServer(t)
	e := newEnv(t, srv, nil, nil)
	e.run()
	plain := startExecutor(t, srv, "process-only", nil)
	docker := startExecutor(t, srv, "with-docker", func(x *fakeExecutor) {
		x.isolations = []api.Isolation{api.IsolationProcess, api.IsolationContainer}
	})
	ctx := e.ctx()
	res, err := e.ctrl.Deploys.Deploy(ctx, api.DeployRequest{App: "img", Image: "strata/stack:bookworm", CreateApp: true, Wait: true})
	if err != nil {
		t.Fatal(err)
	}
	if res.Build != nil || res.Release.Image != "strata/stack:bookworm" || res.Release.DropletBlob != "" || res.Release.Processes[api.ProcessWeb] != "" {
		t.Errorf("release %+v build %+v", res.Release, res.Build)
	}
	starts, _, _ := docker.snapshot()
	if len(starts) != 1 || starts[0].Image != "strata/stack:bookworm" || starts[0].Isolation != api.IsolationContainer || starts[0].Command != "" {
		t.Fatalf("starts on the docker node: %+v", starts)
	}
	if s, _, _ := plain.snapshot(); len(s) != 0 {
		t.Errorf("an image instance went to a node without containers: %+v", s)
	}

	res, err = e.ctrl.Deploys.Deploy(ctx, api.DeployRequest{App: "img", ImageFile: true, Source: strings.NewReader("a docker save tarball"), Wait: true})
	if err != nil {
		t.Fatal(err)
	}
	if !res.Release.ImageBlob.Valid() || res.Release.Image != "" || res.Release.Version != 2 {
		t.Errorf("image file release %+v", res.Release)
	}
	// The manifest's docker: key deploys its image; the source is not built.
	res, err = e.ctrl.Deploys.Deploy(ctx, api.DeployRequest{App: "img", Wait: true,
		Source: tarball(t, map[string]string{"strata.yml": "applications:\n- name: img\n  docker: {image: \"registry.example/app:2\"}\n  env: {MODE: image}\n"})})
	if err != nil {
		t.Fatal(err)
	}
	if res.Release.Image != "registry.example/app:2" || res.Release.Env["MODE"] != "image" || res.Release.Version != 4 {
		t.Errorf("manifest image release %+v", res.Release)
	}
	if d, err := e.ctrl.Apps.AppDetail(ctx, "img"); err != nil || d.LastBuild != nil {
		t.Errorf("a docker: manifest made a build: %+v %v", d.LastBuild, err)
	}
	if _, err := e.ctrl.Deploys.Deploy(ctx, api.DeployRequest{App: "img", Source: tarball(t, map[string]string{"strata.yml": "applications:\n- name: img\n  docker: {image: \"bad image\"}\n"})}); api.ErrorCode(err) != api.EInvalid || !strings.Contains(err.Error(), "strata.yml: line 2") {
		t.Errorf("a bad docker image in the manifest: %v", err)
	}
	// Rollback goes back to the reference.
	rel, err := e.ctrl.Apps.Rollback(ctx, "img", 1)
	if err != nil || rel.Image != "strata/stack:bookworm" || rel.Version != 5 {
		t.Errorf("rollback: %+v %v", rel, err)
	}
	for _, bad := range []api.DeployRequest{
		{App: "img", Image: "bad image"},
		{App: "img", Image: "-x"},
		{App: "img", Image: "a", ImageFile: true, Source: strings.NewReader("x")},
		{App: "img", Image: "a", Buildpacks: []string{"go"}},
	} {
		if _, err := e.ctrl.Deploys.Deploy(ctx, bad); api.ErrorCode(err) != api.EInvalid {
			t.Errorf("Deploy(%+v) = %v, want invalid", bad, err)
		}
	}
	// A task of an image app runs the image in a container, on the node
	// that offers one.
	exit, err := e.ctrl.Tasks.RunTask(ctx, "img", api.TaskRequest{Command: "echo"}, func(api.TaskEvent) error { return nil })
	if err != nil || exit.ExitCode == nil || *exit.ExitCode != 0 {
		t.Fatalf("task of an image app: %+v, %v", exit, err)
	}
	docker.mu.Lock()
	runs := slices.Clone(docker.runs)
	docker.mu.Unlock()
	if len(runs) != 1 || runs[0].Image != "strata/stack:bookworm" || runs[0].Isolation != api.IsolationContainer || runs[0].Command != "echo" || !runs[0].Task {
		t.Errorf("task specs on the docker node: %+v", runs)
	}
	plain.mu.Lock()
	if len(plain.runs) != 0 {
		t.Errorf("an image task went to a node without containers: %+v", plain.runs)
	}
	plain.mu.Unlock()
}
