package guest

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
	"unsafe"
)

// Main is the guest's /init: it sets up the VM, runs the instance's command
// and powers off (by reboot, which QEMU's -no-reboot turns into an exit)
// when the command ends. It never returns.
func Main() {
	var out *Writer
	fail := func(err error) {
		msg := "strata-guest-init: " + err.Error()
		fmt.Fprintln(os.Stderr, msg)
		if out != nil {
			_ = out.WriteFrame(KindError, []byte(msg))
		}
		powerOff()
	}
	if err := mountBase(); err != nil {
		fail(err)
	}
	cfg, err := readConfig()
	if err != nil {
		fail(err)
	}
	for _, m := range cfg.Modules {
		if err := loadModule(m); err != nil {
			fail(err)
		}
	}
	outPort, ctlPort, err := findPorts(10 * time.Second)
	if err != nil {
		fail(err)
	}
	of, err := os.OpenFile(outPort, os.O_WRONLY, 0)
	if err != nil {
		fail(fmt.Errorf("open output port: %w", err))
	}
	out = NewWriter(of)
	if err := setup(cfg); err != nil {
		fail(err)
	}
	exit, err := run(cfg, out, ctlPort)
	if err != nil {
		fail(err)
	}
	_ = out.WriteFrame(KindExit, EncodeExit(exit))
	_ = of.Sync()
	powerOff()
}

func powerOff() {
	syscall.Sync()
	_ = syscall.Kill(-1, syscall.SIGKILL)
	// ACPI power-off (the microvm machine's GED), which ends QEMU; should it
	// fail, a restart, which QEMU's -no-reboot turns into its exit. The
	// driver also kills QEMU once it has read the exit record.
	_ = syscall.Reboot(syscall.LINUX_REBOOT_CMD_POWER_OFF)
	_ = syscall.Reboot(syscall.LINUX_REBOOT_CMD_RESTART)
	select {}
}

func mountBase() error {
	for _, m := range []struct{ fstype, target string }{
		{"proc", "/proc"}, {"sysfs", "/sys"}, {"devtmpfs", "/dev"}, {"tmpfs", "/tmp"},
	} {
		if err := os.MkdirAll(m.target, 0o755); err != nil {
			return err
		}
		if err := syscall.Mount(m.fstype, m.target, m.fstype, 0, ""); err != nil && !errors.Is(err, syscall.EBUSY) {
			return fmt.Errorf("mount %s: %w", m.target, err)
		}
	}
	return os.Chmod("/tmp", 0o1777)
}

func readConfig() (*Config, error) {
	data, err := os.ReadFile(ConfigPath)
	if err != nil {
		return nil, err
	}
	var c Config
	if err := json.Unmarshal(data, &c); err != nil {
		return nil, fmt.Errorf("%s: %w", ConfigPath, err)
	}
	return &c, nil
}

func loadModule(path string) error {
	if sysFinitModule < 0 {
		return fmt.Errorf("load module %s: finit_module is not known on this architecture", filepath.Base(path))
	}
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	empty := []byte{0}
	_, _, e := syscall.Syscall(uintptr(sysFinitModule), f.Fd(), uintptr(unsafe.Pointer(&empty[0])), 0)
	if e != 0 && e != syscall.EEXIST {
		return fmt.Errorf("load module %s: %w", filepath.Base(path), e)
	}
	return nil
}

