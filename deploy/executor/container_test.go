package executor_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/strata-paas/strata/api"
	"github.com/strata-paas/strata/deploy/driver/docker"
	"github.com/strata-paas/strata/deploy/driver/drivertest"
	"github.com/strata-paas/strata/deploy/driver/mock"
	"github.com/strata-paas/strata/deploy/executor"
)

// dockerDriver returns a docker driver for node, or skips (fails in CI with
// STRATA_REQUIRE=docker) without an engine and the stack image.
func dockerDriver(t *testing.T, node string) *docker.Driver {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	d, err := docker.New(ctx, docker.Config{NodeID: node, Logger: testLogger(t)})
	if err != nil {
		drivertest.Missing(t, "docker", "no Docker engine: %v", err)
	}
	if ok, err := d.ImageExists(ctx, docker.DefaultStackImage); err != nil || !ok {
		d.Close()
		drivertest.Missing(t, "docker", "the stack image %s is missing (%v) — run `make stack`", docker.DefaultStackImage, err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

func containersOf(t *testing.T, node string) []string {
	t.Helper()
	b, err := exec.Command("docker", "ps", "-a", "-q", "--no-trunc", "--filter", "label=io.strata.node="+node).Output()
	if err != nil {
		t.Fatalf("docker ps: %v", err)
	}
	return strings.Fields(string(b))
}

// TestContainerInstance runs the test app in a container through the
// executor: started from the droplet, health-checked and registered at its
// published port, serving; a `docker kill` is a crash and the instance is
// restarted; after an executor restart the same container is re-attached;
// a stop removes it, and nothing labelled for the node is left.
func TestContainerInstance(t *testing.T) {
	node := fmt.Sprintf("node-ctr-%d", os.Getpid())
	h := newHarness(t)
	data := t.TempDir()
	cfg := executor.Config{NodeID: node, DataDir: data, Restart: fastRestart(), HeartbeatInterval: 200 * time.Millisecond}
	proc := mock.New(mock.Config{})
	t.Cleanup(func() { // registered first: runs after the executors stop
		if left := containersOf(t, node); len(left) > 0 {
			t.Errorf("containers left for %s: %v", node, left)
			_ = exec.Command("docker", append([]string{"rm", "-f"}, left...)...).Run()
		}
		b, _ := exec.Command("docker", "network", "ls", "-q", "--filter", "label=io.strata.node="+node).Output()
		if nets := strings.Fields(string(b)); len(nets) > 0 {
			t.Errorf("networks left for %s: %v", node, nets)
			_ = exec.Command("docker", append([]string{"network", "rm"}, nets...)...).Run()
		}
		// Droplet images are kept for restarts (KeepImages); the test's go.
		b, _ = exec.Command("docker", "images", "-q", "--filter", "label=io.strata.node="+node).Output()
		if imgs := strings.Fields(string(b)); len(imgs) > 0 {
			_ = exec.Command("docker", append([]string{"rmi", "-f"}, imgs...)...).Run()
		}
	})
	e, stop := h.run(cfg, proc, dockerDriver(t, node))
	ref := h.webappDroplet()
	spec := webSpec("ctr-1", ref)
	spec.Isolation = api.IsolationContainer
	spec.SpaceID = "space-1"
	spec.Env["WEBAPP_HOST"] = "0.0.0.0"
	spec.HealthCheck = api.HealthCheck{Type: api.HealthPort}
	h.start(e.NodeID(), spec)

	_, reg := waitFor(t, h.rec, api.SubjectRouterRegister, 0, "registration", func(r *api.RouterRegistration) bool { return r.PrivateInstanceID == "ctr-1" })
	if reg.Host != "127.0.0.1" || reg.Port == 8080 || reg.Port <= 0 {
		t.Fatalf("registered %s:%d, want the published port on the advertise address", reg.Host, reg.Port)
	}
	body, err := get(t, reg.Host, reg.Port, "/")
	if err != nil || !strings.Contains(body, "hello from hello/0") || !strings.Contains(body, "greeting=hi") {
		t.Fatalf("GET the container: %q, %v", body, err)
	}
	_, hb := waitFor(t, h.rec, api.SubjectNodeHeartbeat, 0, "heartbeat with the running container", func(hb *api.NodeHeartbeat) bool {
		return len(hb.Instances) == 1 && hb.Instances[0].State == api.InstanceRunning
	})
	if hb.Instances[0].Isolation != api.IsolationContainer || !slices.Contains(hb.Isolations, api.IsolationContainer) {
		t.Fatalf("heartbeat %+v, want the container isolation offered and reported", hb)
	}
	if len(proc.Starts()) != 0 {
		t.Fatalf("the process driver started %d instances, want none", len(proc.Starts()))
	}
	ids := containersOf(t, node)
	if len(ids) != 1 {
		t.Fatalf("containers of the node: %v, want one", ids)
	}

	// docker kill: a crash, reported, and the instance is restarted.
	mark := h.rec.len()
	if b, err := exec.Command("docker", "kill", ids[0]).CombinedOutput(); err != nil {
		t.Fatalf("docker kill: %v\n%s", err, b)
	}
	c, crash := waitFor(t, h.rec, api.SubjectInstanceEvent, mark, "crash event", eventIs("ctr-1", api.InstanceCrashed))
	if crash.ExitCode == nil || *crash.ExitCode != 137 {
		t.Errorf("crash event %+v, want exit code 137 (SIGKILL from outside)", crash)
	}
	_, again := waitFor(t, h.rec, api.SubjectInstanceEvent, c, "running again", eventIs("ctr-1", api.InstanceRunning))
	if again.Instance.Restarts != 1 {
		t.Errorf("restarts = %d, want 1", again.Instance.Restarts)
	}
	ids = containersOf(t, node)
	if len(ids) != 1 {
		t.Fatalf("containers after the restart: %v, want one", ids)
	}

	// Executor restart: the container keeps running and is re-attached.
	stop()
	mark = h.rec.len()
	e2, _ := h.run(cfg, mock.New(mock.Config{}), dockerDriver(t, node))
	waitFor(t, h.rec, api.SubjectNodeHeartbeat, mark, "heartbeat with the recovered container", func(hb *api.NodeHeartbeat) bool {
		return len(hb.Instances) == 1 && hb.Instances[0].State == api.InstanceRunning && hb.Instances[0].Isolation == api.IsolationContainer
	})
	if after := containersOf(t, node); !slices.Equal(after, ids) {
		t.Fatalf("containers after the executor restart: %v, want the same %v", after, ids)
	}
	_, reg = waitFor(t, h.rec, api.SubjectRouterRegister, mark, "registration after recovery", func(r *api.RouterRegistration) bool { return r.PrivateInstanceID == "ctr-1" })
	if body, err := get(t, reg.Host, reg.Port, "/"); err != nil || !strings.Contains(body, "hello from hello/0") {
		t.Fatalf("GET the recovered container: %q, %v", body, err)
	}

	mark = h.rec.len()
	h.stop(e2.NodeID(), "ctr-1", 5*time.Second)
	waitFor(t, h.rec, api.SubjectInstanceEvent, mark, "stopped", eventIs("ctr-1", api.InstanceStopped))
	if left := containersOf(t, node); len(left) != 0 {
		t.Fatalf("containers after stop: %v, want none", left)
	}
}

// TestContainerCrashes: a container instance that exceeds its memory limit
// is killed by the kernel, and its crash event says so; a web instance that
// exits at once (before its port is published) is a crash with its exit
// code, never healthy.
func TestContainerCrashes(t *testing.T) {
	node := fmt.Sprintf("node-oom-%d", os.Getpid())
	t.Cleanup(func() { removeNode(t, node, false) })
	h := newHarness(t)
	e, _ := h.run(executor.Config{NodeID: node, DataDir: t.TempDir(), Restart: executor.RestartPolicy{Immediate: -1, Backoff: time.Hour}},
		mock.New(mock.Config{}), dockerDriver(t, node))
	ref := h.webappDroplet()
	spec := api.InstanceSpec{InstanceID: "hog", AppID: "app-hog", AppName: "hog", Process: "worker", DropletBlob: ref,
		MemoryMB: 32, Isolation: api.IsolationContainer, HealthCheck: api.HealthCheck{Type: api.HealthProcess},
		Command: `x=$(head -c 400000000 /dev/zero | tr '\0' a); echo survived ${#x}`}
	h.start(e.NodeID(), spec)
	_, crash := waitFor(t, h.rec, api.SubjectInstanceEvent, 0, "crash event", eventIs("hog", api.InstanceCrashed))
	if !strings.Contains(crash.Reason, "out of memory") {
		t.Fatalf("crash event reason %q, want out of memory", crash.Reason)
	}
	quick := webSpec("quick", ref)
	quick.Isolation, quick.Command, quick.HealthCheck = api.IsolationContainer, "exit 3", api.HealthCheck{Type: api.HealthPort}
	h.start(e.NodeID(), quick)
	_, crash = waitFor(t, h.rec, api.SubjectInstanceEvent, 0, "crash of the quick exit", eventIs("quick", api.InstanceCrashed))
	if crash.ExitCode == nil || *crash.ExitCode != 3 {
		t.Fatalf("crash event %+v (reason %q), want exit code 3", crash, crash.Reason)
	}
	for _, id := range []string{"hog", "quick"} {
		mark := h.rec.len()
		h.stop(e.NodeID(), id, time.Second)
		waitFor(t, h.rec, api.SubjectInstanceEvent, mark, id+" stopped", eventIs(id, api.InstanceStopped))
	}
	if n := h.rec.len(); n > 0 {
		for i := range n {
			if r, ok := decodeAt[api.RouterRegistration](h.rec, i, api.SubjectRouterRegister); ok && r.PrivateInstanceID == "quick" {
				t.Fatalf("the quick exit was registered with routers: %+v", r)
			}
		}
	}
}

// buildAppImage builds, with the docker CLI, an image of the test app (a
// static binary, FROM scratch: no registry is needed) that declares its port
// with EXPOSE and runs as a user of its own, saves it as a tarball and removes it
// from the engine again. It returns the tarball's bytes.
func buildAppImage(t *testing.T, tag string) []byte {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "webapp"), webappBin, 0o755); err != nil {
		t.Fatal(err)
	}
	dockerfile := "FROM scratch\nCOPY webapp /srv/webapp\nWORKDIR /srv\nUSER 4321\nENV WEBAPP_HOST=0.0.0.0\nEXPOSE 9090\nCMD [\"/srv/webapp\"]\n"
	if err := os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte(dockerfile), 0o644); err != nil {
		t.Fatal(err)
	}
	build := exec.Command("docker", "build", "-q", "-t", tag, dir)
	build.Env = append(os.Environ(), "DOCKER_BUILDKIT=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("docker build: %v\n%s", err, out)
	}
	defer exec.Command("docker", "rmi", "-f", tag).Run()
	tarball := filepath.Join(dir, "image.tar")
	if out, err := exec.Command("docker", "save", "-o", tarball, tag).CombinedOutput(); err != nil {
		t.Fatalf("docker save: %v\n%s", err, out)
	}
	data, err := os.ReadFile(tarball)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// TestImageDeploy: an instance of an image deploy (a `docker save` tarball
// in the blob store) runs the image's own command as its own user, on the
// port its single EXPOSE declares, is health-checked and registered there,
// and serves; on a node whose driver runs no images it fails with a reason
// that says so.
func TestImageDeploy(t *testing.T) {
	node := fmt.Sprintf("node-img-%d", os.Getpid())
	tag := "strata-test/app:" + node
	image := buildAppImage(t, tag)
	blob := blobRef(image)
	t.Cleanup(func() { // registered first: runs after the executor stops
		b, _ := exec.Command("docker", "ps", "-a", "-q", "--filter", "label=io.strata.node="+node).Output()
		if ids := strings.Fields(string(b)); len(ids) > 0 {
			t.Errorf("containers left: %v", ids)
			_ = exec.Command("docker", append([]string{"rm", "-f"}, ids...)...).Run()
		}
		_ = exec.Command("docker", "rmi", "-f", "strata/image:"+strings.TrimPrefix(string(blob), "sha256:"), tag).Run()
	})
	h := newHarness(t)
	e, _ := h.run(executor.Config{NodeID: node, DataDir: t.TempDir(), Restart: fastRestart()}, mock.New(mock.Config{}), dockerDriver(t, node))
	h.blobs.add(image)
	spec := api.InstanceSpec{InstanceID: "img-1", AppID: "app-img", AppName: "img", Process: api.ProcessWeb, ImageBlob: blob,
		MemoryMB: 64, Routes: []string{"img.localhost"}, Isolation: api.IsolationContainer, HealthCheck: api.HealthCheck{Type: api.HealthHTTP, Path: "/healthz"}}
	h.start(e.NodeID(), spec)
	_, reg := waitFor(t, h.rec, api.SubjectRouterRegister, 0, "registration", func(r *api.RouterRegistration) bool { return r.PrivateInstanceID == "img-1" })
	body, err := get(t, reg.Host, reg.Port, "/")
	if err != nil || !strings.Contains(body, "hello from img/0") {
		t.Fatalf("GET the image deploy: %q, %v", body, err)
	}
	waitFor(t, h.rec, api.SubjectLogs(spec.AppID), 0, "the app's start line on port 9090", func(l *api.LogEnvelope) bool { return l.Line == "listening on 9090" })
	b, err := exec.Command("docker", "ps", "-q", "--filter", "label=io.strata.instance=img-1", "--format", "{{.ID}}").Output()
	if err != nil || len(strings.Fields(string(b))) != 1 {
		t.Fatalf("container of img-1: %q, %v", b, err)
	}
	user, _ := exec.Command("docker", "inspect", "-f", "{{.Config.User}}", strings.TrimSpace(string(b))).Output()
	if got := strings.TrimSpace(string(user)); got != "4321" {
		t.Errorf("container user %q, want the image's 4321", got)
	}
	mark := h.rec.len()
	h.stop(e.NodeID(), "img-1", 5*time.Second)
	waitFor(t, h.rec, api.SubjectInstanceEvent, mark, "stopped", eventIs("img-1", api.InstanceStopped))

	// The same on the process driver: refused with the reason.
	onProc := spec
	onProc.InstanceID, onProc.Isolation = "img-2", ""
	mark = h.rec.len()
	h.start(e.NodeID(), onProc)
	_, crash := waitFor(t, h.rec, api.SubjectInstanceEvent, mark, "crash on the process driver", eventIs("img-2", api.InstanceCrashed))
	if !strings.Contains(crash.Reason, "runs images") {
		t.Errorf("crash reason %q, want that the isolation must run images", crash.Reason)
	}
	mark = h.rec.len()
	h.stop(e.NodeID(), "img-2", time.Second)
	waitFor(t, h.rec, api.SubjectInstanceEvent, mark, "img-2 stopped", eventIs("img-2", api.InstanceStopped))

	// A spec naming a droplet and an image is refused outright.
	both := spec
	both.InstanceID, both.DropletBlob = "img-3", blob
	if err := h.command(e.NodeID(), api.NodeCommand{Kind: api.CmdStart, Start: &both}); api.ErrorCode(err) != api.EInvalid {
		t.Errorf("start with a droplet and an image: %v, want invalid", err)
	}
}

func blobRef(data []byte) api.BlobRef {
	sum := sha256.Sum256(data)
	return api.BlobRef("sha256:" + hex.EncodeToString(sum[:]))
}

// TestOrphanContainerSwept: a container of this node that the executor has
// no record of (its record was lost while the executor was down) is removed
// when the executor starts: nothing runs that actual state does not know
// (docs/reliability.md rule 4).
func TestOrphanContainerSwept(t *testing.T) {
	node := fmt.Sprintf("node-orphan-%d", os.Getpid())
	t.Cleanup(func() { removeNode(t, node, true) })
	h := newHarness(t)
	data := t.TempDir()
	cfg := executor.Config{NodeID: node, DataDir: data}
	e, stop := h.run(cfg, mock.New(mock.Config{}), dockerDriver(t, node))
	ref := h.webappDroplet()
	spec := webSpec("orphan", ref)
	spec.Isolation, spec.Routes, spec.HealthCheck = api.IsolationContainer, nil, api.HealthCheck{Type: api.HealthProcess}
	h.start(e.NodeID(), spec)
	waitFor(t, h.rec, api.SubjectInstanceEvent, 0, "running", eventIs("orphan", api.InstanceRunning))
	stop() // the container keeps running (no StopOnExit)
	if len(containersOf(t, node)) != 1 {
		t.Fatalf("containers after the executor stopped: %v, want the instance's", containersOf(t, node))
	}
	if err := os.RemoveAll(filepath.Join(data, "instances", "orphan")); err != nil {
		t.Fatal(err)
	}
	mark := h.rec.len()
	h.run(cfg, mock.New(mock.Config{}), dockerDriver(t, node))
	// The sweep runs before the executor serves and heartbeats.
	_, hb := waitFor(t, h.rec, api.SubjectNodeHeartbeat, mark, "a heartbeat of the restarted executor", func(hb *api.NodeHeartbeat) bool { return hb.NodeID == node })
	if len(hb.Instances) != 0 {
		t.Errorf("heartbeat reports %+v, want no instances", hb.Instances)
	}
	if left := containersOf(t, node); len(left) != 0 {
		t.Fatalf("containers after the executor restarted without a record of them: %v, want none", left)
	}
}

// removeNode removes the containers, networks and images labelled for node;
// with strict, containers and networks left are an error (images are kept
// for restarts by design).
func removeNode(t *testing.T, node string, strict bool) {
	t.Helper()
	for _, args := range [][]string{{"ps", "-a", "-q"}, {"network", "ls", "-q"}, {"images", "-q"}} {
		b, _ := exec.Command("docker", append(args, "--filter", "label=io.strata.node="+node)...).Output()
		ids := strings.Fields(string(b))
		if len(ids) == 0 {
			continue
		}
		if strict && args[0] != "images" {
			t.Errorf("docker %s left for %s: %v", args[0], node, ids)
		}
		rm := map[string][]string{"ps": {"rm", "-f"}, "network": {"network", "rm"}, "images": {"rmi", "-f"}}[args[0]]
		_ = exec.Command("docker", append(rm, ids...)...).Run()
	}
}
