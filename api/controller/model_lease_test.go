package controller_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/strata-paas/strata/api"
	"github.com/strata-paas/strata/api/controller"
)

// The converger's model test runs two controllers on one database; the
// lease moves between them when the leader is paused (its lease renewals
// and database writes stall, as in a stopped process or a cut network, and
// go on when it resumes). leaseLedger watches every fenced write of both
// and checks, in the database's own order, that only the current leader's
// writes are applied: a write that succeeds carries the latest term
// granted, and a deposed leader's late writes are refused.

// leaseLedger is shared by the controllers' stores. mu orders lease grants
// and fenced writes as the (single-writer SQLite) database does.
type leaseLedger struct {
	t          *testing.T
	mu         sync.Mutex
	granted    int64 // highest term granted so far
	holders    map[int64]string
	applied    int // fenced writes that succeeded
	refused    int // fenced writes refused by the fence
	lateRefuse int // of them, writes held by a pause and let go after it
}

func newLeaseLedger(t *testing.T) *leaseLedger {
	return &leaseLedger{t: t, holders: map[int64]string{}}
}

func (l *leaseLedger) counts() (granted int64, holders, applied, refused, late int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	distinct := map[string]bool{}
	for _, h := range l.holders {
		distinct[h] = true
	}
	return l.granted, len(distinct), l.applied, l.refused, l.lateRefuse
}

// pausableStore is one controller's view of the shared store: while paused,
// its lease calls and fenced writes wait; let go, they reach the database
// as writes already sent do, whatever their context says by then.
type pausableStore struct {
	controller.Store
	ledger *leaseLedger

	mu     sync.Mutex
	gate   chan struct{} // non-nil while paused; closed on resume
	last   api.Fence     // the fence of the last fenced write seen
	hasRun bool
}

func (s *pausableStore) pause() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.gate == nil {
		s.gate = make(chan struct{})
	}
}

func (s *pausableStore) resume() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.gate != nil {
		close(s.gate)
		s.gate = nil
	}
}

// wait blocks while paused; it reports whether it did.
func (s *pausableStore) wait() bool {
	s.mu.Lock()
	g := s.gate
	s.mu.Unlock()
	if g == nil {
		return false
	}
	<-g
	return true
}

// lastFence returns the fence of the last fenced write, if any.
func (s *pausableStore) lastFence() (api.Fence, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.last, s.hasRun
}

func (s *pausableStore) AcquireLease(ctx context.Context, name, holder string, ttl time.Duration) (int64, error) {
	if s.wait() {
		ctx = context.WithoutCancel(ctx)
	}
	l := s.ledger
	l.mu.Lock()
	defer l.mu.Unlock()
	term, err := s.Store.AcquireLease(ctx, name, holder, ttl)
	if err == nil {
		if term < l.granted {
			l.t.Errorf("%s was granted term %d after term %d", holder, term, l.granted)
		}
		if h, ok := l.holders[term]; ok && h != holder {
			l.t.Errorf("term %d granted to %s and to %s", term, h, holder)
		}
		l.granted, l.holders[term] = term, holder
	}
	return term, err
}

// fenced runs one write through the pause and the ledger.
func (s *pausableStore) fenced(ctx context.Context, write func(ctx context.Context) error) error {
	f, ok := api.FenceFrom(ctx)
	if !ok {
		return write(ctx)
	}
	s.mu.Lock()
	s.last, s.hasRun = f, true
	s.mu.Unlock()
	late := s.wait()
	if late {
		ctx = context.WithoutCancel(ctx)
	}
	l := s.ledger
	l.mu.Lock()
	defer l.mu.Unlock()
	err := write(ctx)
	switch {
	case err == nil:
		l.applied++
		if f.Term != l.granted {
			l.t.Errorf("a write of %s at term %d was applied while term %d leads", f.Holder, f.Term, l.granted)
		}
	case api.ErrorCode(err) == api.EConflict && f.Term != l.granted:
		l.refused++
		if late {
			l.lateRefuse++
		}
	}
	return err
}

func (s *pausableStore) CreateInstance(ctx context.Context, in *api.Instance) error {
	return s.fenced(ctx, func(ctx context.Context) error { return s.Store.CreateInstance(ctx, in) })
}

func (s *pausableStore) UpdateInstance(ctx context.Context, in *api.Instance) error {
	return s.fenced(ctx, func(ctx context.Context) error { return s.Store.UpdateInstance(ctx, in) })
}

func (s *pausableStore) DeleteInstance(ctx context.Context, id string) error {
	return s.fenced(ctx, func(ctx context.Context) error { return s.Store.DeleteInstance(ctx, id) })
}

func (s *pausableStore) UpdateApp(ctx context.Context, a *api.App) error {
	return s.fenced(ctx, func(ctx context.Context) error { return s.Store.UpdateApp(ctx, a) })
}

func (s *pausableStore) AddEvent(ctx context.Context, e *api.Event) error {
	return s.fenced(ctx, func(ctx context.Context) error { return s.Store.AddEvent(ctx, e) })
}

func (s *pausableStore) UpdateBuild(ctx context.Context, id string, fn func(b *api.Build) error) (*api.Build, error) {
	var b *api.Build
	err := s.fenced(ctx, func(ctx context.Context) error {
		var err error
		b, err = s.Store.UpdateBuild(ctx, id, fn)
		return err
	})
	return b, err
}

// lateWrite replays, after a takeover, a write with the deposed leader's
// last fence: the database must refuse it.
func (s *pausableStore) lateWrite(t *testing.T, in *api.Instance) {
	t.Helper()
	f, ok := s.lastFence()
	if !ok {
		return
	}
	granted, _, _, _, _ := s.ledger.counts()
	if f.Term == granted {
		return // it still leads
	}
	cp := *in
	cp.State, cp.Reason = api.InstanceCrashed, "a deposed leader's late write"
	if err := s.UpdateInstance(api.WithFence(context.Background(), f), &cp); api.ErrorCode(err) != api.EConflict {
		t.Fatalf("late write of %s at term %d (term %d leads): got %v, want a conflict", f.Holder, f.Term, granted, err)
	}
}

// runController runs ctrl until the test ends.
func runController(t *testing.T, ctrl *controller.Controller) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := ctrl.Run(ctx); err != nil {
			t.Errorf("Run: %v", err)
		}
	}()
	t.Cleanup(func() { cancel(); <-done })
	select {
	case <-ctrl.Ready():
	case <-time.After(10 * time.Second):
		t.Fatal("controller not ready after 10s")
	}
}
