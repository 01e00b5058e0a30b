package builder_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/strata-paas/strata/builder"
)

func TestParseProcfile(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    map[string]string
		wantErr string
	}{
		{"simple", "web: ./server\nworker: ./bin/worker -q jobs\n", map[string]string{"web": "./server", "worker": "./bin/worker -q jobs"}, ""},
		{"comments and blanks", "# hi\n\n  web:   ./s --port $PORT  \r\n", map[string]string{"web": "./s --port $PORT"}, ""},
		{"colon in command", "web: ./s -addr :8080", map[string]string{"web": "./s -addr :8080"}, ""},
		{"underscore dash digits", "my_worker-2: run", map[string]string{"my_worker-2": "run"}, ""},
		{"empty", "", map[string]string{}, ""},
		{"no colon", "web ./server", nil, "line 1"},
		{"uppercase type", "Web: x", nil, "line 1"},
		{"space in type", "we b: x", nil, "line 1"},
		{"empty type", ": x", nil, "line 1"},
		{"empty command", "web:", nil, "no command"},
		{"control char", "web: ./s \x1b[31m", nil, "control character"},
		{"nul", "web: ./s\x00", nil, "control character"},
		{"duplicate", "web: a\nweb: b", nil, "defined twice"},
		{"too long type", strings.Repeat("a", 64) + ": x", nil, "line 1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := builder.ParseProcfile([]byte(tt.in))
			if tt.wantErr != "" {
				var ae *builder.AppError
				if !errors.As(err, &ae) || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("got %v, want an *AppError mentioning %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tt.want) {
				t.Fatalf("got %v, want %v", got, tt.want)
			}
			for k, v := range tt.want {
				if got[k] != v {
					t.Fatalf("got %v, want %v", got, tt.want)
				}
			}
		})
	}
}

func FuzzParseProcfile(f *testing.F) {
	for _, s := range []string{"web: ./s\nworker: w\n", "# c\n\nweb:x", "Web: x", "web:\x00", ":"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		procs, err := builder.ParseProcfile([]byte(in))
		if err != nil {
			return
		}
		checkProcs(t, procs)
	})
}

