package e2e_test

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/strata-paas/strata/api/bus"
)

// cluster is a controller, a router and executors as separate processes
// against one NATS server started by the test.
type cluster struct {
	t          *testing.T
	nats       *bus.Server
	natsStore  string
	natsURL    string
	apiURL     string
	ctrlData   string
	routerAddr string
	cli        *cli
}

func startCluster(t *testing.T, prepare ...func(ctrlData string)) *cluster {
	t.Helper()
	store := t.TempDir()
	srv, err := bus.StartServer(bus.ServerConfig{Host: "127.0.0.1", Port: 0, StoreDir: store})
	if err != nil {
		t.Fatal(err)
	}
	c := &cluster{t: t, nats: srv, natsStore: store, natsURL: srv.ClientURL(), ctrlData: t.TempDir(), routerAddr: freeAddr(t)}
	t.Cleanup(func() {
		if c.nats != nil {
			c.nats.Shutdown()
		}
	})
	for _, p := range prepare { // before the controller reads its data dir
		p(c.ctrlData)
	}
	_, routerPort, _ := strings.Cut(c.routerAddr, ":")
	ctrl := start(t, "stratad controller", nil, "stratad", "controller",
		"--nats", c.natsURL, "--data", c.ctrlData, "--api-addr", "127.0.0.1:0", "--router-port", routerPort)
	c.apiURL = ctrl.waitLine(`API:\s+(http://\S+)`, 60*time.Second)[1]
	rt := start(t, "stratad router", nil, "stratad", "router", "--nats", c.natsURL, "--listen", c.routerAddr)
	rt.waitLine(`listening on`, 30*time.Second)
	c.cli = newCLI(t)
	c.cli.must("", "strata", "login", "--api", c.apiURL, "--token-file", filepath.Join(c.ctrlData, "admin.token"))
	return c
}

// executor starts an executor with a fixed node id and data dir.
func (c *cluster) executor(id, data string, extra ...string) *proc {
	c.t.Helper()
	args := append([]string{"executor", "--nats", c.natsURL, "--controller", c.apiURL,
		"--token-file", filepath.Join(c.ctrlData, "executor.token"), "--data", data, "--node-id", id}, extra...)
	p := start(c.t, "stratad executor "+id, nil, "stratad", args...)
	p.waitLine(`node `+id, 30*time.Second)
	return p
}

// placedInstance is the part of `strata app --json` these tests read.
type placedInstance struct {
	ID     string `json:"id"`
	NodeID string `json:"node_id"`
	State  string `json:"state"`
	Port   int    `json:"port"`
}

func (c *cluster) instances(app string) []placedInstance {
	c.t.Helper()
	out := c.cli.must("", "strata", "app", app, "--json")
	var a struct {
		Instances []placedInstance `json:"instances"`
	}
	if err := json.Unmarshal([]byte(out), &a); err != nil {
		c.t.Fatalf("app --json: %v\n%s", err, out)
	}
	return a.Instances
}

// runningOn waits until app has exactly one running instance and returns it.
func (c *cluster) runningOne(app string, timeout time.Duration, ok func(placedInstance) bool) placedInstance {
	c.t.Helper()
	deadline := time.Now().Add(timeout)
	var last []placedInstance
	for time.Now().Before(deadline) {
		last = c.instances(app)
		var run []placedInstance
		for _, in := range last {
			if in.State == "running" {
				run = append(run, in)
			}
		}
		if len(run) == 1 && ok(run[0]) && run[0].Port > 0 {
			return run[0]
		}
		time.Sleep(200 * time.Millisecond)
	}
	c.t.Fatalf("%s: no single matching running instance within %s; last %+v", app, timeout, last)
	return placedInstance{}
}

// TestNodeFailover kills the machine an instance runs on (its executor and
// the instance, with SIGKILL) and expects the instance to be placed on the
// other node and served through the router again.
func TestNodeFailover(t *testing.T) {
	require(t, "go")
	c := startCluster(t)
	execs := map[string]*proc{
		"node-a": c.executor("node-a", t.TempDir(), "--stop-on-exit"),
		"node-b": c.executor("node-b", t.TempDir(), "--stop-on-exit"),
	}
	c.cli.must("", "strata", "push", "failover", "-p", filepath.Join(repoRoot(), "examples", "hello-go"))
	waitBody(t, c.routerAddr, "failover.localhost", helloBody, 30*time.Second)
	first := c.runningOne("failover", 30*time.Second, func(placedInstance) bool { return true })

	// Machine death: the executor and its instance die at once.
	killed := time.Now()
	_ = execs[first.NodeID].cmd.Process.Kill()
	killListener(t, first)

	waitBody(t, c.routerAddr, "failover.localhost", helloBody, 60*time.Second)
	t.Logf("failover: node killed → serving again through the router in %s", time.Since(killed).Round(10*time.Millisecond))
	moved := c.runningOne("failover", 30*time.Second, func(in placedInstance) bool { return in.NodeID != first.NodeID })
	if moved.ID == first.ID {
		t.Errorf("instance id unchanged after failover: %s", moved.ID)
	}
}

