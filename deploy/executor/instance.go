package executor

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/strata-paas/strata/api"
	"github.com/strata-paas/strata/api/archive"
	"github.com/strata-paas/strata/deploy/driver"
)

// recordVersion is the version of handle.json.
const recordVersion = 1

// record is what <DataDir>/instances/<id>/handle.json holds.
type record struct {
	Version   int              `json:"v"`
	Spec      api.InstanceSpec `json:"spec"`
	Handle    *driver.Handle   `json:"handle,omitempty"`
	Port      int              `json:"port,omitempty"`
	Restarts  int              `json:"restarts"`
	StartedAt time.Time        `json:"started_at,omitzero"`
}

// instance is one instance this executor runs. Its runner goroutine owns the
// lifecycle; other goroutines only read state and request a stop.
type instance struct {
	e    *Executor
	spec api.InstanceSpec
	dir  string
	log  *slog.Logger
	drv  driver.Driver // the driver of its isolation, fixed for its life
	iso  api.Isolation

	stdout, stderr *lineWriter

	stopCh   chan struct{}
	stopOnce sync.Once

	mu        sync.Mutex
	state     api.InstanceState
	grace     time.Duration
	port      int    // where the node reaches it (the driver's endpoint)
	host      string // the endpoint's host; "" = the node (see driver.Endpoint)
	check     string // host:port health checks go to
	restarts  int
	startedAt time.Time
	handle    *driver.Handle
	routed    bool
	prepared  bool
	image     *driver.DropletImage // the droplet as an image, for drivers that run images
	// unhealthy is set while a liveness check fails: the instance stays
	// unrouted (the register loop skips it) until a check passes again.
	unhealthy bool
	// failedStarts counts consecutive runs that ended before becoming healthy.
	failedStarts int
	tail         *lineTail

	// usage: the latest measurement and the sample it was computed from.
	measuring  bool // a measurement is in flight (usage.go)
	cpuPercent float64
	memBytes   int64
	lastCPU    time.Duration
	lastSample time.Time

	// Route messages are decided under mu and queued in that order; sendRoutes
	// publishes them after mu is released (see there).
	routeQueue   []routeMsg
	routeQueued  uint64     // messages ever queued
	routeSent    uint64     // messages ever published (or failed to)
	routeSending bool       // a goroutine is publishing the queue
	routeIdle    *sync.Cond // on mu: broadcast when the sender leaves
}

// routeMsg is a router.register or router.unregister message of an instance.
type routeMsg struct {
	subject string
	reg     *api.RouterRegistration
}

func newInstance(e *Executor, spec api.InstanceSpec, drv driver.Driver, iso api.Isolation) *instance {
	source := fmt.Sprintf("app/%s/%d", spec.Process, spec.Index)
	if spec.Task {
		source = "task/" + spec.InstanceID
	}
	in := &instance{
		e: e, spec: spec, dir: filepath.Join(e.instDir, spec.InstanceID), drv: drv, iso: iso,
		log:    e.log.With("app", spec.AppName, "instance", spec.InstanceID, "process", spec.Process, "index", spec.Index),
		stopCh: make(chan struct{}), state: api.InstanceStarting, tail: &lineTail{},
	}
	in.routeIdle = sync.NewCond(&in.mu)
	in.stdout = &lineWriter{ship: e.logs, appID: spec.AppID, app: spec.AppName, source: source, stream: "stdout", tail: in.tail}
	in.stderr = &lineWriter{ship: e.logs, appID: spec.AppID, app: spec.AppName, source: source, stream: "stderr", tail: in.tail}
	return in
}

func (in *instance) appDir() string { return filepath.Join(in.dir, "droplet", "app") }

func (in *instance) persist() error {
	in.mu.Lock()
	rec := record{Version: recordVersion, Spec: in.spec, Handle: in.handle, Port: in.port, Restarts: in.restarts, StartedAt: in.startedAt}
	in.mu.Unlock()
	data, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(in.dir, 0o700); err != nil {
		return api.Errorf(api.EUnavailable, "cannot create instance dir: %v", err)
	}
	return writeFileAtomic(filepath.Join(in.dir, "handle.json"), data)
}

