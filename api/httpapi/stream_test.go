package httpapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/strata-paas/strata/api"
	"github.com/strata-paas/strata/api/httpapi"
	"github.com/strata-paas/strata/api/httpapi/httpapitest"
)

type line struct {
	Type   string
	Line   string
	Result *api.DeployResult
	Error  *api.Error
}

func parseLine(t *testing.T, s string) line {
	t.Helper()
	var l line
	if err := json.Unmarshal([]byte(s), &l); err != nil {
		t.Fatalf("line %q: %v", s, err)
	}
	return l
}

func TestPushStreams(t *testing.T) {
	h := newHarness(t, httpapi.Config{}, nil)
	res := h.do("POST", "/v1/apps/hello/push?create=true&wait=true", h.env.UserToken,
		strings.NewReader("source-bytes"), "Content-Type", "application/gzip")
	if res.StatusCode != 200 || res.Header.Get("Content-Type") != "application/x-ndjson" {
		t.Fatalf("status %d type %q", res.StatusCode, res.Header.Get("Content-Type"))
	}
	lines := readLines(res.Body)
	want := []line{
		{Type: "log", Line: "-----> Detected fake buildpack"},
		{Type: "log", Line: "-----> Compiled"},
		{Type: "status", Line: "release v1 created"},
	}
	for _, w := range want {
		if got := parseLine(t, next(t, lines)); got.Type != w.Type || got.Line != w.Line {
			t.Fatalf("line %+v, want %+v", got, w)
		}
	}
	// Then, while the instance starts, "waiting for 0/1 instances" (once at
	// most: a status is sent when it changes).
	last := parseLine(t, next(t, lines))
	if last.Type == "status" {
		if last.Line != "waiting for 0/1 instances" {
			t.Fatalf("line %+v, want waiting for 0/1 instances", last)
		}
		last = parseLine(t, next(t, lines))
	}
	if last.Type != "result" || last.Result == nil || last.Result.Release.Version != 1 || last.Result.URLs[0] != "http://hello.localhost:8080" {
		t.Fatalf("last line %+v, want a result of release 1", last)
	}
	if _, ok := <-lines; ok {
		t.Fatal("lines after the result")
	}
	// One build of the uploaded source, of the app the push created; the
	// push waited for its instance.
	j := h.env.Builder.Jobs()
	if len(j) != 1 || string(h.env.Source(j[0])) != "source-bytes" || j[0].AppName != "hello" || h.env.App("hello").CurrentRelease != 1 ||
		last.Result.Running != 1 || last.Result.Desired != 1 {
		t.Fatalf("builds %+v, result %+v", j, last.Result)
	}
}

func TestPushFailures(t *testing.T) {
	t.Run("build failed after progress", func(t *testing.T) {
		h := newHarness(t, httpapi.Config{}, nil)
		h.env.Builder.Fail("compile failed (exit 2)")
		res := h.do("POST", "/v1/apps/hello/push?create=true", h.env.UserToken, strings.NewReader("x"))
		if res.StatusCode != 200 {
			t.Fatalf("status %d, want 200 (the stream had started)", res.StatusCode)
		}
		lines := readLines(res.Body)
		next(t, lines)
		next(t, lines)
		l := parseLine(t, next(t, lines))
		if l.Type != "error" || l.Error == nil || l.Error.Code != api.EBuildFailed || l.Error.Message != "compile failed (exit 2)" {
			t.Fatalf("last line %+v, want a build_failed error", l)
		}
	})
	t.Run("error before progress", func(t *testing.T) {
		h := newHarness(t, httpapi.Config{}, nil)
		res := h.do("POST", "/v1/apps/nope/push", h.env.UserToken, strings.NewReader("x"))
		if res.StatusCode != 404 || errorOf(t, res).Code != api.ENotFound {
			t.Fatalf("status %d, want 404", res.StatusCode)
		}
	})
	t.Run("upload too large", func(t *testing.T) {
		env := httpapitest.Start(t, httpapitest.Options{})
		for _, chunked := range []bool{false, true} {
			h := serve(t, env, httpapi.Config{MaxUploadBytes: 1 << 20}, nil)
			var body io.Reader = bytes.NewReader(make([]byte, 1<<20+1))
			if chunked {
				body = io.MultiReader(body) // hides the length: chunked encoding
			}
			res := h.do("POST", "/v1/apps/hello/push?create=true", env.UserToken, body)
			e := errorOf(t, res)
			if res.StatusCode != 400 || e.Code != api.EInvalid || e.Message != "upload is larger than 1 MiB — add files to .stratignore" {
				t.Fatalf("chunked=%v: status %d error %+v", chunked, res.StatusCode, e)
			}
		}
	})
}

