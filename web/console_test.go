package web_test

import (
	"bufio"
	"context"
	"crypto/tls"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/strata-paas/strata/api"
	"github.com/strata-paas/strata/web"
)

// fake is a scripted set of the controller's services. Methods the console
// does not call are left to the embedded nil interfaces (they would panic).
type fake struct {
	api.UserService
	api.OrgService
	api.AppService
	api.LifecycleService

	mu         sync.Mutex
	drained    bool // node-1 (Nodes)
	scales     []api.ScaleRequest
	logouts    int
	envChanges []api.EnvChange
	rollbacks  []int
	roles      []string
}

const (
	goodToken = "tok-alice"
	now       = "2026-01-02T10:00:00Z"
)

var (
	alice = &api.Principal{UserID: "u1", Name: "alice", TokenHash: "h1"}
	root  = &api.Principal{UserID: "u0", Name: "root", Admin: true, TokenHash: "h0"}
)

// rootToken is root's token; session("t") is alice's, adminSession() root's.
const rootToken = "tok-root"

func adminSession() *http.Cookie {
	return &http.Cookie{Name: "strata_session", Value: "t.dG9rLXJvb3Q"} // base64url("tok-root")
}

func (f *fake) Authenticate(_ context.Context, token string) (*api.Principal, error) {
	switch token {
	case goodToken:
		return alice, nil
	case rootToken:
		return root, nil
	}
	return nil, api.Errorf(api.EUnauthorized, "the API token is not valid")
}

func (f *fake) Login(_ context.Context, req api.LoginRequest, from string) (*api.LoginResult, error) {
	if req.Username == "alice" && req.Password == "secret-pw" {
		return &api.LoginResult{Token: goodToken, ExpiresAt: time.Now().Add(time.Hour)}, nil
	}
	return nil, api.Errorf(api.EUnauthorized, "wrong user name or password — check both, or ask an admin to reset it")
}

func (f *fake) Logout(ctx context.Context) error {
	if api.PrincipalFrom(ctx) != alice {
		return api.Errorf(api.EUnauthorized, "not logged in")
	}
	f.mu.Lock()
	f.logouts++
	f.mu.Unlock()
	return nil
}

func requireAdmin(ctx context.Context) error {
	if p := api.PrincipalFrom(ctx); p == nil || !p.Admin {
		return api.Errorf(api.EForbidden, "listing users needs an admin")
	}
	return nil
}

func (f *fake) ListUsers(ctx context.Context) ([]api.UserInfo, error) {
	return []api.UserInfo{{Name: "root", Admin: true}, {Name: "bob"}}, requireAdmin(ctx)
}

func (f *fake) CreateUser(ctx context.Context, req api.UserRequest) (*api.CreatedUser, error) {
	if err := requireAdmin(ctx); err != nil {
		return nil, err
	}
	if req.Name == "bob" {
		return nil, api.Errorf(api.EConflict, "user bob exists")
	}
	return &api.CreatedUser{User: api.UserInfo{Name: req.Name, Admin: req.Admin}, GeneratedPassword: "gen-" + req.Name}, nil
}

func (f *fake) DeleteUser(ctx context.Context, name string) error {
	if err := requireAdmin(ctx); err != nil {
		return err
	}
	f.mu.Lock()
	f.roles = append(f.roles, "delete "+name)
	f.mu.Unlock()
	return nil
}

func (f *fake) Tokens(ctx context.Context) ([]api.TokenInfo, error) {
	return []api.TokenInfo{{ID: "0123456789abcdef", Description: "login from 127.0.0.1", Current: true}}, nil
}

func (f *fake) RevokeToken(ctx context.Context, id string) error {
	f.mu.Lock()
	f.roles = append(f.roles, "revoke "+id)
	f.mu.Unlock()
	return nil
}

func (f *fake) ChangePassword(ctx context.Context, ch api.PasswordChange) error {
	if ch.Old != "secret-pw" {
		return api.Errorf(api.EUnauthorized, "the current password is wrong")
	}
	return nil
}

func (f *fake) Members(ctx context.Context, org string) ([]api.Member, error) {
	if org != "default" {
		return nil, api.Errorf(api.ENotFound, "org %s not found", org)
	}
	return []api.Member{{User: "bob", Org: "default", Space: "default", Role: api.RoleSpaceDeveloper}}, nil
}

