package controller_test

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/strata-paas/strata/api"
)

// deployed returns a running controller env with app "hello" deployed twice
// (v1, v2) on one fake node.
func deployed(t *testing.T, procs map[string]string) (*env, *fakeExecutor, context.Context) {
	t.Helper()
	srv := newServer(t)
	e := newEnv(t, srv, nil, nil)
	e.run()
	startBuilder(t, srv, &fakeBuilder{procs: procs})
	x := startExecutor(t, srv, "node-1", nil)
	ctx := e.ctx()
	for i := 0; i < 2; i++ {
		if _, err := e.ctrl.Deploys.Deploy(ctx, api.DeployRequest{App: "hello", Source: source(), CreateApp: true, Wait: true}); err != nil {
			t.Fatal(err)
		}
	}
	return e, x, ctx
}

// runningAt waits until every instance row of the app runs release v.
func runningAt(t *testing.T, e *env, ctx context.Context, v int) []*api.Instance {
	t.Helper()
	var ins []*api.Instance
	eventually(t, "instances at the new release", func() bool {
		ins, _ = e.store.AllInstances(ctx)
		for _, in := range ins {
			if in.Release != v || in.State != api.InstanceRunning {
				return false
			}
		}
		return len(ins) > 0
	})
	return ins
}

func eventTypes(t *testing.T, e *env, ctx context.Context) []string {
	t.Helper()
	evs, err := e.ctrl.Apps.Events(ctx, "hello", 0)
	if err != nil {
		t.Fatal(err)
	}
	var types []string
	for _, ev := range evs {
		if ev.Actor != "admin" && ev.Type != "build.staged" && ev.Type != "release" {
			t.Errorf("event %s has actor %q, want admin", ev.Type, ev.Actor)
		}
		types = append(types, ev.Type)
	}
	return types
}

func TestReleasesAndRollback(t *testing.T) {
	e, _, ctx := deployed(t, nil)
	rels, err := e.ctrl.Apps.Releases(ctx, "hello")
	if err != nil {
		t.Fatal(err)
	}
	if len(rels) != 2 || rels[0].Version != 2 || rels[1].Version != 1 || !strings.HasPrefix(rels[0].Description, "Deploy build ") || rels[0].Actor != "admin" {
		t.Fatalf("releases = %+v", rels)
	}
	rel, err := e.ctrl.Apps.Rollback(ctx, "hello", 0)
	if err != nil {
		t.Fatal(err)
	}
	if rel.Version != 3 || rel.Description != "Rollback to v1" || rel.BuildID != rels[1].BuildID || rel.DropletBlob != rels[1].DropletBlob {
		t.Errorf("rollback release = %+v, want v3 copying v1", rel)
	}
	runningAt(t, e, ctx, 3)
	// The default target skips releases with the same content: v3 == v1, so
	// the previous different one is v2.
	rel, err = e.ctrl.Apps.Rollback(ctx, "hello", 0)
	if err != nil || rel.Description != "Rollback to v2" {
		t.Errorf("second rollback = %+v, %v; want a copy of v2", rel, err)
	}
	for _, tc := range []struct {
		version int
		code    string
	}{{4, api.EConflict}, {9, api.ENotFound}, {-1, api.EInvalid}} {
		if _, err := e.ctrl.Apps.Rollback(ctx, "hello", tc.version); api.ErrorCode(err) != tc.code {
			t.Errorf("Rollback(v%d) = %v, want %s", tc.version, err, tc.code)
		}
	}
	if _, err := e.ctrl.Apps.Rollback(ctx, "nope", 0); api.ErrorCode(err) != api.ENotFound {
		t.Errorf("Rollback(nope) = %v", err)
	}
	if types := eventTypes(t, e, ctx); !slices.Contains(types, "rollback") {
		t.Errorf("events %v lack rollback", types)
	}
}

