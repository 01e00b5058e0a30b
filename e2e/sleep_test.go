package e2e_test

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestScaleToZero: examples/hello-go scaled to zero after 1m (the shortest
// idle time) stops its web instance once no request has come for that long,
// `strata app` says it sleeps, and the next request through the router is
// held while the app wakes and answered 200.
func TestScaleToZero(t *testing.T) {
	require(t, "go")
	mc := startMicrocloud(t, t.TempDir())
	c := newCLI(t)
	c.must("", "strata", "login", "--api", mc.api, "--token-file", mc.tokenFile)
	c.must("", "strata", "push", "sleepy", "-p", copyDir(t, filepath.Join(repoRoot(), "examples", "hello-go")))
	waitBody(t, mc.routerAddr, "sleepy.localhost", helloBody, 60*time.Second)
	if out := c.must("", "strata", "scale", "sleepy", "--scale-to-zero", "1m"); !strings.Contains(out, "Scale to zero after 1m without requests") {
		t.Fatalf("scale --scale-to-zero printed %q", out)
	}

	// Idle for a minute (plus a router report and a converger pass): no web
	// instance runs and the app says it sleeps.
	waitFor(t, "the app asleep with no web instance", 3*time.Minute, func() (bool, string) {
		out := c.must("", "strata", "app", "sleepy", "--json")
		var d struct {
			Sleeping  bool `json:"sleeping"`
			Instances []struct {
				Process string `json:"process"`
			} `json:"instances"`
		}
		if err := json.Unmarshal([]byte(out), &d); err != nil {
			return false, out
		}
		web := 0
		for _, in := range d.Instances {
			if in.Process == "web" {
				web++
			}
		}
		return d.Sleeping && web == 0, out
	})
	out := c.must("", "strata", "app", "sleepy")
	if !strings.Contains(out, "sleeping") || !strings.Contains(out, "last served") {
		t.Errorf("strata app of a sleeping app:\n%s", out)
	}

	// The next request is held while the app wakes, and served.
	start := time.Now()
	code, body, err := routerGet(mc.routerAddr, "sleepy.localhost", "/")
	if err != nil || code != 200 || !strings.Contains(body, "Hello from Strata!") {
		t.Fatalf("the first request to the sleeping app: %d %q %v", code, tail(body, 300), err)
	}
	t.Logf("woken and answered in %s", time.Since(start).Round(time.Millisecond))
	// The controller hears the instance run from its node's next heartbeat.
	waitFor(t, "one running web instance, not sleeping", 30*time.Second, func() (bool, string) {
		out := c.must("", "strata", "app", "sleepy")
		return c.app("sleepy").running("web", 0) == 1 && !strings.Contains(out, "sleeping"), out
	})
}
