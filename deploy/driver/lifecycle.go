package driver

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/strata-paas/strata/api"
)

// Lifecycle is the exit bookkeeping every driver keeps for one instance, the
// part its Wait, Stop and Destroy share: the instance's supervisor calls
// MarkExited once the instance's processes are gone and Finish once its
// output is delivered; Wait, Stop and Destroy wait on those. A driver's
// instance record embeds it; the zero value is ready to use.
type Lifecycle struct {
	// Stopping is set by Stop before it sends SIGTERM: a driver reading
	// an exit status of 128+15 or giving leftovers the grace too looks at it.
	Stopping atomic.Bool
	// Killed is set by Stop before it escalates to SIGKILL, and by drivers'
	// Destroy before they kill: the instance then ended "killed".
	Killed atomic.Bool

	once   sync.Once
	exited chan struct{} // closed when the instance's processes are gone
	done   chan struct{} // closed when exited and its output is delivered
	res    *ExitResult   // set before done closes
}

func (l *Lifecycle) init() {
	l.once.Do(func() { l.exited, l.done = make(chan struct{}), make(chan struct{}) })
}

// Exited is closed once the instance's processes are gone (its output may
// not be delivered yet).
func (l *Lifecycle) Exited() <-chan struct{} {
	l.init()
	return l.exited
}

// Done is closed once the instance has exited and its output is delivered.
func (l *Lifecycle) Done() <-chan struct{} {
	l.init()
	return l.done
}

// MarkExited records that the instance's processes are gone. Only the
// instance's supervisor calls it (and Finish), from one goroutine.
func (l *Lifecycle) MarkExited() {
	l.init()
	select {
	case <-l.exited:
	default:
		close(l.exited)
	}
}

// Finish records how the instance ended, once its output is delivered, and
// marks it exited if it was not yet. The supervisor calls it once.
func (l *Lifecycle) Finish(res *ExitResult) {
	l.MarkExited()
	l.res = res
	close(l.done)
}

// Wait is Driver.Wait for this instance: it blocks until Finish (returning
// its result) or until ctx ends (returning ctx's error).
func (l *Lifecycle) Wait(ctx context.Context) (*ExitResult, error) {
	select {
	case <-l.Done():
		return l.res, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// Stop is Driver.Stop for instance id (see Escalate): term after setting
// Stopping, up to grace for the instance to exit, kill after setting Killed.
func (l *Lifecycle) Stop(ctx context.Context, id string, grace time.Duration, term, kill func()) error {
	return Escalate(ctx, id, l.Exited(), grace,
		func() { l.Stopping.Store(true); term() },
		func() { l.Killed.Store(true); kill() })
}

// AwaitDone is Destroy's wait for instance id once it has been killed: nil
// once Finish ran, ETimeout when ctx ends first.
func (l *Lifecycle) AwaitDone(ctx context.Context, id string) error {
	select {
	case <-l.Done():
		return nil
	case <-ctx.Done():
		return api.Errorf(api.ETimeout, "instance %s did not exit: %v", id, ctx.Err())
	}
}

// lifecycler is a driver's instance record: it embeds a Lifecycle.
type lifecycler interface{ lifecycle() *Lifecycle }

func (l *Lifecycle) lifecycle() *Lifecycle { return l }

// Lookup is the drivers' get: the instance id in m, read under mu, or an
// ENotFound *api.Error.
func Lookup[V any](mu *sync.Mutex, m map[string]V, id string) (V, error) {
	mu.Lock()
	defer mu.Unlock()
	v, ok := m[id]
	if !ok {
		return v, api.Errorf(api.ENotFound, "no instance %s on this driver", id)
	}
	return v, nil
}

// Find returns the instance id in m, read under mu, and whether there is one.
func Find[V any](mu *sync.Mutex, m map[string]V, id string) (V, bool) {
	mu.Lock()
	defer mu.Unlock()
	v, ok := m[id]
	return v, ok
}

// Add records v as instance id in m under mu, calling also, if not nil,
// under mu once it did, unless m has an instance id already: then it
// changes nothing and returns false.
func Add[V any](mu *sync.Mutex, m map[string]V, id string, v V, also func()) bool {
	mu.Lock()
	defer mu.Unlock()
	if _, ok := m[id]; ok {
		return false
	}
	m[id] = v
	if also != nil {
		also()
	}
	return true
}

// Claim is Add for Driver.Start: an id already started is EConflict.
func Claim[V any](mu *sync.Mutex, m map[string]V, id string, v V, also func()) error {
	if !Add(mu, m, id, v, also) {
		return api.Errorf(api.EConflict, "instance %s is already started — destroy it first", id)
	}
	return nil
}

// WaitFor is Driver.Wait of instance id in m (read under mu): its
// Lifecycle's Wait, or ENotFound.
func WaitFor[V lifecycler](ctx context.Context, mu *sync.Mutex, m map[string]V, id string) (*ExitResult, error) {
	v, err := Lookup(mu, m, id)
	if err != nil {
		return nil, err
	}
	return v.lifecycle().Wait(ctx)
}

// StopFor is Driver.Stop of instance id in m (read under mu): its
// Lifecycle's Stop with the driver's term and kill of it, or ENotFound.
func StopFor[V lifecycler](ctx context.Context, mu *sync.Mutex, m map[string]V, id string, grace time.Duration, term, kill func(V)) error {
	v, err := Lookup(mu, m, id)
	if err != nil {
		return err
	}
	return v.lifecycle().Stop(ctx, id, grace, func() { term(v) }, func() { kill(v) })
}

// Retire is the end of Destroy for instance v of id in m once v has been
// killed: it waits for v's Finish (ETimeout when ctx ends first), then
// forgets it as Forget does.
func Retire[V interface {
	comparable
	lifecycler
}](ctx context.Context, mu *sync.Mutex, m map[string]V, id string, v V, also func()) error {
	if err := v.lifecycle().AwaitDone(ctx, id); err != nil {
		return err
	}
	Forget(mu, m, id, v, also)
	return nil
}

// Forget removes instance id from m under mu if it is still v (a new
// instance of the same id may have taken its place), calling also, if not
// nil, under mu once it did.
func Forget[V comparable](mu *sync.Mutex, m map[string]V, id string, v V, also func()) {
	mu.Lock()
	defer mu.Unlock()
	if m[id] == v {
		delete(m, id)
		if also != nil {
			also()
		}
	}
}
