package executor_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/strata-paas/strata/api"
	"github.com/strata-paas/strata/api/bus"
	"github.com/strata-paas/strata/deploy/driver"
	"github.com/strata-paas/strata/deploy/driver/mock"
	"github.com/strata-paas/strata/deploy/executor"
)

// These tests run the executor on an in-memory bus, with its heartbeat and
// usage-sampling ticks and its clock in the test's hands.

// memBus is an in-memory executor.Bus. Every message published is kept, in
// order, by its recorder; requests find nobody and subscriptions receive
// nothing. While flushGate is open (non-nil), Flush reports on flushes and
// then hangs until the gate is closed, whatever its context says.
type memBus struct {
	*recorder
	flushGate chan struct{}
	flushes   chan struct{}
}

var _ executor.Bus = (*memBus)(nil)

func newMemBus() *memBus {
	return &memBus{recorder: &recorder{}, flushes: make(chan struct{}, 16)}
}

func (b *memBus) Publish(subject string, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	b.mu.Lock()
	b.msgs = append(b.msgs, message{subject, data})
	b.mu.Unlock()
	return nil
}

func (b *memBus) Flush(ctx context.Context) error {
	if b.flushGate == nil {
		return nil
	}
	select {
	case b.flushes <- struct{}{}:
	default:
	}
	<-b.flushGate
	return nil
}

func (b *memBus) Request(ctx context.Context, subject string, req, resp any) error {
	return api.Errorf(api.EUnavailable, "nobody answers on %s", subject)
}

func (b *memBus) Subscribe(subject, queue string, fn func(*bus.Msg)) (*bus.Subscription, error) {
	return &bus.Subscription{}, nil
}

// count returns how many messages on subject came at or after index from.
func (b *memBus) count(subject string, from int) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	n := 0
	for _, m := range b.msgs[from:] {
		if m.subject == subject {
			n++
		}
	}
	return n
}

// runOnMemBus starts an executor on b with the given ticks and clock.
func runOnMemBus(t *testing.T, b *memBus, cfg executor.Config, drv driver.Driver, clock executor.Clock) *executor.Executor {
	t.Helper()
	blobs := &fakeBlobs{blobs: map[api.BlobRef][]byte{}, fetches: map[api.BlobRef]int{}}
	e, _ := runExecutor(t, cfg, b, blobs, []driver.Driver{drv}, b.recorder, func(e *executor.Executor) { executor.SetClock(e, clock) })
	return e
}

// adopt starts spec's instance on drv as an earlier run of the executor
// would have and leaves its record in dataDir, so that the next executor
// recovers it: no start command is needed (the in-memory bus carries none).
func adopt(t *testing.T, drv *mock.Driver, dataDir string, spec api.InstanceSpec, port int) {
	t.Helper()
	dir := filepath.Join(dataDir, "instances", spec.InstanceID)
	app := filepath.Join(dir, "droplet", "app")
	if err := os.MkdirAll(app, 0o700); err != nil {
		t.Fatal(err)
	}
	h, err := drv.Start(context.Background(), &driver.Spec{ID: spec.InstanceID, Dir: app, Command: spec.Command})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = drv.Destroy(context.Background(), spec.InstanceID) })
	rec, _ := json.Marshal(map[string]any{"v": 1, "spec": spec, "handle": h, "port": port})
	if err := os.WriteFile(filepath.Join(dir, "handle.json"), rec, 0o600); err != nil {
		t.Fatal(err)
	}
}

func workerSpec(id string) api.InstanceSpec {
	return api.InstanceSpec{InstanceID: id, AppID: "app-m", AppName: "meter", Process: "worker",
		DropletBlob: api.BlobRef("sha256:" + strings.Repeat("0", 64)), Command: "run"}
}

// beat sends one tick to the heartbeat loop and returns the heartbeat it
// sent, the first one at or after index from.
func beat(t *testing.T, b *memBus, ticks chan<- time.Time, from int, n int) (int, *api.NodeHeartbeat) {
	t.Helper()
	select {
	case ticks <- time.Time{}:
	case <-time.After(30 * time.Second): // a guard against hanging, not a measurement
		t.Fatalf("heartbeat %d: the heartbeat loop takes no tick (is it waiting on something?)", n)
	}
	return waitFor(t, b.recorder, api.SubjectNodeHeartbeat, from, fmt.Sprintf("heartbeat %d", n), func(*api.NodeHeartbeat) bool { return true })
}

