package docker_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/strata-paas/strata/api"
	"github.com/strata-paas/strata/deploy/driver"
	"github.com/strata-paas/strata/deploy/driver/docker"
	"github.com/strata-paas/strata/deploy/driver/drivertest"
)

// missing skips the test, or fails it when CI requires docker.
func missing(t *testing.T, format string, args ...any) {
	t.Helper()
	drivertest.Missing(t, "docker", format, args...)
}

var (
	nodes   atomic.Int64
	checked sync.Map // nodes whose leftovers are checked at cleanup
)

// newDriver returns a docker driver of a node of its own, whose containers
// and networks are all removed when the test ends.
func newDriver(t *testing.T) *docker.Driver {
	t.Helper()
	return driverOf(t, newNode())
}

func newNode() string { return fmt.Sprintf("test-%d-%d", os.Getpid(), nodes.Add(1)) }

func driverOf(t *testing.T, node string, opts ...func(*docker.Config)) *docker.Driver {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cfg := docker.Config{NodeID: node, Logger: drivertest.Logger(t), ImageDir: t.TempDir()}
	for _, o := range opts {
		o(&cfg)
	}
	d, err := docker.New(ctx, cfg)
	if err != nil {
		missing(t, "no Docker engine: %v", err)
	}
	ok, err := d.ImageExists(ctx, docker.DefaultStackImage)
	if err != nil || !ok {
		d.Close()
		missing(t, "the stack image %s is missing (%v) — run `make stack`", docker.DefaultStackImage, err)
	}
	if _, seen := checked.LoadOrStore(node, true); !seen {
		// Registered first, so it runs after every other cleanup of the
		// node's drivers and instances.
		t.Cleanup(func() {
			if left := leftovers(t, node); left != "" {
				t.Errorf("left behind for node %s:\n%s", node, left)
			}
		})
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if _, err := d.Sweep(ctx, nil); err != nil {
			t.Errorf("sweep at cleanup: %v", err)
		}
		d.Close()
	})
	return d
}

// leftovers lists containers and networks labelled for node, through the
// docker CLI.
func leftovers(t *testing.T, node string) string {
	var out strings.Builder
	for _, kind := range [][]string{{"ps", "-a", "-q"}, {"network", "ls", "-q"}} {
		args := append(kind, "--filter", "label=io.strata.node="+node)
		b, err := exec.Command("docker", args...).Output()
		if err != nil {
			t.Logf("docker %v: %v", args, err)
			continue
		}
		out.Write(b)
	}
	return strings.TrimSpace(out.String())
}

func ctx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return ctx
}

func TestConformance(t *testing.T) {
	drivertest.Run(t, func(t *testing.T) driver.Driver { return newDriver(t) },
		drivertest.Options{Commands: drivertest.ShellCommands()})
}

// run starts command in a fresh dir and returns its spec and output.
func run(t *testing.T, d *docker.Driver, spec driver.Spec) (*driver.Spec, *drivertest.Buffer, *driver.Handle) {
	t.Helper()
	out := &drivertest.Buffer{}
	if spec.ID == "" {
		spec.ID = "c-" + strings.ReplaceAll(t.Name(), "/", "-")
	}
	if spec.Dir == "" {
		spec.Dir = t.TempDir()
	}
	spec.Env = append(spec.Env, "PATH=/usr/local/bin:/usr/bin:/bin")
	if spec.MemoryMB == 0 {
		spec.MemoryMB = 64
	}
	spec.Stdout, spec.Stderr = out, out
	h, err := d.Start(ctx(t), &spec)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() { _ = d.Destroy(context.Background(), spec.ID) })
	return &spec, out, h
}

