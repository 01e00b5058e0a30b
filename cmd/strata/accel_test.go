package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/strata-paas/strata/api"
)

// TestNodesAccel: `strata nodes` shows microvm with the acceleration its
// node's driver uses.
func TestNodesAccel(t *testing.T) {
	c := newCLI(t).asAdmin()
	c.now = time.Now
	c.srv.Node.Describe(api.SubstrateVM, []api.Isolation{api.IsolationProcess, api.IsolationMicroVM}, api.Capacity{CPUs: 2, MemoryMB: 4096}, "tcg")
	c.mustRun("push", "web", "-p", t.TempDir())
	want := "ID      STATE  SUBSTRATE  ISOLATIONS           CPUS  MEMORY  INSTANCES  LAST SEEN\n" +
		"node-1  ready  vm         process,microvm/tcg  2     4G      1          Ns ago\n"
	var out string
	waitFor(t, func() bool { out = lastSeen(c.mustRun("nodes")); return out == want })
	if js := c.mustRun("nodes", "--json"); !strings.Contains(js, `"accel":"tcg"`) && !strings.Contains(js, `"accel": "tcg"`) {
		t.Errorf("nodes --json has no accel:\n%s", js)
	}
}

// TestAppAccel: `strata app` shows a microvm instance's acceleration.
func TestAppAccel(t *testing.T) {
	c := newCLI(t).asUser()
	c.srv.Node.Describe(api.SubstrateVM, []api.Isolation{api.IsolationProcess, api.IsolationMicroVM}, api.Capacity{CPUs: 2, MemoryMB: 4096}, "tcg")
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "strata.yml"), []byte("applications:\n- name: boxed\n  placement: {isolation: microvm}\n"), 0o644)
	c.mustRun("push", "-p", dir)
	out := c.mustRun("app", "boxed")
	var row []string
	for _, l := range strings.Split(out, "\n") {
		if f := strings.Fields(l); len(f) > 0 && f[0] == "0" {
			row = f
		}
	}
	if len(row) < 5 || row[4] != "microvm/tcg" {
		t.Fatalf("app printed\n%s\nwant instance 0 with isolation microvm/tcg", out)
	}
}
