package e2e_test

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
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
	natsURL    string
	apiURL     string
	ctrlData   string
	routerAddr string
	cli        *cli
}

func startCluster(t *testing.T) *cluster {
	t.Helper()
	srv, err := bus.StartServer(bus.ServerConfig{Host: "127.0.0.1", Port: 0, StoreDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Shutdown)
	c := &cluster{t: t, natsURL: srv.ClientURL(), ctrlData: t.TempDir(), routerAddr: freeAddr(t)}
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
		"--token-file", filepath.Join(c.ctrlData, "admin.token"), "--data", data, "--node-id", id}, extra...)
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
	killListener(t, first.Port)

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
	pid := listenerPID(t, in.Port)
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
	if got := listenerPID(t, again.Port); got != pid {
		t.Errorf("instance pid after executor restart: got %d, want %d", got, pid)
	}
}

// listenerPID returns the pid of the process listening on 127.0.0.1/0.0.0.0
// TCP port, found through /proc/net/tcp{,6} socket inodes and /proc/*/fd.
func listenerPID(t *testing.T, port int) int {
	t.Helper()
	inodes := map[string]bool{}
	for _, f := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
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
			if p, err := strconv.ParseInt(hexPort, 16, 32); err == nil && int(p) == port {
				inodes[fs[9]] = true
			}
		}
	}
	procs, _ := filepath.Glob("/proc/[0-9]*")
	for _, p := range procs {
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

// killListener SIGKILLs the process group of whatever listens on port.
func killListener(t *testing.T, port int) {
	t.Helper()
	pid := listenerPID(t, port)
	if pid == 0 {
		t.Fatalf("no process listens on port %d", port)
	}
	if pgid, err := syscall.Getpgid(pid); err == nil {
		syscall.Kill(-pgid, syscall.SIGKILL)
	}
	syscall.Kill(pid, syscall.SIGKILL)
	fmt.Fprintf(os.Stderr, "killed listener pid %d on port %d\n", pid, port)
}
