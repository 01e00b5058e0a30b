package e2e_test

import (
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
)

// dockerObjects lists the containers, networks and images labelled for node
// (by the docker driver), through the docker CLI.
func dockerObjects(t *testing.T, node string) (containers, networks, images []string) {
	t.Helper()
	list := func(args ...string) []string {
		b, err := exec.Command("docker", append(args, "--filter", "label=io.strata.node="+node)...).Output()
		if err != nil {
			t.Fatalf("docker %v: %v", args, err)
		}
		return strings.Fields(string(b))
	}
	return list("ps", "-a", "-q", "--no-trunc"), list("network", "ls", "-q"), list("images", "-q")
}

// removeLeftovers fails the test for each container and network of node
// still there, and removes them.
func removeLeftovers(t *testing.T, node string) {
	t.Helper()
	cs, nets, _ := dockerObjects(t, node)
	if len(cs) > 0 {
		t.Errorf("containers left for %s: %v", node, cs)
		_ = exec.Command("docker", append([]string{"rm", "-f"}, cs...)...).Run()
	}
	if len(nets) > 0 {
		t.Errorf("networks left for %s: %v", node, nets)
		_ = exec.Command("docker", append([]string{"network", "rm"}, nets...)...).Run()
	}
}

// TestContainerIsolation pushes an app whose placement asks for the
// container isolation to a node that offers it: it answers through the
// router from a container, `strata app` shows the isolation, a `docker kill`
// is a crash (event) after which the instance runs again, and after a kill
// -9 and restart of the executor the same container is re-attached. Deleting
// the app leaves no container or network of the node; the droplet images the
// executor keeps for restarts are removed at the end.
func TestContainerIsolation(t *testing.T) {
	require(t, "go", "docker")
	node := fmt.Sprintf("ctr-%d", os.Getpid())
	t.Cleanup(func() { // registered first: runs after the processes stop
		removeLeftovers(t, node)
		if _, _, imgs := dockerObjects(t, node); len(imgs) > 0 {
			_ = exec.Command("docker", append([]string{"rmi", "-f"}, imgs...)...).Run()
		}
		if _, _, imgs := dockerObjects(t, node); len(imgs) > 0 {
			t.Errorf("images left for %s: %v", node, imgs)
		}
	})
	c := startCluster(t)
	data := t.TempDir()
	ex := c.executor(node, data, "--drivers", "process,docker")

	app := copyDir(t, filepath.Join(repoRoot(), "examples", "hello-go"))
	manifest := "applications:\n- name: boxed\n  placement:\n    isolation: container\n"
	if err := os.WriteFile(filepath.Join(app, "strata.yml"), []byte(manifest), 0o644); err != nil {
		t.Fatal(err)
	}
	c.cli.must(app, "strata", "push")
	waitBody(t, c.routerAddr, "boxed.localhost", helloBody, 120*time.Second)
	c.waitRunning("boxed", 1, 60*time.Second)
	cs, _, _ := dockerObjects(t, node)
	if len(cs) != 1 {
		t.Fatalf("containers of node %s: %v, want one (none: the instance ran on the process driver)", node, cs)
	}
	for _, in := range c.placed("boxed") {
		if in.Isolation != "container" {
			t.Errorf("strata app shows instance %s with isolation %q, want container", in.ID, in.Isolation)
		}
	}
	if detail := c.cli.must("", "strata", "app", "boxed"); !strings.Contains(detail, "container") {
		t.Errorf("strata app does not show the container isolation:\n%s", detail)
	}

	// docker kill: a crash, recorded, and the instance runs again.
	before := len(c.cli.crashEvents("boxed"))
	if out, err := exec.Command("docker", "kill", cs[0]).CombinedOutput(); err != nil {
		t.Fatalf("docker kill: %v\n%s", err, out)
	}
	waitFor(t, "a crash event after docker kill", 60*time.Second, func() (bool, string) {
		evs := c.cli.crashEvents("boxed")
		return len(evs) > before, fmt.Sprintf("%d crash events", len(evs))
	})
	waitBody(t, c.routerAddr, "boxed.localhost", helloBody, 60*time.Second)
	in := c.waitRunning("boxed", 1, 60*time.Second)[0]
	cs, _, _ = dockerObjects(t, node)
	if len(cs) != 1 {
		t.Fatalf("containers after the crash: %v, want one (the restarted instance)", cs)
	}

	// kill -9 of the executor: the container keeps serving, and the
	// restarted executor re-attaches it instead of replacing it.
	ex.kill()
	waitBody(t, c.routerAddr, "boxed.localhost", helloBody, 10*time.Second)
	c.executor(node, data, "--drivers", "process,docker", "--stop-on-exit")
	for range 10 {
		waitBody(t, c.routerAddr, "boxed.localhost", helloBody, 10*time.Second)
		time.Sleep(200 * time.Millisecond)
	}
	again := c.waitRunning("boxed", 1, 60*time.Second)[0]
	if again.ID != in.ID {
		t.Errorf("instance replaced after the executor restart: %s → %s", in.ID, again.ID)
	}
	if after, _, _ := dockerObjects(t, node); !slices.Equal(after, cs) {
		t.Errorf("containers after the executor restart: %v, want the same %v", after, cs)
	}

	c.cli.must("", "strata", "apps", "delete", "boxed", "--force")
	waitFor(t, "the container and network to go with the app", 60*time.Second, func() (bool, string) {
		cs, nets, _ := dockerObjects(t, node)
		return len(cs) == 0 && len(nets) == 0, fmt.Sprintf("containers %v, networks %v", cs, nets)
	})
}

