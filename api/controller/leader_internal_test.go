package controller

import (
	"context"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/strata-paas/strata/api"
)

// leaseClock is a clock that moves only when told to.
type leaseClock struct {
	mu      sync.Mutex
	now     time.Time
	waiters []clockWaiter
}

type clockWaiter struct {
	at time.Time
	ch chan time.Time
}

func newLeaseClock() *leaseClock {
	return &leaseClock{now: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
}

func (c *leaseClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *leaseClock) After(d time.Duration) <-chan time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	ch := make(chan time.Time, 1)
	if d <= 0 {
		ch <- c.now
		return ch
	}
	c.waiters = append(c.waiters, clockWaiter{c.now.Add(d), ch})
	return ch
}

func (c *leaseClock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	kept := c.waiters[:0]
	for _, w := range c.waiters {
		if w.at.After(c.now) {
			kept = append(kept, w)
			continue
		}
		w.ch <- c.now
	}
	c.waiters = kept
}

// fakeLeases is a lease table whose "database clock" is the fake clock,
// with the semantics of api/store's upsert; a holder can be cut off from it
// (its calls fail) or hung (its calls block until ctx ends or it is healed).
type fakeLeases struct {
	clock *leaseClock
	calls chan string // holder of each AcquireLease call, once answered

	mu     sync.Mutex
	holder string
	term   int64
	expiry time.Time
	cut    map[string]bool
	hang   map[string]chan struct{}
}

func newFakeLeases(c *leaseClock) *fakeLeases {
	return &fakeLeases{clock: c, calls: make(chan string, 1000), cut: map[string]bool{}, hang: map[string]chan struct{}{}}
}

func (f *fakeLeases) AcquireLease(ctx context.Context, name, holder string, ttl time.Duration) (int64, error) {
	f.mu.Lock()
	h := f.hang[holder]
	f.mu.Unlock()
	if h != nil {
		select {
		case <-h:
		case <-ctx.Done():
			return 0, api.Errorf(api.ETimeout, "hung")
		}
	}
	defer func() {
		select {
		case f.calls <- holder:
		default: // nobody waits for it
		}
	}()
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.cut[holder] {
		return 0, api.Errorf(api.EUnavailable, "database unreachable")
	}
	now := f.clock.Now()
	if f.holder != "" && f.holder != holder && !f.expiry.Before(now) {
		return 0, api.Errorf(api.EConflict, "held by %s", f.holder)
	}
	if f.holder != holder {
		f.term++
	}
	f.holder, f.expiry = holder, now.Add(ttl)
	return f.term, nil
}

func (f *fakeLeases) ReleaseLease(ctx context.Context, name, holder string, term int64) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.holder == holder && f.term == term {
		f.expiry = f.clock.Now().Add(-time.Second)
	}
	return nil
}

func (f *fakeLeases) expires() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.expiry
}

func (f *fakeLeases) setCut(holder string, cut bool) {
	f.mu.Lock()
	f.cut[holder] = cut
	f.mu.Unlock()
}

func (f *fakeLeases) setHang(holder string) {
	f.mu.Lock()
	f.hang[holder] = make(chan struct{})
	f.mu.Unlock()
}

// waitCall waits until each of holders made another AcquireLease call
// and it was answered.
func (f *fakeLeases) waitCall(t *testing.T, holders ...string) {
	t.Helper()
	deadline := time.After(10 * time.Second)
	want := map[string]bool{}
	for _, h := range holders {
		want[h] = true
	}
	for len(want) > 0 {
		select {
		case h := <-f.calls:
			delete(want, h)
		case <-deadline:
			t.Fatalf("no lease call of %v", want)
		}
	}
}

// work records one leadership's work: its context, when it started and
// when it ended (by the fake clock).
type work struct {
	ctx     context.Context
	term    int64
	started time.Time
	ended   chan time.Time
}

type testLeader struct {
	l     *leader
	works chan *work
	stop  func()
}

