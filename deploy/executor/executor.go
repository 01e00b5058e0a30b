package executor

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/strata-paas/strata/api"
	"github.com/strata-paas/strata/api/bus"
	"github.com/strata-paas/strata/deploy/driver"
)

// Bus is what the executor needs of the message bus: *bus.Conn implements it,
// and a test can pass an in-memory fake. Its methods must be safe for
// concurrent use. The executor never calls them while it holds a lock on an
// instance.
type Bus interface {
	// Publish sends v as JSON on subject without waiting for the server.
	Publish(subject string, v any) error
	// Flush waits until the server has processed everything published so far.
	Flush(ctx context.Context) error
	// Request sends req as JSON on subject and decodes the reply into resp;
	// no answer is an EUnavailable error.
	Request(ctx context.Context, subject string, req, resp any) error
	// Subscribe calls fn for each message on subject (see bus.Handle).
	Subscribe(subject, queue string, fn func(*bus.Msg)) (*bus.Subscription, error)
}

var _ Bus = (*bus.Conn)(nil)

// Executor is the node agent. Create it with New and call Run once.
type Executor struct {
	cfg       Config
	conn      Bus
	drivers   *drivers
	log       *slog.Logger
	nodeID    string
	substrate api.Substrate
	droplets  *dropletCache
	logs      *logShipper

	instDir string
	taskDir string

	regInterval atomic.Int64 // route re-registration interval, ns
	term        atomic.Int64 // highest leader term seen in a command

	// Time sources: the real ones, or a test's (export_test.go).
	heartbeatTicks, sampleTicks tickFunc
	now                         func() time.Time // stamps usage samples

	mu    sync.Mutex
	insts map[string]*instance
	tasks map[string]*instance // one-off tasks, not in heartbeats
	wg    sync.WaitGroup       // instance and task runners

	detach context.Context // cancelled when Run returns without stopping instances
}

// New checks cfg, applies defaults, resolves the node id and substrate and
// prepares DataDir. It does not touch the bus until Run.
//
// drvs are the node's drivers, one per isolation (their fingerprints say
// which): a start names the isolation its instance needs, and one without
// an isolation runs on the driver offering process (or process-unconfined),
// else on the first. Two drivers offering one isolation are EInvalid.
func New(cfg Config, conn Bus, blobs BlobFetcher, drvs ...driver.Driver) (*Executor, error) {
	cfg.setDefaults()
	if cfg.DataDir == "" {
		return nil, api.Errorf(api.EInvalid, "executor needs a data dir — set --data-dir")
	}
	if conn == nil || blobs == nil || len(drvs) == 0 {
		return nil, api.Errorf(api.EInvalid, "executor needs a bus connection, a blob fetcher and a driver")
	}
	ds, err := newDrivers(drvs)
	if err != nil {
		return nil, err
	}
	// Tasks do not survive an executor restart: their dirs are leftovers.
	_ = os.RemoveAll(filepath.Join(cfg.DataDir, "tasks"))
	for _, d := range []string{cfg.DataDir, filepath.Join(cfg.DataDir, "droplets"), filepath.Join(cfg.DataDir, "instances"), filepath.Join(cfg.DataDir, "tasks")} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, api.Errorf(api.EUnavailable, "cannot create %s: %v", d, err)
		}
	}
	if cfg.NodeID == "" {
		id, err := loadNodeID(cfg.DataDir)
		if err != nil {
			return nil, err
		}
		cfg.NodeID = id
	}
	if !validNodeID(cfg.NodeID) {
		return nil, api.Errorf(api.EInvalid, "node id %q may only hold letters, digits, '-' and '_'", cfg.NodeID)
	}
	sub, err := resolveSubstrate(cfg.Substrate)
	if err != nil {
		return nil, err
	}
	e := &Executor{
		cfg: cfg, conn: conn, drivers: ds, nodeID: cfg.NodeID, substrate: sub,
		log:      cfg.Logger.With("node", cfg.NodeID),
		droplets: newDropletCache(filepath.Join(cfg.DataDir, "droplets"), blobs, cfg.KeepDroplets),
		logs:     newLogShipper(conn, cfg.LogBuffer),
		instDir:  filepath.Join(cfg.DataDir, "instances"),
		taskDir:  filepath.Join(cfg.DataDir, "tasks"),
		insts:    map[string]*instance{},
		tasks:    map[string]*instance{},

		heartbeatTicks: newTicker, sampleTicks: newTicker, now: time.Now,
	}
	e.regInterval.Store(int64(cfg.RegisterInterval))
	return e, nil
}

// NodeID returns the node's stable id.
func (e *Executor) NodeID() string { return e.nodeID }

