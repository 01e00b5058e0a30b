package e2e_test

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// goApp writes a one-file Go app (main.go under module example.com/app) and
// returns its directory; extra files are written next to it.
func goApp(t testing.TB, main string, extra map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	files := map[string]string{"go.mod": "module example.com/app\n\ngo 1.22\n", "main.go": main}
	for k, v := range extra {
		files[k] = v
	}
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// crashyApp serves for 2 s, logs a last line, and exits with code 7.
const crashyApp = `package main

import (
	"fmt"
	"net/http"
	"os"
	"time"
)

func main() {
	go func() {
		time.Sleep(2 * time.Second)
		fmt.Println("about to crash at", time.Now().UTC().Format(time.RFC3339Nano))
		os.Exit(7)
	}()
	http.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) { fmt.Fprintln(w, "crashy") })
	fmt.Println(http.ListenAndServe(":"+os.Getenv("PORT"), nil))
}
`

// neverListensApp runs but never opens its port.
const neverListensApp = `package main

import (
	"fmt"
	"time"
)

func main() {
	fmt.Println("starting, but never listening")
	time.Sleep(time.Hour)
}
`

type eventJSON struct {
	Type    string    `json:"type"`
	Message string    `json:"message"`
	Time    time.Time `json:"time"`
}

// crashEvents returns the app's instance.crashed events, oldest first.
func (c *cli) crashEvents(app string) []eventJSON {
	c.t.Helper()
	var evs []eventJSON
	out := c.must("", "strata", "events", app, "--json")
	if err := json.Unmarshal([]byte(out), &evs); err != nil {
		c.t.Fatalf("events --json: %v\n%s", err, out)
	}
	var crashes []eventJSON
	for i := len(evs) - 1; i >= 0; i-- {
		if evs[i].Type == "instance.crashed" {
			crashes = append(crashes, evs[i])
		}
	}
	return crashes
}

// TestOperate drives crash recovery, zero-downtime redeploys, automatic
// rollback of an unhealthy release and one-off tasks through the real
// binaries.
func TestOperate(t *testing.T) {
	require(t, "go")
	mc := startMicrocloud(t, t.TempDir())
	c := newCLI(t)
	c.must("", "strata", "login", "--api", mc.api, "--token-file", mc.tokenFile)

	t.Run("crash recovery with growing delays and the last lines", func(t *testing.T) {
		c.must("", "strata", "push", "crashy", "-p", goApp(t, crashyApp, nil))
		// Three immediate restarts, then 1 s, 2 s, 4 s of backoff: 6 crashes.
		var crashes []eventJSON
		waitFor(t, "6 crash events", 90*time.Second, func() (bool, string) {
			crashes = c.crashEvents("crashy")
			return len(crashes) >= 6, fmt.Sprintf("%d crashes", len(crashes))
		})
		gap := func(i int) time.Duration { return crashes[i].Time.Sub(crashes[i-1].Time) }
		// Each run lasts ~2 s; the backoff adds 0, 0, 1, 2, 4 s between crashes.
		if !(gap(5) > gap(4) && gap(4) > gap(2)) {
			t.Errorf("crash gaps %v %v %v %v %v, want growing delays after the immediate restarts", gap(1), gap(2), gap(3), gap(4), gap(5))
		}
		for _, e := range crashes {
			if !strings.Contains(e.Message, "exit code 7") || !strings.Contains(e.Message, "about to crash at") {
				t.Fatalf("crash event %q lacks the exit code or the last output line", e.Message)
			}
		}
		if m := regexp.MustCompile(`restarts so far: (\d+)`).FindStringSubmatch(crashes[5].Message); m == nil || m[1] != "5" {
			t.Errorf("6th crash event %q, want 5 restarts so far", crashes[5].Message)
		}
		var a struct {
			Instances []struct {
				Restarts int `json:"restarts"`
			} `json:"instances"`
		}
		if err := json.Unmarshal([]byte(c.must("", "strata", "app", "crashy", "--json")), &a); err != nil || len(a.Instances) != 1 || a.Instances[0].Restarts < 5 {
			t.Errorf("app --json instances %+v (%v), want one with at least 5 restarts", a.Instances, err)
		}
		// The lines written just before each crash are in the log store.
		logs := c.must("", "strata", "logs", "crashy", "--recent")
		if n := strings.Count(logs, "about to crash at"); n < 6 {
			t.Errorf("logs --recent holds %d pre-crash lines, want at least 6:\n%s", n, tail(logs, 3000))
		}
		c.must("", "strata", "stop", "crashy")
	})

	helloDir := copyDir(t, filepath.Join(repoRoot(), "examples", "hello-go"))
	t.Run("rolling redeploy under load loses no request", func(t *testing.T) {
		c.must("", "strata", "push", "zd", "-p", helloDir)
		c.must("", "strata", "scale", "zd", "-i", "2")
		waitFor(t, "2 running instances", 60*time.Second, func() (bool, string) {
			a := c.app("zd")
			return a.running("web", 0) == 2, fmt.Sprintf("%+v", a.Instances)
		})
		stop := make(chan struct{})
		var sent, failed atomic.Int64
		var mu sync.Mutex
		var failures []string
		var wg sync.WaitGroup
		wg.Add(1)
		go func() { // 50 req/s, each checked
			defer wg.Done()
			tick := time.NewTicker(20 * time.Millisecond)
			defer tick.Stop()
			for {
				select {
				case <-stop:
					return
				case <-tick.C:
				}
				wg.Add(1)
				sent.Add(1)
				go func() {
					defer wg.Done()
					code, body, err := routerGet(mc.routerAddr, "zd.localhost", "/")
					if err != nil || code != 200 || !strings.Contains(body, helloBody) {
						failed.Add(1)
						mu.Lock()
						failures = append(failures, fmt.Sprintf("%d %q %v", code, tail(body, 100), err))
						mu.Unlock()
					}
				}()
			}
		}()
		began := time.Now()
		out := c.must("", "strata", "env", "set", "zd", "ROLL=1")
		if !strings.Contains(out, "released v2") {
			t.Errorf("env set printed %q", out)
		}
		waitFor(t, "both instances at v2", 60*time.Second, func() (bool, string) {
			a := c.app("zd")
			return a.running("web", 2) == 2 && len(a.Instances) == 2, fmt.Sprintf("%+v", a.Instances)
		})
		if rest := 20*time.Second - time.Since(began); rest > 0 {
			time.Sleep(rest) // keep the load on for 20 s in all
		}
		close(stop)
		wg.Wait()
		t.Logf("%d requests during the rolling redeploy, %d failed", sent.Load(), failed.Load())
		if failed.Load() != 0 || sent.Load() < 500 {
			t.Fatalf("%d of %d requests failed: %v", failed.Load(), sent.Load(), failures)
		}
	})

	t.Run("a release that never becomes healthy rolls back", func(t *testing.T) {
		waitBody(t, mc.routerAddr, "zd.localhost", helloBody, 30*time.Second)
		bad := goApp(t, neverListensApp, map[string]string{"strata.yml": "applications:\n- name: zd\n  timeout: 2\n"})
		out, code := c.run("", "strata", "push", "-p", bad)
		if code != 1 || !strings.Contains(out, "did not become healthy") || !strings.Contains(out, "rolled back to v2") {
			t.Fatalf("push of a never-listening app: exit %d\n%s\nwant exit 1 naming the failure and the rollback", code, out)
		}
		if a := c.app("zd"); a.CurrentRelease != 2 {
			t.Errorf("current release %d after the rollback, want 2", a.CurrentRelease)
		}
		for range 20 { // the previous release keeps serving
			if code, body, err := routerGet(mc.routerAddr, "zd.localhost", "/"); err != nil || code != 200 || !strings.Contains(body, "release 2") {
				t.Fatalf("after the rollback: %d %q %v, want release 2's body", code, body, err)
			}
		}
		if out := c.must("", "strata", "events", "zd"); !strings.Contains(out, "automatic rollback to v2") {
			t.Errorf("events lack the automatic rollback:\n%s", out)
		}
		waitFor(t, "v3 instances stopped", 30*time.Second, func() (bool, string) {
			a := c.app("zd")
			return a.running("web", 2) == 2 && len(a.Instances) == 2, fmt.Sprintf("%+v", a.Instances)
		})
	})

	t.Run("one-off tasks", func(t *testing.T) {
		out, code := c.run("", "strata", "run", "zd", "--", "sh", "-c", "exit 3")
		if code != 3 {
			t.Fatalf("run sh -c 'exit 3': exit %d\n%s", code, out)
		}
		out = c.must("", "strata", "run", "zd", "--", "echo", "hi")
		if !regexp.MustCompile(`(?m)^hi$`).MatchString(out) {
			t.Fatalf("run echo hi printed %q", out)
		}
		out = c.must("", "strata", "run", "zd", "--", "echo $ROLL $STRATA_RELEASE")
		if !regexp.MustCompile(`(?m)^1 2$`).MatchString(out) {
			t.Fatalf("task env: printed %q, want the release's config var and version", out)
		}
		if a := c.app("zd"); len(a.Instances) != 2 {
			t.Errorf("tasks show as instances: %+v", a.Instances)
		}
		if out := c.must("", "strata", "events", "zd"); !strings.Contains(out, "task") {
			t.Errorf("events lack the tasks:\n%s", out)
		}
	})

	t.Run("app shows usage and the health check", func(t *testing.T) {
		out := c.must("", "strata", "health-check", "zd", "--type", "http", "--path", "/healthz")
		if !strings.Contains(out, "health http /healthz") {
			t.Errorf("health-check printed %q", out)
		}
		c.must("", "strata", "restart", "zd")
		waitFor(t, "usage shown", 60*time.Second, func() (bool, string) {
			out := c.must("", "strata", "app", "zd")
			return strings.Contains(out, "health http /healthz") && regexp.MustCompile(`running .*\d+\.\d%\s+\d+\.\dM`).MatchString(out), out
		})
	})
}