func TestEnvMakesRollingRelease(t *testing.T) {
	e, x, ctx := deployed(t, nil)
	old := runningAt(t, e, ctx, 2)
	rel, err := e.ctrl.Apps.ChangeEnv(ctx, "hello", api.EnvChange{Set: map[string]string{"GREETING": "hi", "B": "x=y"}})
	if err != nil {
		t.Fatal(err)
	}
	if rel.Version != 3 || rel.Env["GREETING"] != "hi" || rel.Env["B"] != "x=y" || rel.Description != "Set B, GREETING" {
		t.Errorf("release = %+v", rel)
	}
	runningAt(t, e, ctx, 3)
	if !x.stopped(old[0].ID) {
		t.Errorf("old instance not stopped")
	}
	starts, _, _ := x.snapshot()
	if last := starts[len(starts)-1]; last.Env["GREETING"] != "hi" || last.Release != 3 {
		t.Errorf("last start spec env = %v release %d", last.Env, last.Release)
	}
	// Unset, and a no-op change makes no release.
	rel, err = e.ctrl.Apps.ChangeEnv(ctx, "hello", api.EnvChange{Unset: []string{"B", "NOT_SET"}})
	if err != nil || rel.Version != 4 || rel.Description != "Unset B" {
		t.Fatalf("unset = %+v, %v", rel, err)
	}
	rel, err = e.ctrl.Apps.ChangeEnv(ctx, "hello", api.EnvChange{Set: map[string]string{"GREETING": "hi"}})
	if err != nil || rel.Version != 4 {
		t.Errorf("no-op change = %+v, %v; want v4 unchanged", rel, err)
	}
	env, err := e.ctrl.Apps.Env(ctx, "hello")
	if err != nil || len(env) != 1 || env["GREETING"] != "hi" {
		t.Errorf("Env = %v, %v", env, err)
	}
	// A new build keeps the config.
	res, err := e.ctrl.Deploys.Deploy(ctx, api.DeployRequest{App: "hello", Source: source(), Wait: true})
	if err != nil || res.Release.Env["GREETING"] != "hi" {
		t.Errorf("deploy after env set: %+v, %v", res, err)
	}
	// Events name vars, never values.
	evs, _ := e.ctrl.Apps.Events(ctx, "hello", 0)
	for _, ev := range evs {
		if strings.Contains(ev.Message, "x=y") {
			t.Errorf("event leaks a value: %+v", ev)
		}
	}
	if types := eventTypes(t, e, ctx); !slices.Contains(types, "env") {
		t.Errorf("events %v lack env", types)
	}
}

func TestEnvValidation(t *testing.T) {
	srv := newServer(t)
	e := newEnv(t, srv, nil, nil)
	ctx := e.ctx()
	if _, err := e.ctrl.Apps.CreateApp(ctx, "hello"); err != nil {
		t.Fatal(err)
	}
	for name, ch := range map[string]api.EnvChange{
		"empty":        {},
		"LD_PRELOAD":   {Set: map[string]string{"LD_PRELOAD": "/x.so"}},
		"ld_audit":     {Set: map[string]string{"ld_audit": "x"}},
		"PORT":         {Set: map[string]string{"PORT": "1"}},
		"STRATA_X":     {Set: map[string]string{"STRATA_X": "1"}},
		"newline":      {Set: map[string]string{"A": "1\n2"}},
		"bad name":     {Set: map[string]string{"1A": "1"}},
		"set+unset":    {Set: map[string]string{"A": "1"}, Unset: []string{"A"}},
		"unset IFS":    {Unset: []string{"IFS"}},
		"huge value":   {Set: map[string]string{"A": strings.Repeat("x", api.MaxEnvValueBytes+1)}},
		"GLIBC":        {Set: map[string]string{"GLIBC_TUNABLES": "x"}},
		"BASH_FUNC_x%": {Set: map[string]string{"BASH_FUNC_x": "() { :; }"}},
	} {
		if _, err := e.ctrl.Apps.ChangeEnv(ctx, "hello", ch); api.ErrorCode(err) != api.EInvalid || !strings.Contains(err.Error(), " — ") {
			t.Errorf("%s: err = %v, want invalid with advice", name, err)
		}
	}
	// Before the first push, env makes a config-only release the build inherits.
	rel, err := e.ctrl.Apps.ChangeEnv(ctx, "hello", api.EnvChange{Set: map[string]string{"GREETING": "early"}})
	if err != nil || rel.Version != 1 || rel.DropletBlob != "" {
		t.Fatalf("early env = %+v, %v", rel, err)
	}
	if _, err := e.ctrl.Apps.Restart(ctx, "hello"); api.ErrorCode(err) != api.EConflict {
		t.Errorf("Restart without a build = %v, want conflict", err)
	}
	if _, err := e.ctrl.Apps.Rollback(ctx, "hello", 0); api.ErrorCode(err) != api.EConflict {
		t.Errorf("Rollback without a build = %v, want conflict", err)
	}
}

