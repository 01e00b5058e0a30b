package e2e_test

import (
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
		cs, nets, imgs := dockerObjects(t, node)
		if len(cs) > 0 {
			t.Errorf("containers left for %s: %v", node, cs)
			_ = exec.Command("docker", append([]string{"rm", "-f"}, cs...)...).Run()
		}
		if len(nets) > 0 {
			t.Errorf("networks left for %s: %v", node, nets)
			_ = exec.Command("docker", append([]string{"network", "rm"}, nets...)...).Run()
		}
		if len(imgs) > 0 {
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
