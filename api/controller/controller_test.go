package controller_test

import (
	"context"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/strata-paas/strata/api"
	"github.com/strata-paas/strata/api/controller"
)

func source() *strings.Reader { return strings.NewReader("fake tarball") }

func TestAuthenticate(t *testing.T) {
	e := newEnv(t, nil, nil, nil)
	tests := []struct {
		name, token, wantCode string
	}{
		{"bootstrap token", e.token, ""},
		{"empty", "", api.EUnauthorized},
		{"wrong", strings.Repeat("0", 64), api.EUnauthorized},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := e.ctrl.Tenancy.Authenticate(context.Background(), tt.token)
			if got := api.ErrorCode(err); got != tt.wantCode {
				t.Fatalf("code = %q, want %q (err %v)", got, tt.wantCode, err)
			}
			if err == nil && (p.Name != "admin" || !p.Admin) {
				t.Errorf("principal = %+v, want admin", p)
			}
		})
	}
	// A second bootstrap keeps the existing admin and creates no token.
	tok, created, err := e.ctrl.Tenancy.Bootstrap(context.Background(), "admin")
	if err != nil || created || tok != "" {
		t.Errorf("second Bootstrap = %q, %v, %v; want \"\", false, nil", tok, created, err)
	}
}

func TestCreateApp(t *testing.T) {
	e := newEnv(t, nil, nil, nil)
	ctx := e.ctx()
	if _, err := e.ctrl.Apps.CreateApp(ctx, "hello"); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct{ name, code string }{
		{"hello", api.EConflict}, {"Bad_Name", api.EInvalid}, {"api", api.EInvalid},
	} {
		if _, err := e.ctrl.Apps.CreateApp(ctx, tt.name); api.ErrorCode(err) != tt.code {
			t.Errorf("CreateApp(%q) code = %q, want %q", tt.name, api.ErrorCode(err), tt.code)
		}
	}
	d, err := e.ctrl.Apps.AppDetail(ctx, "hello")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(d.URLs, []string{"http://hello.localhost:8080"}) {
		t.Errorf("URLs = %v", d.URLs)
	}
	if len(d.Processes) != 1 || d.Processes[0].Type != "web" || d.Processes[0].Instances != 1 {
		t.Errorf("formation = %+v, want web=1", d.Processes)
	}
	if _, err := e.ctrl.Apps.AppDetail(ctx, "nope"); api.ErrorCode(err) != api.ENotFound {
		t.Errorf("AppDetail(nope) code = %q, want not_found", api.ErrorCode(err))
	}
}

