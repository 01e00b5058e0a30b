package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/strata-paas/strata/api"
	"github.com/strata-paas/strata/api/httpapi/httpapitest"
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

func TestPushManifest(t *testing.T) {
	c := newCLI(t).loggedIn(httpapitest.UserToken)
	dir := filepath.Join(c.dir, "src")
	os.MkdirAll(dir, 0o755)
	os.WriteFile(filepath.Join(dir, "main.go"), []byte("package main\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "strata.yml"), []byte(`applications:
- name: fromfile
  instances: 2
  memory: 512M
  command: ./bin/web --flag
  env: {GREETING: hi}
  buildpacks: [go]
  processes:
  - {type: worker, command: ./bin/worker}
`), 0o644)
	out, errs, code := c.run("push", "-p", "src")
	if code != 0 {
		t.Fatalf("push: exit %d\n%s\n%s", code, out, errs)
	}
	if !strings.Contains(errs, "warning: line 2: buildpacks") {
		t.Errorf("no warning about ignored buildpacks: %q", errs)
	}
	pushes := c.fake.Pushes()
	if len(pushes) != 1 || pushes[0].App != "fromfile" {
		t.Fatalf("pushes = %+v", pushes)
	}
	if pf := tarFile(t, pushes[0].Source, "Procfile"); pf != "web: ./bin/web --flag\nworker: ./bin/worker\n" {
		t.Errorf("generated Procfile = %q", pf)
	}
	if env := c.mustRun("env", "fromfile"); env != "GREETING=hi\n" {
		t.Errorf("env = %q", env)
	}
	sc := c.fake.Scales()
	if len(sc) != 1 || sc[0].Process != "web" || *sc[0].Instances != 2 || *sc[0].MemoryMB != 512 || sc[0].DiskMB != nil {
		t.Errorf("scales = %+v", sc)
	}

	// -f with a bad manifest names the file and the line; nothing is pushed.
	os.WriteFile(filepath.Join(c.dir, "bad.yml"), []byte("applications:\n- name: x\n  memroy: 1G\n"), 0o644)
	_, errs, code = c.run("push", "-p", "src", "-f", "bad.yml")
	wantError(t, errs, code, 1, "bad.yml: line 3: unknown key \"memroy\"")
	// A Procfile and manifest commands conflict.
	os.WriteFile(filepath.Join(dir, "Procfile"), []byte("web: ./x\n"), 0o644)
	_, errs, code = c.run("push", "-p", "src")
	wantError(t, errs, code, 1, "also has a Procfile")
	os.Remove(filepath.Join(dir, "Procfile"))
	// Health checks reach the process type (http without an endpoint checks /).
	os.WriteFile(filepath.Join(c.dir, "hc.yml"), []byte("applications:\n- name: hc\n  health-check-type: http\n  timeout: 5\n  health-check-interval: 3\n"), 0o644)
	c.mustRun("push", "-p", "src", "-f", "hc.yml")
	d, err := c.fake.AppDetail(context.Background(), "hc")
	if err != nil || len(d.Processes) != 1 || d.Processes[0].HealthCheck != api.HealthHTTP || d.Processes[0].HealthCheckPath != "/" || d.Processes[0].HealthCheckTimeout != 5 || d.Processes[0].HealthCheckInterval != 3 {
		t.Fatalf("manifest health check: %+v %v", d, err)
	}
	// --no-manifest ignores the manifest.
	c.mustRun("push", "plain", "-p", "src", "--no-manifest")
	if p := c.fake.Pushes(); len(p) != 3 || p[2].App != "plain" || tarFile(t, p[2].Source, "Procfile") != "" {
		t.Errorf("--no-manifest push = %+v", p[len(p)-1].App)
	}
	// A name the manifest does not describe.
	_, errs, code = c.run("push", "other", "-p", "src")
	wantError(t, errs, code, 1, "has no application named other")
}
