package storetest

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/strata-paas/strata/api"
	"github.com/strata-paas/strata/api/controller"
)

// testLeases checks the leader lease: one holder at a time, renewal keeps
// the term, a change of holder raises it, expiry and release free it, and
// writes fenced by a lost term are refused (docs/architecture.md, "Leader
// lease").
func testLeases(t *testing.T, s controller.Store) {
	ctx := context.Background()
	const name = "leader"
	long := time.Hour

	t1, err := s.AcquireLease(ctx, name, "a", long)
	must(t, "a acquires", err)
	if t1 < 1 {
		t.Fatalf("first term = %d, want ≥ 1", t1)
	}
	again, err := s.AcquireLease(ctx, name, "a", long)
	must(t, "a renews", err)
	if again != t1 {
		t.Fatalf("renewal changed the term from %d to %d", t1, again)
	}
	_, err = s.AcquireLease(ctx, name, "b", long)
	wantCode(t, "b while a holds", err, api.EConflict)
	other, err := s.AcquireLease(ctx, "other", "b", long)
	must(t, "b takes another lease", err)
	if other < 1 {
		t.Fatalf("other lease term = %d", other)
	}

	// a renews with a tiny ttl: the lease expires by the database clock
	// and b takes it with a higher term.
	_, err = s.AcquireLease(ctx, name, "a", time.Millisecond)
	must(t, "a renews briefly", err)
	t2 := eventually(t, "b takes the expired lease", func() (int64, error) { return s.AcquireLease(ctx, name, "b", long) })
	if t2 <= t1 {
		t.Fatalf("takeover term %d, want > %d", t2, t1)
	}
	_, err = s.AcquireLease(ctx, name, "a", long)
	wantCode(t, "a after b took over", err, api.EConflict)

	// Release frees it at once; a takes it with a higher term still.
	must(t, "a releases what it does not hold", s.ReleaseLease(ctx, name, "a", t1))
	_, err = s.AcquireLease(ctx, name, "a", long)
	wantCode(t, "a after a no-op release", err, api.EConflict)
	must(t, "b releases", s.ReleaseLease(ctx, name, "b", t2))
	t3, err := s.AcquireLease(ctx, name, "a", long)
	must(t, "a after b released", err)
	if t3 <= t2 {
		t.Fatalf("term after release %d, want > %d", t3, t2)
	}

	_, err = s.AcquireLease(ctx, "", "a", long)
	wantCode(t, "empty name", err, api.EInvalid)
	_, err = s.AcquireLease(ctx, name, "a", 0)
	wantCode(t, "zero ttl", err, api.EInvalid)
}

// testFencedWrites checks that a write made with a fence (api.WithFence) is
// refused, and changes nothing, once its holder lost the lease or its term.
func testFencedWrites(t *testing.T, s controller.Store) {
	ctx := context.Background()
	f := newFixture(t, s)
	const name = "leader"
	ta, err := s.AcquireLease(ctx, name, "a", time.Hour)
	must(t, "a acquires", err)
	asA := api.WithFence(ctx, api.Fence{Lease: name, Holder: "a", Term: ta})
	mk := func(c context.Context) (*api.Instance, error) {
		in := &api.Instance{ID: id(), AppID: f.app.ID, Process: "web", Release: 1, NodeID: "n1", State: api.InstanceStarting}
		return in, s.CreateInstance(c, in)
	}
	in, err := mk(asA)
	must(t, "fenced create by the holder", err)
	in.State = api.InstanceRunning
	must(t, "fenced update by the holder", s.UpdateInstance(asA, in))
	kept, err := mk(ctx)
	must(t, "unfenced create", err)

	// A fence of a wrong term or holder is refused even while a holds.
	_, err = mk(api.WithFence(ctx, api.Fence{Lease: name, Holder: "a", Term: ta + 1}))
	wantCode(t, "create with a wrong term", err, api.EConflict)
	_, err = mk(api.WithFence(ctx, api.Fence{Lease: name, Holder: "b", Term: ta}))
	wantCode(t, "create by a non-holder", err, api.EConflict)

	// b takes over: a's late writes are refused and change nothing.
	_, err = s.AcquireLease(ctx, name, "a", time.Millisecond)
	must(t, "a renews briefly", err)
	tb := eventually(t, "b takes over", func() (int64, error) { return s.AcquireLease(ctx, name, "b", time.Hour) })
	_, err = mk(asA)
	wantCode(t, "deposed create", err, api.EConflict)
	late := *in
	late.State = api.InstanceCrashed
	wantCode(t, "deposed update", s.UpdateInstance(asA, &late), api.EConflict)
	wantCode(t, "deposed delete", s.DeleteInstance(asA, kept.ID), api.EConflict)
	wantCode(t, "deposed event", s.AddEvent(asA, &api.Event{ID: id(), AppID: f.app.ID, Type: "x", Message: "late"}), api.EConflict)
	_, err = s.UpdateBuild(asA, id(), func(*api.Build) error { return nil })
	wantCode(t, "deposed build update", err, api.EConflict)
	rows, err := s.Instances(ctx, f.app.ID)
	must(t, "Instances", err)
	if len(rows) != 2 {
		t.Fatalf("after refused writes: %d instances, want 2", len(rows))
	}
	got, err := s.Instance(ctx, in.ID)
	must(t, "Instance", err)
	if got.State != api.InstanceRunning {
		t.Fatalf("refused update was saved: state %s", got.State)
	}
	asB := api.WithFence(ctx, api.Fence{Lease: name, Holder: "b", Term: tb})
	must(t, "new leader deletes", s.DeleteInstance(asB, kept.ID))
	wantCode(t, "new leader deletes a missing instance", s.DeleteInstance(asB, kept.ID), api.ENotFound)

	// An expired lease fences its own holder too, until renewed.
	_, err = s.AcquireLease(ctx, name, "b", time.Millisecond)
	must(t, "b renews briefly", err)
	eventually(t, "b's writes refused once expired", func() (int64, error) {
		if _, err := mk(asB); api.ErrorCode(err) != api.EConflict {
			return 0, api.Errorf(api.EConflict, "still accepted (%v)", err)
		}
		return 0, nil
	})
	if again, err := s.AcquireLease(ctx, name, "b", time.Hour); err != nil || again != tb {
		t.Fatalf("b renews its expired lease: term %d, %v; want %d", again, err, tb)
	}
	_, err = mk(asB)
	must(t, "fenced create after renewal", err)
}

