package e2e_test

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"
)

// waitFor polls cond until it holds or timeout passes.
func waitFor(t *testing.T, what string, timeout time.Duration, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	last := ""
	for time.Now().Before(deadline) {
		ok, state := cond()
		if ok {
			return
		}
		last = state
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("timed out after %s waiting for %s; last: %s", timeout, what, last)
}

// appJSON is the part of `strata app --json` the lifecycle test reads.
type appJSON struct {
	State          string `json:"state"`
	CurrentRelease int    `json:"current_release"`
	Processes      []struct {
		Type      string `json:"type"`
		Instances int    `json:"instances"`
		MemoryMB  int    `json:"memory_mb"`
	} `json:"processes"`
	Instances []struct {
		Process string `json:"process"`
		State   string `json:"state"`
		Release int    `json:"release"`
	} `json:"instances"`
}

func (c *cli) app(name string) appJSON {
	c.t.Helper()
	out := c.must("", "strata", "app", name, "--json")
	var a appJSON
	if err := json.Unmarshal([]byte(out), &a); err != nil {
		c.t.Fatalf("app --json: %v\n%s", err, out)
	}
	return a
}

// running counts running instances of a process type at a release (0 = any).
func (a appJSON) running(process string, release int) int {
	n := 0
	for _, in := range a.Instances {
		if in.Process == process && in.State == "running" && (release == 0 || in.Release == release) {
			n++
		}
	}
	return n
}

// TestLifecycle drives releases, rollback, config vars, scale with a worker
// process, events, stop/start and restart through the real binaries.
func TestLifecycle(t *testing.T) {
	require(t, "go")
	mc := startMicrocloud(t, t.TempDir())
	c := newCLI(t)
	c.must("", "strata", "login", "--api", mc.api, "--token-file", mc.tokenFile)

	t.Run("releases and rollback", func(t *testing.T) {
		dir := copyDir(t, filepath.Join(repoRoot(), "examples", "hello-go"))
		c.must("", "strata", "push", "lc", "-p", dir)
		waitBody(t, mc.routerAddr, "lc.localhost", helloBody, 30*time.Second)
		main := filepath.Join(dir, "main.go")
		src, _ := os.ReadFile(main)
		os.WriteFile(main, []byte(strings.Replace(string(src), helloBody, "Hello v2 from Strata!", 1)), 0o644)
		c.must("", "strata", "push", "lc", "-p", dir)
		waitBody(t, mc.routerAddr, "lc.localhost", "Hello v2 from Strata!", 30*time.Second)

		out := c.must("", "strata", "releases", "lc")
		for _, want := range []string{"v1", "v2", "current", "admin", "Deploy build"} {
			if !strings.Contains(out, want) {
				t.Errorf("releases lacks %q:\n%s", want, out)
			}
		}
		out = c.must("", "strata", "rollback", "lc")
		if !strings.Contains(out, "Rollback to v1") || !strings.Contains(out, "v3") {
			t.Errorf("rollback printed %q", out)
		}
		// The old body again, from a new release 3, without a build.
		waitBody(t, mc.routerAddr, "lc.localhost", helloBody+" (instance 0, release 3)", 30*time.Second)
		var rels []struct {
			Version     int    `json:"version"`
			Description string `json:"description"`
			BuildID     string `json:"build_id"`
		}
		out = c.must("", "strata", "releases", "lc", "--json")
		if err := json.Unmarshal([]byte(out), &rels); err != nil || len(rels) != 3 {
			t.Fatalf("releases --json: %v\n%s", err, out)
		}
		if rels[0].Version != 3 || rels[0].Description != "Rollback to v1" || rels[0].BuildID != rels[2].BuildID {
			t.Errorf("newest release = %+v, want v3 reusing v1's build %s", rels[0], rels[2].BuildID)
		}
		out, code := c.run("", "strata", "rollback", "lc", "3")
		if code != 1 || !strings.Contains(out, "already the current release") {
			t.Errorf("rollback to the current release: exit %d %q", code, out)
		}
	})

	envDir := filepath.Join(repoRoot(), "examples", "env-go")
	t.Run("env set changes what the app prints", func(t *testing.T) {
		c.must("", "strata", "push", "envapp", "-p", envDir)
		waitBody(t, mc.routerAddr, "envapp.localhost", "(GREETING is not set)", 30*time.Second)
		out := c.must("", "strata", "env", "set", "envapp", "GREETING=Howdy partner")
		if !strings.Contains(out, "Set GREETING: released v2") {
			t.Errorf("env set printed %q", out)
		}
		waitBody(t, mc.routerAddr, "envapp.localhost", "Howdy partner (instance 0, release 2)", 30*time.Second)
		if out := c.must("", "strata", "env", "envapp"); out != "GREETING=Howdy partner\n" {
			t.Errorf("env printed %q", out)
		}
		for _, bad := range []string{"LD_PRELOAD=/tmp/x.so", "PORT=1", "BASH_ENV=/x"} {
			out, code := c.run("", "strata", "env", "set", "envapp", bad)
			if code != 1 || !strings.Contains(out, "error:") || !strings.Contains(out, " — ") {
				t.Errorf("env set %s: exit %d %q, want a clear error", bad, code, out)
			}
		}
		c.must("", "strata", "env", "unset", "envapp", "GREETING")
		waitBody(t, mc.routerAddr, "envapp.localhost", "(GREETING is not set) (instance 0, release 3)", 30*time.Second)
	})

	t.Run("scale a worker without a route", func(t *testing.T) {
		a := c.app("envapp")
		if a.running("worker", 0) != 0 {
			t.Fatalf("worker runs before scaling: %+v", a)
		}
		out := c.must("", "strata", "scale", "envapp", "--process", "worker", "-i", "1")
		if !strings.Contains(out, "worker to 1×") {
			t.Errorf("scale printed %q", out)
		}
		waitFor(t, "a running worker", 30*time.Second, func() (bool, string) {
			a := c.app("envapp")
			return a.running("worker", 0) == 1 && a.running("web", 0) == 1, c.must("", "strata", "app", "envapp")
		})
		if out := c.must("", "strata", "app", "envapp"); !strings.Contains(out, "worker/0") {
			t.Errorf("strata app does not show the worker:\n%s", out)
		}
		waitBody(t, mc.routerAddr, "envapp.localhost", "(GREETING is not set)", 10*time.Second)
		// Memory makes a release that replaces the web instance.
		out = c.must("", "strata", "scale", "envapp", "-m", "128M")
		if !strings.Contains(out, "128M memory") || !strings.Contains(out, "Released v4") {
			t.Errorf("scale -m printed %q", out)
		}
		waitBody(t, mc.routerAddr, "envapp.localhost", "release 4", 30*time.Second)
		_, code := c.run("", "strata", "scale", "envapp", "--process", "nope", "-i", "1")
		if code != 1 {
			t.Errorf("scaling an unknown process type exited %d", code)
		}
	})

	t.Run("stop, start and restart", func(t *testing.T) {
		c.must("", "strata", "stop", "envapp")
		waitFor(t, "the stopped app to stop serving", 30*time.Second, func() (bool, string) {
			code, body, err := routerGet(mc.routerAddr, "envapp.localhost", "/")
			a := c.app("envapp")
			return err == nil && code != 200 && len(a.Instances) == 0, body
		})
		c.must("", "strata", "start", "envapp")
		waitBody(t, mc.routerAddr, "envapp.localhost", "release 4", 30*time.Second)
		out := c.must("", "strata", "restart", "envapp")
		if !strings.Contains(out, "released v5") {
			t.Errorf("restart printed %q", out)
		}
		waitBody(t, mc.routerAddr, "envapp.localhost", "release 5", 30*time.Second)
		waitFor(t, "restart to replace the worker too", 30*time.Second, func() (bool, string) {
			a := c.app("envapp")
			return a.running("worker", 5) == 1 && len(a.Instances) == 2, c.must("", "strata", "app", "envapp")
		})
	})

	t.Run("manifest", func(t *testing.T) {
		dir := copyDir(t, envDir)
		os.WriteFile(filepath.Join(dir, "strata.yml"), []byte(`applications:
- name: fromyml
  instances: 2
  memory: 128M
  env: {GREETING: "From the manifest"}
  routes:
  - route: fromyml.localhost
  - route: docs.localhost/guide
  processes:
  - {type: worker, instances: 1}
`), 0o644)
		out := c.must("", "strata", "push", "-p", dir)
		if !strings.Contains(out, "fromyml.localhost") || !strings.Contains(out, "manifest: worker instances 0 → 1") {
			t.Errorf("manifest push printed:\n%s", out)
		}
		waitBody(t, mc.routerAddr, "fromyml.localhost", "From the manifest", 30*time.Second)
		waitFor(t, "2 web and 1 worker from the manifest", 30*time.Second, func() (bool, string) {
			a := c.app("fromyml")
			return a.running("web", 0) == 2 && a.running("worker", 0) == 1, c.must("", "strata", "app", "fromyml")
		})
		// The manifest's path route: only paths under /guide of docs.localhost.
		waitStatus(t, mc.routerAddr, "docs.localhost", "/guide/intro", 200, "From the manifest")
		waitStatus(t, mc.routerAddr, "docs.localhost", "/other", 404, "")

		// A route mapped to the running app is served without restarting
		// its instances; unmapped, the router forgets it.
		before := c.must("", "strata", "app", "fromyml", "--json")
		out = c.must("", "strata", "routes", "map", "fromyml", "extra")
		if !strings.Contains(out, "Mapped extra.localhost to fromyml") {
			t.Errorf("routes map printed %q", out)
		}
		waitStatus(t, mc.routerAddr, "extra.localhost", "/", 200, "From the manifest")
		if out := c.must("", "strata", "routes"); !strings.Contains(out, "extra.localhost") || !strings.Contains(out, "/guide") {
			t.Errorf("strata routes:\n%s", out)
		}
		if after := c.must("", "strata", "app", "fromyml", "--json"); startedAts(t, after) != startedAts(t, before) {
			t.Errorf("instances restarted by a route change:\nbefore %s\nafter %s", startedAts(t, before), startedAts(t, after))
		}
		c.must("", "strata", "routes", "unmap", "fromyml", "extra")
		// Unmapped: 404 at once, not held like a route whose instances restart.
		waitUnmapped(t, mc.routerAddr, "extra.localhost", "/")
		waitStatus(t, mc.routerAddr, "fromyml.localhost", "/", 200, "From the manifest")
		// A bad manifest fails before anything is pushed, naming the line.
		os.WriteFile(filepath.Join(dir, "strata.yml"), []byte("applications:\n- name: fromyml\n  instances: 2\n  colour: blue\n"), 0o644)
		out, code := c.run("", "strata", "push", "-p", dir)
		if code != 1 || !strings.Contains(out, "line 4: unknown key \"colour\"") {
			t.Errorf("bad manifest: exit %d\n%s", code, out)
		}
	})

	t.Run("events", func(t *testing.T) {
		out := c.must("", "strata", "events", "envapp")
		for _, want := range []string{"push", "build.staged", "release", "env", "scale", "app.stop", "app.start", "restart", "admin"} {
			if !strings.Contains(out, want) {
				t.Errorf("events lack %q:\n%s", want, out)
			}
		}
		if strings.Contains(out, "Howdy") {
			t.Errorf("events leak a config value:\n%s", out)
		}
		if out := c.must("", "strata", "events", "lc"); !strings.Contains(out, "rollback") {
			t.Errorf("events of lc lack the rollback:\n%s", out)
		}
	})

	t.Run("orgs and their placement", func(t *testing.T) {
		out := c.must("", "strata", "orgs", "set-placement", "default", "--isolation", "any")
		if !strings.Contains(out, "Org default places apps on: any") {
			t.Errorf("orgs set-placement printed %q", out)
		}
		var orgs []struct {
			Name      string `json:"name"`
			Spaces    int    `json:"spaces"`
			Placement struct {
				Isolation string `json:"isolation"`
			} `json:"placement"`
		}
		if err := json.Unmarshal([]byte(c.must("", "strata", "orgs", "--json")), &orgs); err != nil || len(orgs) != 1 ||
			orgs[0].Name != "default" || orgs[0].Spaces != 1 || orgs[0].Placement.Isolation != "any" {
			t.Errorf("orgs --json = %+v, %v", orgs, err)
		}
		c.must("", "strata", "orgs", "set-placement", "default", "--clear")
		if out, code := c.run("", "strata", "orgs", "set-placement", "acme", "--clear"); code != 1 || !strings.Contains(out, "org \"acme\" not found") {
			t.Errorf("unknown org: exit %d %q", code, out)
		}
	})
}

// waitStatus polls host+path through the router until it answers code with a
// body containing want.
func waitStatus(t testing.TB, addr, host, path string, code int, want string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	var last string
	for time.Now().Before(deadline) {
		got, body, err := routerGet(addr, host, path)
		if err == nil && got == code && strings.Contains(body, want) {
			return
		}
		last = fmt.Sprintf("status %d, body %q, err %v", got, tail(body, 200), err)
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%s%s via router: no %d with %q within 30s; last: %s", host, path, code, want, last)
}

// startedAts lists the web instances' start times from `strata app --json`.
func startedAts(t testing.TB, appJSON string) string {
	t.Helper()
	var d struct {
		Instances []struct {
			Process   string    `json:"process"`
			Index     int       `json:"index"`
			State     string    `json:"state"`
			StartedAt time.Time `json:"started_at"`
		} `json:"instances"`
	}
	if err := json.Unmarshal([]byte(appJSON), &d); err != nil {
		t.Fatalf("strata app --json: %v", err)
	}
	var out []string
	for _, in := range d.Instances {
		if in.Process == "web" {
			out = append(out, fmt.Sprintf("%d:%s:%s", in.Index, in.State, in.StartedAt.Format(time.RFC3339Nano)))
		}
	}
	if len(out) == 0 {
		t.Fatalf("strata app --json lists no web instance: %s", appJSON)
	}
	sort.Strings(out)
	return strings.Join(out, " ")
}
