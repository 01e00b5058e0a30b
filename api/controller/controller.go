package controller

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/strata-paas/strata/api"
	"github.com/strata-paas/strata/api/bus"
)

// Default names of the tenancy objects every installation has.
const (
	DefaultOrg   = "default"
	DefaultSpace = "default"
)

var (
	_ api.AuthService   = (*Controller)(nil)
	_ api.AppService    = (*Controller)(nil)
	_ api.DeployService = (*Controller)(nil)
	_ api.LogService    = (*Controller)(nil)
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
	Logger     *slog.Logger
	Now        func() time.Time
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
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
}

// Bus is what the controller needs of NATS; *bus.Conn implements it.
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

// Controller implements the control plane's services. Methods are safe for
// concurrent use; Run must be running for builds, heartbeats and convergence
// to make progress.
type Controller struct {
	cfg   Config
	log   *slog.Logger
	store Store
	blobs api.BlobStore
	conn  Bus

	spaceMu sync.Mutex
	spaceID string

	queueMu    sync.Mutex
	queueReady bool

	kick  chan struct{}
	ready chan struct{}

	// changed is closed and replaced whenever instance or build state changes,
	// waking Deploy waiters.
	changedMu sync.Mutex
	changed   chan struct{}

	nodes *nodeRegistry
	logs  *logStore

	startedMu sync.Mutex
	started   time.Time // when Run began; zero before
	missing   map[string]missingStart
	// routesSent: instance id → its node's heartbeat count when its routes
	// were last sent (guarded by applyMu).
	routesSent map[string]int
	applyMu    sync.Mutex // serialises converger passes; guards missing

	stopMu   sync.Mutex
	stopping map[string]bool // instance ids with a stop in flight

	locks appLocks // per-app read-modify-write changes

	unplaceableMu sync.Mutex
	unplaceable   map[string]string // app id → latest placement problem
}

// New returns a Controller. It does no I/O; Run starts the work.
func New(cfg Config, store Store, blobs api.BlobStore, conn Bus) (*Controller, error) {
	if store == nil || blobs == nil || conn == nil {
		return nil, errors.New("controller: store, blobs and conn are required")
	}
	cfg.setDefaults()
	c := &Controller{
		cfg: cfg, log: cfg.Logger, store: store, blobs: blobs, conn: conn,
		kick:       make(chan struct{}, 1),
		ready:      make(chan struct{}),
		changed:    make(chan struct{}),
		nodes:      newNodeRegistry(),
		missing:    map[string]missingStart{},
		routesSent: map[string]int{},
		stopping:   map[string]bool{},
	}
	c.logs = newLogStore(cfg.LogLines, cfg.LogDir, cfg.LogFileBytes, c.log)
	return c, nil
}

// Bootstrap ensures the default org and space and an admin user named
// adminName. When it creates the admin it also creates an API token, stores
// only its SHA-256 hash, and returns the token with created = true; otherwise
// it returns "", false.
func (c *Controller) Bootstrap(ctx context.Context, adminName string) (string, bool, error) {
	if err := api.ValidateName("user", adminName); err != nil {
		return "", false, err
	}
	org, err := c.store.OrgByName(ctx, DefaultOrg)
	if api.ErrorCode(err) == api.ENotFound {
		org = &api.Org{ID: uuid.NewString(), Name: DefaultOrg}
		err = c.store.CreateOrg(ctx, org)
	}
	if err != nil {
		return "", false, fmt.Errorf("bootstrap org: %w", err)
	}
	_, err = c.store.SpaceByName(ctx, org.ID, DefaultSpace)
	if api.ErrorCode(err) == api.ENotFound {
		err = c.store.CreateSpace(ctx, &api.Space{ID: uuid.NewString(), OrgID: org.ID, Name: DefaultSpace})
	}
	if err != nil {
		return "", false, fmt.Errorf("bootstrap space: %w", err)
	}
	_, err = c.store.UserByName(ctx, adminName)
	if err == nil {
		return "", false, nil
	}
	if api.ErrorCode(err) != api.ENotFound {
		return "", false, fmt.Errorf("bootstrap admin: %w", err)
	}
	u := &api.User{ID: uuid.NewString(), Name: adminName, Admin: true}
	if err := c.store.CreateUser(ctx, u); err != nil {
		return "", false, fmt.Errorf("bootstrap admin: %w", err)
	}
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		return "", false, err
	}
	token := hex.EncodeToString(raw)
	if err := c.store.CreateToken(ctx, u.ID, hashToken(token), "bootstrap admin token"); err != nil {
		return "", false, fmt.Errorf("bootstrap token: %w", err)
	}
	c.log.Info("bootstrap.admin_created", "user", adminName)
	return token, true, nil
}

