package controller

import (
	"context"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/strata-paas/strata/api"
	"github.com/strata-paas/strata/api/blobstore"
	"github.com/strata-paas/strata/api/bus"
	"github.com/strata-paas/strata/api/store"
)

// memBus is an in-memory Bus: node commands are recorded and accepted,
// published messages are kept, subscriptions never deliver. With it the
// services run without a NATS server.
type memBus struct {
	mu        sync.Mutex
	commands  []api.NodeCommand
	published []string
}

var _ Bus = (*memBus)(nil)

func (b *memBus) Publish(subject string, _ any) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.published = append(b.published, subject)
	return nil
}

func (b *memBus) Flush(context.Context) error { return nil }

func (b *memBus) Request(_ context.Context, subject string, req, resp any) error {
	cmd, ok := req.(*api.NodeCommand)
	if !ok || !strings.HasPrefix(subject, "strata.node.") {
		return api.Errorf(api.EUnavailable, "nobody answers on %s", subject)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.commands = append(b.commands, *cmd)
	*resp.(*api.NodeCommandReply) = api.NodeCommandReply{Version: api.MessageVersion}
	return nil
}

func (b *memBus) Subscribe(string, string, func(*bus.Msg)) (*bus.Subscription, error) {
	return &bus.Subscription{}, nil
}

func (b *memBus) OnConnectionChange(func(bool))                            {}
func (b *memBus) EnsureWorkQueue(context.Context, string, ...string) error { return nil }
func (b *memBus) Enqueue(context.Context, string, any) error               { return nil }

func (b *memBus) take() []api.NodeCommand {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := b.commands
	b.commands = nil
	return out
}

// fakeClock is a settable Config.Now.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }

func (c *fakeClock) add(d time.Duration) { c.mu.Lock(); c.now = c.now.Add(d); c.mu.Unlock() }

// passController opens a SQLite store and a controller on b with cfg, with
// an admin and an app "hello", for tests that run passes themselves.
func passController(t *testing.T, b Bus, cfg Config) (context.Context, *store.Store, *Controller, *api.App) {
	t.Helper()
	ctx := api.WithPrincipal(context.Background(), &api.Principal{Name: "admin", Admin: true})
	st, err := store.Open(ctx, store.Config{Driver: "sqlite", DSN: filepath.Join(t.TempDir(), "strata.db")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	blobs, err := blobstore.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	c, err := New(cfg, st, blobs, b)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := c.Tenancy.Bootstrap(ctx, "admin"); err != nil {
		t.Fatal(err)
	}
	app, err := c.Apps.CreateApp(ctx, "hello")
	if err != nil {
		t.Fatal(err)
	}
	return ctx, st, c, app
}

// One converger pass places a released app's web instance on the ready node
// and sends its start; scaling to zero makes the next pass stop it and
// delete the row. No NATS server, no timers: passes run when the test says.
func TestConvergePassWithoutBus(t *testing.T) {
	clock := &fakeClock{now: time.Unix(1_000_000, 0)}
	b := &memBus{}
	ctx, st, c, app := passController(t, b, Config{NodeTTL: 5 * time.Second, Now: clock.Now})
	droplet := api.BlobRef("sha256:" + strings.Repeat("ab", 32))
	if err := st.CreateRelease(ctx, &api.Release{ID: "rel-1", AppID: app.ID, DropletBlob: droplet, Processes: map[string]string{api.ProcessWeb: "./hello"}}); err != nil {
		t.Fatal(err)
	}

	c.Nodes.start()
	c.Nodes.heartbeat(&api.NodeHeartbeat{
		Version: api.MessageVersion, NodeID: "n1", Substrate: api.SubstrateVM,
		Isolations: []api.Isolation{api.IsolationProcess}, Capacity: api.Capacity{MemoryMB: 4096, CPUs: 2},
		Time: clock.Now(), Interval: time.Second,
	}, clock.Now())
	clock.add(time.Second)
	c.Converger.converge(ctx)

	cmds := b.take()
	if len(cmds) != 1 || cmds[0].Kind != api.CmdStart || cmds[0].Start == nil {
		t.Fatalf("first pass sent %+v, want one start", cmds)
	}
	spec := cmds[0].Start
	if spec.AppName != "hello" || spec.Process != api.ProcessWeb || spec.Release != 1 || spec.DropletBlob != droplet || spec.Command != "./hello" {
		t.Errorf("start spec %+v, want hello web v1 %s ./hello", spec, droplet)
	}
	rows, err := st.Instances(ctx, app.ID)
	if err != nil || len(rows) != 1 || rows[0].NodeID != "n1" || rows[0].ID != spec.InstanceID {
		t.Fatalf("instance rows %v (%v), want the started instance on n1", rows, err)
	}

	zero := 0
	if _, err := c.Apps.Scale(ctx, "hello", api.ScaleRequest{Process: api.ProcessWeb, Instances: &zero}); err != nil {
		t.Fatal(err)
	}
	c.Nodes.heartbeat(&api.NodeHeartbeat{
		Version: api.MessageVersion, NodeID: "n1", Substrate: api.SubstrateVM,
		Isolations: []api.Isolation{api.IsolationProcess}, Capacity: api.Capacity{MemoryMB: 4096, CPUs: 2},
		Instances: []api.InstanceReport{{InstanceID: spec.InstanceID, AppID: app.ID, Process: api.ProcessWeb, Release: 1, State: api.InstanceRunning}},
		Time:      clock.Now(), Interval: time.Second,
	}, clock.Now())
	c.Converger.converge(ctx)

	var stops []string
	for _, cmd := range b.take() {
		if cmd.Kind == api.CmdStop {
			stops = append(stops, cmd.InstanceID)
		}
	}
	if len(stops) != 1 || stops[0] != spec.InstanceID {
		t.Errorf("after scaling to zero the pass stopped %v, want [%s]", stops, spec.InstanceID)
	}
	if rows, err := st.Instances(ctx, app.ID); err != nil || len(rows) != 0 {
		t.Errorf("instance rows after the stop: %v (%v), want none", rows, err)
	}
}
