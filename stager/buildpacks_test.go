package stager_test

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/strata-paas/strata/api"
	"github.com/strata-paas/strata/api/archive"
	"github.com/strata-paas/strata/stager"
)

// requireTool skips the test when name is missing, except in CI (CI=true)
// where a missing tool fails it.
func requireTool(t testing.TB, name string) {
	t.Helper()
	if _, err := exec.LookPath(name); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s is required in CI: %v", name, err)
		}
		t.Skipf("%s not installed: %v", name, err)
	}
}

// sourceDir packs an example directory as a push would.
func sourceDir(t testing.TB, dir string) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := archive.Pack(context.Background(), &buf, dir, archive.PackOptions{}); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func stagerWith(t *testing.T, cfg stager.Config) *stager.Stager {
	t.Helper()
	if cfg.WorkDir == "" {
		cfg.WorkDir = t.TempDir()
	}
	if cfg.CacheDir == "" {
		cfg.CacheDir = t.TempDir()
	}
	cfg.StaticServer = staticServer
	cfg.Logger = slog.New(slog.NewTextHandler(testWriter{t}, nil))
	s, err := stager.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func stage(t *testing.T, s *stager.Stager, j api.BuildJob, src []byte) (*stager.Result, string) {
	t.Helper()
	var out bytes.Buffer
	res, err := s.Stage(context.Background(), j, bytes.NewReader(src), &out)
	if err != nil {
		t.Fatalf("platform error %v\n%s", err, out.String())
	}
	if res.DropletPath != "" {
		t.Cleanup(func() { os.Remove(res.DropletPath) })
	}
	return res, out.String()
}

func TestStageExamples(t *testing.T) {
	tests := []struct {
		dir, tool, buildpack, web, body string
	}{
		{"hello-node", "node", "nodejs", "npm start", "hello from node v"},
		{"hello-python", "python3", "python", "python app.py", "hello from python 3."},
	}
	for _, tt := range tests {
		t.Run(tt.dir, func(t *testing.T) {
			requireTool(t, tt.tool)
			s := stagerWith(t, stager.Config{})
			res, out := stage(t, s, job(tt.dir), sourceDir(t, filepath.Join("..", "examples", tt.dir)))
			if res.Failure != "" {
				t.Fatalf("%s: %s\n%s", res.Failure, res.Reason, out)
			}
			appDir, info := extractDroplet(t, res.DropletPath)
			if info.Buildpack != tt.buildpack || info.Processes["web"] != tt.web {
				t.Fatalf("staging info %+v", info)
			}
			if body := runWeb(t, appDir, info.Processes["web"]); !strings.HasPrefix(body, tt.body) {
				t.Fatalf("GET / = %q, want %q…", body, tt.body)
			}
		})
	}
}

// shoutJob is a job for examples/hello-shout with a GREETING config var.
func shoutJob(app string) api.BuildJob {
	j := job(app)
	j.Env = map[string]string{"GREETING": "ahoy"}
	return j
}

func TestStageClassicBuildpackAndCache(t *testing.T) {
	requireTool(t, "python3")
	cacheDir := t.TempDir()
	s := stagerWith(t, stager.Config{CacheDir: cacheDir, BuildpacksDir: filepath.Join("..", "examples", "buildpacks")})
	src := sourceDir(t, filepath.Join("..", "examples", "hello-shout"))

	buildNo := func(j api.BuildJob) (string, string) {
		t.Helper()
		res, out := stage(t, s, j, src)
		if res.Failure != "" {
			t.Fatalf("%s: %s\n%s", res.Failure, res.Reason, out)
		}
		appDir, info := extractDroplet(t, res.DropletPath)
		if info.Buildpack != "shout" {
			t.Fatalf("staging info %+v", info)
		}
		return runWeb(t, appDir, info.Processes["web"]), out
	}
	body, out := buildNo(shoutJob("shout"))
	if body != "ahoy, STRATA RUNS CLASSIC BUILDPACKS\n(build 1)\n" {
		t.Fatalf("GET / = %q\n%s", body, out)
	}
	if !strings.Contains(out, "shout app detected") || !strings.Contains(out, `greeting is "ahoy" (from ENV_DIR)`) {
		t.Errorf("output:\n%s", out)
	}
	if body, _ := buildNo(shoutJob("shout")); !strings.HasSuffix(body, "(build 2)\n") {
		t.Errorf("second build did not find its cache: %q", body)
	}
	noCache := shoutJob("shout")
	noCache.NoCache = true
	if body, out := buildNo(noCache); !strings.HasSuffix(body, "(build 1)\n") || !strings.Contains(out, "without the build cache") {
		t.Errorf("no-cache build used the cache: %q\n%s", body, out)
	}
	if body, _ := buildNo(shoutJob("shout")); !strings.HasSuffix(body, "(build 3)\n") {
		t.Errorf("the no-cache build changed the app's cache: %q", body)
	}
	if body, _ := buildNo(shoutJob("other")); !strings.HasSuffix(body, "(build 1)\n") {
		t.Errorf("another app shares the cache: %q", body)
	}
	if err := s.PurgeCache("id-shout"); err != nil {
		t.Fatal(err)
	}
	if body, _ := buildNo(shoutJob("shout")); !strings.HasSuffix(body, "(build 1)\n") {
		t.Errorf("purged cache still used: %q", body)
	}
}

func TestStageCacheEvictsLeastRecentlyUsed(t *testing.T) {
	cacheDir := t.TempDir()
	// Each shout build leaves a 2-byte counter: room for one app's cache.
	s := stagerWith(t, stager.Config{CacheDir: cacheDir, CacheMaxBytes: 3, BuildpacksDir: filepath.Join("..", "examples", "buildpacks")})
	src := sourceDir(t, filepath.Join("..", "examples", "hello-shout"))
	for _, app := range []string{"old", "new"} {
		if res, out := stage(t, s, shoutJob(app), src); res.Failure != "" {
			t.Fatalf("%s\n%s", res.Reason, out)
		}
	}
	if _, err := os.Stat(filepath.Join(cacheDir, "id-old")); !os.IsNotExist(err) {
		t.Errorf("the least recently used cache was kept: %v", err)
	}
	if _, err := os.Stat(filepath.Join(cacheDir, "id-new", "shout-builds")); err != nil {
		t.Errorf("the newest cache was evicted: %v", err)
	}
}

// writeBuildpack writes a classic buildpack under root.
func writeBuildpack(t *testing.T, root, name string, scripts map[string]string) {
	t.Helper()
	bin := filepath.Join(root, name, "bin")
	if err := os.MkdirAll(bin, 0o755); err != nil {
		t.Fatal(err)
	}
	for n, body := range scripts {
		if err := os.WriteFile(filepath.Join(bin, n), []byte("#!/bin/sh\n"+body+"\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
}

func TestStageNamedBuildpacks(t *testing.T) {
	root := t.TempDir()
	writeBuildpack(t, root, "first", map[string]string{"detect": "exit 1", "compile": `echo "export FROM_FIRST=1" > "$(dirname "$0")/../export"; echo first > "$1/first.txt"`})
	writeBuildpack(t, root, "second", map[string]string{"detect": "exit 1", "compile": `echo "second sees FROM_FIRST=$FROM_FIRST"`, "release": `echo "default_process_types: {web: ./run.sh}"`})
	writeBuildpack(t, root, "broken", map[string]string{"detect": "exit 0", "compile": "echo 'broken: missing libfoo' >&2; exit 1"})
	s := stagerWith(t, stager.Config{BuildpacksDir: root})
	src := sourceOf(t, map[string]string{"run.sh": "#!/bin/sh\n"})

	j := job("named")
	j.Buildpacks = []string{"first", "second"}
	res, out := stage(t, s, j, src)
	if res.Failure != "" {
		t.Fatalf("%s\n%s", res.Reason, out)
	}
	appDir, info := extractDroplet(t, res.DropletPath)
	if info.Buildpack != "first,second" || info.Processes["web"] != "./run.sh" {
		t.Errorf("staging info %+v", info)
	}
	if _, err := os.Stat(filepath.Join(appDir, "first.txt")); err != nil || !strings.Contains(out, "second sees FROM_FIRST=1") {
		t.Errorf("buildpacks did not run in order with export chaining: %v\n%s", err, out)
	}

	j.Buildpacks = []string{"https://github.com/cloudfoundry/go-buildpack"}
	if res, _ := stage(t, s, j, src); res.Failure != api.FailNoBuildpack || !strings.Contains(res.Reason, "not supported yet") {
		t.Errorf("buildpack URL: %+v", res)
	}
	j.Buildpacks = []string{"binary_buildpack"} // Cloud Foundry's name of procfile
	if res, out := stage(t, s, j, sourceOf(t, map[string]string{"Procfile": "web: ./run.sh\n", "run.sh": "#!/bin/sh\n"})); res.Failure != "" || !strings.Contains(out, "Using buildpacks procfile") {
		t.Errorf("alias binary_buildpack: %+v\n%s", res, out)
	}

	j.Buildpacks = []string{"nope"}
	if res, _ := stage(t, s, j, src); res.Failure != api.FailNoBuildpack || !strings.Contains(res.Reason, `unknown buildpack "nope"`) || !strings.Contains(res.Reason, "first") {
		t.Errorf("unknown buildpack: %+v", res)
	}

	// Without names, broken detects first (custom before built-in), and
	// its compile failure fails the build with its output.
	res, out = stage(t, s, job("broken"), src)
	if res.Failure != api.FailCompile || res.Reason != "compile failed (exit 1)" || !strings.Contains(out, "broken: missing libfoo") {
		t.Errorf("failing compile: %+v\n%s", res, out)
	}
}

// TestStageConfined: a build runs as the unprivileged build user, and sees
// neither the data directory nor another app's cache; a Go build still
// works under the limits.
func TestStageConfined(t *testing.T) {
	// Not under /tmp: a confined build gets a private /tmp, which would
	// hide the data dir whatever the stager does. 0700, as stratad makes it.
	data, err := os.MkdirTemp("/var/tmp", "strata-stager-test-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(data) })
	for _, d := range []string{"blobs", "cache/id-victim"} {
		if err := os.MkdirAll(filepath.Join(data, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	secret := filepath.Join(data, "blobs", "secret")
	victim := filepath.Join(data, "cache", "id-victim", "token")
	for _, f := range []string{secret, victim} {
		if err := os.WriteFile(f, []byte("s3cret"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	root := t.TempDir()
	writeBuildpack(t, root, "probe", map[string]string{"detect": "exit 0", "compile": `echo "uid=$(id -u)"
if cat "` + secret + `" 2>/dev/null; then echo "READ data dir"; fi
if cat "` + victim + `" 2>/dev/null; then echo "READ other cache"; fi
if ls "` + data + `/blobs" 2>/dev/null; then echo "LISTED blobs"; fi
if echo x > /etc/strata-probe 2>/dev/null; then echo "WROTE /etc"; fi
echo ok > "$2/mine" && echo "wrote own cache"`, "release": `echo "default_process_types: {web: x}"`})
	s := stagerWith(t, stager.Config{WorkDir: filepath.Join(data, "staging"), CacheDir: filepath.Join(data, "cache"), BuildpacksDir: root})
	if !s.Confined() {
		if os.Getenv("CI") == "true" && os.Geteuid() == 0 {
			t.Fatal("builds are not confined although the test runs as root in CI")
		}
		t.Skip("builds are not confined here (needs root on Linux with a cgroup memory controller)")
	}
	res, out := stage(t, s, job("app"), sourceOf(t, map[string]string{"x": ""}))
	if res.Failure != "" {
		t.Fatalf("%s\n%s", res.Reason, out)
	}
	if !strings.Contains(out, "uid="+strconv.Itoa(stager.DefaultBuildUID)) || !strings.Contains(out, "wrote own cache") {
		t.Errorf("build did not run as the build user with its cache:\n%s", out)
	}
	for _, leak := range []string{"READ", "LISTED", "WROTE", "s3cret"} {
		if strings.Contains(out, leak) {
			t.Errorf("confined build could %s:\n%s", leak, out)
		}
	}
	if _, err := os.Stat("/etc/strata-probe"); err == nil {
		os.Remove("/etc/strata-probe")
		t.Error("confined build wrote /etc")
	}
}

// TestStageDetectTimeout: the staging timeout covers bin/detect too.
func TestStageDetectTimeout(t *testing.T) {
	root := t.TempDir()
	writeBuildpack(t, root, "hang", map[string]string{"detect": "sleep 60 & wait", "compile": "true"})
	s := stagerWith(t, stager.Config{BuildpacksDir: root})
	j := job("hang")
	j.Timeout = 500 * time.Millisecond
	res, out := stage(t, s, j, sourceOf(t, map[string]string{"x": ""}))
	if res.Failure != api.FailTimeout {
		t.Fatalf("got %+v, want a timeout\n%s", res, out)
	}
}

// TestNewSweepsLeftovers: sandboxes and droplets a killed builder left in
// the work dir are removed when the next stager starts; other files stay.
func TestNewSweepsLeftovers(t *testing.T) {
	work := t.TempDir()
	for _, p := range []string{"build-123/app/x", "droplet-9.tgz", "keep.txt"} {
		p = filepath.Join(work, p)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	stagerWith(t, stager.Config{WorkDir: work})
	ents, _ := os.ReadDir(work)
	if len(ents) != 1 || ents[0].Name() != "keep.txt" {
		t.Fatalf("work dir holds %v, want only keep.txt", ents)
	}
}

// TestStageGoSeedCache: confined builds do not share Go's caches, but a new
// app's empty build cache is seeded with the standard packages the builder
// compiled itself for an earlier app.
func TestStageGoSeedCache(t *testing.T) {
	requireTool(t, "go")
	cacheDir := t.TempDir()
	s := stagerWith(t, stager.Config{CacheDir: cacheDir})
	if !s.Confined() {
		t.Skip("builds are not confined here: Go's caches are shared instead")
	}
	src := sourceOf(t, map[string]string{"go.mod": "module example.com/hello\n\ngo 1.22\n", "main.go": helloMain})
	for _, app := range []string{"first", "second"} {
		res, out := stage(t, s, job(app), src)
		if res.Failure != "" {
			t.Fatalf("%s: %s\n%s", app, res.Reason, out)
		}
		if !strings.Contains(out, "standard packages into the builder's seed cache") {
			t.Errorf("%s: not seeded:\n%s", app, out)
		}
	}
	seed := countFiles(t, filepath.Join(cacheDir, "_seed", "gocache"))
	second := countFiles(t, filepath.Join(cacheDir, "id-second", "gocache"))
	if seed < 100 || second < seed {
		t.Errorf("seed cache has %d files, the second app's cache %d: want the seed copied in", seed, second)
	}
	if _, err := os.Stat(filepath.Join(cacheDir, "_shared")); err == nil {
		t.Errorf("confined builds shared Go's caches")
	}
	j := job("third")
	j.NoCache = true
	if res, out := stage(t, s, j, src); res.Failure != "" || strings.Contains(out, "seed cache") {
		t.Errorf("a no-cache build used the seed: %+v\n%s", res, out)
	}
}

func countFiles(t *testing.T, dir string) int {
	t.Helper()
	n := 0
	filepath.WalkDir(dir, func(_ string, d os.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			n++
		}
		return nil
	})
	return n
}
