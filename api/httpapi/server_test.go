package httpapi_test

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/strata-paas/strata/api"
	"github.com/strata-paas/strata/api/httpapi"
	"github.com/strata-paas/strata/api/httpapi/httpapitest"
)

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// harness is an API server over the real services of an httpapitest.Env
// (the controller's services on SQLite, an embedded NATS, a stand-in builder
// and node).
type harness struct {
	t   *testing.T
	env *httpapitest.Env
	srv *httptest.Server
}

// newHarness starts an Env and serves its services, edited by edit, with
// cfg.
func newHarness(t *testing.T, cfg httpapi.Config, edit func(*httpapi.Services)) *harness {
	t.Helper()
	return serve(t, httpapitest.Start(t, httpapitest.Options{}), cfg, edit)
}

// serve runs another API server over env's services, edited by edit, with
// cfg (its own idempotency cache unless cfg.Idempotency is set).
func serve(t *testing.T, env *httpapitest.Env, cfg httpapi.Config, edit func(*httpapi.Services)) *harness {
	t.Helper()
	svc := env.Services
	if edit != nil {
		edit(&svc)
	}
	cfg.Logger = testLogger(t)
	cfg.Info = api.Info{Version: "test", Domain: "localhost", RouterPort: "8080"}
	srv := httptest.NewServer(httpapi.New(cfg, svc).Handler())
	t.Cleanup(srv.Close)
	return &harness{t: t, env: env, srv: srv}
}

// createApp creates an app as the admin, in the default space.
func (h *harness) createApp(name string) {
	h.t.Helper()
	if _, err := h.env.Controller.Apps.CreateApp(h.env.AdminContext(), name); err != nil {
		h.t.Fatal(err)
	}
}

// do sends a request and returns the response (body left open).
func (h *harness) do(method, path, token string, body io.Reader, hdr ...string) *http.Response {
	h.t.Helper()
	req, err := http.NewRequest(method, h.srv.URL+path, body)
	if err != nil {
		h.t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	h.t.Cleanup(func() { res.Body.Close() })
	return res
}

// errorOf decodes an error answer.
func errorOf(t *testing.T, res *http.Response) api.Error {
	t.Helper()
	if ct := res.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Fatalf("error content type %q, want application/json", ct)
	}
	var eb struct{ Error api.Error }
	if err := json.NewDecoder(res.Body).Decode(&eb); err != nil {
		t.Fatalf("decode error body: %v", err)
	}
	return eb.Error
}

func decode[T any](t *testing.T, res *http.Response) T {
	t.Helper()
	var v T
	if err := json.NewDecoder(res.Body).Decode(&v); err != nil {
		t.Fatalf("decode: %v", err)
	}
	return v
}

func TestAuthRequired(t *testing.T) {
	h := newHarness(t, httpapi.Config{}, nil)
	h.createApp("hello")
	endpoints := []struct{ method, path string }{
		{"GET", "/v1/whoami"},
		{"GET", "/v1/apps"},
		{"POST", "/v1/apps"},
		{"GET", "/v1/apps/hello"},
		{"DELETE", "/v1/apps/hello"},
		{"POST", "/v1/apps/hello/push"},
		{"GET", "/v1/apps/hello/logs"},
		{"GET", "/v1/blobs/sha256:" + strings.Repeat("a", 64)},
		{"POST", "/v1/blobs"},
		{"GET", "/v1/nodes"},
	}
	for _, ep := range endpoints {
		for _, tc := range []struct{ name, header string }{
			{"none", ""},
			{"bad token", "Bearer nope"},
			{"not bearer", "Basic dXNlcjpwYXNz"},
		} {
			t.Run(ep.method+ep.path+"/"+tc.name, func(t *testing.T) {
				var hdr []string
				if tc.header != "" {
					hdr = []string{"Authorization", tc.header}
				}
				res := h.do(ep.method, ep.path, "", strings.NewReader("{}"), hdr...)
				if res.StatusCode != http.StatusUnauthorized {
					t.Fatalf("status %d, want 401", res.StatusCode)
				}
				if e := errorOf(t, res); e.Code != api.EUnauthorized || e.Message == "" {
					t.Fatalf("error %+v, want code unauthorized with a message", e)
				}
			})
		}
	}
	if _, err := h.env.Controller.Apps.AppDetail(h.env.AdminContext(), "hello"); err != nil {
		t.Fatalf("app was deleted without auth: %v", err)
	}

	t.Run("public endpoints", func(t *testing.T) {
		res := h.do("GET", "/v1/info", "", nil)
		if res.StatusCode != 200 {
			t.Fatalf("info status %d", res.StatusCode)
		}
		if info := decode[api.Info](t, res); info.Version != "test" || info.RouterPort != "8080" {
			t.Fatalf("info %+v", info)
		}
	})
	t.Run("whoami", func(t *testing.T) {
		res := h.do("GET", "/v1/whoami", h.env.UserToken, nil)
		if p := decode[api.Principal](t, res); p.Name != httpapitest.UserName || p.Admin {
			t.Fatalf("whoami %+v, want dev (not admin)", p)
		}
	})
}

