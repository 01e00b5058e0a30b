package client_test

import (
	"context"
	"strings"
	"testing"

	"github.com/strata-paas/strata/api"
	"github.com/strata-paas/strata/api/client"
	"github.com/strata-paas/strata/api/httpapi/httpapitest"
)

func TestLifecycleRoundTrip(t *testing.T) {
	ctx := context.Background()
	fake, url := newServer(t)
	c := client.New(url, httpapitest.UserToken)
	for i := 0; i < 2; i++ {
		if _, err := c.Push(ctx, "hello", strings.NewReader("src"), client.PushOptions{Create: true}); err != nil {
			t.Fatal(err)
		}
	}
	rels, err := c.Releases(ctx, "hello")
	if err != nil || len(rels) != 2 || rels[0].Version != 2 {
		t.Fatalf("Releases = %+v, %v", rels, err)
	}
	rel, err := c.Rollback(ctx, "hello", 0)
	if err != nil || rel.Version != 3 || rel.Description != "Rollback to v1" {
		t.Fatalf("Rollback = %+v, %v", rel, err)
	}
	if _, err := c.Rollback(ctx, "hello", 42); code(err) != api.ENotFound {
		t.Errorf("Rollback(42) = %v, want not_found", err)
	}
	if _, err := c.ChangeEnv(ctx, "hello", api.EnvChange{Set: map[string]string{"A": "1", "B": "2"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.ChangeEnv(ctx, "hello", api.EnvChange{Unset: []string{"B"}}); err != nil {
		t.Fatal(err)
	}
	env, err := c.Env(ctx, "hello")
	if err != nil || len(env) != 1 || env["A"] != "1" {
		t.Errorf("Env = %v, %v", env, err)
	}
	if _, err := c.ChangeEnv(ctx, "hello", api.EnvChange{Set: map[string]string{"PATH": "/evil"}}); code(err) != api.EInvalid {
		t.Errorf("ChangeEnv(PATH) = %v, want invalid", err)
	}
	n := 2
	if res, err := c.Scale(ctx, "hello", api.ScaleRequest{Instances: &n}); err != nil || res.Process.Instances != 2 {
		t.Errorf("Scale = %+v, %v", res, err)
	}
	if got := fake.Scales(); len(got) != 1 || *got[0].Instances != 2 || got[0].MemoryMB != nil {
		t.Errorf("server saw scales %+v", got)
	}
	if app, err := c.SetState(ctx, "hello", api.AppStopped); err != nil || app.State != api.AppStopped {
		t.Errorf("stop = %+v, %v", app, err)
	}
	if app, err := c.SetState(ctx, "hello", api.AppStarted); err != nil || app.State != api.AppStarted {
		t.Errorf("start = %+v, %v", app, err)
	}
	if rel, err := c.Restart(ctx, "hello"); err != nil || rel.Description != "Restart" {
		t.Errorf("Restart = %+v, %v", rel, err)
	}
	evs, err := c.Events(ctx, "hello")
	if err != nil || len(evs) != 7 || evs[0].Type != "restart" || evs[0].Actor != "dev" {
		t.Errorf("Events = %+v, %v", evs, err)
	}
	if _, err := c.Events(ctx, "nope"); code(err) != api.ENotFound {
		t.Errorf("Events(nope) = %v", err)
	}
}