func startTestLeader(t *testing.T, leases *fakeLeases, c *leaseClock, id string, ttl time.Duration) *testLeader {
	tl := &testLeader{l: newLeader(leases, id, ttl, c, slog.New(slog.NewTextHandler(io.Discard, nil))), works: make(chan *work, 10)}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		tl.l.run(ctx, func(ctx context.Context) {
			f, _ := api.FenceFrom(ctx)
			w := &work{ctx: ctx, term: f.Term, started: c.Now(), ended: make(chan time.Time, 1)}
			tl.works <- w
			<-ctx.Done()
			w.ended <- c.Now()
		})
	}()
	tl.stop = func() { cancel(); <-done }
	t.Cleanup(tl.stop)
	return tl
}

func (tl *testLeader) nextWork(t *testing.T) *work {
	t.Helper()
	select {
	case w := <-tl.works:
		return w
	case <-time.After(10 * time.Second):
		t.Fatalf("%s: no work started", tl.l.id)
		return nil
	}
}

func (w *work) waitEnd(t *testing.T) time.Time {
	t.Helper()
	select {
	case at := <-w.ended:
		return at
	case <-time.After(10 * time.Second):
		t.Fatal("work did not end")
		return time.Time{}
	}
}

// renewed waits until tl's loop took in the renewal it sent at the fake
// clock's present (its watchdog moved to 2/3 ttl from now).
func (tl *testLeader) renewed(t *testing.T, c *leaseClock) {
	t.Helper()
	want := c.Now().Add(tl.l.ttl * 2 / 3)
	for range 10000 {
		tl.l.mu.Lock()
		got := tl.l.until
		tl.l.mu.Unlock()
		if got.Equal(want) {
			return
		}
		time.Sleep(time.Millisecond)
	}
	t.Fatalf("%s: renewal not taken in", tl.l.id)
}

func (tl *testLeader) noWork(t *testing.T) {
	t.Helper()
	select {
	case w := <-tl.works:
		t.Fatalf("%s: unexpected work of term %d", tl.l.id, w.term)
	default:
	}
}

const testTTL = 9 * time.Second

// TestLeaderAcquiresAndRenews: a lone controller leads at once, with the
// fence of its term on the work's context; renewals every ttl/3 keep the
// term and the same work.
func TestLeaderAcquiresAndRenews(t *testing.T) {
	c := newLeaseClock()
	leases := newFakeLeases(c)
	a := startTestLeader(t, leases, c, "a", testTTL)
	leases.waitCall(t, "a")
	w := a.nextWork(t)
	if f, ok := api.FenceFrom(w.ctx); !ok || f != (api.Fence{Lease: api.LeaseLeader, Holder: "a", Term: 1}) {
		t.Fatalf("work fence = %+v, %v; want a at term 1", f, ok)
	}
	if err := checkLeading(w.ctx); err != nil || a.l.leading() != 1 || commandTerm(w.ctx) != 1 {
		t.Fatalf("leading: %v, term %d, command term %d", err, a.l.leading(), commandTerm(w.ctx))
	}
	if checkLeading(context.Background()) != nil || commandTerm(context.Background()) != 0 {
		t.Fatal("a context of no leader work is refused or carries a term")
	}
	for range 5 {
		c.advance(testTTL / 3)
		leases.waitCall(t, "a")
		a.renewed(t, c)
	}
	if got, want := leases.expires(), c.Now().Add(testTTL); !got.Equal(want) {
		t.Fatalf("lease expires %v, want renewed to %v", got, want)
	}
	a.noWork(t)
	if err := checkLeading(w.ctx); err != nil {
		t.Fatalf("after renewals: %v", err)
	}
	a.stop()
	w.waitEnd(t)
	if !leases.expires().Before(c.Now()) {
		t.Fatal("shutdown did not release the lease")
	}
}

