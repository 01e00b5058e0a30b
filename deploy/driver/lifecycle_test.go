package driver_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/strata-paas/strata/api"
	"github.com/strata-paas/strata/deploy/driver"
)

func TestLifecycleWaitReturnsFinishResult(t *testing.T) {
	var l driver.Lifecycle
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := l.Wait(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("Wait before Finish with an ended ctx = %v, want context.Canceled", err)
	}
	l.MarkExited()
	select {
	case <-l.Exited():
	default:
		t.Fatal("Exited not closed after MarkExited")
	}
	select {
	case <-l.Done():
		t.Fatal("Done closed before Finish")
	default:
	}
	want := &driver.ExitResult{ExitCode: 3}
	l.Finish(want)
	got, err := l.Wait(context.Background())
	if err != nil || got != want {
		t.Fatalf("Wait = %v, %v; want %v", got, err, want)
	}
	if err := l.AwaitDone(context.Background(), "i1"); err != nil {
		t.Fatalf("AwaitDone after Finish = %v", err)
	}
}

func TestLifecycleFinishMarksExited(t *testing.T) {
	var l driver.Lifecycle
	l.Finish(&driver.ExitResult{})
	select {
	case <-l.Exited():
	default:
		t.Fatal("Exited not closed after Finish")
	}
}

func TestLifecycleStopTermThenKill(t *testing.T) {
	var l driver.Lifecycle
	var mu sync.Mutex
	var calls []string
	term := func() {
		mu.Lock()
		defer mu.Unlock()
		if !l.Stopping.Load() {
			t.Error("term called before Stopping was set")
		}
		calls = append(calls, "term")
	}
	kill := func() {
		mu.Lock()
		defer mu.Unlock()
		if !l.Killed.Load() {
			t.Error("kill called before Killed was set")
		}
		calls = append(calls, "kill")
		go l.Finish(&driver.ExitResult{ExitCode: -1, Signal: "killed"})
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := l.Stop(ctx, "i1", 0, term, kill); err != nil {
		t.Fatalf("Stop = %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(calls) != 2 || calls[0] != "term" || calls[1] != "kill" {
		t.Fatalf("calls = %v, want [term kill]", calls)
	}
}

func TestLifecycleStopExitedIsNoop(t *testing.T) {
	var l driver.Lifecycle
	l.MarkExited()
	called := false
	f := func() { called = true }
	if err := l.Stop(context.Background(), "i1", time.Hour, f, f); err != nil || called {
		t.Fatalf("Stop of an exited instance = %v (signalled: %v), want nil and no signal", err, called)
	}
	if l.Stopping.Load() || l.Killed.Load() {
		t.Fatal("Stop of an exited instance set Stopping or Killed")
	}
}

func TestLifecycleAwaitDoneTimesOut(t *testing.T) {
	var l driver.Lifecycle
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := l.AwaitDone(ctx, "i1")
	if api.ErrorCode(err) != api.ETimeout {
		t.Fatalf("AwaitDone with an ended ctx = %v, want ETimeout", err)
	}
}

func TestLookupAndForget(t *testing.T) {
	type rec struct{ n int }
	var mu sync.Mutex
	a, b := &rec{1}, &rec{2}
	m := map[string]*rec{"a": a}
	if got, err := driver.Lookup(&mu, m, "a"); err != nil || got != a {
		t.Fatalf("Lookup(a) = %v, %v", got, err)
	}
	if _, err := driver.Lookup(&mu, m, "x"); api.ErrorCode(err) != api.ENotFound {
		t.Fatalf("Lookup(x) = %v, want ENotFound", err)
	}
	also := 0
	driver.Forget(&mu, m, "a", b, func() { also++ }) // a newer record: kept
	if m["a"] != a || also != 0 {
		t.Fatalf("Forget of a replaced record removed the new one (also %d)", also)
	}
	driver.Forget(&mu, m, "a", a, func() { also++ })
	if _, ok := m["a"]; ok || also != 1 {
		t.Fatalf("Forget left %v (also %d)", m, also)
	}
}

func TestWaitForAndStopFor(t *testing.T) {
	type rec struct {
		name string
		driver.Lifecycle
	}
	var mu sync.Mutex
	r := &rec{name: "r"}
	m := map[string]*rec{"r": r}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := driver.WaitFor(ctx, &mu, m, "x"); api.ErrorCode(err) != api.ENotFound {
		t.Fatalf("WaitFor(x) = %v, want ENotFound", err)
	}
	none := func(*rec) { t.Error("signalled an unknown instance") }
	if err := driver.StopFor(ctx, &mu, m, "x", 0, none, none); api.ErrorCode(err) != api.ENotFound {
		t.Fatalf("StopFor(x) = %v, want ENotFound", err)
	}
	var termed *rec
	term := func(v *rec) { termed = v; go v.Finish(&driver.ExitResult{ExitCode: -1, Signal: "terminated"}) }
	if err := driver.StopFor(ctx, &mu, m, "r", time.Hour, term, none); err != nil {
		t.Fatalf("StopFor(r) = %v", err)
	}
	if termed != r || !r.Stopping.Load() || r.Killed.Load() {
		t.Fatalf("StopFor termed %v (Stopping %v, Killed %v), want r only termed", termed, r.Stopping.Load(), r.Killed.Load())
	}
	res, err := driver.WaitFor(ctx, &mu, m, "r")
	if err != nil || res.Signal != "terminated" {
		t.Fatalf("WaitFor(r) = %+v, %v", res, err)
	}
}

func TestAddClaimFind(t *testing.T) {
	var mu sync.Mutex
	m := map[string]int{}
	also := 0
	if err := driver.Claim(&mu, m, "a", 1, func() { also++ }); err != nil || m["a"] != 1 || also != 1 {
		t.Fatalf("Claim(a) = %v, map %v, also %d", err, m, also)
	}
	if err := driver.Claim(&mu, m, "a", 2, func() { also++ }); api.ErrorCode(err) != api.EConflict || m["a"] != 1 || also != 1 {
		t.Fatalf("second Claim(a) = %v, map %v, also %d; want EConflict and nothing changed", err, m, also)
	}
	if driver.Add(&mu, m, "a", 3, nil) || m["a"] != 1 {
		t.Fatalf("Add of a known id replaced it: %v", m)
	}
	if !driver.Add(&mu, m, "b", 3, nil) || m["b"] != 3 {
		t.Fatalf("Add(b) did not record it: %v", m)
	}
	if v, ok := driver.Find(&mu, m, "b"); !ok || v != 3 {
		t.Fatalf("Find(b) = %v, %v", v, ok)
	}
	if _, ok := driver.Find(&mu, m, "x"); ok {
		t.Fatal("Find(x) found an unknown id")
	}
}

func TestRetire(t *testing.T) {
	type rec struct{ driver.Lifecycle }
	var mu sync.Mutex
	r := &rec{}
	m := map[string]*rec{"r": r}
	ended, cancel := context.WithCancel(context.Background())
	cancel()
	if err := driver.Retire(ended, &mu, m, "r", r, nil); api.ErrorCode(err) != api.ETimeout || m["r"] != r {
		t.Fatalf("Retire of a running instance with an ended ctx = %v (map %v), want ETimeout and the instance kept", err, m)
	}
	r.Finish(&driver.ExitResult{ExitCode: -1, Signal: "killed"})
	also := 0
	if err := driver.Retire(context.Background(), &mu, m, "r", r, func() { also++ }); err != nil || len(m) != 0 || also != 1 {
		t.Fatalf("Retire after Finish = %v (map %v, also %d), want it forgotten", err, m, also)
	}
}