// panicky is an AppService that panics.
type panicky struct{ api.AppService }

func (panicky) ListApps(context.Context) ([]*api.AppSummary, error) { panic("boom") }

// failing returns a fixed error from AppDetail.
type failing struct {
	api.AppService
	err error
}

func (f failing) AppDetail(context.Context, string) (*api.AppDetail, error) { return nil, f.err }

func TestErrorMapping(t *testing.T) {
	tests := []struct {
		err        error
		wantStatus int
		wantCode   string
		wantMsg    string
	}{
		{api.Errorf(api.EInvalid, "bad — fix it"), 400, api.EInvalid, "bad — fix it"},
		{api.Errorf(api.EUnauthorized, "who"), 401, api.EUnauthorized, "who"},
		{api.Errorf(api.EForbidden, "no"), 403, api.EForbidden, "no"},
		{api.Errorf(api.ENotFound, "gone"), 404, api.ENotFound, "gone"},
		{api.Errorf(api.EConflict, "twice"), 409, api.EConflict, "twice"},
		{api.Errorf(api.EBuildFailed, "compile failed (exit 2)"), 422, api.EBuildFailed, "compile failed (exit 2)"},
		{api.Errorf(api.ETimeout, "slow"), 504, api.ETimeout, "slow"},
		{api.Errorf(api.EUnavailable, "down"), 503, api.EUnavailable, "down"},
		{api.Errorf(api.EUnsupported, "later"), 501, api.EUnsupported, "later"},
		{api.Errorf(api.EInternal, "secret detail"), 500, api.EInternal, "internal error — see the stratad log"},
		{io.ErrUnexpectedEOF, 500, api.EInternal, "internal error — see the stratad log"},
		{errorsWrap(api.Errorf(api.EConflict, "wrapped")), 409, api.EConflict, "wrapped"},
	}
	env := httpapitest.Start(t, httpapitest.Options{})
	for _, tc := range tests {
		t.Run(tc.err.Error(), func(t *testing.T) {
			h := serve(t, env, httpapi.Config{}, func(s *httpapi.Services) {
				s.Apps = failing{AppService: s.Apps, err: tc.err}
			})
			res := h.do("GET", "/v1/apps/hello", env.UserToken, nil)
			if res.StatusCode != tc.wantStatus {
				t.Fatalf("status %d, want %d", res.StatusCode, tc.wantStatus)
			}
			if e := errorOf(t, res); e.Code != tc.wantCode || e.Message != tc.wantMsg {
				t.Fatalf("error %+v, want %s %q", e, tc.wantCode, tc.wantMsg)
			}
		})
	}

	h := serve(t, env, httpapi.Config{}, func(s *httpapi.Services) { s.Apps = panicky{s.Apps} })
	others := []struct {
		name, method, path string
		body               string
		wantStatus         int
		wantCode           string
	}{
		{"unknown route", "GET", "/v1/nope", "", 404, api.ENotFound},
		{"unknown root", "GET", "/nope", "", 404, api.ENotFound},
		{"wrong method", "PUT", "/v1/apps", "", 404, api.ENotFound}, // echo routes groups through a catch-all
		{"panic", "GET", "/v1/apps", "", 500, api.EInternal},
		{"bad name", "GET", "/v1/apps/Hello_World", "", 400, api.EInvalid},
		{"bad json", "POST", "/v1/apps", "{", 400, api.EInvalid},
		{"reserved name", "POST", "/v1/apps", `{"name":"api"}`, 400, api.EInvalid},
		{"bad limit", "GET", "/v1/nodes?limit=0", "", 400, api.EInvalid},
		{"bad bool", "POST", "/v1/apps/hello/push?wait=maybe", "", 400, api.EInvalid},
	}
	for _, tc := range others {
		t.Run(tc.name, func(t *testing.T) {
			res := h.do(tc.method, tc.path, env.AdminToken, strings.NewReader(tc.body))
			if res.StatusCode != tc.wantStatus {
				t.Fatalf("status %d, want %d", res.StatusCode, tc.wantStatus)
			}
			if e := errorOf(t, res); e.Code != tc.wantCode {
				t.Fatalf("error %+v, want code %s", e, tc.wantCode)
			}
		})
	}
}

