package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/strata-paas/strata/api"
	"github.com/strata-paas/strata/api/httpapi/httpapitest"
)

// syncBuffer is a bytes.Buffer safe for concurrent use.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

var testNow = time.Date(2025, 1, 2, 3, 14, 5, 0, time.UTC)

// cli runs the CLI in-process against the real API (httpapitest: the
// controller's services on SQLite behind the httpapi handler).
type cli struct {
	t   *testing.T
	srv *httpapitest.Env
	url string
	env map[string]string
	dir string
	exe string
	now func() time.Time // the CLI's clock; testNow unless a test sets it
}

func newCLI(t *testing.T) *cli {
	t.Helper()
	srv := httpapitest.Start(t, httpapitest.Options{})
	home := t.TempDir()
	return &cli{
		t: t, srv: srv, url: srv.URL, dir: t.TempDir(), now: func() time.Time { return testNow },
		env: map[string]string{"HOME": home, "XDG_CONFIG_HOME": filepath.Join(home, "config")},
	}
}

// asUser logs in as the developer of the default space, asAdmin as the
// admin.
func (c *cli) asUser() *cli  { return c.loggedIn(c.srv.UserToken) }
func (c *cli) asAdmin() *cli { return c.loggedIn(c.srv.AdminToken) }

// loggedIn sets STRATA_API and STRATA_TOKEN.
func (c *cli) loggedIn(token string) *cli {
	c.env["STRATA_API"] = c.url
	c.env["STRATA_TOKEN"] = token
	return c
}

func (c *cli) main(stdout, stderr io.Writer, stdin io.Reader) *Main {
	return &Main{
		Stdin: stdin, Stdout: stdout, Stderr: stderr,
		Getenv:     func(k string) string { return c.env[k] },
		Dir:        c.dir,
		Executable: func() (string, error) { return c.exe, nil },
		Version:    "1.2.3",
		Now:        c.now,
	}
}

func (c *cli) run(args ...string) (stdout, stderr string, code int) {
	c.t.Helper()
	var out, errb syncBuffer
	code = c.main(&out, &errb, strings.NewReader("")).Run(context.Background(), args)
	return out.String(), errb.String(), code
}

// mustRun runs args and fails the test unless the exit code is 0.
func (c *cli) mustRun(args ...string) string {
	c.t.Helper()
	out, errs, code := c.run(args...)
	if code != 0 {
		c.t.Fatalf("strata %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), code, out, errs)
	}
	return out
}

// wantError checks a failed run: exit code, and stderr of the form
// "error: … — …" containing want.
func wantError(t *testing.T, errs string, code, wantCode int, want string) {
	t.Helper()
	if code != wantCode {
		t.Fatalf("exit %d, want %d (stderr %q)", code, wantCode, errs)
	}
	first := ""
	for _, l := range strings.Split(errs, "\n") {
		if strings.HasPrefix(l, "error: ") {
			first = l
			break
		}
	}
	if !strings.HasPrefix(first, "error: ") || !strings.Contains(first, " — ") || !strings.Contains(first, want) {
		t.Fatalf("stderr %q, want \"error: … — …\" containing %q", errs, want)
	}
}

func TestConfigFile(t *testing.T) {
	tests := []struct {
		env  map[string]string
		want string
	}{
		{map[string]string{"HOME": "/h"}, "/h/.config/strata/config.json"},
		{map[string]string{"HOME": "/h", "XDG_CONFIG_HOME": "/x"}, "/x/strata/config.json"},
	}
	for _, tc := range tests {
		got, err := configPath(func(k string) string { return tc.env[k] })
		if err != nil || got != tc.want {
			t.Errorf("configPath(%v) = %q, %v; want %q", tc.env, got, err, tc.want)
		}
	}
	if _, err := configPath(func(string) string { return "" }); api.ErrorCode(err) != api.EInvalid {
		t.Errorf("configPath without HOME: %v, want invalid", err)
	}

	path := filepath.Join(t.TempDir(), "a", "strata", "config.json")
	if c, err := loadConfig(path); err != nil || c != (Config{}) {
		t.Fatalf("missing config: %+v %v, want empty", c, err)
	}
	want := Config{API: "http://127.0.0.1:7070", Token: "s3cret"}
	if err := saveConfig(path, want); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(path)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("config mode %v (%v), want 0600", st.Mode().Perm(), err)
	}
	if got, err := loadConfig(path); err != nil || got != want {
		t.Fatalf("loadConfig = %+v %v, want %+v", got, err, want)
	}
	os.WriteFile(path, []byte("{"), 0o600)
	if _, err := loadConfig(path); api.ErrorCode(err) != api.EInvalid {
		t.Fatalf("corrupt config: %v, want invalid", err)
	}
}