func (f *fake) SetRole(ctx context.Context, req api.RoleRequest) error { return f.role("set", req) }

func (f *fake) UnsetRole(ctx context.Context, req api.RoleRequest) error { return f.role("unset", req) }

func (f *fake) role(op string, req api.RoleRequest) error {
	if req.User != "bob" {
		return api.Errorf(api.ENotFound, "user %s not found", req.User)
	}
	f.mu.Lock()
	f.roles = append(f.roles, op+" "+req.User+" "+string(req.Role)+" "+req.Org+"/"+req.Space)
	f.mu.Unlock()
	return nil
}

func (f *fake) ListOrgs(context.Context) ([]api.OrgInfo, error) {
	return []api.OrgInfo{{Name: "default", Spaces: []string{"default", "staging"}}}, nil
}

// inSpace refuses calls without the principal or outside default/default,
// as the controller's authorization would hide them.
func inSpace(ctx context.Context) error {
	if api.PrincipalFrom(ctx) == nil {
		return api.Errorf(api.EUnauthorized, "no principal")
	}
	if t := api.TargetFrom(ctx); t.Org != "default" || t.Space != "default" {
		return api.Errorf(api.ENotFound, "space %s/%s not found", t.Org, t.Space)
	}
	return nil
}

func (f *fake) ListApps(ctx context.Context) ([]*api.AppSummary, error) {
	if err := inSpace(ctx); err != nil {
		return nil, err
	}
	return []*api.AppSummary{{App: api.App{Name: "hello", State: api.AppStarted, CurrentRelease: 3}, Running: 1, Desired: 2, URL: "http://hello.localhost:8080"}}, nil
}

func (f *fake) AppDetail(ctx context.Context, name string) (*api.AppDetail, error) {
	if err := inSpace(ctx); err != nil {
		return nil, err
	}
	if name != "hello" {
		return nil, api.Errorf(api.ENotFound, "app %s not found", name)
	}
	started, _ := time.Parse(time.RFC3339, now)
	return &api.AppDetail{
		App:       api.App{Name: "hello", State: api.AppStarted, CurrentRelease: 3},
		URLs:      []string{"http://hello.localhost:8080"},
		Processes: []api.Process{{Type: "web", Instances: 2, MemoryMB: 256, DiskMB: 1024}},
		Instances: []*api.Instance{{Process: "web", Index: 0, Release: 3, NodeID: "node-a", State: api.InstanceRunning,
			Substrate: api.SubstrateMetal, Isolation: api.IsolationProcess, StartedAt: started.Add(-90 * time.Second),
			CPUPercent: 1.5, MemoryBytes: 12 << 20, Restarts: 1, Reason: "exit status 2"}},
		Release:     &api.Release{Version: 3, Description: "Set GREETING"},
		LastBuild:   &api.Build{State: api.BuildStaged, Buildpack: "go"},
		Placement:   api.PlacementPolicy{Substrate: "metal"},
		Unplaceable: "web/1 cannot be placed: no node matches placement substrate=metal",
	}, nil
}

func (f *fake) Releases(ctx context.Context, app string) ([]*api.Release, error) {
	if err := inSpace(ctx); err != nil {
		return nil, err
	}
	return []*api.Release{{Version: 3, Description: "Set GREETING", Actor: "alice"}, {Version: 2, Description: "Deploy build b2 (go)", Actor: "alice"}}, nil
}

func (f *fake) Events(ctx context.Context, app string, limit int) ([]*api.Event, error) {
	return []*api.Event{{Type: "release", Actor: "alice", Message: "release v3"}}, inSpace(ctx)
}

func (f *fake) Env(ctx context.Context, app string) (map[string]string, error) {
	return map[string]string{"GREETING": "hush-value"}, inSpace(ctx)
}

func (f *fake) Scale(ctx context.Context, app string, req api.ScaleRequest) (*api.ScaleResult, error) {
	if err := inSpace(ctx); err != nil {
		return nil, err
	}
	f.mu.Lock()
	f.scales = append(f.scales, req)
	f.mu.Unlock()
	return &api.ScaleResult{Process: api.Process{Type: req.Process, Instances: *req.Instances, MemoryMB: 256}}, nil
}

