package e2e_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// manifestSettings is what a manifest sets of an app, as `strata app
// --json` and `strata env` show it.
type manifestSettings struct {
	Processes []struct {
		Type        string `json:"type"`
		Instances   int    `json:"instances"`
		MemoryMB    int    `json:"memory_mb"`
		HealthCheck string `json:"health_check_type"`
		HealthPath  string `json:"health_check_http_endpoint"`
	} `json:"processes"`
	Placement struct {
		Substrate string            `json:"substrate"`
		Isolation string            `json:"isolation"`
		Labels    map[string]string `json:"labels"`
	} `json:"placement"`
	Env string `json:"-"`
}

// releaseVersions is the VERSION column of `strata releases APP`: what a
// refused push must leave unchanged (the CREATED column ages by itself).
func (c *cluster) releaseVersions(app string) string {
	var versions []string
	for _, line := range strings.Split(c.cli.must("", "strata", "releases", app), "\n")[1:] {
		if f := strings.Fields(line); len(f) > 0 {
			versions = append(versions, f[0])
		}
	}
	return strings.Join(versions, " ")
}

func (c *cluster) settings(app string) manifestSettings {
	c.t.Helper()
	var s manifestSettings
	out := c.cli.must("", "strata", "app", app, "--json")
	if err := json.Unmarshal([]byte(out), &s); err != nil {
		c.t.Fatalf("app --json: %v\n%s", err, out)
	}
	s.Env = c.cli.must("", "strata", "env", app)
	return s
}

func (s manifestSettings) String() string {
	b, _ := json.Marshal(s)
	return string(b) + " env " + strings.TrimSpace(s.Env)
}

// sameSettings are the settings of both apps of twoApps.
const sameSettings = `  instances: 2
  memory: 128M
  env: {GREETING_SOURCE: manifest}
  health-check-type: http
  health-check-http-endpoint: /healthz
  placement: {substrate: metal}
`

// The manifest of TestGitPushManifest: two apps with the same settings, so
// a git push to one and a strata push of the other can be compared.
const twoApps = "applications:\n- name: viagit\n" + sameSettings + "- name: viacli\n" + sameSettings

