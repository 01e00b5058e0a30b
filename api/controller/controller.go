package controller

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/strata-paas/strata/api"
	"github.com/strata-paas/strata/api/bus"
)

// Config configures a Controller. Zero fields take the defaults noted.
type Config struct {
	Domain            string        // app domain; default "localhost"
	RouterPort        string        // router port in app URLs; default "8080" ("" or "80" omits it)
	ConvergeInterval  time.Duration // default 1s
	NodeTTL           time.Duration // a node silent this long is lost; default 5s
	BuildTimeout      time.Duration // builds pending/staging longer than this + 1m are failed; default 15m
	DeployWaitTimeout time.Duration // how long Deploy waits for healthy instances; default 2m
	CommandTimeout    time.Duration // timeout of one node command; default 5s
	LogLines          int           // per-app bounded log ring; default 2000
	// FailedStarts is how many runs in a row one new instance may end
	// without ever becoming healthy before Deploy gives its release up and
	// rolls back; default 3.
	FailedStarts int
	// LogDir, when set, keeps per-app log files (rotated at LogFileBytes, one
	// old file kept) so recent logs survive restarts.
	LogDir       string
	LogFileBytes int64 // default 4 MiB
	// Overcommit multiplies node memory for placement; default 1.
	Overcommit float64
	// ControllerID names this controller as holder of the leader lease;
	// default DefaultControllerID(). LeaseTTL is the lease's time to live
	// (default 4s): a controller that cannot renew stops acting within
	// 2/3 of it, and another takes over after it (docs/architecture.md,
	// "Leader lease").
	ControllerID string
	LeaseTTL     time.Duration
	Logger       *slog.Logger
	Now          func() time.Time
}

// DefaultConfig returns the defaults.
func DefaultConfig() Config {
	return Config{
		Domain:            "localhost",
		RouterPort:        "8080",
		ConvergeInterval:  time.Second,
		NodeTTL:           5 * time.Second,
		BuildTimeout:      15 * time.Minute,
		DeployWaitTimeout: 2 * time.Minute,
		CommandTimeout:    5 * time.Second,
		FailedStarts:      3,
		LogLines:          2000,
		LogFileBytes:      4 << 20,
		Overcommit:        1,
		LeaseTTL:          4 * time.Second,
	}
}