// Run recovers persisted instances, serves commands, heartbeats and keeps
// routes registered until ctx ends. With Config.StopOnExit it then stops
// every instance (routes first); otherwise instances keep running for the
// next Run to recover. Run returns nil after ctx ends, or an error if it
// cannot subscribe.
func (e *Executor) Run(ctx context.Context) error {
	detach, cancelDetach := context.WithCancel(context.Background())
	defer cancelDetach()
	e.detach = detach

	bg, cancelBg := context.WithCancel(context.Background())
	defer cancelBg()
	go e.logs.run(bg)

	e.recoverAll(ctx)

	var subs []*bus.Subscription
	defer func() {
		for _, s := range subs {
			_ = s.Unsubscribe()
		}
	}()
	sub, err := bus.Handle(e.conn, api.SubjectNodeCommand(e.nodeID), "", e.handleCommand)
	if err != nil {
		return err
	}
	subs = append(subs, sub)
	sub, err = bus.SubscribeJSON(e.conn, api.SubjectRouterStart, "", func(_ string, rs *api.RouterStart) {
		e.routerAnnounced(rs)
	})
	if err != nil {
		return err
	}
	subs = append(subs, sub)
	go e.greetRouters(ctx)

	e.log.Info("executor.started", "substrate", e.substrate, "data_dir", e.cfg.DataDir)
	var loops sync.WaitGroup
	loops.Add(2)
	go func() { defer loops.Done(); e.heartbeatLoop(ctx) }()
	go func() { defer loops.Done(); e.registerLoop(ctx) }()
	loops.Add(1)
	go func() { defer loops.Done(); e.sampleLoop(ctx) }()
	<-ctx.Done()
	loops.Wait()
	_ = subs[0].Unsubscribe() // no new commands while shutting down

	if e.cfg.StopOnExit {
		e.mu.Lock()
		for _, in := range e.insts {
			in.requestStop(e.cfg.StopGrace)
		}
		for _, in := range e.tasks {
			in.requestStop(e.cfg.StopGrace)
		}
		e.mu.Unlock()
	} else {
		cancelDetach()
	}
	e.wg.Wait()
	if e.cfg.StopOnExit {
		e.heartbeat() // tell controllers the node is empty
	}
	fctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	_ = e.conn.Flush(fctx)
	cancel()
	e.log.Info("executor.stopped")
	return nil
}

// handleCommand serves one NodeCommand. Start and stop are asynchronous:
// the reply says the command was accepted; progress comes as events.
func (e *Executor) handleCommand(ctx context.Context, cmd *api.NodeCommand) (*api.NodeCommandReply, error) {
	ok := &api.NodeCommandReply{Version: api.MessageVersion}
	if err := e.checkTerm(cmd); err != nil {
		return nil, err
	}
	switch cmd.Kind {
	case api.CmdStart:
		if err := validateSpec(cmd.Start); err != nil {
			return nil, err
		}
		if cmd.Start.Task {
			return nil, api.Errorf(api.EInvalid, "a task is started with the run command, not start")
		}
		return ok, e.startInstance(cmd.Start)
	case api.CmdRun:
		if err := validateSpec(cmd.Start); err != nil {
			return nil, err
		}
		if !cmd.Start.Task {
			return nil, api.Errorf(api.EInvalid, "run needs a task spec (task: true)")
		}
		return ok, e.startTask(cmd.Start)
	case api.CmdStop:
		if err := validateInstanceID(cmd.InstanceID); err != nil {
			return nil, err
		}
		grace := cmd.Grace
		if grace <= 0 {
			grace = e.cfg.StopGrace
		}
		if e.stopTask(cmd.InstanceID, grace) {
			return ok, nil
		}
		e.mu.Lock()
		in := e.insts[cmd.InstanceID]
		e.mu.Unlock()
		if in == nil {
			// Unknown here: say it is stopped so the controller converges.
			e.publishEvent(&api.InstanceEvent{Instance: api.InstanceReport{InstanceID: cmd.InstanceID, State: api.InstanceStopped}, Reason: "not running on this node"})
			return ok, nil
		}
		in.requestStop(grace)
		return ok, nil
	case api.CmdRoutes:
		if err := validateInstanceID(cmd.InstanceID); err != nil {
			return nil, err
		}
		if err := validateRoutes(cmd.Routes); err != nil {
			return nil, err
		}
		e.mu.Lock()
		in := e.insts[cmd.InstanceID]
		e.mu.Unlock()
		if in != nil && in.spec.Process == api.ProcessWeb {
			in.setRoutes(cmd.Routes)
		}
		return ok, nil
	}
	return nil, api.Errorf(api.EInvalid, "unknown command %q — this executor knows start, run, stop and routes", cmd.Kind)
}

