package process_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/strata-paas/strata/deploy/driver"
	"github.com/strata-paas/strata/deploy/driver/drivertest"
)

// TestIsolation checks, from inside an isolated instance, what it can see and
// write.
func TestIsolation(t *testing.T) {
	d := isolated(t, t.TempDir())
	base := t.TempDir() // 0700: the instance user could not search it on the host
	home := filepath.Join(base, "droplet")
	dir := filepath.Join(home, "app")
	extra := filepath.Join(base, "tmp")
	for _, p := range []string{dir, extra} {
		if err := os.MkdirAll(p, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "index.html"), []byte("hello"), 0o600); err != nil {
		t.Fatal(err)
	}
	tmpName := fmt.Sprintf("strata-isolation-test-%d", os.Getpid())
	t.Cleanup(func() { os.Remove(filepath.Join("/tmp", tmpName)) })
	try := func(name, path string) string {
		return fmt.Sprintf(`if touch %s 2>/dev/null; then echo %s=rw; else echo %s=ro; fi`, path, name, name)
	}
	script := strings.Join([]string{
		`echo pid=$$`,
		`echo init=$(tr '\0' ' ' < /proc/1/cmdline)`,
		`echo procs=$(ls /proc | grep -c '^[0-9]')`,
		`echo host=$(cat /proc/sys/kernel/hostname)`,
		`echo uid=$(id -u) gid=$(id -g)`,
		`echo read=$(cat index.html)`,
		`for ns in pid mnt uts ipc net; do echo ns_$ns=$(readlink /proc/self/ns/$ns); done`,
		try("dir", "./written"),
		try("home", "../home-written"),
		try("extra", filepath.Join(extra, "written")),
		try("tmp", "/tmp/"+tmpName),
		try("etc", "/etc/strata-isolation-test"),
		try("base", filepath.Join(base, "outside")),
		`if echo x > /dev/null; then echo devnull=rw; fi`,
	}, "\n")
	spec := &driver.Spec{ID: "iso-check", Dir: dir, Writable: []string{home, extra}, Command: script, MemoryMB: 64}
	out, errOut, res := run(t, d, spec)
	if res.ExitCode != 0 {
		t.Fatalf("check script: %+v, stderr %q", res, errOut)
	}
	got := map[string]string{}
	for line := range strings.SplitSeq(out, "\n") {
		for f := range strings.FieldsSeq(line) {
			if k, v, ok := strings.Cut(f, "="); ok {
				got[k] = v
			}
		}
	}
	t.Logf("inside the instance:\n%s", out)
	hostNS := func(ns string) string { l, _ := os.Readlink("/proc/self/ns/" + ns); return l }
	hostName, _ := os.ReadFile("/proc/sys/kernel/hostname")
	uid := strconv.Itoa(d.UID(spec.ID))
	for _, c := range []struct{ key, want, why string }{
		{"init", "strata-init", "PID 1 is the driver's init"},
		{"host", spec.ID, "the UTS namespace has the instance id as hostname"},
		{"uid", uid, "the command runs as the instance user"},
		{"gid", uid, "the command runs with the instance group"},
		{"read", "hello", "the droplet is readable"},
		{"dir", "rw", "the app dir is writable"},
		{"home", "rw", "the droplet dir is writable"},
		{"extra", "rw", "Spec.Writable dirs are writable"},
		{"tmp", "rw", "/tmp is writable"},
		{"devnull", "rw", "/dev/null is writable"},
		{"etc", "ro", "the host file system is read-only"},
		{"base", "ro", "the instance's parent dirs are read-only"},
	} {
		if got[c.key] != c.want {
			t.Errorf("%s = %q, want %q: %s", c.key, got[c.key], c.want, c.why)
		}
	}
	// Init's threads take the first PIDs; the shell has a small PID of its
	// own namespace, not its host PID.
	if pid, _ := strconv.Atoi(got["pid"]); pid <= 1 || pid > 64 {
		t.Errorf("the shell has pid %s inside, want a small pid other than 1", got["pid"])
	}
	if n, _ := strconv.Atoi(got["procs"]); n < 1 || n > 5 {
		t.Errorf("the instance sees %s processes, want only its own (init, shell, ls)", got["procs"])
	}
	for _, ns := range []string{"pid", "mnt", "uts", "ipc", "net"} {
		if got["ns_"+ns] == "" || got["ns_"+ns] == hostNS(ns) {
			t.Errorf("%s namespace %q, want one of its own (host: %q)", ns, got["ns_"+ns], hostNS(ns))
		}
	}
	if h, _ := os.ReadFile("/proc/sys/kernel/hostname"); string(h) != string(hostName) {
		t.Errorf("host name changed to %q", h)
	}
	if _, err := os.Stat(filepath.Join("/tmp", tmpName)); err == nil {
		t.Errorf("a file the instance wrote in its /tmp appeared in the host's /tmp")
	}
	for _, p := range []string{filepath.Join(dir, "written"), filepath.Join(home, "home-written"), filepath.Join(extra, "written")} {
		if _, err := os.Stat(p); err != nil {
			t.Errorf("file the instance wrote is not on the host: %v", err)
		}
	}
	if _, err := os.Stat(filepath.Join(base, "outside")); err == nil {
		t.Errorf("the instance wrote outside its directories")
	}
}