func (cfg *Config) setDefaults() {
	d := DefaultConfig()
	if cfg.Domain == "" {
		cfg.Domain = d.Domain
	}
	if cfg.RouterPort == "" {
		cfg.RouterPort = d.RouterPort
	}
	if cfg.ConvergeInterval <= 0 {
		cfg.ConvergeInterval = d.ConvergeInterval
	}
	if cfg.NodeTTL <= 0 {
		cfg.NodeTTL = d.NodeTTL
	}
	if cfg.BuildTimeout <= 0 {
		cfg.BuildTimeout = d.BuildTimeout
	}
	if cfg.DeployWaitTimeout <= 0 {
		cfg.DeployWaitTimeout = d.DeployWaitTimeout
	}
	if cfg.CommandTimeout <= 0 {
		cfg.CommandTimeout = d.CommandTimeout
	}
	if cfg.FailedStarts <= 0 {
		cfg.FailedStarts = d.FailedStarts
	}
	if cfg.LogLines <= 0 {
		cfg.LogLines = d.LogLines
	}
	if cfg.LogFileBytes <= 0 {
		cfg.LogFileBytes = d.LogFileBytes
	}
	if cfg.Overcommit <= 0 {
		cfg.Overcommit = d.Overcommit
	}
	if cfg.ControllerID == "" {
		cfg.ControllerID = DefaultControllerID()
	}
	if cfg.LeaseTTL <= 0 {
		cfg.LeaseTTL = d.LeaseTTL
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
}

// Bus is what the controller needs of NATS; *bus.Conn implements it. Each
// service takes only the part it uses (publisher, requester, flusher,
// deployBus).
type Bus interface {
	// Publish sends v as JSON on subject without waiting for the server.
	Publish(subject string, v any) error
	// Flush waits until the server has processed everything published so far.
	Flush(ctx context.Context) error
	// Request sends req as JSON on subject and decodes the reply into resp.
	Request(ctx context.Context, subject string, req, resp any) error
	// Subscribe calls fn for each message on subject (see bus.Handle).
	Subscribe(subject, queue string, fn func(*bus.Msg)) (*bus.Subscription, error)
	// OnConnectionChange calls fn when the connection drops or comes back.
	OnConnectionChange(fn func(connected bool))
	// EnsureWorkQueue creates the JetStream work queue stream if needed.
	EnsureWorkQueue(ctx context.Context, stream string, subjects ...string) error
	// Enqueue adds a job to a work queue, returning once it is stored.
	Enqueue(ctx context.Context, subject string, v any) error
}

var _ Bus = (*bus.Conn)(nil)

// flusher is the part of the bus that waits for the server.
type flusher interface {
	Flush(ctx context.Context) error
}

// flushBus waits (at most timeout) until the bus server has processed
// everything this connection sent, including subscriptions.
func flushBus(ctx context.Context, f flusher, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	return f.Flush(ctx)
}

// Controller is the control plane: the services below, wired to one store,
// blob store and bus, and Run, which feeds them from the bus and runs the
// converger. cmd/stratad hands each service to the adapter that uses it
// (docs/architecture.md, "Controller services"). Methods are safe for
// concurrent use; Run must be running for builds, heartbeats and convergence
// to make progress.
type Controller struct {
	Tenancy    *Tenancy    // tokens → principals (api.AuthService), authorization, targets
	Users      *Users      // users, passwords, logins, tokens (api.UserService)
	Orgs       *Orgs       // orgs, spaces, roles (api.OrgService)
	Quotas     *Quotas     // quotas of orgs and spaces (api.QuotaService)
	Buildpacks *Buildpacks // registered classic buildpacks (api.BuildpackService)
	Domains    *Domains    // domains routes may use (api.DomainService)
	Apps       *Apps       // apps, releases, env, scale, health checks
	Builds     *Builds     // build results → releases
	Deploys    *Deploys    // pushes (api.DeployService)
	Converger  *Converger  // desired → actual
	Nodes      *Nodes      // executors and their instance reports
	Logs       *Logs       // api.LogService
	Routes     *Routes     // api.RouteService
	Placement  *Placement  // api.PlacementService
	Tasks      *Tasks      // one-off tasks
	Sleeper    *Sleeper    // scale to zero: idle times, sleep and wake

	cfg    Config
	log    *slog.Logger
	conn   Bus
	sig    *signals
	leader *leader
	ready  chan struct{}
	// leadCtx is the context of the leader-only work while this
	// controller leads (it carries the fence), nil otherwise.
	leadCtx atomic.Pointer[context.Context]
}

// NodeAdmin is the nodes as admins operate them: the list from Nodes, drain
// and undrain from Placement (the console's nodes page).
type NodeAdmin struct {
	nodes     *Nodes
	placement *Placement
}

// NodeAdmin returns the node list and drain service.
func (c *Controller) NodeAdmin() NodeAdmin { return NodeAdmin{c.Nodes, c.Placement} }

// Nodes lists the executors (admin).
func (n NodeAdmin) Nodes(ctx context.Context) ([]api.Node, error) { return n.nodes.Nodes(ctx) }

// DrainNode drains a node (admin).
func (n NodeAdmin) DrainNode(ctx context.Context, id string) (*api.Node, error) {
	return n.placement.DrainNode(ctx, id)
}

// UndrainNode undrains a node (admin).
func (n NodeAdmin) UndrainNode(ctx context.Context, id string) (*api.Node, error) {
	return n.placement.UndrainNode(ctx, id)
}

// Operate is api.OperateService: health checks from Apps, tasks from Tasks.
type Operate struct {
	*Apps
	*Tasks
}

var _ api.OperateService = Operate{}

// New wires the services. It does no I/O; Run starts the work.
func New(cfg Config, store Store, blobs api.BlobStore, conn Bus) (*Controller, error) {
	if store == nil || blobs == nil || conn == nil {
		return nil, errors.New("controller: store, blobs and conn are required")
	}
	cfg.setDefaults()
	log := cfg.Logger
	logs := newLogStore(cfg.LogLines, cfg.LogDir, cfg.LogFileBytes, log)
	tenancy := newTenancy(store, log)
	find := appFinder{tenancy: tenancy, apps: store}
	aud := &audit{store: store, spaces: store, conn: conn, logs: logs, now: cfg.Now, log: log}
	sig := newSignals()
	locks := &appLocks{db: store}
	cmds := nodeCommands{conn: conn, timeout: cfg.CommandTimeout}
	un := &unplaceable{}

	nodes := &Nodes{nodeRegistry: newNodeRegistry(), cfg: cfg, log: log, store: store, audit: aud, sig: sig}
	metrics := newMetrics(cfg.Now)
	quotas := &Quotas{log: log, store: store, tenancy: tenancy, audit: aud}
	buildpacks := &Buildpacks{log: log, store: store, blobs: blobs}
	domains := &Domains{cfg: cfg, log: log, store: store, tenancy: tenancy, audit: aud}
	placement := &Placement{cfg: cfg, log: log, store: store, find: find, audit: aud, sig: sig, nodes: nodes, unplaceable: un}
	apps := &Apps{cfg: cfg, log: log, store: store, find: find, audit: aud, sig: sig, locks: locks, nodeCmds: cmds, nodes: nodes, placement: placement, quotas: quotas, bus: conn, metrics: metrics}
	routes := &Routes{cfg: cfg, store: store, find: find, audit: aud, sig: sig, locks: locks, quotas: quotas, domains: domains}
	builds := &Builds{cfg: cfg, log: log, store: store, audit: aud, sig: sig, locks: locks}
	conv := &Converger{cfg: cfg, log: log, store: store, audit: aud, sig: sig, nodeCmds: cmds, nodes: nodes,
		placement: placement, builds: builds, apps: apps, unplaceable: un,
		missing: map[string]missingStart{}, routesSent: map[string]int{}, stopping: map[string]bool{}}
	apps.sleep = newSleeper(log, store, aud, sig, conn, conv.routeURIs)
	c := &Controller{
		Quotas: quotas, Buildpacks: buildpacks, Domains: domains, Tenancy: tenancy, Users: newUsers(cfg, log, store, aud), Orgs: &Orgs{log: log, store: store, tenancy: tenancy, apps: apps, audit: aud}, Apps: apps, Builds: builds, Nodes: nodes, Routes: routes, Placement: placement,
		Logs: &Logs{now: cfg.Now, find: find, logs: logs},
		Deploys: &Deploys{cfg: cfg, log: log, store: store, blobs: blobs, conn: conn, find: find, audit: aud, sig: sig, locks: locks,
			apps: apps, builds: builds, routes: routes, placement: placement, nodes: nodes, unplaceable: un, buildpacks: buildpacks},
		Converger: conv, Sleeper: apps.sleep,
		Tasks: &Tasks{cfg: cfg, log: log, store: store, conn: conn, find: find, audit: aud, apps: apps, nodes: nodes, nodeCmds: cmds},
		cfg:   cfg, log: log, conn: conn, sig: sig, ready: make(chan struct{}),
		leader: newLeader(store, cfg.ControllerID, cfg.LeaseTTL, realClock{}, log),
	}
	return c, nil
}

// Operate returns the health-check and task service.
func (c *Controller) Operate() Operate { return Operate{c.Apps, c.Tasks} }

// Run subscribes to builds, heartbeats, instance events and logs, and,
// while this controller holds the leader lease, runs the converger (see
// lead). It returns nil when ctx ends, or an error if it cannot subscribe.
func (c *Controller) Run(ctx context.Context) error {
	c.Nodes.start()
	if err := c.Deploys.ensureQueue(ctx); err != nil {
		c.log.Warn("controller.queue_unavailable", "err", err)
	}
	var subs []*bus.Subscription
	defer func() {
		for _, s := range subs {
			_ = s.Unsubscribe()
		}
	}()
	add := func(s *bus.Subscription, err error) error {
		if err != nil {
			return err
		}
		subs = append(subs, s)
		return nil
	}
	if err := add(bus.SubscribeJSON(c.conn, api.SubjectLogsAll, "", func(_ string, e *api.LogEnvelope) {
		c.Logs.add(*e)
		c.Apps.metrics.routerLine(*e)
	})); err != nil {
		return err
	}
	c.conn.OnConnectionChange(func(up bool) {
		if up {
			c.Nodes.resume(c.cfg.Now())
		} else {
			c.Nodes.suspend()
		}
	})
	if err := add(bus.SubscribeJSON(c.conn, api.SubjectNodeHeartbeat, "", func(_ string, hb *api.NodeHeartbeat) {
		c.Nodes.heartbeat(hb, c.cfg.Now())
		c.Apps.metrics.heartbeat(hb, c.cfg.Now())
	})); err != nil {
		return err
	}
	// Every controller hears every instance event (no queue group): each
	// keeps its node listings current and wakes its own deploy waits; the
	// leader alone writes the instance row, fenced by its term. An event
	// that comes while no controller leads is not written: the next
	// leader's passes copy the state from heartbeats (reconcileReports).
	if err := add(bus.SubscribeJSON(c.conn, api.SubjectInstanceEvent, "", func(_ string, ev *api.InstanceEvent) {
		c.Nodes.event(ev, c.cfg.Now())
		if lctx := c.leadCtx.Load(); lctx != nil {
			c.Nodes.instanceEvent(*lctx, ev)
		} else {
			c.sig.notifyChanged()
		}
	})); err != nil {
		return err
	}
	if err := add(bus.Handle(c.conn, api.SubjectBuildResult, "controllers", c.Builds.buildResult)); err != nil {
		return err
	}
	// Scale to zero: every controller keeps the request times and wake-ups
	// (the leader acts on them) and republishes sleeping routes to a router
	// that starts.
	if err := add(bus.SubscribeJSON(c.conn, api.SubjectRouterActivity, "", func(_ string, m *api.RouterActivity) {
		c.Sleeper.activity(m)
	})); err != nil {
		return err
	}
	if err := add(bus.SubscribeJSON(c.conn, api.SubjectRouterWake, "", func(_ string, w *api.RouterWake) {
		c.Sleeper.wake(w, c.cfg.Now())
	})); err != nil {
		return err
	}
	if err := add(bus.SubscribeJSON(c.conn, api.SubjectRouterStart, "", func(_ string, _ *api.RouterStart) {
		c.Sleeper.routerStarted()
	})); err != nil {
		return err
	}
	if err := flushBus(ctx, c.conn, c.cfg.CommandTimeout); err != nil && ctx.Err() == nil {
		c.log.Warn("controller.flush_failed", "err", err)
	}
	c.log.Info("controller.running")
	close(c.ready)
	c.act(ctx)
	return nil
}

// Ready is closed once Run has subscribed to the bus (call Run once).
func (c *Controller) Ready() <-chan struct{} { return c.ready }
