package e2e_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// The compose cluster (docker-compose.yml, `make images`, `make
// cluster-up`): PostgreSQL, three controllers whose embedded NATS servers
// form one cluster, two routers and three executors, each a container on
// private networks. TestComposeCluster drives it as users do (the strata
// CLI and curl through api.localhost on the routers) while a checker keeps
// creating apps — each acknowledged create is recorded — and faults are
// injected with docker: the leader killed, the leader cut off from the
// database network, an executor killed, PostgreSQL restarted. After the
// faults every acknowledged app must exist (zero lost).

const (
	composeProject = "strata"
	composeAPI     = "http://api.localhost:18080"
	composeRouter1 = "127.0.0.1:18080"
	composeRouter2 = "127.0.0.1:18081"
)

// compose runs docker-compose on the project and returns its output.
func compose(t testing.TB, args ...string) string {
	t.Helper()
	cmd := exec.Command("docker-compose", append([]string{"-p", composeProject}, args...)...)
	cmd.Dir = repoRoot()
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("docker-compose %s: %v\n%s", strings.Join(args, " "), err, tail(string(out), 3000))
	}
	return string(out)
}

// leaseHolder asks PostgreSQL which controller holds the leader lease.
func leaseHolder(t testing.TB) string {
	t.Helper()
	out := compose(t, "exec", "-T", "-e", "PGPASSWORD=strata", "postgres", "psql", "-h", "127.0.0.1", "-U", "strata", "-d", "strata", "-tAc",
		"SELECT holder FROM leases WHERE name = 'leader' AND expires_at > now()")
	return strings.TrimSpace(out)
}