// TestIsolationOOM runs a memory hog past its limit.
func TestIsolationOOM(t *testing.T) {
	d := isolated(t, t.TempDir())
	// tail buffers a "line" without newlines: it grows until killed.
	_, errOut, res := run(t, d, &driver.Spec{ID: "hog", Dir: t.TempDir(), MemoryMB: 32,
		Command: `exec sh -c 'head -c 1000000000 /dev/zero | tail'`})
	if !res.OOMKilled {
		t.Fatalf("memory hog ended %+v (stderr %q), want OOMKilled", res, errOut)
	}
	_, _, res = run(t, d, &driver.Spec{ID: "small", Dir: t.TempDir(), MemoryMB: 32, Command: `head -c 1000000 /dev/zero | tail >/dev/null`})
	if res.OOMKilled || res.ExitCode != 0 {
		t.Fatalf("small instance ended %+v, want exit 0 and not OOMKilled", res)
	}
}

// TestIsolationKillsTree stops an instance whose processes left its session
// and ignore SIGTERM: none survives, and its cgroup is removed.
func TestIsolationKillsTree(t *testing.T) {
	d := isolated(t, t.TempDir())
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out := &drivertest.Buffer{}
	spec := &driver.Spec{ID: "tree", Dir: t.TempDir(), MemoryMB: 64, Stdout: out, Env: []string{"PATH=/usr/bin:/bin"},
		Command: `for i in 1 2 3; do setsid sh -c 'trap "" TERM; sleep 1000' & done; (trap "" TERM; sleep 1000 & sleep 1000) & readlink /proc/self/ns/pid; while :; do sleep 0.05; done`}
	h, err := d.Start(ctx, spec)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = d.Destroy(context.Background(), spec.ID) })
	waitFor(t, "the namespace to be printed", func() bool { return strings.HasSuffix(out.String(), "\n") })
	ns := strings.TrimSpace(out.String())
	count := func() int {
		n := 0
		ents, _ := os.ReadDir("/proc")
		for _, e := range ents {
			if l, err := os.Readlink("/proc/" + e.Name() + "/ns/pid"); err == nil && l == ns {
				n++
			}
		}
		return n
	}
	waitFor(t, "the children to start", func() bool { return count() >= 7 })
	if err := d.Stop(ctx, spec.ID, 200*time.Millisecond); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if _, err := d.Wait(ctx, spec.ID); err != nil {
		t.Fatal(err)
	}
	if n := count(); n != 0 {
		t.Fatalf("%d processes of the instance survived Stop", n)
	}
	noCgroupsLeft(t, h, "Stop")
}

// TestSweepStaleCgroups: a new driver on the same state dir removes empty
// cgroups that instances left while no driver watched them, and keeps those
// with processes.
func TestSweepStaleCgroups(t *testing.T) {
	state := t.TempDir()
	d1 := isolated(t, state)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	h, err := d1.Start(ctx, &driver.Spec{ID: "live", Dir: t.TempDir(), MemoryMB: 64, Command: "while :; do sleep 0.05; done"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = d1.Destroy(context.Background(), "live") })
	paths := cgroupPaths(t, h)
	stale := filepath.Join(filepath.Dir(paths[0]), "stale")
	if err := os.Mkdir(stale, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.Remove(stale) })
	isolated(t, state)
	if _, err := os.Stat(stale); err == nil {
		t.Errorf("empty cgroup %s survived a new driver", stale)
	}
	if _, err := os.Stat(paths[0]); err != nil {
		t.Errorf("cgroup of a running instance was swept: %v", err)
	}
}
