package e2e_test

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// placedOn is the part of `strata app --json` the placement test reads.
type placedOn struct {
	ID        string `json:"id"`
	NodeID    string `json:"node_id"`
	State     string `json:"state"`
	Substrate string `json:"substrate"`
	Isolation string `json:"isolation"`
}

func (c *cluster) placed(app string) []placedOn {
	c.t.Helper()
	out := c.cli.must("", "strata", "app", app, "--json")
	var a struct {
		Instances []placedOn `json:"instances"`
	}
	if err := json.Unmarshal([]byte(out), &a); err != nil {
		c.t.Fatalf("app --json: %v\n%s", err, out)
	}
	return a.Instances
}

// nodeStates returns `strata nodes --json` as id → node.
func (c *cluster) nodeStates() map[string]struct{ State, Substrate string } {
	c.t.Helper()
	out := c.cli.must("", "strata", "nodes", "--json")
	var nodes []struct {
		ID        string            `json:"id"`
		State     string            `json:"state"`
		Substrate string            `json:"substrate"`
		Labels    map[string]string `json:"labels"`
	}
	if err := json.Unmarshal([]byte(out), &nodes); err != nil {
		c.t.Fatalf("nodes --json: %v\n%s", err, out)
	}
	m := map[string]struct{ State, Substrate string }{}
	for _, n := range nodes {
		m[n.ID] = struct{ State, Substrate string }{n.State, n.Substrate}
	}
	return m
}

// load sends rate requests per second to host through the router for d,
// each checked for a 200 with want in the body, and returns the failures.
func load(addr, host, want string, rate int, d time.Duration) (total int, failures []string) {
	var mu sync.Mutex
	var wg sync.WaitGroup
	tick := time.NewTicker(time.Second / time.Duration(rate))
	defer tick.Stop()
	end := time.Now().Add(d)
	for time.Now().Before(end) {
		<-tick.C
		total++
		wg.Add(1)
		go func(n int) {
			defer wg.Done()
			code, body, err := routerGet(addr, host, "/")
			if err != nil || code != 200 || !strings.Contains(body, want) {
				mu.Lock()
				failures = append(failures, fmt.Sprintf("request %d: status %d err %v body %q", n, code, err, tail(body, 120)))
				mu.Unlock()
			}
		}(total)
	}
	wg.Wait()
	return total, failures
}

// TestPlacementAndDrain starts one controller and three executors (two
// metal, one vm by --substrate, with labels): an app whose strata.yml asks
// for substrate metal runs its 3 instances only on, and across, the metal
// nodes; draining one metal node under HTTP load through the router fails
// no request and leaves nothing on it; undrain makes it ready again.
func TestPlacementAndDrain(t *testing.T) {
	require(t, "go")
	c := startCluster(t)
	c.executor("metal-a", t.TempDir(), "--stop-on-exit", "--substrate", "metal", "--labels", "rack=r1")
	c.executor("metal-b", t.TempDir(), "--stop-on-exit", "--substrate", "metal", "--labels", "rack=r2")
	c.executor("vm-c", t.TempDir(), "--stop-on-exit", "--substrate", "vm", "--labels", "rack=r1")

	deadline := time.Now().Add(30 * time.Second)
	for len(c.nodeStates()) < 3 && time.Now().Before(deadline) {
		time.Sleep(200 * time.Millisecond)
	}
	nodes := c.nodeStates()
	for id, sub := range map[string]string{"metal-a": "metal", "metal-b": "metal", "vm-c": "vm"} {
		if nodes[id].Substrate != sub || nodes[id].State != "ready" {
			t.Fatalf("strata nodes --json: %s = %+v, want ready %s (all: %+v)", id, nodes[id], sub, nodes)
		}
	}

	app := copyDir(t, filepath.Join(repoRoot(), "examples", "hello-go"))
	manifest := "applications:\n- name: placed\n  instances: 3\n  placement:\n    substrate: metal\n"
	if err := os.WriteFile(filepath.Join(app, "strata.yml"), []byte(manifest), 0o644); err != nil {
		t.Fatal(err)
	}
	out := c.cli.must(app, "strata", "push")
	if !strings.Contains(out, "manifest: placement substrate=metal") {
		t.Errorf("push did not report the placement:\n%s", out)
	}
	waitBody(t, c.routerAddr, "placed.localhost", helloBody, 60*time.Second)
	c.waitRunning("placed", 3, 60*time.Second)
	perNode := map[string]int{}
	for _, in := range c.placed("placed") {
		if in.State != "running" {
			continue
		}
		perNode[in.NodeID]++
		if in.Substrate != "metal" || in.Isolation == "" {
			t.Errorf("instance %s on %s shows substrate %q isolation %q", in.ID, in.NodeID, in.Substrate, in.Isolation)
		}
	}
	if perNode["vm-c"] != 0 || perNode["metal-a"] == 0 || perNode["metal-b"] == 0 {
		t.Fatalf("instances per node = %v, want all on and spread over metal-a and metal-b", perNode)
	}
	if detail := c.cli.must("", "strata", "app", "placed"); !strings.Contains(detail, "placement: substrate=metal") || !strings.Contains(detail, "SUBSTRATE") {
		t.Errorf("strata app does not show placement and substrate:\n%s", detail)
	}

	// Drain metal-a under load: its instances move to metal-b (the only
	// other metal node), each replacement serving before the old one stops.
	type result struct {
		total    int
		failures []string
	}
	done := make(chan result)
	go func() {
		total, failures := load(c.routerAddr, "placed.localhost", helloBody, 50, 10*time.Second)
		done <- result{total, failures}
	}()
	time.Sleep(time.Second)
	if out := c.cli.must("", "strata", "nodes", "drain", "metal-a"); !strings.Contains(out, "draining") {
		t.Errorf("drain printed %q", out)
	}
	res := <-done
	t.Logf("drain under load: %d requests, %d failed", res.total, len(res.failures))
	if len(res.failures) > 0 {
		t.Errorf("%d of %d requests failed during the drain, first: %s", len(res.failures), res.total, strings.Join(res.failures[:min(5, len(res.failures))], "; "))
	}
	deadline = time.Now().Add(60 * time.Second)
	for {
		left, running := 0, 0
		for _, in := range c.placed("placed") {
			if in.NodeID == "metal-a" || in.NodeID == "vm-c" {
				left++
			}
			if in.State == "running" {
				running++
			}
		}
		if left == 0 && running == 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after drain: %d instances left on metal-a or vm-c, %d running; %+v", left, running, c.placed("placed"))
		}
		time.Sleep(250 * time.Millisecond)
	}
	if st := c.nodeStates()["metal-a"].State; st != "draining" {
		t.Errorf("metal-a state = %q, want draining", st)
	}
	c.cli.must("", "strata", "nodes", "undrain", "metal-a")
	if st := c.nodeStates()["metal-a"].State; st != "ready" {
		t.Errorf("metal-a state after undrain = %q, want ready", st)
	}
}