// buildHelloImage builds the example app as a static binary into an image
// FROM scratch (no registry needed) that runs as user 1000 and EXPOSEs
// 8080, tags it tag and saves it to a tarball, whose path it returns.
func buildHelloImage(t *testing.T, tag string) string {
	t.Helper()
	dir := t.TempDir()
	build := exec.Command("go", "build", "-o", filepath.Join(dir, "hello"), ".")
	build.Dir = filepath.Join(repoRoot(), "examples", "hello-go")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build hello: %v\n%s", err, out)
	}
	dockerfile := "FROM scratch\nCOPY hello /hello\nUSER 1000\nEXPOSE 8080\nCMD [\"/hello\"]\n"
	if err := os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte(dockerfile), 0o644); err != nil {
		t.Fatal(err)
	}
	db := exec.Command("docker", "build", "-q", "-t", tag, dir)
	db.Env = append(os.Environ(), "DOCKER_BUILDKIT=0")
	if out, err := db.CombinedOutput(); err != nil {
		t.Fatalf("docker build: %v\n%s", err, out)
	}
	tarball := filepath.Join(t.TempDir(), "hello.tar")
	if out, err := exec.Command("docker", "save", "-o", tarball, tag).CombinedOutput(); err != nil {
		t.Fatalf("docker save: %v\n%s", err, out)
	}
	return tarball
}

