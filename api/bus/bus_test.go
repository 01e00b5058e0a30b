package bus_test

import (
	"context"
	"encoding/json"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/strata-paas/strata/api"
	"github.com/strata-paas/strata/api/bus"
)

func startBus(t *testing.T, port int) (*bus.Server, *bus.Conn) {
	t.Helper()
	srv, err := bus.StartServer(bus.ServerConfig{Port: port, StoreDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Shutdown)
	conn, err := bus.Connect(context.Background(), "", bus.Options{Name: "test", Server: srv})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(conn.Close)
	return srv, conn
}

type ping struct{ N int }

func TestRequestReply(t *testing.T) {
	_, conn := startBus(t, -1)
	_, err := bus.Handle(conn, "svc.double", "", func(ctx context.Context, p *ping) (*ping, error) {
		if p.N < 0 {
			return nil, api.Errorf(api.EInvalid, "negative")
		}
		return &ping{N: p.N * 2}, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	got, err := bus.Request[ping, ping](ctx, conn, "svc.double", &ping{N: 21})
	if err != nil || got.N != 42 {
		t.Fatalf("got %+v, %v; want 42", got, err)
	}
	_, err = bus.Request[ping, ping](ctx, conn, "svc.double", &ping{N: -1})
	if api.ErrorCode(err) != api.EInvalid {
		t.Fatalf("got error %v (code %q), want code invalid", err, api.ErrorCode(err))
	}
	_, err = bus.Request[ping, ping](ctx, conn, "svc.nobody", &ping{})
	if api.ErrorCode(err) != api.EUnavailable {
		t.Fatalf("no responder: got %v, want code unavailable", err)
	}
}

func TestSubscribeJSON(t *testing.T) {
	_, conn := startBus(t, -1)
	got := make(chan int, 10)
	if _, err := bus.SubscribeJSON(conn, "evt.>", "", func(_ string, p *ping) { got <- p.N }); err != nil {
		t.Fatal(err)
	}
	if err := conn.Publish("evt.a", ping{N: 1}); err != nil {
		t.Fatal(err)
	}
	select {
	case n := <-got:
		if n != 1 {
			t.Fatalf("got %d, want 1", n)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no message")
	}
}

func TestWorkQueueRedelivers(t *testing.T) {
	_, conn := startBus(t, -1)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := conn.EnsureWorkQueue(ctx, "TESTQ", "test.jobs"); err != nil {
		t.Fatal(err)
	}
	if err := conn.Enqueue(ctx, "test.jobs", ping{N: 7}); err != nil {
		t.Fatal(err)
	}
	var calls atomic.Int32
	done := make(chan int, 1)
	go conn.ConsumeWork(ctx, bus.WorkConfig{Stream: "TESTQ", Durable: "w", AckWait: 2 * time.Second},
		func(ctx context.Context, data []byte, attempt int) error {
			calls.Add(1)
			if attempt == 1 {
				return errors.New("first attempt fails")
			}
			var p ping
			json.Unmarshal(data, &p)
			done <- p.N
			return nil
		})
	select {
	case n := <-done:
		if n != 7 || calls.Load() != 2 {
			t.Fatalf("got job %d after %d calls, want 7 after 2", n, calls.Load())
		}
	case <-time.After(20 * time.Second):
		t.Fatalf("job not redelivered after a failure (calls %d)", calls.Load())
	}
}

func TestListeningServerAndReconnectNotice(t *testing.T) {
	srv, _ := startBus(t, 0)
	if srv.ClientURL() == "" {
		t.Fatal("a listening server has no client URL")
	}
	c, err := bus.Connect(context.Background(), srv.ClientURL(), bus.Options{Name: "remote"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if !c.Connected() {
		t.Fatal("not connected to a running server")
	}
	down := make(chan bool, 1)
	c.OnConnectionChange(func(up bool) {
		if !up {
			select {
			case down <- true:
			default:
			}
		}
	})
	srv.Shutdown()
	select {
	case <-down:
	case <-time.After(10 * time.Second):
		t.Fatal("no disconnect notice after the server stopped")
	}
}
