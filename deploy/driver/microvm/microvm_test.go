package microvm_test

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/strata-paas/strata/api"
	"github.com/strata-paas/strata/deploy/driver"
	"github.com/strata-paas/strata/deploy/driver/drivertest"
	"github.com/strata-paas/strata/deploy/driver/microvm"
)

var (
	initOnce sync.Once
	initPath string
	initErr  error
	stateDir string
)

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "strata-microvm-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	stateDir = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// guestInit builds cmd/strata-guest-init (static) once per test binary.
func guestInit(t testing.TB) string {
	t.Helper()
	initOnce.Do(func() {
		initPath = filepath.Join(stateDir, "strata-guest-init")
		cmd := exec.Command("go", "build", "-trimpath", "-o", initPath, "github.com/strata-paas/strata/cmd/strata-guest-init")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			initErr = fmt.Errorf("build the guest init: %v: %s", err, out)
		}
	})
	if initErr != nil {
		t.Fatal(initErr)
	}
	return initPath
}

// cacheDir keeps the probe's result and the base initramfs across test
// runs (they are keyed by content), so only the first run pays the probe.
func cacheDir(t testing.TB) string {
	dir := filepath.Join(os.TempDir(), "strata-microvm-test-cache")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	return dir
}

// newDriver returns a driver sharing one state dir (and so one probe) per
// test binary, or skips (fails in CI with qemu required) when QEMU or the
// kernel is missing.
func newDriver(t *testing.T) *microvm.Driver {
	t.Helper()
	return newDriverIn(t, stateDir)
}