// TestImageDeploys: an image tarball (strata push --docker-image-file) and
// an image the node has (--docker-image) deploy with no build, run in a
// container on their EXPOSEd port, answer through the router, scale, and
// roll back to the tarball's release.
func TestImageDeploys(t *testing.T) {
	require(t, "go", "docker")
	node := fmt.Sprintf("img-%d", os.Getpid())
	tag := "strata-e2e/hello:" + node
	tarball := buildHelloImage(t, tag)
	data, err := os.ReadFile(tarball)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(data)
	loaded := "strata/image:" + hex.EncodeToString(sum[:]) // the node's tag of the tarball's image
	// Registered before the cluster: runs after its processes stop.
	t.Cleanup(func() {
		removeLeftovers(t, node)
		_ = exec.Command("docker", "rmi", "-f", tag, loaded).Run()
	})
	c := startCluster(t)
	c.executor(node, t.TempDir(), "--drivers", "process,docker", "--stop-on-exit")

	c.cli.must("", "strata", "push", "imgs", "--docker-image-file", tarball)
	waitBody(t, c.routerAddr, "imgs.localhost", helloBody+" (instance 0, release 1)", 120*time.Second)
	for _, in := range c.placed("imgs") {
		if in.Isolation != "container" {
			t.Errorf("instance %s of an image deploy shows isolation %q, want container", in.ID, in.Isolation)
		}
	}
	image := func() []string {
		b, err := exec.Command("docker", "ps", "--format", "{{.Image}}", "--filter", "label=io.strata.node="+node).Output()
		if err != nil {
			t.Fatalf("docker ps: %v", err)
		}
		return strings.Fields(string(b))
	}
	if got := image(); len(got) != 1 || got[0] != loaded {
		t.Fatalf("containers run %v, want the tarball's image %s", got, loaded)
	}
	if cs, _, _ := dockerObjects(t, node); len(cs) == 1 {
		if u, _ := exec.Command("docker", "inspect", "-f", "{{.Config.User}}", cs[0]).Output(); strings.TrimSpace(string(u)) != "1000" {
			t.Errorf("the container runs as %q, want the image's user 1000", strings.TrimSpace(string(u)))
		}
	}

	c.cli.must("", "strata", "push", "imgs", "--docker-image", tag)
	waitBody(t, c.routerAddr, "imgs.localhost", helloBody+" (instance 0, release 2)", 60*time.Second)
	waitFor(t, "the release-1 container to go", 60*time.Second, func() (bool, string) {
		got := image()
		return len(got) == 1 && got[0] == tag, fmt.Sprintf("images %v", got)
	})

	c.cli.must("", "strata", "scale", "imgs", "-i", "2")
	c.waitRunning("imgs", 2, 60*time.Second)

	c.cli.must("", "strata", "rollback", "imgs", "1")
	waitBody(t, c.routerAddr, "imgs.localhost", helloBody+" (instance 0, release 3)", 60*time.Second)
	waitFor(t, "the rollback to run the tarball's image", 60*time.Second, func() (bool, string) {
		got := image()
		return len(got) == 2 && got[0] == loaded && got[1] == loaded, fmt.Sprintf("images %v", got)
	})

	c.cli.must("", "strata", "apps", "delete", "imgs", "--force")
	waitFor(t, "the containers and network to go with the app", 60*time.Second, func() (bool, string) {
		cs, nets, _ := dockerObjects(t, node)
		return len(cs) == 0 && len(nets) == 0, fmt.Sprintf("containers %v, networks %v", cs, nets)
	})
}

