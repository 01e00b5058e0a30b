package microvm

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/strata-paas/strata/api"
	"github.com/strata-paas/strata/deploy/driver"
	"github.com/strata-paas/strata/deploy/driver/microvm/guest"
)

// Name is the driver name recorded in handles.
const Name = "microvm"

// GuestUID is the uid (and gid) instance commands run as inside their VM.
const GuestUID = 1000

const guestConfigPath = guest.ConfigPath

// Acceleration is how QEMU runs guests: KVM or TCG (emulation).
type Acceleration string

// Accelerations.
const (
	AccelKVM Acceleration = "kvm"
	AccelTCG Acceleration = "tcg"
)

var (
	_ driver.Driver          = (*Driver)(nil)
	_ driver.Fingerprinter   = (*Driver)(nil)
	_ driver.PortAllocator   = (*Driver)(nil)
	_ driver.Sweeper         = (*Driver)(nil)
	_ driver.UsageReporter   = (*Driver)(nil)
	_ driver.OutputRecoverer = (*Driver)(nil)
)

// Config configures the microvm driver.
type Config struct {
	// StateDir holds the cached initramfs, the probe's result and one dir
	// per instance (disk image, initramfs, output, sockets). Default
	// <os.TempDir()>/strata-microvm.
	StateDir string
	// CacheDir holds what is built or measured by content: the base
	// initramfs, unpacked stacks and droplet images. Default StateDir.
	CacheDir string
	// ProbeDir holds the acceleration probe's results, keyed by the
	// kernel, QEMU and initramfs and by nothing in StateDir, so one
	// directory can serve every data dir on a machine (stratad passes
	// its machine cache; docs/microvm.md). Default CacheDir.
	ProbeDir string
	// QEMU is the emulator binary. Default qemu-system-x86_64 on PATH.
	QEMU string
	// Kernel is the guest kernel. Default the newest
	// /boot/vmlinuz-*-cloud-amd64.
	Kernel string
	// KernelArgs are added to the guest kernel's command line
	// (console=ttyS0 earlyprintk=ttyS0 panic=-1, and under TCG
	// tsc_early_khz=<the host's TSC frequency>).
	KernelArgs string
	// MachineOptions are added to QEMU's -machine microvm,… and CPU, when
	// set, is its -cpu (default QEMU's).
	MachineOptions string
	CPU            string
	// ModuleDir holds the kernel's modules. Default /lib/modules/<version
	// from the kernel's file name>.
	ModuleDir string
	// Init is the guest init binary (cmd/strata-guest-init, static).
	// Default strata-guest-init next to the running executable.
	Init string
	// Busybox is a static busybox: the guest's /bin/sh and tools. Default
	// /bin/busybox.
	Busybox string
	// Mkfs is mkfs.ext4 and Debugfs debugfs (e2fsprogs). Default on PATH.
	Mkfs    string
	Debugfs string
	// QemuImg is qemu-img (qemu-utils), which makes the qcow2 overlay each
	// instance boots from its droplet's image. Default qemu-img on PATH.
	QemuImg string
	// StackImage is the Docker image whose root file system droplet images
	// are made on (DefaultStackImage), read with Docker, the docker CLI
	// (default docker on PATH; without one guests run on busybox).
	StackImage string
	Docker     string
	// AdvertiseHost is the address instance ports are forwarded on, where
	// the executor checks them and routers reach them. Default 127.0.0.1.
	AdvertiseHost string
	// GuestPort is the port instances listen on in their VM ($PORT).
	// Default 8080.
	GuestPort int
	// Accel forces an acceleration; "" probes (KVM if a probe guest boots
	// under it, else TCG if one boots under that).
	Accel Acceleration
	// BootTimeout bounds one boot until the command starts; a boot that
	// takes longer is killed and retried (emulated boots sometimes hang
	// with no output). Default 25 s: TCG boots take about 3 s here alone,
	// 12-14 s with the 2 cores loaded 10 times over (docs/microvm.md); the
	// executor gives a start 30 s in all.
	BootTimeout time.Duration
	// BootAttempts is how many boots Start and the probe try. Default 3.
	BootAttempts int
	// MinMemoryMB is the least guest memory (the kernel needs some).
	// Default 96.
	MinMemoryMB int
	Logger      *slog.Logger
}

// Driver runs each instance in a QEMU microvm of its own. It is safe for
// concurrent use.
type Driver struct {
	cfg    Config
	log    *slog.Logger
	base   string // the instance-independent initramfs
	accel  Acceleration
	boot   time.Duration // how long the probe's boot took
	tscKHz int           // the host's TSC frequency, given to TCG guests

	mu   sync.Mutex
	vms  map[string]*vm
	keys map[string]chan struct{} // droplet images being made
	// building holds the work dirs of images and stacks being made, which
	// Sweep leaves alone.
	building map[string]bool

	stackMu   sync.Mutex
	stackTree *stackTree
	noStack   atomic.Bool // the missing stack was logged
}