func workspace(t *testing.T, files map[string]string) *builder.Workspace {
	t.Helper()
	src := t.TempDir()
	for name, content := range files {
		p := filepath.Join(src, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return &builder.Workspace{SourceDir: src, CacheDir: t.TempDir(), Env: []string{"PATH=" + os.Getenv("PATH")}, Out: &bytes.Buffer{}}
}

func TestDetectOrder(t *testing.T) {
	bps := builder.Default(builder.Config{StaticServer: "/nonexistent"})
	tests := []struct {
		files map[string]string
		want  string
	}{
		{map[string]string{"go.mod": "module x", "index.html": "", "Procfile": "web: x"}, "go"},
		{map[string]string{"index.html": "", "Procfile": "web: x"}, "static"},
		{map[string]string{"Staticfile": ""}, "static"},
		{map[string]string{"Procfile": "web: x"}, "procfile"},
		{map[string]string{"README": ""}, ""},
	}
	for _, tt := range tests {
		bp, err := builder.Detect(context.Background(), bps, workspace(t, tt.files))
		if err != nil {
			t.Fatal(err)
		}
		got := ""
		if bp != nil {
			got = bp.Name()
		}
		if got != tt.want {
			t.Errorf("files %v: detected %q, want %q", tt.files, got, tt.want)
		}
	}
}

func TestBuildProcfileOverridesRelease(t *testing.T) {
	w := workspace(t, map[string]string{"index.html": "<p>hi</p>", "Procfile": "worker: ./tick\n"})
	server := filepath.Join(t.TempDir(), "strata-static")
	if err := os.WriteFile(server, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	bp := &builder.StaticBuildpack{Server: server}
	procs, err := builder.Build(context.Background(), bp, w)
	if err != nil {
		t.Fatal(err)
	}
	if procs["web"] != ".strata/bin/strata-static -root public" || procs["worker"] != "./tick" || len(procs) != 2 {
		t.Fatalf("process types %v", procs)
	}
	if _, err := os.Stat(filepath.Join(w.SourceDir, "public", "index.html")); err != nil {
		t.Errorf("index.html not moved under public/: %v", err)
	}
	if _, err := os.Stat(filepath.Join(w.SourceDir, "Procfile")); err != nil {
		t.Errorf("Procfile moved away: %v", err)
	}
	if fi, err := os.Stat(filepath.Join(w.SourceDir, ".strata", "bin", "strata-static")); err != nil || fi.Mode()&0o111 == 0 {
		t.Errorf("strata-static not installed executable: %v", err)
	}
}

func TestBuildWithoutProcessTypesIsAppError(t *testing.T) {
	w := workspace(t, map[string]string{"Procfile": "# nothing\n"})
	_, err := builder.Build(context.Background(), &builder.ProcfileBuildpack{}, w)
	var ae *builder.AppError
	if !errors.As(err, &ae) {
		t.Fatalf("got %v, want *AppError", err)
	}
}

func TestGoBuildpackNeedsMainPackage(t *testing.T) {
	w := workspace(t, map[string]string{"go.mod": "module example.com/lib\n", "lib.go": "package lib\n"})
	err := (&builder.GoBuildpack{}).Compile(context.Background(), w)
	var ae *builder.AppError
	if !errors.As(err, &ae) {
		t.Fatalf("got %v, want *AppError", err)
	}
}

func TestGoBuildpackReleaseNames(t *testing.T) {
	tests := []struct {
		files map[string]string
		want  string
	}{
		{map[string]string{"go.mod": "module example.com/hello\n", "main.go": "package main\n"}, "./bin/hello"},
		{map[string]string{"go.mod": "module example.com/hello/v2\n", "main.go": "package main\n"}, "./bin/hello"},
		{map[string]string{"go.mod": "module example.com/lib\n", "lib.go": "package lib\n", "cmd/srv/main.go": "package main\n"}, "./bin/srv"},
	}
	for _, tt := range tests {
		rel, err := (&builder.GoBuildpack{}).Release(context.Background(), workspace(t, tt.files))
		if err != nil {
			t.Fatal(err)
		}
		if rel.Processes["web"] != tt.want {
			t.Errorf("files %v: web %q, want %q", tt.files, rel.Processes["web"], tt.want)
		}
	}
}

func TestCommandExitCode(t *testing.T) {
	w := workspace(t, nil)
	err := builder.Command(context.Background(), w, w.SourceDir, w.Env, "sh", "-c", "echo building; exit 3")
	var ee *builder.ExitError
	if !errors.As(err, &ee) || ee.Code != 3 {
		t.Fatalf("got %v, want *ExitError with code 3", err)
	}
	if out := w.Out.(*bytes.Buffer).String(); out != "building\n" {
		t.Fatalf("output %q, want %q", out, "building\n")
	}
}

func TestCommandKillsProcessGroupOnCancel(t *testing.T) {
	w := workspace(t, nil)
	pidFile := filepath.Join(t.TempDir(), "pid")
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	// The grandchild writes its pid, then both wait; cancelling must kill it too.
	err := builder.Command(ctx, w, w.SourceDir, w.Env, "sh", "-c", `sleep 60 & echo $! > "$0"; wait`, pidFile)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("got %v, want context.DeadlineExceeded", err)
	}
	data, rerr := os.ReadFile(pidFile)
	if rerr != nil {
		t.Fatal(rerr)
	}
	pid := strings.TrimSpace(string(data))
	deadline := time.Now().Add(5 * time.Second)
	for {
		stat, err := os.ReadFile("/proc/" + pid + "/stat")
		if err != nil || strings.Contains(string(stat), ") Z ") {
			return // gone (or a zombie awaiting its reaper)
		}
		if time.Now().After(deadline) {
			t.Fatalf("grandchild %s still running after the build was cancelled", pid)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