func (f *fake) ChangeEnv(ctx context.Context, app string, ch api.EnvChange) (*api.Release, error) {
	if err := inSpace(ctx); err != nil {
		return nil, err
	}
	f.mu.Lock()
	f.envChanges = append(f.envChanges, ch)
	f.mu.Unlock()
	return &api.Release{Version: 4, Description: "Set X"}, nil
}

func (f *fake) Rollback(ctx context.Context, app string, version int) (*api.Release, error) {
	if err := inSpace(ctx); err != nil {
		return nil, err
	}
	f.mu.Lock()
	f.rollbacks = append(f.rollbacks, version)
	f.mu.Unlock()
	return &api.Release{Version: 4}, nil
}

func (f *fake) Logs(ctx context.Context, q api.LogQuery, fn func(api.LogEnvelope) error) error {
	if err := inSpace(ctx); err != nil {
		return err
	}
	if err := fn(api.LogEnvelope{Source: "app/web/0", Line: "hello listening on :8080"}); err != nil {
		return err
	}
	if !q.Follow {
		return nil
	}
	if err := fn(api.LogEnvelope{Source: "router", Line: "GET / 200"}); err != nil {
		return err
	}
	if err := fn(api.LogEnvelope{Source: api.LogSourceStrata, Line: "5 log lines dropped — this reader was too slow", Dropped: 5}); err != nil {
		return err
	}
	<-ctx.Done()
	return nil
}

func newConsole(t *testing.T) (*web.Console, *fake) {
	t.Helper()
	f := &fake{}
	now, _ := time.Parse(time.RFC3339, now)
	c, err := web.New(web.Config{Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Now: func() time.Time { return now }},
		web.Services{Auth: f, Users: f, Orgs: f, Apps: f, Lifecycle: f, Logs: f, Nodes: f, Metrics: f})
	if err != nil {
		t.Fatal(err)
	}
	return c, f
}

// do serves one request and returns the response with its body.
func do(c http.Handler, r *http.Request) (*http.Response, string) {
	w := httptest.NewRecorder()
	c.ServeHTTP(w, r)
	res := w.Result()
	b, _ := io.ReadAll(res.Body)
	return res, string(b)
}

func cookieOf(res *http.Response, name string) *http.Cookie {
	for _, ck := range res.Cookies() {
		if ck.Name == name {
			return ck
		}
	}
	return nil
}

var csrfRe = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// loginForm fetches the login page and returns its CSRF cookie and token.
func loginForm(t *testing.T, c http.Handler) (*http.Cookie, string) {
	t.Helper()
	res, body := do(c, httptest.NewRequest("GET", "/login", nil))
	ck := cookieOf(res, "strata_login")
	m := csrfRe.FindStringSubmatch(body)
	if res.StatusCode != 200 || ck == nil || m == nil {
		t.Fatalf("GET /login: status %d, cookie %v, csrf field %v", res.StatusCode, ck, m)
	}
	return ck, m[1]
}

func postForm(path string, v url.Values, cookies ...*http.Cookie) *http.Request {
	r := httptest.NewRequest("POST", path, strings.NewReader(v.Encode()))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for _, ck := range cookies {
		r.AddCookie(ck)
	}
	return r
}

func session(kind string) *http.Cookie {
	return &http.Cookie{Name: "strata_session", Value: kind + ".dG9rLWFsaWNl"} // base64url("tok-alice")
}

func TestLogin(t *testing.T) {
	for _, tc := range []struct {
		name       string
		form       url.Values
		tls        bool
		wantStatus int
		wantBody   string
		wantCookie bool
	}{
		{"wrong password", url.Values{"username": {"alice"}, "password": {"nope"}}, false, 401, "wrong user name or password", false},
		{"bad token", url.Values{"token": {"forged"}}, false, 401, "that API token is not valid", false},
		{"password", url.Values{"username": {"alice"}, "password": {"secret-pw"}}, false, 303, "", true},
		{"password over https", url.Values{"username": {"alice"}, "password": {"secret-pw"}}, true, 303, "", true},
		{"token", url.Values{"token": {goodToken}}, false, 303, "", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, _ := newConsole(t)
			ck, csrf := loginForm(t, c)
			tc.form.Set("csrf", csrf)
			req := postForm("/login", tc.form, ck)
			if tc.tls {
				req.TLS = &tls.ConnectionState{}
			}
			res, body := do(c, req)
			if res.StatusCode != tc.wantStatus || !strings.Contains(body, tc.wantBody) {
				t.Fatalf("got status %d body %q, want %d containing %q", res.StatusCode, body, tc.wantStatus, tc.wantBody)
			}
			s := cookieOf(res, "strata_session")
			if !tc.wantCookie {
				if s != nil {
					t.Fatalf("got a session cookie %v after a failed login", s)
				}
				if !strings.Contains(body, `value="alice"`) && tc.form.Get("username") != "" {
					t.Errorf("the login page does not keep the user name")
				}
				return
			}
			if s == nil || !s.HttpOnly || s.SameSite != http.SameSiteStrictMode || s.Secure != tc.tls || s.Path != "/" {
				t.Fatalf("got session cookie %+v, want HttpOnly, SameSite=Strict, Path=/, Secure=%v", s, tc.tls)
			}
			if strings.Contains(s.Value, goodToken) {
				t.Errorf("cookie carries the raw token")
			}
		})
	}
}

