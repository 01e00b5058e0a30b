package controller_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/strata-paas/strata/api"
	"github.com/strata-paas/strata/api/blobstore"
	"github.com/strata-paas/strata/api/bus"
	"github.com/strata-paas/strata/api/controller"
)

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelInfo}))
}

// env is a controller on an embedded bus with a SQLite store and blobs on disk.
type env struct {
	t     *testing.T
	srv   *bus.Server
	store controller.Store
	blobs api.BlobStore
	ctrl  *controller.Controller
	conn  *bus.Conn
	cfg   controller.Config
	token string
}

func testConfig(t *testing.T) controller.Config {
	return controller.Config{
		Domain: "localhost", RouterPort: "8080",
		ConvergeInterval: 50 * time.Millisecond, NodeTTL: 400 * time.Millisecond,
		DeployWaitTimeout: 10 * time.Second, CommandTimeout: time.Second,
		Logger: testLogger(t),
	}
}

func newServer(t *testing.T) *bus.Server {
	t.Helper()
	srv, err := bus.StartServer(bus.ServerConfig{Port: -1, StoreDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Shutdown)
	return srv
}

func connect(t *testing.T, srv *bus.Server, name string) *bus.Conn {
	t.Helper()
	conn, err := bus.Connect(context.Background(), "", bus.Options{Name: name, Server: srv, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(conn.Close)
	return conn
}

// newEnv starts a bootstrapped controller. store may be nil for a new one.
func newEnv(t *testing.T, srv *bus.Server, store controller.Store, edit func(*controller.Config)) *env {
	t.Helper()
	if srv == nil {
		srv = newServer(t)
	}
	if store == nil {
		store = openSQLite(t)
	}
	blobs, err := blobstore.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, srv: srv, store: store, blobs: blobs, cfg: testConfig(t)}
	if edit != nil {
		edit(&e.cfg)
	}
	e.conn = connect(t, srv, "controller")
	ctrl, err := controller.New(e.cfg, store, blobs, e.conn)
	if err != nil {
		t.Fatal(err)
	}
	e.ctrl = ctrl
	if e.token, _, err = ctrl.Tenancy.Bootstrap(context.Background(), "admin"); err != nil {
		t.Fatal(err)
	}
	return e
}

// run runs the controller until the test ends.
func (e *env) run() {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := e.ctrl.Run(ctx); err != nil {
			e.t.Errorf("Run: %v", err)
		}
	}()
	e.t.Cleanup(func() { cancel(); <-done })
	select {
	case <-e.ctrl.Ready():
	case <-time.After(10 * time.Second):
		e.t.Fatal("controller not ready after 10s")
	}
}

func (e *env) ctx() context.Context {
	p, err := e.ctrl.Tenancy.Authenticate(context.Background(), e.token)
	if err != nil {
		e.t.Fatal(err)
	}
	return api.WithPrincipal(context.Background(), p)
}

// eventually polls cond until it holds or 10 s pass.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// fakeBuilder consumes build jobs and answers like a builder.
type fakeBuilder struct {
	fail      bool
	procs     map[string]string
	buildpack string // reported; "" = fake
	mu        sync.Mutex
	builds    []string
	jobs      []api.BuildJob
}

func startBuilder(t *testing.T, srv *bus.Server, b *fakeBuilder) {
	conn := connect(t, srv, "builder")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	t.Cleanup(func() { cancel(); <-done })
	go func() {
		defer close(done)
		_ = conn.ConsumeWork(ctx, bus.WorkConfig{Stream: api.BuildJobsStream, Durable: "builders"}, func(ctx context.Context, data []byte, _ int) error {
			var job api.BuildJob
			if err := json.Unmarshal(data, &job); err != nil {
				return err
			}
			b.mu.Lock()
			b.builds = append(b.builds, job.BuildID)
			b.jobs = append(b.jobs, job)
			b.mu.Unlock()
			send := func(r api.BuildResult) {
				r.Version, r.BuildID = api.MessageVersion, job.BuildID
				for ctx.Err() == nil {
					if _, err := bus.Request[api.BuildResult, struct{}](ctx, conn, api.SubjectBuildResult, &r); err == nil {
						return
					}
					time.Sleep(50 * time.Millisecond)
				}
			}
			line := func(s string) {
				_ = conn.Publish(api.SubjectLogs(job.AppID), api.LogEnvelope{
					Time: time.Now(), AppID: job.AppID, App: job.AppName, Source: api.LogSourceStaging, BuildID: job.BuildID, Line: s,
				})
			}
			send(api.BuildResult{State: api.BuildStaging})
			line("-----> detecting")
			line("-----> compiling")
			if b.fail {
				line("error: compile failed")
				send(api.BuildResult{State: api.BuildFailed, Failure: api.FailCompile, Reason: "compile failed (exit 2)"})
				return nil
			}
			procs := b.procs
			if procs == nil {
				procs = map[string]string{"web": "./run"}
			}
			line("-----> droplet ready")
			bp := b.buildpack
			if bp == "" {
				bp = "fake"
			}
			send(api.BuildResult{State: api.BuildStaged, DropletBlob: api.BlobRef("sha256:" + strings.Repeat("ab", 32)), Buildpack: bp, Processes: procs})
			return nil
		})
	}()
}

// fakeExecutor serves node commands, heartbeats and reports transitions.
type fakeExecutor struct {
	id         string
	conn       *bus.Conn
	runAfter   time.Duration // how long a started instance takes to run
	crash      string        // when set, started instances crash with this reason
	mu         sync.Mutex
	instances  map[string]api.InstanceReport
	starts     []api.InstanceSpec
	runs       []api.InstanceSpec // tasks
	routeCmds  []api.NodeCommand
	stops      []string
	timeline   []string
	heartbeats bool
	isolations []api.Isolation // offered in heartbeats (nil: process)
}

func startExecutor(t *testing.T, srv *bus.Server, id string, edit func(*fakeExecutor)) *fakeExecutor {
	x := &fakeExecutor{id: id, conn: connect(t, srv, "executor-"+id), instances: map[string]api.InstanceReport{}, heartbeats: true, runAfter: 50 * time.Millisecond}
	if edit != nil {
		edit(x)
	}
	sub, err := bus.Handle(x.conn, api.SubjectNodeCommand(id), "", func(_ context.Context, cmd *api.NodeCommand) (*api.NodeCommandReply, error) {
		x.command(cmd)
		return &api.NodeCommandReply{Version: api.MessageVersion}, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	t.Cleanup(func() { cancel(); <-done; _ = sub.Unsubscribe() })
	go func() {
		defer close(done)
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for {
			x.heartbeat()
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
	}()
	return x
}

func (x *fakeExecutor) command(cmd *api.NodeCommand) {
	x.mu.Lock()
	defer x.mu.Unlock()
	switch cmd.Kind {
	case api.CmdStart:
		s := *cmd.Start
		x.starts = append(x.starts, s)
		x.timeline = append(x.timeline, fmt.Sprintf("start r%d %s", s.Release, s.InstanceID))
		rep := api.InstanceReport{InstanceID: s.InstanceID, AppID: s.AppID, Process: s.Process, Index: s.Index, Release: s.Release, State: api.InstanceStarting, Routes: s.Routes}
		x.instances[s.InstanceID] = rep
		go func() {
			time.Sleep(x.runAfter)
			x.mu.Lock()
			defer x.mu.Unlock()
			if _, ok := x.instances[rep.InstanceID]; !ok {
				return
			}
			rep.State, rep.Port, rep.Routes = api.InstanceRunning, 40000+len(x.starts), x.instances[rep.InstanceID].Routes
			reason := ""
			if x.crash != "" {
				// Like the real executor after its restarts in a row.
				rep.State, rep.Port, rep.FailedStarts, reason = api.InstanceCrashed, 0, 3, x.crash
			}
			x.instances[rep.InstanceID] = rep
			x.timeline = append(x.timeline, fmt.Sprintf("%s r%d %s", rep.State, rep.Release, rep.InstanceID))
			_ = x.conn.Publish(api.SubjectInstanceEvent, api.InstanceEvent{Version: api.MessageVersion, NodeID: x.id, Instance: rep, Reason: reason, Time: time.Now()})
		}()
	case api.CmdRun: // a task: recorded, and exits 0 at once
		s := *cmd.Start
		x.runs = append(x.runs, s)
		go func() {
			code := 0
			_ = x.conn.Publish(api.SubjectTaskExit(s.InstanceID), api.InstanceEvent{Version: api.MessageVersion, ExitCode: &code, Reason: "exited with code 0"})
		}()
	case api.CmdRoutes:
		x.routeCmds = append(x.routeCmds, *cmd)
		if rep, ok := x.instances[cmd.InstanceID]; ok {
			rep.Routes = cmd.Routes
			x.instances[cmd.InstanceID] = rep
		}
	case api.CmdStop:
		x.stops = append(x.stops, cmd.InstanceID)
		x.timeline = append(x.timeline, "stop "+cmd.InstanceID)
		if rep, ok := x.instances[cmd.InstanceID]; ok {
			delete(x.instances, cmd.InstanceID)
			rep.State = api.InstanceStopped
			_ = x.conn.Publish(api.SubjectInstanceEvent, api.InstanceEvent{Version: api.MessageVersion, NodeID: x.id, Instance: rep, Time: time.Now()})
		}
	}
}

func (x *fakeExecutor) heartbeat() {
	x.mu.Lock()
	if !x.heartbeats {
		x.mu.Unlock()
		return
	}
	hb := api.NodeHeartbeat{
		Version: api.MessageVersion, NodeID: x.id, Substrate: api.SubstrateVM,
		Isolations: x.offers(), Capacity: api.Capacity{MemoryMB: 8192, CPUs: 2},
		Time: time.Now(), Interval: 50 * time.Millisecond,
	}
	for _, in := range x.instances {
		hb.Instances = append(hb.Instances, in)
	}
	x.mu.Unlock()
	_ = x.conn.Publish(api.SubjectNodeHeartbeat, hb)
}

func (x *fakeExecutor) setHeartbeats(on bool) {
	x.mu.Lock()
	x.heartbeats = on
	x.mu.Unlock()
}

func (x *fakeExecutor) offers() []api.Isolation {
	if x.isolations == nil {
		return []api.Isolation{api.IsolationProcess}
	}
	return x.isolations
}

func (x *fakeExecutor) startsOf(id string) int {
	x.mu.Lock()
	defer x.mu.Unlock()
	n := 0
	for _, s := range x.starts {
		if s.InstanceID == id {
			n++
		}
	}
	return n
}

func (x *fakeExecutor) stopped(id string) bool {
	x.mu.Lock()
	defer x.mu.Unlock()
	return slices.Contains(x.stops, id)
}

// reported returns the routes the executor reports for an instance.
func (x *fakeExecutor) reported(id string) []string {
	x.mu.Lock()
	defer x.mu.Unlock()
	return slices.Clone(x.instances[id].Routes)
}

func (x *fakeExecutor) routeCommands() []api.NodeCommand {
	x.mu.Lock()
	defer x.mu.Unlock()
	return slices.Clone(x.routeCmds)
}

func (x *fakeExecutor) snapshot() (starts []api.InstanceSpec, stops, timeline []string) {
	x.mu.Lock()
	defer x.mu.Unlock()
	return slices.Clone(x.starts), slices.Clone(x.stops), slices.Clone(x.timeline)
}

// recorder collects deploy progress.
type recorder struct {
	mu     sync.Mutex
	events []api.DeployEvent
}

func (r *recorder) add(e api.DeployEvent) {
	r.mu.Lock()
	r.events = append(r.events, e)
	r.mu.Unlock()
}

func (r *recorder) has(typ, line string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Contains(r.events, api.DeployEvent{Type: typ, Line: line})
}