func newDriverIn(t testing.TB, stateDir string, opts ...func(*microvm.Config)) *microvm.Driver {
	t.Helper()
	for _, dep := range []string{"qemu-system-x86_64", "mkfs.ext4"} {
		if _, err := exec.LookPath(dep); err != nil {
			drivertest.Missing(t, "qemu", "%s is not installed (apt-get install qemu-system-x86 e2fsprogs)", dep)
		}
	}
	if ks, _ := filepath.Glob("/boot/vmlinuz-*-cloud-amd64"); len(ks) == 0 {
		drivertest.Missing(t, "qemu", "no guest kernel /boot/vmlinuz-*-cloud-amd64 (apt-get install linux-image-cloud-amd64)")
	}
	if _, err := os.Stat("/bin/busybox"); err != nil {
		drivertest.Missing(t, "qemu", "no /bin/busybox (apt-get install busybox-static)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	// go test runs packages side by side on 2 cores: an emulated boot that
	// takes ~3 s alone took over 12 s (the default bound) in a full CI run.
	cfg := microvm.Config{StateDir: stateDir, CacheDir: cacheDir(t), Init: guestInit(t), Logger: drivertest.Logger(t),
		BootTimeout: 40 * time.Second}
	for _, o := range opts {
		o(&cfg)
	}
	d, err := microvm.New(ctx, cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return d
}

func TestHelloHTTP(t *testing.T) {
	d := newDriver(t)
	t.Logf("acceleration %s", d.Acceleration())
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "index.html"), []byte("hello from a microvm\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	port, _ := d.AllocatePort("hello")
	var out, errb drivertest.Buffer
	t0 := time.Now()
	h, err := d.Start(ctx, &driver.Spec{ID: "hello", Dir: dir, Port: port, MemoryMB: 128,
		Command: "id -u; echo $GREETING; sleep 2; exec httpd -f -p $PORT", Env: []string{"PATH=/bin", "PORT=8080", "GREETING=hi there"}, Stdout: &out, Stderr: &errb})
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() { _ = d.Destroy(context.Background(), "hello") })
	t.Logf("started in %s, endpoint %+v", time.Since(t0), h.Endpoint)
	if h.Endpoint.Port == 0 || h.Endpoint.Host != "127.0.0.1" || h.Endpoint.CheckHost != "127.0.0.1" || h.Endpoint.CheckPort == 0 {
		t.Fatalf("endpoint %+v, want 127.0.0.1 with a port and a check port", h.Endpoint)
	}
	// The check port opens only once the guest listens (the forwarded port
	// accepts at once: user-mode networking).
	check := net.JoinHostPort(h.Endpoint.CheckHost, strconv.Itoa(h.Endpoint.CheckPort))
	if c, err := net.Dial("tcp", check); err == nil {
		c.Close()
		t.Errorf("the check port accepts before the guest listens")
	}
	drivertest.WaitFor(t, "the check port to open", func() bool {
		c, err := net.Dial("tcp", check)
		if err == nil {
			c.Close()
		}
		return err == nil
	})
	for _, addr := range []string{net.JoinHostPort(h.Endpoint.Host, strconv.Itoa(h.Endpoint.Port)), check} {
		body := waitAnswer(t, "http://"+addr+"/index.html")
		t.Logf("serving at %s after %s", addr, time.Since(t0))
		if body != "hello from a microvm\n" {
			t.Errorf("body at %s: %q", addr, body)
		}
	}
	if want := fmt.Sprintf("%d\nhi there\n", microvm.GuestUID); !strings.HasPrefix(out.String(), want) {
		t.Errorf("stdout %q, want it to start with %q", out.String(), want)
	}
	// When the server goes, the check port closes.
	if err := d.Stop(ctx, "hello", 5*time.Second); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if c, err := net.Dial("tcp", check); err == nil {
		c.Close()
		t.Errorf("the check port accepts after the VM ended")
	}
}

// TestConformance runs drivertest. The two cases that spawn a child and look
// for its PID on the host (SpawnChild, SpawnChildExit) do not apply: the
// guest's processes are not host processes and its disk is a copy of the
// dir, so child.pid never reaches the host. TestLeftoversDieWithVM checks
// the same property the way a VM has it.
func TestConformance(t *testing.T) {
	c := drivertest.ShellCommands()
	c.SpawnChild, c.SpawnChildExit = "", ""
	drivertest.Run(t, func(t *testing.T) driver.Driver { return newDriver(t) }, drivertest.Options{Commands: c})
}

// TestMissingDependencies: without QEMU (or the init) New fails at once
// with unavailable, naming what to install, and boots nothing.
func TestMissingDependencies(t *testing.T) {
	for _, tt := range []struct {
		name string
		cfg  microvm.Config
		want string
	}{
		{"qemu", microvm.Config{QEMU: "/nonexistent/qemu-system-x86_64"}, "install qemu-system-x86"},
		{"kernel", microvm.Config{QEMU: "/bin/true", Kernel: "/nonexistent/vmlinuz"}, "install linux-image-cloud-amd64"},
		{"init", microvm.Config{QEMU: "/bin/true", Kernel: "/bin/true", Init: "/nonexistent/init"}, "strata-guest-init"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			tt.cfg.StateDir = t.TempDir()
			_, err := microvm.New(context.Background(), tt.cfg)
			if api.ErrorCode(err) != api.EUnavailable || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("New: %v, want unavailable saying %q", err, tt.want)
			}
		})
	}
}

// TestMemoryIsTheVMs: the spec's memory is the guest's RAM.
func TestMemoryIsTheVMs(t *testing.T) {
	d := newDriver(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var out drivertest.Buffer
	if _, err := d.Start(ctx, &driver.Spec{ID: "mem", Dir: t.TempDir(), Command: "head -1 /proc/meminfo", Env: []string{"PATH=/bin"}, MemoryMB: 200, Stdout: &out}); err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() { _ = d.Destroy(context.Background(), "mem") })
	if res, err := d.Wait(ctx, "mem"); err != nil || res.ExitCode != 0 {
		t.Fatalf("Wait = %+v, %v", res, err)
	}
	var kb int
	if _, err := fmt.Sscanf(out.String(), "MemTotal: %d kB", &kb); err != nil {
		t.Fatalf("meminfo %q: %v", out.String(), err)
	}
	// The kernel keeps some of the 200 MB for itself.
	if kb > 200*1024 || kb < 150*1024 {
		t.Fatalf("guest MemTotal = %d kB, want about 200 MB", kb)
	}
}