func TestLoginWithoutCSRFIsRefused(t *testing.T) {
	c, _ := newConsole(t)
	ck, _ := loginForm(t, c)
	res, body := do(c, postForm("/login", url.Values{"token": {goodToken}, "csrf": {"guess"}}, ck))
	if res.StatusCode != 403 || cookieOf(res, "strata_session") != nil || !strings.Contains(body, "CSRF") {
		t.Fatalf("got status %d, session %v, body %q; want 403 without a session", res.StatusCode, cookieOf(res, "strata_session"), body)
	}
	res, _ = do(c, postForm("/login", url.Values{"token": {goodToken}}))
	if res.StatusCode != 403 {
		t.Fatalf("without the login cookie: got status %d, want 403", res.StatusCode)
	}
}

func TestLoggedOutGoesToLogin(t *testing.T) {
	c, _ := newConsole(t)
	for _, path := range []string{"/", "/orgs/default/spaces/default/apps", "/orgs/default/spaces/default/apps/hello"} {
		res, _ := do(c, httptest.NewRequest("GET", path, nil))
		if res.StatusCode != 303 || res.Header.Get("Location") != "/login" {
			t.Errorf("GET %s: got %d to %q, want 303 to /login", path, res.StatusCode, res.Header.Get("Location"))
		}
	}
	r := httptest.NewRequest("GET", "/orgs/default/spaces/default/apps", nil)
	r.AddCookie(&http.Cookie{Name: "strata_session", Value: "p.Zm9yZ2Vk"}) // "forged"
	res, _ := do(c, r)
	if res.StatusCode != 303 || res.Header.Get("Location") != "/login" {
		t.Errorf("with a revoked token: got %d to %q, want 303 to /login", res.StatusCode, res.Header.Get("Location"))
	}
	if s := cookieOf(res, "strata_session"); s == nil || s.MaxAge >= 0 {
		t.Errorf("with a revoked token: session cookie %+v not cleared", s)
	}
}

// csrfOf reads the CSRF token from a page of the session.
func csrfOf(t *testing.T, c http.Handler, ck *http.Cookie) string {
	t.Helper()
	r := httptest.NewRequest("GET", "/orgs/default/spaces/default/apps/hello", nil)
	r.AddCookie(ck)
	res, body := do(c, r)
	m := csrfRe.FindStringSubmatch(body)
	if res.StatusCode != 200 || m == nil {
		t.Fatalf("app page: status %d, no csrf field\n%s", res.StatusCode, body)
	}
	return m[1]
}