// TestExecutorRestartKeepsInstances restarts an executor (without
// --stop-on-exit) and expects it to re-attach to its running instance: same
// PID, still served.
func TestExecutorRestartKeepsInstances(t *testing.T) {
	require(t, "go")
	c := startCluster(t)
	data := t.TempDir()
	ex := c.executor("node-r", data)
	c.cli.must("", "strata", "push", "keep", "-p", filepath.Join(repoRoot(), "examples", "hello-go"))
	waitBody(t, c.routerAddr, "keep.localhost", helloBody, 30*time.Second)
	in := c.runningOne("keep", 30*time.Second, func(placedInstance) bool { return true })
	pid := listenerPID(t, in)
	if pid == 0 {
		t.Fatalf("no process listens on the instance port %d", in.Port)
	}
	t.Cleanup(func() { syscall.Kill(pid, syscall.SIGKILL) })

	ex.stop(30 * time.Second)
	if err := syscall.Kill(pid, 0); err != nil {
		t.Fatalf("instance pid %d died with its executor (no --stop-on-exit): %v", pid, err)
	}
	c.executor("node-r", data, "--stop-on-exit")
	// Served throughout and after, by the same process.
	for i := 0; i < 20; i++ {
		waitBody(t, c.routerAddr, "keep.localhost", helloBody, 10*time.Second)
		time.Sleep(100 * time.Millisecond)
	}
	again := c.runningOne("keep", 30*time.Second, func(placedInstance) bool { return true })
	if again.ID != in.ID {
		t.Errorf("instance replaced after executor restart: %s → %s", in.ID, again.ID)
	}
	if got := listenerPID(t, again); got != pid {
		t.Errorf("instance pid after executor restart: got %d, want %d", got, pid)
	}
}

// listenerPID returns the pid of instance in's process that listens on its
// port: a process whose environment has its STRATA_INSTANCE_GUID and whose
// network namespace (the node's, or the instance's own when the process
// driver isolates it: every such instance listens on 8080) has a listening
// TCP socket on that port, found through /proc/<pid>/net/tcp{,6} and the
// socket inodes of /proc/<pid>/fd.
func listenerPID(t testing.TB, in placedInstance) int {
	t.Helper()
	procs, _ := filepath.Glob("/proc/[0-9]*")
	for _, p := range procs {
		env, err := os.ReadFile(p + "/environ")
		if err != nil || !slices.Contains(strings.Split(string(env), "\x00"), "STRATA_INSTANCE_GUID="+in.ID) {
			continue
		}
		inodes := map[string]bool{}
		for _, f := range []string{p + "/net/tcp", p + "/net/tcp6"} {
			b, err := os.ReadFile(f)
			if err != nil {
				continue
			}
			for _, l := range strings.Split(string(b), "\n")[1:] {
				fs := strings.Fields(l)
				if len(fs) < 10 || fs[3] != "0A" { // 0A = LISTEN
					continue
				}
				_, hexPort, _ := strings.Cut(fs[1], ":")
				if port, err := strconv.ParseInt(hexPort, 16, 32); err == nil && int(port) == in.Port {
					inodes[fs[9]] = true
				}
			}
		}
		fds, _ := filepath.Glob(p + "/fd/*")
		for _, fd := range fds {
			target, err := os.Readlink(fd)
			if err != nil || !strings.HasPrefix(target, "socket:[") {
				continue
			}
			if inodes[strings.TrimSuffix(strings.TrimPrefix(target, "socket:["), "]")] {
				pid, _ := strconv.Atoi(filepath.Base(p))
				return pid
			}
		}
	}
	return 0
}

// killListener SIGKILLs the process group of instance in's listener.
func killListener(t testing.TB, in placedInstance) {
	t.Helper()
	pid := listenerPID(t, in)
	if pid == 0 {
		t.Fatalf("no process of instance %s listens on port %d", in.ID, in.Port)
	}
	if pgid, err := syscall.Getpgid(pid); err == nil {
		syscall.Kill(-pgid, syscall.SIGKILL)
	}
	syscall.Kill(pid, syscall.SIGKILL)
	fmt.Fprintf(os.Stderr, "killed listener pid %d of instance %s on port %d\n", pid, in.ID, in.Port)
}

// restartNATS stops the NATS server for d, then starts it again on the same
// port and store, calling during every 250ms while it is down.
func (c *cluster) restartNATS(d time.Duration, during func()) {
	c.t.Helper()
	_, portStr, _ := strings.Cut(strings.TrimPrefix(c.natsURL, "nats://"), ":")
	port, _ := strconv.Atoi(portStr)
	c.nats.Shutdown()
	c.nats = nil
	for end := time.Now().Add(d); time.Now().Before(end); time.Sleep(250 * time.Millisecond) {
		during()
	}
	srv, err := bus.StartServer(bus.ServerConfig{Host: "127.0.0.1", Port: port, StoreDir: c.natsStore})
	if err != nil {
		c.t.Fatalf("restart NATS on port %d: %v", port, err)
	}
	c.nats = srv
}