type wrapErr struct{ err error }

func (w wrapErr) Error() string { return "context: " + w.err.Error() }
func (w wrapErr) Unwrap() error { return w.err }

func errorsWrap(err error) error { return wrapErr{err} }

func TestAppsCRUDAndPagination(t *testing.T) {
	h := newHarness(t, httpapi.Config{}, nil)
	tok := h.env.UserToken
	names := []string{"echo", "alpha", "delta", "bravo", "charlie"}
	for _, n := range names {
		res := h.do("POST", "/v1/apps", tok, strings.NewReader(`{"name":"`+n+`"}`))
		if res.StatusCode != http.StatusCreated {
			t.Fatalf("create %s: status %d", n, res.StatusCode)
		}
		if app := decode[api.App](t, res); app.Name != n {
			t.Fatalf("created %q, want %q", app.Name, n)
		}
	}
	if res := h.do("POST", "/v1/apps", tok, strings.NewReader(`{"name":"alpha"}`)); res.StatusCode != http.StatusConflict {
		t.Fatalf("duplicate create: status %d, want 409", res.StatusCode)
	}

	var got []string
	cursor := ""
	pages := 0
	for {
		path := "/v1/apps?limit=2"
		if cursor != "" {
			path += "&cursor=" + cursor
		}
		res := h.do("GET", path, tok, nil)
		p := decode[struct {
			Items      []api.AppSummary `json:"items"`
			NextCursor string           `json:"next_cursor"`
		}](t, res)
		pages++
		if len(p.Items) > 2 {
			t.Fatalf("page of %d items, want at most 2", len(p.Items))
		}
		for _, a := range p.Items {
			got = append(got, a.Name)
		}
		if p.NextCursor == "" {
			break
		}
		cursor = p.NextCursor
		if pages > 10 {
			t.Fatal("pagination does not end")
		}
	}
	if want := "alpha bravo charlie delta echo"; strings.Join(got, " ") != want || pages != 3 {
		t.Fatalf("paged %q in %d pages, want %q in 3", strings.Join(got, " "), pages, want)
	}
	if res := h.do("GET", "/v1/apps?cursor=!!!", tok, nil); res.StatusCode != 400 {
		t.Fatalf("bad cursor: status %d, want 400", res.StatusCode)
	}

	res := h.do("GET", "/v1/apps/bravo", tok, nil)
	if d := decode[api.AppDetail](t, res); d.Name != "bravo" {
		t.Fatalf("detail %+v", d)
	}
	if res := h.do("DELETE", "/v1/apps/bravo", tok, nil); res.StatusCode != http.StatusNoContent {
		t.Fatalf("delete: status %d, want 204", res.StatusCode)
	}
	if res := h.do("GET", "/v1/apps/bravo", tok, nil); res.StatusCode != 404 {
		t.Fatalf("after delete: status %d, want 404", res.StatusCode)
	}
}

// TestIdempotencyKey runs with the server's own in-memory cache and with
// the store's (as cmd/stratad does).
func TestIdempotencyKey(t *testing.T) {
	for _, shared := range []bool{false, true} {
		t.Run(map[bool]string{false: "memory", true: "store"}[shared], func(t *testing.T) {
			env := httpapitest.Start(t, httpapitest.Options{})
			var cfg httpapi.Config
			if shared {
				cfg.Idempotency = env.Store
			}
			testIdempotencyKey(t, serve(t, env, cfg, nil))
		})
	}
}