// lockKey serialises work on one key (a droplet's image) and returns the
// unlock.
func (d *Driver) lockKey(key string) func() {
	for {
		d.mu.Lock()
		ch, busy := d.keys[key]
		if !busy {
			ch = make(chan struct{})
			d.keys[key] = ch
			d.mu.Unlock()
			return func() {
				d.mu.Lock()
				delete(d.keys, key)
				d.mu.Unlock()
				close(ch)
			}
		}
		d.mu.Unlock()
		<-ch
	}
}

type vm struct {
	id        string
	dir       string
	image     string // the droplet image its overlay is on; "" for a dir's disk
	pid       int
	startTime uint64
	hostPort  int
	booted    time.Duration // from QEMU's start until the command started (last attempt)
	check     *checkPort    // nil when the instance serves no port
	recovered bool

	ctlMu sync.Mutex
	ctl   net.Conn // the control socket, once used

	// Lifecycle: Exited when QEMU is gone, Done once every frame is
	// delivered too; Killed once Stop or Destroy sent SIGKILL to QEMU.
	driver.Lifecycle
}

// handleData is the driver-specific part of a Handle.
type handleData struct {
	Dir       string `json:"dir"`
	HostPort  int    `json:"host_port"`
	CheckPort int    `json:"check_port,omitempty"`
}

// New checks that QEMU, the kernel, its modules, the guest init, busybox
// and mkfs.ext4 are there (at once, without booting: EUnavailable naming
// what is missing), builds the base initramfs, and then measures the
// acceleration with a probe boot unless Config.Accel names one. The
// result is cached per kernel, QEMU and initramfs in StateDir. A probe
// that boots under neither KVM nor TCG is EUnavailable.
func New(ctx context.Context, cfg Config) (*Driver, error) {
	if err := cfg.defaults(); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Join(cfg.StateDir, "instances"), 0o700); err != nil {
		return nil, fmt.Errorf("microvm driver: %w", err)
	}
	base, err := baseInitramfs(cfg.CacheDir, cfg.Init, cfg.Busybox, cfg.ModuleDir)
	if err != nil {
		return nil, api.Errorf(api.EUnavailable, "microvm driver: %v", err)
	}
	d := &Driver{cfg: cfg, log: cfg.Logger, base: base, vms: map[string]*vm{}, keys: map[string]chan struct{}{}, building: map[string]bool{}, tscKHz: hostTSCkHz()}
	if cfg.Accel != "" {
		d.accel = cfg.Accel
	} else if err := d.probe(ctx); err != nil {
		return nil, err
	}
	d.log.Info("microvm.ready", "accel", d.accel, "kernel", cfg.Kernel, "probe_boot", d.boot)
	return d, nil
}