func TestActionsNeedCSRF(t *testing.T) {
	c, f := newConsole(t)
	ck := session("p")
	path := "/orgs/default/spaces/default/apps/hello/scale"
	for _, tok := range []string{"", "not-the-token"} {
		res, body := do(c, postForm(path, url.Values{"csrf": {tok}, "process": {"web"}, "instances": {"2"}}, ck))
		if res.StatusCode != 403 || !strings.Contains(body, "CSRF") {
			t.Errorf("csrf %q: got %d %q, want 403 naming the CSRF token", tok, res.StatusCode, body)
		}
	}
	if len(f.scales) != 0 {
		t.Fatalf("scaled without a CSRF token: %+v", f.scales)
	}
	csrf := csrfOf(t, c, ck)
	res, _ := do(c, postForm(path, url.Values{"csrf": {csrf}, "process": {"web"}, "instances": {"2"}}, ck))
	if res.StatusCode != 303 || res.Header.Get("Location") != "/orgs/default/spaces/default/apps/hello" {
		t.Fatalf("got %d to %q, want 303 back to the app", res.StatusCode, res.Header.Get("Location"))
	}
	if len(f.scales) != 1 || *f.scales[0].Instances != 2 || f.scales[0].MemoryMB != nil || f.scales[0].Process != "web" {
		t.Fatalf("got scales %+v, want one of web to 2 instances, memory unchanged", f.scales)
	}
	flash := cookieOf(res, "strata_flash")
	r := httptest.NewRequest("GET", "/orgs/default/spaces/default/apps/hello", nil)
	r.AddCookie(ck)
	r.AddCookie(flash)
	if _, body := do(c, r); !strings.Contains(body, "scaled web to 2 instances") {
		t.Errorf("the app page after scaling does not say so")
	}

	do(c, postForm("/orgs/default/spaces/default/apps/hello/rollback", url.Values{"csrf": {csrf}, "version": {"2"}}, ck))
	do(c, postForm("/orgs/default/spaces/default/apps/hello/env", url.Values{"csrf": {csrf}, "name": {"X"}, "value": {"1"}}, ck))
	do(c, postForm("/orgs/default/spaces/default/apps/hello/env", url.Values{"csrf": {csrf}, "unset": {"GREETING"}}, ck))
	if len(f.rollbacks) != 1 || f.rollbacks[0] != 2 {
		t.Errorf("got rollbacks %v, want [2]", f.rollbacks)
	}
	if len(f.envChanges) != 2 || f.envChanges[0].Set["X"] != "1" || f.envChanges[1].Unset[0] != "GREETING" {
		t.Errorf("got env changes %+v, want set X=1 then unset GREETING", f.envChanges)
	}
}

func TestPages(t *testing.T) {
	c, _ := newConsole(t)
	for _, tc := range []struct {
		path   string
		status int
		want   []string
		never  []string
	}{
		{"/orgs/default/spaces/default/apps", 200, []string{"<title>Apps in default/default · Strata</title>", `href="/orgs/default/spaces/default/apps/hello"`, "1 / 2", "v3", "http://hello.localhost:8080", `value="default/staging"`}, nil},
		{"/orgs/default/spaces/default/apps/hello", 200, []string{"node-a", "metal", "process", "1.5%", "12 MiB", "1m", "exit status 2", "cannot be placed", "substrate=metal", "GREETING", "Reveal values", "Roll back to v2", "release v3", `name="instances"`, "/apps/hello/logs?source=staging", `href="/orgs/default/members"`}, []string{"hush-value", "Roll back to v3"}},
		{"/orgs/default/spaces/default/apps/hello?reveal=env", 200, []string{"hush-value", "Hide values"}, nil},
		{"/orgs/default/spaces/default/apps/hello/rollback?version=2", 200, []string{"Roll back hello to v2?", `name="version" value="2"`}, nil},
		{"/orgs/default/spaces/default/apps/hello/logs", 200, []string{"hello listening on :8080", `data-stream="/orgs/default/spaces/default/apps/hello/logs/stream"`}, nil},
		{"/orgs/default/spaces/default/apps/nope", 404, []string{"app nope not found"}, nil},
		{"/orgs/default/spaces/staging/apps", 404, []string{"space default/staging not found"}, nil},
		{"/orgs/default/spaces/default/apps/hello/logs?source=bogus", 400, []string{"not one of app"}, nil},
		{"/", 303, nil, nil},
		{"/orgs/default/members", 200, []string{"<td>bob</td>", "space-developer", `<option value="staging">`, `action="/orgs/default/roles"`}, nil},
		{"/orgs/other/members", 404, []string{"org other not found"}, nil},
	} {
		t.Run(tc.path, func(t *testing.T) {
			r := httptest.NewRequest("GET", tc.path, nil)
			r.AddCookie(session("t"))
			res, body := do(c, r)
			if res.StatusCode != tc.status {
				t.Fatalf("got status %d, want %d\n%s", res.StatusCode, tc.status, body)
			}
			for _, w := range tc.want {
				if !strings.Contains(body, w) {
					t.Errorf("page lacks %q", w)
				}
			}
			for _, w := range tc.never {
				if strings.Contains(body, w) {
					t.Errorf("page shows %q", w)
				}
			}
			if res.Header.Get("Content-Security-Policy") == "" {
				t.Errorf("no Content-Security-Policy")
			}
		})
	}
}