// eventually retries fn (EConflict = not yet) for a few seconds: lease
// expiry is measured by the database clock, so a test can only wait for it.
func eventually(t *testing.T, what string, fn func() (int64, error)) int64 {
	t.Helper()
	var err error
	for range 500 {
		var v int64
		if v, err = fn(); err == nil {
			return v
		}
		if api.ErrorCode(err) != api.EConflict {
			t.Fatalf("%s: %v", what, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("%s: still %v after 5s", what, err)
	return 0
}

// testFenceHoldsOffTakeover: a fenced write transaction that passed its
// check holds off a takeover until it commits, even when the lease expires
// meanwhile — so no write of an old term commits after a new term was
// granted (PostgreSQL: the check's FOR SHARE row lock; SQLite: one writer).
func testFenceHoldsOffTakeover(t *testing.T, s controller.Store) {
	ctx := context.Background()
	f := newFixture(t, s)
	b := &api.Build{ID: id(), AppID: f.app.ID, SourceBlob: blob('1')}
	must(t, "CreateBuild", s.CreateBuild(ctx, b))
	ta, err := s.AcquireLease(ctx, "leader", "a", 200*time.Millisecond)
	must(t, "a acquires", err)
	asA := api.WithFence(ctx, api.Fence{Lease: "leader", Holder: "a", Term: ta})

	inside, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	// released is set before a may commit: b's acquire returns as soon as
	// a's COMMIT ends, before UpdateBuild has returned to this test.
	var released atomic.Bool
	letGo := func() { once.Do(func() { released.Store(true); close(release) }) }
	t.Cleanup(letGo) // a failing test must not leave the transaction open
	done := make(chan error, 1)
	go func() {
		_, err := s.UpdateBuild(asA, b.ID, func(b *api.Build) error {
			close(inside)
			<-release
			b.Reason = "written by a"
			return nil
		})
		done <- err
	}()
	<-inside
	// The lease expires while a's transaction is open; b tries to take it.
	time.Sleep(300 * time.Millisecond)
	took := make(chan int64, 1)
	go func() {
		took <- eventually(t, "b takes over", func() (int64, error) {
			tb, err := s.AcquireLease(ctx, "leader", "b", time.Hour)
			if err == nil && !released.Load() {
				t.Errorf("b took the lease (term %d) while a's fenced write was still open", tb)
			}
			return tb, err
		})
	}()
	time.Sleep(200 * time.Millisecond) // b is waiting on a's transaction by now
	select {
	case tb := <-took:
		t.Fatalf("b took the lease (term %d) before a's fenced write committed", tb)
	default:
	}
	letGo()
	must(t, "a's fenced write, checked before the expiry", <-done)
	if tb := <-took; tb <= ta {
		t.Fatalf("b's term %d, want > %d", tb, ta)
	}
	got, err := s.Build(ctx, b.ID)
	must(t, "Build", err)
	if got.Reason != "written by a" {
		t.Fatalf("a's write is missing: %+v", got)
	}
}
