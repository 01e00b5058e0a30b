package controller

import (
	"bytes"
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/strata-paas/strata/api"
	"github.com/strata-paas/strata/api/archive"
)

func plan(t *testing.T, yml, app string, hasProcfile bool) (*manifestPlan, error) {
	t.Helper()
	return planManifest(&sourceManifest{file: "strata.yml", data: []byte(yml), hasProcfile: hasProcfile}, app, []string{"localhost"})
}

func TestPlanManifest(t *testing.T) {
	p, err := plan(t, `applications:
- name: fromfile
  instances: 2
  memory: 512M
  command: ./bin/web --flag
  env: {GREETING: hi}
  buildpacks: [go]
  health-check-type: http
  timeout: 5
  health-check-interval: 3
  routes:
  - route: fromfile
  - route: https://www-site.localhost/docs
  placement: {substrate: vm, isolation: process, labels: {zone: a}}
  processes:
  - {type: worker, command: ./bin/worker, instances: 3, health-check-type: process}
`, "fromfile", false)
	if err != nil {
		t.Fatal(err)
	}
	if len(p.warnings) != 0 || !slices.Equal(p.buildpacks, []string{"go"}) {
		t.Errorf("warnings = %q, buildpacks = %q", p.warnings, p.buildpacks)
	}
	if p.procfile != "web: ./bin/web --flag\nworker: ./bin/worker\n" {
		t.Errorf("procfile = %q", p.procfile)
	}
	if p.web == nil || p.web.Process != "web" || *p.web.Instances != 2 || *p.web.MemoryMB != 512 || p.web.DiskMB != nil {
		t.Errorf("web scale = %+v", p.web)
	}
	// http without an endpoint checks /.
	if h := p.health; h == nil || h.Type != api.HealthHTTP || h.Path != "/" || h.Timeout != 5 || h.Interval != 3 {
		t.Errorf("web health = %+v", p.health)
	}
	if len(p.procs) != 1 || *p.procs[0].scale.Instances != 3 || p.procs[0].health.Type != api.HealthProcess || p.procs[0].line != 16 {
		t.Errorf("procs = %+v", p.procs)
	}
	if p.env["GREETING"] != "hi" || len(p.env) != 1 {
		t.Errorf("env = %v", p.env)
	}
	if len(p.routes) != 2 || p.routes[0].String() != "fromfile.localhost" || p.routes[1].String() != "www-site.localhost/docs" {
		t.Errorf("routes = %v", p.routes)
	}
	if p.place == nil || p.place.String() != "substrate=vm isolation=process zone=a" {
		t.Errorf("placement = %+v", p.place)
	}

	// A timeout alone keeps the type's default check.
	p, err = plan(t, "applications:\n- name: a\n  timeout: 9\n  processes:\n  - {type: worker, timeout: 4}\n", "a", false)
	if err != nil {
		t.Fatal(err)
	}
	if p.health.Type != api.HealthPort || p.procs[0].health.Type != api.HealthProcess || p.web != nil || p.procfile != "" {
		t.Errorf("defaults: web %+v worker %+v scale %+v procfile %q", p.health, p.procs[0].health, p.web, p.procfile)
	}
}

// TestPlanManifestScaleToZero: scale-to-zero alone scales web's idle time
// and nothing else; off is 0.
func TestPlanManifestScaleToZero(t *testing.T) {
	for yml, want := range map[string]int{"scale-to-zero: 15m": 900, "scale-to-zero: off": 0} {
		p, err := plan(t, "applications:\n- name: a\n  "+yml+"\n", "a", false)
		if err != nil {
			t.Fatalf("%s: %v", yml, err)
		}
		if w := p.web; w == nil || w.Process != api.ProcessWeb || w.ScaleToZero == nil || *w.ScaleToZero != want || w.Instances != nil || w.MemoryMB != nil {
			t.Errorf("%s: web scale = %+v, want scale-to-zero %d only", yml, p.web, want)
		}
	}
}

func TestPlanManifestPicksTheApp(t *testing.T) {
	p, err := plan(t, "applications:\n- name: a\n  instances: 1\n- name: b\n  instances: 4\n", "b", false)
	if err != nil || *p.web.Instances != 4 {
		t.Fatalf("named app: %+v, %v", p, err)
	}
	p, err = plan(t, "applications:\n- name: elsewhere\n  instances: 3\n", "here", false)
	if err != nil || *p.web.Instances != 3 || len(p.warnings) != 1 || !strings.Contains(p.warnings[0], "only application is named elsewhere; its settings are applied to here") {
		t.Fatalf("only app: %+v, %v", p, err)
	}
	if _, err := plan(t, "applications:\n- name: a\n- name: b\n", "c", false); err == nil || !strings.Contains(err.Error(), "strata.yml: describes several apps (a, b) and none is named c") {
		t.Fatalf("several apps: %v", err)
	}
}

