package controller

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/strata-paas/strata/api"
)

// LeaseStore keeps leases by the database clock (docs/architecture.md,
// "Leader lease"); api/store implements it on SQLite and PostgreSQL.
type LeaseStore interface {
	// AcquireLease takes lease name for holder, or renews it, until ttl
	// from now by the database clock, and returns its term, which
	// increases whenever the holder changes. EConflict if another holder's
	// lease has not expired.
	AcquireLease(ctx context.Context, name, holder string, ttl time.Duration) (int64, error)
	// ReleaseLease ends holder's lease of term at once (nil if holder no
	// longer holds it at term).
	ReleaseLease(ctx context.Context, name, holder string, term int64) error
}

// The store writes the leader-only work makes (instances, builds, apps,
// releases, events) check, when their context carries an api.Fence, in the
// write's own transaction, that the fence's holder still holds the lease at
// its term and that it has not expired, and are refused with EConflict
// otherwise (docs/architecture.md, "Leader lease", says which store paths).

// clock is the time the leader loop reads; tests inject a fake one.
type clock interface {
	Now() time.Time
	After(d time.Duration) <-chan time.Time
}

type realClock struct{}

func (realClock) Now() time.Time                         { return time.Now() }
func (realClock) After(d time.Duration) <-chan time.Time { return time.After(d) }

// DefaultControllerID is the hostname and a random suffix: unique per
// process, so a restarted controller is a new holder.
func DefaultControllerID() string {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "controller"
	}
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return host + "-" + hex.EncodeToString(b)
}

// leader holds the leader lease and runs the leader-only work (the
// converger with its scheduler, plan applier and build sweeps) while, and
// only while, it holds it. It renews every ttl/3. A renewal that fails ends
// the work at once; one that hangs ends it at the watchdog, 2/3 ttl after
// the last successful renewal was sent — before the lease, which runs from
// when the database executed that renewal, can expire and be taken by
// another controller.
type leader struct {
	store LeaseStore
	id    string
	ttl   time.Duration
	clock clock
	log   *slog.Logger

	mu    sync.Mutex
	term  int64     // term of the current leadership; 0 when not leading
	until time.Time // the watchdog: stop acting by then
}

func newLeader(store LeaseStore, id string, ttl time.Duration, c clock, log *slog.Logger) *leader {
	return &leader{store: store, id: id, ttl: ttl, clock: c, log: log.With("controller", id)}
}

// leadKey carries the leadership a context acts under.
type leadKey struct{}

type leadership struct {
	l    *leader
	term int64
}

// checkLeading returns nil for a context of no leader work (a REST
// request), and an error for one whose leadership has ended or whose
// watchdog time has passed (a process paused past it acts no more).
func checkLeading(ctx context.Context) error {
	ld, ok := ctx.Value(leadKey{}).(leadership)
	if !ok {
		return nil
	}
	if !ld.l.acting(ld.term) {
		return api.Errorf(api.EConflict, "controller %s no longer leads at term %d", ld.l.id, ld.term)
	}
	return ctx.Err()
}

// commandTerm is the leader term a node command sent with ctx carries: the
// fence's term for leader work, 0 otherwise.
func commandTerm(ctx context.Context) int64 {
	f, _ := api.FenceFrom(ctx)
	return f.Term
}

func (l *leader) acting(term int64) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.term == term && term > 0 && l.clock.Now().Before(l.until)
}

// leading returns the current term, or 0.
func (l *leader) leading() int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.term > 0 && l.clock.Now().Before(l.until) {
		return l.term
	}
	return 0
}

func (l *leader) set(term int64, until time.Time) {
	l.mu.Lock()
	l.term, l.until = term, until
	l.mu.Unlock()
}

type acquired struct {
	term int64
	err  error
}