// waitHolder waits until a controller other than not (when set) holds the
// lease and returns it.
func waitHolder(t testing.TB, not string, timeout time.Duration) string {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		h := leaseHolder(t)
		if h != "" && h != not {
			return h
		}
		if time.Now().After(deadline) {
			t.Fatalf("no controller other than %q took the leader lease within %s (holder %q)", not, timeout, h)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// checker creates apps through the one API address, alternating between
// the routers, retrying each create with the same Idempotency-Key until it
// is acknowledged, and records what was acknowledged.
type checker struct {
	token string
	mu    sync.Mutex
	acked []string
	tries int
	fails []string // the last errors seen, for the log
}

func (k *checker) create(ctx context.Context, name string, router string) error {
	body, _ := json.Marshal(map[string]string{"name": name})
	req, err := http.NewRequestWithContext(ctx, "POST", "http://"+router+"/v1/apps", bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Host = "api.localhost"
	req.Header.Set("Authorization", "Bearer "+k.token)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Idempotency-Key", "checker-"+name)
	res, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusCreated {
		return fmt.Errorf("status %d", res.StatusCode)
	}
	return nil
}

// run creates ck-0, ck-1, … until ctx ends, one at a time.
func (k *checker) run(ctx context.Context) {
	routers := []string{composeRouter1, composeRouter2}
	for i := 0; ctx.Err() == nil; i++ {
		name := fmt.Sprintf("ck-%d", i)
		for try := 0; ctx.Err() == nil; try++ {
			k.mu.Lock()
			k.tries++
			k.mu.Unlock()
			err := k.create(ctx, name, routers[(i+try)%2])
			if err == nil {
				k.mu.Lock()
				k.acked = append(k.acked, name)
				k.mu.Unlock()
				break
			}
			k.mu.Lock()
			k.fails = append(k.fails, name+": "+err.Error())
			if len(k.fails) > 20 {
				k.fails = k.fails[1:]
			}
			k.mu.Unlock()
			select {
			case <-ctx.Done():
			case <-time.After(500 * time.Millisecond):
			}
		}
		select {
		case <-ctx.Done():
		case <-time.After(300 * time.Millisecond):
		}
	}
}

func (k *checker) snapshot() (acked []string, tries int, fails []string) {
	k.mu.Lock()
	defer k.mu.Unlock()
	return append([]string(nil), k.acked...), k.tries, append([]string(nil), k.fails...)
}

// runningOf returns the running instances of app by node, from `strata app
// --json` through the one address.
func runningOf(t testing.TB, c *cli, app string) map[string]int {
	t.Helper()
	out := c.must("", "strata", "app", app, "--json")
	var d struct {
		Instances []struct {
			NodeID string `json:"node_id"`
			State  string `json:"state"`
			Index  int    `json:"index"`
		} `json:"instances"`
	}
	if err := json.Unmarshal([]byte(out), &d); err != nil {
		t.Fatalf("strata app --json: %v\n%s", err, out)
	}
	by := map[string]int{}
	for _, in := range d.Instances {
		if in.State == "running" {
			by[in.NodeID]++
		}
	}
	return by
}

func total(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}

func TestComposeCluster(t *testing.T) {
	require(t, "docker", "docker-compose", "make", "go", "git")
	root := repoRoot()
	run := func(name string, args ...string) {
		t.Helper()
		cmd := exec.Command(name, args...)
		cmd.Dir = root
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, tail(string(out), 4000))
		}
		t.Logf("%s %s:\n%s", name, strings.Join(args, " "), tail(string(out), 1500))
	}
	run("make", "images")
	t.Cleanup(func() {
		if t.Failed() {
			cmd := exec.Command("docker-compose", "-p", composeProject, "logs", "--tail", "60")
			cmd.Dir = root
			out, _ := cmd.CombinedOutput()
			t.Logf("cluster logs:\n%s", tail(string(out), 20000))
		}
		cmd := exec.Command("make", "cluster-down")
		cmd.Dir = root
		_ = cmd.Run()
	})
	run("make", "cluster-up")

	tokenOut := compose(t, "exec", "-T", "controller-1", "cat", "/creds/admin.token")
	token := strings.TrimSpace(tokenOut)
	tokenFile := filepath.Join(t.TempDir(), "admin.token")
	if err := os.WriteFile(tokenFile, []byte(token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c := newCLI(t)
	c.must("", "strata", "login", "--api", composeAPI, "--token-file", tokenFile)
	c1, c2 := newCLI(t), newCLI(t)
	c1.must("", "strata", "login", "--api", "http://127.0.0.1:17070", "--token-file", tokenFile)
	c2.must("", "strata", "login", "--api", "http://127.0.0.1:17071", "--token-file", tokenFile)

	// Push through controller 1, read through controller 2.
	out := c1.must("", "strata", "push", "web", "-p", filepath.Join(root, "examples", "hello-go"))
	t.Logf("push through controller-1:\n%s", out)
	c1.must("", "strata", "scale", "web", "-i", "2")
	waitBody(t, composeRouter1, "web.localhost", helloBody, 120*time.Second)
	waitBody(t, composeRouter2, "web.localhost", helloBody, 30*time.Second)
	for deadline := time.Now().Add(60 * time.Second); total(runningOf(t, c2, "web")) != 2; time.Sleep(500 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("through controller-2: web runs %v, want 2 instances", runningOf(t, c2, "web"))
		}
	}

	// The checker runs through every fault.
	ctx, cancel := context.WithCancel(context.Background())
	k := &checker{token: token}
	done := make(chan struct{})
	go func() { defer close(done); k.run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	waitAcked := func(what string, more int) {
		t.Helper()
		acked, _, _ := k.snapshot()
		want := len(acked) + more
		deadline := time.Now().Add(90 * time.Second)
		for {
			a, tries, fails := k.snapshot()
			if len(a) >= want {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: the checker got %d acknowledged creates of %d wanted after %d tries; last errors: %v", what, len(a), want, tries, fails)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	waitAcked("before the faults", 3)
	// A client curls web through both routers all along; its errors are
	// logged (an executor's death fails requests until its routes expire).
	var curls, curlErrs int
	var curlMu sync.Mutex
	curlDone := make(chan struct{})
	go func() {
		defer close(curlDone)
		for i := 0; ctx.Err() == nil; i++ {
			code, _, err := routerGet([]string{composeRouter1, composeRouter2}[i%2], "web.localhost", "/")
			curlMu.Lock()
			curls++
			if err != nil || code != 200 {
				curlErrs++
			}
			curlMu.Unlock()
			time.Sleep(100 * time.Millisecond)
		}
	}()
	t.Cleanup(func() { cancel(); <-curlDone })

	// 1. docker kill the leader: another leads within the lease time, and a
	// scale made through a survivor completes.
	leader := waitHolder(t, "", 30*time.Second)
	t.Logf("leader: %s", leader)
	compose(t, "kill", leader)
	next := waitHolder(t, leader, 30*time.Second)
	t.Logf("after killing %s, %s leads", leader, next)
	c.must("", "strata", "scale", "web", "-i", "3")
	for deadline := time.Now().Add(120 * time.Second); total(runningOf(t, c, "web")) != 3; time.Sleep(500 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("web not at 3 running instances 120 s after the scale: %v", runningOf(t, c, "web"))
		}
	}
	waitAcked("after killing the leader", 3)
	compose(t, "start", leader)

	// 2. Cut the leader off the database network: it stops acting and
	// another takes the lease.
	leader = waitHolder(t, "", 30*time.Second)
	dbNet := composeProject + "_db"
	container := strings.TrimSpace(compose(t, "ps", "-q", leader))
	if out, err := exec.Command("docker", "network", "disconnect", dbNet, container).CombinedOutput(); err != nil {
		t.Fatalf("docker network disconnect %s %s: %v\n%s", dbNet, leader, err, out)
	}
	next = waitHolder(t, leader, 30*time.Second)
	t.Logf("after cutting %s off the database, %s leads", leader, next)
	waitAcked("with the old leader cut off", 3)
	if out, err := exec.Command("docker", "network", "connect", dbNet, container).CombinedOutput(); err != nil {
		t.Fatalf("docker network connect %s %s: %v\n%s", dbNet, leader, err, out)
	}
	logs := compose(t, "logs", "--no-color", leader)
	if !strings.Contains(logs, "leader.stopped") {
		t.Errorf("%s, cut off the database, never logged leader.stopped", leader)
	}

	// 3. Kill a NATS server (the one embedded in a controller that neither
	// leads nor takes the push) while a push is being built: the build
	// queue is replicated, so an accepted build is not lost. First every
	// controller answers again after the faults above.
	for _, port := range []string{"17070", "17071", "17072"} {
		for deadline := time.Now().Add(90 * time.Second); ; time.Sleep(500 * time.Millisecond) {
			res, err := http.Get("http://127.0.0.1:" + port + "/v1/info")
			if err == nil {
				res.Body.Close()
				if res.StatusCode == 200 {
					break
				}
			}
			if time.Now().After(deadline) {
				t.Fatalf("the controller on port %s does not answer after the earlier faults: %v", port, err)
			}
		}
	}
	leader = waitHolder(t, "", 30*time.Second)
	var via, victimCtl string
	ports := map[string]string{"controller-1": "17070", "controller-2": "17071", "controller-3": "17072"}
	for _, name := range []string{"controller-1", "controller-2", "controller-3"} {
		switch {
		case name == leader:
		case via == "":
			via = name
		case victimCtl == "":
			victimCtl = name
		}
	}
	cv := newCLI(t)
	cv.must("", "strata", "login", "--api", "http://127.0.0.1:"+ports[via], "--token-file", tokenFile)
	push := func() string {
		out, code := cv.run("", "strata", "push", "queued", "-p", filepath.Join(root, "examples", "hello-go"))
		return fmt.Sprintf("exit %d:\n%s", code, out)
	}
	pushed := make(chan string, 1)
	go func() { pushed <- push() }()
	time.Sleep(500 * time.Millisecond) // the push is uploading or queued
	compose(t, "kill", victimCtl)
	killedAt := time.Now()
	t.Logf("killed %s (its NATS server) during a push through %s", victimCtl, via)
	var res string
	select {
	case res = <-pushed:
	case <-time.After(180 * time.Second):
		t.Fatal("the push did not end within 180 s of killing a NATS server")
	}
	// A push refused before it was accepted (answered "retry": its upload
	// met the stream's election) is pushed again, as a user would, every
	// 5 s; after a minute of refusals the killed server is started again.
	// An accepted push must have completed. How long pushes were refused
	// is logged.
	restarted := false
	for try := 1; !strings.HasPrefix(res, "exit 0:"); try++ {
		if !strings.Contains(res, "retry") || time.Since(killedAt) > 180*time.Second {
			t.Fatalf("push through %s while %s was killed (attempt %d, %s after the kill): %s", via, victimCtl, try, time.Since(killedAt).Round(time.Second), res)
		}
		t.Logf("push attempt %d refused before acceptance, %s after the kill: %s", try, time.Since(killedAt).Round(time.Second), tail(res, 200))
		if !restarted && time.Since(killedAt) > 60*time.Second {
			t.Logf("pushes refused for a minute with %s down: starting it again", victimCtl)
			compose(t, "start", victimCtl)
			restarted = true
		}
		time.Sleep(5 * time.Second)
		res = push()
	}
	t.Logf("push through %s completed %s after %s was killed", via, time.Since(killedAt).Round(time.Second), victimCtl)
	waitBody(t, composeRouter2, "queued.localhost", helloBody, 60*time.Second)
	if !restarted {
		compose(t, "start", victimCtl)
	}

	// 4. Kill an executor that runs instances of web: they serve elsewhere.
	var victim string
	for node, n := range runningOf(t, c, "web") {
		if n > 0 {
			victim = node
			break
		}
	}
	if victim == "" {
		t.Fatal("no executor runs web")
	}
	compose(t, "kill", victim)
	t.Logf("killed executor %s", victim)
	for deadline := time.Now().Add(120 * time.Second); ; time.Sleep(500 * time.Millisecond) {
		by := runningOf(t, c, "web")
		if by[victim] == 0 && total(by) == 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("web's instances did not move off %s within 120 s: %v", victim, by)
		}
	}
	waitBody(t, composeRouter1, "web.localhost", helloBody, 30*time.Second)
	compose(t, "start", victim)

	// 5. Restart PostgreSQL: nothing acknowledged is lost.
	compose(t, "restart", "postgres")
	waitAcked("after restarting PostgreSQL", 3)

	// The checker stops; every acknowledged create must be there.
	cancel()
	<-done
	acked, tries, _ := k.snapshot()
	out = c.must("", "strata", "apps", "--json")
	for _, name := range acked {
		if !strings.Contains(out, `"`+name+`"`) {
			t.Errorf("acknowledged app %s is lost", name)
		}
	}
	t.Logf("checker: %d creates acknowledged in %d tries, all present", len(acked), tries)
	curlMu.Lock()
	t.Logf("curl loop: %d requests to web through the routers, %d not 200", curls, curlErrs)
	curlMu.Unlock()

	// No instance runs twice beyond the rolling overlap: web has 3.
	if n := total(runningOf(t, c, "web")); n > 3 {
		t.Errorf("web runs %d instances, want at most 3", n)
	}
}