func (in *instance) requestStop(grace time.Duration) {
	in.stopOnce.Do(func() {
		in.mu.Lock()
		in.grace = grace
		in.mu.Unlock()
		close(in.stopCh)
	})
}

func (in *instance) report() api.InstanceReport {
	in.mu.Lock()
	defer in.mu.Unlock()
	return api.InstanceReport{
		InstanceID: in.spec.InstanceID, AppID: in.spec.AppID, Process: in.spec.Process, Index: in.spec.Index,
		Release: in.spec.Release, State: in.state, Port: in.port, Restarts: in.restarts, StartedAt: in.startedAt,
		FailedStarts: in.failedStarts, CPUPercent: in.cpuPercent, MemoryBytes: in.memBytes,
		Routes: slices.Clone(in.spec.Routes), Isolation: in.iso,
	}
}

// setState moves the instance to st and publishes the transition.
func (in *instance) setState(st api.InstanceState, exitCode *int, reason string) {
	in.mu.Lock()
	if in.state != st && !in.state.CanTransitionTo(st) {
		in.log.Warn("instance.unexpected_transition", "from", in.state, "to", st)
	}
	in.state = st
	in.mu.Unlock()
	in.log.Info("instance."+string(st), "reason", reason)
	in.e.publishEvent(&api.InstanceEvent{Instance: in.report(), ExitCode: exitCode, Reason: reason})
}

// crashed moves the instance to crashed and publishes the transition with
// its last output lines.
func (in *instance) crashed(exitCode *int, reason string) {
	in.mu.Lock()
	in.state = api.InstanceCrashed
	in.mu.Unlock()
	in.log.Info("instance.crashed", "reason", reason)
	in.e.publishEvent(&api.InstanceEvent{Instance: in.report(), ExitCode: exitCode, Reason: reason, LastLines: in.tail.take()})
}

func (in *instance) registration() *api.RouterRegistration {
	iv := in.e.registerInterval()
	host := in.host
	if host == "" {
		host = in.e.cfg.AdvertiseHost
	}
	return &api.RouterRegistration{
		Host: host, Port: in.port, URIs: in.spec.Routes, App: in.spec.AppID,
		PrivateInstanceID: in.spec.InstanceID, PrivateInstanceIdx: strconv.Itoa(in.spec.Index),
		Tags:                map[string]string{"app_name": in.spec.AppName, "process_type": in.spec.Process},
		StaleThresholdInSec: max(10, int(3*iv/time.Second)),
	}
}

// register (re)publishes the routes of a running instance.
func (in *instance) register() {
	in.mu.Lock()
	seq, ok := in.queueRegister()
	in.mu.Unlock()
	if ok {
		in.sendRoutes(seq)
	}
}

// queueRegister queues a registration if the instance serves and returns
// its sequence number; the caller holds mu and then calls sendRoutes.
func (in *instance) queueRegister() (uint64, bool) {
	if in.state != api.InstanceRunning || in.unhealthy || len(in.spec.Routes) == 0 {
		return 0, false
	}
	in.routed = true
	return in.queueRoute(api.SubjectRouterRegister, in.registration()), true
}

// queueRoute appends a route message to the instance's queue and returns its
// sequence number; the caller holds mu.
func (in *instance) queueRoute(subject string, reg *api.RouterRegistration) uint64 {
	in.routeQueue = append(in.routeQueue, routeMsg{subject: subject, reg: reg})
	in.routeQueued++
	return in.routeQueued
}

// sendRoutes returns once the instance's route messages up to seq have been
// published. The bus is never called with mu held: one goroutine at a time
// takes the queue's messages in order and publishes each after releasing mu,
// so routers see registrations and withdrawals in the order they were
// decided, while reports (heartbeats) and state changes never wait on the bus.
func (in *instance) sendRoutes(seq uint64) {
	in.mu.Lock()
	defer in.mu.Unlock()
	for in.routeSending && in.routeSent < seq {
		in.routeIdle.Wait() // the sender publishes ours too before it leaves
	}
	if in.routeSent >= seq {
		return
	}
	in.routeSending = true
	for len(in.routeQueue) > 0 {
		m := in.routeQueue[0]
		in.routeQueue = in.routeQueue[1:]
		in.mu.Unlock()
		if err := in.e.conn.Publish(m.subject, m.reg); err != nil {
			event := "instance.register_failed"
			if m.subject == api.SubjectRouterUnregister {
				event = "instance.unregister_failed"
			}
			in.log.Warn(event, "err", err)
		}
		in.mu.Lock()
		in.routeSent++
	}
	in.routeSending = false
	in.routeIdle.Broadcast()
}