// run keeps the lease until ctx ends, running work (with a context that
// carries the fence and ends when leadership does) while it leads. It
// releases the lease when ctx ends.
func (l *leader) run(ctx context.Context, work func(ctx context.Context)) {
	var stopWork func()
	term, held := int64(0), int64(0) // leading term; last term acquired
	stop := func(why string, err error) {
		if stopWork == nil {
			return
		}
		l.set(0, time.Time{}) // node commands are refused from here
		stopWork()
		stopWork = nil
		l.log.Warn("leader.stopped", "term", term, "why", why, "err", err)
	}
	defer func() {
		stop("shutdown", nil)
		if held > 0 {
			rctx, cancel := context.WithTimeout(context.Background(), l.ttl/3)
			defer cancel()
			if err := l.store.ReleaseLease(rctx, api.LeaseLeader, l.id, held); err != nil {
				l.log.Warn("leader.release_failed", "term", held, "err", err)
			}
		}
	}()
	for {
		sent := l.clock.Now()
		result := make(chan acquired, 1)
		go func() {
			actx, cancel := context.WithTimeout(ctx, l.ttl/3)
			defer cancel()
			t, err := l.store.AcquireLease(actx, api.LeaseLeader, l.id, l.ttl)
			result <- acquired{t, err}
		}()
		var res acquired
	wait:
		for {
			var watchdog <-chan time.Time
			if stopWork != nil {
				l.mu.Lock()
				watchdog = l.clock.After(l.until.Sub(l.clock.Now()))
				l.mu.Unlock()
			}
			select {
			case <-ctx.Done():
				return
			case <-watchdog:
				select {
				case res = <-result: // the answer came just in time
					break wait
				default:
				}
				stop("renewal did not answer before the watchdog", nil)
			case res = <-result:
				break wait
			}
		}
		switch {
		case res.err != nil:
			stop("renewal failed", res.err)
			if api.ErrorCode(res.err) != api.EConflict {
				l.log.Info("leader.acquire_failed", "err", res.err)
			}
			term = 0
		case res.term != term || stopWork == nil:
			// Newly leading, or the term moved while this process was
			// paused: the old term's work must not go on.
			stop("term changed", nil)
			term, held = res.term, res.term
			l.set(term, sent.Add(l.ttl*2/3))
			stopWork = l.startWork(ctx, term, work)
			l.log.Info("leader.acquired", "term", term)
		default:
			l.set(term, sent.Add(l.ttl*2/3))
		}
		select {
		case <-ctx.Done():
			return
		case <-l.clock.After(sent.Add(l.ttl / 3).Sub(l.clock.Now())):
		}
	}
}

// startWork runs work under term and returns what cancels it and waits for
// it to end.
func (l *leader) startWork(ctx context.Context, term int64, work func(ctx context.Context)) func() {
	wctx := context.WithValue(ctx, leadKey{}, leadership{l, term})
	wctx = api.WithFence(wctx, api.Fence{Lease: api.LeaseLeader, Holder: l.id, Term: term})
	wctx, cancel := context.WithCancel(wctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		work(wctx)
	}()
	return func() { cancel(); <-done }
}

// act keeps the leader lease until ctx ends, running lead while it holds
// it and follow while it does not.
func (c *Controller) act(ctx context.Context) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		c.follow(ctx)
	}()
	c.leader.run(ctx, c.lead)
	<-done
}

// follow keeps, on a controller that does not lead, what its REST answers
// read from the converger's passes elsewhere: the draining nodes (strata
// nodes).
func (c *Controller) follow(ctx context.Context) {
	t := time.NewTicker(c.cfg.ConvergeInterval)
	defer t.Stop()
	for {
		if c.LeaderTerm() == 0 {
			if drained, err := c.Placement.store.DrainingNodes(ctx); err == nil {
				c.Nodes.setDrained(drained)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// lead is the leader-only work, run while this controller holds the lease:
// scale to zero's sleep and wake (Sleeper.pass), then a converger pass (the
// stuck-build sweep, scheduler and plan applier) every
// ConvergeInterval or when kicked, with ctx's fence on every write.
func (c *Controller) lead(ctx context.Context) {
	c.leadCtx.Store(&ctx)
	defer c.leadCtx.Store(nil)
	t := time.NewTicker(c.cfg.ConvergeInterval)
	defer t.Stop()
	for {
		if checkLeading(ctx) == nil {
			c.Sleeper.pass(ctx, c.cfg.Now())
			c.Converger.converge(ctx)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-c.sig.kick:
		}
	}
}

// LeaderTerm returns the leader lease term this controller acts under, or
// 0 when it does not lead.
func (c *Controller) LeaderTerm() int64 { return c.leader.leading() }

// ControllerID returns the name this controller holds the lease under.
func (c *Controller) ControllerID() string { return c.cfg.ControllerID }