// gatedDeploy emits one line, then waits for the test before finishing.
type gatedDeploy struct{ gate chan struct{} }

func (g gatedDeploy) Deploy(ctx context.Context, req api.DeployRequest) (*api.DeployResult, error) {
	io.Copy(io.Discard, req.Source)
	req.Progress(api.DeployEvent{Type: api.DeployEventLog, Line: "first"})
	select {
	case <-g.gate:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	return &api.DeployResult{Running: 1, Desired: 1}, nil
}

func TestPushFlushesEachLine(t *testing.T) {
	g := gatedDeploy{gate: make(chan struct{})}
	h := newHarness(t, httpapi.Config{}, func(s *httpapi.Services) { s.Deploy = g })
	res := h.do("POST", "/v1/apps/hello/push", h.env.UserToken, strings.NewReader("x"))
	lines := readLines(res.Body)
	// The first line arrives while Deploy is still blocked: it was flushed.
	if l := parseLine(t, next(t, lines)); l.Line != "first" {
		t.Fatalf("first line %+v", l)
	}
	close(g.gate)
	if l := parseLine(t, next(t, lines)); l.Type != "result" || l.Result.Running != 1 {
		t.Fatalf("second line %+v, want the result", l)
	}
}

// logLines publishes lines of app as executors and routers do, one per
// source, a second apart.
func (h *harness) logLines(app string, sources []string, lines ...string) {
	h.t.Helper()
	at := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	for i, l := range lines {
		h.env.Log(app, sources[i], l, at.Add(time.Duration(i)*time.Second))
	}
}

func TestLogsRecent(t *testing.T) {
	h := newHarness(t, httpapi.Config{}, nil)
	h.createApp("hello")
	h.logLines("hello", []string{"app/web/0", "staging", "app/web/1", "router"}, "line0", "line1", "line2", "line3")
	tests := []struct {
		query string
		want  string
	}{
		// The controller's own line about the app's creation comes first.
		{"", "app.create: created app hello line0 line1 line2 line3"},
		{"?source=app", "line0 line2"},
		{"?recent=2", "line2 line3"},
		{"?source=staging&recent=5", "line1"},
	}
	for _, tc := range tests {
		t.Run(tc.query, func(t *testing.T) {
			res := h.do("GET", "/v1/apps/hello/logs"+tc.query, h.env.UserToken, nil)
			p := decode[struct{ Items []api.LogEnvelope }](t, res)
			var got []string
			for _, e := range p.Items {
				got = append(got, e.Line)
			}
			if strings.Join(got, " ") != tc.want {
				t.Fatalf("lines %q, want %q", got, tc.want)
			}
		})
	}
	for _, q := range []string{"?recent=-1", "?recent=x", "?source=a%20b", "?follow=maybe"} {
		if res := h.do("GET", "/v1/apps/hello/logs"+q, h.env.UserToken, nil); res.StatusCode != 400 {
			t.Errorf("%s: status %d, want 400", q, res.StatusCode)
		}
	}
}

// countingLogs is the real LogService, counting the Logs calls under way:
// the followers the HTTP layer holds open.
type countingLogs struct {
	api.LogService
	n *atomic.Int32
}

func (c countingLogs) Logs(ctx context.Context, q api.LogQuery, fn func(api.LogEnvelope) error) error {
	c.n.Add(1)
	defer c.n.Add(-1)
	return c.LogService.Logs(ctx, q, fn)
}

func TestLogsFollowSSE(t *testing.T) {
	var followers atomic.Int32
	h := newHarness(t, httpapi.Config{KeepAlive: 5 * time.Millisecond}, func(s *httpapi.Services) {
		s.Logs = countingLogs{LogService: s.Logs, n: &followers}
	})
	h.createApp("hello")
	h.logLines("hello", []string{"app/web/0"}, "old")

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", h.srv.URL+"/v1/apps/hello/logs?follow=true", nil)
	req.Header.Set("Authorization", "Bearer "+h.env.UserToken)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("content type %q", res.Header.Get("Content-Type"))
	}
	lines := readLines(res.Body)
	dataLine := func() api.LogEnvelope {
		t.Helper()
		for {
			l := next(t, lines)
			if d, ok := strings.CutPrefix(l, "data: "); ok {
				var e api.LogEnvelope
				if err := json.Unmarshal([]byte(d), &e); err != nil {
					t.Fatal(err)
				}
				return e
			}
		}
	}
	// The controller's own line about the app's creation comes first.
	if c, e := dataLine(), dataLine(); c.Line != "app.create: created app hello" || e.Line != "old" {
		t.Fatalf("first events %+v, %+v, want the recent lines", c, e)
	}
	if n := followers.Load(); n != 1 {
		t.Fatalf("%d followers while streaming, want 1", n)
	}
	// The controller registers the follower with the recent lines: a line
	// published after the first event is followed.
	h.env.Log("hello", "app/web/0", "live", time.Now())
	if e := dataLine(); e.Line != "live" {
		t.Fatalf("live event %+v", e)
	}
	// Keepalive comments arrive while idle.
	for {
		if l := next(t, lines); l == ": keepalive" {
			break
		}
	}
	cancel()
	h.env.Eventually("the follower to end", func() bool { return followers.Load() == 0 })
}

