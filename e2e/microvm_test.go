package e2e_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/strata-paas/strata/deploy/driver/microvm"
)

// vmApp serves its uid and whether it runs on the stack (Debian's
// /etc/debian_version), exits with code 3 on /crash and allocates memory
// until it is stopped on /hog.
const vmApp = `package main

import (
	"fmt"
	"net/http"
	"os"
	"strings"
	"time"
)

var hoard [][]byte

func hog() {
	for i := 1; ; i++ {
		b := make([]byte, 1<<20)
		for j := 0; j < len(b); j += 4096 {
			b[j] = 1
		}
		hoard = append(hoard, b)
		if i%16 == 0 {
			fmt.Println("hog holds", i, "MiB")
		}
	}
}

func main() {
	http.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		deb, _ := os.ReadFile("/etc/debian_version")
		fmt.Fprintf(w, "vm app uid %d debian %q\n", os.Getuid(), strings.TrimSpace(string(deb)))
	})
	http.HandleFunc("/crash", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, "crashing")
		go func() { time.Sleep(100 * time.Millisecond); os.Exit(3) }()
	})
	http.HandleFunc("/hog", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, "hogging")
		go hog()
	})
	fmt.Println(http.ListenAndServe(":"+os.Getenv("PORT"), nil))
}
`

// buildGuestInit builds cmd/strata-guest-init (static) next to stratad,
// where the executor's microvm driver looks for it.
func buildGuestInit(t testing.TB) string {
	t.Helper()
	out := filepath.Join(binDir, "strata-guest-init")
	if _, err := os.Stat(out); err == nil {
		return out
	}
	cmd := exec.Command("go", "build", "-o", out, "./cmd/strata-guest-init")
	cmd.Dir = repoRoot()
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build the guest init: %v\n%s", err, b)
	}
	return out
}

// qemuOf returns the pids of the QEMU processes whose command line names a
// path under dir.
func qemuOf(dir string) []int {
	ents, _ := os.ReadDir("/proc")
	var pids []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		cmdline, err := os.ReadFile("/proc/" + e.Name() + "/cmdline")
		if err == nil && strings.Contains(string(cmdline), "qemu-system") && strings.Contains(string(cmdline), dir+"/") {
			pids = append(pids, pid)
		}
	}
	return pids
}

// peakRSS is the peak resident memory of pid in MiB (VmHWM), 0 once gone.
func peakRSS(pid int) int {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, _ := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(v), " kB"))
			return kb >> 10
		}
	}
	return 0
}

// vmInstance is the part of `strata app --json` this test reads.
type vmInstance struct {
	ID        string `json:"id"`
	State     string `json:"state"`
	Isolation string `json:"isolation"`
	Accel     string `json:"accel"`
}

func (c *cli) vmInstances(app string) []vmInstance {
	c.t.Helper()
	out := c.must("", "strata", "app", app, "--json")
	var a struct {
		Instances []vmInstance `json:"instances"`
	}
	if err := json.Unmarshal([]byte(out), &a); err != nil {
		c.t.Fatalf("app --json: %v\n%s", err, out)
	}
	return a.Instances
}

