package router_test

import (
	"bufio"
	"context"
	"encoding/base64"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"testing"
	"time"

	"github.com/strata-paas/strata/router"
	"github.com/strata-paas/strata/router/registry"
)

// drainRig is a router served with its own context so a test can cancel it.
type drainRig struct {
	addr   string
	reg    *registry.Registry
	cancel context.CancelFunc
	done   chan struct{} // closed when Serve returned
	err    error         // what Serve returned
}

func newDrainRig(t *testing.T, cfg router.Config) *drainRig {
	log := testLogger(t)
	r := &drainRig{reg: registry.New(registry.Config{Logger: log}), done: make(chan struct{})}
	p := router.New(cfg, r.reg, log)
	t.Cleanup(p.Close)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r.addr = ln.Addr().String()
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	go func() {
		r.err = router.NewServer(cfg, p, log).Serve(ctx, ln)
		close(r.done)
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-r.done:
		case <-time.After(30 * time.Second):
		}
	})
	return r
}

func (r *drainRig) wait(t *testing.T) {
	t.Helper()
	select {
	case <-r.done:
		if r.err != nil {
			t.Fatalf("serve: %v", r.err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Serve did not return after the context was cancelled")
	}
}

// get sends a GET on a fresh connection and returns the status, or an error.
func rawGet(addr, host, path string) (int, error) {
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return 0, err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(20 * time.Second))
	if _, err := io.WriteString(conn, "GET "+path+" HTTP/1.1\r\nHost: "+host+"\r\n\r\n"); err != nil {
		return 0, err
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	_, err = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, err
}

func TestDrainFinishesInFlight(t *testing.T) {
	rig := newDrainRig(t, router.Config{ShutdownGrace: 20 * time.Second})
	held := make(chan string, 1)
	release := make(chan struct{})
	be := holdBackend(t, "slow", held, release)
	h := &harness{t: t, reg: rig.reg}
	h.register("d.localhost", be.URL, "d-0", "d")

	result := make(chan error, 1)
	status := make(chan int, 1)
	go func() {
		s, err := rawGet(rig.addr, "d.localhost", "/hold")
		status <- s
		result <- err
	}()
	<-held // the request is at the backend
	rig.cancel()

	// New connections are refused while the in-flight request is served.
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := rawGet(rig.addr, "d.localhost", "/"); err != nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("router still accepts requests after drain began")
		}
		time.Sleep(10 * time.Millisecond)
	}
	select {
	case <-rig.done:
		t.Fatalf("Serve returned (%v) before the in-flight request finished", rig.err)
	default:
	}
	close(release)
	if err := <-result; err != nil || <-status != 200 {
		t.Fatalf("in-flight request: err %v", err)
	}
	rig.wait(t)
}

func TestDrainIsBounded(t *testing.T) {
	rig := newDrainRig(t, router.Config{ShutdownGrace: 200 * time.Millisecond})
	held := make(chan string, 2)
	release := make(chan struct{})
	stuck := holdBackend(t, "stuck", held, release)
	t.Cleanup(func() { close(release) }) // runs before the backend's Close
	h := &harness{t: t, reg: rig.reg}
	h.register("d.localhost", stuck.URL, "d-0", "d")
	h.register("ws.localhost", wsEcho(t).URL, "ws-0", "ws")

	// A stuck request and an open WebSocket: neither ends by itself.
	result := make(chan error, 1)
	go func() {
		_, err := rawGet(rig.addr, "d.localhost", "/hold")
		result <- err
	}()
	<-held
	ws, err := net.Dial("tcp", rig.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	_ = ws.SetDeadline(time.Now().Add(20 * time.Second))
	key := base64.StdEncoding.EncodeToString([]byte("drain-key-123456"))
	_, _ = io.WriteString(ws, "GET / HTTP/1.1\r\nHost: ws.localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: "+key+"\r\nSec-WebSocket-Version: 13\r\n\r\n")
	br := bufio.NewReader(ws)
	if resp, err := http.ReadResponse(br, nil); err != nil || resp.StatusCode != 101 {
		t.Fatalf("websocket handshake: %v", err)
	}

	rig.cancel()
	rig.wait(t)
	if err := <-result; err == nil {
		t.Error("stuck request completed although the backend never answered")
	}
	// The WebSocket was closed by the router.
	if _, err := io.ReadAll(br); errors.Is(err, os.ErrDeadlineExceeded) {
		t.Error("websocket still open after the drain ended")
	}
}
