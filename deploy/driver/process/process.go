package process

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/strata-paas/strata/api"
	"github.com/strata-paas/strata/deploy/driver"
	"github.com/strata-paas/strata/deploy/driver/process/isolate"
	"github.com/strata-paas/strata/deploy/driver/process/netns"
)

// Name is the driver name recorded in handles.
const Name = "process"

// ErrExitUnknown is the ExitResult.Err of a recovered instance: it is not our
// child, so its exit status cannot be learned.
var ErrExitUnknown = errors.New("exit status unknown: the instance was recovered after an executor restart")

var (
	_ driver.Driver          = (*Driver)(nil)
	_ driver.Fingerprinter   = (*Driver)(nil)
	_ driver.OutputRecoverer = (*Driver)(nil)
	_ driver.PortAllocator   = (*Driver)(nil)
)

// Config configures the process driver.
type Config struct {
	// StateDir holds one directory per instance with its output files.
	// Default: <os.TempDir()>/strata-process.
	StateDir string
	// PollInterval is how often output files and recovered processes are
	// polled. Default 25ms.
	PollInterval time.Duration
	// MaxLogFile is the size past which a fully delivered output file is cut
	// back to empty. Default 4 MiB.
	MaxLogFile int64
	// Confine says whether instances are isolated (see the package
	// documentation). Default ConfineAuto.
	Confine Confinement
	// UIDBase is the first uid (and gid) of instance users; an instance runs
	// as UIDBase + a hash of its id modulo 1,000,000. Default 2,000,000.
	UIDBase int
	// CgroupParent is the cgroup, below each hierarchy's root, under which
	// each driver (one per StateDir) keeps one cgroup per instance:
	// <CgroupParent>/<hash of StateDir>/<id>. Default "strata".
	CgroupParent string
	// PidsMax caps the tasks of one instance where the pids controller is
	// available. Default 4096.
	PidsMax int
	// InstanceRange is the IPv4 range isolated instances' addresses come
	// from, a /30 each. Default netns.DefaultRange (10.213.0.0/16).
	InstanceRange netip.Prefix
	// HostPorts are the node's listeners isolated instances may connect to
	// (the router's), at their gateway address and that port; nothing else
	// on the node is reachable from an instance.
	HostPorts []netip.AddrPort
	// HostNetwork lets isolated instances share the node's network when
	// they cannot get networks of their own (no iptables or ip command):
	// they then reach the node's services and each other, and the
	// fingerprint says process-unconfined. Without it New refuses.
	HostNetwork bool
	// AdvertiseHost is where routers reach this node (the executor's
	// --advertise). When it is not loopback, an isolated instance's port is
	// also published on a free port of the node, so routers on other
	// machines reach it: the handle's endpoint is then AdvertiseHost and
	// that port, health-checked at the instance's own address.
	AdvertiseHost string
	Logger        *slog.Logger
}

// ListenPort is the port ($PORT) every isolated instance with a network of
// its own listens on there.
const ListenPort = 8080

// Confinement says whether the driver isolates instances.
type Confinement int

const (
	// ConfineAuto isolates instances when the driver runs as root on Linux
	// and the kernel allows it, and runs plain processes otherwise.
	ConfineAuto Confinement = iota
	// ConfineNever always runs plain processes.
	ConfineNever
	// ConfineAlways isolates instances; New fails when it cannot.
	ConfineAlways
)

// Driver runs instances as process groups on the host. It is safe for
// concurrent use.
type Driver struct {
	cfg Config
	log *slog.Logger

	cgroups *isolate.Cgroups // non-nil when instances are isolated
	net     *netns.Net       // non-nil when isolated instances have networks of their own

	mu    sync.Mutex
	procs map[string]*proc
}