// setRoutes replaces the instance's routes: URIs it no longer has are
// unregistered at once with Forget (routers drop them, so they answer 404
// rather than hold their requests; sent even while the instance does not
// serve, since routers keep a route its crash or stop emptied), the new set
// is registered if the instance serves, and the spec is persisted so a
// recovered instance keeps them.
func (in *instance) setRoutes(routes []string) {
	in.mu.Lock()
	old := in.registration()
	var gone []string
	for _, u := range old.URIs {
		if !slices.Contains(routes, u) {
			gone = append(gone, u)
		}
	}
	in.spec.Routes = slices.Clone(routes)
	var seq uint64
	if len(gone) > 0 {
		old.URIs, old.Forget = gone, true
		seq = in.queueRoute(api.SubjectRouterUnregister, old)
	}
	if len(routes) == 0 {
		in.routed = false
	}
	if s, ok := in.queueRegister(); ok {
		seq = s
	}
	in.mu.Unlock()
	if seq > 0 {
		in.sendRoutes(seq)
	}
	if err := in.persist(); err != nil {
		in.log.Warn("instance.persist_failed", "err", err)
	}
	in.log.Info("instance.routes_changed", "routes", routes)
}

// unregister withdraws the instance's routes if they were registered and
// reports whether they were. It returns once the bus has been flushed (or a
// second has passed), so routers know before the instance is signalled.
func (in *instance) unregister() bool {
	in.mu.Lock()
	if !in.routed {
		in.mu.Unlock()
		return false
	}
	in.routed = false
	seq := in.queueRoute(api.SubjectRouterUnregister, in.registration())
	in.mu.Unlock()
	in.sendRoutes(seq)
	// Routers must learn before the instance is signalled.
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	_ = in.e.conn.Flush(ctx)
	cancel()
	return true
}

func (in *instance) flushLogs() {
	in.stdout.Flush()
	in.stderr.Flush()
}

// outcome is how supervision of one run of an instance ended.
type outcome int

const (
	outStop   outcome = iota // a stop was requested
	outDetach                // the executor is going away without stopping instances
	outCrash                 // the instance exited or failed its health check
)

type waitResult struct {
	res *driver.ExitResult
	err error
}

// runInstance is the runner of one instance: prepare, start, health check,
// supervise, restart with backoff, until stopped or detached. recovered says
// the driver already runs it (adopted after an executor restart).
func (e *Executor) runInstance(in *instance, recovered bool) {
	defer e.wg.Done()
	crashes := 0
	live := recovered
	for {
		var (
			exitCode   *int
			reason     string
			healthyFor time.Duration
			healthy    bool
		)
		if !live {
			if in.stopped() {
				e.finishStop(in, false)
				return
			}
			reason = e.startOnce(in)
			live = reason == ""
		}
		if live {
			var out outcome
			out, exitCode, reason, healthyFor, healthy = e.supervise(in)
			switch out {
			case outStop:
				e.finishStop(in, true)
				return
			case outDetach:
				return
			}
		}
		if select1(e.detach.Done()) {
			return
		}
		// Crashed: report, clean the driver's side, back off, restart in place.
		live = false
		in.unregister()
		in.flushLogs()
		if healthyFor >= e.cfg.Restart.ResetAfter {
			crashes = 0
		}
		crashes++
		in.mu.Lock()
		if healthy {
			in.failedStarts = 0
		} else {
			in.failedStarts++
		}
		in.unhealthy = false
		in.mu.Unlock()
		in.crashed(exitCode, reason)
		dctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		_ = in.drv.Destroy(dctx, in.spec.InstanceID)
		cancel()
		delay := e.cfg.Restart.Delay(crashes)
		t := time.NewTimer(delay)
		select {
		case <-in.stopCh:
			t.Stop()
			e.finishStop(in, false)
			return
		case <-e.detach.Done():
			t.Stop()
			return
		case <-t.C:
		}
		in.mu.Lock()
		in.restarts++
		in.mu.Unlock()
		in.log.Info("instance.restart", "crashes", crashes, "after", delay)
	}
}