func TestDeployToRunning(t *testing.T) {
	srv := newServer(t)
	e := newEnv(t, srv, nil, nil)
	e.run()
	startBuilder(t, srv, &fakeBuilder{})
	// Slow enough to start that the deploy always sees it waiting.
	x := startExecutor(t, srv, "node-1", func(x *fakeExecutor) { x.runAfter = 500 * time.Millisecond })
	ctx := e.ctx()

	var rec recorder
	res, err := e.ctrl.Deploys.Deploy(ctx, api.DeployRequest{App: "hello", Source: source(), CreateApp: true, Wait: true, Progress: rec.add})
	if err != nil {
		t.Fatal(err)
	}
	if res.Release.Version != 1 || res.Running != 1 || res.Desired != 1 {
		t.Errorf("result release v%d running %d/%d, want v1 1/1", res.Release.Version, res.Running, res.Desired)
	}
	if !slices.Equal(res.URLs, []string{"http://hello.localhost:8080"}) {
		t.Errorf("URLs = %v", res.URLs)
	}
	for _, line := range []string{"-----> compiling", "-----> droplet ready"} {
		if !rec.has(api.DeployEventLog, line) {
			t.Errorf("progress lacks build line %q: %+v", line, rec.events)
		}
	}
	if !rec.has(api.DeployEventStatus, "waiting for 0/1 instances") {
		t.Errorf("progress lacks the waiting status: %+v", rec.events)
	}
	starts, _, _ := x.snapshot()
	if len(starts) != 1 {
		t.Fatalf("executor got %d starts, want 1", len(starts))
	}
	s := starts[0]
	if s.Command != "./run" || !slices.Equal(s.Routes, []string{"hello.localhost"}) || s.AppName != "hello" || !s.DropletBlob.Valid() || s.MemoryMB != api.DefaultMemoryMB {
		t.Errorf("start spec = %+v", s)
	}

	d, err := e.ctrl.Apps.AppDetail(ctx, "hello")
	if err != nil {
		t.Fatal(err)
	}
	if len(d.Instances) != 1 || d.Instances[0].State != api.InstanceRunning || d.Instances[0].NodeID != "node-1" {
		t.Errorf("instances = %+v, want one running on node-1", d.Instances)
	}
	if d.LastBuild == nil || d.LastBuild.State != api.BuildStaged || d.Release == nil || !strings.HasPrefix(d.Release.Description, "Deploy build "+d.LastBuild.ID) {
		t.Errorf("last build %+v, release %+v", d.LastBuild, d.Release)
	}
	apps, err := e.ctrl.Apps.ListApps(ctx)
	if err != nil || len(apps) != 1 || apps[0].Running != 1 || apps[0].Desired != 1 {
		t.Errorf("ListApps = %+v, %v", apps, err)
	}
	evs, _ := e.store.Events(ctx, d.ID, 20)
	var types []string
	for _, ev := range evs {
		types = append(types, ev.Type)
	}
	for _, want := range []string{"app.create", "push", "build.staged", "release"} {
		if !slices.Contains(types, want) {
			t.Errorf("events %v lack %q", types, want)
		}
	}
	var staging []string
	eventually(t, "staging lines in the log store", func() bool {
		staging = nil
		err := e.ctrl.Logs.Logs(ctx, api.LogQuery{App: "hello", Source: api.LogSourceStaging}, func(l api.LogEnvelope) error {
			staging = append(staging, l.Line)
			return nil
		})
		return err == nil && len(staging) == 3
	})
	if nodes := e.ctrl.Nodes.List(); len(nodes) != 1 || nodes[0].ID != "node-1" || nodes[0].State != "ready" {
		t.Errorf("Nodes = %+v", nodes)
	}

	// Deleting the app stops its instance.
	if err := e.ctrl.Apps.DeleteApp(ctx, "hello"); err != nil {
		t.Fatal(err)
	}
	if !x.stopped(d.Instances[0].ID) {
		t.Errorf("DeleteApp did not stop instance %s", d.Instances[0].ID)
	}
}

func TestDeployBuildFailure(t *testing.T) {
	srv := newServer(t)
	e := newEnv(t, srv, nil, nil)
	e.run()
	startBuilder(t, srv, &fakeBuilder{fail: true})
	startExecutor(t, srv, "node-1", nil)
	ctx := e.ctx()
	var rec recorder
	_, err := e.ctrl.Deploys.Deploy(ctx, api.DeployRequest{App: "hello", Source: source(), CreateApp: true, Wait: true, Progress: rec.add})
	if api.ErrorCode(err) != api.EBuildFailed || api.ErrorMessage(err) != "compile failed (exit 2)" {
		t.Fatalf("err = %v (code %q), want build_failed \"compile failed (exit 2)\"", err, api.ErrorCode(err))
	}
	if !rec.has(api.DeployEventLog, "error: compile failed") {
		t.Errorf("the last build line did not reach the pusher: %+v", rec.events)
	}
	d, err := e.ctrl.Apps.AppDetail(ctx, "hello")
	if err != nil {
		t.Fatal(err)
	}
	if d.LastBuild.State != api.BuildFailed || d.LastBuild.Failure != api.FailCompile || d.CurrentRelease != 0 {
		t.Errorf("build %+v, release %d", d.LastBuild, d.CurrentRelease)
	}
}