// TestConfinement: the instance runs as an unprivileged user without
// capabilities or new privileges, on a read-only root file system with a
// writable /tmp and app dir.
func TestConfinement(t *testing.T) {
	d := newDriver(t)
	spec, out, _ := run(t, d, driver.Spec{Command: `echo uid=$(id -u)
grep -E '^(CapEff|NoNewPrivs):' /proc/self/status | tr -s '\t ' ' '
touch /rootfs 2>/dev/null && echo rootfs=writable || echo rootfs=read-only
touch /tmp/x && echo tmp=writable
touch ./x && echo dir=writable`})
	res, err := d.Wait(ctx(t), spec.ID)
	if err != nil || res.ExitCode != 0 {
		t.Fatalf("Wait = %+v, %v; output %q", res, err, out.String())
	}
	got := out.String()
	for _, want := range []string{"uid=" + strconv.Itoa(d.UID(spec.ID)) + "\n", "CapEff: 0000000000000000\n", "NoNewPrivs: 1\n",
		"rootfs=read-only\n", "tmp=writable\n", "dir=writable\n"} {
		if !strings.Contains(got, want) {
			t.Errorf("output lacks %q:\n%s", want, got)
		}
	}
	if d.UID(spec.ID) == 0 {
		t.Errorf("instance uid is root")
	}
}

// TestOOMKilled: an instance exceeding its memory limit is killed and the
// engine's verdict is reported.
func TestOOMKilled(t *testing.T) {
	d := newDriver(t)
	spec, out, _ := run(t, d, driver.Spec{MemoryMB: 32, Command: `x=$(head -c 400000000 /dev/zero | tr '\0' a); echo survived ${#x}`})
	res, err := d.Wait(ctx(t), spec.ID)
	if err != nil {
		t.Fatalf("Wait: %v", err)
	}
	if !res.OOMKilled {
		t.Fatalf("Wait = %+v (output %q), want OOMKilled", res, out.String())
	}
}

// TestEndpoint: $PORT is the driver's listen port, published on the
// advertise address; the endpoint answers from inside the container; usage
// comes from the engine.
func TestEndpoint(t *testing.T) {
	d := newDriver(t)
	dir := webappDir(t)
	port, err := d.AllocatePort("x")
	if err != nil {
		t.Fatal(err)
	}
	_, out, h := run(t, d, driver.Spec{Dir: dir, Port: port, Command: "exec ./webapp",
		Env: []string{"PORT=" + strconv.Itoa(port), "WEBAPP_HOST=0.0.0.0", "STRATA_APP=ctr"}})
	ep := h.Endpoint
	if ep.Host != "127.0.0.1" || ep.Port <= 0 {
		t.Fatalf("endpoint %+v, want a published port on 127.0.0.1", ep)
	}
	url := "http://" + net.JoinHostPort(ep.Host, strconv.Itoa(ep.Port)) + "/"
	body := drivertest.Answer(t, url, false, out)
	if !strings.HasPrefix(body, "hello from ctr/") {
		t.Fatalf("GET %s = %q, want the app's greeting", url, body)
	}
	u, err := d.Usage(ctx(t), h.ID)
	if err != nil || u.MemoryBytes <= 0 || u.CPUTime <= 0 {
		t.Fatalf("Usage = %+v, %v; want the container's memory and CPU time", u, err)
	}
}

// TestDirectEndpoint: with Config.DirectEndpoint and the loopback
// advertise address, the endpoint is the container's own address and port
// (routers on this node dial it, skipping the engine's proxy), where it
// serves; the port is still published.
func TestDirectEndpoint(t *testing.T) {
	d := driverOf(t, newNode(), func(c *docker.Config) { c.DirectEndpoint = true })
	port, err := d.AllocatePort("x")
	if err != nil {
		t.Fatal(err)
	}
	_, out, h := run(t, d, driver.Spec{Dir: webappDir(t), Port: port, Command: "exec ./webapp",
		Env: []string{"PORT=" + strconv.Itoa(port), "WEBAPP_HOST=0.0.0.0", "STRATA_APP=direct"}})
	ep := h.Endpoint
	if ip := net.ParseIP(ep.Host); ip == nil || ip.IsLoopback() || ep.Port != port || ep.CheckHost != "" || ep.CheckPort != 0 {
		t.Fatalf("endpoint %+v, want the container's own address and port %d", ep, port)
	}
	if b := drivertest.Answer(t, "http://"+net.JoinHostPort(ep.Host, strconv.Itoa(ep.Port))+"/", false, out); !strings.HasPrefix(b, "hello from direct/") {
		t.Fatalf("the container's address answers %q", b)
	}
	var hd struct {
		ContainerID string `json:"container_id"`
	}
	if err := json.Unmarshal(h.Data, &hd); err != nil {
		t.Fatal(err)
	}
	b, err := exec.Command("docker", "port", hd.ContainerID).Output()
	if err != nil || !strings.Contains(string(b), "127.0.0.1:") {
		t.Errorf("docker port = %q, %v; want the port still published on loopback", b, err)
	}
}

