package stager_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/strata-paas/strata/api"
	"github.com/strata-paas/strata/api/archive"
	"github.com/strata-paas/strata/builder"
	"github.com/strata-paas/strata/builder/droplet"
	"github.com/strata-paas/strata/stager"
)

// staticServer is the strata-static binary built once for the package.
var staticServer string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "strata-static-")
	if err != nil {
		panic(err)
	}
	staticServer = filepath.Join(dir, "strata-static")
	cmd := exec.Command("go", "build", "-o", staticServer, "github.com/strata-paas/strata/cmd/strata-static")
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		panic(fmt.Sprintf("build strata-static: %v", err))
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func newStager(t testing.TB, cacheDir string, bps []builder.Buildpack) *stager.Stager {
	t.Helper()
	s, err := stager.New(stager.Config{
		WorkDir:      t.TempDir(),
		CacheDir:     cacheDir,
		StaticServer: staticServer,
		Logger:       slog.New(slog.NewTextHandler(testWriter{t}, nil)),
		Buildpacks:   bps,
	})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// sourceOf packs files (path → content; a "#!" prefix makes it executable)
// into a gzip-compressed tar.
func sourceOf(t testing.TB, files map[string]string) []byte {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		mode := os.FileMode(0o644)
		if strings.HasPrefix(content, "#!") {
			mode = 0o755
		}
		if err := os.WriteFile(p, []byte(content), mode); err != nil {
			t.Fatal(err)
		}
	}
	var buf bytes.Buffer
	if err := archive.Pack(context.Background(), &buf, dir, archive.PackOptions{}); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func job(app string) api.BuildJob {
	return api.BuildJob{Version: api.MessageVersion, BuildID: "b-" + app, AppID: "id-" + app, AppName: app}
}

const helloMain = `package main

import (
	"fmt"
	"net/http"
	"os"
)

func main() {
	http.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "hello from strata") })
	if err := http.ListenAndServe("127.0.0.1:"+os.Getenv("PORT"), nil); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
`

// extractDroplet unpacks a droplet into a new dir and returns it with the info.
func extractDroplet(t *testing.T, path string) (string, *api.StagingInfo) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	dest := t.TempDir()
	info, err := droplet.Extract(context.Background(), f, dest, archive.DefaultLimits())
	if err != nil {
		t.Fatal(err)
	}
	return filepath.Join(dest, droplet.AppDir), info
}

func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	return port
}