func select1(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

func (in *instance) stopped() bool { return select1(in.stopCh) }

// startOnce prepares the droplet if needed and starts the instance through
// the driver. It returns "" on success or the reason it failed.
func (e *Executor) startOnce(in *instance) string {
	in.setState(api.InstanceStarting, nil, "")
	return e.launch(in)
}

// launch prepares the droplet if needed and starts the instance's command
// through the driver; it returns "" or the reason it failed.
func (e *Executor) launch(in *instance) string {
	if !in.prepared {
		if err := e.prepare(in); err != nil {
			return "cannot prepare the droplet: " + api.ErrorMessage(err)
		}
		in.prepared = true
	}
	var port int
	var err error
	if in.image != nil && in.image.Port > 0 {
		port = in.image.Port // the port an image deploy's image declares
	} else if port, err = allocatePort(in.drv, in.spec.InstanceID); err != nil {
		return "no port for the instance: " + api.ErrorMessage(err)
	}
	spec := &driver.Spec{
		ID: in.spec.InstanceID, Dir: in.appDir(), Command: launchCommand(in.spec.Command),
		Env: e.env(in, port), MemoryMB: in.spec.MemoryMB, Port: port, Stdout: in.stdout, Stderr: in.stderr,
		Space:  in.spec.SpaceID,
		Labels: map[string]string{"io.strata.app": in.spec.AppName, "io.strata.process": in.spec.Process},
		// HOME and TMPDIR (see env); a confining driver keeps the rest read-only.
		Writable: []string{filepath.Join(in.dir, "droplet"), filepath.Join(in.dir, "tmp")},
	}
	switch {
	case in.imageDeploy(): // the image's own command unless the spec has one; only /tmp writable
		spec.Image, spec.Dir, spec.Writable, spec.Command = in.image.Image, in.image.AppDir, nil, in.spec.Command
	case in.image != nil: // the droplet is in the image; /tmp is the driver's
		spec.Image, spec.Dir, spec.Writable = in.image.Image, in.image.AppDir, []string{in.image.Root}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	h, err := in.drv.Start(ctx, spec)
	if err != nil {
		return "cannot start: " + api.ErrorMessage(err)
	}
	ep := h.Endpoint
	if ep == (driver.Endpoint{}) { // a driver that does not say: the node's port
		ep = driver.Endpoint{Port: port}
	}
	in.mu.Lock()
	in.port, in.host, in.check, in.handle, in.startedAt = ep.Port, ep.Host, checkAddr(ep), h, time.Now().UTC()
	in.mu.Unlock()
	if in.spec.Task {
		return "" // tasks are not recovered after an executor restart
	}
	if err := in.persist(); err != nil {
		in.log.Warn("instance.persist_failed", "err", err)
	}
	return ""
}

// launchCommand runs the developer's command after sourcing the droplet's
// .profile.d scripts, as Heroku and Cloud Foundry do. The command is the
// developer's own Procfile line: it reaches only the instance's own shell.
func launchCommand(cmd string) string {
	return `if [ -d .profile.d ]; then for f in .profile.d/*.sh; do [ -r "$f" ] && . "./$f"; done; fi
` + cmd
}

// prepare fetches the droplet (through the cache) and unpacks it into the
// instance dir, or, for a driver that runs images (driver.DropletImager),
// has the driver turn it into an image.
func (e *Executor) prepare(in *instance) error {
	ctx, cancel := context.WithCancel(e.detach)
	defer cancel()
	go func() {
		select {
		case <-in.stopCh:
			cancel()
		case <-ctx.Done():
		}
	}()
	if in.spec.Image != "" || in.spec.ImageBlob != "" {
		return e.prepareImage(ctx, in)
	}
	path, release, err := e.droplets.acquire(ctx, in.spec.DropletBlob)
	if err != nil {
		return err
	}
	defer release()
	if di, ok := in.drv.(driver.DropletImager); ok {
		return in.setImage(di.DropletImage(ctx, in.spec.DropletBlob, path))
	}
	dest := filepath.Join(in.dir, "droplet")
	_ = os.RemoveAll(dest)
	if err := os.MkdirAll(dest, 0o700); err != nil {
		return api.Errorf(api.EUnavailable, "cannot create %s: %v", dest, err)
	}
	f, err := os.Open(path)
	if err != nil {
		return api.Errorf(api.EUnavailable, "cannot open cached droplet: %v", err)
	}
	defer f.Close()
	lim := archive.DefaultLimits()
	if b := int64(in.spec.DiskMB) << 20; b > lim.MaxBytes {
		lim.MaxBytes = b
	}
	if err := archive.Extract(ctx, f, dest, lim); err != nil {
		return err
	}
	if st, err := os.Stat(in.appDir()); err != nil || !st.IsDir() {
		return api.Errorf(api.EInvalid, "droplet %s has no app/ directory — rebuild the app", in.spec.DropletBlob)
	}
	if err := os.MkdirAll(filepath.Join(in.dir, "tmp"), 0o700); err != nil {
		return api.Errorf(api.EUnavailable, "cannot create tmp dir: %v", err)
	}
	return nil
}

// prepareImage readies an image deploy: the image the node has, or the
// `docker save` tarball (fetched through the blob cache) loaded by the
// driver, which must run images.
func (e *Executor) prepareImage(ctx context.Context, in *instance) error {
	ir, ok := in.drv.(driver.ImageRunner)
	if !ok {
		return api.Errorf(api.EInvalid, "an image deploy needs an isolation that runs images (container), not %s — place the app on nodes with the docker driver", in.iso)
	}
	var path string
	if in.spec.ImageBlob != "" {
		p, release, err := e.droplets.acquire(ctx, in.spec.ImageBlob)
		if err != nil {
			return err
		}
		defer release()
		path = p
	}
	return in.setImage(ir.AppImage(ctx, in.spec.Image, in.spec.ImageBlob, path))
}

// setImage keeps the image a driver made or found for the instance, unless
// it failed.
func (in *instance) setImage(img *driver.DropletImage, err error) error {
	if err != nil {
		return err
	}
	in.mu.Lock()
	in.image = img
	in.mu.Unlock()
	return nil
}

// imageDeploy reports whether the instance runs an image deploy's image
// (not a droplet).
func (in *instance) imageDeploy() bool {
	return in.image != nil && (in.spec.Image != "" || in.spec.ImageBlob != "")
}

// env is the instance's environment: config vars, then platform variables,
// which win.
func (e *Executor) env(in *instance, port int) []string {
	in.mu.Lock()
	s := in.spec // Routes may change later (setRoutes); the copy is stable
	in.mu.Unlock()
	m := map[string]string{}
	for k, v := range s.Env {
		m[k] = v
	}
	vcap, _ := json.Marshal(map[string]any{
		"application_id": s.AppID, "application_name": s.AppName, "instance_id": s.InstanceID,
		"instance_index": s.Index, "uris": append([]string{}, s.Routes...), "version": strconv.Itoa(s.Release),
		"port": port,
	})
	home, tmp := filepath.Join(in.dir, "droplet"), filepath.Join(in.dir, "tmp")
	if in.image != nil {
		home, tmp = in.image.Root, "/tmp"
	}
	platform := map[string]string{
		"PORT": strconv.Itoa(port), "STRATA_APP": s.AppName, "STRATA_PROCESS": s.Process,
		"STRATA_INSTANCE_INDEX": strconv.Itoa(s.Index), "STRATA_INSTANCE_GUID": s.InstanceID,
		"STRATA_RELEASE": strconv.Itoa(s.Release), "VCAP_APPLICATION": string(vcap),
		"HOME": home, "TMPDIR": tmp, "LANG": "C.UTF-8",
		"PATH": filepath.Join(home, "app", "bin") + ":/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
	}
	if in.imageDeploy() { // the image's own HOME, PATH and LANG stay
		delete(platform, "HOME")
		delete(platform, "PATH")
		delete(platform, "LANG")
	}
	for k, v := range platform {
		m[k] = v
	}
	out := make([]string, 0, len(m))
	for k, v := range m {
		out = append(out, k+"="+v)
	}
	slices.Sort(out)
	return out
}

// checkAddr is the host:port health checks of an instance at ep go to.
func checkAddr(ep driver.Endpoint) string {
	host, port := ep.Host, ep.Port
	if ep.CheckHost != "" {
		host = ep.CheckHost
	}
	if ep.CheckPort != 0 {
		port = ep.CheckPort
	}
	if host == "" {
		host = "127.0.0.1" // the node itself
	}
	return net.JoinHostPort(host, strconv.Itoa(port))
}

// allocatePort is the port the instance listens on in its network: the
// driver's choice (it owns the network), else a free loopback port of the
// node.
func allocatePort(d driver.Driver, id string) (int, error) {
	if pa, ok := d.(driver.PortAllocator); ok {
		return pa.AllocatePort(id)
	}
	return driver.FreeLoopbackPort()
}

// supervise health-checks a started instance, marks it running and routes
// it once healthy, and waits for its exit, a stop request or detachment.
//
// Once running, the health check repeats every interval (liveness): a failure
// unroutes the instance at once, LivenessFailures in a row stop it as crashed.
// healthy says whether the run passed its health check.
func (e *Executor) supervise(in *instance) (out outcome, exitCode *int, reason string, healthyFor time.Duration, healthy bool) {
	id := in.spec.InstanceID
	exitCh := make(chan waitResult, 1)
	go func() {
		r, err := in.drv.Wait(e.detach, id)
		exitCh <- waitResult{r, err}
	}()
	timeout := in.spec.HealthCheck.Timeout
	if timeout <= 0 {
		timeout = e.cfg.StartTimeout
	}
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	begin := time.Now()
	check := e.healthCheck(in)
	for !check() {
		interval := 50 * time.Millisecond
		if time.Since(begin) > 2*time.Second {
			interval = 250 * time.Millisecond
		}
		t := time.NewTimer(interval)
		select {
		case w := <-exitCh:
			t.Stop()
			if e.detach.Err() != nil {
				return outDetach, nil, "", 0, false
			}
			exitCode, reason = describeExit(w)
			return outCrash, exitCode, reason + " before becoming healthy", 0, false
		case <-in.stopCh:
			t.Stop()
			return outStop, nil, "", 0, false
		case <-e.detach.Done():
			t.Stop()
			return outDetach, nil, "", 0, false
		case <-deadline.C:
			t.Stop()
			ctx, cancel := context.WithTimeout(context.Background(), e.cfg.StopGrace+30*time.Second)
			_ = in.drv.Stop(ctx, id, e.cfg.StopGrace)
			cancel()
			<-exitCh
			return outCrash, nil, fmt.Sprintf("health check (%s) did not pass within %s", in.healthDesc(), timeout), 0, false
		case <-t.C:
		}
	}
	in.mu.Lock()
	in.failedStarts = 0
	in.mu.Unlock()
	in.setState(api.InstanceRunning, nil, "")
	in.register() // at once: routing must not wait for the next interval
	since := time.Now()
	var tick <-chan time.Time
	if in.healthType() != api.HealthProcess {
		iv := in.spec.HealthCheck.Interval
		if iv <= 0 {
			iv = e.cfg.LivenessInterval
		}
		t := time.NewTicker(iv)
		defer t.Stop()
		tick = t.C
	}
	fails := 0
	for {
		select {
		case w := <-exitCh:
			if e.detach.Err() != nil {
				return outDetach, nil, "", 0, true
			}
			exitCode, reason = describeExit(w)
			return outCrash, exitCode, reason, time.Since(since), true
		case <-in.stopCh:
			return outStop, nil, "", 0, true
		case <-e.detach.Done():
			return outDetach, nil, "", 0, true
		case <-tick:
			if check() {
				if fails > 0 {
					fails = 0
					in.mu.Lock()
					in.unhealthy = false
					in.mu.Unlock()
					in.log.Info("instance.healthy_again")
					in.register()
				}
				continue
			}
			fails++
			if fails == 1 {
				in.mu.Lock()
				in.unhealthy = true
				in.mu.Unlock()
				in.unregister() // no new requests while it fails
				in.log.Info("instance.unhealthy", "check", in.healthDesc())
			}
			if fails < e.cfg.LivenessFailures {
				continue
			}
			desc := in.healthDesc()
			ctx, cancel := context.WithTimeout(context.Background(), e.cfg.StopGrace+30*time.Second)
			_ = in.drv.Stop(ctx, id, e.cfg.StopGrace)
			cancel()
			<-exitCh
			return outCrash, nil, fmt.Sprintf("health check (%s) failed %d times in a row while running", desc, fails), time.Since(since), true
		}
	}
}

// healthType is the spec's check. The controller always sets one
// (api.DefaultHealthCheck); a spec without one is checked by whether it has
// routes to serve — an unrouted instance need not listen.
func (in *instance) healthType() string {
	if t := in.spec.HealthCheck.Type; t != "" {
		return t
	}
	in.mu.Lock()
	routed := len(in.spec.Routes) > 0
	in.mu.Unlock()
	if !routed {
		return api.HealthProcess
	}
	return api.HealthPort
}

func (in *instance) healthDesc() string {
	in.mu.Lock()
	port := in.port
	in.mu.Unlock()
	switch in.healthType() {
	case api.HealthHTTP:
		return fmt.Sprintf("GET %s on port %d", in.healthPath(), port)
	case api.HealthProcess:
		return "process"
	}
	return fmt.Sprintf("port %d", port)
}

func (in *instance) healthPath() string {
	p := in.spec.HealthCheck.Path
	if p == "" || p[0] != '/' {
		p = "/" + p
	}
	return p
}

// healthCheck returns the check for the instance's health check type.
func (e *Executor) healthCheck(in *instance) func() bool {
	in.mu.Lock()
	addr := in.check
	if addr == "" {
		addr = checkAddr(driver.Endpoint{Host: in.host, Port: in.port})
	}
	in.mu.Unlock()
	switch in.healthType() {
	case api.HealthProcess:
		return func() bool { return true }
	case api.HealthHTTP:
		client := &http.Client{
			Timeout:       time.Second,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
			Transport:     &http.Transport{DisableKeepAlives: true, Proxy: nil},
		}
		url := "http://" + addr + in.healthPath()
		return func() bool {
			resp, err := client.Get(url)
			if err != nil {
				return false
			}
			resp.Body.Close()
			return resp.StatusCode >= 200 && resp.StatusCode < 400
		}
	}
	return func() bool {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			return false
		}
		c.Close()
		return true
	}
}

// describeExit turns a driver exit into an exit code (when there is one) and
// a reason for the crash event.
func describeExit(w waitResult) (*int, string) {
	switch {
	case w.err != nil:
		return nil, "lost track of the instance: " + api.ErrorMessage(w.err)
	case w.res.OOMKilled:
		return nil, "killed: out of memory — raise the memory limit"
	case w.res.Signal != "":
		return nil, "killed by signal " + w.res.Signal
	case w.res.Err != nil:
		return nil, "exited (exit status unknown after an executor restart)"
	}
	code := w.res.ExitCode
	return &code, fmt.Sprintf("exited with code %d", code)
}

// finishStop stops a live instance in the documented order: routes out,
// SIGTERM → grace → SIGKILL, driver cleanup, directory removed, forgotten.
func (e *Executor) finishStop(in *instance, live bool) {
	in.mu.Lock()
	grace := in.grace
	st := in.state
	in.mu.Unlock()
	if grace <= 0 {
		grace = e.cfg.StopGrace
	}
	if st.CanTransitionTo(api.InstanceStopping) {
		in.setState(api.InstanceStopping, nil, "")
	}
	if in.unregister() && live {
		// Routers have been told (the bus was flushed); let them apply it and
		// let requests already sent finish before the instance is signalled.
		t := time.NewTimer(e.cfg.DrainDelay)
		select {
		case <-t.C:
		case <-e.detach.Done():
			t.Stop()
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), grace+30*time.Second)
	defer cancel()
	if live {
		if err := in.drv.Stop(ctx, in.spec.InstanceID, grace); err != nil && api.ErrorCode(err) != api.ENotFound {
			in.log.Warn("instance.stop_failed", "err", err)
		}
	}
	if err := in.drv.Destroy(ctx, in.spec.InstanceID); err != nil {
		in.log.Warn("instance.destroy_failed", "err", err)
	}
	in.flushLogs()
	if err := os.RemoveAll(in.dir); err != nil {
		in.log.Warn("instance.cleanup_failed", "err", err)
	}
	in.mu.Lock()
	in.port = 0
	in.mu.Unlock()
	in.setState(api.InstanceStopped, nil, "stopped")
	e.forget(in)
}

// recoverAll adopts the instances persisted by an earlier run. Those the
// driver cannot recover are cleaned up and reported stopped.
func (e *Executor) recoverAll(ctx context.Context) {
	ents, err := os.ReadDir(e.instDir)
	if err != nil {
		e.log.Warn("executor.recover_list_failed", "err", err)
		return
	}
	for _, ent := range ents {
		if !ent.IsDir() || validateInstanceID(ent.Name()) != nil {
			continue
		}
		id := ent.Name()
		dir := filepath.Join(e.instDir, id)
		var rec record
		data, err := os.ReadFile(filepath.Join(dir, "handle.json"))
		if err == nil {
			err = json.Unmarshal(data, &rec)
		}
		if err == nil && (rec.Spec.InstanceID != id || validateSpec(&rec.Spec) != nil) {
			err = api.Errorf(api.EInvalid, "handle.json does not describe instance %s", id)
		}
		var in *instance
		var drv driver.Driver
		var iso api.Isolation
		if err == nil {
			drv, iso, err = e.drivers.forHandle(rec.Handle, &rec.Spec)
		}
		if err == nil {
			in = newInstance(e, rec.Spec, drv, iso)
			in.port, in.handle, in.restarts, in.startedAt = rec.Port, rec.Handle, rec.Restarts, rec.StartedAt
			// An unpacked droplet is still there; an image is looked up again
			// (cached) if the instance restarts.
			_, imager := drv.(driver.DropletImager)
			in.prepared = !imager
			if rec.Handle != nil && rec.Handle.Endpoint.Port != 0 {
				ep := rec.Handle.Endpoint
				in.port, in.host, in.check = ep.Port, ep.Host, checkAddr(ep)
			}
			err = e.recoverOne(ctx, in)
		}
		if err != nil {
			e.log.Info("executor.instance_not_recovered", "instance", id, "reason", api.ErrorMessage(err))
			if drv != nil {
				_ = drv.Destroy(ctx, id)
			}
			_ = os.RemoveAll(dir)
			report := api.InstanceReport{InstanceID: id, State: api.InstanceStopped}
			if in != nil {
				report = in.report()
				report.State = api.InstanceStopped
			}
			e.publishEvent(&api.InstanceEvent{Instance: report, Reason: "lost while the executor was down"})
			continue
		}
		in.log.Info("instance.recovered", "pid", rec.Handle.PID)
		e.mu.Lock()
		e.insts[id] = in
		e.mu.Unlock()
		e.wg.Add(1)
		go e.runInstance(in, true)
	}
	e.sweep(ctx)
}

// sweep asks every driver that can (driver.Sweeper) to remove this node's
// instances that the executor does not run: nothing the actual state does
// not know is left on the node (docs/reliability.md rule 4).
func (e *Executor) sweep(ctx context.Context) {
	known := []string{}
	for _, in := range e.snapshot() {
		known = append(known, in.spec.InstanceID)
	}
	for _, d := range e.drivers.all {
		sw, ok := d.(driver.Sweeper)
		if !ok {
			continue
		}
		sctx, cancel := context.WithTimeout(ctx, time.Minute)
		n, err := sw.Sweep(sctx, known)
		cancel()
		if err != nil {
			e.log.Warn("executor.sweep_failed", "driver", fingerprint(d).Driver, "err", err)
		} else if n > 0 {
			e.log.Info("executor.orphans_removed", "driver", fingerprint(d).Driver, "count", n)
		}
	}
}

func (e *Executor) recoverOne(ctx context.Context, in *instance) error {
	if in.handle == nil {
		return api.Errorf(api.ENotFound, "instance was never started")
	}
	if or, ok := in.drv.(driver.OutputRecoverer); ok {
		return or.RecoverOutput(ctx, in.handle, in.stdout, in.stderr)
	}
	return in.drv.Recover(ctx, in.handle)
}