func TestBlobsAdminOnly(t *testing.T) {
	h := newHarness(t, httpapi.Config{}, nil)
	data := []byte("droplet bytes")
	user, admin := h.env.UserToken, h.env.AdminToken
	if res := h.do("POST", "/v1/blobs", user, bytes.NewReader(data)); res.StatusCode != 403 || errorOf(t, res).Code != api.EForbidden {
		t.Fatalf("user put: status %d, want 403", res.StatusCode)
	}
	res := h.do("POST", "/v1/blobs", admin, bytes.NewReader(data))
	ref := decode[struct{ Ref api.BlobRef }](t, res).Ref
	if !ref.Valid() {
		t.Fatalf("put answered ref %q", ref)
	}
	if res := h.do("GET", "/v1/blobs/"+string(ref), user, nil); res.StatusCode != 403 {
		t.Fatalf("user get: status %d, want 403", res.StatusCode)
	}
	res = h.do("GET", "/v1/blobs/"+string(ref), admin, nil)
	got, _ := io.ReadAll(res.Body)
	if res.StatusCode != 200 || !bytes.Equal(got, data) {
		t.Fatalf("admin get: %d %q", res.StatusCode, got)
	}
	tests := []struct {
		ref  string
		want int
	}{
		{"sha256:" + strings.Repeat("0", 64), 404},
		{"sha256:xyz", 400},
		{"md5:abc", 400},
	}
	for _, tc := range tests {
		if res := h.do("GET", "/v1/blobs/"+tc.ref, admin, nil); res.StatusCode != tc.want {
			t.Errorf("get %s: status %d, want %d", tc.ref, res.StatusCode, tc.want)
		}
	}
	h2 := serve(t, h.env, httpapi.Config{MaxBlobBytes: 4}, nil)
	if res := h2.do("POST", "/v1/blobs", admin, io.MultiReader(bytes.NewReader(data))); res.StatusCode != 400 {
		t.Fatalf("oversized blob: status %d, want 400", res.StatusCode)
	}
}

func TestNodes(t *testing.T) {
	h := newHarness(t, httpapi.Config{}, nil)
	// Two nodes, the second to report first in the listing: node-1 (the
	// Env's, a VM) and node-0 on metal.
	h.env.StartNode("node-0").Describe(api.SubstrateMetal, []api.Isolation{api.IsolationProcess}, api.Capacity{MemoryMB: 1024, CPUs: 1}, "")
	h.env.Eventually("node-0 on metal", func() bool {
		return slices.ContainsFunc(h.env.Controller.Nodes.List(), func(n api.Node) bool { return n.ID == "node-0" && n.Substrate == api.SubstrateMetal })
	})
	if res := h.do("GET", "/v1/nodes", h.env.UserToken, nil); res.StatusCode != 403 {
		t.Fatalf("user: status %d, want 403", res.StatusCode)
	}
	p := decode[struct{ Items []api.Node }](t, h.do("GET", "/v1/nodes", h.env.AdminToken, nil))
	if len(p.Items) != 2 || p.Items[0].ID != "node-0" || p.Items[0].Substrate != api.SubstrateMetal || p.Items[1].ID != httpapitest.NodeID || p.Items[1].Substrate != api.SubstrateVM {
		t.Fatalf("nodes %+v", p.Items)
	}
	h2 := serve(t, h.env, httpapi.Config{}, func(s *httpapi.Services) { s.Nodes = httpapi.Unsupported{What: "listing nodes"} })
	if res := h2.do("GET", "/v1/nodes", h.env.AdminToken, nil); res.StatusCode != 501 {
		t.Fatalf("without Nodes: status %d, want 501", res.StatusCode)
	}
}