// runWeb starts the droplet's web process with sh -c in appDir, as an
// executor would, and returns the body of GET /.
func runWeb(t *testing.T, appDir, command string) string {
	t.Helper()
	port := freePort(t)
	ctx, cancel := context.WithCancel(context.Background())
	// As the executor does: source .profile.d, then the command.
	cmd := exec.CommandContext(ctx, "/bin/sh", "-c", `for f in .profile.d/*.sh; do [ -r "$f" ] && . "./$f"; done
`+command)
	cmd.Dir = appDir
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	cmd.Env = []string{"PORT=" + port, "PATH=/usr/bin:/bin"}
	cmd.Stdout, cmd.Stderr = testWriter{t}, testWriter{t}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cancel(); cmd.Wait() }()
	deadline := time.Now().Add(15 * time.Second)
	for {
		resp, err := http.Get("http://127.0.0.1:" + port + "/")
		if err == nil {
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			return string(body)
		}
		if time.Now().After(deadline) {
			t.Fatalf("web process %q never answered: %v", command, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestStageGoApp(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("no go toolchain")
	}
	s := newStager(t, t.TempDir(), nil)
	src := sourceOf(t, map[string]string{"go.mod": "module example.com/hello\n\ngo 1.22\n", "main.go": helloMain})
	var times []time.Duration
	var last *stager.Result
	for i := range 2 {
		var out bytes.Buffer
		start := time.Now()
		res, err := s.Stage(context.Background(), job("hello"), bytes.NewReader(src), &out)
		times = append(times, time.Since(start))
		if err != nil {
			t.Fatal(err)
		}
		if res.Failure != "" {
			t.Fatalf("build %d failed: %s: %s\n%s", i+1, res.Failure, res.Reason, out.String())
		}
		if !strings.Contains(out.String(), "go app detected") {
			t.Errorf("output lacks detection line:\n%s", out.String())
		}
		if last != nil {
			os.Remove(last.DropletPath)
		}
		last = res
	}
	t.Logf("first build %v, second build (warm cache) %v", times[0], times[1])
	defer os.Remove(last.DropletPath)
	appDir, info := extractDroplet(t, last.DropletPath)
	if info.Buildpack != "go" || info.Processes["web"] != "./bin/hello" {
		t.Fatalf("staging info %+v", info)
	}
	if body := runWeb(t, appDir, info.Processes["web"]); body != "hello from strata" {
		t.Fatalf("GET / = %q, want %q", body, "hello from strata")
	}
}

func TestStageFailures(t *testing.T) {
	sleeper := &sleepBuildpack{}
	tests := []struct {
		name    string
		files   map[string]string
		bps     []builder.Buildpack
		timeout time.Duration
		want    api.BuildFailure
		reason  string
	}{
		{
			name:   "compile error",
			files:  map[string]string{"go.mod": "module example.com/broken\n\ngo 1.22\n", "main.go": "package main\n\nfunc main() { undefinedThing() }\n"},
			want:   api.FailCompile,
			reason: "compile failed (exit 1)",
		},
		{
			name:   "no buildpack",
			files:  map[string]string{"README.md": "nothing to run"},
			want:   api.FailNoBuildpack,
			reason: "no buildpack detected — tried go (go.mod), nodejs (package.json), python (",
		},
		{
			name:   "bad Procfile",
			files:  map[string]string{"Procfile": "Web!: ./x\n"},
			want:   api.FailCompile,
			reason: "Procfile line 1",
		},
		{
			name:    "timeout",
			files:   map[string]string{"anything": "x"},
			bps:     []builder.Buildpack{sleeper},
			timeout: 300 * time.Millisecond,
			want:    api.FailTimeout,
			reason:  "timed out after 300ms",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newStager(t, t.TempDir(), tt.bps)
			j := job("app")
			j.Timeout = tt.timeout
			var out bytes.Buffer
			res, err := s.Stage(context.Background(), j, bytes.NewReader(sourceOf(t, tt.files)), &out)
			if err != nil {
				t.Fatalf("got platform error %v, want failure %s", err, tt.want)
			}
			if res.Failure != tt.want || !strings.Contains(res.Reason, tt.reason) {
				t.Fatalf("got %s %q, want %s containing %q\n%s", res.Failure, res.Reason, tt.want, tt.reason, out.String())
			}
			if res.DropletPath != "" {
				t.Fatalf("failed build left a droplet %s", res.DropletPath)
			}
		})
	}
}

func TestStageRefusesHostileSource(t *testing.T) {
	escape := func(name, link string, typ byte) []byte {
		var buf bytes.Buffer
		zw := gzip.NewWriter(&buf)
		tw := tar.NewWriter(zw)
		tw.WriteHeader(&tar.Header{Name: "Procfile", Typeflag: tar.TypeReg, Mode: 0o644, Size: 7})
		tw.Write([]byte("web: x\n"))
		tw.WriteHeader(&tar.Header{Name: name, Linkname: link, Typeflag: typ, Mode: 0o644})
		tw.Close()
		zw.Close()
		return buf.Bytes()
	}
	tests := map[string][]byte{
		"not gzip":       []byte("definitely not gzip"),
		"dotdot":         escape("../evil", "", tar.TypeReg),
		"symlink escape": escape("evil", "/etc/passwd", tar.TypeSymlink),
	}
	for name, src := range tests {
		t.Run(name, func(t *testing.T) {
			work := t.TempDir()
			s, err := stager.New(stager.Config{WorkDir: work, CacheDir: t.TempDir()})
			if err != nil {
				t.Fatal(err)
			}
			res, err := s.Stage(context.Background(), job("x"), bytes.NewReader(src), io.Discard)
			if err != nil || res.Failure != api.FailBadSource {
				t.Fatalf("got %+v, %v; want FailBadSource", res, err)
			}
			if ents, _ := os.ReadDir(work); len(ents) != 0 {
				t.Fatalf("work dir not cleaned: %v", ents)
			}
		})
	}
}

func TestStageProcfileApp(t *testing.T) {
	s := newStager(t, t.TempDir(), nil)
	src := sourceOf(t, map[string]string{
		"Procfile": "web: ./serve.sh\nworker: ./work.sh\n",
		"serve.sh": "#!/bin/sh\nexec python3 -m http.server \"$PORT\" --bind 127.0.0.1\n",
		"work.sh":  "#!/bin/sh\nsleep 1\n",
	})
	res, err := s.Stage(context.Background(), job("proc"), bytes.NewReader(src), io.Discard)
	if err != nil || res.Failure != "" {
		t.Fatalf("stage: %+v %v", res, err)
	}
	defer os.Remove(res.DropletPath)
	appDir, info := extractDroplet(t, res.DropletPath)
	if info.Buildpack != "procfile" || info.Processes["web"] != "./serve.sh" || info.Processes["worker"] != "./work.sh" {
		t.Fatalf("staging info %+v", info)
	}
	if fi, err := os.Stat(filepath.Join(appDir, "serve.sh")); err != nil || fi.Mode()&0o111 == 0 {
		t.Fatalf("serve.sh not executable in droplet: %v", err)
	}
}

// TestStageManifestCommands: the start commands of a manifest reach the
// build as the job's Procfile, which a source Procfile may not override.
func TestStageManifestCommands(t *testing.T) {
	s := newStager(t, t.TempDir(), nil)
	j := job("cmds")
	j.Procfile = "web: ./serve.sh\nworker: ./work.sh\n"
	src := sourceOf(t, map[string]string{"serve.sh": "#!/bin/sh\n", "work.sh": "#!/bin/sh\n"})
	res, err := s.Stage(context.Background(), j, bytes.NewReader(src), io.Discard)
	if err != nil || res.Failure != "" {
		t.Fatalf("stage: %+v %v", res, err)
	}
	defer os.Remove(res.DropletPath)
	if _, info := extractDroplet(t, res.DropletPath); info.Buildpack != "procfile" || info.Processes["web"] != "./serve.sh" || info.Processes["worker"] != "./work.sh" {
		t.Fatalf("staging info %+v", info)
	}

	var out bytes.Buffer
	res, err = s.Stage(context.Background(), j, bytes.NewReader(sourceOf(t, map[string]string{"Procfile": "web: ./other\n"})), &out)
	if err != nil || res.Failure != api.FailBadSource || !strings.Contains(out.String(), "remove the Procfile or the manifest's commands") {
		t.Fatalf("a source Procfile and manifest commands: %+v %v\n%s", res, err, out.String())
	}
}

func TestStageStaticSite(t *testing.T) {
	s := newStager(t, t.TempDir(), nil)
	src := sourceOf(t, map[string]string{"index.html": "<h1>static</h1>", "css/site.css": "body{}"})
	res, err := s.Stage(context.Background(), job("site"), bytes.NewReader(src), io.Discard)
	if err != nil || res.Failure != "" {
		t.Fatalf("stage: %+v %v", res, err)
	}
	defer os.Remove(res.DropletPath)
	appDir, info := extractDroplet(t, res.DropletPath)
	if info.Buildpack != "static" || info.Processes["web"] != ".strata/bin/strata-static -root public" {
		t.Fatalf("staging info %+v", info)
	}
	if body := runWeb(t, appDir, info.Processes["web"]); body != "<h1>static</h1>" {
		t.Fatalf("GET / = %q", body)
	}
}

func TestStageCleansSandbox(t *testing.T) {
	work := t.TempDir()
	s, err := stager.New(stager.Config{WorkDir: work, CacheDir: t.TempDir(), StaticServer: staticServer})
	if err != nil {
		t.Fatal(err)
	}
	res, err := s.Stage(context.Background(), job("p"), bytes.NewReader(sourceOf(t, map[string]string{"Procfile": "web: x"})), io.Discard)
	if err != nil || res.Failure != "" {
		t.Fatalf("stage: %+v %v", res, err)
	}
	ents, _ := os.ReadDir(work)
	if len(ents) != 1 || filepath.Join(work, ents[0].Name()) != res.DropletPath {
		t.Fatalf("work dir holds %v, want only the droplet %s", ents, res.DropletPath)
	}
}

// sleepBuildpack detects everything and compiles for a minute in a child
// process group, to exercise the staging timeout.
type sleepBuildpack struct{}

func (*sleepBuildpack) Name() string                                             { return "sleep" }
func (*sleepBuildpack) Detect(context.Context, *builder.Workspace) (bool, error) { return true, nil }
func (*sleepBuildpack) Compile(ctx context.Context, w *builder.Workspace) error {
	return builder.Command(ctx, w, w.SourceDir, w.Env, "sh", "-c", "sleep 60 & wait")
}
func (*sleepBuildpack) Release(context.Context, *builder.Workspace) (*builder.ReleaseInfo, error) {
	return &builder.ReleaseInfo{Processes: map[string]string{"web": "x"}}, nil
}