func TestLogout(t *testing.T) {
	for _, tc := range []struct {
		kind        string
		wantLogouts int
	}{{"p", 1}, {"t", 0}} {
		t.Run(tc.kind, func(t *testing.T) {
			c, f := newConsole(t)
			ck := session(tc.kind)
			csrf := csrfOf(t, c, ck)
			if res, _ := do(c, postForm("/logout", url.Values{}, ck)); res.StatusCode != 403 || f.logouts != 0 {
				t.Fatalf("logout without CSRF: got %d, %d revocations; want 403 and none", res.StatusCode, f.logouts)
			}
			res, _ := do(c, postForm("/logout", url.Values{"csrf": {csrf}}, ck))
			if res.StatusCode != 303 || res.Header.Get("Location") != "/login" {
				t.Fatalf("got %d to %q, want 303 to /login", res.StatusCode, res.Header.Get("Location"))
			}
			if s := cookieOf(res, "strata_session"); s == nil || s.MaxAge >= 0 {
				t.Errorf("session cookie %+v not cleared", s)
			}
			if f.logouts != tc.wantLogouts {
				t.Errorf("got %d token revocations, want %d (only a password login's token is the console's to revoke)", f.logouts, tc.wantLogouts)
			}
		})
	}
}

func TestLogStream(t *testing.T) {
	c, _ := newConsole(t)
	srv := httptest.NewServer(c)
	defer srv.Close()
	req, _ := http.NewRequest("GET", srv.URL+"/orgs/default/spaces/default/apps/hello/logs/stream", nil)
	req.AddCookie(session("t"))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	res, err := http.DefaultClient.Do(req.WithContext(ctx))
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if ct := res.Header.Get("Content-Type"); res.StatusCode != 200 || ct != "text/event-stream" {
		t.Fatalf("got %d %q, want 200 text/event-stream", res.StatusCode, ct)
	}
	sc := bufio.NewScanner(res.Body)
	var data []string
	for len(data) < 3 && sc.Scan() {
		if d, ok := strings.CutPrefix(sc.Text(), "data: "); ok {
			data = append(data, d)
		}
	}
	if len(data) != 3 || !strings.Contains(data[0], "hello listening") || !strings.Contains(data[1], `"source":"router"`) || !strings.Contains(data[2], `"dropped":5`) {
		t.Fatalf("got events %q, want the recent line, the live router line, then the drops note with its count", data)
	}
}

func TestStatic(t *testing.T) {
	c, _ := newConsole(t)
	for _, p := range []string{"/static/console.css", "/static/console.js"} {
		res, body := do(c, httptest.NewRequest("GET", p, nil))
		if res.StatusCode != 200 || len(body) < 100 {
			t.Errorf("GET %s: got %d with %d bytes", p, res.StatusCode, len(body))
		}
	}
}

func TestRoles(t *testing.T) {
	c, f := newConsole(t)
	ck := session("t")
	csrf := csrfOf(t, c, ck)
	for _, tc := range []struct {
		path  string
		form  url.Values
		flash string
	}{
		{"/orgs/default/roles", url.Values{"user": {"bob"}, "role": {"space-auditor"}, "space": {"staging"}}, "bob is space-auditor in space staging"},
		{"/orgs/default/roles/unset", url.Values{"user": {"bob"}, "role": {"space-developer"}, "space": {"default"}}, "bob is no longer space-developer"},
		{"/orgs/default/roles", url.Values{"user": {"bob"}, "role": {"king"}}, "is not one of"},
		{"/orgs/default/roles", url.Values{"user": {"nobody"}, "role": {"org-auditor"}}, "user nobody not found"},
	} {
		tc.form.Set("csrf", csrf)
		res, _ := do(c, postForm(tc.path, tc.form, ck))
		if res.StatusCode != 303 || res.Header.Get("Location") != "/orgs/default/members" {
			t.Fatalf("POST %s %v: got %d to %q, want 303 to the members page", tc.path, tc.form, res.StatusCode, res.Header.Get("Location"))
		}
		r := httptest.NewRequest("GET", "/orgs/default/members", nil)
		r.AddCookie(ck)
		r.AddCookie(cookieOf(res, "strata_flash"))
		if _, body := do(c, r); !strings.Contains(body, tc.flash) {
			t.Errorf("POST %s %v: the members page does not say %q", tc.path, tc.form, tc.flash)
		}
	}
	want := []string{"set bob space-auditor default/staging", "unset bob space-developer default/default"}
	if strings.Join(f.roles, ",") != strings.Join(want, ",") {
		t.Errorf("got role changes %q, want %q", f.roles, want)
	}
	if res, _ := do(c, postForm("/orgs/default/roles", url.Values{"user": {"bob"}, "role": {"org-auditor"}}, ck)); res.StatusCode != 403 {
		t.Errorf("a role change without CSRF token: got %d, want 403", res.StatusCode)
	}
}