func reportOf(hb *api.NodeHeartbeat, id string) (api.InstanceReport, bool) {
	for _, r := range hb.Instances {
		if r.InstanceID == id {
			return r, true
		}
	}
	return api.InstanceReport{}, false
}

// usageDriver is the mock driver with a Usage the test scripts.
type usageDriver struct {
	*mock.Driver
	usage func(ctx context.Context, id string) (*driver.Usage, error)
}

func (d *usageDriver) Usage(ctx context.Context, id string) (*driver.Usage, error) {
	return d.usage(ctx, id)
}

// usageCall is one Usage call waiting for the test's answer.
type usageCall struct{ answer chan *driver.Usage }

// nextUsageCall ticks the sampler until the driver is asked for usage on
// calls, and returns that call.
func nextUsageCall(t *testing.T, calls <-chan usageCall, sample chan<- time.Time) usageCall {
	t.Helper()
	guard := time.After(30 * time.Second) // against hanging, not a measurement
	for {
		select {
		case c := <-calls:
			return c
		case sample <- time.Time{}:
		case <-guard:
			t.Fatal("the sampler never asked the driver for usage")
		}
	}
}

// fakeClock is a clock that moves only when told.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// TestHeartbeatsKeepRhythmWhileUsageBlocks: usage is sampled in the
// background, so while the driver's Usage call for one instance blocks
// forever (ignoring its context), each of N heartbeat ticks still sends
// exactly one heartbeat, carrying the latest sample of every instance — none
// yet for the stuck one, and CPU% over the injected clock for the other. An
// instance whose Usage call is still in flight is not asked again.
func TestHeartbeatsKeepRhythmWhileUsageBlocks(t *testing.T) {
	data := t.TempDir()
	// Ends the blocked Usage calls when the test ends (defers run before
	// cleanups), so that even a failing run lets the executor stop.
	release := make(chan struct{})
	defer close(release)
	stuckCalls := make(chan struct{}, 16)
	meteredCalls := make(chan usageCall)
	drv := &usageDriver{Driver: mock.New(mock.Config{}), usage: func(ctx context.Context, id string) (*driver.Usage, error) {
		switch id {
		case "stuck":
			stuckCalls <- struct{}{}
			<-release
		case "metered":
			c := usageCall{answer: make(chan *driver.Usage)}
			select {
			case meteredCalls <- c:
			case <-release:
				return nil, api.Errorf(api.EUnavailable, "driver gone")
			}
			select {
			case u := <-c.answer:
				return u, nil
			case <-release:
			}
		}
		return nil, api.Errorf(api.EUnavailable, "driver gone")
	}}
	adopt(t, drv.Driver, data, workerSpec("stuck"), 0)
	adopt(t, drv.Driver, data, workerSpec("metered"), 0)
	heartbeats, samples := make(chan time.Time), make(chan time.Time)
	clock := &fakeClock{now: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)}
	b := newMemBus()
	runOnMemBus(t, b, executor.Config{NodeID: "node-u", DataDir: data}, drv,
		executor.Clock{Heartbeat: heartbeats, Sample: samples, Now: clock.Now})
	for _, id := range []string{"stuck", "metered"} {
		waitFor(t, b.recorder, api.SubjectInstanceEvent, 0, id+" running", eventIs(id, api.InstanceRunning))
	}

	first := nextUsageCall(t, meteredCalls, samples)
	first.answer <- &driver.Usage{CPUTime: time.Second, MemoryBytes: 64 << 20}
	// The sampler asks again only once the first sample is kept; this second
	// call stays unanswered for now, like the stuck one.
	second := nextUsageCall(t, meteredCalls, samples)
	select {
	case <-stuckCalls:
	case <-time.After(30 * time.Second): // a guard against hanging, not a measurement
		t.Fatal("the sampler never asked for the stuck instance's usage")
	}

	const n = 5
	mark := b.len()
	from := mark
	for i := 1; i <= n; i++ {
		var hb *api.NodeHeartbeat
		from, hb = beat(t, b, heartbeats, from, i)
		from++
		stuck, ok1 := reportOf(hb, "stuck")
		metered, ok2 := reportOf(hb, "metered")
		if !ok1 || !ok2 || len(hb.Instances) != 2 {
			t.Fatalf("heartbeat %d lists %+v, want stuck and metered", i, hb.Instances)
		}
		if metered.MemoryBytes != 64<<20 || metered.CPUPercent != 0 {
			t.Fatalf("heartbeat %d: metered uses %d bytes, %.1f%% CPU; want its first sample: 64 MiB, no CPU%% yet", i, metered.MemoryBytes, metered.CPUPercent)
		}
		if stuck.MemoryBytes != 0 || stuck.CPUPercent != 0 {
			t.Fatalf("heartbeat %d: stuck reports %+v, want no usage (it was never measured)", i, stuck)
		}
	}
	if got := b.count(api.SubjectNodeHeartbeat, mark); got != n {
		t.Fatalf("%d heartbeat ticks sent %d heartbeats, want %d", n, got, n)
	}

	// Half a second of CPU over a second of the injected clock is 50%.
	clock.advance(time.Second)
	second.answer <- &driver.Usage{CPUTime: 1500 * time.Millisecond, MemoryBytes: 80 << 20}
	nextUsageCall(t, meteredCalls, samples) // the second sample is kept
	_, hb := beat(t, b, heartbeats, from, n+1)
	if metered, _ := reportOf(hb, "metered"); metered.MemoryBytes != 80<<20 || metered.CPUPercent != 50 {
		t.Fatalf("after the second sample metered reports %d bytes, %.1f%% CPU; want 80 MiB, 50%%", metered.MemoryBytes, metered.CPUPercent)
	}
	select {
	case <-stuckCalls:
		t.Fatal("the stuck instance was asked for usage again while its first call was in flight")
	default:
	}
}