// checkTerm refuses a command from a leader term older than the highest
// this executor has seen: a deposed leader's late command
// (docs/architecture.md, "Leader lease"). Term 0, a command of a REST
// request, is not checked. The term is kept in memory only.
func (e *Executor) checkTerm(cmd *api.NodeCommand) error {
	if cmd.Term <= 0 {
		return nil
	}
	for {
		seen := e.term.Load()
		if cmd.Term < seen {
			e.log.Warn("executor.stale_term", "kind", cmd.Kind, "instance", cmd.InstanceID, "term", cmd.Term, "seen", seen)
			return api.Errorf(api.EConflict, "%s command of leader term %d ignored: this executor has seen term %d", cmd.Kind, cmd.Term, seen)
		}
		if cmd.Term == seen || e.term.CompareAndSwap(seen, cmd.Term) {
			return nil
		}
	}
}

func validateInstanceID(id string) error {
	if id == "" || len(id) > 128 || strings.ContainsAny(id, `/\.`) || !filepath.IsLocal(id) {
		return api.Errorf(api.EInvalid, "instance id %q is not a plain name", id)
	}
	return nil
}

// validateRoutes checks the URIs an instance is to register: a bounded
// number of host or host/path names without spaces or control bytes.
func validateRoutes(routes []string) error {
	if len(routes) > api.MaxRoutesPerApp {
		return api.Errorf(api.EInvalid, "%d routes, more than the %d an instance may have", len(routes), api.MaxRoutesPerApp)
	}
	for _, r := range routes {
		if r == "" || len(r) > api.MaxRouteHostLength+api.MaxRoutePathLength || strings.ContainsFunc(r, func(c rune) bool { return c <= ' ' || c == 0x7f }) {
			return api.Errorf(api.EInvalid, "route %q is not a host name with an optional path", r)
		}
	}
	return nil
}

func validateSpec(s *api.InstanceSpec) error {
	if s == nil {
		return api.Errorf(api.EInvalid, "start command without an instance spec")
	}
	if err := validateInstanceID(s.InstanceID); err != nil {
		return err
	}
	if err := api.ValidateName("app", s.AppName); err != nil {
		return err
	}
	if s.Process == "" || strings.ContainsAny(s.Process, "/ \t\n.*>") {
		return api.Errorf(api.EInvalid, "process type %q is not a plain name", s.Process)
	}
	image := s.Image != "" || s.ImageBlob != ""
	switch {
	case s.Image != "" && s.ImageBlob != "":
		return api.Errorf(api.EInvalid, "instance %s names both an image and an image tarball", s.InstanceID)
	case image && s.DropletBlob != "":
		return api.Errorf(api.EInvalid, "instance %s names both a droplet and an image", s.InstanceID)
	case s.ImageBlob != "" && !s.ImageBlob.Valid():
		return api.Errorf(api.EInvalid, "image tarball reference %q is not a sha256 blob reference", s.ImageBlob)
	case s.Image != "" && (len(s.Image) > 255 || strings.HasPrefix(s.Image, "-") || strings.ContainsFunc(s.Image, func(c rune) bool { return c <= ' ' || c == 0x7f })):
		return api.Errorf(api.EInvalid, "image %q is not an image name", s.Image)
	case !image && !s.DropletBlob.Valid():
		return api.Errorf(api.EInvalid, "droplet reference %q is not a sha256 blob reference", s.DropletBlob)
	}
	if err := validateRoutes(s.Routes); err != nil {
		return err
	}
	if !image && strings.TrimSpace(s.Command) == "" {
		return api.Errorf(api.EInvalid, "instance %s has no start command — add a Procfile entry for %q", s.InstanceID, s.Process)
	}
	switch s.HealthCheck.Type {
	case "", api.HealthPort, api.HealthHTTP, api.HealthProcess:
	default:
		return api.Errorf(api.EInvalid, "health check type %q is not port, http or process", s.HealthCheck.Type)
	}
	return nil
}

// startInstance records a new instance and starts its runner; a start for an
// instance already known is accepted and ignored.
func (e *Executor) startInstance(spec *api.InstanceSpec) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if _, ok := e.insts[spec.InstanceID]; ok {
		return nil
	}
	drv, iso, err := e.drivers.forSpec(spec)
	if err != nil {
		return err
	}
	in := newInstance(e, *spec, drv, iso)
	if err := in.persist(); err != nil {
		return err
	}
	e.insts[spec.InstanceID] = in
	e.wg.Add(1)
	go e.runInstance(in, false)
	return nil
}

