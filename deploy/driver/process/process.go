package process

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/strata-paas/strata/api"
	"github.com/strata-paas/strata/deploy/driver"
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
	Logger     *slog.Logger
}

// Driver runs instances as process groups on the host. It is safe for
// concurrent use.
type Driver struct {
	cfg Config
	log *slog.Logger

	mu    sync.Mutex
	procs map[string]*proc
}

type proc struct {
	id        string
	pid, pgid int
	startTime uint64
	recovered bool
	stopping  atomic.Bool // Stop has sent SIGTERM: leftovers get the grace too
	killed    atomic.Bool // Stop has escalated to SIGKILL

	exited chan struct{} // closed when the main process has exited
	done   chan struct{} // closed when exited and all output is delivered
	res    *driver.ExitResult
}

// handleData is the driver-specific part of a Handle.
type handleData struct {
	StateDir string `json:"state_dir"`
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
	if err := os.MkdirAll(cfg.StateDir, 0o700); err != nil {
		return nil, fmt.Errorf("process driver: create state dir: %w", err)
	}
	return &Driver{cfg: cfg, log: cfg.Logger, procs: map[string]*proc{}}, nil
}

// Fingerprint reports plain, unconfined processes.
func (d *Driver) Fingerprint() driver.Fingerprint {
	return driver.Fingerprint{Driver: Name, Isolations: []api.Isolation{api.IsolationProcessUnconfined}}
}