// findPorts waits for the two virtio-serial ports and returns their device
// nodes.
func findPorts(timeout time.Duration) (string, string, error) {
	deadline := time.Now().Add(timeout)
	for {
		var out, ctl string
		ents, _ := os.ReadDir("/sys/class/virtio-ports")
		for _, e := range ents {
			name, err := os.ReadFile(filepath.Join("/sys/class/virtio-ports", e.Name(), "name"))
			if err != nil {
				continue
			}
			dev := "/dev/" + e.Name()
			if _, err := os.Stat(dev); err != nil {
				continue
			}
			switch strings.TrimSpace(string(name)) {
			case OutPortName:
				out = dev
			case ControlPortName:
				ctl = dev
			}
		}
		if out != "" && ctl != "" {
			return out, ctl, nil
		}
		if time.Now().After(deadline) {
			return "", "", fmt.Errorf("virtio-serial ports %s and %s did not appear", OutPortName, ControlPortName)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// newRoot is where a root disk is mounted; the command is chrooted there.
const newRoot = "/newroot"

// setup mounts the app disk (or the root disk and what the command needs
// in it), gives the user its files and the writable dirs, and brings up
// the network.
func setup(cfg *Config) error {
	root := "/"
	switch {
	case cfg.RootDisk:
		if err := waitFor("/dev/vda", 10*time.Second); err != nil {
			return err
		}
		if err := os.MkdirAll(newRoot, 0o755); err != nil {
			return err
		}
		if err := syscall.Mount("/dev/vda", newRoot, "ext4", syscall.MS_NOSUID|syscall.MS_NODEV, ""); err != nil {
			return fmt.Errorf("mount the root disk: %w", err)
		}
		for _, m := range []struct{ fstype, target string }{
			{"proc", "/proc"}, {"sysfs", "/sys"}, {"devtmpfs", "/dev"}, {"tmpfs", "/tmp"},
		} {
			t := filepath.Join(newRoot, m.target)
			if err := os.MkdirAll(t, 0o755); err != nil {
				return err
			}
			if err := syscall.Mount(m.fstype, t, m.fstype, syscall.MS_NOSUID, ""); err != nil {
				return fmt.Errorf("mount %s in the root disk: %w", m.target, err)
			}
		}
		if err := os.Chmod(filepath.Join(newRoot, "tmp"), 0o1777); err != nil {
			return err
		}
		root = newRoot
	case cfg.DiskRoot != "":
		if err := waitFor("/dev/vda", 10*time.Second); err != nil {
			return err
		}
		if err := os.MkdirAll(cfg.DiskRoot, 0o755); err != nil {
			return err
		}
		if err := syscall.Mount("/dev/vda", cfg.DiskRoot, "ext4", syscall.MS_NOSUID|syscall.MS_NODEV, ""); err != nil {
			return fmt.Errorf("mount the app disk at %s: %w", cfg.DiskRoot, err)
		}
	}
	if cfg.ChownDisk && cfg.DiskRoot != "" {
		err := filepath.WalkDir(cfg.DiskRoot, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.Name() == "lost+found" && filepath.Dir(p) == cfg.DiskRoot {
				return filepath.SkipDir
			}
			return os.Lchown(p, cfg.UID, cfg.GID)
		})
		if err != nil {
			return fmt.Errorf("give the app disk to uid %d: %w", cfg.UID, err)
		}
	}
	for _, w := range append([]string{cfg.Dir}, cfg.Writable...) {
		if w == "" {
			continue
		}
		w = filepath.Join(root, w)
		if err := os.MkdirAll(w, 0o755); err != nil {
			return err
		}
		if err := os.Lchown(w, cfg.UID, cfg.GID); err != nil {
			return err
		}
	}
	if err := sh("ip link set lo up"); err != nil {
		return err
	}
	if cfg.Address != "" {
		if err := waitFor("/sys/class/net/eth0", 10*time.Second); err != nil {
			return err
		}
		for _, c := range []string{"ip addr add " + cfg.Address + " dev eth0", "ip link set eth0 up", "ip route add default via " + cfg.Gateway} {
			if err := sh(c); err != nil {
				return err
			}
		}
	}
	return nil
}

// sh runs a busybox applet line (no user input reaches it).
func sh(line string) error {
	args := strings.Fields(line)
	out, err := exec.Command("/bin/busybox", args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s: %v: %s", line, err, out)
	}
	return nil
}

func waitFor(path string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		if _, err := os.Stat(path); err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s did not appear", path)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// run starts the command in its own process group as the user, forwards its
// output as frames, obeys control lines, reaps every child (it is PID 1)
// and returns how the command ended.
func run(cfg *Config, out *Writer, ctlPort string) (Exit, error) {
	or, ow, err := os.Pipe()
	if err != nil {
		return Exit{}, err
	}
	er, ew, err := os.Pipe()
	if err != nil {
		return Exit{}, err
	}
	null, err := os.Open("/dev/null")
	if err != nil {
		return Exit{}, err
	}
	sys := &syscall.SysProcAttr{Setpgid: true, Credential: &syscall.Credential{Uid: uint32(cfg.UID), Gid: uint32(cfg.GID), Groups: []uint32{}}}
	if cfg.RootDisk {
		sys.Chroot = newRoot // the stack's /bin/sh, in Dir there
	}
	p, err := os.StartProcess("/bin/sh", []string{"/bin/sh", "-c", cfg.Command}, &os.ProcAttr{
		Dir: cfg.Dir, Env: cfg.Env, Files: []*os.File{null, ow, ew}, Sys: sys,
	})
	ow.Close()
	ew.Close()
	null.Close()
	if err != nil {
		return Exit{}, fmt.Errorf("start the command: %w", err)
	}
	pid := p.Pid
	oomBefore := oomKills()
	_ = out.WriteFrame(KindStarted, nil)

	var wg sync.WaitGroup
	for _, s := range []struct {
		r    *os.File
		kind byte
	}{{or, KindStdout}, {er, KindStderr}} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, 16<<10)
			for {
				n, err := s.r.Read(buf)
				if n > 0 {
					_ = out.WriteFrame(s.kind, buf[:n])
				}
				if err != nil {
					return
				}
			}
		}()
	}
	go control(ctlPort, pid)
	if cfg.Port > 0 {
		go watchListen(cfg.Port, out)
	}

	var status syscall.WaitStatus
	for {
		wpid, err := syscall.Wait4(-1, &status, 0, nil)
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			return Exit{}, fmt.Errorf("wait: %w", err)
		}
		if wpid == pid {
			break
		}
	}
	// Children left behind may hold the pipes open: give the output a moment,
	// then stop reading.
	_ = or.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	_ = er.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	wg.Wait()
	// The command's own processes are the only ones in the VM the kernel
	// would choose (the init is PID 1): a kill meanwhile was theirs.
	oom := oomKills() > oomBefore
	if status.Signaled() {
		return Exit{Code: -1, Signal: signalName(status.Signal()), OOM: oom}, nil
	}
	return Exit{Code: status.ExitStatus(), OOM: oom}, nil
}