func TestDeployTimeoutReportsCrashReason(t *testing.T) {
	srv := newServer(t)
	// FailedStarts is out of reach so that the wait times out rather than
	// giving the release up after a few quick crashes (TestConfigChangeRollsBack).
	e := newEnv(t, srv, nil, func(c *controller.Config) { c.DeployWaitTimeout = 10 * time.Second; c.FailedStarts = 1000 })
	e.run()
	startBuilder(t, srv, &fakeBuilder{})
	x := startExecutor(t, srv, "node-1", func(x *fakeExecutor) { x.crash = "exited with status 1" })
	// The wait starts once the node is known, so it measures the crashes,
	// not a slow first heartbeat on a loaded machine.
	eventually(t, "node-1 heard from", func() bool { return len(e.ctrl.Nodes.List()) == 1 })
	_, err := e.ctrl.Deploys.Deploy(e.ctx(), api.DeployRequest{App: "hello", Source: source(), CreateApp: true, Wait: true})
	if api.ErrorCode(err) != api.ETimeout || !strings.Contains(api.ErrorMessage(err), "exited with status 1") {
		// What the controller and the fake node saw, to tell a lost reason
		// from an instance that never started.
		if d, derr := e.ctrl.Apps.AppDetail(e.ctx(), "hello"); derr == nil {
			for _, in := range d.Instances {
				t.Logf("instance %s: state %s, reason %q, node %s", in.ID, in.State, in.Reason, in.NodeID)
			}
		}
		evs, _ := e.ctrl.Apps.Events(e.ctx(), "hello", 0)
		for _, ev := range evs {
			t.Logf("event %s: %s", ev.Type, ev.Message)
		}
		starts, _, _ := x.snapshot()
		t.Logf("the fake node got %d start commands", len(starts))
		t.Fatalf("err = %v (code %q), want timeout with the crash reason", err, api.ErrorCode(err))
	}
}

func TestRollingDeploy(t *testing.T) {
	srv := newServer(t)
	e := newEnv(t, srv, nil, nil)
	e.run()
	startBuilder(t, srv, &fakeBuilder{})
	// New instances take a while to become healthy, so several converger
	// passes run while the old instance must be kept.
	x := startExecutor(t, srv, "node-1", func(x *fakeExecutor) { x.runAfter = 400 * time.Millisecond })
	ctx := e.ctx()
	first, err := e.ctrl.Deploys.Deploy(ctx, api.DeployRequest{App: "hello", Source: source(), CreateApp: true, Wait: true})
	if err != nil {
		t.Fatal(err)
	}
	starts, _, _ := x.snapshot()
	oldID := starts[0].InstanceID
	second, err := e.ctrl.Deploys.Deploy(ctx, api.DeployRequest{App: "hello", Source: source(), Wait: true})
	if err != nil {
		t.Fatal(err)
	}
	if first.Release.Version != 1 || second.Release.Version != 2 {
		t.Fatalf("releases v%d, v%d", first.Release.Version, second.Release.Version)
	}
	eventually(t, "old instance stopped", func() bool { return x.stopped(oldID) })
	_, _, timeline := x.snapshot()
	running2 := slices.IndexFunc(timeline, func(s string) bool { return strings.HasPrefix(s, "running r2 ") })
	stopOld := slices.Index(timeline, "stop "+oldID)
	if running2 < 0 || stopOld < running2 {
		t.Errorf("old instance stopped before the new one ran: %v", timeline)
	}
	eventually(t, "one instance row left", func() bool {
		ins, _ := e.store.AllInstances(ctx)
		return len(ins) == 1 && ins[0].Release == 2
	})
}

// seed writes an app with one released web instance row on node, as a
// previous controller would have left it.
func seed(t *testing.T, store controller.Store, node string) *api.Instance {
	t.Helper()
	ctx := context.Background()
	org := &api.Org{ID: "org", Name: controller.DefaultOrg}
	sp := &api.Space{ID: "space", OrgID: org.ID, Name: controller.DefaultSpace}
	app := &api.App{ID: "app-1", SpaceID: sp.ID, Name: "hello", State: api.AppStarted}
	in := &api.Instance{ID: "inst-1", AppID: app.ID, Process: "web", Index: 0, Release: 1, NodeID: node, State: api.InstanceRunning}
	for _, err := range []error{
		store.CreateOrg(ctx, org), store.CreateSpace(ctx, sp), store.CreateApp(ctx, app),
		store.SetProcess(ctx, api.Process{AppID: app.ID, Type: "web", Instances: 1, MemoryMB: 256}),
		store.CreateRoute(ctx, &api.Route{ID: "r", AppID: app.ID, Host: "hello.localhost"}),
		store.CreateRelease(ctx, &api.Release{ID: "rel-1", AppID: app.ID, DropletBlob: api.BlobRef("sha256:" + strings.Repeat("cd", 32)), Processes: map[string]string{"web": "./run"}}),
		store.CreateInstance(ctx, in),
	} {
		if err != nil {
			t.Fatal(err)
		}
	}
	return in
}

