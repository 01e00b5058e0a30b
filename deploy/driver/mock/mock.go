package mock

import (
	"context"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/strata-paas/strata/api"
	"github.com/strata-paas/strata/deploy/driver"
)

// Name is the driver name recorded in handles.
const Name = "mock"

var (
	_ driver.Driver        = (*Driver)(nil)
	_ driver.Fingerprinter = (*Driver)(nil)
	_ driver.PortAllocator = (*Driver)(nil)
)

// Behavior is what a mock instance does.
type Behavior struct {
	FailStart  error         // Start returns this error
	Exit       bool          // the instance exits by itself with ExitCode after ExitAfter
	ExitCode   int           //
	ExitAfter  time.Duration //
	IgnoreTerm bool          // Stop must escalate to SIGKILL
	Stdout     []string      // lines written to Spec.Stdout at start
	Stderr     []string      // lines written to Spec.Stderr at start
}

// ParseCommand turns a mock command into a Behavior. Only the last line of
// cmd is read, so an executor may prepend shell setup lines. Commands:
//
//	run | "" | forever   print "ready", run until stopped; SIGTERM makes it exit 0
//	ignore-term          print "ready", run until SIGKILL
//	exit CODE [DURATION] exit with CODE after DURATION (default at once)
//	fail MESSAGE…        Start fails with EInvalid MESSAGE
//	print VAR            print $VAR and the working dir on stdout, "stderr" on stderr, exit 0
func ParseCommand(cmd string, spec *driver.Spec) (Behavior, error) {
	cmd = strings.TrimRight(cmd, "\n")
	if i := strings.LastIndexByte(cmd, '\n'); i >= 0 {
		cmd = cmd[i+1:]
	}
	f := strings.Fields(cmd)
	if len(f) == 0 {
		return Behavior{Stdout: []string{"ready"}}, nil
	}
	switch f[0] {
	case "run", "forever":
		return Behavior{Stdout: []string{"ready"}}, nil
	case "ignore-term":
		return Behavior{IgnoreTerm: true, Stdout: []string{"ready"}}, nil
	case "exit":
		if len(f) < 2 || len(f) > 3 {
			return Behavior{}, fmt.Errorf("mock: usage: exit CODE [DURATION]")
		}
		code, err := strconv.Atoi(f[1])
		if err != nil {
			return Behavior{}, fmt.Errorf("mock: exit code: %w", err)
		}
		b := Behavior{Exit: true, ExitCode: code}
		if len(f) == 3 {
			if b.ExitAfter, err = time.ParseDuration(f[2]); err != nil {
				return Behavior{}, fmt.Errorf("mock: exit delay: %w", err)
			}
		}
		return b, nil
	case "fail":
		return Behavior{FailStart: api.Errorf(api.EInvalid, "%s", strings.Join(f[1:], " "))}, nil
	case "print":
		if len(f) != 2 {
			return Behavior{}, fmt.Errorf("mock: usage: print VAR")
		}
		val := ""
		for _, kv := range spec.Env {
			if k, v, ok := strings.Cut(kv, "="); ok && k == f[1] {
				val = v
			}
		}
		return Behavior{Exit: true, Stdout: []string{val, spec.Dir}, Stderr: []string{"stderr"}}, nil
	}
	return Behavior{}, fmt.Errorf("mock: unknown command %q", f[0])
}

// Config configures a mock driver.
type Config struct {
	// Script overrides ParseCommand when set.
	Script func(spec *driver.Spec) (Behavior, error)
	// Name is the driver name in fingerprints and handles; default Name.
	// Executors with several mock drivers give each its own.
	Name string
	// Isolations are what the fingerprint offers; default
	// api.IsolationProcessUnconfined, like the unconfined process driver.
	Isolations []api.Isolation
}

// Driver is the mock driver. It is safe for concurrent use.
type Driver struct {
	cfg Config

	mu     sync.Mutex
	insts  map[string]*inst
	starts []driver.Spec
	nextID int
}

type inst struct {
	b      Behavior
	term   chan struct{} // closed on SIGTERM
	kill   chan struct{} // closed on SIGKILL
	once   [2]sync.Once
	done   chan struct{}
	res    *driver.ExitResult
	handle driver.Handle
}

// New returns a mock driver.
func New(cfg Config) *Driver {
	if cfg.Name == "" {
		cfg.Name = Name
	}
	if len(cfg.Isolations) == 0 {
		cfg.Isolations = []api.Isolation{api.IsolationProcessUnconfined}
	}
	return &Driver{cfg: cfg, insts: map[string]*inst{}}
}

// Fingerprint reports Config.Isolations (by default process-unconfined, like
// the unconfined process driver).
func (d *Driver) Fingerprint() driver.Fingerprint {
	return driver.Fingerprint{Driver: d.cfg.Name, Isolations: append([]api.Isolation(nil), d.cfg.Isolations...)}
}

// AllocatePort returns a free loopback port, as the process driver does.
func (d *Driver) AllocatePort(string) (int, error) { return driver.FreeLoopbackPort() }