func checkID(id string) error {
	if id == "" || !filepath.IsLocal(id) || strings.ContainsAny(id, `/\`) {
		return api.Errorf(api.EInvalid, "instance id %q is not a plain name — use the instance GUID", id)
	}
	return nil
}

func (d *Driver) get(id string) (*proc, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	p, ok := d.procs[id]
	if !ok {
		return nil, api.Errorf(api.ENotFound, "no instance %s on this driver", id)
	}
	return p, nil
}

// Start starts spec.Command in its own process group.
func (d *Driver) Start(ctx context.Context, spec *driver.Spec) (*driver.Handle, error) {
	if err := checkID(spec.ID); err != nil {
		return nil, err
	}
	if st, err := os.Stat(spec.Dir); err != nil || !st.IsDir() {
		return nil, api.Errorf(api.EInvalid, "instance dir %s does not exist", spec.Dir)
	}
	d.mu.Lock()
	if _, ok := d.procs[spec.ID]; ok {
		d.mu.Unlock()
		return nil, api.Errorf(api.EConflict, "instance %s is already started — destroy it first", spec.ID)
	}
	p := &proc{id: spec.ID, exited: make(chan struct{}), done: make(chan struct{})}
	d.procs[spec.ID] = p
	d.mu.Unlock()

	h, err := d.start(p, spec)
	if err != nil {
		d.mu.Lock()
		delete(d.procs, spec.ID)
		d.mu.Unlock()
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
	env := spec.Env
	if env == nil {
		env = []string{} // never inherit the executor's environment
	}
	cmd := exec.Command("/bin/sh", "-c", spec.Command)
	cmd.Dir = spec.Dir
	cmd.Env = env
	cmd.Stdin = nil
	cmd.Stdout = outW
	cmd.Stderr = errW
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	err = cmd.Start()
	outW.Close()
	errW.Close()
	if err != nil {
		outR.Close()
		errR.Close()
		return nil, api.Errorf(api.EInvalid, "cannot start instance %s: %v", spec.ID, err)
	}
	p.pid = cmd.Process.Pid
	p.pgid = p.pid
	p.startTime, _ = StartTime(p.pid)

	var tails sync.WaitGroup
	tails.Add(2)
	go func() { defer tails.Done(); d.tail(outR, filepath.Join(dir, "stdout"), spec.Stdout, p.exited) }()
	go func() { defer tails.Done(); d.tail(errR, filepath.Join(dir, "stderr"), spec.Stderr, p.exited) }()
	go func() {
		werr := cmd.Wait()
		d.reapGroup(p)
		close(p.exited)
		tails.Wait()
		p.res = exitResult(cmd.ProcessState, werr)
		close(p.done)
	}()
	data, _ := json.Marshal(handleData{StateDir: dir})
	return &driver.Handle{
		Version: driver.HandleVersion, Driver: Name, ID: spec.ID,
		PID: p.pid, PGID: p.pgid, StartTime: p.startTime, Data: data,
	}, nil
}

// reapGroup runs once the instance's main process has exited. The instance is
// its process group: nothing it spawned outlives it. During a Stop the rest of
// the group keeps its grace (a shell's children may still be shutting down
// cleanly) until the group is empty or Stop escalates; otherwise leftovers are
// killed at once.
func (d *Driver) reapGroup(p *proc) {
	for p.stopping.Load() && !p.killed.Load() && syscall.Kill(-p.pgid, 0) == nil {
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

func exitResult(ps *os.ProcessState, werr error) *driver.ExitResult {
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
	p, err := d.get(id)
	if err != nil {
		return nil, err
	}
	select {
	case <-p.done:
		return p.res, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// Stop sends SIGTERM to the instance's process group, then SIGKILL after grace.
func (d *Driver) Stop(ctx context.Context, id string, grace time.Duration) error {
	p, err := d.get(id)
	if err != nil {
		return err
	}
	select {
	case <-p.exited:
		return nil
	default:
	}
	p.stopping.Store(true)
	p.signal(syscall.SIGTERM)
	t := time.NewTimer(grace)
	defer t.Stop()
	select {
	case <-p.exited:
		return nil
	case <-t.C:
	case <-ctx.Done():
	}
	p.killed.Store(true)
	p.signal(syscall.SIGKILL)
	select {
	case <-p.exited:
		return nil
	case <-ctx.Done():
		return api.Errorf(api.ETimeout, "instance %s did not exit after SIGKILL: %v", id, ctx.Err())
	}
}

// signal sends sig to p's process group unless p is a recovered process whose
// PID no longer belongs to it.
func (p *proc) signal(sig syscall.Signal) {
	if p.recovered {
		if st, err := StartTime(p.pid); err != nil || st != p.startTime {
			return
		}
	}
	_ = syscall.Kill(-p.pgid, sig)
}

// Destroy kills what is left of the instance and removes its state directory.
func (d *Driver) Destroy(ctx context.Context, id string) error {
	if err := checkID(id); err != nil {
		return err
	}
	d.mu.Lock()
	p := d.procs[id]
	d.mu.Unlock()
	if p != nil {
		select {
		case <-p.exited:
		default:
			p.killed.Store(true)
			p.signal(syscall.SIGKILL)
		}
		select {
		case <-p.done:
		case <-ctx.Done():
			return api.Errorf(api.ETimeout, "instance %s did not exit: %v", id, ctx.Err())
		}
		d.mu.Lock()
		if d.procs[id] == p {
			delete(d.procs, id)
		}
		d.mu.Unlock()
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
	if h == nil || h.Version != driver.HandleVersion || h.Driver != Name || h.PID <= 0 || h.PGID <= 0 {
		return api.Errorf(api.EInvalid, "not a process driver handle of version %d", driver.HandleVersion)
	}
	if err := checkID(h.ID); err != nil {
		return err
	}
	if st, err := StartTime(h.PID); err != nil || st != h.StartTime {
		return api.Errorf(api.ENotFound, "instance %s (pid %d) is no longer running", h.ID, h.PID)
	}
	d.mu.Lock()
	if _, ok := d.procs[h.ID]; ok {
		d.mu.Unlock()
		return nil
	}
	p := &proc{id: h.ID, pid: h.PID, pgid: h.PGID, startTime: h.StartTime, recovered: true,
		exited: make(chan struct{}), done: make(chan struct{})}
	d.procs[h.ID] = p
	d.mu.Unlock()

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
		go func() { defer tails.Done(); d.tail(f, path, s.w, p.exited) }()
	}
	go func() {
		t := time.NewTicker(4 * d.cfg.PollInterval)
		defer t.Stop()
		for range t.C {
			if st, err := StartTime(p.pid); err != nil || st != p.startTime {
				break
			}
		}
		d.reapGroup(p)
		close(p.exited)
		tails.Wait()
		p.res = &driver.ExitResult{ExitCode: -1, Err: ErrExitUnknown}
		close(p.done)
	}()
	return nil
}

// StartTime returns the start time (field 22 of /proc/<pid>/stat, in clock
// ticks since boot) of a live process. A zombie or missing process is an
// ENotFound *api.Error.
func StartTime(pid int) (uint64, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, api.Errorf(api.ENotFound, "no process %d", pid)
	}
	return parseStat(data)
}

// parseStat extracts the start time from a /proc/<pid>/stat line. The command
// name (field 2) may contain spaces and parentheses, so fields are counted
// from the last ')'.
func parseStat(data []byte) (uint64, error) {
	s := string(data)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, api.Errorf(api.EInvalid, "malformed /proc stat")
	}
	f := strings.Fields(s[i+1:])
	// f[0] is field 3 (state); field 22 is f[19].
	if len(f) < 20 {
		return 0, api.Errorf(api.EInvalid, "malformed /proc stat")
	}
	if f[0] == "Z" || f[0] == "X" {
		return 0, api.Errorf(api.ENotFound, "process is a zombie")
	}
	var v uint64
	for _, c := range f[19] {
		if c < '0' || c > '9' {
			return 0, api.Errorf(api.EInvalid, "malformed /proc stat start time")
		}
		v = v*10 + uint64(c-'0')
	}
	return v, nil
}
