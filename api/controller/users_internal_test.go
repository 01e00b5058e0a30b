package controller

import (
	"testing"
	"time"
)

// Failed logins are free up to failFree, then each doubles the wait (capped);
// the user name and the address are throttled separately; a success clears
// both. The clock is the test's.
func TestLoginThrottle(t *testing.T) {
	clock := &fakeClock{now: time.Unix(1_000_000, 0)}
	th := newLoginThrottle(clock.Now)
	for i := 0; i < failFree; i++ {
		if w := th.wait("alice", "10.0.0.1"); w != 0 {
			t.Fatalf("attempt %d already waits %s", i+1, w)
		}
		th.failed("alice", "10.0.0.1")
	}
	if w := th.wait("alice", "10.0.0.1"); w != 0 {
		t.Fatalf("after %d failures: wait %s, want none yet", failFree, w)
	}
	th.failed("alice", "10.0.0.1")
	if w := th.wait("alice", "10.0.0.1"); w != failWait {
		t.Fatalf("after %d failures: wait %s, want %s", failFree+1, w, failWait)
	}
	// The same user from another address, and another user from the same
	// address, wait too.
	if th.wait("alice", "10.9.9.9") == 0 || th.wait("bob", "10.0.0.1") == 0 {
		t.Error("throttle keyed on the pair, not on user and address apart")
	}
	if th.wait("bob", "10.9.9.9") != 0 {
		t.Error("an unrelated user and address wait")
	}
	th.failed("alice", "10.0.0.1")
	if w := th.wait("alice", "10.0.0.1"); w != 2*failWait {
		t.Errorf("next failure: wait %s, want %s", w, 2*failWait)
	}
	for i := 0; i < 40; i++ {
		th.failed("alice", "10.0.0.1")
	}
	if w := th.wait("alice", "10.0.0.1"); w != failMax {
		t.Errorf("many failures: wait %s, want the cap %s", w, failMax)
	}
	clock.add(failMax + time.Second)
	if w := th.wait("alice", "10.0.0.1"); w != 0 {
		t.Errorf("after the wait: %s", w)
	}
	th.succeeded("alice", "10.0.0.1")
	th.failed("alice", "10.0.0.1")
	if w := th.wait("alice", "10.0.0.1"); w != 0 {
		t.Errorf("a success did not clear the count: wait %s", w)
	}
}