// TestLeaderStopsWhenRenewalFails: a renewal that fails (the database is
// unreachable) ends the work at once, long before the lease can expire;
// once the database is back and the lease still its own, it leads again at
// the same term.
func TestLeaderStopsWhenRenewalFails(t *testing.T) {
	c := newLeaseClock()
	leases := newFakeLeases(c)
	a := startTestLeader(t, leases, c, "a", testTTL)
	w := a.nextWork(t)
	leases.setCut("a", true)
	c.advance(testTTL / 3)
	ended := w.waitEnd(t)
	if !ended.Before(leases.expires()) {
		t.Fatalf("work ended at %v, not before the lease expiry %v", ended, leases.expires())
	}
	if checkLeading(w.ctx) == nil || a.l.leading() != 0 {
		t.Fatal("still leading after a failed renewal")
	}
	leases.setCut("a", false)
	c.advance(testTTL / 3)
	w2 := a.nextWork(t)
	if w2.term != 1 {
		t.Fatalf("term after a failed renewal of a lease still held = %d, want 1", w2.term)
	}
}

// TestLeaderStopsBeforeExpiryWhenRenewalHangs: a renewal that never
// answers (a partition, a paused database) ends the work at the watchdog,
// 2/3 ttl after the last renewal was sent — and from that instant the
// work's context refuses node commands even before the loop notices.
func TestLeaderStopsBeforeExpiryWhenRenewalHangs(t *testing.T) {
	c := newLeaseClock()
	leases := newFakeLeases(c)
	a := startTestLeader(t, leases, c, "a", testTTL)
	w := a.nextWork(t)
	leases.waitCall(t, "a")
	expiry := leases.expires()
	leases.setHang("a")
	c.advance(testTTL / 3) // the renewal is sent and hangs
	if err := checkLeading(w.ctx); err != nil {
		t.Fatalf("before the watchdog: %v", err)
	}
	c.advance(testTTL / 3) // the watchdog
	if checkLeading(w.ctx) == nil {
		t.Fatal("past the watchdog, the work's context still leads")
	}
	ended := w.waitEnd(t)
	if !ended.Before(expiry) {
		t.Fatalf("work ended at %v, not before the lease expiry %v", ended, expiry)
	}
}

// TestLeaderTakeover: a second controller follows while the first leads,
// takes over only after the first's lease expired — after the first
// stopped acting — with a higher term, and the first, back, follows.
func TestLeaderTakeover(t *testing.T) {
	c := newLeaseClock()
	leases := newFakeLeases(c)
	a := startTestLeader(t, leases, c, "a", testTTL)
	wa := a.nextWork(t)
	b := startTestLeader(t, leases, c, "b", testTTL)
	leases.waitCall(t, "a", "b")
	for range 3 {
		c.advance(testTTL / 3)
		leases.waitCall(t, "a", "b")
		a.renewed(t, c)
	}
	b.noWork(t)

	leases.setCut("a", true) // a loses the database
	expiry := leases.expires()
	var wb *work
	for wb == nil {
		c.advance(testTTL / 3)
		select {
		case wb = <-b.works:
		case <-time.After(50 * time.Millisecond):
		}
	}
	aEnded := wa.waitEnd(t)
	if !aEnded.Before(expiry) || wb.started.Before(expiry) {
		t.Fatalf("a stopped at %v, lease expired %v, b started at %v: want a stopped before expiry and b after", aEnded, expiry, wb.started)
	}
	if wb.term != wa.term+1 {
		t.Fatalf("b's term = %d, want %d", wb.term, wa.term+1)
	}
	if err := checkLeading(wa.ctx); err == nil {
		t.Fatal("a's old work context still leads")
	}
	leases.setCut("a", false)
	c.advance(testTTL / 3)
	leases.waitCall(t, "a")
	a.noWork(t)
	if a.l.leading() != 0 || b.l.leading() != wb.term {
		t.Fatalf("after a is back: a leads %d, b leads %d", a.l.leading(), b.l.leading())
	}
}