func (c *Config) defaults() error {
	if c.StateDir == "" {
		c.StateDir = filepath.Join(os.TempDir(), "strata-microvm")
	}
	if abs, err := filepath.Abs(c.StateDir); err == nil {
		c.StateDir = abs
	}
	if c.CacheDir == "" {
		c.CacheDir = c.StateDir
	}
	if c.ProbeDir == "" {
		c.ProbeDir = c.CacheDir
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	missing := func(what, hint string) error {
		return api.Errorf(api.EUnavailable, "microvm driver: %s — %s", what, hint)
	}
	if c.QEMU == "" {
		c.QEMU = "qemu-system-x86_64"
	}
	q, err := exec.LookPath(c.QEMU)
	if err != nil {
		return missing("no QEMU ("+c.QEMU+")", "install qemu-system-x86")
	}
	c.QEMU = q
	if c.Kernel == "" {
		ks, _ := filepath.Glob("/boot/vmlinuz-*-cloud-amd64")
		if len(ks) == 0 {
			return missing("no guest kernel /boot/vmlinuz-*-cloud-amd64", "install linux-image-cloud-amd64")
		}
		sort.Strings(ks)
		c.Kernel = ks[len(ks)-1]
	}
	if _, err := os.Stat(c.Kernel); err != nil {
		return missing("no guest kernel "+c.Kernel, "install linux-image-cloud-amd64")
	}
	if c.ModuleDir == "" {
		c.ModuleDir = filepath.Join("/lib/modules", strings.TrimPrefix(filepath.Base(c.Kernel), "vmlinuz-"))
	}
	if c.Init == "" {
		exe, err := os.Executable()
		if err != nil {
			return missing("no guest init", "give its path")
		}
		c.Init = filepath.Join(filepath.Dir(exe), "strata-guest-init")
	}
	if _, err := os.Stat(c.Init); err != nil {
		return missing("no guest init at "+c.Init, "build it with `CGO_ENABLED=0 go build -o bin/ ./cmd/strata-guest-init`")
	}
	if c.Busybox == "" {
		c.Busybox = "/bin/busybox"
	}
	if _, err := os.Stat(c.Busybox); err != nil {
		return missing("no busybox at "+c.Busybox, "install busybox-static")
	}
	if c.Mkfs == "" {
		c.Mkfs = "mkfs.ext4"
	}
	m, err := exec.LookPath(c.Mkfs)
	if err != nil {
		return missing("no "+c.Mkfs, "install e2fsprogs")
	}
	c.Mkfs = m
	if c.Debugfs == "" {
		c.Debugfs = "debugfs"
	}
	if c.Debugfs, err = exec.LookPath(c.Debugfs); err != nil {
		return missing("no debugfs", "install e2fsprogs")
	}
	if c.QemuImg == "" {
		c.QemuImg = "qemu-img"
	}
	if c.QemuImg, err = exec.LookPath(c.QemuImg); err != nil {
		return missing("no qemu-img", "install qemu-utils")
	}
	if c.StackImage == "" {
		c.StackImage = DefaultStackImage
	}
	if c.Docker == "" {
		c.Docker = "docker"
	}
	c.Docker, _ = exec.LookPath(c.Docker) // none: guests run on busybox
	if c.AdvertiseHost == "" {
		c.AdvertiseHost = "127.0.0.1"
	}
	if net.ParseIP(c.AdvertiseHost) == nil {
		return api.Errorf(api.EInvalid, "microvm driver: advertise host %q is not an IP address — QEMU forwards ports on an address", c.AdvertiseHost)
	}
	if c.GuestPort <= 0 {
		c.GuestPort = 8080
	}
	if c.BootTimeout <= 0 {
		c.BootTimeout = 25 * time.Second
	}
	if c.BootAttempts <= 0 {
		c.BootAttempts = 3
	}
	if c.MinMemoryMB <= 0 {
		c.MinMemoryMB = 96
	}
	switch c.Accel {
	case "", AccelKVM, AccelTCG:
	default:
		return api.Errorf(api.EInvalid, "microvm driver: acceleration %q is not kvm or tcg", c.Accel)
	}
	return nil
}

// Acceleration reports how this driver runs guests (measured by the probe
// unless configured).
func (d *Driver) Acceleration() Acceleration { return d.accel }

// ProbeBoot reports how long the probe's boot took (boot to the command's
// exit), 0 when the acceleration was configured or cached.
func (d *Driver) ProbeBoot() time.Duration { return d.boot }

// Fingerprint reports api.IsolationMicroVM and the acceleration (New
// succeeds only once a probe guest booted, or the acceleration was
// configured); the node's heartbeat carries the acceleration.
func (d *Driver) Fingerprint() driver.Fingerprint {
	return driver.Fingerprint{Driver: Name, Isolations: []api.Isolation{api.IsolationMicroVM}, Accel: string(d.accel)}
}

// AllocatePort returns Config.GuestPort: every VM has a network of its own;
// the host port QEMU forwards to it is chosen by Start.
func (d *Driver) AllocatePort(string) (int, error) { return d.cfg.GuestPort, nil }

func checkID(id string) error { return driver.CheckID(id) }

func (d *Driver) get(id string) (*vm, error) { return driver.Lookup(&d.mu, d.vms, id) }

func (d *Driver) instanceDir(id string) string { return filepath.Join(d.cfg.StateDir, "instances", id) }

// Start builds the instance's app disk from its dir (mkfs.ext4 -d; when a
// writable dir holds spec.Dir, from that dir, mounted at its own path), an
// initramfs with its config, and boots it, retrying a boot that does not
// reach the command within BootTimeout. It returns once the guest runs the
// command; the handle's Endpoint is the forwarded port on the advertise
// address.
func (d *Driver) Start(ctx context.Context, spec *driver.Spec) (*driver.Handle, error) {
	if err := checkID(spec.ID); err != nil {
		return nil, err
	}
	if spec.Image != "" {
		if _, err := d.checkImage(spec.Image); err != nil {
			return nil, err
		}
		if !path.IsAbs(spec.Dir) || path.Clean(spec.Dir) != spec.Dir {
			return nil, api.Errorf(api.EInvalid, "instance dir %q in its image is not a clean absolute path", spec.Dir)
		}
	} else if st, err := os.Stat(spec.Dir); err != nil || !st.IsDir() {
		return nil, api.Errorf(api.EInvalid, "instance dir %s does not exist", spec.Dir)
	}
	v := &vm{id: spec.ID, dir: d.instanceDir(spec.ID)}
	if err := driver.Claim(&d.mu, d.vms, spec.ID, v, nil); err != nil {
		return nil, err
	}
	h, err := d.start(ctx, v, spec)
	if err != nil {
		if v.check != nil {
			v.check.close()
		}
		unlinkCtl(v.dir)
		_ = os.RemoveAll(v.dir)
		driver.Forget(&d.mu, d.vms, spec.ID, v, nil)
		return nil, err
	}
	return h, nil
}

func (d *Driver) start(ctx context.Context, v *vm, spec *driver.Spec) (*driver.Handle, error) {
	fail := func(format string, args ...any) (*driver.Handle, error) {
		return nil, api.Errorf(api.EInvalid, "cannot start instance %s: "+format, append([]any{spec.ID}, args...)...)
	}
	_ = os.RemoveAll(v.dir)
	if err := os.MkdirAll(v.dir, 0o700); err != nil {
		return fail("%v", err)
	}
	t0 := time.Now()
	gcfg := guest.Config{
		Command: spec.Command, Env: spec.Env, UID: GuestUID, GID: GuestUID, Modules: modulePaths(),
		Port: spec.Port, Address: "10.0.2.15/24", Gateway: "10.0.2.2",
	}
	if spec.Image != "" {
		// A droplet image: the instance boots a copy-on-write overlay of
		// it, as its root (the stack's) or mounted at DropletRoot.
		kind, err := d.checkImage(spec.Image)
		if err != nil {
			return nil, err
		}
		if err := d.overlay(ctx, spec.Image, filepath.Join(v.dir, "disk.qcow2")); err != nil {
			return fail("%v", err)
		}
		v.image = spec.Image
		gcfg.Dir, gcfg.RootDisk = spec.Dir, kind == imageStack
		if !gcfg.RootDisk {
			gcfg.DiskRoot = DropletRoot
		}
		for _, w := range spec.Writable {
			gcfg.Writable = append(gcfg.Writable, path.Clean(w))
		}
	} else {
		dir, err := realDir(spec.Dir)
		if err != nil {
			return fail("%v", err)
		}
		root := dir
		var writable []string
		for _, w := range spec.Writable {
			rw, err := realDir(w)
			if err != nil {
				rw = filepath.Clean(w)
			}
			if within(dir, rw) && len(rw) < len(root) {
				root = rw
			}
			writable = append(writable, rw)
		}
		if err := d.mkfs(ctx, root, filepath.Join(v.dir, "disk.img"), ""); err != nil {
			return fail("%v", err)
		}
		gcfg.Dir, gcfg.DiskRoot, gcfg.Writable, gcfg.ChownDisk = dir, root, writable, true
	}
	memory := max(spec.MemoryMB, d.cfg.MinMemoryMB)
	if spec.Port > 0 {
		var err error
		if v.check, err = newCheckPort(d.cfg.AdvertiseHost, 0); err != nil {
			return fail("no port for its health check: %v", err)
		}
	}
	if gcfg.Env == nil {
		gcfg.Env = []string{}
	}
	cj, _ := json.Marshal(gcfg)
	if err := instanceInitramfs(filepath.Join(v.dir, "initramfs.cpio"), d.base, cj); err != nil {
		return fail("%v", err)
	}
	frames := &frameSink{stdout: spec.Stdout, stderr: spec.Stderr}
	var lastErr error
	for attempt := 1; attempt <= d.cfg.BootAttempts; attempt++ {
		if err := ctx.Err(); err != nil {
			break
		}
		err := d.bootOnce(ctx, v, memory, spec.Port, frames)
		if err == nil {
			d.log.Info("microvm.booted", "id", spec.ID, "accel", d.accel, "attempt", attempt, "boot", v.booted, "start", time.Since(t0))
			hd := handleData{Dir: v.dir, HostPort: v.hostPort}
			if v.check != nil {
				hd.CheckPort = v.check.port
			}
			data, _ := json.Marshal(hd)
			h := &driver.Handle{Version: driver.HandleVersion, Driver: Name, ID: spec.ID, PID: v.pid, StartTime: v.startTime, Data: data}
			if spec.Port > 0 {
				h.Endpoint = driver.Endpoint{Host: d.cfg.AdvertiseHost, Port: v.hostPort, CheckHost: d.cfg.AdvertiseHost, CheckPort: v.check.port}
			}
			return h, nil
		}
		var fatal *guestError
		if errors.As(err, &fatal) {
			return fail("%v", err)
		}
		lastErr = err
		d.log.Warn("microvm.boot_failed", "id", spec.ID, "attempt", attempt, "err", err)
	}
	if lastErr == nil {
		lastErr = ctx.Err()
	}
	return nil, api.Errorf(api.EUnavailable, "cannot start instance %s: the VM did not boot after %d attempts: %v", spec.ID, d.cfg.BootAttempts, lastErr)
}

// guestError is a failure the init reported: booting again will not help.
type guestError struct{ msg string }

func (e *guestError) Error() string { return e.msg }

func realDir(p string) (string, error) {
	r, err := filepath.EvalSymlinks(p)
	if err != nil {
		return "", err
	}
	return filepath.Abs(r)
}

// within reports whether p is dir or below it.
func within(p, dir string) bool {
	rel, err := filepath.Rel(dir, p)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, "../")
}

