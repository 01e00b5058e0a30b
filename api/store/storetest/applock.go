package storetest

import (
	"context"
	"testing"
	"time"

	"github.com/strata-paas/strata/api"
	"github.com/strata-paas/strata/api/controller"
)

// testAppLocks checks the per-app locks: one holder per app, others wait
// until it unlocks or their context ends, and apps do not share a lock
// (docs/architecture.md, "Per-app locks").
func testAppLocks(t *testing.T, s controller.Store) {
	ctx := context.Background()
	a, b := id(), id()
	_, err := s.LockApp(ctx, "")
	wantCode(t, "lock of no app", err, api.EInvalid)

	unlockA, err := s.LockApp(ctx, a)
	must(t, "lock a", err)
	short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	_, err = s.LockApp(short, a)
	cancel()
	wantCode(t, "second lock of a while held", err, api.ETimeout)

	unlockB, err := s.LockApp(ctx, b)
	must(t, "lock b while a is held", err)
	unlockB()

	got := make(chan func(), 1)
	go func() {
		u, err := s.LockApp(ctx, a)
		if err != nil {
			t.Errorf("waiting lock of a: %v", err)
			u = func() {}
		}
		got <- u
	}()
	select {
	case u := <-got:
		u()
		t.Fatal("a second holder took a's lock while it was held")
	case <-time.After(100 * time.Millisecond):
	}
	unlockA()
	unlockA() // a second call does nothing
	select {
	case u := <-got:
		u()
	case <-time.After(10 * time.Second):
		t.Fatal("the waiter did not get a's lock after it was released")
	}
	unlockA2, err := s.LockApp(ctx, a)
	must(t, "lock a again", err)
	unlockA2()
}
