package bus_test

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/strata-paas/strata/api"
	"github.com/strata-paas/strata/api/bus"
)

// authBus starts a listening server that requires the component
// credentials, and connects the controller in-process.
func authBus(t *testing.T) (*bus.Server, *bus.Conn) {
	t.Helper()
	creds := map[string]string{api.ComponentExecutor: "exec-secret", api.ComponentRouter: "router-secret"}
	srv, err := bus.StartServer(bus.ServerConfig{Port: 0, StoreDir: t.TempDir(),
		Auth: bus.ComponentAuth("ctrl-secret", func(c string) string { return creds[c] })})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Shutdown)
	ctrl := dial(t, srv, "", bus.Options{Name: "controller", Server: srv, User: "controller", Password: "ctrl-secret"})
	return srv, ctrl
}

func dial(t *testing.T, srv *bus.Server, url string, opts bus.Options) *bus.Conn {
	t.Helper()
	if url == "" && opts.Server == nil {
		url = srv.ClientURL()
	}
	c, err := bus.Connect(context.Background(), url, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

func TestBusRefusesClientsWithoutCredentials(t *testing.T) {
	srv, _ := authBus(t)
	for _, o := range []bus.Options{
		{Name: "anonymous"},
		{Name: "executor", User: bus.ExecutorUser("node-1"), Password: "wrong"},
		{Name: "router", User: bus.RouterUser("r1"), Password: "exec-secret"},      // another component's credential
		{Name: "executor", User: bus.ExecutorUser("a.b"), Password: "exec-secret"}, // not one subject token
		{Name: "controller", User: "controller", Password: ""},
	} {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		c, err := bus.Connect(ctx, srv.ClientURL(), o)
		cancel()
		if err == nil {
			c.Close()
			t.Errorf("user %q password %q: connected, want refused", o.User, o.Password)
			continue
		}
		if o.User != "" && api.ErrorCode(err) != api.EUnauthorized {
			t.Errorf("user %q: err %v (code %q), want unauthorized", o.User, err, api.ErrorCode(err))
		}
	}
}

// received collects what one subscription gets, in order.
func received(t *testing.T, c *bus.Conn, subject string) chan string {
	t.Helper()
	ch := make(chan string, 16)
	if _, err := c.Subscribe(subject, "", func(m *bus.Msg) { ch <- m.Subject }); err != nil {
		t.Fatal(err)
	}
	flush(t, c)
	return ch
}

func flush(t *testing.T, c *bus.Conn) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.Flush(ctx); err != nil {
		t.Fatal(err)
	}
}

func next(t *testing.T, ch chan string) string {
	t.Helper()
	select {
	case s := <-ch:
		return s
	case <-time.After(10 * time.Second):
		t.Fatal("nothing received")
		return ""
	}
}

func TestExecutorReadsOnlyItsOwnNodeCommands(t *testing.T) {
	srv, ctrl := authBus(t)
	var log lockedBuffer
	ex := dial(t, srv, "", bus.Options{Name: "executor", User: bus.ExecutorUser("node-1"), Password: "exec-secret",
		Logger: slog.New(slog.NewTextHandler(&log, nil))})
	// The subscription to node-2's commands is refused by the server (its
	// error reaches the client before the reply to the flush); the one to
	// its own node's is not.
	other := received(t, ex, api.SubjectNodeCommand("node-2"))
	// The client hears of the refusal on its callback goroutine.
	for end := time.Now().Add(10 * time.Second); !strings.Contains(log.String(), "Permissions Violation for Subscription") && time.Now().Before(end); {
		time.Sleep(10 * time.Millisecond)
	}
	if !strings.Contains(log.String(), "Permissions Violation for Subscription") {
		t.Fatalf("subscribing to node-2's commands was not refused; the client logged:\n%s", log.String())
	}
	own := received(t, ex, api.SubjectNodeCommand("node-1"))
	for _, s := range []string{api.SubjectNodeCommand("node-2"), api.SubjectNodeCommand("node-1")} {
		if err := ctrl.Publish(s, struct{}{}); err != nil {
			t.Fatal(err)
		}
	}
	if got := next(t, own); got != api.SubjectNodeCommand("node-1") {
		t.Fatalf("own commands: got %s", got)
	}
	select {
	case s := <-other:
		t.Fatalf("executor of node-1 read %s", s)
	default:
	}
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func TestRouterCannotSendNodeCommandsOrRegisterRoutes(t *testing.T) {
	srv, ctrl := authBus(t)
	rt := dial(t, srv, "", bus.Options{Name: "router", User: bus.RouterUser("r1"), Password: "router-secret"})
	seen := received(t, ctrl, ">")
	for _, s := range []string{api.SubjectNodeCommand("node-1"), api.SubjectRouterRegister, api.SubjectRouterWake, api.SubjectRouterActivity, api.SubjectRouterStart} {
		if err := rt.Publish(s, struct{}{}); err != nil {
			t.Fatal(err)
		}
	}
	// Only the allowed ones arrive (scale to zero's wake-ups and activity
	// reports, then the start), in order, after the refused ones would have.
	for _, want := range []string{api.SubjectRouterWake, api.SubjectRouterActivity, api.SubjectRouterStart} {
		if got := next(t, seen); got != want {
			t.Fatalf("the controller got %s from the router, want %s", got, want)
		}
	}
}

func TestExecutorCannotWakeApps(t *testing.T) {
	srv, ctrl := authBus(t)
	ex := dial(t, srv, "", bus.Options{Name: "executor", User: bus.ExecutorUser("node-1"), Password: "exec-secret"})
	seen := received(t, ctrl, ">")
	for _, s := range []string{api.SubjectRouterWake, api.SubjectRouterActivity, api.SubjectNodeHeartbeat} {
		if err := ex.Publish(s, struct{}{}); err != nil {
			t.Fatal(err)
		}
	}
	if got := next(t, seen); got != api.SubjectNodeHeartbeat {
		t.Fatalf("the controller got %s from the executor, want only %s", got, api.SubjectNodeHeartbeat)
	}
}

func TestComponentsRequestAndReplyWithinTheirGrants(t *testing.T) {
	srv, ctrl := authBus(t)
	ex := dial(t, srv, "", bus.Options{Name: "executor", User: bus.ExecutorUser("node-1"), Password: "exec-secret"})
	rt := dial(t, srv, "", bus.Options{Name: "router", User: bus.RouterUser("r1"), Password: "router-secret"})
	// As the router's registry does, one subscription takes every subject
	// meant for routers.
	if _, err := bus.Handle(rt, "router.*", "", func(context.Context, *struct{}) (*api.RouterStart, error) {
		return &api.RouterStart{ID: "r1"}, nil
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := bus.Handle(ex, api.SubjectNodeCommand("node-1"), "", func(context.Context, *api.NodeCommand) (*struct{}, error) {
		return &struct{}{}, nil
	}); err != nil {
		t.Fatal(err)
	}
	flush(t, rt)
	flush(t, ex)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// An executor greets routers: its request, its own inbox, the router's reply.
	got, err := bus.Request[struct{}, api.RouterStart](ctx, ex, api.SubjectRouterGreet, &struct{}{})
	if err != nil || got.ID != "r1" {
		t.Fatalf("greet: %+v, %v", got, err)
	}
	// The controller commands the node; the executor answers.
	if _, err := bus.Request[api.NodeCommand, struct{}](ctx, ctrl, api.SubjectNodeCommand("node-1"), &api.NodeCommand{}); err != nil {
		t.Fatalf("node command: %v", err)
	}
	// The controller keeps JetStream (the build queue).
	if err := ctrl.EnsureWorkQueue(ctx, api.BuildJobsStream, api.SubjectBuildJobs); err != nil {
		t.Fatalf("work queue: %v", err)
	}
	if err := ctrl.Enqueue(ctx, api.SubjectBuildJobs, api.BuildJob{}); err != nil {
		t.Fatalf("enqueue: %v", err)
	}
}