// mkfs makes an ext4 image of dir's tree at img, sized for its contents,
// with extended options ext ("" for none).
func (d *Driver) mkfs(ctx context.Context, dir, img, ext string) error {
	var size int64
	_ = filepath.Walk(dir, func(_ string, fi os.FileInfo, err error) error {
		if err == nil {
			size += fi.Size() + 4096
		}
		return nil
	})
	mb := size*3/2>>20 + 32
	cctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	args := []string{"-q", "-F", "-t", "ext4", "-O", "^has_journal", "-d", dir}
	if ext != "" {
		args = append(args, "-E", ext)
	}
	out, err := exec.CommandContext(cctx, d.cfg.Mkfs, append(args, img, strconv.FormatInt(mb, 10)+"M")...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("mkfs.ext4 -d %s: %v: %s", dir, err, strings.TrimSpace(string(out)))
	}
	return nil
}

// qemuArgs are QEMU's arguments for the VM in dir.
func (d *Driver) qemuArgs(dir string, accel Acceleration, memoryMB, hostPort, guestPort int) []string {
	disk, format := filepath.Join(dir, "disk.qcow2"), "qcow2" // an overlay of a droplet image
	if _, err := os.Stat(disk); err != nil {
		disk, format = filepath.Join(dir, "disk.img"), "raw" // an image of a dir
	}
	args := []string{
		"-machine", "microvm,accel=" + string(accel) + d.cfg.MachineOptions,
		"-m", strconv.Itoa(memoryMB), "-smp", "1",
		"-nodefaults", "-no-user-config", "-display", "none", "-no-reboot",
		"-serial", "file:" + filepath.Join(dir, "serial.log"),
		"-kernel", d.cfg.Kernel, "-initrd", filepath.Join(dir, "initramfs.cpio"),
		"-append", d.kernelArgs(accel),
		"-drive", "id=app,file=" + disk + ",format=" + format + ",if=none",
		"-device", "virtio-blk-device,drive=app",
		"-device", "virtio-serial-device",
		"-chardev", "file,id=out,path=" + filepath.Join(dir, "out"),
		"-device", "virtserialport,chardev=out,name=" + guest.OutPortName,
		"-chardev", "socket,id=ctl,path=" + ctlPath(dir) + ",server=on,wait=off",
		"-device", "virtserialport,chardev=ctl,name=" + guest.ControlPortName,
	}
	if d.cfg.CPU != "" {
		args = append(args, "-cpu", d.cfg.CPU)
	}
	nd := "user,id=net0,restrict=on"
	if guestPort > 0 {
		nd += fmt.Sprintf(",hostfwd=tcp:%s:%d-10.0.2.15:%d", d.cfg.AdvertiseHost, hostPort, guestPort)
	}
	return append(args, "-netdev", nd, "-device", "virtio-net-device,netdev=net0")
}