func TestNormalizeAPI(t *testing.T) {
	tests := []struct{ in, want string }{
		{"http://127.0.0.1:7070", "http://127.0.0.1:7070"},
		{"http://127.0.0.1:7070/", "http://127.0.0.1:7070"},
		{"127.0.0.1:7070", "http://127.0.0.1:7070"},
		{"https://strata.example.com", "https://strata.example.com"},
		{"ftp://x", ""},
		{"http://", ""},
		{"http://x?y=1", ""},
	}
	for _, tc := range tests {
		got, err := normalizeAPI(tc.in)
		if tc.want == "" {
			if err == nil {
				t.Errorf("normalizeAPI(%q) = %q, want an error", tc.in, got)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("normalizeAPI(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
}

func TestFormatting(t *testing.T) {
	bytesTests := []struct {
		n    int64
		want string
	}{{0, "0 B"}, {999, "999 B"}, {1200, "1.2 kB"}, {1_234_567, "1.2 MB"}, {3_000_000_000, "3.0 GB"}}
	for _, tc := range bytesTests {
		if got := humanBytes(tc.n); got != tc.want {
			t.Errorf("humanBytes(%d) = %q, want %q", tc.n, got, tc.want)
		}
	}
	upTests := []struct {
		d    time.Duration
		want string
	}{{45 * time.Second, "45s"}, {3*time.Minute + 12*time.Second, "3m12s"}, {2*time.Hour + 5*time.Minute, "2h5m"}, {76 * time.Hour, "3d4h"}, {-time.Second, "-"}}
	for _, tc := range upTests {
		if got := uptime(testNow, testNow.Add(-tc.d)); got != tc.want {
			t.Errorf("uptime(%v) = %q, want %q", tc.d, got, tc.want)
		}
	}
	if got := uptime(testNow, time.Time{}); got != "-" {
		t.Errorf("uptime(zero) = %q", got)
	}
	for mb, want := range map[int]string{256: "256M", 1024: "1G", 1536: "1536M"} {
		if got := megabytes(mb); got != want {
			t.Errorf("megabytes(%d) = %q, want %q", mb, got, want)
		}
	}
	errTests := []struct {
		err  error
		want string
	}{
		{api.Errorf(api.ENotFound, "app \"x\" not found — see strata apps"), "app \"x\" not found — see strata apps"},
		{api.Errorf(api.ENotFound, "app \"x\" not found"), "app \"x\" not found — check the name with strata apps"},
		{api.Errorf(api.EBuildFailed, "compile failed (exit 2)"), "build failed: compile failed (exit 2) — fix the errors in the build output above and push again"},
		{context.Canceled, "interrupted — run the command again to retry"},
	}
	for _, tc := range errTests {
		if got := errorLine(tc.err); got != tc.want {
			t.Errorf("errorLine(%v) = %q, want %q", tc.err, got, tc.want)
		}
	}
}

func TestUsageErrors(t *testing.T) {
	c := newCLI(t).asUser()
	for _, args := range [][]string{
		{"bogus"},
		{"apps", "--bogus"},
		{"apps", "create"},
		{"app"},
		{"logs", "a", "b"},
		{"push", "a", "b"},
	} {
		_, errs, code := c.run(args...)
		wantError(t, errs, code, 2, "")
	}
}

func TestVersion(t *testing.T) {
	if out := newCLI(t).mustRun("version"); out != "strata 1.2.3\n" {
		t.Fatalf("version printed %q", out)
	}
}

func TestLogin(t *testing.T) {
	c := newCLI(t)
	tokenFile := filepath.Join(c.dir, "admin.token")
	os.WriteFile(tokenFile, []byte(c.srv.AdminToken+"\n"), 0o600)

	_, errs, code := c.run("login", "--api", c.url, "--username", "bob")
	wantError(t, errs, code, 1, "no password on stdin")
	// The controller's answer reaches the user.
	var stdout, errb strings.Builder
	code = c.main(&stdout, &errb, strings.NewReader("secret-pw\n")).Run(context.Background(), []string{"login", "--api", c.url, "--username", "bob", "--password-stdin"})
	wantError(t, errb.String(), code, 1, "wrong user name or password")
	_, errs, code = c.run("login", "--api", c.url, "--token", "wrong")
	wantError(t, errs, code, 1, "invalid token")
	_, errs, code = c.run("apps")
	wantError(t, errs, code, 1, "run strata login")

	out := c.mustRun("login", "--api", c.url, "--token-file", "admin.token")
	if !strings.Contains(out, "Logged in to "+c.url+" as admin (admin)") {
		t.Fatalf("login printed %q", out)
	}
	path := filepath.Join(c.env["XDG_CONFIG_HOME"], "strata", "config.json")
	cfg, err := loadConfig(path)
	if err != nil || cfg.API != c.url || cfg.Token != c.srv.AdminToken {
		t.Fatalf("saved config %+v %v", cfg, err)
	}
	c.mustRun("apps", "create", "hello")
	if out := c.mustRun("apps"); !strings.Contains(out, "hello") {
		t.Fatalf("apps after login: %q", out)
	}

	// STRATA_TOKEN overrides the saved token; --api overrides STRATA_API.
	c.env["STRATA_TOKEN"] = "wrong"
	_, errs, code = c.run("apps")
	wantError(t, errs, code, 1, "invalid token")
	c.env["STRATA_TOKEN"] = c.srv.UserToken
	c.env["STRATA_API"] = "http://127.0.0.1:1"
	_, errs, code = c.run("apps")
	wantError(t, errs, code, 1, "is stratad running? (make run)")
	c.mustRun("--api", c.url, "apps")

	// A user's password is exchanged for a token.
	delete(c.env, "STRATA_TOKEN")
	delete(c.env, "STRATA_API")
	stdout.Reset()
	errb.Reset()
	code = c.main(&stdout, &errb, strings.NewReader(httpapitest.UserPassword+"\n")).Run(context.Background(), []string{"login", "--api", c.url, "--username", httpapitest.UserName, "--password-stdin"})
	if code != 0 || !strings.Contains(stdout.String(), "Logged in to "+c.url+" as "+httpapitest.UserName) {
		t.Fatalf("password login: exit %d, stdout %q, stderr %q", code, stdout.String(), errb.String())
	}
	if cfg, err := loadConfig(path); err != nil || cfg.Token == "" || cfg.Token == c.srv.AdminToken {
		t.Fatalf("config after password login %+v %v", cfg, err)
	}
}

func TestApps(t *testing.T) {
	c := newCLI(t).asUser()
	if out := c.mustRun("apps"); !strings.Contains(out, "No apps yet") {
		t.Fatalf("empty list printed %q", out)
	}
	if out := c.mustRun("apps", "--json"); strings.TrimSpace(out) != "[]" {
		t.Fatalf("empty --json printed %q", out)
	}
	c.mustRun("apps", "create", "hello")
	// web has one instance running and a second one starting.
	c.mustRun("push", "web", "-p", t.TempDir())
	c.srv.Node.Hold(true)
	c.mustRun("scale", "web", "-i", "2")
	c.srv.Eventually("web/1 starting", func() bool { return len(c.srv.App("web").Instances) == 2 })
	out := c.mustRun("apps")
	want := "NAME   STATE    INSTANCES  RELEASE  URL\n" +
		"hello  started  0/0        -        http://hello.localhost:8080\n" +
		"web    started  1/2        v1       http://web.localhost:8080\n"
	if out != want {
		t.Fatalf("apps printed\n%s\nwant\n%s", out, want)
	}
	var list []api.AppSummary
	if err := json.Unmarshal([]byte(c.mustRun("apps", "--json")), &list); err != nil || len(list) != 2 || list[1].Running != 1 {
		t.Fatalf("apps --json: %+v %v", list, err)
	}

	_, errs, code := c.run("apps", "create", "hello")
	wantError(t, errs, code, 1, "already exists")
	_, errs, code = c.run("apps", "create", "Bad_Name")
	wantError(t, errs, code, 1, "may only contain")

	// stdin is not a terminal: delete does not ask.
	if out := c.mustRun("apps", "delete", "hello"); out != "Deleted app hello\n" {
		t.Fatalf("delete printed %q", out)
	}
	_, errs, code = c.run("apps", "delete", "hello", "-f")
	wantError(t, errs, code, 1, "not found")
}

func TestAppDetail(t *testing.T) {
	d := &api.AppDetail{
		App:       api.App{Name: "web", State: api.AppStarted, CurrentRelease: 3},
		URLs:      []string{"http://web.localhost:8080"},
		Release:   &api.Release{Version: 3, Description: "push"},
		LastBuild: &api.Build{State: api.BuildStaged, Buildpack: "go"},
		Processes: []api.Process{{Type: "web", Instances: 2, MemoryMB: 256, DiskMB: 1024, HealthCheck: api.HealthHTTP, HealthCheckPath: "/healthz", HealthCheckTimeout: 30}},
		Instances: []*api.Instance{
			{Process: "web", Index: 1, State: api.InstanceCrashed, Reason: "exit 1", NodeID: "n1", Release: 3, Restarts: 4},
			{Process: "web", Index: 0, State: api.InstanceRunning, NodeID: "n1", Release: 3, StartedAt: testNow.Add(-192 * time.Second),
				Substrate: api.SubstrateMetal, Isolation: api.IsolationProcess, CPUPercent: 12.5, MemoryBytes: 48 << 20},
		},
		Placement:   api.PlacementPolicy{Substrate: api.SubstrateMetal},
		Unplaceable: "web/2 cannot be placed: no node matches placement substrate=metal",
	}
	// The text form of every field, from a detail no single controller
	// state gives at once (crashed and running, measured, unplaceable).
	var b strings.Builder
	if err := writeAppDetail(&b, d, testNow); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	want := `name:      web
state:     started
release:   v3 (push)
build:     staged, go
urls:      http://web.localhost:8080
processes: web ×2 (256M memory, 1G disk, health http /healthz, 30s start-up)
placement: substrate=metal
warning:   web/2 cannot be placed: no node matches placement substrate=metal

INDEX  STATE             NODE  SUBSTRATE  ISOLATION  RELEASE  RESTARTS  UPTIME  CPU    MEMORY
0      running           n1    metal      process    v3       0         3m12s   12.5%  48.0M
1      crashed (exit 1)  n1    -          -          v3       4         -       -      -
`
	if out != want {
		t.Fatalf("app printed\n%s\nwant\n%s", out, want)
	}

	// Through the API: an app of two instances the node runs.
	c := newCLI(t).asUser()
	c.now = time.Now
	c.mustRun("push", "web", "-p", t.TempDir())
	c.mustRun("scale", "web", "-i", "2")
	c.srv.Eventually("two web instances running", func() bool {
		n := 0
		for _, in := range c.srv.App("web").Instances {
			if in.State == api.InstanceRunning {
				n++
			}
		}
		return n == 2
	})
	out = c.mustRun("app", "web")
	for _, want := range []string{"name:      web\n", "state:     started\n", "release:   v1 (Deploy ", "build:     staged, fake\n",
		"urls:      http://web.localhost:8080\n", "processes: web ×2 (256M memory, 1G disk",
		"\n0      running  " + httpapitest.NodeID + "  ", "\n1      running  " + httpapitest.NodeID + "  "} {
		if !strings.Contains(out, want) {
			t.Errorf("app printed\n%s\nwant %q in it", out, want)
		}
	}
	var got api.AppDetail
	if err := json.Unmarshal([]byte(c.mustRun("app", "web", "--json")), &got); err != nil || len(got.Instances) != 2 {
		t.Fatalf("app --json: %+v %v", got, err)
	}
	_, errs, code := c.run("app", "nope")
	wantError(t, errs, code, 1, "not found")
}

// TestAppDetailSleeping: an app scaled to zero shows that it sleeps and when
// it last served, in text and JSON.
func TestAppDetailSleeping(t *testing.T) {
	// Putting an app to sleep takes routers reporting its idle time
	// (api/controller/sleep_internal_test.go, e2e); this is how it shows.
	sleepy := &api.AppDetail{
		App:       api.App{Name: "sleepy", State: api.AppStarted, CurrentRelease: 1},
		Processes: []api.Process{{Type: "web", Instances: 1, MemoryMB: 256, DiskMB: 1024, ScaleToZero: 900, Sleeping: true}},
		Sleeping:  true, LastRequest: testNow.Add(-16 * time.Minute),
	}
	var text, js strings.Builder
	if err := writeAppDetail(&text, sleepy, testNow); err != nil {
		t.Fatal(err)
	}
	out := text.String()
	for _, want := range []string{
		"state:     started, sleeping (scale to zero: web stopped until the next request)\n",
		"idle:      last served 16m0s ago, scale to zero after 15m\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("app printed\n%s\nwant a line %q", out, want)
		}
	}
	var d api.AppDetail
	if err := printJSON(&js, sleepy); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal([]byte(js.String()), &d); err != nil || !d.Sleeping || !d.LastRequest.Equal(testNow.Add(-16*time.Minute)) {
		t.Fatalf("app --json: %+v %v", d, err)
	}
}

// tarNames lists the regular files of a gzip tar.
func tarNames(t *testing.T, b []byte) []string {
	t.Helper()
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("upload is not gzip: %v", err)
	}
	tr := tar.NewReader(zr)
	var names []string
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if h.Typeflag == tar.TypeReg {
			names = append(names, strings.TrimPrefix(h.Name, "./"))
		}
	}
	sort.Strings(names)
	return names
}

func TestPush(t *testing.T) {
	c := newCLI(t).asUser()
	app := filepath.Join(c.dir, "hello")
	os.MkdirAll(filepath.Join(app, "tmp"), 0o755)
	os.WriteFile(filepath.Join(app, "main.go"), []byte("package main\n"), 0o644)
	os.WriteFile(filepath.Join(app, "go.mod"), []byte("module hello\n"), 0o644)
	os.WriteFile(filepath.Join(app, "tmp", "junk"), []byte("junk"), 0o644)
	os.WriteFile(filepath.Join(app, ".stratignore"), []byte("tmp/\n"), 0o644)

	out, errs, code := c.run("push", "-p", "hello")
	if code != 0 {
		t.Fatalf("push: exit %d: %s", code, errs)
	}
	want := "-----> Detected fake buildpack\n-----> Compiled\n-----> release v1 created\n" +
		"Released v1\nInstances: 1/1 running\nURL: http://hello.localhost:8080\n"
	if out != want {
		t.Fatalf("push printed\n%s\nwant\n%s", out, want)
	}
	if !strings.HasPrefix(errs, "Uploading hello: 3 files, ") || !strings.HasSuffix(errs, " … done\n") {
		t.Fatalf("push stderr %q, want an upload line ending in done", errs)
	}
	jobs := c.srv.Builder.Jobs()
	if len(jobs) != 1 || jobs[0].AppName != "hello" || c.srv.App("hello").CurrentRelease != 1 {
		t.Fatalf("builds %+v", jobs)
	}
	if names := strings.Join(tarNames(t, c.srv.Source(jobs[0])), " "); names != ".stratignore go.mod main.go" {
		t.Fatalf("uploaded files %q, want .stratignore go.mod main.go (tmp/ ignored)", names)
	}

	// A name and --no-wait.
	c.dir = app
	out = c.mustRun("push", "other", "--no-wait")
	if !strings.Contains(out, "Released v1\nInstances are starting — watch them with: strata app other\n") {
		t.Fatalf("push --no-wait printed %q", out)
	}
	if j := c.srv.Builder.Jobs(); len(j) != 2 || j[1].AppName != "other" {
		t.Fatalf("second build %+v", j)
	}

	_, errs, code = c.run("push", "-f", "strata.yml")
	wantError(t, errs, code, 1, "cannot read manifest")
	_, errs, code = c.run("push", "-p", "nowhere")
	wantError(t, errs, code, 1, "is not a directory")
	bad := filepath.Join(c.dir, "My_App")
	os.Mkdir(bad, 0o755)
	_, errs, code = c.run("push", "-p", bad)
	wantError(t, errs, code, 1, `try "my-app"`)

	c.srv.Builder.Fail("compile failed (exit 2)")
	out, errs, code = c.run("push")
	wantError(t, errs, code, 1, "build failed: compile failed (exit 2)")
	if !strings.Contains(out, "-----> Compiled") {
		t.Fatalf("failed push did not stream the build output: %q", out)
	}
}

func TestLogs(t *testing.T) {
	c := newCLI(t).asUser()
	c.mustRun("apps", "create", "web")
	t0 := time.Date(2025, 1, 2, 3, 4, 5, 6_000_000, time.UTC)
	c.srv.Log("web", "staging", "built", t0)
	c.srv.Log("web", "app/web/0", "listening", t0)
	c.srv.Eventually("the lines stored", func() bool { return strings.Count(c.mustRun("logs", "web"), "\n") == 3 })
	ts := t0.Local().Format(logTimeFormat)

	// The controller's own line about the app comes first.
	if out := c.mustRun("logs", "web"); !strings.HasSuffix(out, " strata app.create: created app web\n"+ts+" staging built\n"+ts+" app/web/0 listening\n") {
		t.Fatalf("logs printed %q", out)
	}
	if out := c.mustRun("logs", "web", "--source", "app", "--recent"); out != ts+" app/web/0 listening\n" {
		t.Fatalf("logs --source app printed %q", out)
	}
	if out := c.mustRun("logs", "web", "--recent=1"); out != ts+" app/web/0 listening\n" {
		t.Fatalf("logs --recent=1 printed %q", out)
	}
	_, errs, code := c.run("logs", "web", "--source", "bogus")
	wantError(t, errs, code, 1, "unknown log source")

	ctx, cancel := context.WithCancel(context.Background())
	var out, errb syncBuffer
	done := make(chan int)
	go func() {
		done <- c.main(&out, &errb, strings.NewReader("")).Run(ctx, []string{"logs", "web", "-f"})
	}()
	// Lines published before the follower subscribed are not followed:
	// publish until one arrives.
	waitFor(t, func() bool {
		c.srv.Log("web", "router", "GET /", t0)
		return strings.Contains(out.String(), ts+" router GET /\n")
	})
	cancel()
	if code := <-done; code != 0 {
		t.Fatalf("logs -f ended with exit %d: %s", code, errb.String())
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 10s")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestNodes(t *testing.T) {
	c := newCLI(t).asAdmin()
	c.now = time.Now
	c.srv.Node.Describe(api.SubstrateMetal, []api.Isolation{api.IsolationProcess}, api.Capacity{CPUs: 2, MemoryMB: 4096}, "")
	c.mustRun("push", "web", "-p", t.TempDir())
	c.mustRun("scale", "web", "-i", "3")
	want := "ID      STATE  SUBSTRATE  ISOLATIONS  CPUS  MEMORY  INSTANCES  LAST SEEN\n" +
		"node-1  ready  metal      process     2     4G      3          Ns ago\n"
	var out string
	waitFor(t, func() bool { out = lastSeen(c.mustRun("nodes")); return out == want })
	c.env["STRATA_TOKEN"] = c.srv.UserToken
	_, errs, code := c.run("nodes")
	wantError(t, errs, code, 1, "admin")
}

// lastSeen replaces the seconds since a node's last heartbeat, which the
// test cannot fix, with N.
func lastSeen(out string) string {
	return regexp.MustCompile(`(?m)\b[0-9]s ago$`).ReplaceAllString(out, "Ns ago")
}

// TestGitRemote checks the remote and that real git gets the token from
// the credential helper (the strata binary, built here).
func TestGitRemote(t *testing.T) {
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("git is not installed")
	}
	c := newCLI(t).asUser()
	c.exe = filepath.Join(t.TempDir(), "strata bin") // a space: the helper path must be quoted
	if out, err := exec.Command("go", "build", "-o", c.exe, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	gitEnv := append(os.Environ(), "HOME="+c.env["HOME"], "XDG_CONFIG_HOME="+c.env["XDG_CONFIG_HOME"],
		"GIT_CONFIG_NOSYSTEM=1", "GIT_TERMINAL_PROMPT=0", "STRATA_TOKEN=", "STRATA_API=")
	git := func(stdin string, args ...string) string {
		t.Helper()
		cmd := exec.Command("git", args...)
		cmd.Dir, cmd.Env, cmd.Stdin = c.dir, gitEnv, strings.NewReader(stdin)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
		return strings.TrimSpace(string(out))
	}

	_, errs, code := c.run("git-remote", "hello")
	wantError(t, errs, code, 1, "git init")

	git("", "init", "-q")
	// A stale global helper must not win over the Strata token.
	git("", "config", "--global", "credential.helper", "!f() { echo username=u; echo password=stale; }; f")
	out := c.mustRun("git-remote", "hello")
	remote := c.url + "/git/hello.git"
	for _, want := range []string{"Created app hello\n", "Added git remote strata → " + remote, "Next: git push strata main\n"} {
		if !strings.Contains(out, want) {
			t.Fatalf("git-remote printed %q, want %q in it", out, want)
		}
	}
	if got := git("", "remote", "get-url", "strata"); got != remote {
		t.Fatalf("remote url %q, want %q", got, remote)
	}
	if out := c.mustRun("git-remote", "hello"); !strings.Contains(out, "Updated git remote strata") || strings.Contains(out, "Created") {
		t.Fatalf("second git-remote printed %q", out)
	}

	// The helper reads the token from the config file (written by login).
	c.mustRun("login", "--api", c.url, "--token", c.srv.UserToken)
	host := strings.TrimPrefix(c.url, "http://")
	cred := git("protocol=http\nhost="+host+"\npath=git/hello.git\n\n", "credential", "fill")
	if !strings.Contains(cred, "username=strata\n") || !strings.Contains(cred, "password="+c.srv.UserToken) {
		t.Fatalf("git credential fill answered %q", cred)
	}
	// Another host still gets the global helper's answer.
	other := git("protocol=http\nhost=example.invalid\n\n", "credential", "fill")
	if !strings.Contains(other, "password=stale") {
		t.Fatalf("other host answered %q", other)
	}
}

func TestGitCredentialProtocol(t *testing.T) {
	c := newCLI(t).loggedIn("tok-123")
	var out, errb syncBuffer
	code := c.main(&out, &errb, strings.NewReader("protocol=http\nhost=x\n\n")).Run(context.Background(), []string{"git-credential", "get"})
	if code != 0 || out.String() != "username=strata\npassword=tok-123\n" {
		t.Fatalf("get: exit %d out %q err %q", code, out.String(), errb.String())
	}
	for _, op := range []string{"store", "erase"} {
		var out syncBuffer
		if code := c.main(&out, io.Discard, strings.NewReader("protocol=http\n\n")).Run(context.Background(), []string{"git-credential", op}); code != 0 || out.String() != "" {
			t.Fatalf("%s: exit %d out %q", op, code, out.String())
		}
	}
}
