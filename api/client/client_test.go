package client_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/strata-paas/strata/api"
	"github.com/strata-paas/strata/api/client"
	"github.com/strata-paas/strata/api/httpapi/httpapitest"
)

// newServer runs the real API (controller services on SQLite) for a test.
func newServer(t *testing.T) *httpapitest.Env {
	t.Helper()
	return httpapitest.Start(t, httpapitest.Options{})
}

func code(err error) string { return api.ErrorCode(err) }

func TestAppsRoundTrip(t *testing.T) {
	ctx := context.Background()
	e := newServer(t)
	url := e.URL
	c := client.New(url+"/", e.UserToken)

	info, err := c.Info(ctx)
	if err != nil || info.Version != "v-test" {
		t.Fatalf("Info: %+v %v", info, err)
	}
	p, err := c.Whoami(ctx)
	if err != nil || p.Name != "dev" {
		t.Fatalf("Whoami: %+v %v", p, err)
	}
	for _, n := range []string{"b", "a", "c"} {
		if _, err := c.CreateApp(ctx, n); err != nil {
			t.Fatalf("CreateApp(%s): %v", n, err)
		}
	}
	if _, err := c.CreateApp(ctx, "a"); code(err) != api.EConflict {
		t.Fatalf("duplicate CreateApp: %v, want conflict", err)
	}
	if _, err := c.CreateApp(ctx, "Bad_Name"); code(err) != api.EInvalid {
		t.Fatalf("bad name: %v, want invalid", err)
	}
	apps, err := c.Apps(ctx)
	if err != nil || len(apps) != 3 || apps[0].Name != "a" || apps[2].Name != "c" {
		t.Fatalf("Apps: %v %v", apps, err)
	}
	if _, err := c.App(ctx, "zzz"); code(err) != api.ENotFound {
		t.Fatalf("App(missing): %v, want not_found", err)
	}
	if err := c.DeleteApp(ctx, "b"); err != nil {
		t.Fatal(err)
	}
	if err := c.DeleteApp(ctx, "b"); code(err) != api.ENotFound {
		t.Fatalf("second delete: %v", err)
	}

	app1, err := c.CreateAppIdempotent(ctx, "d", "key-1")
	if err != nil {
		t.Fatal(err)
	}
	app2, err := c.CreateAppIdempotent(ctx, "d", "key-1")
	if err != nil || app2.ID != app1.ID {
		t.Fatalf("idempotent retry: %+v %v, want the first answer", app2, err)
	}
}

func TestErrors(t *testing.T) {
	ctx := context.Background()
	e := newServer(t)
	url := e.URL
	if _, err := client.New(url, "wrong").Apps(ctx); code(err) != api.EUnauthorized {
		t.Fatalf("bad token: %v", err)
	}
	if _, err := client.New(url, e.UserToken).Nodes(ctx); code(err) != api.EForbidden {
		t.Fatalf("nodes as user: %v", err)
	}

	// A port with nothing listening: connection refused.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := "http://" + l.Addr().String()
	l.Close()
	_, err = client.New(dead, "t").Apps(ctx)
	var ae *api.Error
	if !errors.As(err, &ae) || ae.Code != api.EUnavailable || !strings.Contains(ae.Message, "is stratad running? (make run)") || !strings.Contains(ae.Message, dead) {
		t.Fatalf("refused: %v", err)
	}

	// Answers without a JSON body map by status.
	tests := []struct {
		status int
		want   string
	}{
		{400, api.EInvalid}, {401, api.EUnauthorized}, {403, api.EForbidden}, {404, api.ENotFound},
		{409, api.EConflict}, {422, api.EBuildFailed}, {502, api.EUnavailable}, {503, api.EUnavailable},
		{504, api.ETimeout}, {501, api.EUnsupported}, {500, api.EInternal}, {418, api.EInternal},
	}
	for _, tc := range tests {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			http.Error(w, "proxy says no", tc.status)
		}))
		_, err := client.New(srv.URL, "t").App(ctx, "x")
		srv.Close()
		if code(err) != tc.want {
			t.Errorf("status %d: code %q, want %q (%v)", tc.status, code(err), tc.want, err)
		}
	}
}

func TestPush(t *testing.T) {
	ctx := context.Background()
	e := newServer(t)
	url := e.URL
	c := client.New(url, e.UserToken)
	var events []api.DeployEvent
	src := []byte("tarball")
	res, err := c.Push(ctx, "hello", bytes.NewReader(src), client.PushOptions{
		Create: true, Wait: true, Size: int64(len(src)),
		OnEvent: func(e api.DeployEvent) { events = append(events, e) },
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.Release == nil || res.Release.Version != 1 || res.URLs[0] != "http://hello.localhost:8080" {
		t.Fatalf("result %+v", res)
	}
	if len(events) != 3 || events[0].Type != api.DeployEventLog || events[2].Type != api.DeployEventStatus {
		t.Fatalf("events %+v", events)
	}
	if j := e.Builder.Jobs(); len(j) != 1 || string(e.Source(j[0])) != "tarball" || j[0].AppName != "hello" || res.Running != 1 {
		t.Fatalf("builds %+v, result %+v", j, res)
	}

	e.Builder.Fail("compile failed (exit 2)")
	_, err = c.Push(ctx, "hello", strings.NewReader("x"), client.PushOptions{})
	var ae *api.Error
	if !errors.As(err, &ae) || ae.Code != api.EBuildFailed || ae.Message != "compile failed (exit 2)" {
		t.Fatalf("failed build: %v", err)
	}
	if _, err := c.Push(ctx, "nope", strings.NewReader("x"), client.PushOptions{}); code(err) != api.ENotFound {
		t.Fatalf("push to missing app: %v", err)
	}

	// A stream that ends without a result is an error, not a success.
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/x-ndjson")
		io.WriteString(w, `{"type":"log","line":"x"}`+"\n")
	}))
	defer srv.Close()
	if _, err := client.New(srv.URL, "t").Push(ctx, "a", strings.NewReader("x"), client.PushOptions{}); code(err) != api.EUnavailable {
		t.Fatalf("truncated stream: %v, want unavailable", err)
	}
}