// webappDir returns a new dir holding the executor's test app (a static
// binary serving $PORT on $WEBAPP_HOST).
func webappDir(t testing.TB) string {
	t.Helper()
	dir := t.TempDir()
	build := exec.Command("go", "build", "-o", filepath.Join(dir, "webapp"), "../../executor/testdata/webapp")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build webapp: %v\n%s", err, b)
	}
	return dir
}

// TestRecoverAndSweep: a driver of the same node after an executor restart
// re-attaches to the same running container, and its sweep removes the
// node's containers the executor does not know, and only those.
func TestRecoverAndSweep(t *testing.T) {
	node := newNode()
	first := driverOf(t, node)
	forever := drivertest.ShellCommands().Forever
	kept, keptOut, h := run(t, first, driver.Spec{ID: "kept", Command: forever})
	orphan, _, _ := run(t, first, driver.Spec{ID: "orphan", Command: forever})
	drivertest.WaitFor(t, "kept to print ready", func() bool { return strings.Contains(keptOut.String(), "ready") })
	other := newDriver(t) // another node on the same engine
	bystander, _, _ := run(t, other, driver.Spec{ID: "kept", Command: forever})

	second := driverOf(t, node) // the executor restarted
	if err := second.Recover(ctx(t), h); err != nil {
		t.Fatalf("Recover: %v", err)
	}
	n, err := second.Sweep(ctx(t), []string{kept.ID})
	if err != nil || n != 1 {
		t.Fatalf("Sweep = %d, %v; want the orphan removed", n, err)
	}
	if res, err := first.Wait(ctx(t), orphan.ID); err != nil || res == nil {
		t.Fatalf("orphan still waited on: %+v, %v", res, err)
	}
	if ids := containerIDs(t, "io.strata.instance="+kept.ID); len(ids) != 2 {
		t.Fatalf("containers of instance kept: %v, want this node's and the other node's", ids)
	}
	if err := second.Stop(ctx(t), kept.ID, 10*time.Second); err != nil {
		t.Fatalf("Stop through the recovered driver: %v", err)
	}
	res, err := second.Wait(ctx(t), kept.ID)
	if err != nil || res.ExitCode != 0 {
		t.Fatalf("Wait after Stop = %+v, %v; want exit 0 from the SIGTERM handler", res, err)
	}
	if err := second.Recover(ctx(t), h); api.ErrorCode(err) != api.ENotFound && err != nil {
		t.Fatalf("Recover of a stopped container: %v", err)
	}
	wctx, cancel := context.WithTimeout(ctx(t), 200*time.Millisecond)
	defer cancel()
	if _, err := other.Wait(wctx, bystander.ID); err == nil {
		t.Fatalf("the other node's instance exited during this node's sweep: %v", err)
	}
}

// TestHandleChecked: a handle naming a container of another instance or
// node is not adopted.
func TestHandleChecked(t *testing.T) {
	d := newDriver(t)
	_, _, h := run(t, d, driver.Spec{ID: "real", Command: drivertest.ShellCommands().Forever})
	forged := *h
	forged.ID = "someone-else"
	if err := d.Recover(ctx(t), &forged); api.ErrorCode(err) != api.ENotFound {
		t.Fatalf("Recover of another instance's container: %v, want not_found", err)
	}
	if err := d.Recover(ctx(t), &driver.Handle{Version: driver.HandleVersion, Driver: "process", ID: "x"}); api.ErrorCode(err) != api.EInvalid {
		t.Fatalf("Recover of a process handle: %v, want invalid", err)
	}
}

func containerIDs(t *testing.T, label string) []string {
	t.Helper()
	b, err := exec.Command("docker", "ps", "-a", "-q", "--filter", "label="+label).Output()
	if err != nil {
		t.Fatalf("docker ps: %v", err)
	}
	return strings.Fields(string(b))
}