func TestPlanManifestRefuses(t *testing.T) {
	tests := []struct {
		name, yml string
		procfile  bool
		code      string
		want      string
	}{
		{"bad substrate", "applications:\n- name: a\n  placement: {substrate: mainframe}\n", false, api.EInvalid, `strata.yml: line 2: substrate "mainframe"`},
		{"bad label", "applications:\n- name: a\n  placement: {labels: {\"a b\": c}}\n", false, api.EInvalid, "label key"},
		{"procfile and commands", "applications:\n- name: a\n  command: ./x\n", true, api.EInvalid, "strata.yml: line 2: the manifest sets start commands but the app also has a Procfile"},
		{"worker command only", "applications:\n- name: a\n  processes:\n  - {type: worker, command: ./w}\n", false, api.EInvalid, "the web process has none"},
		{"random-route", "applications:\n- name: a\n  random-route: true\n", false, api.EUnsupported, "not supported yet"},
		{"route elsewhere", "applications:\n- name: a\n  routes:\n  - route: a.example.com\n", false, api.EInvalid, "strata.yml: line 4: route host"},
		{"bad health path", "applications:\n- name: a\n  health-check-type: http\n  health-check-http-endpoint: nope\n", false, api.EInvalid, `strata.yml: line 2: health-check-http-endpoint "nope" must be a path`},
		{"loader hijack", "applications:\n- name: a\n  env: {LD_PRELOAD: /x.so}\n", false, api.EInvalid, "LD_PRELOAD"},
		{"unknown key", "applications:\n- name: a\n  colour: blue\n", false, api.EInvalid, `strata.yml: line 3: unknown key "colour"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := plan(t, tc.yml, "a", tc.procfile)
			if api.ErrorCode(err) != tc.code || !strings.Contains(api.ErrorMessage(err), tc.want) {
				t.Fatalf("err = %v (%s), want %s containing %q", err, api.ErrorCode(err), tc.code, tc.want)
			}
		})
	}
}

func TestFindManifest(t *testing.T) {
	src := func(files ...string) *bytes.Buffer {
		var buf bytes.Buffer
		w, _ := archive.NewWriter(&buf, 0)
		for i := 0; i+1 < len(files); i += 2 {
			if err := w.AddFile(files[i], []byte(files[i+1]), false); err != nil {
				t.Fatal(err)
			}
		}
		_ = w.Close()
		return &buf
	}
	ctx := context.Background()
	// strata.yml wins over manifest.yml, as in the CLI.
	got, err := findManifest(ctx, src("manifest.yml", "m", "strata.yml", "s", "Procfile", "web: x"))
	if err != nil || got.file != "strata.yml" || string(got.data) != "s" || !got.hasProcfile {
		t.Fatalf("found %+v, %v", got, err)
	}
	got, err = findManifest(ctx, src("sub/strata.yml", "nested", "manifest.yaml", "y"))
	if err != nil || got.file != "manifest.yaml" || got.hasProcfile {
		t.Fatalf("found %+v, %v", got, err)
	}
	if got, err = findManifest(ctx, src("main.go", "package main")); got != nil || err != nil {
		t.Fatalf("no manifest: %+v, %v", got, err)
	}
	// Not an archive: no manifest; the builder refuses the source itself.
	if got, err = findManifest(ctx, strings.NewReader("not gzip")); got != nil || err != nil {
		t.Fatalf("not an archive: %+v, %v", got, err)
	}
}

// FuzzPlanManifest runs what the controller parses from pushed trees —
// the manifest parser and the plan — on arbitrary manifests: no panic, and
// every refusal names the file.
func FuzzPlanManifest(f *testing.F) {
	f.Add([]byte("applications:\n- name: a\n  instances: 2\n  routes:\n  - route: a.localhost/x\n  processes:\n  - {type: worker, command: ./w}\n  command: ./web\n"))
	f.Add([]byte("applications:\n- name: a\n  placement: {substrate: metal, labels: {zone: a}}\n  health-check-type: http\n"))
	f.Add([]byte("applications:\n- name: b\n- name: c\n"))
	f.Add([]byte("applications:\n- name: a\n  env: {A: \"x\\ny\"}\n"))
	f.Add([]byte("a: &a [*a]\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := planManifest(&sourceManifest{file: "strata.yml", data: data}, "a", []string{"localhost"})
		if err != nil {
			if !strings.HasPrefix(api.ErrorMessage(err), "strata.yml: ") || api.ErrorCode(err) == api.EInternal {
				t.Fatalf("refusal %v (%s) does not name the manifest", err, api.ErrorCode(err))
			}
			return
		}
		if strings.ContainsAny(p.procfile, "\r\x00") {
			t.Fatalf("procfile %q", p.procfile)
		}
		for _, l := range strings.Split(strings.TrimSuffix(p.procfile, "\n"), "\n") {
			if p.procfile != "" && !strings.Contains(l, ": ") {
				t.Fatalf("procfile line %q", l)
			}
		}
		if err := api.ValidateEnv(p.env); err != nil {
			t.Fatalf("planned env refused later: %v", err)
		}
	})
}