// running returns the app's running instances.
func (c *cluster) running(app string) []placedInstance {
	var run []placedInstance
	for _, in := range c.instances(app) {
		if in.State == "running" {
			run = append(run, in)
		}
	}
	return run
}

// waitRunning waits until app has exactly n running instances, all distinct
// and with distinct ports, and returns them.
func (c *cluster) waitRunning(app string, n int, timeout time.Duration) []placedInstance {
	c.t.Helper()
	deadline := time.Now().Add(timeout)
	var run []placedInstance
	for time.Now().Before(deadline) {
		run = c.running(app)
		// Distinct instances, each with its port (isolated process
		// instances all listen on 8080, each in its own network).
		ids := map[string]bool{}
		for _, in := range run {
			if in.Port != 0 {
				ids[in.ID] = true
			}
		}
		if len(run) == n && len(ids) == n {
			return run
		}
		time.Sleep(250 * time.Millisecond)
	}
	c.t.Fatalf("%s: want %d running instances within %s, have %+v", app, n, timeout, run)
	return nil
}

// TestNATSOutage stops NATS for 30 s: running apps keep serving through the
// router (no pruning, no stops), and a scale request made meanwhile is
// accepted and completes once NATS is back.
func TestNATSOutage(t *testing.T) {
	require(t, "go")
	c := startCluster(t)
	c.executor("node-n", t.TempDir(), "--stop-on-exit")
	c.cli.must("", "strata", "push", "steady", "-p", filepath.Join(repoRoot(), "examples", "hello-go"))
	waitBody(t, c.routerAddr, "steady.localhost", helloBody, 30*time.Second)
	before := c.waitRunning("steady", 1, 30*time.Second)[0]

	failures, requests, scaled := 0, 0, false
	c.restartNATS(30*time.Second, func() {
		requests++
		if code, body, err := routerGet(c.routerAddr, "steady.localhost", "/"); err != nil || code != 200 || !strings.Contains(body, helloBody) {
			failures++
		}
		if !scaled {
			// The API is up (desired state is in SQL), so the scale is accepted.
			c.cli.must("", "strata", "scale", "steady", "-i", "2")
			scaled = true
		}
	})
	if failures > 0 {
		t.Errorf("%d of %d requests failed while NATS was down; want none", failures, requests)
	}
	run := c.waitRunning("steady", 2, 60*time.Second)
	kept := false
	for _, in := range run {
		kept = kept || in.ID == before.ID
	}
	if !kept {
		t.Errorf("the instance running before the outage was replaced: before %s, now %+v", before.ID, run)
	}
	waitBody(t, c.routerAddr, "steady.localhost", helloBody, 10*time.Second)
}

// TestExecutorPausedPastTTL stops an executor with SIGSTOP past the node TTL,
// so its instance is placed elsewhere, then resumes it: the node learns it was
// superseded and stops its old instance — exactly the desired count remains.
func TestExecutorPausedPastTTL(t *testing.T) {
	require(t, "go")
	c := startCluster(t)
	execs := map[string]*proc{
		"node-p": c.executor("node-p", t.TempDir(), "--stop-on-exit"),
		"node-q": c.executor("node-q", t.TempDir(), "--stop-on-exit"),
	}
	c.cli.must("", "strata", "push", "paused", "-p", filepath.Join(repoRoot(), "examples", "hello-go"))
	c.cli.must("", "strata", "scale", "paused", "-i", "2")
	run := c.waitRunning("paused", 2, 60*time.Second)
	if run[0].NodeID == run[1].NodeID {
		t.Errorf("2 instances on 2 nodes both landed on %s; want them spread", run[0].NodeID)
	}
	victim := run[0]
	oldPID := listenerPID(t, victim)

	ex := execs[victim.NodeID]
	if err := ex.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	// Past the TTL the instance is replaced on the other node.
	deadline := time.Now().Add(60 * time.Second)
	for {
		r := c.running("paused")
		moved := len(r) == 2
		for _, in := range r {
			moved = moved && in.NodeID != victim.NodeID
		}
		if moved {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("instance on paused node %s not replaced; running %+v", victim.NodeID, r)
		}
		time.Sleep(250 * time.Millisecond)
	}
	if err := ex.cmd.Process.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	// The resumed node stops its superseded instance; exactly 2 remain.
	deadline = time.Now().Add(60 * time.Second)
	for oldPID != 0 && syscall.Kill(oldPID, 0) == nil {
		if time.Now().After(deadline) {
			t.Fatalf("superseded instance (pid %d) still runs after the node resumed", oldPID)
		}
		time.Sleep(250 * time.Millisecond)
	}
	c.waitRunning("paused", 2, 30*time.Second)
	waitBody(t, c.routerAddr, "paused.localhost", helloBody, 30*time.Second)
}