// TestNetworkIsolation: a container reaches neither the node's loopback
// services nor another container (of its space, through the bridge with
// inter-container traffic off, or of another space), while a service the
// node exposes on all interfaces is reachable through the gateway (the
// control that proves the probe works, and a limit docs/containers.md states).
func TestNetworkIsolation(t *testing.T) {
	d := newDriver(t)
	loop, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer loop.Close()
	all, err := net.Listen("tcp", "0.0.0.0:0")
	if err != nil {
		t.Fatal(err)
	}
	defer all.Close()
	for _, l := range []net.Listener{loop, all} {
		go func() {
			for {
				c, err := l.Accept()
				if err != nil {
					return
				}
				c.Close()
			}
		}()
	}
	run(t, d, driver.Spec{ID: "target", Space: "s1", Dir: webappDir(t), Port: 8080, Command: "exec ./webapp",
		Env: []string{"PORT=8080", "WEBAPP_HOST=0.0.0.0"}})
	inspect := func(format, obj string) string {
		b, err := exec.Command("docker", "inspect", "-f", format, obj).Output()
		if err != nil {
			t.Fatalf("docker inspect %s: %v", obj, err)
		}
		return strings.TrimSpace(string(b))
	}
	ids := containerIDs(t, "io.strata.instance=target")
	if len(ids) != 1 {
		t.Fatalf("containers of target: %v", ids)
	}
	targetIP := inspect("{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}", ids[0])
	gw := inspect("{{range .NetworkSettings.Networks}}{{.Gateway}}{{end}}", ids[0])
	// The control: the node itself reaches the target at its address.
	drivertest.WaitFor(t, "the target to listen", func() bool {
		c, err := net.DialTimeout("tcp", net.JoinHostPort(targetIP, "8080"), time.Second)
		if err == nil {
			c.Close()
		}
		return err == nil
	})
	port := func(l net.Listener) string { return strconv.Itoa(l.Addr().(*net.TCPAddr).Port) }
	probe := func(host, p string) string {
		return fmt.Sprintf(`if timeout 3 bash -c 'exec 3<>/dev/tcp/%s/%s' 2>/dev/null; then echo reached %s; else echo blocked %s; fi`, host, p, p, p)
	}
	script := strings.Join([]string{
		probe(gw, port(loop)), probe(gw, port(all)), probe(targetIP, "8080"), probe("127.0.0.1", port(loop)),
	}, "; ")
	for _, space := range []string{"s1", "s2"} {
		spec, out, _ := run(t, d, driver.Spec{ID: "probe-" + space, Space: space, Command: script})
		if res, err := d.Wait(ctx(t), spec.ID); err != nil || res.ExitCode != 0 {
			t.Fatalf("probe in %s: %+v, %v; output %q", space, res, err, out.String())
		}
		want := fmt.Sprintf("blocked %s\nreached %s\nblocked 8080\nblocked %s\n", port(loop), port(all), port(loop))
		if got := out.String(); got != want {
			t.Errorf("probe from space %s:\n%s\nwant\n%s", space, got, want)
		}
	}
}

// TestMissingImage: starting from an image the engine lacks is refused
// with what to do (no pull is tried: no registry is reachable).
func TestMissingImage(t *testing.T) {
	d := driverOf(t, newNode(), func(c *docker.Config) { c.StackImage = "strata-test/no-such-stack:1" })
	_, err := d.Start(ctx(t), &driver.Spec{ID: "no-stack", Dir: t.TempDir(), Command: "true"})
	if api.ErrorCode(err) != api.EInvalid || !strings.Contains(err.Error(), "stack build") {
		t.Fatalf("Start without the stack image: %v, want invalid saying to build the stack", err)
	}
	_, err = d.Start(ctx(t), &driver.Spec{ID: "no-image", Image: "strata-test/no-such-image:1", Dir: "/", Command: "true"})
	if api.ErrorCode(err) != api.EInvalid || !strings.Contains(err.Error(), "not on this node") {
		t.Fatalf("Start from an absent image: %v, want invalid, not on this node", err)
	}
}