func TestRestartResendsStart(t *testing.T) {
	srv := newServer(t)
	store := openSQLite(t)
	row := seed(t, store, "node-1")
	// The node restarted too: it heartbeats with no instances.
	x := startExecutor(t, srv, "node-1", nil)
	e := newEnv(t, srv, store, nil)
	e.run()
	eventually(t, "start re-sent for the existing row", func() bool { return x.startsOf(row.ID) > 0 })
	eventually(t, "row running again", func() bool {
		in, err := store.Instance(context.Background(), row.ID)
		return err == nil && in.State == api.InstanceRunning
	})
	ins, _ := store.AllInstances(context.Background())
	if len(ins) != 1 {
		t.Errorf("%d instance rows, want the original one only", len(ins))
	}
}

// failingStore is a real store whose instance and app reads and writes fail
// while err is set: a database that went away.
type failingStore struct {
	controller.Store
	mu  sync.Mutex
	err error
}

func (s *failingStore) fail(err error) { s.mu.Lock(); s.err = err; s.mu.Unlock() }

func (s *failingStore) down() error { s.mu.Lock(); defer s.mu.Unlock(); return s.err }

func (s *failingStore) ListAllApps(ctx context.Context) ([]*api.App, error) {
	if err := s.down(); err != nil {
		return nil, err
	}
	return s.Store.ListAllApps(ctx)
}

func (s *failingStore) AllInstances(ctx context.Context) ([]*api.Instance, error) {
	if err := s.down(); err != nil {
		return nil, err
	}
	return s.Store.AllInstances(ctx)
}

func (s *failingStore) Instance(ctx context.Context, id string) (*api.Instance, error) {
	if err := s.down(); err != nil {
		return nil, err
	}
	return s.Store.Instance(ctx, id)
}

func (s *failingStore) UpdateInstance(ctx context.Context, in *api.Instance) error {
	if err := s.down(); err != nil {
		return err
	}
	return s.Store.UpdateInstance(ctx, in)
}

func (s *failingStore) DeleteInstance(ctx context.Context, id string) error {
	if err := s.down(); err != nil {
		return err
	}
	return s.Store.DeleteInstance(ctx, id)
}

func TestFreshStateGate(t *testing.T) {
	srv := newServer(t)
	store := openSQLite(t)
	seed(t, store, "node-1")
	x := startExecutor(t, srv, "node-1", nil)
	// The executor runs the seeded instance and an orphan no row knows.
	x.mu.Lock()
	x.instances["inst-1"] = api.InstanceReport{InstanceID: "inst-1", AppID: "app-1", Process: "web", Release: 1, State: api.InstanceRunning}
	x.instances["orphan"] = api.InstanceReport{InstanceID: "orphan", AppID: "app-1", Process: "web", Index: 1, Release: 1, State: api.InstanceRunning}
	x.mu.Unlock()

	down := &failingStore{Store: store}
	e := newEnv(t, srv, down, nil)
	down.fail(api.Errorf(api.EUnavailable, "database is down"))
	e.run()
	// Wait well past the gate (2×NodeTTL) while the database fails.
	gate := 2 * e.cfg.NodeTTL
	deadline := time.Now().Add(gate + 10*e.cfg.ConvergeInterval + 300*time.Millisecond)
	for time.Now().Before(deadline) {
		if _, stops, _ := x.snapshot(); len(stops) > 0 {
			t.Fatalf("stopped %v while the database was down", stops)
		}
		time.Sleep(20 * time.Millisecond)
	}
	// Once the database answers, the orphan (and only it) is stopped: the
	// test above could have failed.
	down.fail(nil)
	eventually(t, "orphan stopped", func() bool { return x.stopped("orphan") })
	if x.stopped("inst-1") {
		t.Error("the known instance was stopped")
	}
}

