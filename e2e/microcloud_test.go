package e2e_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const helloBody = "Hello from Strata!"

// TestMicrocloud drives one microcloud the way a newcomer does: log in, push
// the example app with git and with strata push, reach it through the router,
// see a broken build fail, read logs, then restart the microcloud and find the
// app serving again without a push.
func TestMicrocloud(t *testing.T) {
	require(t, "git", "go")
	data := t.TempDir()
	mc := startMicrocloud(t, data)
	c := newCLI(t)

	if fi, err := os.Stat(mc.tokenFile); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("admin.token: %v, mode %v; want a 0600 file", err, fi.Mode().Perm())
	}
	out := c.must("", "strata", "login", "--api", mc.api, "--token-file", mc.tokenFile)
	t.Logf("login: %s", out)

	t.Run("unauthenticated API is refused", func(t *testing.T) {
		out, code := c.run("", "strata", "apps", "--api", mc.api)
		_ = out
		if code != 0 {
			t.Fatalf("apps after login should work, got exit %d: %s", code, out)
		}
		cc := newCLI(t)
		cc.env = append(cc.env, "STRATA_API="+mc.api, "STRATA_TOKEN=wrong")
		out, code = cc.run("", "strata", "apps")
		if code == 0 || !strings.Contains(out, "error:") {
			t.Fatalf("apps with a wrong token: exit %d, output %q; want an error", code, out)
		}
	})

	t.Run("the API answers at api.localhost through the router", func(t *testing.T) {
		_, port, _ := strings.Cut(mc.routerAddr, ":")
		viaRouter := "http://api.localhost:" + port
		deadline := time.Now().Add(20 * time.Second)
		for {
			code, body, err := routerGet(mc.routerAddr, "api.localhost", "/v1/info")
			if err == nil && code == 200 && strings.Contains(body, `"version"`) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("GET api.localhost/v1/info via the router: %d %q %v", code, tail(body, 300), err)
			}
			time.Sleep(100 * time.Millisecond)
		}
		cc := newCLI(t)
		cc.must("", "strata", "login", "--api", viaRouter, "--token-file", mc.tokenFile)
		if out := cc.must("", "strata", "apps"); strings.Contains(out, "error") {
			t.Fatalf("strata apps through %s: %s", viaRouter, out)
		}
	})

	// git push of examples/hello-go.
	app := copyDir(t, filepath.Join(repoRoot(), "examples", "hello-go"))
	gitRepo(t, c, app)
	out = c.must(app, "strata", "git-remote", "hello")
	t.Logf("git-remote: %s", out)
	out = c.must(app, "git", "push", "strata", "main")
	t.Logf("git push:\n%s", out)
	for _, want := range []string{"remote:", "v1", "hello.localhost"} {
		if !strings.Contains(out, want) {
			t.Errorf("git push output lacks %q:\n%s", want, out)
		}
	}
	waitBody(t, mc.routerAddr, "hello.localhost", helloBody, 30*time.Second)

	// strata push of the same example under another name.
	out = c.must("", "strata", "push", "hello2", "-p", app)
	t.Logf("strata push:\n%s", out)
	if !strings.Contains(out, "hello2.localhost") {
		t.Errorf("strata push output lacks the app URL:\n%s", out)
	}
	waitBody(t, mc.routerAddr, "hello2.localhost", helloBody, 30*time.Second)

	// A static site is served by the static buildpack's file server.
	out = c.must("", "strata", "push", "site", "-p", filepath.Join(repoRoot(), "examples", "static-site"))
	if !strings.Contains(out, "static") {
		t.Errorf("static push does not name the static buildpack:\n%s", out)
	}
	waitBody(t, mc.routerAddr, "site.localhost", "Hello from a static site", 30*time.Second)

	// A second git push after a one-line change deploys release 2.
	main := filepath.Join(app, "main.go")
	src, _ := os.ReadFile(main)
	os.WriteFile(main, []byte(strings.Replace(string(src), helloBody, "Hello again from Strata!", 1)), 0o644)
	c.must(app, "git", "commit", "-qam", "change greeting")
	out = c.must(app, "git", "push", "strata", "main")
	if !strings.Contains(out, "v2") {
		t.Errorf("second push output lacks v2:\n%s", out)
	}
	waitBody(t, mc.routerAddr, "hello.localhost", "Hello again from Strata!", 30*time.Second)

	// A broken app: git push fails with the build error.
	broken := copyDir(t, filepath.Join(repoRoot(), "examples", "broken-go"))
	gitRepo(t, c, broken)
	c.must(broken, "strata", "git-remote", "broken")
	out, code := c.run(broken, "git", "push", "strata", "main")
	t.Logf("broken push (exit %d):\n%s", code, out)
	if code == 0 {
		t.Errorf("git push of a broken app exited 0, want failure")
	}
	for _, want := range []string{"thisFunctionDoesNotExist", "compile failed"} {
		if !strings.Contains(out, want) {
			t.Errorf("broken push output lacks %q", want)
		}
	}

	// Unknown host: a clear 404 from the router.
	code, body, err := routerGet(mc.routerAddr, "nope.localhost", "/")
	if err != nil || code != 404 {
		t.Errorf("unknown host: status %d err %v, want 404", code, err)
	}
	if !strings.Contains(body, "nope.localhost") {
		t.Errorf("404 page does not name the host: %q", body)
	}

	// Reads: apps --json, app, logs.
	var apps []map[string]any
	out = c.must("", "strata", "apps", "--json")
	if err := json.Unmarshal([]byte(out), &apps); err != nil {
		t.Fatalf("apps --json is not a JSON list: %v\n%s", err, out)
	}
	names := map[string]bool{}
	for _, a := range apps {
		names[a["name"].(string)] = true
	}
	for _, n := range []string{"hello", "hello2", "broken"} {
		if !names[n] {
			t.Errorf("apps --json lacks %s: %s", n, out)
		}
	}
	out = c.must("", "strata", "app", "hello")
	if !strings.Contains(out, "running") {
		t.Errorf("strata app hello shows no running instance:\n%s", out)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		out = c.must("", "strata", "logs", "hello", "--recent")
		if strings.Contains(out, "hello listening") && strings.Contains(out, "staging") {
			break
		}
		if time.Now().After(deadline) {
			t.Errorf("strata logs hello --recent lacks app output or staging lines:\n%s", out)
			break
		}
		time.Sleep(100 * time.Millisecond)
	}

	// logs -f follows live: a request through the router shows up as an
	// access line while the command runs.
	follow := start(t, "strata logs -f", c.env, "strata", "logs", "hello", "-f")
	followed := false
	for deadline := time.Now().Add(15 * time.Second); !followed && time.Now().Before(deadline); {
		// Requests repeat until one arrives after the follower subscribed.
		routerGet(mc.routerAddr, "hello.localhost", "/followed-request")
		time.Sleep(200 * time.Millisecond)
		for _, l := range follow.output() {
			followed = followed || strings.Contains(l, "GET /followed-request 200")
		}
	}
	if !followed {
		t.Errorf("strata logs -f showed no access line for a request made while following")
	}
	follow.kill()

	// Restart: the app comes back from the database without a push.
	mc.stop(30 * time.Second)
	mc2 := startMicrocloud(t, data)
	waitBody(t, mc2.routerAddr, "hello.localhost", "Hello again from Strata!", 60*time.Second)
	waitBody(t, mc2.routerAddr, "hello2.localhost", helloBody, 60*time.Second)

	// Delete: the app's route goes away.
	c.must("", "strata", "login", "--api", mc2.api, "--token-file", mc2.tokenFile)
	c.must("", "strata", "apps", "delete", "hello2", "--force")
	deadline = time.Now().Add(15 * time.Second)
	for {
		code, _, _ := routerGet(mc2.routerAddr, "hello2.localhost", "/")
		if code == 404 || code == 503 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("deleted app still answers with %d", code)
		}
		time.Sleep(100 * time.Millisecond)
	}
	mc2.stop(30 * time.Second)
}
