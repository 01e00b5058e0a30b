package archive_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"io"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/strata-paas/strata/api"
	"github.com/strata-paas/strata/api/archive"
)

// writeTree creates files (path → content) under dir; content "<dir>" makes a
// directory and "-> target" a symlink.
func writeTree(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		switch {
		case content == "<dir>":
			if err := os.MkdirAll(p, 0o755); err != nil {
				t.Fatal(err)
			}
		case len(content) > 3 && content[:3] == "-> ":
			if err := os.Symlink(content[3:], p); err != nil {
				t.Fatal(err)
			}
		default:
			if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// listArchive returns the entry names of a tar.gz, in order.
func listArchive(t *testing.T, data []byte) []string {
	t.Helper()
	zr, err := gzip.NewReader(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(zr)
	var names []string
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return names
		}
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, hdr.Name)
	}
}

func pack(t *testing.T, dir string, opt archive.PackOptions) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := archive.Pack(context.Background(), &buf, dir, opt); err != nil {
		t.Fatalf("pack: %v", err)
	}
	return buf.Bytes()
}

func TestPackExtractRoundTrip(t *testing.T) {
	src := t.TempDir()
	writeTree(t, src, map[string]string{
		"main.go":          "package main\n",
		"static/index.htm": "<h1>hi</h1>",
		"empty/":           "<dir>",
		"link":             "-> static/index.htm",
		".git/HEAD":        "ref: refs/heads/main\n",
	})
	if err := os.WriteFile(filepath.Join(src, "run.sh"), []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	var calls, lastFiles int
	data := pack(t, src, archive.PackOptions{Progress: func(files int, _ int64) { calls++; lastFiles = files }})
	if calls == 0 || lastFiles != 6 {
		t.Errorf("progress called %d times ending at %d files, want 6 files", calls, lastFiles)
	}
	dest := t.TempDir()
	if err := archive.Extract(context.Background(), bytes.NewReader(data), dest, archive.DefaultLimits()); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(filepath.Join(dest, "link")); string(got) != "<h1>hi</h1>" {
		t.Errorf("link reads %q", got)
	}
	if fi, err := os.Lstat(filepath.Join(dest, "link")); err != nil || fi.Mode()&os.ModeSymlink == 0 {
		t.Errorf("link is not a symlink after round trip: %v %v", fi, err)
	}
	if fi, err := os.Stat(filepath.Join(dest, "run.sh")); err != nil || fi.Mode().Perm() != 0o755 {
		t.Errorf("run.sh mode %v (%v), want 0755", fi.Mode(), err)
	}
	if fi, err := os.Stat(filepath.Join(dest, "main.go")); err != nil || fi.Mode().Perm() != 0o644 {
		t.Errorf("main.go mode %v (%v), want 0644", fi.Mode(), err)
	}
	if fi, err := os.Stat(filepath.Join(dest, "empty")); err != nil || !fi.IsDir() {
		t.Errorf("empty dir missing: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dest, ".git")); !os.IsNotExist(err) {
		t.Errorf(".git was packed (stat err %v)", err)
	}
}

func TestPackIsReproducible(t *testing.T) {
	src := t.TempDir()
	writeTree(t, src, map[string]string{"a": "1", "b/c": "2", "b/d": "3"})
	first := pack(t, src, archive.PackOptions{})
	later := time.Now().Add(time.Hour)
	for _, p := range []string{"a", "b/c", "b"} {
		if err := os.Chtimes(filepath.Join(src, p), later, later); err != nil {
			t.Fatal(err)
		}
	}
	if second := pack(t, src, archive.PackOptions{}); !bytes.Equal(first, second) {
		t.Fatal("packing the same tree twice with different mtimes gave different bytes")
	}
	if got, want := listArchive(t, first), []string{"a", "b/", "b/c", "b/d"}; !slices.Equal(got, want) {
		t.Fatalf("entries %v, want %v", got, want)
	}
}

func TestPackRefusesEscapingSymlink(t *testing.T) {
	src := t.TempDir()
	writeTree(t, src, map[string]string{"etc": "-> /etc"})
	err := archive.Pack(context.Background(), io.Discard, src, archive.PackOptions{})
	if api.ErrorCode(err) != api.EInvalid {
		t.Fatalf("got %v, want EInvalid", err)
	}
}

func TestPackIgnoreFiles(t *testing.T) {
	tree := map[string]string{
		"main.go":          "x",
		"debug.log":        "x",
		"logs/keep.log":    "x",
		"build/out":        "x",
		"sub/build/out":    "x",
		"node_modules/m":   "x",
		"docs/a.md":        "x",
		"docs/important":   "x",
		"secret.env":       "x",
		"deep/a/b/c.tmp":   "x",
		"vendor/x/y.go":    "x",
		"rootonly":         "x",
		"sub/rootonly":     "x",
		".git/config":      "x",
		"a/generated/g.go": "x",
	}
	tests := []struct {
		name  string
		files map[string]string // ignore files to write
		want  []string          // the regular files expected in the archive
	}{
		{
			name:  "gitignore semantics",
			files: map[string]string{".gitignore": "# comment\n\n*.log\n!logs/keep.log\nbuild/\nnode_modules\n/rootonly\ndocs/*\n!docs/important\n**/*.tmp\nvendor/**\na/**/g.go\n*.env\n"},
			want:  []string{".gitignore", "docs/important", "logs/keep.log", "main.go", "sub/rootonly"},
		},
		{
			name:  "stratignore wins over gitignore",
			files: map[string]string{".stratignore": "*.log\n", ".gitignore": "*\n"},
			want: []string{".gitignore", ".stratignore", "a/generated/g.go", "build/out", "deep/a/b/c.tmp", "docs/a.md", "docs/important",
				"main.go", "node_modules/m", "rootonly", "secret.env", "sub/build/out", "sub/rootonly", "vendor/x/y.go"},
		},
		{
			name:  "cfignore wins over gitignore",
			files: map[string]string{".cfignore": "*\n!main.go\n", ".gitignore": "main.go\n"},
			want:  []string{"main.go"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := t.TempDir()
			writeTree(t, src, tree)
			writeTree(t, src, tt.files)
			data := pack(t, src, archive.PackOptions{Ignore: true})
			var got []string
			for _, n := range listArchive(t, data) {
				if n[len(n)-1] != '/' {
					got = append(got, n)
				}
			}
			if !slices.Equal(got, tt.want) {
				t.Fatalf("packed files\n got  %v\n want %v", got, tt.want)
			}
		})
	}
}

func TestMatcher(t *testing.T) {
	tests := []struct {
		pattern string
		path    string
		isDir   bool
		want    bool
	}{
		{"*.o", "a.o", false, true},
		{"*.o", "x/y/a.o", false, true},
		{"*.o", "a.c", false, false},
		{"/top", "top", false, true},
		{"/top", "x/top", false, false},
		{"dir/", "dir", true, true},
		{"dir/", "dir", false, false},
		{"a/b", "a/b", false, true},
		{"a/b", "x/a/b", false, false},
		{"**/foo", "foo", false, true},
		{"**/foo", "x/y/foo", false, true},
		{"a/**/b", "a/b", false, true},
		{"a/**/b", "a/x/y/b", false, true},
		{"a/**", "a/x/y", false, true},
		{"a/**", "a", true, false},
		{"f?o", "foo", false, true},
		{"f?o", "f/o", false, false},
		{"[abc].txt", "b.txt", false, true},
		{"[!abc].txt", "b.txt", false, false},
		{"[!abc].txt", "d.txt", false, true},
		{`\#hash`, "#hash", false, true},
		{`\!bang`, "!bang", false, true},
		{"# comment", "# comment", false, false},
		{"*.log\n!keep.log", "keep.log", false, false},
		{"*.log\n!keep.log", "other.log", false, true},
		{"trailing   ", "trailing", false, true},
		{"a+b(c)", "a+b(c)", false, true},
	}
	for _, tt := range tests {
		if got := archive.ParseIgnore([]byte(tt.pattern)).Match(tt.path, tt.isDir); got != tt.want {
			t.Errorf("pattern %q on %q (dir %v): got %v, want %v", tt.pattern, tt.path, tt.isDir, got, tt.want)
		}
	}
}

func FuzzParseIgnore(f *testing.F) {
	for _, s := range []string{"*.log\n!keep.log\n", "/a/**/b/\n", "[!a-z]?\n", "\\#x\n[", "**"} {
		f.Add(s, "a/b/c.log")
	}
	f.Fuzz(func(t *testing.T, patterns, p string) {
		m := archive.ParseIgnore([]byte(patterns))
		m.Match(p, false)
		m.Match(p, true)
	})
}
