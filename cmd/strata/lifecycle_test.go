package main

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/strata-paas/strata/api"
	"github.com/strata-paas/strata/api/httpapi/httpapitest"
	"github.com/strata-paas/strata/manifest"
)

// pushed returns a CLI whose fake has app hello at v2.
func pushed(t *testing.T) *cli {
	c := newCLI(t).asUser()
	c.now = time.Now
	dir := t.TempDir()
	for i := 0; i < 2; i++ {
		c.mustRun("push", "hello", "-p", dir)
	}
	return c
}

func TestReleasesAndRollbackCommands(t *testing.T) {
	c := pushed(t)
	out := c.mustRun("releases", "hello")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[0], "VERSION") || !strings.Contains(lines[1], "v2") ||
		!strings.Contains(lines[1], "current") || !strings.Contains(lines[1], "Deploy build") || !strings.Contains(lines[1], httpapitest.UserName) {
		t.Fatalf("releases printed\n%s", out)
	}
	var rels []api.Release
	if err := json.Unmarshal([]byte(c.mustRun("releases", "hello", "--json")), &rels); err != nil || len(rels) != 2 {
		t.Fatalf("releases --json: %v %+v", err, rels)
	}
	if out := c.mustRun("rollback", "hello"); !strings.Contains(out, "Rollback to v1: released v3") {
		t.Errorf("rollback printed %q", out)
	}
	if out := c.mustRun("rollback", "hello", "v2"); !strings.Contains(out, "Rollback to v2: released v4") {
		t.Errorf("rollback v2 printed %q", out)
	}
	_, errs, code := c.run("rollback", "hello", "x")
	wantError(t, errs, code, 1, "is not a version")
	_, errs, code = c.run("rollback", "hello", "99")
	wantError(t, errs, code, 1, "no release v99")
	_, errs, code = c.run("releases", "nope")
	wantError(t, errs, code, 1, "not found")
}

func TestEnvCommands(t *testing.T) {
	c := pushed(t)
	if out := c.mustRun("env", "hello"); !strings.Contains(out, "No config vars") {
		t.Errorf("empty env printed %q", out)
	}
	if out := c.mustRun("env", "set", "hello", "GREETING=hi there", "URL=a=b"); !strings.Contains(out, "Set GREETING, URL: released v3") {
		t.Errorf("env set printed %q", out)
	}
	if out := c.mustRun("env", "hello"); out != "GREETING=hi there\nURL=a=b\n" {
		t.Errorf("env printed %q", out)
	}
	c.mustRun("env", "unset", "hello", "URL")
	if out := c.mustRun("env", "hello"); out != "GREETING=hi there\n" {
		t.Errorf("env after unset printed %q", out)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"env", "set", "hello", "LD_PRELOAD=/x.so"}, "loader or shell"},
		{[]string{"env", "set", "hello", "PORT=1"}, "set by the platform"},
		{[]string{"env", "set", "hello", "NOEQUALS"}, "not NAME=VALUE"},
		{[]string{"env", "set", "hello", "1X=1"}, "not valid"},
		{[]string{"env", "unset", "hello", "IFS"}, "loader or shell"},
	} {
		_, errs, code := c.run(tc.args...)
		wantError(t, errs, code, 1, tc.want)
	}
	_, errs, code := c.run("env", "set", "hello")
	if code != 2 {
		t.Errorf("env set without vars: exit %d (%s), want usage error", code, errs)
	}
}

func TestScaleAndStateCommands(t *testing.T) {
	c := pushed(t)
	if out := c.mustRun("scale", "hello", "-i", "3", "-m", "512M", "-k", "2G"); out != "Scaled hello web to 3× (512M memory, 2G disk)\nReleased v3 to apply the new limits\n" {
		t.Errorf("scale printed %q", out)
	}
	if p := web(t, c); p.Instances != 3 || p.MemoryMB != 512 || p.DiskMB != 2048 {
		t.Errorf("web after scale = %+v", p)
	}
	// -i alone changes only the count.
	c.mustRun("scale", "hello", "-i", "0")
	if p := web(t, c); p.Instances != 0 || p.MemoryMB != 512 || p.DiskMB != 2048 {
		t.Errorf("web after scale -i 0 = %+v", p)
	}
	if out := c.mustRun("scale", "hello", "--scale-to-zero", "15m"); !strings.Contains(out, "Scale to zero after 15m without requests\n") {
		t.Errorf("scale --scale-to-zero printed %q", out)
	}
	if p := web(t, c); p.ScaleToZero != 900 || p.Instances != 0 {
		t.Errorf("web after scale --scale-to-zero 15m = %+v", p)
	}
	if out := c.mustRun("scale", "hello", "--scale-to-zero", "off"); !strings.Contains(out, "Scale to zero is off\n") {
		t.Errorf("scale --scale-to-zero off printed %q", out)
	}
	if p := web(t, c); p.ScaleToZero != 0 {
		t.Errorf("web after scale --scale-to-zero off = %+v", p)
	}
	_, errs, code := c.run("scale", "hello", "--scale-to-zero", "10s")
	wantError(t, errs, code, 1, "idle time 10s is outside 1m0s")
	_, errs, code = c.run("scale", "hello")
	wantError(t, errs, code, 1, "nothing to scale")
	_, errs, code = c.run("scale", "hello", "-m", "lots")
	wantError(t, errs, code, 1, "not valid")
	_, errs, code = c.run("scale", "hello", "--process", "worker", "-i", "1")
	wantError(t, errs, code, 1, "no process type")

	if out := c.mustRun("stop", "hello"); out != "App hello is stopped\n" {
		t.Errorf("stop printed %q", out)
	}
	if out := c.mustRun("start", "hello"); out != "App hello is started\n" {
		t.Errorf("start printed %q", out)
	}
	if out := c.mustRun("restart", "hello"); !strings.Contains(out, "released v4") {
		t.Errorf("restart printed %q", out)
	}
	out := c.mustRun("events", "hello")
	for _, want := range []string{"TIME", "restart", "app.start", "app.stop", "scale", httpapitest.UserName} {
		if !strings.Contains(out, want) {
			t.Errorf("events lacks %q:\n%s", want, out)
		}
	}
}

// TestParseSize covers the sizes strata scale -m/-k accept (manifest.ParseSize).
// web returns hello's web process as the controller stores it.
func web(t *testing.T, c *cli) api.Process {
	t.Helper()
	for _, p := range c.srv.App("hello").Processes {
		if p.Type == api.ProcessWeb {
			return p
		}
	}
	t.Fatal("hello has no web process")
	return api.Process{}
}

func TestParseSize(t *testing.T) {
	for in, want := range map[string]int{"512": 512, "512M": 512, "512mb": 512, "1G": 1024, "1gb": 1024, "1.5G": 1536, "0.5g": 512} {
		if got, err := manifest.ParseSize(in); err != nil || got != want {
			t.Errorf("manifest.ParseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "M", "-1M", "0", "1e3", "0x10", "1.1M", "inf", "1T", "99999999999G"} {
		if got, err := manifest.ParseSize(in); err == nil {
			t.Errorf("manifest.ParseSize(%q) = %d, want an error", in, got)
		}
	}
}

func FuzzParseSize(f *testing.F) {
	for _, s := range []string{"512M", "1G", "1.5g", "0x1p3", "-1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := manifest.ParseSize(s)
		if err == nil && (n <= 0 || n > 1<<30) {
			t.Fatalf("manifest.ParseSize(%q) = %d", s, n)
		}
	})
}
