package controller_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/strata-paas/strata/api"
	"github.com/strata-paas/strata/api/store"
)

// TestDeployOnSQLite runs a deploy and a rolling redeploy against the real
// SQLite store, checking the controller's use of the Store contract beyond
// what the in-memory fake enforces.
func TestDeployOnSQLite(t *testing.T) {
	st := openSQLite(t)
	srv := newServer(t)
	e := newEnv(t, srv, st, nil)
	e.run()
	startBuilder(t, srv, &fakeBuilder{procs: map[string]string{"web": "./run", "worker": "./work"}})
	x := startExecutor(t, srv, "node-1", nil)
	ctx := e.ctx()
	for want := 1; want <= 2; want++ {
		res, err := e.ctrl.Deploys.Deploy(ctx, api.DeployRequest{App: "hello", Source: source(), CreateApp: true, Wait: true})
		if err != nil {
			t.Fatal(err)
		}
		if res.Release.Version != want || res.Running != 1 || res.Desired != 1 {
			t.Fatalf("deploy %d: release v%d, %d/%d running", want, res.Release.Version, res.Running, res.Desired)
		}
	}
	eventually(t, "only the new web instance left", func() bool {
		ins, err := st.AllInstances(ctx)
		return err == nil && len(ins) == 1 && ins[0].Release == 2 && ins[0].State == api.InstanceRunning
	})
	d, err := e.ctrl.Apps.AppDetail(ctx, "hello")
	if err != nil {
		t.Fatal(err)
	}
	formation := map[string]int{}
	for _, p := range d.Processes {
		formation[p.Type] = p.Instances
	}
	if formation["web"] != 1 || formation["worker"] != 0 || len(formation) != 2 {
		t.Errorf("formation = %v, want web=1 worker=0", formation)
	}
	starts, stops, _ := x.snapshot()
	if len(starts) != 2 || len(stops) != 1 {
		t.Errorf("executor saw %d starts and %d stops, want 2 and 1", len(starts), len(stops))
	}
}

// openSQLite opens a real SQLite store in a temporary dir for one test.
func openSQLite(t *testing.T) *store.Store {
	t.Helper()
	st, err := store.Open(context.Background(), store.Config{Driver: "sqlite", DSN: filepath.Join(t.TempDir(), "strata.db")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	return st
}
