package e2e_test

import (
	"os"
	"path/filepath"
	"regexp"
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

// copyTree copies src into dst keeping file modes (buildpack scripts are
// executable).
func copyTree(t *testing.T, src, dst string) {
	t.Helper()
	err := filepath.Walk(src, func(p string, info os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		to := filepath.Join(dst, rel)
		if info.IsDir() {
			return os.MkdirAll(to, 0o755)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(to, b, info.Mode().Perm())
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestCustomBuildpack: an operator's classic buildpacks in <data>/buildpacks
// build apps pushed to the cluster. examples/buildpacks/shout reads the
// manifest's config var through ENV_DIR and counts builds in its CACHE_DIR
// (the second push sees the first's count); a buildpack whose compile exits
// 1 fails the push with its output.
func TestCustomBuildpack(t *testing.T) {
	require(t, "go", "python3")
	c := startCluster(t, func(data string) {
		copyTree(t, filepath.Join(repoRoot(), "examples", "buildpacks", "shout"), filepath.Join(data, "buildpacks", "shout"))
		broken := filepath.Join(data, "buildpacks", "broken", "bin")
		if err := os.MkdirAll(broken, 0o755); err != nil {
			t.Fatal(err)
		}
		for name, script := range map[string]string{
			"detect":  "#!/bin/sh\n[ -f \"$1/broken.txt\" ] || exit 1\necho broken\n",
			"compile": "#!/bin/sh\necho \"-----> broken: about to fail\"\necho \"the compiler broke here\" >&2\nexit 1\n",
			"release": "#!/bin/sh\necho '--- {}'\n",
		} {
			if err := os.WriteFile(filepath.Join(broken, name), []byte(script), 0o755); err != nil {
				t.Fatal(err)
			}
		}
	})
	c.executor("node-1", t.TempDir(), "--stop-on-exit")

	app := copyDir(t, filepath.Join(repoRoot(), "examples", "hello-shout"))
	if err := os.WriteFile(filepath.Join(app, "strata.yml"), []byte("applications:\n- name: shouty\n  env: {GREETING: Howdy}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out := c.cli.must(app, "strata", "push", "shouty")
	if !strings.Contains(out, `shout: greeting is "Howdy" (from ENV_DIR)`) || !strings.Contains(out, "shout: build 1 of this app") {
		t.Errorf("first push output:\n%s", out)
	}
	waitBody(t, c.routerAddr, "shouty.localhost", "Howdy, STRATA RUNS CLASSIC BUILDPACKS", 30*time.Second)
	out = c.cli.must(app, "strata", "push", "shouty")
	if !strings.Contains(out, "shout: build 2 of this app") {
		t.Errorf("second push does not see the build cache:\n%s", out)
	}
	waitBody(t, c.routerAddr, "shouty.localhost", "(build 2)", 30*time.Second)
	// --no-cache starts from an empty cache and leaves the app's alone.
	if out := c.cli.must(app, "strata", "push", "shouty", "--no-cache"); !strings.Contains(out, "shout: build 1 of this app") {
		t.Errorf("push --no-cache:\n%s", out)
	}
	// strata apps purge-cache empties it: the next build counts from 1.
	c.cli.must("", "strata", "apps", "purge-cache", "shouty")
	if out := c.cli.must(app, "strata", "push", "shouty"); !strings.Contains(out, "shout: build 1 of this app") {
		t.Errorf("push after purge-cache:\n%s", out)
	}

	// A buildpack registered through the API (stored as a blob, fetched by
	// the builder) is chosen by name with -b and listed in order.
	loud := filepath.Join(t.TempDir(), "loud")
	copyTree(t, filepath.Join(repoRoot(), "examples", "buildpacks", "shout"), loud)
	c.cli.must("", "strata", "buildpacks", "create", "loud", loud)
	if out := c.cli.must("", "strata", "buildpacks"); !regexp.MustCompile(`(?m)^1\s+loud\s`).MatchString(out) {
		t.Errorf("strata buildpacks:\n%s", out)
	}
	if out := c.cli.must(app, "strata", "push", "loudly", "-b", "loud", "--no-manifest"); !strings.Contains(out, "Using buildpacks loud") || !strings.Contains(out, `shout: greeting is "hello"`) {
		t.Errorf("push -b loud:\n%s", out)
	}
	waitBody(t, c.routerAddr, "loudly.localhost", "hello, STRATA RUNS CLASSIC BUILDPACKS", 30*time.Second)
	if out, code := c.cli.run("", "strata", "buildpacks", "create", "nobin", t.TempDir()); code == 0 || !strings.Contains(out, "no executable bin/detect") {
		t.Errorf("registering a directory without bin/detect: exit %d\n%s", code, out)
	}
	c.cli.must("", "strata", "buildpacks", "delete", "loud")

	bad := t.TempDir()
	if err := os.WriteFile(filepath.Join(bad, "broken.txt"), []byte("x\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out, code := c.cli.run(bad, "strata", "push", "broke")
	if code == 0 || !strings.Contains(out, "broken: about to fail") || !strings.Contains(out, "the compiler broke here") {
		t.Errorf("push of an app whose buildpack fails: exit %d\n%s", code, out)
	}
}
