package builder_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/strata-paas/strata/builder"
)

// classic writes a classic buildpack of scripts (bin/<name> → sh body) and
// returns it.
func classic(t *testing.T, name string, scripts map[string]string) *builder.ClassicBuildpack {
	t.Helper()
	dir := filepath.Join(t.TempDir(), name)
	if err := os.MkdirAll(filepath.Join(dir, "bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	for s, body := range scripts {
		if err := os.WriteFile(filepath.Join(dir, "bin", s), []byte("#!/bin/sh\n"+body+"\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	bp, err := builder.NewClassic(name, dir)
	if err != nil {
		t.Fatal(err)
	}
	return bp
}

func exampleShout(t *testing.T) *builder.ClassicBuildpack {
	t.Helper()
	bp, err := builder.NewClassic("shout", filepath.Join("..", "examples", "buildpacks", "shout"))
	if err != nil {
		t.Fatal(err)
	}
	return bp
}

func TestClassicExampleShout(t *testing.T) {
	bp := exampleShout(t)
	w := workspace(t, map[string]string{"shout.txt": "hi there\n"})
	w.AppEnv = map[string]string{"GREETING": "ahoy", "../evil": "x"}
	ctx := context.Background()
	if ok, err := bp.Detect(ctx, w); !ok || err != nil {
		t.Fatalf("detect = %v %v", ok, err)
	}
	if ok, err := bp.Detect(ctx, workspace(t, map[string]string{"index.html": ""})); ok || err != nil {
		t.Fatalf("detect without shout.txt = %v %v", ok, err)
	}
	// A later buildpack sees what shout exported.
	after := classic(t, "after", map[string]string{
		"detect":  "exit 0",
		"compile": `echo "after sees SHOUT_BUILDS=$SHOUT_BUILDS"; echo "$SHOUT_BUILDS" > "$1/builds-seen"`,
	})
	procs, err := builder.BuildAll(ctx, []builder.Buildpack{bp, after}, w)
	// after has no bin/release: the last buildpack supplies the release.
	if err == nil || !strings.Contains(err.Error(), "no process types") {
		t.Fatalf("release of the last buildpack (none): %v %v", procs, err)
	}
	got, _ := os.ReadFile(filepath.Join(w.SourceDir, "builds-seen"))
	if strings.TrimSpace(string(got)) != "1" {
		t.Errorf("later buildpack saw SHOUT_BUILDS=%q, want 1\n%s", got, output(w))
	}
	index, _ := os.ReadFile(filepath.Join(w.SourceDir, "public", "index.html"))
	if string(index) != "ahoy, HI THERE\n(build 1)\n" {
		t.Errorf("index.html = %q", index)
	}
	if got := sh(t, w.SourceDir, "echo $SHOUTED"); got != "yes" {
		t.Errorf(".profile.d script not left in the app: SHOUTED=%q", got)
	}
	for _, want := range []string{"build 1 of this app", `greeting is "ahoy"`, "Buildpack 2/2: after"} {
		if !strings.Contains(output(w), want) {
			t.Errorf("output lacks %q:\n%s", want, output(w))
		}
	}

	// A second build with the same cache dir counts on; shout alone
	// supplies the release.
	w2 := workspace(t, map[string]string{"shout.txt": "again"})
	w2.CacheDir = w.CacheDir
	procs, err = builder.BuildAll(ctx, []builder.Buildpack{bp}, w2)
	if err != nil {
		t.Fatalf("%v\n%s", err, output(w2))
	}
	if procs["web"] != `python3 -m http.server "$PORT" --bind 0.0.0.0 --directory public` {
		t.Errorf("web = %q", procs["web"])
	}
	if !strings.Contains(output(w2), "build 2 of this app") {
		t.Errorf("CACHE_DIR did not persist:\n%s", output(w2))
	}
	if _, err := os.Stat(filepath.Join(bp.Dir(), "export")); err == nil {
		t.Errorf("the export file was written into the registered buildpack, not the build's copy")
	}
}

func TestClassicBuildpackFailures(t *testing.T) {
	ctx := context.Background()
	t.Run("compile exits 1", func(t *testing.T) {
		bp := classic(t, "bad", map[string]string{"detect": "exit 0", "compile": "echo 'cannot build this'; exit 1"})
		w := workspace(t, nil)
		_, err := builder.BuildAll(ctx, []builder.Buildpack{bp}, w)
		var ee *builder.ExitError
		if !errors.As(err, &ee) || ee.Code != 1 || ee.Cmd != "bad/bin/compile" {
			t.Fatalf("got %v, want *ExitError 1 of bad/bin/compile", err)
		}
		if !strings.Contains(output(w), "cannot build this") {
			t.Errorf("compile output not streamed: %q", output(w))
		}
	})
	t.Run("release prints a bad process type", func(t *testing.T) {
		bp := classic(t, "r", map[string]string{"detect": "exit 0", "compile": "true", "release": `printf 'default_process_types:\n  Web!: x\n'`})
		_, err := builder.BuildAll(ctx, []builder.Buildpack{bp}, workspace(t, nil))
		wantAppError(t, err, "bin/release of buildpack r", "process type")
	})
	t.Run("Procfile wins over release", func(t *testing.T) {
		bp := classic(t, "r", map[string]string{"detect": "exit 0", "compile": "true", "release": `printf 'default_process_types:\n  web: default\n  worker: w\n'`})
		procs, err := builder.BuildAll(ctx, []builder.Buildpack{bp}, workspace(t, map[string]string{"Procfile": "web: mine\n"}))
		if err != nil || procs["web"] != "mine" || procs["worker"] != "w" {
			t.Fatalf("procs %v %v", procs, err)
		}
	})
	t.Run("missing bin/compile", func(t *testing.T) {
		dir := t.TempDir()
		os.MkdirAll(filepath.Join(dir, "bin"), 0o755)
		os.WriteFile(filepath.Join(dir, "bin", "detect"), []byte("#!/bin/sh\n"), 0o755)
		if _, err := builder.NewClassic("x", dir); err == nil || !strings.Contains(err.Error(), "bin/compile") {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("bad name", func(t *testing.T) {
		if _, err := builder.NewClassic("../x", t.TempDir()); err == nil {
			t.Fatal("accepted")
		}
	})
}

func TestLoadClassicExamples(t *testing.T) {
	bps, err := builder.LoadClassic(filepath.Join("..", "examples", "buildpacks"))
	if err != nil || len(bps) == 0 || bps[0].Name() != "shout" {
		t.Fatalf("LoadClassic = %v %v", bps, err)
	}
}

func TestParseRelease(t *testing.T) {
	tests := []struct {
		in   string
		want map[string]string
		err  string
	}{
		{"---\naddons: []\nconfig_vars: {A: b}\ndefault_process_types:\n  web: bundle exec puma -p $PORT\n  worker: \"./w --q: 1\"\n", map[string]string{"web": "bundle exec puma -p $PORT", "worker": "./w --q: 1"}, ""},
		{"", map[string]string{}, ""},
		{"default_process_types:\n", map[string]string{}, ""},
		{"--- {}\n", map[string]string{}, ""},
		{"default_process_types: [web]\n", nil, "not a mapping"},
		{"default_process_types:\n  web: [a]\n", nil, "no lists"},
		{"x: &a y\ndefault_process_types:\n  web: *a\n", nil, "aliases"},
		{"default_process_types:\n  web: \"a\\nb\"\n", nil, "control character"},
		{"default_process_types:\n  web: ''\n", nil, "no command"},
		{"- a\n", nil, "not a YAML mapping"},
		{"default_process_types: {web: a\n", nil, "not YAML"},
		{"default_process_types:\n  web: a\n  web: b\n", nil, ""},
	}
	for _, tt := range tests {
		got, err := builder.ParseRelease([]byte(tt.in))
		if tt.want == nil {
			if err == nil {
				t.Errorf("ParseRelease(%q) = %v, want an error", tt.in, got)
			} else if !strings.Contains(err.Error(), tt.err) {
				t.Errorf("ParseRelease(%q): %v, want it to mention %q", tt.in, err, tt.err)
			}
			continue
		}
		if err != nil || len(got) != len(tt.want) {
			t.Errorf("ParseRelease(%q) = %v %v, want %v", tt.in, got, err, tt.want)
			continue
		}
		for k, v := range tt.want {
			if got[k] != v {
				t.Errorf("ParseRelease(%q) = %v, want %v", tt.in, got, tt.want)
			}
		}
	}
}

func FuzzParseRelease(f *testing.F) {
	for _, s := range []string{"default_process_types:\n  web: x\n", "---\naddons: []\n", "a: &x [*x]\n", "default_process_types: {web: \"a\\tb\"}", "- [", "\x00"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		procs, err := builder.ParseRelease(data)
		if err != nil {
			var ae *builder.AppError
			if !errors.As(err, &ae) {
				t.Fatalf("error %T is not an *AppError: %v", err, err)
			}
			return
		}
		checkProcs(t, procs)
	})
}

// checkProcs fails t when procs has a process type or command a Procfile
// could not have.
func checkProcs(t *testing.T, procs map[string]string) {
	t.Helper()
	for name, cmd := range procs {
		if name == "" || strings.TrimLeft(name, "abcdefghijklmnopqrstuvwxyz0123456789_-") != "" {
			t.Fatalf("accepted process type %q", name)
		}
		if cmd == "" || strings.ContainsAny(cmd, "\x00\n\r") {
			t.Fatalf("accepted command %q", cmd)
		}
	}
}

func TestClassicExportFailure(t *testing.T) {
	bp := classic(t, "exp", map[string]string{"detect": "exit 0", "compile": `echo 'exit 4' > "$(dirname "$0")/../export"`})
	_, err := builder.BuildAll(context.Background(), []builder.Buildpack{bp}, workspace(t, nil))
	wantAppError(t, err, "export file of buildpack exp", "exit 4")
}

// TestLookPathUsesBuildPath: commands are found on the build's PATH, not
// the builder's.
func TestLookPathUsesBuildPath(t *testing.T) {
	dir := t.TempDir()
	tool := filepath.Join(dir, "only-here")
	if err := os.WriteFile(tool, []byte("#!/bin/sh\necho found\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if got, err := builder.LookPath("only-here", []string{"PATH=relative:" + dir}); err != nil || got != tool {
		t.Fatalf("LookPath = %q %v, want %q", got, err, tool)
	}
	if _, err := builder.LookPath("only-here", []string{"PATH=/nonexistent"}); err == nil {
		t.Fatal("found a command absent from the build's PATH")
	}
	w := workspace(t, nil)
	if err := builder.Command(context.Background(), w, w.SourceDir, []string{"PATH=" + dir}, "only-here"); err != nil || output(w) != "found\n" {
		t.Fatalf("Command = %v, output %q", err, output(w))
	}
}
