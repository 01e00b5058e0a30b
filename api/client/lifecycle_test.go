package client_test

import (
	"context"
	"strings"
	"testing"

	"github.com/strata-paas/strata/api"
	"github.com/strata-paas/strata/api/client"
)

func TestLifecycleRoundTrip(t *testing.T) {
	ctx := context.Background()
	e := newServer(t)
	url := e.URL
	c := client.New(url, e.UserToken)
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
	if p := e.App("hello").Processes[0]; p.Instances != 2 || p.MemoryMB != api.DefaultMemoryMB {
		t.Errorf("web after scale = %+v", p)
	}
	if app, err := c.SetState(ctx, "hello", api.AppStopped); err != nil || app.State != api.AppStopped {
		t.Errorf("stop = %+v, %v", app, err)
	}
	if app, err := c.SetState(ctx, "hello", api.AppStarted); err != nil || app.State != api.AppStarted {
		t.Errorf("start = %+v, %v", app, err)
	}
	if rel, err := c.Restart(ctx, "hello"); err != nil || rel.Description != "Restart (v5)" {
		t.Errorf("Restart = %+v, %v", rel, err)
	}
	evs, err := c.Events(ctx, "hello")
	if err != nil {
		t.Fatal(err)
	}
	// Newest first, every change by its actor.
	var types []string
	for _, ev := range evs {
		types = append(types, ev.Type)
		if ev.Actor != "dev" {
			t.Errorf("event %+v: actor %q, want dev", ev, ev.Actor)
		}
	}
	if got, want := strings.Join(types, " "), "restart app.start app.stop scale env env rollback release build.staged push release build.staged push app.create"; got != want {
		t.Errorf("events %q, want %q", got, want)
	}
	if _, err := c.Events(ctx, "nope"); code(err) != api.ENotFound {
		t.Errorf("Events(nope) = %v", err)
	}
}
