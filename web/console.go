package web

import (
	"bytes"
	"context"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/strata-paas/strata/api"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// Services are the controller's use cases the console calls; the same
// implementations api/httpapi receives. Every field is required.
type Services struct {
	Auth      api.AuthService
	Users     api.UserService
	Orgs      api.OrgService
	Apps      api.AppService
	Lifecycle api.LifecycleService
	Logs      api.LogService
	Nodes     NodeService
	Metrics   api.MetricsService
}

// NodeService lists the executors and drains them; the controller allows it
// to admins only.
type NodeService interface {
	Nodes(ctx context.Context) ([]api.Node, error)
	DrainNode(ctx context.Context, id string) (*api.Node, error)
	UndrainNode(ctx context.Context, id string) (*api.Node, error)
}

func (s Services) validate() error {
	for _, f := range []struct {
		name  string
		isNil bool
	}{
		{"Auth", s.Auth == nil}, {"Users", s.Users == nil}, {"Orgs", s.Orgs == nil},
		{"Apps", s.Apps == nil}, {"Lifecycle", s.Lifecycle == nil}, {"Logs", s.Logs == nil}, {"Nodes", s.Nodes == nil}, {"Metrics", s.Metrics == nil},
	} {
		if f.isNil {
			return fmt.Errorf("web: Services.%s is nil — pass the controller's implementation", f.name)
		}
	}
	return nil
}

// Config configures a Console. The zero value is usable.
type Config struct {
	Logger *slog.Logger // defaults to slog.Default()
	// SecureCookies marks cookies Secure even on plain HTTP requests (a
	// console behind a proxy that terminates TLS). Requests that arrive
	// over TLS always get Secure cookies.
	SecureCookies bool
	// KeepAlive is the interval of SSE comment keepalives; default 15 s.
	KeepAlive time.Duration
	// Now is the clock for uptimes and ages; default time.Now.
	Now func() time.Time
}

// Console serves the web console. Create it with New.
type Console struct {
	cfg   Config
	svc   Services
	log   *slog.Logger
	pages map[string]*template.Template
	mux   *http.ServeMux
}

// New returns a Console for cfg and svc, or an error naming a nil service
// or a template that does not parse.
func New(cfg Config, svc Services) (*Console, error) {
	if err := svc.validate(); err != nil {
		return nil, err
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.KeepAlive <= 0 {
		cfg.KeepAlive = 15 * time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	c := &Console{cfg: cfg, svc: svc, log: cfg.Logger, pages: map[string]*template.Template{}}
	funcs := template.FuncMap{
		"mib":    func(b int64) string { return fmt.Sprintf("%.0f MiB", float64(b)/(1<<20)) },
		"cpu":    func(p float64) string { return fmt.Sprintf("%.1f%%", p) },
		"uptime": c.uptime,
		"ago":    c.ago,
	}
	names, err := fs.Glob(templateFS, "templates/*.html")
	if err != nil {
		return nil, err
	}
	for _, n := range names {
		if n == "templates/layout.html" {
			continue
		}
		t, err := template.New("").Funcs(funcs).ParseFS(templateFS, "templates/layout.html", n)
		if err != nil {
			return nil, fmt.Errorf("web: parse %s: %w", n, err)
		}
		c.pages[strings.TrimSuffix(strings.TrimPrefix(n, "templates/"), ".html")] = t
	}
	c.mux = c.routes()
	return c, nil
}

// ServeHTTP implements http.Handler.
func (c *Console) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; form-action 'self'; base-uri 'none'")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "same-origin")
	h.Set("X-Frame-Options", "DENY")
	c.mux.ServeHTTP(w, r)
}

func (c *Console) routes() *http.ServeMux {
	m := http.NewServeMux()
	static, _ := fs.Sub(staticFS, "static")
	m.Handle("GET /static/", http.StripPrefix("/static/", http.FileServerFS(static)))
	m.HandleFunc("GET /login", c.loginPage)
	m.HandleFunc("POST /login", c.login)
	m.HandleFunc("POST /logout", c.authed(c.logout))
	m.HandleFunc("GET /{$}", c.authed(c.home))
	m.HandleFunc("GET /switch", c.authed(c.switchSpace))
	m.HandleFunc("GET /users", c.authed(c.usersPage))
	m.HandleFunc("POST /users", c.authed(c.createUser))
	m.HandleFunc("GET /users/{user}/delete", c.authed(c.deleteUserConfirm))
	m.HandleFunc("POST /users/{user}/delete", c.authed(c.deleteUser))
	m.HandleFunc("GET /nodes", c.authed(c.nodesPage))
	m.HandleFunc("POST /nodes/{id}/drain", c.authed(c.drain(true)))
	m.HandleFunc("POST /nodes/{id}/undrain", c.authed(c.drain(false)))
	m.HandleFunc("GET /account", c.authed(c.accountPage))
	m.HandleFunc("POST /account/tokens/revoke", c.authed(c.revokeToken))
	m.HandleFunc("POST /account/password", c.authed(c.changePassword))
	m.HandleFunc("GET /orgs/{org}/members", c.authed(c.membersPage))
	m.HandleFunc("POST /orgs/{org}/roles", c.authed(c.changeRole(false)))
	m.HandleFunc("POST /orgs/{org}/roles/unset", c.authed(c.changeRole(true)))
	sp := "/orgs/{org}/spaces/{space}"
	m.HandleFunc("GET "+sp+"/apps", c.authed(c.appsPage))
	m.HandleFunc("GET "+sp+"/apps/{app}", c.authed(c.appPage))
	m.HandleFunc("GET "+sp+"/apps/{app}/rollback", c.authed(c.rollbackConfirm))
	m.HandleFunc("GET "+sp+"/apps/{app}/logs", c.authed(c.logsPage))
	m.HandleFunc("GET "+sp+"/apps/{app}/logs/stream", c.authed(c.logStream))
	for _, a := range []struct {
		name string
		fn   actionFunc
	}{
		{"scale", c.scale}, {"restart", c.restart}, {"stop", c.setState(api.AppStopped)},
		{"start", c.setState(api.AppStarted)}, {"rollback", c.rollback}, {"env", c.changeEnv},
	} {
		m.HandleFunc("POST "+sp+"/apps/{app}/"+a.name, c.authed(c.action(a.fn)))
	}
	m.HandleFunc("/", c.authed(func(w http.ResponseWriter, r *http.Request) {
		c.fail(w, r, api.Errorf(api.ENotFound, "there is no console page at %s — go back to the apps list", r.URL.Path))
	}))
	return m
}

// page is what every page's layout reads.
type page struct {
	Title   string
	User    string
	Admin   bool
	CSRF    string
	Orgs    []api.OrgInfo
	Target  api.Target
	Base    string // /orgs/O/spaces/S of the page's target, "" outside one
	Flash   string
	FlashOK bool
	Error   string
}

// render executes the named page into a buffer and writes it with status.
func (c *Console) render(w http.ResponseWriter, status int, name string, data any) {
	t, ok := c.pages[name]
	if !ok {
		http.Error(w, "internal error", http.StatusInternalServerError)
		c.log.Error("web.template.missing", "page", name)
		return
	}
	var buf bytes.Buffer
	if err := t.ExecuteTemplate(&buf, "layout", data); err != nil {
		c.log.Error("web.template", "page", name, "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// statusOf maps an error code to the HTTP status of its page, the same
// statuses the REST API answers (api/httpapi's mapping is unexported; an
// exported one in package api would let both share it).
func statusOf(err error) int {
	switch api.ErrorCode(err) {
	case api.EInvalid:
		return http.StatusBadRequest
	case api.ENotFound:
		return http.StatusNotFound
	case api.EConflict:
		return http.StatusConflict
	case api.EUnauthorized:
		return http.StatusUnauthorized
	case api.EForbidden:
		return http.StatusForbidden
	case api.EUnavailable:
		return http.StatusServiceUnavailable
	case api.ETimeout:
		return http.StatusGatewayTimeout
	case api.EUnsupported:
		return http.StatusNotImplemented
	case api.ERateLimited:
		return http.StatusTooManyRequests
	case api.EQuota, api.EBuildFailed:
		return http.StatusUnprocessableEntity
	}
	return http.StatusInternalServerError
}

// fail answers an error page (or the login page for an expired session).
func (c *Console) fail(w http.ResponseWriter, r *http.Request, err error) {
	if api.ErrorCode(err) == api.EUnauthorized {
		c.clearSession(w, r)
		c.setFlash(w, r, false, api.ErrorMessage(err))
		http.Redirect(w, r, "/login", http.StatusSeeOther)
		return
	}
	var e *api.Error
	if !errors.As(err, &e) {
		c.log.Error("web.error", "path", r.URL.Path, "err", err)
	}
	p := c.basePage(w, r, "Error")
	p.Error = api.ErrorMessage(err)
	c.render(w, statusOf(err), "error", p)
}

func (c *Console) uptime(in *api.Instance) string {
	if in.State != api.InstanceRunning || in.StartedAt.IsZero() {
		return "—"
	}
	return roundDuration(c.cfg.Now().Sub(in.StartedAt))
}

func (c *Console) ago(t time.Time) string {
	if t.IsZero() {
		return "—"
	}
	return roundDuration(c.cfg.Now().Sub(t)) + " ago"
}

func roundDuration(d time.Duration) string {
	switch {
	case d < 0:
		return "0s"
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh%dm", int(d.Hours()), int(d.Minutes())%60)
	}
	return fmt.Sprintf("%dd", int(d.Hours()/24))
}