// oomKills is the kernel's count of processes it killed for want of
// memory (oom_kill in /proc/vmstat).
func oomKills() int {
	data, _ := os.ReadFile("/proc/vmstat")
	for line := range strings.SplitSeq(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "oom_kill "); ok {
			n, _ := strconv.Atoi(strings.TrimSpace(v))
			return n
		}
	}
	return 0
}

func signalName(s syscall.Signal) string {
	switch s {
	case syscall.SIGTERM:
		return "terminated"
	case syscall.SIGKILL:
		return "killed"
	}
	return s.String()
}

// control reads control lines from the host and signals the command's
// process group.
func control(port string, pgid int) {
	for {
		f, err := os.Open(port)
		if err != nil {
			time.Sleep(100 * time.Millisecond)
			continue
		}
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			fmt.Fprintf(os.Stderr, "strata-guest-init: control %q\n", sc.Text())
			switch strings.TrimSpace(sc.Text()) {
			case ControlTerm:
				_ = syscall.Kill(-pgid, syscall.SIGTERM)
			case ControlKill:
				_ = syscall.Kill(-pgid, syscall.SIGKILL)
			}
		}
		f.Close()
		// The host is not connected (a read returns at once): look again
		// soon, without spinning.
		time.Sleep(50 * time.Millisecond)
	}
}

// watchListen reports whether a socket listens on port, from /proc/net/tcp
// and tcp6, when that changes and every ListenReport.
func watchListen(port int, out *Writer) {
	last, sent := false, time.Time{}
	for {
		now := listening(port)
		if now != last || time.Since(sent) >= ListenReport {
			p := []byte("0")
			if now {
				p = []byte("1")
			}
			_ = out.WriteFrame(KindListening, p)
			last, sent = now, time.Now()
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func listening(port int) bool {
	want := fmt.Sprintf(":%04X", port)
	for _, f := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		data, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(data), "\n")[1:] {
			fs := strings.Fields(line)
			if len(fs) > 3 && strings.HasSuffix(fs[1], want) && fs[3] == "0A" {
				return true
			}
		}
	}
	return false
}
