package httpapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
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
	res := h.do("POST", "/v1/apps/hello/push?create=true&wait=true", httpapitest.UserToken,
		strings.NewReader("source-bytes"), "Content-Type", "application/gzip")
	if res.StatusCode != 200 || res.Header.Get("Content-Type") != "application/x-ndjson" {
		t.Fatalf("status %d type %q", res.StatusCode, res.Header.Get("Content-Type"))
	}
	lines := readLines(res.Body)
	want := []line{
		{Type: "log", Line: "-----> Detected fake buildpack"},
		{Type: "log", Line: "-----> Compiled"},
		{Type: "status", Line: "waiting for 1/1 instances"},
	}
	for _, w := range want {
		if got := parseLine(t, next(t, lines)); got.Type != w.Type || got.Line != w.Line {
			t.Fatalf("line %+v, want %+v", got, w)
		}
	}
	last := parseLine(t, next(t, lines))
	if last.Type != "result" || last.Result == nil || last.Result.Release.Version != 1 || last.Result.URLs[0] != "http://hello.localhost:8080" {
		t.Fatalf("last line %+v, want a result of release 1", last)
	}
	if _, ok := <-lines; ok {
		t.Fatal("lines after the result")
	}
	p := h.fake.Pushes()
	if len(p) != 1 || string(p[0].Source) != "source-bytes" || !p[0].Create || !p[0].Wait {
		t.Fatalf("pushes %+v", p)
	}
}

func TestPushFailures(t *testing.T) {
	t.Run("build failed after progress", func(t *testing.T) {
		h := newHarness(t, httpapi.Config{}, nil)
		h.fake.BuildFailure = "compile failed (exit 2)"
		res := h.do("POST", "/v1/apps/hello/push?create=true", httpapitest.UserToken, strings.NewReader("x"))
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
		res := h.do("POST", "/v1/apps/nope/push", httpapitest.UserToken, strings.NewReader("x"))
		if res.StatusCode != 404 || errorOf(t, res).Code != api.ENotFound {
			t.Fatalf("status %d, want 404", res.StatusCode)
		}
	})
	t.Run("upload too large", func(t *testing.T) {
		for _, chunked := range []bool{false, true} {
			h := newHarness(t, httpapi.Config{MaxUploadBytes: 1 << 20}, nil)
			var body io.Reader = bytes.NewReader(make([]byte, 1<<20+1))
			if chunked {
				body = io.MultiReader(body) // hides the length: chunked encoding
			}
			res := h.do("POST", "/v1/apps/hello/push?create=true", httpapitest.UserToken, body)
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
	res := h.do("POST", "/v1/apps/hello/push", httpapitest.UserToken, strings.NewReader("x"))
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

func TestLogsRecent(t *testing.T) {
	h := newHarness(t, httpapi.Config{}, nil)
	h.fake.AddApp(api.AppDetail{App: api.App{Name: "hello"}})
	for i, src := range []string{"app/web/0", "staging", "app/web/1", "router"} {
		h.fake.AddLog(api.LogEnvelope{App: "hello", Source: src, Line: "line" + string(rune('0'+i))})
	}
	tests := []struct {
		query string
		want  string
	}{
		{"", "line0 line1 line2 line3"},
		{"?source=app", "line0 line2"},
		{"?recent=2", "line2 line3"},
		{"?source=staging&recent=5", "line1"},
	}
	for _, tc := range tests {
		t.Run(tc.query, func(t *testing.T) {
			res := h.do("GET", "/v1/apps/hello/logs"+tc.query, httpapitest.UserToken, nil)
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
		if res := h.do("GET", "/v1/apps/hello/logs"+q, httpapitest.UserToken, nil); res.StatusCode != 400 {
			t.Errorf("%s: status %d, want 400", q, res.StatusCode)
		}
	}
}

func TestLogsFollowSSE(t *testing.T) {
	h := newHarness(t, httpapi.Config{KeepAlive: 5 * time.Millisecond}, nil)
	h.fake.AddApp(api.AppDetail{App: api.App{Name: "hello"}})
	h.fake.AddLog(api.LogEnvelope{App: "hello", Source: "app/web/0", Line: "old"})

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", h.srv.URL+"/v1/apps/hello/logs?follow=true", nil)
	req.Header.Set("Authorization", "Bearer "+httpapitest.UserToken)
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
	if e := dataLine(); e.Line != "old" {
		t.Fatalf("first event %+v, want the recent line", e)
	}
	deadline := time.Now().Add(10 * time.Second)
	for h.fake.Followers() == 0 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	h.fake.AddLog(api.LogEnvelope{App: "hello", Source: "app/web/0", Line: "live"})
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
	for h.fake.Followers() != 0 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if n := h.fake.Followers(); n != 0 {
		t.Fatalf("%d followers after the client left, want 0", n)
	}
}

func TestBlobsAdminOnly(t *testing.T) {
	h := newHarness(t, httpapi.Config{}, nil)
	data := []byte("droplet bytes")
	if res := h.do("POST", "/v1/blobs", httpapitest.UserToken, bytes.NewReader(data)); res.StatusCode != 403 || errorOf(t, res).Code != api.EForbidden {
		t.Fatalf("user put: status %d, want 403", res.StatusCode)
	}
	res := h.do("POST", "/v1/blobs", httpapitest.AdminToken, bytes.NewReader(data))
	ref := decode[struct{ Ref api.BlobRef }](t, res).Ref
	if !ref.Valid() {
		t.Fatalf("put answered ref %q", ref)
	}
	if res := h.do("GET", "/v1/blobs/"+string(ref), httpapitest.UserToken, nil); res.StatusCode != 403 {
		t.Fatalf("user get: status %d, want 403", res.StatusCode)
	}
	res = h.do("GET", "/v1/blobs/"+string(ref), httpapitest.AdminToken, nil)
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
		if res := h.do("GET", "/v1/blobs/"+tc.ref, httpapitest.AdminToken, nil); res.StatusCode != tc.want {
			t.Errorf("get %s: status %d, want %d", tc.ref, res.StatusCode, tc.want)
		}
	}
	h2 := newHarness(t, httpapi.Config{MaxBlobBytes: 4}, nil)
	if res := h2.do("POST", "/v1/blobs", httpapitest.AdminToken, io.MultiReader(bytes.NewReader(data))); res.StatusCode != 400 {
		t.Fatalf("oversized blob: status %d, want 400", res.StatusCode)
	}
}

func TestNodes(t *testing.T) {
	h := newHarness(t, httpapi.Config{}, nil)
	h.fake.Nodes = []api.Node{{ID: "n2", Substrate: api.SubstrateVM}, {ID: "n1", Substrate: api.SubstrateMetal}}
	if res := h.do("GET", "/v1/nodes", httpapitest.UserToken, nil); res.StatusCode != 403 {
		t.Fatalf("user: status %d, want 403", res.StatusCode)
	}
	p := decode[struct{ Items []api.Node }](t, h.do("GET", "/v1/nodes", httpapitest.AdminToken, nil))
	if len(p.Items) != 2 || p.Items[0].ID != "n1" || p.Items[1].Substrate != api.SubstrateVM {
		t.Fatalf("nodes %+v", p.Items)
	}
	h2 := newHarness(t, httpapi.Config{}, func(s *httpapi.Services) { s.Nodes = httpapi.Unsupported{What: "listing nodes"} })
	if res := h2.do("GET", "/v1/nodes", httpapitest.AdminToken, nil); res.StatusCode != 501 {
		t.Fatalf("without Nodes: status %d, want 501", res.StatusCode)
	}
}