// kernelArgs is the guest kernel's command line. Under TCG it gives the
// kernel the TSC frequency (the host's: an emulated guest reads the host's
// TSC): calibrating it against the PIT fails under load, and a kernel
// that then marks the TSC unstable hung in about half of the boots here
// (docs/microvm.md).
func (d *Driver) kernelArgs(accel Acceleration) string {
	args := "console=ttyS0 earlyprintk=ttyS0 panic=-1"
	if accel == AccelTCG && d.tscKHz > 0 {
		args += " tsc_early_khz=" + strconv.Itoa(d.tscKHz)
	}
	if d.cfg.KernelArgs != "" {
		args += " " + d.cfg.KernelArgs
	}
	return args
}

// hostTSCkHz reads the host's TSC frequency from /proc/cpuinfo ("cpu MHz"
// of a CPU whose TSC is constant); 0 when it cannot tell.
func hostTSCkHz() int {
	data, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return 0
	}
	var mhz float64
	constant := false
	for line := range strings.SplitSeq(string(data), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		switch strings.TrimSpace(k) {
		case "cpu MHz":
			if mhz == 0 {
				mhz, _ = strconv.ParseFloat(strings.TrimSpace(v), 64)
			}
		case "flags":
			f := " " + v + " "
			constant = constant || strings.Contains(f, " constant_tsc ") || strings.Contains(f, " tsc_known_freq ")
		}
		if mhz > 0 && constant {
			break
		}
	}
	if !constant || mhz <= 0 {
		return 0
	}
	return int(mhz * 1000)
}