func (e *Executor) forget(in *instance) {
	e.mu.Lock()
	if e.insts[in.spec.InstanceID] == in {
		delete(e.insts, in.spec.InstanceID)
	}
	e.mu.Unlock()
}

func (e *Executor) publishEvent(ev *api.InstanceEvent) {
	e.publishTo(api.SubjectInstanceEvent, ev)
}

func (e *Executor) publishTo(subject string, ev *api.InstanceEvent) {
	ev.Version = api.MessageVersion
	ev.NodeID = e.nodeID
	ev.Time = time.Now().UTC()
	if err := e.conn.Publish(subject, ev); err != nil {
		e.log.Warn("executor.event_publish_failed", "err", err)
	}
}

// --- routes ---

func (e *Executor) registerInterval() time.Duration { return time.Duration(e.regInterval.Load()) }

func (e *Executor) routerAnnounced(rs *api.RouterStart) {
	if rs.MinimumRegisterIntervalInSeconds > 0 {
		e.regInterval.Store(int64(time.Duration(rs.MinimumRegisterIntervalInSeconds) * time.Second))
	}
	e.registerAll() // a (re)started router learns every route at once
}

func (e *Executor) greetRouters(ctx context.Context) {
	gctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	rs := &api.RouterStart{}
	if err := e.conn.Request(gctx, api.SubjectRouterGreet, &struct{}{}, rs); err != nil {
		e.log.Debug("executor.no_router_answered", "err", err)
		return
	}
	if rs.MinimumRegisterIntervalInSeconds > 0 {
		e.regInterval.Store(int64(time.Duration(rs.MinimumRegisterIntervalInSeconds) * time.Second))
	}
}

func (e *Executor) registerLoop(ctx context.Context) {
	t := time.NewTimer(e.registerInterval())
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			e.registerAll()
			t.Reset(e.registerInterval())
		}
	}
}

func (e *Executor) registerAll() {
	for _, in := range e.snapshot() {
		in.register()
	}
}

func (e *Executor) snapshot() []*instance {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := make([]*instance, 0, len(e.insts))
	for _, in := range e.insts {
		out = append(out, in)
	}
	return out
}

// --- heartbeat ---

// tickFunc returns a channel that ticks every d and a func that stops it.
type tickFunc func(d time.Duration) (<-chan time.Time, func())

func newTicker(d time.Duration) (<-chan time.Time, func()) {
	t := time.NewTicker(d)
	return t.C, t.Stop
}

func (e *Executor) heartbeatLoop(ctx context.Context) {
	e.heartbeat()
	ticks, stop := e.heartbeatTicks(e.cfg.HeartbeatInterval)
	defer stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-ticks:
			e.heartbeat()
		}
	}
}

// heartbeat publishes the node and its instances. It never waits on a
// driver: usage is the latest sample sampleLoop took.

func (e *Executor) heartbeat() {
	isos := e.drivers.isolations
	// Stamped before the reports are taken: an instance event published
	// meanwhile is newer than this heartbeat, and controllers keep it.
	taken := time.Now().UTC()
	reports := []api.InstanceReport{}
	for _, in := range e.snapshot() {
		reports = append(reports, in.report())
	}
	hb := &api.NodeHeartbeat{
		Version: api.MessageVersion, NodeID: e.nodeID, Address: e.cfg.AdvertiseHost,
		Substrate: e.substrate, Isolations: isos, Capacity: e.capacity(), Labels: e.cfg.Labels,
		Instances: reports, Time: taken, Interval: e.cfg.HeartbeatInterval, Accel: e.drivers.accel,
	}
	if err := e.conn.Publish(api.SubjectNodeHeartbeat, hb); err != nil {
		e.log.Warn("executor.heartbeat_failed", "err", err)
	}
}

func (e *Executor) capacity() api.Capacity {
	c := api.Capacity{CPUs: runtime.NumCPU()}
	if data, err := os.ReadFile("/proc/meminfo"); err == nil {
		c.MemoryMB = memTotalMB(data)
	}
	var st syscall.Statfs_t
	if syscall.Statfs(e.cfg.DataDir, &st) == nil {
		c.DiskMB = int(st.Blocks * uint64(st.Bsize) >> 20)
	}
	return c
}

// memTotalMB reads MemTotal (kB) from /proc/meminfo content.
func memTotalMB(meminfo []byte) int {
	for line := range strings.Lines(string(meminfo)) {
		rest, ok := strings.CutPrefix(line, "MemTotal:")
		if !ok {
			continue
		}
		f := strings.Fields(rest)
		if len(f) == 0 {
			return 0
		}
		kb, err := strconv.Atoi(f[0])
		if err != nil {
			return 0
		}
		return kb >> 10
	}
	return 0
}