func testIdempotencyKey(t *testing.T, h *harness) {
	user, admin := h.env.UserToken, h.env.AdminToken
	create := func(token, key, body string) (*http.Response, string) {
		res := h.do("POST", "/v1/apps", token, strings.NewReader(body), "Idempotency-Key", key)
		b, _ := io.ReadAll(res.Body)
		return res, string(b)
	}
	res1, body1 := create(user, "k1", `{"name":"hello"}`)
	res2, body2 := create(user, "k1", `{"name":"hello"}`)
	if res1.StatusCode != 201 || res2.StatusCode != 201 || body1 != body2 {
		t.Fatalf("replay: got %d %q then %d %q, want the same 201 twice", res1.StatusCode, body1, res2.StatusCode, body2)
	}
	if res2.Header.Get("Idempotent-Replayed") != "true" {
		t.Fatalf("replayed answer lacks Idempotent-Replayed")
	}
	if n := len(mustList(t, h)); n != 1 {
		t.Fatalf("%d apps after a replay, want 1", n)
	}
	tests := []struct {
		name, token, key, body string
		want                   int
	}{
		{"same key other body", user, "k1", `{"name":"other"}`, 400},
		{"same key other principal", admin, "k1", `{"name":"hello"}`, 409},
		{"no key", user, "", `{"name":"hello"}`, 409},
		{"new key", user, "k2", `{"name":"hello"}`, 409},
		{"too long key", user, strings.Repeat("k", 300), `{"name":"x"}`, 400},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if res, body := create(tc.token, tc.key, tc.body); res.StatusCode != tc.want {
				t.Fatalf("status %d (%s), want %d", res.StatusCode, body, tc.want)
			}
		})
	}
	// The 409 answered for k2 is stored too: replaying it answers 409 again.
	if res, _ := create(user, "k2", `{"name":"hello"}`); res.StatusCode != 409 || res.Header.Get("Idempotent-Replayed") != "true" {
		t.Fatalf("replay of a 409: status %d replayed=%q", res.StatusCode, res.Header.Get("Idempotent-Replayed"))
	}
}

func mustList(t *testing.T, h *harness) []*api.AppSummary {
	t.Helper()
	apps, err := h.env.Controller.Apps.ListApps(h.env.AdminContext())
	if err != nil {
		t.Fatal(err)
	}
	return apps
}

func TestOpenAPIDescribesRoutes(t *testing.T) {
	h := newHarness(t, httpapi.Config{}, nil)
	res := h.do("GET", "/v1/openapi.json", "", nil)
	if res.StatusCode != 200 {
		t.Fatalf("status %d", res.StatusCode)
	}
	doc := decode[struct {
		OpenAPI string                    `json:"openapi"`
		Paths   map[string]map[string]any `json:"paths"`
	}](t, res)
	if !strings.HasPrefix(doc.OpenAPI, "3.") {
		t.Fatalf("openapi version %q", doc.OpenAPI)
	}
	for _, r := range []struct{ path, method string }{
		{"/v1/info", "get"}, {"/v1/whoami", "get"}, {"/v1/apps", "get"}, {"/v1/apps", "post"},
		{"/v1/apps/{name}", "get"}, {"/v1/apps/{name}", "delete"}, {"/v1/apps/{name}/push", "post"},
		{"/v1/apps/{name}/logs", "get"}, {"/v1/blobs", "post"}, {"/v1/blobs/{ref}", "get"}, {"/v1/nodes", "get"},
		{"/v1/apps/{name}/releases", "get"}, {"/v1/apps/{name}/rollback", "post"}, {"/v1/apps/{name}/env", "get"},
		{"/v1/apps/{name}/env", "patch"}, {"/v1/apps/{name}/scale", "post"}, {"/v1/apps/{name}/start", "post"},
		{"/v1/apps/{name}/stop", "post"}, {"/v1/apps/{name}/restart", "post"}, {"/v1/apps/{name}/events", "get"},
		{"/v1/certificates", "get"}, {"/v1/certificates", "post"}, {"/v1/certificates/{name}", "delete"},
		{"/v1/router/certificates", "get"},
	} {
		if _, ok := doc.Paths[r.path][r.method]; !ok {
			t.Errorf("openapi.json does not describe %s %s", r.method, r.path)
		}
	}
}

func TestGitMounted(t *testing.T) {
	h := newHarness(t, httpapi.Config{}, func(s *httpapi.Services) {
		s.Git = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			io.WriteString(w, "git:"+r.URL.Path)
		})
	})
	res := h.do("GET", "/git/hello.git/info/refs?service=git-receive-pack", "", nil)
	b, _ := io.ReadAll(res.Body)
	if res.StatusCode != 200 || string(b) != "git:/git/hello.git/info/refs" {
		t.Fatalf("git: %d %q", res.StatusCode, b)
	}
}

// readLines returns a channel of the body's lines.
func readLines(r io.Reader) <-chan string {
	ch := make(chan string)
	go func() {
		defer close(ch)
		sc := bufio.NewScanner(r)
		for sc.Scan() {
			ch <- sc.Text()
		}
	}()
	return ch
}

func next(t *testing.T, ch <-chan string) string {
	t.Helper()
	select {
	case l, ok := <-ch:
		if !ok {
			t.Fatal("stream ended early")
		}
		return l
	case <-time.After(10 * time.Second):
		t.Fatal("no line within 10s")
	}
	return ""
}