// bootOnce boots v once and returns when the guest reports the command
// started; it kills QEMU on any failure.
func (d *Driver) bootOnce(ctx context.Context, v *vm, memoryMB, guestPort int, frames *frameSink) error {
	return d.boot1(ctx, v, d.accel, memoryMB, guestPort, frames)
}

func (d *Driver) boot1(ctx context.Context, v *vm, accel Acceleration, memoryMB, guestPort int, frames *frameSink) error {
	v.onListen(false)
	for _, f := range []string{"out", "serial.log", "ctl.sock", "qemu.log"} {
		_ = os.Remove(filepath.Join(v.dir, f))
	}
	if err := os.WriteFile(filepath.Join(v.dir, "out"), nil, 0o600); err != nil {
		return err
	}
	hostPort := 0
	if guestPort > 0 {
		p, err := d.freePort()
		if err != nil {
			return err
		}
		hostPort = p
		if v.check != nil {
			v.check.setForward(hostPort)
		}
	}
	if err := linkCtl(v.dir); err != nil {
		return fmt.Errorf("the control socket's short path: %w", err)
	}
	qlog, err := os.Create(filepath.Join(v.dir, "qemu.log"))
	if err != nil {
		return err
	}
	cmd := exec.Command(d.cfg.QEMU, d.qemuArgs(v.dir, accel, memoryMB, hostPort, guestPort)...)
	cmd.Stdout, cmd.Stderr = qlog, qlog
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		qlog.Close()
		return fmt.Errorf("start QEMU: %w", err)
	}
	qlog.Close()
	exited := make(chan struct{})
	var waitErr error
	go func() { waitErr = cmd.Wait(); close(exited) }()
	t0 := time.Now()
	st, _ := procStartTime(cmd.Process.Pid)
	started := make(chan error, 1)
	f := &follower{path: filepath.Join(v.dir, "out"), sink: frames, started: started, onListen: v.onListen}
	go f.run(exited)

	timer := time.NewTimer(d.cfg.BootTimeout)
	defer timer.Stop()
	kill := func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-exited
		f.wait()
	}
	select {
	case err := <-started:
		if err != nil {
			kill()
			return &guestError{msg: err.Error() + serialTail(v.dir)}
		}
		v.booted = time.Since(t0)
	case <-exited:
		f.wait()
		select {
		case err := <-started:
			if err != nil {
				return &guestError{msg: err.Error() + serialTail(v.dir)}
			}
			// Started and already ended: a quick command.
			v.booted = time.Since(t0)
			d.adopt(v, cmd.Process.Pid, st, hostPort, f, exited)
			return nil
		default:
		}
		q, _ := os.ReadFile(filepath.Join(v.dir, "qemu.log"))
		return fmt.Errorf("QEMU exited before the command started (%v): %s%s", waitErr, strings.TrimSpace(string(q)), serialTail(v.dir))
	case <-timer.C:
		kill()
		return fmt.Errorf("the guest did not start the command within %s%s", d.cfg.BootTimeout, serialTail(v.dir))
	case <-ctx.Done():
		kill()
		return ctx.Err()
	}
	d.adopt(v, cmd.Process.Pid, st, hostPort, f, exited)
	return nil
}