func hashToken(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

// space returns the ID of the space apps live in (the default space for now).
func (c *Controller) space(ctx context.Context) (string, error) {
	c.spaceMu.Lock()
	defer c.spaceMu.Unlock()
	if c.spaceID != "" {
		return c.spaceID, nil
	}
	org, err := c.store.OrgByName(ctx, DefaultOrg)
	if err != nil {
		return "", noSpace(err)
	}
	sp, err := c.store.SpaceByName(ctx, org.ID, DefaultSpace)
	if err != nil {
		return "", noSpace(err)
	}
	c.spaceID = sp.ID
	return sp.ID, nil
}

func noSpace(err error) error {
	if api.ErrorCode(err) == api.ENotFound {
		return api.Errorf(api.EUnavailable, "the default space does not exist yet — start stratad once so it bootstraps")
	}
	return err
}

// Run subscribes to builds, heartbeats, instance events and logs, and runs
// the converger until ctx ends. It returns nil when ctx ends, or an error if
// it cannot subscribe.
func (c *Controller) Run(ctx context.Context) error {
	c.startedMu.Lock()
	c.started = c.cfg.Now()
	c.startedMu.Unlock()

	if err := c.ensureQueue(ctx); err != nil {
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
	if err := add(bus.SubscribeJSON(c.conn, api.SubjectLogsAll, "", func(_ string, e *api.LogEnvelope) { c.logs.add(*e) })); err != nil {
		return err
	}
	c.conn.OnConnectionChange(func(up bool) {
		if up {
			c.nodes.resume(c.cfg.Now())
		} else {
			c.nodes.suspend()
		}
	})
	if err := add(bus.SubscribeJSON(c.conn, api.SubjectNodeHeartbeat, "", func(_ string, hb *api.NodeHeartbeat) {
		c.nodes.heartbeat(hb, c.cfg.Now())
	})); err != nil {
		return err
	}
	if err := add(bus.SubscribeJSON(c.conn, api.SubjectInstanceEvent, "controllers", func(_ string, ev *api.InstanceEvent) {
		c.nodes.event(ev, c.cfg.Now())
		c.instanceEvent(ctx, ev)
	})); err != nil {
		return err
	}
	if err := add(bus.Handle(c.conn, api.SubjectBuildResult, "controllers", c.buildResult)); err != nil {
		return err
	}
	if err := c.flush(ctx); err != nil && ctx.Err() == nil {
		c.log.Warn("controller.flush_failed", "err", err)
	}
	c.log.Info("controller.running")
	close(c.ready)

	t := time.NewTicker(c.cfg.ConvergeInterval)
	defer t.Stop()
	for {
		c.converge(ctx)
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		case <-c.kick:
		}
	}
}

// Ready is closed once Run has subscribed to the bus (call Run once).
func (c *Controller) Ready() <-chan struct{} { return c.ready }

// Kick asks the converger to run now (it coalesces repeated kicks).
func (c *Controller) Kick() {
	select {
	case c.kick <- struct{}{}:
	default:
	}
}

func (c *Controller) ensureQueue(ctx context.Context) error {
	c.queueMu.Lock()
	defer c.queueMu.Unlock()
	if c.queueReady {
		return nil
	}
	if err := c.conn.EnsureWorkQueue(ctx, api.BuildJobsStream, api.SubjectBuildJobs); err != nil {
		return err
	}
	c.queueReady = true
	return nil
}

// notifyChanged wakes everyone waiting on changedCh.
func (c *Controller) notifyChanged() {
	c.changedMu.Lock()
	close(c.changed)
	c.changed = make(chan struct{})
	c.changedMu.Unlock()
}

func (c *Controller) changedCh() <-chan struct{} {
	c.changedMu.Lock()
	defer c.changedMu.Unlock()
	return c.changed
}

// record adds an audit event and mirrors it as a "strata" log line of the app.
func (c *Controller) record(ctx context.Context, app *api.App, typ, format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	e := &api.Event{ID: uuid.NewString(), AppID: app.ID, Type: typ, Actor: api.ActorName(ctx), Message: msg, Time: c.cfg.Now()}
	if err := c.store.AddEvent(ctx, e); err != nil {
		c.log.Warn("controller.event_failed", "app", app.Name, "type", typ, "err", err)
	}
	c.strataLine(app.Name, typ+": "+msg)
}

// strataLine publishes a platform log line for an app.
func (c *Controller) strataLine(app, line string) {
	env := api.LogEnvelope{Time: c.cfg.Now(), App: app, Source: api.LogSourceStrata, Line: line}
	if err := c.conn.Publish(api.SubjectLogs(app), env); err != nil {
		c.logs.add(env)
	}
}

func (c *Controller) urls(routes []*api.Route) []string {
	out := make([]string, 0, len(routes))
	for _, r := range routes {
		out = append(out, r.URL(c.cfg.RouterPort))
	}
	return out
}

// flush waits (at most CommandTimeout) until the bus server has processed
// everything this connection sent, including subscriptions.
func (c *Controller) flush(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.CommandTimeout)
	defer cancel()
	return c.conn.Flush(ctx)
}