type proc struct {
	id        string
	pid, pgid int
	startTime uint64
	recovered bool
	cg        *isolate.Cgroup // non-nil for an isolated instance, whose pid is its init
	link      *netns.Link     // the instance's network, when it has one
	result    string          // the file the init writes the exit status to

	// ready is closed once pid, pgid, startTime and cg are set: Start
	// publishes the proc before it has started, so readers other than
	// Start's caller (Usage, from the heartbeat) wait for it.
	ready chan struct{}
	// Lifecycle: Exited when the main process has exited, Done when all
	// output is delivered too; Stopping once Stop has sent SIGTERM
	// (leftovers get the grace too), Killed once it escalated to SIGKILL.
	driver.Lifecycle
}

// handleData is the driver-specific part of a Handle.
type handleData struct {
	StateDir string          `json:"state_dir"`
	Cgroup   *isolate.Cgroup `json:"cgroup,omitempty"` // set for isolated instances
	Net      *netns.Link     `json:"net,omitempty"`    // set for isolated instances with a network of their own
}

// New returns a process driver.
func New(cfg Config) (*Driver, error) {
	if cfg.StateDir == "" {
		cfg.StateDir = filepath.Join(os.TempDir(), "strata-process")
	}
	if cfg.PollInterval <= 0 {
		cfg.PollInterval = 25 * time.Millisecond
	}
	if cfg.MaxLogFile <= 0 {
		cfg.MaxLogFile = 4 << 20
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.UIDBase <= 0 {
		cfg.UIDBase = 2_000_000
	}
	if cfg.CgroupParent == "" {
		cfg.CgroupParent = "strata"
	}
	if cfg.PidsMax <= 0 {
		cfg.PidsMax = 4096
	}
	if err := os.MkdirAll(cfg.StateDir, 0o700); err != nil {
		return nil, fmt.Errorf("process driver: create state dir: %w", err)
	}
	if abs, err := filepath.Abs(cfg.StateDir); err == nil {
		cfg.StateDir = abs
	}
	// Several executors may share a host: each sweeps only its own cgroups.
	sum := sha256.Sum256([]byte(cfg.StateDir))
	cfg.CgroupParent = filepath.Join(cfg.CgroupParent, hex.EncodeToString(sum[:6]))
	d := &Driver{cfg: cfg, log: cfg.Logger, procs: map[string]*proc{}}
	if cfg.Confine == ConfineNever {
		d.log.Info("process.unconfined", "reason", "isolation is disabled by configuration")
		return d, nil
	}
	if err := d.enableIsolation(); err != nil {
		var ne netError
		if errors.As(err, &ne) {
			return nil, api.Errorf(api.EUnavailable, "process driver cannot keep instances apart: %v — run it where iproute2 and iptables are installed, or allow instances on the node's network with --process-host-network (they can then reach the node's services and each other)", err)
		}
		if cfg.Confine == ConfineAlways {
			return nil, api.Errorf(api.EUnavailable, "process driver cannot isolate instances: %v — run the executor as root on Linux with a cgroup memory controller", err)
		}
		d.log.Warn("process.unconfined", "reason", err.Error(),
			"effect", "instances run as plain process groups of the executor's user, without memory limits")
		return d, nil
	}
	swept := d.cgroups.Sweep(cfg.CgroupParent)
	d.log.Info("process.isolated", "cgroup_version", d.cgroups.Version(), "cgroup_parent", cfg.CgroupParent, "stale_cgroups_removed", swept)
	if d.net == nil {
		d.log.Warn("process.host_network", "effect", "isolated instances share the node's network: they reach its services and each other (allowed by --process-host-network)")
	} else {
		d.log.Info("process.instance_network", "range", d.net.Range().String())
	}
	return d, nil
}

// publishes says whether instances are published for routers at advertise:
// not when routers reach the node on loopback (the microcloud).
func publishes(advertise string) bool {
	if advertise == "" || advertise == "localhost" {
		return false
	}
	a, err := netip.ParseAddr(advertise)
	return err != nil || !a.IsLoopback()
}

// netSearchPath is netns.Config.SearchPath; tests point it at a directory
// without the commands.
var netSearchPath string

// netError is why isolated instances cannot have networks of their own.
type netError struct{ err error }

func (e netError) Error() string { return e.err.Error() }
func (e netError) Unwrap() error { return e.err }

// enableIsolation turns isolation on if a probe instance runs isolated.
func (d *Driver) enableIsolation() error {
	if os.Geteuid() != 0 {
		return errors.New("the executor does not run as root")
	}
	cgs, err := isolate.DetectCgroups()
	if err != nil {
		return err
	}
	n, err := netns.New(context.Background(), netns.Config{Range: d.cfg.InstanceRange, HostPorts: d.cfg.HostPorts,
		Publish: publishes(d.cfg.AdvertiseHost), SearchPath: netSearchPath, Logger: d.log})
	if err != nil && !d.cfg.HostNetwork {
		return netError{err}
	}
	if err != nil {
		d.log.Warn("process.no_instance_network", "reason", err.Error())
	}
	d.cgroups, d.net = cgs, n
	err = d.probe()
	if err != nil && n != nil {
		// Does isolation work without a network of its own? Then the
		// network is what fails: say so rather than fall back to
		// unconfined instances.
		d.net = nil
		if d.probe() == nil {
			if d.cfg.HostNetwork {
				d.log.Warn("process.no_instance_network", "reason", err.Error())
				return nil
			}
			d.cgroups = nil
			return netError{fmt.Errorf("a probe instance could not get a network of its own: %w", err)}
		}
	}
	if err != nil {
		d.cgroups, d.net = nil, nil
		return fmt.Errorf("a probe instance failed: %w", err)
	}
	return nil
}

// probe runs "exit 0" isolated in a directory only root can search.
func (d *Driver) probe() error {
	dir, err := os.MkdirTemp(d.cfg.StateDir, "probe-dir-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	id := fmt.Sprintf("probe-%d", os.Getpid())
	defer d.Destroy(context.Background(), id)
	var out lockedBuffer
	if _, err := d.Start(ctx, &driver.Spec{ID: id, Dir: dir, Command: "exit 0", MemoryMB: 64, Stdout: &out, Stderr: &out}); err != nil {
		return err
	}
	res, err := d.Wait(ctx, id)
	if err != nil {
		return err
	}
	if res.ExitCode != 0 {
		return fmt.Errorf("exit %d %s: %s", res.ExitCode, res.Signal, strings.TrimSpace(out.String()))
	}
	return nil
}

// lockedBuffer is a small io.Writer safe for concurrent use.
type lockedBuffer struct {
	mu sync.Mutex
	b  []byte
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.b) < 4096 {
		b.b = append(b.b, p...)
	}
	return len(p), nil
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return string(b.b)
}

// Isolated reports whether instances run isolated.
func (d *Driver) Isolated() bool { return d.cgroups != nil }

// Fingerprint reports api.IsolationProcess when instances run isolated, each
// in a network of its own, and api.IsolationProcessUnconfined otherwise.
func (d *Driver) Fingerprint() driver.Fingerprint {
	iso := api.IsolationProcessUnconfined
	if d.Isolated() && d.net != nil {
		iso = api.IsolationProcess
	}
	return driver.Fingerprint{Driver: Name, Isolations: []api.Isolation{iso}}
}

// AllocatePort returns ListenPort when instances have networks of their own
// (the handle's endpoint is then the instance's address), else a free
// loopback port: the instance shares the node's network and listens on a
// port of the node, and the endpoint is the node itself.
func (d *Driver) AllocatePort(string) (int, error) {
	if d.Isolated() && d.net != nil {
		return ListenPort, nil
	}
	return driver.FreeLoopbackPort()
}

// UID is the uid (and gid) an isolated instance id runs as.
func (d *Driver) UID(id string) int {
	h := fnv.New32a()
	_, _ = h.Write([]byte(id))
	return d.cfg.UIDBase + int(h.Sum32()%1_000_000)
}

func checkID(id string) error {
	if id == "" || !filepath.IsLocal(id) || strings.ContainsAny(id, `/\`) {
		return api.Errorf(api.EInvalid, "instance id %q is not a plain name — use the instance GUID", id)
	}
	return nil
}

func (d *Driver) get(id string) (*proc, error) { return driver.Lookup(&d.mu, d.procs, id) }

// Start starts spec.Command in its own process group.
func (d *Driver) Start(ctx context.Context, spec *driver.Spec) (*driver.Handle, error) {
	if err := checkID(spec.ID); err != nil {
		return nil, err
	}
	if st, err := os.Stat(spec.Dir); err != nil || !st.IsDir() {
		return nil, api.Errorf(api.EInvalid, "instance dir %s does not exist", spec.Dir)
	}
	p := &proc{id: spec.ID, ready: make(chan struct{})}
	if err := driver.Claim(&d.mu, d.procs, spec.ID, p, nil); err != nil {
		return nil, err
	}

	h, err := d.start(p, spec)
	if err != nil {
		driver.Forget(&d.mu, d.procs, spec.ID, p, nil)
		_ = os.RemoveAll(d.stateDir(spec.ID))
		return nil, err
	}
	return h, nil
}

func (d *Driver) stateDir(id string) string { return filepath.Join(d.cfg.StateDir, id) }

func (d *Driver) start(p *proc, spec *driver.Spec) (*driver.Handle, error) {
	dir := d.stateDir(spec.ID)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("process driver: %w", err)
	}
	outW, outR, err := openLog(filepath.Join(dir, "stdout"))
	if err != nil {
		return nil, err
	}
	errW, errR, err := openLog(filepath.Join(dir, "stderr"))
	if err != nil {
		outW.Close()
		outR.Close()
		return nil, err
	}
	var cmd *exec.Cmd
	if d.Isolated() {
		cmd, err = d.startIsolated(p, spec, outW, errW)
	} else {
		cmd, err = startPlain(spec, outW, errW)
	}
	outW.Close()
	errW.Close()
	if err != nil {
		outR.Close()
		errR.Close()
		return nil, err
	}
	p.pid = cmd.Process.Pid
	p.pgid = p.pid
	p.startTime, _ = StartTime(p.pid)
	close(p.ready)

	var tails sync.WaitGroup
	tails.Add(2)
	go func() { defer tails.Done(); d.tail(outR, filepath.Join(dir, "stdout"), spec.Stdout, p.Exited()) }()
	go func() { defer tails.Done(); d.tail(errR, filepath.Join(dir, "stderr"), spec.Stderr, p.Exited()) }()
	go func() {
		werr := cmd.Wait()
		oom := d.reap(p)
		p.MarkExited()
		tails.Wait()
		res := p.exitResult(cmd.ProcessState, werr)
		res.OOMKilled = oom
		p.Finish(res)
	}()
	data, _ := json.Marshal(handleData{StateDir: dir, Cgroup: p.cg, Net: p.link})
	ep := driver.Endpoint{Port: spec.Port}
	switch {
	case p.link != nil && p.link.Published > 0:
		ep = driver.Endpoint{Host: d.cfg.AdvertiseHost, Port: p.link.Published, CheckHost: p.link.Addr.String(), CheckPort: spec.Port}
	case p.link != nil:
		ep.Host = p.link.Addr.String()
	}
	return &driver.Handle{
		Version: driver.HandleVersion, Driver: Name, ID: spec.ID,
		PID: p.pid, PGID: p.pgid, StartTime: p.startTime, Data: data,
		Endpoint: ep,
	}, nil
}

func startPlain(spec *driver.Spec, stdout, stderr *os.File) (*exec.Cmd, error) {
	env := spec.Env
	if env == nil {
		env = []string{} // never inherit the executor's environment
	}
	cmd := exec.Command("/bin/sh", "-c", spec.Command)
	cmd.Dir = spec.Dir
	cmd.Env = env
	cmd.Stdin = nil
	cmd.Stdout = stdout
	cmd.Stderr = stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return nil, api.Errorf(api.EInvalid, "cannot start instance %s: %v", spec.ID, err)
	}
	return cmd, nil
}

// startIsolated starts spec under an init in its own namespaces and cgroup,
// as the instance's user, with only spec.Dir and spec.Writable writable.
func (d *Driver) startIsolated(p *proc, spec *driver.Spec, stdout, stderr *os.File) (*exec.Cmd, error) {
	fail := func(format string, args ...any) (*exec.Cmd, error) {
		return nil, api.Errorf(api.EInvalid, "cannot start instance %s: "+format, append([]any{spec.ID}, args...)...)
	}
	var writable []string
	for _, w := range append([]string{spec.Dir}, spec.Writable...) {
		if err := os.MkdirAll(w, 0o700); err != nil {
			return fail("%v", err)
		}
		real, err := filepath.EvalSymlinks(w)
		if err != nil {
			return fail("%v", err)
		}
		if real, err = filepath.Abs(real); err != nil {
			return fail("%v", err)
		}
		writable = append(writable, real)
	}
	uid := d.UID(spec.ID)
	if err := isolate.PrepareDirs(writable, uid, uid); err != nil {
		return fail("%v", err)
	}
	p.result = filepath.Join(d.stateDir(spec.ID), "result")
	result, err := os.OpenFile(p.result, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fail("%v", err)
	}
	defer result.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cg, err := d.cgroups.Create(ctx, d.cfg.CgroupParent, spec.ID, isolate.Limits{MemoryMB: spec.MemoryMB, PidsMax: d.cfg.PidsMax})
	if err != nil {
		return fail("%v", err)
	}
	env := spec.Env
	if env == nil {
		env = []string{}
	}
	host := spec.ID
	if len(host) > 63 {
		host = host[:63]
	}
	var attach isolate.Attach
	var link *netns.Link
	if d.net != nil {
		attach = func(ctx context.Context, pid int) (*isolate.Network, error) {
			l, in, err := d.net.Attach(ctx, pid, spec.Port)
			if err != nil {
				return nil, err
			}
			link = l
			return &isolate.Network{IPTool: d.net.IPTool(), Link: in.Link, Addr: in.Addr, Gateway: in.Gateway}, nil
		}
	}
	cmd, err := isolate.StartNetwork(ctx, &isolate.InitConfig{
		Hostname: host, Dir: writable[0], Writable: writable[1:],
		Argv: []string{"/bin/sh", "-c", spec.Command}, Env: env, UID: uid, GID: uid, TmpMB: spec.MemoryMB,
	}, isolate.Files{Stdout: stdout, Stderr: stderr, Result: result}, cg, attach)
	if err != nil {
		_ = cg.Destroy(context.Background())
		d.net.Release(context.Background(), link)
		return fail("%v", err)
	}
	p.cg, p.link = cg, link
	return cmd, nil
}

// reap runs once the instance's main process has exited and reports whether
// the kernel OOM-killed any of the instance's processes.
//
// An isolated instance's main process is its init: when it exits the kernel
// kills the rest of its PID namespace, and the init itself gave leftovers
// their grace during a Stop. Its cgroup is then emptied and removed.
func (d *Driver) reap(p *proc) (oom bool) {
	if p.cg == nil {
		d.reapGroup(p)
		return false
	}
	oom = p.cg.OOMKills() > 0
	if err := p.cg.Destroy(context.Background()); err != nil {
		d.log.Warn("process.cgroup_cleanup_failed", "id", p.id, "err", err)
	}
	if p.link != nil && d.net != nil {
		d.net.Release(context.Background(), p.link)
	}
	return oom
}

// reapGroup runs once the instance's main process has exited. The instance is
// its process group: nothing it spawned outlives it. During a Stop the rest of
// the group keeps its grace (a shell's children may still be shutting down
// cleanly) until the group is empty or Stop escalates; otherwise leftovers are
// killed at once.
func (d *Driver) reapGroup(p *proc) {
	for p.Stopping.Load() && !p.Killed.Load() && syscall.Kill(-p.pgid, 0) == nil {
		time.Sleep(d.cfg.PollInterval)
	}
	_ = syscall.Kill(-p.pgid, syscall.SIGKILL)
}

func openLog(path string) (w, r *os.File, err error) {
	w, err = os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC|os.O_APPEND, 0o600)
	if err != nil {
		return nil, nil, fmt.Errorf("process driver: %w", err)
	}
	r, err = os.Open(path)
	if err != nil {
		w.Close()
		return nil, nil, fmt.Errorf("process driver: %w", err)
	}
	return w, r, nil
}

// exitResult says how the instance ended: from the result file its init
// wrote when isolated, else from the main process's wait status.
func (p *proc) exitResult(ps *os.ProcessState, werr error) *driver.ExitResult {
	if p.cg != nil {
		if r, ok := isolate.ReadResult(p.result); ok {
			return &driver.ExitResult{ExitCode: r.ExitCode, Signal: r.Signal}
		}
	}
	if ps == nil {
		return &driver.ExitResult{ExitCode: -1, Err: werr}
	}
	if ws, ok := ps.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return &driver.ExitResult{ExitCode: -1, Signal: ws.Signal().String()}
	}
	return &driver.ExitResult{ExitCode: ps.ExitCode()}
}

// tail copies what the instance appends to path into w until exited is closed
// and everything written has been copied.
func (d *Driver) tail(f *os.File, path string, w io.Writer, exited <-chan struct{}) {
	defer f.Close()
	if w == nil {
		w = io.Discard
	}
	buf := make([]byte, 32<<10)
	var off int64
	if o, err := f.Seek(0, io.SeekCurrent); err == nil {
		off = o
	}
	t := time.NewTimer(d.cfg.PollInterval)
	defer t.Stop()
	final := false
	for {
		n, err := f.Read(buf)
		if n > 0 {
			off += int64(n)
			_, _ = w.Write(buf[:n])
			continue
		}
		if err != nil && err != io.EOF {
			d.log.Warn("process.tail_failed", "path", path, "err", err)
			return
		}
		if final {
			return
		}
		if off > d.cfg.MaxLogFile {
			// Everything so far is delivered: cut the file back. A write
			// landing between the read above and the truncate is lost.
			if st, err := os.Stat(path); err == nil && st.Size() == off {
				if os.Truncate(path, 0) == nil {
					off = 0
					_, _ = f.Seek(0, io.SeekStart)
				}
			}
		}
		t.Reset(d.cfg.PollInterval)
		select {
		case <-exited:
			final = true // one more pass to drain what is left
		case <-t.C:
		}
	}
}

// Wait blocks until the instance has exited and its output is delivered.
func (d *Driver) Wait(ctx context.Context, id string) (*driver.ExitResult, error) {
	return driver.WaitFor(ctx, &d.mu, d.procs, id)
}

// Stop sends SIGTERM to the instance's process group, then SIGKILL after grace.
func (d *Driver) Stop(ctx context.Context, id string, grace time.Duration) error {
	return driver.StopFor(ctx, &d.mu, d.procs, id, grace,
		func(p *proc) { p.signal(syscall.SIGTERM) },
		func(p *proc) { p.signal(syscall.SIGKILL) })
}

// signal sends sig to p's process group unless p is a recovered process whose
// PID no longer belongs to it.
func (p *proc) signal(sig syscall.Signal) {
	if p.recovered {
		if st, err := StartTime(p.pid); err != nil || st != p.startTime {
			return
		}
	}
	if p.cg != nil {
		_ = syscall.Kill(p.pid, sig) // the init forwards it to the whole namespace
		return
	}
	_ = syscall.Kill(-p.pgid, sig)
}

// Destroy kills what is left of the instance and removes its state directory.
func (d *Driver) Destroy(ctx context.Context, id string) error {
	if err := checkID(id); err != nil {
		return err
	}
	p, _ := driver.Find(&d.mu, d.procs, id)
	if p != nil {
		select {
		case <-p.Exited():
		default:
			p.Killed.Store(true)
			p.signal(syscall.SIGKILL)
		}
		if err := driver.Retire(ctx, &d.mu, d.procs, id, p, nil); err != nil {
			return err
		}
	}
	if p == nil && d.Isolated() {
		// An instance that was never recovered may have left its cgroup.
		if cg := d.cgroups.Lookup(d.cfg.CgroupParent, id); cg != nil {
			if err := cg.Destroy(ctx); err != nil {
				return api.Errorf(api.ETimeout, "instance %s: %v", id, err)
			}
		}
	}
	if err := os.RemoveAll(d.stateDir(id)); err != nil {
		return fmt.Errorf("process driver: remove state of %s: %w", id, err)
	}
	return nil
}

// Recover adopts a process started by an earlier executor; its output is
// discarded. Use RecoverOutput to keep it.
func (d *Driver) Recover(ctx context.Context, h *driver.Handle) error {
	return d.RecoverOutput(ctx, h, nil, nil)
}

// RecoverOutput adopts a process started by an earlier executor if its PID
// still runs with the same start time, and copies output it writes from now
// on to stdout and stderr. Wait then polls the PID (it is not our child) and
// reports ErrExitUnknown.
func (d *Driver) RecoverOutput(ctx context.Context, h *driver.Handle, stdout, stderr io.Writer) error {
	if err := driver.CheckHandle(h, Name); err != nil {
		return err
	}
	if h.PID <= 0 || h.PGID <= 0 {
		return api.Errorf(api.EInvalid, "not a process driver handle of version %d", driver.HandleVersion)
	}
	var data handleData
	if len(h.Data) > 0 {
		if err := json.Unmarshal(h.Data, &data); err != nil {
			return api.Errorf(api.EInvalid, "process driver handle of %s has unreadable data: %v", h.ID, err)
		}
	}
	if data.Cgroup != nil && len(data.Cgroup.Paths) == 0 {
		return api.Errorf(api.EInvalid, "process driver handle of %s names a cgroup without paths", h.ID)
	}
	if data.Net != nil && d.net == nil {
		return api.Errorf(api.EInvalid, "instance %s has a network of its own but this driver makes none — start the executor as it was (root, with iproute2 and iptables)", h.ID)
	}
	if st, err := StartTime(h.PID); err != nil || st != h.StartTime {
		return api.Errorf(api.ENotFound, "instance %s (pid %d) is no longer running", h.ID, h.PID)
	}
	if data.Net != nil {
		if err := d.net.Adopt(ctx, data.Net); err != nil {
			return api.Errorf(api.ENotFound, "instance %s: %v", h.ID, err)
		}
	}
	p := &proc{id: h.ID, pid: h.PID, pgid: h.PGID, startTime: h.StartTime, recovered: true,
		cg: data.Cgroup, link: data.Net, result: filepath.Join(d.stateDir(h.ID), "result"),
		ready: make(chan struct{})}
	close(p.ready)
	if !driver.Add(&d.mu, d.procs, h.ID, p, nil) {
		return nil
	}

	dir := d.stateDir(h.ID)
	var tails sync.WaitGroup
	for _, s := range []struct {
		name string
		w    io.Writer
	}{{"stdout", stdout}, {"stderr", stderr}} {
		path := filepath.Join(dir, s.name)
		f, err := os.Open(path)
		if err != nil {
			continue
		}
		_, _ = f.Seek(0, io.SeekEnd)
		tails.Add(1)
		go func() { defer tails.Done(); d.tail(f, path, s.w, p.Exited()) }()
	}
	go func() {
		t := time.NewTicker(4 * d.cfg.PollInterval)
		defer t.Stop()
		for range t.C {
			if st, err := StartTime(p.pid); err != nil || st != p.startTime {
				break
			}
		}
		oom := d.reap(p)
		p.MarkExited()
		tails.Wait()
		res := &driver.ExitResult{ExitCode: -1, Err: ErrExitUnknown, OOMKilled: oom}
		if r, ok := isolate.ReadResult(p.result); ok && p.cg != nil {
			res = &driver.ExitResult{ExitCode: r.ExitCode, Signal: r.Signal, OOMKilled: oom}
		}
		p.Finish(res)
	}()
	return nil
}

// StartTime is driver.StartTime (kept for the process driver's callers).
func StartTime(pid int) (uint64, error) { return driver.StartTime(pid) }

func parseStat(data []byte) (uint64, error) { return driver.ParseStat(data) }
