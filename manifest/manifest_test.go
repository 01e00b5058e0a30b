package manifest_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/strata-paas/strata/api"
	"github.com/strata-paas/strata/manifest"
)

const full = `applications:
- name: hello
  instances: 2
  memory: 256M
  disk_quota: 1G
  buildpacks: [go]
  command: ./bin/hello
  env: {GREETING: hi, EMPTY: ""}
  routes: [{route: hello.localhost}]
  health-check-type: http
  health-check-http-endpoint: /healthz
  processes:
  - {type: worker, instances: 1, command: ./bin/worker, memory: 128M}
  placement: {substrate: any, isolation: any, labels: {}}
`

func TestParseFull(t *testing.T) {
	m, err := manifest.Parse([]byte(full))
	if err != nil {
		t.Fatal(err)
	}
	a := m.Applications[0]
	if a.Name != "hello" || *a.Instances != 2 || a.Memory.MB != 256 || a.DiskQuota.MB != 1024 || a.Command != "./bin/hello" ||
		a.Env["GREETING"] != "hi" || len(a.Routes) != 1 || a.Routes[0].Route != "hello.localhost" || a.Routes[0].Line != 9 ||
		a.HealthCheck.Type != "http" || a.HealthPath != "/healthz" || a.Line != 2 || a.Memory.Line != 4 {
		t.Errorf("app = %+v", a)
	}
	if len(a.Processes) != 1 || a.Processes[0].Type != "worker" || *a.Processes[0].Instances != 1 || a.Processes[0].Memory.MB != 128 || a.Processes[0].Line != 13 {
		t.Errorf("processes = %+v", a.Processes)
	}
}