// TestGitPushManifest: plain git push applies the repository's strata.yml
// exactly as strata push does — instances, env, health check and a
// placement the nodes satisfy; a placement no node satisfies leaves the app
// unplaceable with the reason and running nowhere; a manifest with an
// unknown key fails the push with its line as a remote: line and makes no
// release.
func TestGitPushManifest(t *testing.T) {
	require(t, "git", "go")
	c := startCluster(t)
	c.executor("metal-m", t.TempDir(), "--stop-on-exit", "--substrate", "metal")
	c.executor("vm-v", t.TempDir(), "--stop-on-exit", "--substrate", "vm")
	deadline := time.Now().Add(30 * time.Second)
	for len(c.nodeStates()) < 2 && time.Now().Before(deadline) {
		time.Sleep(200 * time.Millisecond)
	}

	dir := copyDir(t, filepath.Join(repoRoot(), "examples", "hello-go"))
	if err := os.WriteFile(filepath.Join(dir, "strata.yml"), []byte(twoApps), 0o644); err != nil {
		t.Fatal(err)
	}
	gitRepo(t, c.cli, dir)
	c.cli.must(dir, "strata", "apps", "create", "viagit")
	c.cli.must(dir, "strata", "git-remote", "viagit")
	out := c.cli.must(dir, "git", "push", "strata", "main")
	want := "remote: manifest: env GREETING_SOURCE, placement substrate=metal, instances 1 → 2, memory 256M → 128M, health check http /healthz"
	if !strings.Contains(out, want) {
		t.Errorf("git push output lacks %q:\n%s", want, out)
	}
	ins := c.waitRunning("viagit", 2, 60*time.Second)
	for _, in := range ins {
		if in.NodeID != "metal-m" {
			t.Errorf("instance %s runs on %s, want metal-m (placement substrate=metal)", in.ID, in.NodeID)
		}
	}
	waitBody(t, c.routerAddr, "viagit.localhost", helloBody, 30*time.Second)
	viaGit := c.settings("viagit")
	if viaGit.Placement.Substrate != "metal" || viaGit.Env != "GREETING_SOURCE=manifest\n" || len(viaGit.Processes) != 1 ||
		viaGit.Processes[0].Instances != 2 || viaGit.Processes[0].MemoryMB != 128 || viaGit.Processes[0].HealthCheck != "http" || viaGit.Processes[0].HealthPath != "/healthz" {
		t.Errorf("git push settings: %s", viaGit)
	}
	if detail := c.cli.must("", "strata", "app", "viagit"); !strings.Contains(detail, "placement: substrate=metal") {
		t.Errorf("strata app viagit:\n%s", detail)
	}
	// Only the application named like the remote's app was deployed.
	if out, code := c.cli.run("", "strata", "app", "viacli"); code == 0 {
		t.Errorf("git push of viagit also made viacli:\n%s", out)
	}
	if events := c.cli.must("", "strata", "events", "viagit"); !regexp.MustCompile(`manifest\s+admin\s+strata.yml applied: env GREETING_SOURCE`).MatchString(events) {
		t.Errorf("no manifest event with the actor:\n%s", events)
	}

	// strata push of the same tree gives the same settings.
	c.cli.must(dir, "strata", "push", "viacli")
	c.waitRunning("viacli", 2, 60*time.Second)
	if viaCLI := c.settings("viacli"); viaCLI.String() != viaGit.String() {
		t.Errorf("strata push and git push differ:\nstrata push %s\ngit push    %s", viaCLI, viaGit)
	}

	// An unknown key fails the push with its line; no release is made.
	releases := c.releaseVersions("viagit")
	if err := os.WriteFile(filepath.Join(dir, "strata.yml"), []byte(strings.Replace(twoApps, "  instances: 2\n", "  instances: 3\n  colour: blue\n", 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	c.cli.must(dir, "git", "commit", "-qam", "colour")
	out, code := c.cli.run(dir, "git", "push", "strata", "main")
	if code == 0 || !regexp.MustCompile(`(?m)^remote: .*strata.yml: line 4: unknown key "colour"`).MatchString(out) {
		t.Errorf("git push of a manifest with an unknown key: exit %d\n%s", code, out)
	}
	if after := c.releaseVersions("viagit"); after != releases {
		t.Errorf("the refused push made a release:\nbefore\n%s\nafter\n%s", releases, after)
	}
	if s := c.settings("viagit"); s.Processes[0].Instances != 2 {
		t.Errorf("the refused push changed the instances: %s", s)
	}

	// A placement no node satisfies: the app is unplaceable, with the
	// reason, and runs nowhere else.
	nowhere := copyDir(t, filepath.Join(repoRoot(), "examples", "hello-go"))
	os.WriteFile(filepath.Join(nowhere, "strata.yml"), []byte("applications:\n- name: nowhere\n  placement: {substrate: metal, labels: {rack: none}}\n"), 0o644)
	gitRepo(t, c.cli, nowhere)
	c.cli.must(nowhere, "strata", "apps", "create", "nowhere")
	c.cli.must(nowhere, "strata", "git-remote", "nowhere")
	out, code = c.cli.run(nowhere, "git", "push", "strata", "main")
	if code == 0 || !strings.Contains(out, "no node matches placement substrate=metal rack=none") {
		t.Errorf("git push with an unsatisfiable placement: exit %d\n%s", code, out)
	}
	detail := c.cli.must("", "strata", "app", "nowhere")
	if !strings.Contains(detail, "placement: substrate=metal rack=none") || !strings.Contains(detail, "no node matches placement") {
		t.Errorf("strata app nowhere:\n%s", detail)
	}
	for _, in := range c.placed("nowhere") {
		if in.NodeID != "" {
			t.Errorf("instance %s of nowhere placed on %s", in.ID, in.NodeID)
		}
	}
}