func TestLostNodeReschedules(t *testing.T) {
	srv := newServer(t)
	e := newEnv(t, srv, nil, nil)
	e.run()
	startBuilder(t, srv, &fakeBuilder{})
	a := startExecutor(t, srv, "node-a", nil)
	ctx := e.ctx()
	if _, err := e.ctrl.Deploys.Deploy(ctx, api.DeployRequest{App: "hello", Source: source(), CreateApp: true, Wait: true}); err != nil {
		t.Fatal(err)
	}
	b := startExecutor(t, srv, "node-b", nil)
	a.setHeartbeats(false)
	eventually(t, "instance re-placed on node-b", func() bool {
		ins, _ := e.store.AllInstances(ctx)
		return len(ins) == 1 && ins[0].NodeID == "node-b" && ins[0].State == api.InstanceRunning
	})
	starts, _, _ := b.snapshot()
	if len(starts) != 1 {
		t.Errorf("node-b got %d starts, want 1", len(starts))
	}
	// When node-a comes back with its old instance, it is told to stop it.
	old, _, _ := a.snapshot()
	a.setHeartbeats(true)
	eventually(t, "superseded instance stopped on node-a", func() bool { return a.stopped(old[0].InstanceID) })
}

func TestStuckBuildFails(t *testing.T) {
	srv := newServer(t)
	var now time.Time
	e := newEnv(t, srv, nil, func(c *controller.Config) {
		c.BuildTimeout = time.Minute
		c.Now = func() time.Time { return time.Now().Add(now.Sub(time.Time{})) }
	})
	ctx := e.ctx()
	app, err := e.ctrl.Apps.CreateApp(ctx, "hello")
	if err != nil {
		t.Fatal(err)
	}
	b := &api.Build{ID: "b1", AppID: app.ID, State: api.BuildStaging, CreatedAt: time.Now().Add(-3 * time.Minute)}
	if err := e.store.CreateBuild(ctx, b); err != nil {
		t.Fatal(err)
	}
	fresh := &api.Build{ID: "b2", AppID: app.ID, State: api.BuildPending, CreatedAt: time.Now()}
	if err := e.store.CreateBuild(ctx, fresh); err != nil {
		t.Fatal(err)
	}
	e.run()
	eventually(t, "stuck build failed", func() bool {
		got, _ := e.store.Build(ctx, "b1")
		return got.State == api.BuildFailed && got.Failure == api.FailLostBuilder
	})
	if got, _ := e.store.Build(ctx, "b2"); got.State != api.BuildPending {
		t.Errorf("young build state = %s, want pending", got.State)
	}
}

func TestLogsFollow(t *testing.T) {
	srv := newServer(t)
	e := newEnv(t, srv, nil, func(c *controller.Config) { c.LogDir = t.TempDir() })
	e.run()
	ctx := e.ctx()
	app, err := e.ctrl.Apps.CreateApp(ctx, "hello")
	if err != nil {
		t.Fatal(err)
	}
	pub := connect(t, srv, "executor")
	send := func(src, line string) {
		_ = pub.Publish(api.SubjectLogs(app.ID), api.LogEnvelope{Time: time.Now(), AppID: app.ID, App: "hello", Source: src, Line: line})
	}
	send("app/web/0", "before")
	send("router", "GET /")
	eventually(t, "recent line stored", func() bool {
		n := 0
		_ = e.ctrl.Logs.Logs(ctx, api.LogQuery{App: "hello", Source: "app"}, func(api.LogEnvelope) error { n++; return nil })
		return n == 1
	})
	fctx, cancel := context.WithCancel(ctx)
	got := make(chan string, 10)
	done := make(chan error, 1)
	go func() {
		done <- e.ctrl.Logs.Logs(fctx, api.LogQuery{App: "hello", Source: "app", Follow: true}, func(l api.LogEnvelope) error {
			got <- l.Line
			return nil
		})
	}()
	if l := <-got; l != "before" {
		t.Fatalf("first line %q, want before", l)
	}
	send("router", "GET /x")
	send("app/web/0", "after")
	select {
	case l := <-got:
		if l != "after" {
			t.Errorf("followed line %q, want after (router lines filtered out)", l)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no live line")
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Logs returned %v", err)
	}

	// A new controller on the same log dir still has the recent lines.
	e2 := newEnv(t, srv, e.store, func(c *controller.Config) { c.LogDir = e.cfg.LogDir })
	var lines []string
	if err := e2.ctrl.Logs.Logs(ctx, api.LogQuery{App: "hello", Source: "app"}, func(l api.LogEnvelope) error {
		lines = append(lines, l.Line)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(lines, []string{"before", "after"}) {
		t.Errorf("recent after restart = %v, want [before after]", lines)
	}
}
