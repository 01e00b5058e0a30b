package e2e_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestBuildpacks pushes examples/hello-node with strata push and
// examples/hello-python with git push to a cluster, and expects both to
// answer through the router; a push no buildpack detects fails, listing the
// buildpacks tried and what each looks for.
func TestBuildpacks(t *testing.T) {
	require(t, "git", "go", "node", "npm", "python3")
	c := startCluster(t)
	c.executor("node-1", t.TempDir(), "--stop-on-exit")

	node := copyDir(t, filepath.Join(repoRoot(), "examples", "hello-node"))
	out := c.cli.must(node, "strata", "push", "hello-node")
	if !strings.Contains(out, "nodejs app detected") || !strings.Contains(out, "Using node ") {
		t.Errorf("strata push hello-node output:\n%s", out)
	}
	c.waitRunning("hello-node", 1, 90*time.Second)
	waitBody(t, c.routerAddr, "hello-node.localhost", "hello from node v", 30*time.Second)
	waitBody(t, c.routerAddr, "hello-node.localhost", "(production)", 5*time.Second)

	py := copyDir(t, filepath.Join(repoRoot(), "examples", "hello-python"))
	gitRepo(t, c.cli, py)
	c.cli.must(py, "strata", "apps", "create", "hello-python")
	c.cli.must(py, "strata", "git-remote", "hello-python")
	out = c.cli.must(py, "git", "push", "strata", "main")
	if !strings.Contains(out, "remote: -----> python app detected") {
		t.Errorf("git push hello-python output:\n%s", out)
	}
	c.waitRunning("hello-python", 1, 90*time.Second)
	waitBody(t, c.routerAddr, "hello-python.localhost", "hello from python 3.", 30*time.Second)

	none := t.TempDir()
	if err := os.WriteFile(filepath.Join(none, "README.md"), []byte("nothing to run\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out, code := c.cli.run(none, "strata", "push", "nothing", "--no-wait")
	if code == 0 {
		t.Fatalf("push of an app no buildpack detects succeeded:\n%s", out)
	}
	for _, want := range []string{"no buildpack detected", "nodejs (package.json)", "python (requirements.txt", "go (go.mod)"} {
		if !strings.Contains(out, want) {
			t.Errorf("failed push output lacks %q:\n%s", want, out)
		}
	}
}