// TestLeftoversDieWithVM: a child the command leaves behind (ignoring
// SIGTERM) ends with the VM: Wait returns the command's exit code and no
// QEMU process is left on the host.
func TestLeftoversDieWithVM(t *testing.T) {
	d := newDriver(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	h, err := d.Start(ctx, &driver.Spec{ID: "left", Dir: t.TempDir(), Command: "(trap '' TERM; exec sleep 1000) & exit 4", Env: []string{"PATH=/bin"}, MemoryMB: 96})
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() { _ = d.Destroy(context.Background(), "left") })
	res, err := d.Wait(ctx, "left")
	if err != nil || res.ExitCode != 4 {
		t.Fatalf("Wait = %+v, %v; want exit code 4", res, err)
	}
	if (drivertest.Proc{PID: h.PID}).Alive() {
		t.Fatalf("QEMU (pid %d) still runs after the command exited", h.PID)
	}
}

// TestRecover: a second driver on the same state dir (an executor restart)
// re-attaches to the running VM by pid and start time, stops it through
// the guest (exit code from the guest) and refuses forged handles.
func TestRecover(t *testing.T) {
	d1 := newDriver(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	spec := &driver.Spec{ID: "rec", Dir: t.TempDir(), Command: "trap 'echo bye; exit 0' TERM; echo ready; while :; do sleep 0.05; done", Env: []string{"PATH=/bin"}, MemoryMB: 96, Port: 8080}
	var out drivertest.Buffer
	spec.Stdout = &out
	h, err := d1.Start(ctx, spec)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() { _ = d1.Destroy(context.Background(), "rec") })
	drivertest.WaitFor(t, "ready", func() bool { return strings.HasPrefix(out.String(), "ready") })

	d2 := newDriver(t)
	forged := *h
	forged.StartTime++
	if err := d2.Recover(ctx, &forged); api.ErrorCode(err) != api.ENotFound {
		t.Errorf("Recover with another start time: %v, want not_found", err)
	}
	other := *h
	other.Driver = "process"
	if err := d2.Recover(ctx, &other); api.ErrorCode(err) != api.EInvalid {
		t.Errorf("Recover of a process handle: %v, want invalid", err)
	}
	var out2 drivertest.Buffer
	if err := d2.RecoverOutput(ctx, h, &out2, nil); err != nil {
		t.Fatalf("RecoverOutput: %v", err)
	}
	t.Cleanup(func() { _ = d2.Destroy(context.Background(), "rec") })
	if err := d2.Stop(ctx, "rec", time.Minute); err != nil {
		t.Fatalf("Stop after Recover: %v", err)
	}
	res, err := d2.Wait(ctx, "rec")
	if err != nil || res.ExitCode != 0 || res.Signal != "" {
		t.Fatalf("Wait after Recover and Stop = %+v, %v; want exit 0 from the guest's SIGTERM handler", res, err)
	}
	if got := out2.String(); got != "bye\n" {
		t.Errorf("output after recovery = %q, want what the guest printed since: %q", got, "bye\n")
	}
	if err := d2.Recover(ctx, h); api.ErrorCode(err) != api.ENotFound && err != nil {
		t.Errorf("Recover of a stopped VM: %v, want not_found (or nil while it is still known)", err)
	}
}