// serialTail is the end of the guest's serial console, for errors.
func serialTail(dir string) string {
	b, err := os.ReadFile(filepath.Join(dir, "serial.log"))
	if err != nil || len(b) == 0 {
		return " (the serial console is empty)"
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > 10 {
		lines = lines[len(lines)-10:]
	}
	return "; serial console: " + strings.Join(lines, " | ")
}

// adopt records a running (or just ended) QEMU as v's and delivers the
// rest of its output in the background.
func (d *Driver) adopt(v *vm, pid int, st uint64, hostPort int, f *follower, exited <-chan struct{}) {
	v.pid, v.startTime, v.hostPort = pid, st, hostPort
	go func() {
		// The guest powers off after its exit record; should QEMU linger
		// (a reset instead of an exit), end it.
		select {
		case <-exited:
		case <-f.exitRecorded():
			select {
			case <-exited:
			case <-time.After(exitLinger):
				d.log.Warn("microvm.lingering_vm_killed", "id", v.id)
				v.killQEMU()
			}
		}
		<-exited
		f.wait()
		v.closeControl()
		if v.check != nil {
			v.check.close()
		}
		v.Finish(d.exitResult(v, f))
	}()
}

func (d *Driver) exitResult(v *vm, f *follower) *driver.ExitResult {
	if e, ok := f.exitRecord(); ok {
		return &driver.ExitResult{ExitCode: e.Code, Signal: e.Signal, OOMKilled: e.OOM}
	}
	if v.Killed.Load() {
		return &driver.ExitResult{ExitCode: -1, Signal: "killed"}
	}
	if msg := f.guestErr(); msg != "" {
		return &driver.ExitResult{ExitCode: -1, Err: errors.New(msg)}
	}
	return &driver.ExitResult{ExitCode: -1, Err: fmt.Errorf("the VM ended without reporting an exit%s", serialTail(v.dir))}
}

// Wait blocks until the VM has ended and its output is delivered.
func (d *Driver) Wait(ctx context.Context, id string) (*driver.ExitResult, error) {
	return driver.WaitFor(ctx, &d.mu, d.vms, id)
}

// Stop asks the guest's init to send SIGTERM to the command's process group
// (over the control port), waits up to grace for the VM to end, then kills
// QEMU.
func (d *Driver) Stop(ctx context.Context, id string, grace time.Duration) error {
	return driver.StopFor(ctx, &d.mu, d.vms, id, grace, func(v *vm) {
		if err := v.control(guest.ControlTerm); err != nil {
			d.log.Warn("microvm.sigterm_failed", "id", id, "err", err)
		}
	}, (*vm).killQEMU)
}

// exitLinger is how long QEMU may run on after the guest's exit record.
const exitLinger = 3 * time.Second

// kill ends the VM as a SIGKILL of the instance would: Wait reports
// "killed" unless the guest had already reported an exit.
func (v *vm) kill() {
	v.Killed.Store(true)
	v.killQEMU()
}

func (v *vm) killQEMU() {
	if v.pid > 0 {
		if v.recovered {
			_ = syscall.Kill(v.pid, syscall.SIGKILL)
		} else {
			_ = syscall.Kill(-v.pid, syscall.SIGKILL)
		}
	}
}

// control sends one control line to the guest over the control socket,
// which it keeps open: QEMU may drop what a client wrote just before it
// hung up.
func (v *vm) control(line string) error {
	v.ctlMu.Lock()
	defer v.ctlMu.Unlock()
	var err error
	for range 2 {
		if v.ctl == nil {
			if v.ctl, err = net.DialTimeout("unix", ctlPath(v.dir), 2*time.Second); err != nil {
				v.ctl = nil
				return err
			}
		}
		_ = v.ctl.SetWriteDeadline(time.Now().Add(2 * time.Second))
		if _, err = io.WriteString(v.ctl, line+"\n"); err == nil {
			return nil
		}
		v.ctl.Close()
		v.ctl = nil
	}
	return err
}

func (v *vm) closeControl() {
	v.ctlMu.Lock()
	defer v.ctlMu.Unlock()
	if v.ctl != nil {
		v.ctl.Close()
		v.ctl = nil
	}
}

// Destroy kills the VM and removes its files. Unknown ids are not an error.
func (d *Driver) Destroy(ctx context.Context, id string) error {
	if err := checkID(id); err != nil {
		return err
	}
	v, _ := driver.Find(&d.mu, d.vms, id)
	if v != nil {
		v.kill()
		if err := driver.Retire(ctx, &d.mu, d.vms, id, v, nil); err != nil {
			return err
		}
	}
	unlinkCtl(d.instanceDir(id))
	if err := os.RemoveAll(d.instanceDir(id)); err != nil {
		return fmt.Errorf("microvm driver: remove the files of %s: %w", id, err)
	}
	return nil
}

// Recover re-attaches to the QEMU of an instance started by an earlier
// executor, discarding its output; see RecoverOutput.
func (d *Driver) Recover(ctx context.Context, h *driver.Handle) error {
	return d.RecoverOutput(ctx, h, nil, nil)
}

// RecoverOutput re-attaches to the QEMU of an instance started by an
// earlier executor: its pid must still run with the start time in the
// handle and be QEMU booting that instance's dir, else ENotFound. Output
// (to stdout and stderr) and the exit record are read from the output file
// from its current end on.
func (d *Driver) RecoverOutput(ctx context.Context, h *driver.Handle, stdout, stderr io.Writer) error {
	if err := driver.CheckHandle(h, Name); err != nil {
		return err
	}
	var data handleData
	if err := json.Unmarshal(h.Data, &data); err != nil || data.Dir == "" {
		return api.Errorf(api.EInvalid, "microvm driver handle of %s names no instance dir", h.ID)
	}
	if data.Dir != d.instanceDir(h.ID) {
		return api.Errorf(api.EInvalid, "microvm driver handle of %s names dir %s, not this driver's", h.ID, data.Dir)
	}
	st, err := procStartTime(h.PID)
	if err != nil || h.PID <= 0 || st != h.StartTime {
		return api.Errorf(api.ENotFound, "the VM of instance %s is gone", h.ID)
	}
	cmdline, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", h.PID))
	if !strings.Contains(string(cmdline), "file="+filepath.Join(data.Dir, "disk.")) {
		return api.Errorf(api.ENotFound, "pid %d is not the VM of instance %s", h.PID, h.ID)
	}
	v := &vm{id: h.ID, dir: data.Dir, recovered: true}
	if data.CheckPort > 0 {
		v.check = &checkPort{host: d.cfg.AdvertiseHost, port: data.CheckPort, forward: data.HostPort}
	}
	if !driver.Add(&d.mu, d.vms, h.ID, v, nil) {
		return nil
	}
	f := &follower{path: filepath.Join(v.dir, "out"), sink: &frameSink{stdout: stdout, stderr: stderr}, onListen: v.onListen}
	if fi, err := os.Stat(f.path); err == nil {
		f.offset = fi.Size() // a partial frame there is skipped: output from now on
		f.resync = true
	}
	exited := make(chan struct{})
	go func() {
		for {
			if s, err := procStartTime(h.PID); err != nil || s != h.StartTime {
				close(exited)
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
	}()
	go f.run(exited)
	d.adopt(v, h.PID, h.StartTime, data.HostPort, f, exited)
	return nil
}

// procStartTime is driver.StartTime.
func procStartTime(pid int) (uint64, error) { return driver.StartTime(pid) }

// Sweep kills the QEMU of every instance dir in StateDir whose instance is
// neither in known nor run by this driver, and removes the dir: VMs an
// executor started and no longer knows (docs/reliability.md rule 4), and
// the work dirs of image builds an earlier executor did not finish. It
// returns how many instances it removed.
func (d *Driver) Sweep(ctx context.Context, known []string) (int, error) {
	d.sweepBuilds()
	ents, err := os.ReadDir(filepath.Join(d.cfg.StateDir, "instances"))
	if err != nil {
		return 0, fmt.Errorf("microvm driver: %w", err)
	}
	removed := 0
	for _, e := range ents {
		id := e.Name()
		_, mine := driver.Find(&d.mu, d.vms, id)
		if mine || !e.IsDir() || checkID(id) != nil || slices.Contains(known, id) {
			continue
		}
		dir := d.instanceDir(id)
		for _, pid := range qemuOf(filepath.Join(dir, "disk.")) {
			_ = syscall.Kill(pid, syscall.SIGKILL)
			for i := 0; i < 100 && ctx.Err() == nil; i++ {
				if _, err := procStartTime(pid); err != nil {
					break
				}
				time.Sleep(50 * time.Millisecond)
			}
		}
		unlinkCtl(dir)
		if err := os.RemoveAll(dir); err != nil {
			return removed, fmt.Errorf("microvm driver: remove orphan %s: %w", id, err)
		}
		d.log.Info("microvm.orphan_removed", "instance", id)
		removed++
	}
	return removed, nil
}

// qemuOf lists the processes whose command line names a file starting with
// disk (<instance dir>/disk.: the QEMU of one instance dir, raw or qcow2).
func qemuOf(disk string) []int {
	ents, _ := os.ReadDir("/proc")
	var out []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		if err == nil && strings.Contains(string(cmdline), "file="+disk) {
			out = append(out, pid)
		}
	}
	return out
}

// Usage reports the CPU time and resident memory of the instance's QEMU
// process: what the VM costs the node (guest RAM it touched included).
func (d *Driver) Usage(ctx context.Context, id string) (*driver.Usage, error) {
	v, err := d.get(id)
	if err != nil {
		return nil, err
	}
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", v.pid))
	if err != nil {
		return nil, api.Errorf(api.ENotFound, "the VM of instance %s is not running", id)
	}
	s := string(data)
	i := strings.LastIndexByte(s, ')')
	f := strings.Fields(s[i+1:])
	if i < 0 || len(f) < 22 {
		return nil, api.Errorf(api.EInternal, "malformed /proc stat of %d", v.pid)
	}
	// Fields 14 and 15 (utime, stime, in clock ticks of 1/100 s) and 24 (rss
	// in pages).
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	rss, _ := strconv.ParseInt(f[21], 10, 64)
	return &driver.Usage{CPUTime: time.Duration(ut+st) * 10 * time.Millisecond, MemoryBytes: rss * int64(os.Getpagesize())}, nil
}

// onListen opens or closes the instance's check port as the guest reports
// its port listening or not.
func (v *vm) onListen(listening bool) {
	if v.check != nil {
		v.check.set(listening)
	}
}

// freePort asks the kernel for a free TCP port on the advertise address.
func (d *Driver) freePort() (int, error) {
	l, err := net.Listen("tcp", net.JoinHostPort(d.cfg.AdvertiseHost, "0"))
	if err != nil {
		return 0, api.Errorf(api.EUnavailable, "no free port on %s: %v", d.cfg.AdvertiseHost, err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