func TestUsersAndAccount(t *testing.T) {
	c, f := newConsole(t)
	admin := adminSession()
	get := func(ck *http.Cookie, path string) (int, string) {
		r := httptest.NewRequest("GET", path, nil)
		r.AddCookie(ck)
		res, body := do(c, r)
		return res.StatusCode, body
	}
	if code, body := get(session("t"), "/users"); code != 403 || !strings.Contains(body, "needs an admin") {
		t.Errorf("users page for a non-admin: got %d, want the controller's 403", code)
	}
	code, body := get(admin, "/users")
	if code != 200 || !strings.Contains(body, "<td>bob</td>") || !strings.Contains(body, `href="/users/bob/delete"`) {
		t.Fatalf("users page: got %d\n%s", code, body)
	}
	csrf := csrfRe.FindStringSubmatch(body)[1]
	res, body := do(c, postForm("/users", url.Values{"csrf": {csrf}, "name": {"carol"}}, admin))
	if res.StatusCode != 200 || !strings.Contains(body, "gen-carol") || cookieOf(res, "strata_flash") != nil {
		t.Errorf("create user: got %d, want the users page with the generated password (and no cookie holding it)", res.StatusCode)
	}
	if res, _ := do(c, postForm("/users", url.Values{"name": {"dave"}}, admin)); res.StatusCode != 403 {
		t.Errorf("create user without CSRF token: got %d, want 403", res.StatusCode)
	}
	if code, body := get(admin, "/users/bob/delete"); code != 200 || !strings.Contains(body, "Delete user bob?") {
		t.Errorf("delete confirmation: got %d", code)
	}
	do(c, postForm("/users/bob/delete", url.Values{"csrf": {csrf}}, admin))

	ck := session("p")
	code, body = get(ck, "/account")
	if code != 200 || !strings.Contains(body, "0123456789abcdef") || !strings.Contains(body, "(this session)") {
		t.Fatalf("account page: got %d\n%s", code, body)
	}
	csrf = csrfRe.FindStringSubmatch(body)[1]
	do(c, postForm("/account/tokens/revoke", url.Values{"csrf": {csrf}, "id": {"0123456789abcdef"}}, ck))
	for _, tc := range []struct {
		form url.Values
		want string
	}{
		{url.Values{"old": {"secret-pw"}, "new": {"a-new-password"}, "repeat": {"a-new-password"}}, "your password is changed"},
		{url.Values{"old": {"secret-pw"}, "new": {"a-new-password"}, "repeat": {"typo"}}, "the new passwords differ"},
	} {
		tc.form.Set("csrf", csrf)
		res, _ := do(c, postForm("/account/password", tc.form, ck))
		r := httptest.NewRequest("GET", "/account", nil)
		r.AddCookie(ck)
		r.AddCookie(cookieOf(res, "strata_flash"))
		if _, body := do(c, r); !strings.Contains(body, tc.want) {
			t.Errorf("change password %v: the account page does not say %q", tc.form, tc.want)
		}
	}
	if want := "delete bob,revoke 0123456789abcdef"; strings.Join(f.roles, ",") != want {
		t.Errorf("got calls %q, want %q", f.roles, want)
	}
}