func TestParseScaleToZero(t *testing.T) {
	m, err := manifest.Parse([]byte("applications:\n- name: a\n  scale-to-zero: 15m\n- name: b\n  scale-to-zero: off\n- name: c\n"))
	if err != nil {
		t.Fatal(err)
	}
	a, b, c := m.Applications[0], m.Applications[1], m.Applications[2]
	if a.ScaleToZero == nil || a.ScaleToZero.Seconds != 900 || a.ScaleToZero.Line != 3 {
		t.Errorf("a scale-to-zero = %+v, want 900 s at line 3", a.ScaleToZero)
	}
	if b.ScaleToZero == nil || b.ScaleToZero.Seconds != 0 {
		t.Errorf("b scale-to-zero = %+v, want off (0)", b.ScaleToZero)
	}
	if c.ScaleToZero != nil {
		t.Errorf("c scale-to-zero = %+v, want unset", c.ScaleToZero)
	}
	for in, want := range map[string]int{"1m": 60, "90s": 90, "1h30m": 5400, "OFF": 0, "720h": 30 * 24 * 3600} {
		if got, err := manifest.ParseScaleToZero(in); err != nil || got != want {
			t.Errorf("ParseScaleToZero(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "59s", "721h", "-5m", "15"} {
		if _, err := manifest.ParseScaleToZero(in); api.ErrorCode(err) != api.EInvalid {
			t.Errorf("ParseScaleToZero(%q) = %v, want invalid", in, err)
		}
	}
}

func TestParseErrorsNameTheLine(t *testing.T) {
	for name, tc := range map[string]struct{ doc, want string }{
		"unknown key":       {"applications:\n- name: a\n  instancez: 2\n", "line 3: unknown key \"instancez\""},
		"unknown top key":   {"applications:\n- name: a\nfoo: 1\n", "line 3: unknown key \"foo\""},
		"bad memory":        {"applications:\n- name: a\n  memory: lots\n", "line 3: size \"lots\""},
		"bad instances":     {"applications:\n- name: a\n  instances: two\n", "line 3"},
		"negative":          {"applications:\n- name: a\n  instances: -1\n", "line 2: instances -1"},
		"bad health":        {"applications:\n- name: a\n  health-check-type: tcp\n", "line 3: health-check-type"},
		"endpoint no http":  {"applications:\n- name: a\n  health-check-http-endpoint: /h\n", "needs health-check-type: http"},
		"timeout zero":      {"applications:\n- name: a\n  timeout: 0\n", "line 2: timeout 0 is outside"},
		"timeout too long":  {"applications:\n- name: a\n  processes:\n  - type: w\n    timeout: 601\n", "line 4: timeout 601 is outside"},
		"interval zero":     {"applications:\n- name: a\n  health-check-interval: 0\n", "line 2: health-check-interval 0 is outside"},
		"interval too long": {"applications:\n- name: a\n  processes:\n  - type: w\n    health-check-interval: 301\n", "line 4: health-check-interval 301 is outside"},
		"idle too short":    {"applications:\n- name: a\n  scale-to-zero: 30s\n", "line 3: scale-to-zero: idle time 30s is outside 1m0s"},
		"idle not duration": {"applications:\n- name: a\n  scale-to-zero: soon\n", "line 3: scale-to-zero: idle time \"soon\" is not valid"},
		"idle as process":   {"applications:\n- name: a\n  processes:\n  - type: w\n    scale-to-zero: 5m\n", "line 5: field scale-to-zero not found"},
		"bad name":          {"applications:\n- name: Bad_Name\n", "line 2: app name"},
		"no name":           {"applications:\n- instances: 1\n", "line 2: application has no name"},
		"newline name":      {"applications:\n- name: \"a\\nb\"\n", "line 2"},
		"LD_PRELOAD":        {"applications:\n- name: a\n  env:\n    LD_PRELOAD: /x.so\n", "line 4: config var LD_PRELOAD"},
		"PORT":              {"applications:\n- name: a\n  env:\n    PORT: \"1\"\n", "line 4: config var PORT is set by the platform"},
		"newline value":     {"applications:\n- name: a\n  env:\n    A: \"x\\ny\"\n", "line 4"},
		"env not a map":     {"applications:\n- name: a\n  env: [1]\n", "line 3"},
		"dup app":           {"applications:\n- name: a\n- name: a\n", "line 3: application \"a\" appears twice"},
		"dup process":       {"applications:\n- name: a\n  processes:\n  - type: w\n  - type: w\n", "line 5: process type \"w\" appears twice"},
		"bad process":       {"applications:\n- name: a\n  processes:\n  - type: \"a b\"\n", "line 4"},
		"command newline":   {"applications:\n- name: a\n  command: \"a\\nb\"\n", "control character"},
		"empty":             {"", "empty"},
		"no apps":           {"applications: []\n", "no applications"},
		"syntax":            {"applications:\n- name: a\n   bad: [\n", "line"},
		"two docs":          {"applications:\n- name: a\n---\napplications: []\n", "more than one YAML document"},
		"NUL":               {"applications:\n- name: a\x00\n", "NUL"},
		"alias bomb": {`a: &a ["x","x","x","x","x","x","x","x","x","x"]
b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a,*a]
c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b,*b]
d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c,*c]
e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d,*d]
applications: [*e]
`, "aliases"},
	} {
		_, err := manifest.Parse([]byte(tc.doc))
		if err == nil || api.ErrorCode(err) != api.EInvalid || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want invalid containing %q", name, err, tc.want)
		}
	}
}

func TestFindAndLoad(t *testing.T) {
	dir := t.TempDir()
	if manifest.Find(dir) != "" {
		t.Fatal("found a manifest in an empty dir")
	}
	os.WriteFile(filepath.Join(dir, "manifest.yml"), []byte("applications:\n- name: cf\n"), 0o644)
	if p := manifest.Find(dir); filepath.Base(p) != "manifest.yml" {
		t.Fatalf("Find = %q", p)
	}
	os.WriteFile(filepath.Join(dir, "strata.yml"), []byte("applications:\n- name: a\n  bogus: 1\n"), 0o644)
	p := manifest.Find(dir)
	if filepath.Base(p) != "strata.yml" {
		t.Fatalf("Find = %q, want strata.yml first", p)
	}
	if _, err := manifest.Load(p); err == nil || !strings.HasPrefix(err.Error(), "strata.yml: line 3") {
		t.Errorf("Load = %v, want the file and line", err)
	}
	m, err := manifest.Load(filepath.Join(dir, "manifest.yml"))
	if err != nil || m.Applications[0].Name != "cf" {
		t.Errorf("Load manifest.yml = %+v, %v", m, err)
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte(full))
	f.Add([]byte("applications:\n- name: a\n  env: {A: b}\n"))
	f.Add([]byte("a: &a [x]\nb: [*a, *a]\napplications: [{name: a}]\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := manifest.Parse(data)
		if err != nil {
			if api.ErrorCode(err) != api.EInvalid {
				t.Fatalf("code %q for %q", api.ErrorCode(err), data)
			}
			return
		}
		for _, a := range m.Applications {
			if api.ValidateAppName(a.Name) != nil || api.ValidateEnv(a.Env) != nil {
				t.Fatalf("accepted invalid app %+v", a)
			}
			for _, p := range a.Processes {
				if strings.ContainsAny(p.Command+a.Command, "\n\r\x00") {
					t.Fatalf("accepted a command with a newline: %+v", a)
				}
			}
		}
	})
}