// TestHeartbeatsKeepRhythmWhileUnregisterFlushes: a crashed instance's routes
// are withdrawn and the bus flushed before the crash is handled. While that
// flush hangs, heartbeats keep their rhythm (no instance lock is held across
// bus I/O); once it ends, the crash is reported, after the withdrawal.
func TestHeartbeatsKeepRhythmWhileUnregisterFlushes(t *testing.T) {
	data := t.TempDir()
	l, err := net.Listen("tcp", "127.0.0.1:0") // what the adopted instance's port check reaches
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	drv := mock.New(mock.Config{})
	spec := workerSpec("routed")
	spec.Process, spec.Routes = "web", []string{"meter.localhost"}
	adopt(t, drv, data, spec, l.Addr().(*net.TCPAddr).Port)
	b := newMemBus()
	b.flushGate = make(chan struct{})
	openGate := sync.OnceFunc(func() { close(b.flushGate) })
	defer openGate() // so that even a failing run lets the executor stop
	heartbeats := make(chan time.Time)
	cfg := executor.Config{NodeID: "node-f", DataDir: data, LivenessInterval: time.Hour,
		Restart: executor.RestartPolicy{Immediate: -1, Backoff: time.Hour}}
	runOnMemBus(t, b, cfg, drv, executor.Clock{Heartbeat: heartbeats})
	waitFor(t, b.recorder, api.SubjectRouterRegister, 0, "registration", func(r *api.RouterRegistration) bool { return r.PrivateInstanceID == "routed" })

	mark := b.len()
	if err := drv.Stop(context.Background(), "routed", time.Second); err != nil { // the app exits by itself
		t.Fatal(err)
	}
	u, _ := waitFor(t, b.recorder, api.SubjectRouterUnregister, mark, "unregister after the exit", func(r *api.RouterRegistration) bool { return r.PrivateInstanceID == "routed" })
	select {
	case <-b.flushes:
	case <-time.After(30 * time.Second): // a guard against hanging, not a measurement
		t.Fatal("the unregister was not flushed")
	}
	const n = 5
	from := b.len()
	for i := 1; i <= n; i++ {
		var hb *api.NodeHeartbeat
		from, hb = beat(t, b, heartbeats, from, i)
		from++
		if _, ok := reportOf(hb, "routed"); !ok {
			t.Fatalf("heartbeat %d lists %+v, want the instance", i, hb.Instances)
		}
	}
	if got := b.count(api.SubjectNodeHeartbeat, mark); got != n {
		t.Fatalf("%d heartbeat ticks sent %d heartbeats while the flush hung, want %d", n, got, n)
	}
	openGate()
	c, _ := waitFor(t, b.recorder, api.SubjectInstanceEvent, mark, "crashed event", eventIs("routed", api.InstanceCrashed))
	if c < u {
		t.Fatalf("crash event #%d before the unregister #%d", c, u)
	}
}