// Nodes implements web.NodeService for root only, as the controller does.
func (f *fake) Nodes(ctx context.Context) ([]api.Node, error) {
	if p := api.PrincipalFrom(ctx); p == nil || !p.Admin {
		return nil, api.Errorf(api.EForbidden, "listing nodes needs an admin")
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	state := "ready"
	if f.drained {
		state = "draining"
	}
	return []api.Node{{ID: "node-1", Substrate: api.SubstrateMetal, Isolations: []api.Isolation{api.IsolationProcess, api.IsolationContainer},
		Capacity: api.Capacity{CPUs: 2, MemoryMB: 4096}, State: state, Instances: 3}}, nil
}

func (f *fake) DrainNode(ctx context.Context, id string) (*api.Node, error) {
	return f.setDrained(ctx, id, true)
}

func (f *fake) UndrainNode(ctx context.Context, id string) (*api.Node, error) {
	return f.setDrained(ctx, id, false)
}

func (f *fake) setDrained(ctx context.Context, id string, on bool) (*api.Node, error) {
	if p := api.PrincipalFrom(ctx); p == nil || !p.Admin {
		return nil, api.Errorf(api.EForbidden, "draining a node needs an admin")
	}
	if id != "node-1" {
		return nil, api.Errorf(api.ENotFound, "node %q not found", id)
	}
	f.mu.Lock()
	f.drained = on
	f.mu.Unlock()
	return &api.Node{ID: id}, nil
}

// The nodes page lists the executors for admins, drains and undrains them
// with a CSRF token, and answers others with the controller's refusal.
func TestNodesPage(t *testing.T) {
	c, f := newConsole(t)
	admin := adminSession()
	get := func(ck *http.Cookie, path string) (int, string) {
		r := httptest.NewRequest("GET", path, nil)
		r.AddCookie(ck)
		res, body := do(c, r)
		return res.StatusCode, body
	}
	if code, body := get(session("t"), "/nodes"); code != 403 || !strings.Contains(body, "needs an admin") {
		t.Errorf("nodes page for a non-admin: got %d, want the controller's 403", code)
	}
	code, body := get(admin, "/nodes")
	if code != 200 || !strings.Contains(body, "<td>node-1</td>") || !strings.Contains(body, "process, container") || !strings.Contains(body, "Drain node-1") {
		t.Fatalf("nodes page: got %d\n%s", code, body)
	}
	csrf := csrfRe.FindStringSubmatch(body)[1]
	if res, _ := do(c, postForm("/nodes/node-1/drain", url.Values{}, admin)); res.StatusCode != 403 {
		t.Errorf("drain without CSRF token: got %d, want 403", res.StatusCode)
	}
	if res, _ := do(c, postForm("/nodes/node-1/drain", url.Values{"csrf": {csrf}}, admin)); res.StatusCode != http.StatusSeeOther {
		t.Errorf("drain: got %d, want a redirect", res.StatusCode)
	}
	f.mu.Lock()
	drained := f.drained
	f.mu.Unlock()
	if !drained {
		t.Fatal("the drain form did not drain the node")
	}
	if _, body := get(admin, "/nodes"); !strings.Contains(body, "Undrain node-1") || !strings.Contains(body, "<td>draining</td>") {
		t.Errorf("nodes page after the drain:\n%s", body)
	}
	do(c, postForm("/nodes/node-1/undrain", url.Values{"csrf": {csrf}}, admin))
	f.mu.Lock()
	drained = f.drained
	f.mu.Unlock()
	if drained {
		t.Error("the undrain form left the node drained")
	}
}

// Metrics implements api.MetricsService with one busy minute at the end.
func (f *fake) Metrics(ctx context.Context, app string) ([]api.MetricPoint, error) {
	if err := inSpace(ctx); err != nil {
		return nil, err
	}
	ps := make([]api.MetricPoint, 60)
	ps[59] = api.MetricPoint{Requests: 42, LatencyMs: 3.5, CPUPercent: 12.5, MemoryBytes: 64 << 20}
	return ps, nil
}

// The app page draws the last hour as inline SVG charts with the latest
// values; the drawing holds only numbers and fixed markup.
func TestAppCharts(t *testing.T) {
	c, _ := newConsole(t)
	r := httptest.NewRequest("GET", "/orgs/default/spaces/default/apps/hello", nil)
	r.AddCookie(session("t"))
	res, body := do(c, r)
	if res.StatusCode != 200 {
		t.Fatalf("app page: %d", res.StatusCode)
	}
	for _, want := range []string{"Requests per minute: 42", "Mean latency: 3.5 ms", "CPU: 12.5%", "Memory: 64 MiB", `<svg class="chart"`, `aria-label="CPU over the last hour"`} {
		if !strings.Contains(body, want) {
			t.Errorf("app page lacks %q", want)
		}
	}
	if n := strings.Count(body, "<polyline"); n != 4 {
		t.Errorf("%d charts, want 4", n)
	}
}