// TestMicroVMIsolation runs apps in QEMU microVMs through the real binaries
// on one cluster and one node (process and microvm drivers), keeping the
// emulated boots few (each costs seconds): an app whose strata.yml asks for
// isolation microvm answers through the router from its VM, as an
// unprivileged user, and `strata app` shows microvm with the measured
// acceleration; a crash of the app is an event and the VM boots again; a
// kill -9 of the executor leaves the VM serving and the restarted executor
// re-attaches to the same QEMU; an app in a space whose policy says
// microvm lands in a VM without naming anything; a memory hog in one VM is
// killed by the guest's kernel at the guest's memory (its QEMU stays within
// the limit plus QEMU's own overhead), the event says out of memory, and the
// other VM serves throughout. At the end no QEMU and no instance file
// (overlay, disk, socket) of the node is left.
func TestMicroVMIsolation(t *testing.T) {
	require(t, "go", "qemu-system-x86_64", "qemu-img", "mkfs.ext4", "docker")
	initPath := buildGuestInit(t)
	data := t.TempDir()
	vmDir := filepath.Join(data, "microvm")
	t.Cleanup(func() { // registered first: runs after the processes stop
		if pids := qemuOf(vmDir); len(pids) > 0 {
			t.Errorf("QEMU processes left after the suite: %v", pids)
			for _, p := range pids {
				_ = exec.Command("kill", "-9", strconv.Itoa(p)).Run()
			}
		}
		if ents, _ := os.ReadDir(filepath.Join(vmDir, "instances")); len(ents) > 0 {
			var names []string
			for _, e := range ents {
				names = append(names, e.Name())
			}
			t.Errorf("instance dirs (overlays, sockets, logs) left after the suite: %v", names)
		}
	})

	// A node's first start probes whether KVM boots a guest (about 20 s
	// here before it gives up, then a TCG boot; docs/microvm.md), longer
	// than an executor is given to come up: probe once into the node's
	// cache, as that first start would.
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	probe, err := microvm.New(ctx, microvm.Config{StateDir: vmDir, Init: initPath})
	if err != nil {
		if os.Getenv("CI") != "" || os.Getenv("STRATA_REQUIRE") != "" {
			t.Fatalf("the microvm driver does not work on this host: %v", err)
		}
		t.Skipf("the microvm driver does not work on this host: %v", err)
	}
	accel := string(probe.Acceleration())

	c := startCluster(t)
	drivers := []string{"--drivers", "process,microvm"}
	ex := c.executor("vm-node", data, drivers...)

	app := goApp(t, vmApp, map[string]string{
		"strata.yml": "applications:\n- name: vmapp\n  memory: 128M\n  placement:\n    isolation: microvm\n",
	})
	c.cli.must(app, "strata", "push")
	// The first start unpacks the stack and makes the droplet's image
	// (about 45 s here, more with the cores loaded) before its boot.
	body := waitBody(t, c.routerAddr, "vmapp.localhost", "vm app uid 1000", 480*time.Second)
	t.Logf("vmapp answers: %s", strings.TrimSpace(body))
	if !strings.Contains(body, `debian "12.`) {
		t.Errorf("vmapp does not run on the Debian stack: %q", body)
	}
	first := c.waitRunning("vmapp", 1, 60*time.Second)[0]
	pids := qemuOf(filepath.Join(vmDir, "instances", first.ID))
	if len(pids) != 1 {
		t.Fatalf("QEMU processes of instance %s: %v, want one (none: it ran on the process driver)", first.ID, pids)
	}
	for _, in := range c.cli.vmInstances("vmapp") {
		if in.Isolation != "microvm" || in.Accel != accel {
			t.Errorf("strata app --json: instance %s isolation %q accel %q, want microvm %s", in.ID, in.Isolation, in.Accel, accel)
		}
	}
	if detail := c.cli.must("", "strata", "app", "vmapp"); !strings.Contains(detail, "microvm/"+accel) {
		t.Errorf("strata app does not show microvm/%s:\n%s", accel, detail)
	}

	t.Run("crash restarts the VM with an event", func(t *testing.T) {
		before := len(c.cli.crashEvents("vmapp"))
		if code, b, err := routerGet(c.routerAddr, "vmapp.localhost", "/crash"); code != 200 {
			t.Fatalf("GET /crash: %d %q %v", code, b, err)
		}
		waitFor(t, "a crash event", 60*time.Second, func() (bool, string) {
			evs := c.cli.crashEvents("vmapp")
			return len(evs) > before, fmt.Sprintf("%d crash events", len(evs))
		})
		if ev := c.cli.crashEvents("vmapp")[before]; !strings.Contains(ev.Message, "exited with code 3") {
			t.Errorf("crash event %q does not say the app exited with code 3", ev.Message)
		}
		waitBody(t, c.routerAddr, "vmapp.localhost", "vm app uid 1000", 120*time.Second)
		in := c.waitRunning("vmapp", 1, 60*time.Second)[0]
		if got := qemuOf(filepath.Join(vmDir, "instances", in.ID)); len(got) != 1 || slices.Equal(got, pids) {
			t.Errorf("QEMU of the restarted instance: %v (before the crash %v), want one new process", got, pids)
		}
	})

	t.Run("executor kill -9 and restart re-attaches to the same QEMU", func(t *testing.T) {
		in := c.waitRunning("vmapp", 1, 60*time.Second)[0]
		before := qemuOf(filepath.Join(vmDir, "instances", in.ID))
		ex.kill()
		waitBody(t, c.routerAddr, "vmapp.localhost", "vm app uid 1000", 10*time.Second)
		ex = c.executor("vm-node", data, append(drivers, "--stop-on-exit")...)
		for range 10 {
			waitBody(t, c.routerAddr, "vmapp.localhost", "vm app uid 1000", 10*time.Second)
			time.Sleep(200 * time.Millisecond)
		}
		again := c.waitRunning("vmapp", 1, 60*time.Second)[0]
		if again.ID != in.ID {
			t.Errorf("instance replaced after the executor restart: %s → %s", in.ID, again.ID)
		}
		if after := qemuOf(filepath.Join(vmDir, "instances", in.ID)); len(before) != 1 || !slices.Equal(after, before) {
			t.Errorf("QEMU after the executor restart: %v, want the same %v", after, before)
		}
	})

	t.Run("a space policy puts a new app in a VM", func(t *testing.T) {
		in := c.cli.with("default", "isolated")
		c.cli.must("", "strata", "spaces", "create", "isolated", "--org", "default")
		in.must("", "strata", "spaces", "set-placement", "isolated", "--isolation", "microvm")
		in.must(goApp(t, vmApp, nil), "strata", "push", "walled")
		waitBody(t, c.routerAddr, "walled.localhost", "vm app uid 1000", 180*time.Second)
		for _, i := range in.vmInstances("walled") {
			if i.Isolation != "microvm" {
				t.Errorf("instance %s of an app in the microvm space shows isolation %q", i.ID, i.Isolation)
			}
			if got := qemuOf(filepath.Join(vmDir, "instances", i.ID)); i.State == "running" && len(got) != 1 {
				t.Errorf("QEMU of %s: %v, want one", i.ID, got)
			}
		}
	})

	t.Run("a memory hog is contained in its VM", func(t *testing.T) {
		in := c.waitRunning("vmapp", 1, 60*time.Second)[0]
		qemu := qemuOf(filepath.Join(vmDir, "instances", in.ID))
		if len(qemu) != 1 {
			t.Fatalf("QEMU of %s: %v, want one", in.ID, qemu)
		}
		before := len(c.cli.crashEvents("vmapp"))
		if code, b, err := routerGet(c.routerAddr, "vmapp.localhost", "/hog"); code != 200 {
			t.Fatalf("GET /hog: %d %q %v", code, b, err)
		}
		peak, neighbour := 0, 0
		waitFor(t, "a crash event after the hog", 120*time.Second, func() (bool, string) {
			peak = max(peak, peakRSS(qemu[0]))
			if code, _, err := routerGet(c.routerAddr, "walled.localhost", "/"); err == nil && code == 200 {
				neighbour++
			} else {
				t.Errorf("the other VM's app did not answer during the hog: %d %v", code, err)
			}
			evs := c.cli.crashEvents("vmapp")
			return len(evs) > before, fmt.Sprintf("%d crash events, QEMU peak RSS %d MiB", len(evs), peak)
		})
		ev := c.cli.crashEvents("vmapp")[before]
		t.Logf("hog: QEMU peak RSS %d MiB for a 128 MiB guest; event %q; the other app answered %d times meanwhile", peak, ev.Message, neighbour)
		if !strings.Contains(ev.Message, "out of memory") {
			t.Errorf("crash event %q does not say the app ran out of memory", ev.Message)
		}
		// The guest's RAM is the limit; QEMU adds its own (under TCG its
		// translation cache): far below what an unbounded hog would take.
		if peak > 128+256 {
			t.Errorf("QEMU peak RSS %d MiB for a 128 MiB guest", peak)
		}
		waitBody(t, c.routerAddr, "vmapp.localhost", "vm app uid 1000", 120*time.Second)
	})

	for _, a := range []struct {
		cli  *cli
		name string
	}{{c.cli, "vmapp"}, {c.cli.with("default", "isolated"), "walled"}} {
		a.cli.must("", "strata", "apps", "delete", a.name, "--force")
	}
	waitFor(t, "the VMs to go with their apps", 60*time.Second, func() (bool, string) {
		pids := qemuOf(vmDir)
		return len(pids) == 0, fmt.Sprintf("QEMU processes %v", pids)
	})
}
