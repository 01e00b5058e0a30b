package executor_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/strata-paas/strata/api"
	"github.com/strata-paas/strata/deploy/driver"
	"github.com/strata-paas/strata/deploy/driver/drivertest"
	"github.com/strata-paas/strata/deploy/driver/mock"
	"github.com/strata-paas/strata/deploy/driver/process"
	"github.com/strata-paas/strata/deploy/executor"
)

func processDriver(t *testing.T, dir string) *process.Driver {
	t.Helper()
	d, err := process.New(process.Config{StateDir: dir, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	// Instances outlive their executor by design (recovery); at the end of
	// the test, after its executors stopped, none may outlive the test.
	t.Cleanup(func() {
		ents, _ := os.ReadDir(dir)
		for _, e := range ents {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			_ = d.Destroy(ctx, e.Name()) // not an instance id: refused, nothing done
			cancel()
		}
	})
	return d
}

// instanceHost says whether host is where process driver d's instances are
// reached: the node (127.0.0.1) when they share its network, else an address
// of their own (docs/tenancy.md, "How tenants are kept apart").
func instanceHost(d *process.Driver, host string) bool {
	if d.Fingerprint().Isolations[0] != api.IsolationProcess {
		return host == "127.0.0.1"
	}
	a, err := netip.ParseAddr(host)
	return err == nil && netip.MustParsePrefix("10.213.0.0/16").Contains(a)
}

func get(t *testing.T, host string, port int, path string) (string, error) {
	t.Helper()
	c := &http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get(fmt.Sprintf("http://%s:%d%s", host, port, path))
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}

var pidRE = regexp.MustCompile(`pid=(\d+) pidns=(\S*)`)

// appProc is the webapp's process as it describes itself in body: a PID of
// its own PID namespace, which differs from the test's under isolation.
func appProc(t *testing.T, body string) drivertest.Proc {
	t.Helper()
	m := pidRE.FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("app says %q, want its pid and pid namespace", body)
	}
	pid, _ := strconv.Atoi(m[1])
	return drivertest.Proc{PID: pid, NS: m[2]}
}

func webSpec(id string, ref api.BlobRef) api.InstanceSpec {
	return api.InstanceSpec{
		InstanceID: id, AppID: "app-id-1", AppName: "hello", Process: "web", Index: 0, Release: 4,
		DropletBlob: ref, Command: "./webapp", Env: map[string]string{"GREETING": "hi", "PORT": "1", "STRATA_APP": "evil"},
		MemoryMB: 64, Routes: []string{"hello.localhost"},
	}
}

func fastRestart() executor.RestartPolicy {
	return executor.RestartPolicy{Immediate: 1, Backoff: 20 * time.Millisecond, MaxBackoff: 100 * time.Millisecond, ResetAfter: time.Hour}
}

// TestWebInstanceLifecycle runs a real app through the process driver:
// start → healthy → routed → serving → logs → crash → restart → stop.
func TestWebInstanceLifecycle(t *testing.T) {
	h := newHarness(t)
	data := t.TempDir()
	cfg := executor.Config{NodeID: "node-1", DataDir: data, HeartbeatInterval: 100 * time.Millisecond,
		Restart: fastRestart(), Labels: map[string]string{"zone": "a"}}
	drv := processDriver(t, filepath.Join(data, "driver"))
	e, _ := h.run(cfg, drv)
	ref := h.webappDroplet()
	spec := webSpec("inst-1", ref)
	h.start(e.NodeID(), spec)
	h.start(e.NodeID(), spec) // a duplicate start is accepted and ignored

	_, ev := waitFor(t, h.rec, api.SubjectInstanceEvent, 0, "running event", eventIs("inst-1", api.InstanceRunning))
	if ev.NodeID != "node-1" || ev.Instance.AppID != "app-id-1" || ev.Instance.Release != 4 || ev.Instance.Port == 0 {
		t.Fatalf("running event = %+v, want node-1, app-id-1, release 4 and a port", ev)
	}
	_, reg := waitFor(t, h.rec, api.SubjectRouterRegister, 0, "registration", func(r *api.RouterRegistration) bool { return r.PrivateInstanceID == "inst-1" })
	if reg.Port != ev.Instance.Port || !instanceHost(drv, reg.Host) || !slices.Equal(reg.URIs, []string{"hello.localhost"}) ||
		reg.App != "app-id-1" || reg.PrivateInstanceIdx != "0" || reg.Tags["app_name"] != "hello" || reg.Tags["process_type"] != "web" || reg.StaleThresholdInSec <= 0 {
		t.Fatalf("registration = %+v, want port %d and the app's identity", reg, ev.Instance.Port)
	}
	body, err := get(t, reg.Host, reg.Port, "/")
	if err != nil {
		t.Fatalf("GET the app on its registered port: %v", err)
	}
	if !strings.Contains(body, "hello from hello/0") || !strings.Contains(body, "greeting=hi") {
		t.Fatalf("app says %q, want platform STRATA_APP and config var GREETING", body)
	}
	waitFor(t, h.rec, api.SubjectLogs("app-id-1"), 0, "app start log line", func(l *api.LogEnvelope) bool {
		return l.Source == "app/web/0" && l.Stream == "stdout" && l.Line == fmt.Sprintf("listening on %d", reg.Port) && l.App == "hello"
	})
	waitFor(t, h.rec, api.SubjectLogs("app-id-1"), 0, "request log line", func(l *api.LogEnvelope) bool { return l.Line == "request /" })
	_, hb := waitFor(t, h.rec, api.SubjectNodeHeartbeat, 0, "heartbeat with the running instance", func(hb *api.NodeHeartbeat) bool {
		return len(hb.Instances) == 1 && hb.Instances[0].InstanceID == "inst-1" && hb.Instances[0].State == api.InstanceRunning
	})
	if want := drv.Fingerprint().Isolations[0]; !slices.Contains(hb.Isolations, want) || hb.Capacity.CPUs < 1 || hb.Capacity.MemoryMB < 1 ||
		hb.Capacity.DiskMB < 1 || hb.Labels["zone"] != "a" || hb.Interval != 100*time.Millisecond || hb.Address != "127.0.0.1" ||
		(hb.Substrate != api.SubstrateMetal && hb.Substrate != api.SubstrateVM) {
		t.Fatalf("heartbeat = %+v, want isolation, capacity, labels, interval, address and substrate", hb)
	}

	// Crash: routes are withdrawn, the crash is reported, the instance restarts in place.
	mark := h.rec.len()
	_, _ = get(t, reg.Host, reg.Port, "/crash")
	u, ur := waitFor(t, h.rec, api.SubjectRouterUnregister, mark, "unregister after crash", func(r *api.RouterRegistration) bool {
		return r.PrivateInstanceID == "inst-1" && r.Port == reg.Port
	})
	if ur.Forget {
		t.Errorf("the unregister of a crash says forget: routers would answer 404 instead of holding requests")
	}
	c, crash := waitFor(t, h.rec, api.SubjectInstanceEvent, mark, "crashed event", eventIs("inst-1", api.InstanceCrashed))
	if crash.ExitCode == nil || *crash.ExitCode != 3 || crash.Reason == "" {
		t.Fatalf("crash event = %+v, want exit code 3 and a reason", crash)
	}
	if u > c {
		t.Errorf("unregister (#%d) came after the crash event (#%d)", u, c)
	}
	waitFor(t, h.rec, api.SubjectLogs("app-id-1"), mark, "stderr line", func(l *api.LogEnvelope) bool {
		return l.Stream == "stderr" && l.Line == "crashing on request"
	})
	r, ev2 := waitFor(t, h.rec, api.SubjectInstanceEvent, c, "running again", eventIs("inst-1", api.InstanceRunning))
	if ev2.Instance.Restarts != 1 {
		t.Errorf("restarts after one crash = %d, want 1", ev2.Instance.Restarts)
	}
	_, reg2 := waitFor(t, h.rec, api.SubjectRouterRegister, r, "registration after restart", func(x *api.RouterRegistration) bool { return x.PrivateInstanceID == "inst-1" })
	if reg2.Port != ev2.Instance.Port {
		t.Fatalf("registration after restart on port %d, instance on %d", reg2.Port, ev2.Instance.Port)
	}
	body, err = get(t, reg2.Host, reg2.Port, "/")
	if err != nil {
		t.Fatalf("GET after restart: %v", err)
	}
	app := appProc(t, body)

	// Stop: route out first, then SIGTERM, then stopped; nothing left behind.
	mark = h.rec.len()
	h.stop(e.NodeID(), "inst-1", 5*time.Second)
	s, _ := waitFor(t, h.rec, api.SubjectInstanceEvent, mark, "stopped event", eventIs("inst-1", api.InstanceStopped))
	u, _ = waitFor(t, h.rec, api.SubjectRouterUnregister, mark, "unregister on stop", func(x *api.RouterRegistration) bool { return x.PrivateInstanceID == "inst-1" })
	g, _ := waitFor(t, h.rec, api.SubjectLogs("app-id-1"), mark, "SIGTERM log line", func(l *api.LogEnvelope) bool { return l.Line == "got SIGTERM, bye" })
	if !(u < g && g < s) {
		t.Errorf("order: unregister #%d, app got SIGTERM #%d, stopped #%d; want unregister first and stopped last", u, g, s)
	}
	if app.Alive() {
		t.Errorf("app %v still runs after stop", app)
	}
	if _, err := os.Stat(filepath.Join(data, "instances", "inst-1")); !os.IsNotExist(err) {
		t.Errorf("instance dir still exists after stop: %v", err)
	}
	waitFor(t, h.rec, api.SubjectNodeHeartbeat, s, "empty heartbeat", func(hb *api.NodeHeartbeat) bool { return len(hb.Instances) == 0 })
}

// TestCrashLoopAndEnv uses the mock driver: an instance that keeps exiting
// is restarted with backoff and every restart is counted.
func TestCrashLoopAndEnv(t *testing.T) {
	h := newHarness(t)
	data := t.TempDir()
	drv := mock.New(mock.Config{})
	e, _ := h.run(executor.Config{NodeID: "node-2", DataDir: data, Restart: fastRestart()}, drv)
	ref := h.scriptDroplet()
	spec := api.InstanceSpec{InstanceID: "w-1", AppID: "app-2", AppName: "worker", Process: "worker", Index: 2, Release: 7,
		DropletBlob: ref, Command: "exit 3 5ms", Env: map[string]string{"PORT": "1", "STRATA_APP": "evil", "FOO": "bar"}}
	h.start(e.NodeID(), spec)
	from := 0
	for i := range 4 {
		var ev *api.InstanceEvent
		from, ev = waitFor(t, h.rec, api.SubjectInstanceEvent, from, fmt.Sprintf("crash #%d", i+1), eventIs("w-1", api.InstanceCrashed))
		if ev.ExitCode == nil || *ev.ExitCode != 3 || ev.Instance.Restarts != i {
			t.Fatalf("crash #%d = %+v (restarts %d), want exit code 3 and %d restarts", i+1, ev, ev.Instance.Restarts, i)
		}
		from++
	}
	mark := h.rec.len()
	h.stop(e.NodeID(), "w-1", time.Second)
	waitFor(t, h.rec, api.SubjectInstanceEvent, mark, "stopped", eventIs("w-1", api.InstanceStopped))
	if r := drv.Running(); len(r) != 0 {
		t.Fatalf("mock still runs %v after stop", r)
	}
	if _, err := os.Stat(filepath.Join(data, "instances", "w-1")); !os.IsNotExist(err) {
		t.Errorf("instance dir still exists after stop: %v", err)
	}

	starts := drv.Starts()
	if len(starts) < 4 {
		t.Fatalf("driver saw %d starts, want at least 4", len(starts))
	}
	env := map[string]string{}
	for _, kv := range starts[0].Env {
		k, v, _ := strings.Cut(kv, "=")
		env[k] = v
	}
	inst := filepath.Join(data, "instances", "w-1")
	want := map[string]string{"STRATA_APP": "worker", "STRATA_PROCESS": "worker", "STRATA_INSTANCE_INDEX": "2",
		"STRATA_INSTANCE_GUID": "w-1", "STRATA_RELEASE": "7", "FOO": "bar", "LANG": "C.UTF-8",
		"HOME": filepath.Join(inst, "droplet"), "TMPDIR": filepath.Join(inst, "tmp")}
	for k, v := range want {
		if env[k] != v {
			t.Errorf("env %s = %q, want %q", k, env[k], v)
		}
	}
	if p, _ := strconv.Atoi(env["PORT"]); p <= 1 {
		t.Errorf("PORT = %q, want a platform-picked port", env["PORT"])
	}
	if !strings.Contains(env["PATH"], "/usr/bin") {
		t.Errorf("PATH = %q, want the system dirs", env["PATH"])
	}
	var vcap map[string]any
	if err := json.Unmarshal([]byte(env["VCAP_APPLICATION"]), &vcap); err != nil || vcap["application_id"] != "app-2" ||
		vcap["application_name"] != "worker" || vcap["instance_id"] != "w-1" || vcap["instance_index"] != float64(2) {
		t.Errorf("VCAP_APPLICATION = %s (%v), want the app's identity", env["VCAP_APPLICATION"], err)
	}
	if starts[0].Dir != filepath.Join(inst, "droplet", "app") || !strings.HasSuffix(starts[0].Command, "exit 3 5ms") {
		t.Errorf("spec dir %q command %q, want the droplet's app dir and the Procfile command", starts[0].Dir, starts[0].Command)
	}
}

// TestDropletCache: concurrent starts of one droplet fetch it once; a droplet
// whose content does not match its digest is refused.
func TestDropletCache(t *testing.T) {
	h := newHarness(t)
	drv := mock.New(mock.Config{Script: func(s *driver.Spec) (mock.Behavior, error) { return mock.Behavior{}, nil }})
	e, _ := h.run(executor.Config{NodeID: "node-3", DataDir: t.TempDir(), Restart: executor.RestartPolicy{Immediate: -1, Backoff: time.Hour}}, drv)
	ref := h.blobs.add(droplet(t, map[string][]byte{"x": []byte("x")}))
	for i := range 3 {
		h.start(e.NodeID(), api.InstanceSpec{InstanceID: fmt.Sprintf("c-%d", i), AppName: "cache", Process: "web", Index: i,
			DropletBlob: ref, Command: "run"})
	}
	for i := range 3 {
		waitFor(t, h.rec, api.SubjectInstanceEvent, 0, "running", eventIs(fmt.Sprintf("c-%d", i), api.InstanceRunning))
	}
	if n := h.blobs.count(ref); n != 1 {
		t.Errorf("droplet fetched %d times for 3 instances, want 1", n)
	}

	// A blob served under the wrong digest.
	bad := api.BlobRef("sha256:" + strings.Repeat("ab", 32))
	h.blobs.mu.Lock()
	h.blobs.blobs[bad] = droplet(t, map[string][]byte{"x": []byte("y")})
	h.blobs.mu.Unlock()
	h.start(e.NodeID(), api.InstanceSpec{InstanceID: "bad", AppName: "cache", Process: "web", DropletBlob: bad, Command: "run"})
	_, ev := waitFor(t, h.rec, api.SubjectInstanceEvent, 0, "crash of a corrupt droplet", eventIs("bad", api.InstanceCrashed))
	if ev.Reason == "" || ev.ExitCode != nil {
		t.Errorf("crash event = %+v, want a reason and no exit code", ev)
	}
	for _, s := range drv.Starts() {
		if s.ID == "bad" {
			t.Fatalf("an instance of a corrupt droplet was started")
		}
	}
}

func TestCommandValidation(t *testing.T) {
	h := newHarness(t)
	e, _ := h.run(executor.Config{NodeID: "node-4", DataDir: t.TempDir()}, mock.New(mock.Config{}))
	ok := api.InstanceSpec{InstanceID: "i", AppName: "app", Process: "web", DropletBlob: api.BlobRef("sha256:" + strings.Repeat("0", 64)), Command: "run"}
	with := func(f func(s *api.InstanceSpec)) *api.InstanceSpec { s := ok; f(&s); return &s }
	tests := []struct {
		name string
		cmd  api.NodeCommand
	}{
		{"no spec", api.NodeCommand{Kind: api.CmdStart}},
		{"path in id", api.NodeCommand{Kind: api.CmdStart, Start: with(func(s *api.InstanceSpec) { s.InstanceID = "../x" })}},
		{"bad app name", api.NodeCommand{Kind: api.CmdStart, Start: with(func(s *api.InstanceSpec) { s.AppName = "a.b>" })}},
		{"bad droplet", api.NodeCommand{Kind: api.CmdStart, Start: with(func(s *api.InstanceSpec) { s.DropletBlob = "md5:1" })}},
		{"no command", api.NodeCommand{Kind: api.CmdStart, Start: with(func(s *api.InstanceSpec) { s.Command = " " })}},
		{"bad health", api.NodeCommand{Kind: api.CmdStart, Start: with(func(s *api.InstanceSpec) { s.HealthCheck.Type = "magic" })}},
		{"stop bad id", api.NodeCommand{Kind: api.CmdStop, InstanceID: "a/b"}},
		{"unknown kind", api.NodeCommand{Kind: "drain-the-sea"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := h.command(e.NodeID(), tt.cmd); api.ErrorCode(err) != api.EInvalid {
				t.Fatalf("got %v, want an invalid error", err)
			}
		})
	}
	// Stopping an unknown instance is accepted and reported stopped.
	if err := h.command(e.NodeID(), api.NodeCommand{Kind: api.CmdStop, InstanceID: "ghost"}); err != nil {
		t.Fatalf("stop of an unknown instance: %v", err)
	}
	waitFor(t, h.rec, api.SubjectInstanceEvent, 0, "stopped event for the unknown instance", eventIs("ghost", api.InstanceStopped))
}

// TestRecoverAfterRestart: instances survive an executor restart and are
// adopted by the next run; dead ones are cleaned up and reported stopped.
// With StopOnExit, ending Run stops everything, routes first.
func TestRecoverAfterRestart(t *testing.T) {
	h := newHarness(t)
	data := t.TempDir()
	cfg := executor.Config{DataDir: data, HeartbeatInterval: 100 * time.Millisecond, Restart: fastRestart()}
	e1, stop1 := h.run(cfg, processDriver(t, filepath.Join(data, "driver")))
	ref := h.webappDroplet()
	h.start(e1.NodeID(), webSpec("keep", ref))
	_, reg := waitFor(t, h.rec, api.SubjectRouterRegister, 0, "registration", func(r *api.RouterRegistration) bool { return r.PrivateInstanceID == "keep" })
	body, err := get(t, reg.Host, reg.Port, "/")
	if err != nil {
		t.Fatal(err)
	}
	stop1()
	if _, err := get(t, reg.Host, reg.Port, "/"); err != nil {
		t.Fatalf("the app died with its executor: %v", err)
	}

	// A persisted instance whose process is gone.
	ghost := filepath.Join(data, "instances", "dead")
	if err := os.MkdirAll(ghost, 0o700); err != nil {
		t.Fatal(err)
	}
	rec, _ := json.Marshal(map[string]any{"v": 1, "spec": webSpec("dead", ref),
		"handle": driver.Handle{Version: driver.HandleVersion, Driver: process.Name, ID: "dead", PID: 1 << 30, PGID: 1 << 30, StartTime: 1}})
	if err := os.WriteFile(filepath.Join(ghost, "handle.json"), rec, 0o600); err != nil {
		t.Fatal(err)
	}

	mark := h.rec.len()
	cfg.StopOnExit = true
	e2, stop2 := h.run(cfg, processDriver(t, filepath.Join(data, "driver")))
	if e2.NodeID() != e1.NodeID() {
		t.Fatalf("node id changed across restarts: %s → %s", e1.NodeID(), e2.NodeID())
	}
	waitFor(t, h.rec, api.SubjectInstanceEvent, mark, "dead instance reported stopped", eventIs("dead", api.InstanceStopped))
	if _, err := os.Stat(ghost); !os.IsNotExist(err) {
		t.Errorf("dead instance dir not cleaned: %v", err)
	}
	waitFor(t, h.rec, api.SubjectInstanceEvent, mark, "recovered instance running", eventIs("keep", api.InstanceRunning))
	_, reg2 := waitFor(t, h.rec, api.SubjectRouterRegister, mark, "re-registration", func(r *api.RouterRegistration) bool { return r.PrivateInstanceID == "keep" })
	if reg2.Port != reg.Port {
		t.Fatalf("recovered instance registered on port %d, want %d", reg2.Port, reg.Port)
	}
	body2, err := get(t, reg2.Host, reg2.Port, "/")
	if err != nil || pidRE.FindString(body2) != pidRE.FindString(body) {
		t.Fatalf("after recovery the app says %q (%v), want the same process as before (%q)", body2, err, body)
	}
	// Output of the adopted process still reaches the log stream.
	waitFor(t, h.rec, api.SubjectLogs("app-id-1"), mark, "log line of the recovered app", func(l *api.LogEnvelope) bool { return l.Line == "request /" })

	mark = h.rec.len()
	stop2()
	s, _ := waitFor(t, h.rec, api.SubjectInstanceEvent, mark, "stopped on exit", eventIs("keep", api.InstanceStopped))
	u, _ := waitFor(t, h.rec, api.SubjectRouterUnregister, mark, "unregister on exit", func(r *api.RouterRegistration) bool { return r.PrivateInstanceID == "keep" })
	if u > s {
		t.Errorf("unregister #%d after stopped #%d", u, s)
	}
	app := appProc(t, body)
	deadline := time.Now().Add(10 * time.Second)
	for app.Alive() {
		if time.Now().After(deadline) {
			t.Fatalf("app %v still runs after the executor stopped on exit", app)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