// TestDockerfileDeploys: examples/hello-dockerfile (a Dockerfile FROM the
// stack, no other buildpack matches) is built by the builder's engine and
// runs in a container, pushed with strata push and then with git push; its
// build output reaches the pusher, it answers through the router, and it
// rolls back, scales, takes env changes, logs and runs a task like a
// buildpack app. A Dockerfile FROM an image the engine lacks fails saying
// which and what to do.
func TestDockerfileDeploys(t *testing.T) {
	require(t, "git", "docker")
	node := fmt.Sprintf("df-%d", os.Getpid())
	ran := map[string]bool{} // the images the node's containers ran, removed at the end
	running := func() []string {
		b, err := exec.Command("docker", "ps", "--format", "{{.Image}}", "--filter", "label=io.strata.node="+node).Output()
		if err != nil {
			t.Fatalf("docker ps: %v", err)
		}
		imgs := strings.Fields(string(b))
		for _, img := range imgs {
			ran[img] = true
		}
		return imgs
	}
	// Registered before the cluster: runs after its processes stop.
	t.Cleanup(func() {
		removeLeftovers(t, node)
		for img := range ran {
			_ = exec.Command("docker", "rmi", img).Run()
		}
	})
	c := startCluster(t)
	c.executor(node, t.TempDir(), "--drivers", "process,docker", "--stop-on-exit")

	app := copyDir(t, filepath.Join(repoRoot(), "examples", "hello-dockerfile"))
	out := c.cli.must(app, "strata", "push", "hello-df")
	for _, want := range []string{"dockerfile app detected", "Step 1/", "FROM strata/stack:bookworm", "Uploading image"} {
		if !strings.Contains(out, want) {
			t.Errorf("strata push output lacks %q:\n%s", want, out)
		}
	}
	const greeting = "Hello from a Dockerfile!"
	waitBody(t, c.routerAddr, "hello-df.localhost", greeting+" (instance 0, release 1)", 60*time.Second)
	for _, in := range c.placed("hello-df") {
		if in.Isolation != "container" {
			t.Errorf("instance %s of a Dockerfile app shows isolation %q, want container", in.ID, in.Isolation)
		}
	}
	first := running()
	if len(first) != 1 || !strings.HasPrefix(first[0], "strata/image:") {
		t.Fatalf("containers run %v, want one of the built image (strata/image:<digest>)", first)
	}

	// git push of a changed Dockerfile app: a new build and release,
	// with the build's lines as remote: output.
	server := filepath.Join(app, "server.py")
	src, err := os.ReadFile(server)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(server, []byte(strings.Replace(string(src), greeting, "Hello via git!", 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	gitRepo(t, c.cli, app)
	c.cli.must(app, "strata", "git-remote", "hello-df")
	out = c.cli.must(app, "git", "push", "strata", "main")
	for _, want := range []string{"remote: -----> dockerfile app detected", "remote: Step 1/"} {
		if !strings.Contains(out, want) {
			t.Errorf("git push output lacks %q:\n%s", want, out)
		}
	}
	waitBody(t, c.routerAddr, "hello-df.localhost", "Hello via git! (instance 0, release 2)", 60*time.Second)
	waitFor(t, "one container, of the second build", 60*time.Second, func() (bool, string) {
		got := running()
		return len(got) == 1 && got[0] != first[0], fmt.Sprintf("images %v", got)
	})

	// Rollback to the strata push's release, scale, and a config change.
	c.cli.must("", "strata", "rollback", "hello-df", "1")
	waitBody(t, c.routerAddr, "hello-df.localhost", greeting+" (instance 0, release 3)", 60*time.Second)
	c.cli.must("", "strata", "scale", "hello-df", "-i", "2")
	c.waitRunning("hello-df", 2, 90*time.Second)
	waitFor(t, "two containers of the first build", 60*time.Second, func() (bool, string) {
		got := running()
		return len(got) == 2 && got[0] == first[0] && got[1] == first[0], fmt.Sprintf("images %v", got)
	})
	c.cli.must("", "strata", "env", "set", "hello-df", "GREETING=Howdy")
	waitBody(t, c.routerAddr, "hello-df.localhost", "Howdy (instance ", 90*time.Second)
	waitFor(t, "the app's request lines in its logs", 30*time.Second, func() (bool, string) {
		logs := c.cli.must("", "strata", "logs", "hello-df", "--recent", "--source", "app")
		return strings.Contains(logs, "GET /"), tail(logs, 400)
	})
	if logs := c.cli.must("", "strata", "logs", "hello-df", "--recent", "--source", "staging"); !strings.Contains(logs, "Step 1/") {
		t.Errorf("the build's lines are not in the app's staging logs:\n%s", tail(logs, 1000))
	}

	// A task of the image app: the command runs in a container of its image
	// (the working dir and user of the image), with the app's config.
	if out := c.cli.must("", "strata", "run", "hello-df", "--", "echo task $GREETING in $(pwd) as $(id -u)"); !strings.Contains(out, "task Howdy in /srv/hello as 1000") {
		t.Errorf("strata run of the Dockerfile app printed:\n%s", out)
	}

	// FROM an image the engine does not have: refused before building.
	bad := t.TempDir()
	if err := os.WriteFile(filepath.Join(bad, "Dockerfile"), []byte("FROM debian:bookworm-slim\nCMD [\"sleep\", \"1\"]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out, code := c.cli.run(bad, "strata", "push", "bad-df")
	if code == 0 {
		t.Fatalf("push of a Dockerfile FROM a missing image succeeded:\n%s", out)
	}
	for _, want := range []string{"debian:bookworm-slim", "does not have", "make stack"} {
		if !strings.Contains(out, want) {
			t.Errorf("failed push output lacks %q:\n%s", want, out)
		}
	}

	c.cli.must("", "strata", "apps", "delete", "hello-df", "--force")
	waitFor(t, "the containers and network to go with the app", 60*time.Second, func() (bool, string) {
		cs, nets, _ := dockerObjects(t, node)
		return len(cs) == 0 && len(nets) == 0, fmt.Sprintf("containers %v, networks %v", cs, nets)
	})
}
