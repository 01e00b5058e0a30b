package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// tarFile returns the content of one file of a gzip tar ("" if absent).
func tarFile(t *testing.T, b []byte, name string) string {
	t.Helper()
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(zr)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return ""
		}
		if err != nil {
			t.Fatal(err)
		}
		if h.Name == name {
			data, _ := io.ReadAll(tr)
			return string(data)
		}
	}
}

// TestPushManifest: the CLI reads the manifest for the app's name and to
// refuse a bad file before uploading, and sends exactly the manifest it read
// at the root of the upload; applying it is the controller's (tested in
// api/controller/manifest_test.go and e2e).
func TestPushManifest(t *testing.T) {
	c := newCLI(t).asUser()
	dir := filepath.Join(c.dir, "src")
	os.MkdirAll(dir, 0o755)
	os.WriteFile(filepath.Join(dir, "main.go"), []byte("package main\n"), 0o644)
	const yml = `applications:
- name: fromfile
  instances: 2
  command: ./bin/web --flag
`
	os.WriteFile(filepath.Join(dir, "strata.yml"), []byte(yml), 0o644)
	os.WriteFile(filepath.Join(dir, "manifest.yml"), []byte("applications:\n- name: shadowed\n"), 0o644)
	// Ignored files do not keep the manifest the CLI read from the controller.
	os.WriteFile(filepath.Join(dir, ".stratignore"), []byte("strata.yml\n"), 0o644)
	out, errs, code := c.run("push", "-p", "src")
	if code != 0 {
		t.Fatalf("push: exit %d\n%s\n%s", code, out, errs)
	}
	// The controller applied the manifest: its command is the build's
	// Procfile and its instances the formation.
	jobs := c.srv.Builder.Jobs()
	if len(jobs) != 1 || jobs[0].AppName != "fromfile" || !strings.Contains(jobs[0].Procfile, "./bin/web --flag") {
		t.Fatalf("builds = %+v", jobs)
	}
	if p := c.srv.App("fromfile").Processes; len(p) != 1 || p[0].Instances != 2 {
		t.Errorf("fromfile processes = %+v, want web ×2 from the manifest", p)
	}
	source := c.srv.Source(jobs[0])
	if got := tarFile(t, source, "strata.yml"); got != yml {
		t.Errorf("uploaded strata.yml = %q", got)
	}
	if got := tarFile(t, source, "manifest.yml"); got != "" {
		t.Errorf("the upload kept a second manifest: %q", got)
	}
	if got := tarFile(t, source, "Procfile"); got != "" {
		t.Errorf("the CLI generated a Procfile %q (the controller does)", got)
	}
	if got := tarFile(t, source, "main.go"); got != "package main\n" {
		t.Errorf("main.go = %q", got)
	}

	// -f puts the given file at the root as strata.yml.
	os.WriteFile(filepath.Join(c.dir, "other.yml"), []byte("applications:\n- name: viaf\n"), 0o644)
	c.mustRun("push", "-p", "src", "-f", "other.yml")
	p := c.srv.Builder.Jobs()
	if len(p) != 2 || p[1].AppName != "viaf" || tarFile(t, c.srv.Source(p[1]), "strata.yml") != "applications:\n- name: viaf\n" {
		t.Errorf("-f push = %+v", p[len(p)-1].AppName)
	}
	// -f with a bad manifest names the file and the line; nothing is pushed.
	os.WriteFile(filepath.Join(c.dir, "bad.yml"), []byte("applications:\n- name: x\n  memroy: 1G\n"), 0o644)
	_, errs, code = c.run("push", "-p", "src", "-f", "bad.yml")
	wantError(t, errs, code, 1, "bad.yml: line 3: unknown key \"memroy\"")
	if n := len(c.srv.Builder.Jobs()); n != 2 {
		t.Errorf("a bad manifest was uploaded: %d pushes", n)
	}
	// --no-manifest asks the controller to ignore the manifest.
	c.mustRun("push", "plain", "-p", "src", "--no-manifest")
	if p := c.srv.Builder.Jobs(); len(p) != 3 || p[2].AppName != "plain" || p[2].Procfile != "" {
		t.Errorf("--no-manifest push = %+v", p[len(p)-1])
	}
	if p := c.srv.App("plain").Processes; len(p) != 1 || p[0].Instances != 1 {
		t.Errorf("plain processes = %+v, want the default formation, not the manifest's", p)
	}
	// A name the manifest does not describe.
	_, errs, code = c.run("push", "other", "-p", "src")
	wantError(t, errs, code, 1, "has no application named other")
}