func TestScaleStopStartRestart(t *testing.T) {
	e, x, ctx := deployed(t, map[string]string{"web": "./run", "worker": "./work"})
	runningAt(t, e, ctx, 2)
	two, mem := 2, 512
	res, err := e.ctrl.Apps.Scale(ctx, "hello", api.ScaleRequest{Process: "worker", Instances: &two})
	if err != nil || res.Release != nil || res.Process.Instances != 2 {
		t.Fatalf("scale worker = %+v, %v", res, err)
	}
	eventually(t, "two workers and one web", func() bool {
		ins, _ := e.store.AllInstances(ctx)
		n := map[string]int{}
		for _, in := range ins {
			if in.State == api.InstanceRunning {
				n[in.Process]++
			}
		}
		return n["worker"] == 2 && n["web"] == 1
	})
	starts, _, _ := x.snapshot()
	for _, s := range starts {
		if s.Process == "worker" && len(s.Routes) != 0 {
			t.Errorf("worker got routes %v", s.Routes)
		}
	}
	res, err = e.ctrl.Apps.Scale(ctx, "hello", api.ScaleRequest{MemoryMB: &mem})
	if err != nil || res.Release == nil || res.Release.Version != 3 || res.Process.MemoryMB != 512 {
		t.Fatalf("scale memory = %+v, %v; want a new release", res, err)
	}
	eventually(t, "web replaced with 512M", func() bool {
		starts, _, _ := x.snapshot()
		for _, s := range starts {
			if s.Process == "web" && s.Release == 3 && s.MemoryMB == 512 {
				return true
			}
		}
		return false
	})
	for _, req := range []api.ScaleRequest{{}, {Process: "nope", Instances: &two}, {Process: "a b", Instances: &two}, {Instances: ptr(-1)}, {MemoryMB: ptr(1)}, {DiskMB: ptr(1 << 30)},
		{ScaleToZero: ptr(59)}, {ScaleToZero: ptr(-1)}, {Process: "worker", ScaleToZero: ptr(600)}} {
		if _, err := e.ctrl.Apps.Scale(ctx, "hello", req); err == nil || api.ErrorCode(err) == api.EInternal {
			t.Errorf("Scale(%+v) = %v, want a user error", req, err)
		}
	}

	res, err = e.ctrl.Apps.Scale(ctx, "hello", api.ScaleRequest{ScaleToZero: ptr(600)})
	if err != nil || res.Release != nil || res.Process.ScaleToZero != 600 || res.Process.Instances != 1 {
		t.Fatalf("scale-to-zero 10m = %+v, %v; want no release", res, err)
	}

	app, err := e.ctrl.Apps.SetState(ctx, "hello", api.AppStopped)
	if err != nil || app.State != api.AppStopped {
		t.Fatalf("stop = %+v, %v", app, err)
	}
	eventually(t, "all instances stopped", func() bool {
		ins, _ := e.store.AllInstances(ctx)
		return len(ins) == 0
	})
	if _, err := e.ctrl.Apps.Restart(ctx, "hello"); api.ErrorCode(err) != api.EConflict {
		t.Errorf("restart of a stopped app = %v, want conflict", err)
	}
	if _, err := e.ctrl.Apps.SetState(ctx, "hello", api.AppStarted); err != nil {
		t.Fatal(err)
	}
	runningAt(t, e, ctx, 3)
	before, _ := e.store.AllInstances(ctx)
	rel, err := e.ctrl.Apps.Restart(ctx, "hello")
	if err != nil || rel.Version != 4 || rel.Description != "Restart (v3)" {
		t.Fatalf("restart = %+v, %v", rel, err)
	}
	after := runningAt(t, e, ctx, 4)
	if len(after) != len(before) {
		t.Errorf("restart changed the instance count: %d → %d", len(before), len(after))
	}
	for _, in := range before {
		if !x.stopped(in.ID) {
			t.Errorf("instance %s not replaced by restart", in.ID)
		}
	}
	types := eventTypes(t, e, ctx)
	for _, want := range []string{"scale", "app.stop", "app.start", "restart"} {
		if !slices.Contains(types, want) {
			t.Errorf("events %v lack %s", types, want)
		}
	}
}

func ptr(n int) *int { return &n }