func TestLogs(t *testing.T) {
	e := newServer(t)
	url := e.URL
	c := client.New(url, e.UserToken)
	if _, err := c.CreateApp(context.Background(), "hello"); err != nil {
		t.Fatal(err)
	}
	e.Log("hello", "staging", "built", time.Now())
	e.Log("hello", "app/web/0", "started", time.Now())

	var got []string
	err := c.Logs(context.Background(), "hello", client.LogOptions{Source: "app"}, func(e api.LogEnvelope) error {
		got = append(got, e.Line)
		return nil
	})
	if err != nil || strings.Join(got, ",") != "started" {
		t.Fatalf("recent: %v %v", got, err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	lines := make(chan string, 10)
	done := make(chan error, 1)
	go func() {
		done <- c.Logs(ctx, "hello", client.LogOptions{Follow: true}, func(e api.LogEnvelope) error {
			lines <- e.Line
			return nil
		})
	}()
	recv := func() string {
		select {
		case l := <-lines:
			return l
		case <-time.After(10 * time.Second):
			t.Fatal("no log line within 10s")
			return ""
		}
	}
	// The controller's own line about the app comes first.
	if p, a, b := recv(), recv(), recv(); p != "app.create: created app hello" || a != "built" || b != "started" {
		t.Fatalf("recent lines %q %q %q", p, a, b)
	}
	// A line published before the follower subscribed is not followed:
	// publish until one arrives.
	var live string
	for i := 0; i < 100 && live == ""; i++ {
		e.Log("hello", "router", "GET /", time.Now())
		select {
		case live = <-lines:
		case <-time.After(100 * time.Millisecond):
		}
	}
	if live != "GET /" {
		t.Fatalf("live line %q", live)
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("follow ended with %v, want context.Canceled", err)
	}

	stop := errors.New("enough")
	err = c.Logs(context.Background(), "hello", client.LogOptions{}, func(api.LogEnvelope) error { return stop })
	if !errors.Is(err, stop) {
		t.Fatalf("fn error: %v", err)
	}
}

func TestBlobs(t *testing.T) {
	ctx := context.Background()
	e := newServer(t)
	url := e.URL
	c := client.New(url, e.AdminToken)
	ref, err := c.PutBlob(ctx, strings.NewReader("droplet"))
	if err != nil {
		t.Fatal(err)
	}
	rc, err := c.GetBlob(ctx, ref)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(rc)
	rc.Close()
	if string(b) != "droplet" {
		t.Fatalf("blob %q", b)
	}
	if _, err := c.GetBlob(ctx, api.BlobRef("sha256:"+strings.Repeat("1", 64))); code(err) != api.ENotFound {
		t.Fatalf("missing blob: %v", err)
	}
	if _, err := c.GetBlob(ctx, "nope"); code(err) != api.EInvalid {
		t.Fatalf("bad ref: %v", err)
	}
	if _, err := client.New(url, e.UserToken).PutBlob(ctx, strings.NewReader("x")); code(err) != api.EForbidden {
		t.Fatalf("user PutBlob: %v", err)
	}
}

func TestNodes(t *testing.T) {
	e := newServer(t)
	url := e.URL
	e.Node.Describe(api.SubstrateMetal, []api.Isolation{api.IsolationProcess}, api.Capacity{CPUs: 1, MemoryMB: 1024}, "")
	e.Eventually("the node reports metal", func() bool {
		ns := e.Controller.Nodes.List()
		return len(ns) == 1 && ns[0].Substrate == api.SubstrateMetal
	})
	nodes, err := client.New(url, e.AdminToken).Nodes(context.Background())
	if err != nil || len(nodes) != 1 || nodes[0].ID != httpapitest.NodeID || nodes[0].Substrate != api.SubstrateMetal {
		t.Fatalf("Nodes: %v %v", nodes, err)
	}
}

// Names under .localhost reach the loopback address, whatever the resolver
// says (the microcloud's API answers at api.localhost through its router).
func TestLocalhostNames(t *testing.T) {
	e := newServer(t)
	_, port, _ := strings.Cut(strings.TrimPrefix(e.URL, "http://127.0.0.1"), ":")
	for _, host := range []string{"api.localhost", "API.Localhost.", "localhost"} {
		info, err := client.New("http://"+host+":"+port, "").Info(context.Background())
		if err != nil || info.Version != "v-test" {
			t.Errorf("Info via %s: %+v, %v", host, info, err)
		}
	}
	for host, want := range map[string]bool{"api.localhost": true, "localhost": true, "localhost.example.com": false, "mylocalhost": false, "example.com": false} {
		if got := client.IsLocalhost(host); got != want {
			t.Errorf("IsLocalhost(%q) = %v, want %v", host, got, want)
		}
	}
}