// Starts returns copies of every spec started so far, in order.
func (d *Driver) Starts() []driver.Spec {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]driver.Spec(nil), d.starts...)
}

// Running returns the ids of instances that have not exited.
func (d *Driver) Running() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	var ids []string
	for id, in := range d.insts {
		select {
		case <-in.done:
		default:
			ids = append(ids, id)
		}
	}
	return ids
}

// Start runs the scripted behaviour of spec.Command.
func (d *Driver) Start(ctx context.Context, spec *driver.Spec) (*driver.Handle, error) {
	if spec.ID == "" {
		return nil, api.Errorf(api.EInvalid, "instance id is empty")
	}
	if st, err := os.Stat(spec.Dir); err != nil || !st.IsDir() {
		return nil, api.Errorf(api.EInvalid, "instance dir %s does not exist", spec.Dir)
	}
	script := d.cfg.Script
	if script == nil {
		script = func(s *driver.Spec) (Behavior, error) { return ParseCommand(s.Command, s) }
	}
	b, err := script(spec)
	if err != nil {
		return nil, api.Errorf(api.EInvalid, "%v", err)
	}
	if b.FailStart != nil {
		return nil, b.FailStart
	}
	d.mu.Lock()
	if _, ok := d.insts[spec.ID]; ok {
		d.mu.Unlock()
		return nil, api.Errorf(api.EConflict, "instance %s is already started", spec.ID)
	}
	d.nextID++
	in := &inst{b: b, term: make(chan struct{}), kill: make(chan struct{}), done: make(chan struct{})}
	in.handle = driver.Handle{Version: driver.HandleVersion, Driver: d.cfg.Name, ID: spec.ID, PID: 100000 + d.nextID, PGID: 100000 + d.nextID, StartTime: uint64(d.nextID),
		Endpoint: driver.Endpoint{Port: spec.Port}}
	d.insts[spec.ID] = in
	d.starts = append(d.starts, *spec)
	d.mu.Unlock()

	writeLines(spec.Stdout, b.Stdout)
	writeLines(spec.Stderr, b.Stderr)
	go in.run()
	h := in.handle
	return &h, nil
}

func writeLines(w io.Writer, lines []string) {
	if w == nil {
		return
	}
	for _, l := range lines {
		_, _ = io.WriteString(w, l+"\n")
	}
}

func (in *inst) run() {
	var exit <-chan time.Time
	if in.b.Exit {
		t := time.NewTimer(in.b.ExitAfter)
		defer t.Stop()
		exit = t.C
	}
	term := in.term
	if in.b.IgnoreTerm {
		term = nil
	}
	select {
	case <-exit:
		in.res = &driver.ExitResult{ExitCode: in.b.ExitCode}
	case <-term:
		in.res = &driver.ExitResult{ExitCode: 0}
	case <-in.kill:
		in.res = &driver.ExitResult{ExitCode: -1, Signal: "killed"}
	}
	close(in.done)
}

func (in *inst) sigterm() { in.once[0].Do(func() { close(in.term) }) }
func (in *inst) sigkill() { in.once[1].Do(func() { close(in.kill) }) }

func (d *Driver) get(id string) (*inst, error) { return driver.Lookup(&d.mu, d.insts, id) }

// Wait blocks until the instance exits.
func (d *Driver) Wait(ctx context.Context, id string) (*driver.ExitResult, error) {
	in, err := d.get(id)
	if err != nil {
		return nil, err
	}
	select {
	case <-in.done:
		return in.res, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// Stop delivers SIGTERM, then SIGKILL after grace.
func (d *Driver) Stop(ctx context.Context, id string, grace time.Duration) error {
	in, err := d.get(id)
	if err != nil {
		return err
	}
	in.sigterm()
	t := time.NewTimer(grace)
	defer t.Stop()
	select {
	case <-in.done:
		return nil
	case <-t.C:
	case <-ctx.Done():
	}
	in.sigkill()
	<-in.done
	return nil
}

// Destroy kills and forgets the instance.
func (d *Driver) Destroy(ctx context.Context, id string) error {
	d.mu.Lock()
	in, ok := d.insts[id]
	delete(d.insts, id)
	d.mu.Unlock()
	if ok {
		in.sigkill()
		<-in.done
	}
	return nil
}

// Recover succeeds for an instance this driver value still runs (as if it had
// survived an executor restart) and is ENotFound otherwise.
func (d *Driver) Recover(ctx context.Context, h *driver.Handle) error {
	if h == nil || h.Driver != d.cfg.Name || h.Version != driver.HandleVersion {
		return api.Errorf(api.EInvalid, "not a mock driver handle")
	}
	in, err := d.get(h.ID)
	if err != nil {
		return err
	}
	select {
	case <-in.done:
		return api.Errorf(api.ENotFound, "instance %s has exited", h.ID)
	default:
	}
	if in.handle.StartTime != h.StartTime {
		return api.Errorf(api.ENotFound, "instance %s was restarted since", h.ID)
	}
	return nil
}