// TestSweepAndUsage: a VM the executor does not know (started by a driver
// whose executor is gone) is killed and its files removed by Sweep; a known
// one is kept. Usage reports the QEMU's CPU time and memory.
func TestSweepAndUsage(t *testing.T) {
	dir := t.TempDir()
	d1 := newDriverIn(t, dir)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var hs []*driver.Handle
	for _, id := range []string{"keep", "orphan"} {
		var out drivertest.Buffer
		h, err := d1.Start(ctx, &driver.Spec{ID: id, Dir: t.TempDir(), Command: drivertest.ShellCommands().Forever, Env: []string{"PATH=/bin"}, MemoryMB: 96, Stdout: &out})
		if err != nil {
			t.Fatalf("Start %s: %v", id, err)
		}
		t.Cleanup(func() { _ = d1.Destroy(context.Background(), id) })
		drivertest.WaitFor(t, id+" ready", func() bool { return strings.HasPrefix(out.String(), "ready") })
		hs = append(hs, h)
	}
	u, err := d1.Usage(ctx, "keep")
	if err != nil || u.CPUTime <= 0 || u.MemoryBytes < 10<<20 {
		t.Errorf("Usage = %+v, %v; want CPU time and at least 10 MB", u, err)
	}
	if _, err := d1.Usage(ctx, "nope"); api.ErrorCode(err) != api.ENotFound {
		t.Errorf("Usage of an unknown id: %v, want not_found", err)
	}
	d2 := newDriverIn(t, dir)
	n, err := d2.Sweep(ctx, []string{"keep"})
	if err != nil || n != 1 {
		t.Fatalf("Sweep = %d, %v; want 1 removed", n, err)
	}
	if (drivertest.Proc{PID: hs[1].PID}).Alive() {
		t.Errorf("the orphan's QEMU (pid %d) survived the sweep", hs[1].PID)
	}
	if _, err := os.Stat(filepath.Join(dir, "instances", "orphan")); !os.IsNotExist(err) {
		t.Errorf("the orphan's dir is still there: %v", err)
	}
	if !(drivertest.Proc{PID: hs[0].PID}).Alive() {
		t.Errorf("the known instance's QEMU (pid %d) was killed", hs[0].PID)
	}
	if res, err := d1.Wait(ctx, "orphan"); err != nil || res.Err == nil {
		t.Errorf("Wait of the swept VM = %+v, %v; want an error saying it ended without an exit", res, err)
	}
}

// TestExampleApp: examples/hello-go, built static as a Go droplet is, runs
// unchanged in a VM laid out as the executor lays out an instance (the app
// dir inside a writable droplet root, a tmp dir) and answers at the
// endpoint.
func TestExampleApp(t *testing.T) {
	d := newDriver(t)
	inst := t.TempDir()
	app := filepath.Join(inst, "droplet", "app")
	if err := os.MkdirAll(filepath.Join(inst, "tmp"), 0o755); err != nil {
		t.Fatal(err)
	}
	build := exec.Command("go", "build", "-trimpath", "-o", filepath.Join(app, "bin", "hello"), ".")
	build.Dir = filepath.Join("..", "..", "..", "examples", "hello-go")
	build.Env = append(os.Environ(), "CGO_ENABLED=0", "GOWORK=off")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build examples/hello-go: %v: %s", err, out)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	port, _ := d.AllocatePort("app")
	var out drivertest.Buffer
	h, err := d.Start(ctx, &driver.Spec{ID: "app", Dir: app, Command: "bin/hello", MemoryMB: 128, Port: port,
		Writable: []string{filepath.Join(inst, "droplet"), filepath.Join(inst, "tmp")},
		Env:      []string{"PATH=/bin", fmt.Sprintf("PORT=%d", port), "HOME=" + filepath.Join(inst, "droplet"), "STRATA_INSTANCE_INDEX=7", "STRATA_RELEASE=3"},
		Stdout:   &out, Stderr: &out})
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() { _ = d.Destroy(context.Background(), "app") })
	url := fmt.Sprintf("http://%s:%d/", h.Endpoint.Host, h.Endpoint.Port)
	body := waitAnswer(t, url)
	if want := "Hello from Strata! (instance 7, release 3)\n"; body != want {
		t.Errorf("body %q, want %q", body, want)
	}
	if err := d.Stop(ctx, "app", 5*time.Second); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if !strings.Contains(out.String(), "hello listening on :8080") {
		t.Errorf("output %q, want the app's log line", out.String())
	}
}

// waitAnswer waits until url answers 200 and returns the body.
func waitAnswer(t *testing.T, url string) string {
	t.Helper()
	return drivertest.Answer(t, url, true, nil)
}
