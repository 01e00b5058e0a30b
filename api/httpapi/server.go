package httpapi

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"runtime/debug"
	"slices"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/strata-paas/strata/api"
)

// Services are the use cases the API serves, one field per capability. Every
// field is required: a deployment that lacks a capability passes an
// Unsupported for it, whose calls answer not_supported (HTTP 501). The server
// never looks for a capability any other way.
type Services struct {
	Auth   api.AuthService
	Users  api.UserService // login, users, passwords, tokens
	Orgs   api.OrgService  // orgs, spaces, roles
	Quotas api.QuotaService
	// Buildpacks registers classic buildpacks (admin) and lists them.
	Buildpacks api.BuildpackService
	// Domains registers the domains routes may use.
	Domains   api.DomainService
	Apps      api.AppService
	Deploy    api.DeployService
	Logs      api.LogService
	Lifecycle api.LifecycleService // releases, rollback, env, scale, start/stop/restart, events
	Operate   api.OperateService   // health checks and tasks
	Placement api.PlacementService // placement policies and node drain
	Routes    api.RouteService
	// Certificates serves /v1/certificates and /v1/router/certificates (admin).
	Certificates api.CertificateService
	// Blobs backs the internal blob endpoints used by builders and executors
	// on other machines (admin).
	Blobs api.BlobStore
	// Nodes lists executors for GET /v1/nodes (admin).
	Nodes NodeService
	// Git is mounted at /git/*; it authenticates requests itself.
	Git http.Handler
}

// Validate returns an error naming the first nil field of s, or nil.
func (s Services) Validate() error {
	for _, f := range []struct {
		name  string
		isNil bool
	}{
		{"Auth", s.Auth == nil},
		{"Users", s.Users == nil},
		{"Orgs", s.Orgs == nil},
		{"Quotas", s.Quotas == nil},
		{"Buildpacks", s.Buildpacks == nil},
		{"Domains", s.Domains == nil},
		{"Apps", s.Apps == nil},
		{"Deploy", s.Deploy == nil},
		{"Logs", s.Logs == nil},
		{"Lifecycle", s.Lifecycle == nil},
		{"Operate", s.Operate == nil},
		{"Placement", s.Placement == nil},
		{"Routes", s.Routes == nil},
		{"Certificates", s.Certificates == nil},
		{"Blobs", s.Blobs == nil},
		{"Nodes", s.Nodes == nil},
		{"Git", s.Git == nil},
	} {
		if f.isNil {
			return fmt.Errorf("httpapi: Services.%s is nil — pass its implementation, or httpapi.Unsupported{What: …, Hint: …} when this deployment has none", f.name)
		}
	}
	return nil
}

// NodeService lists the executors that have reported, in any order.
type NodeService interface {
	Nodes(ctx context.Context) ([]api.Node, error)
}

// NodeListFunc adapts a function listing nodes from memory, such as
// (*controller.Nodes).List, to a NodeService.
type NodeListFunc func() []api.Node

// Nodes implements NodeService; it never fails.
func (f NodeListFunc) Nodes(context.Context) ([]api.Node, error) { return f(), nil }

// Config configures a Server. The zero value is usable.
type Config struct {
	Info   api.Info
	Logger *slog.Logger // defaults to slog.Default()
	// MaxUploadBytes caps a push upload; default 1 GiB.
	MaxUploadBytes int64
	// MaxBlobBytes caps a blob upload (droplets); default 4 GiB.
	MaxBlobBytes int64
	// KeepAlive is the interval of SSE comment keepalives; default 15 s.
	KeepAlive time.Duration
	// IdempotencyTTL is how long idempotent responses are remembered; default 24 h.
	IdempotencyTTL time.Duration
	// IdempotencyPending is how long a key whose first request is still
	// running (or whose controller died while running it) is refused with
	// conflict; default 15 min.
	IdempotencyPending time.Duration
	// Idempotency keeps idempotent responses; nil: an in-memory cache of
	// IdempotencyEntries (a server on its own). Controllers of one database
	// share api/store's.
	Idempotency api.IdempotencyStore
	// IdempotencyEntries caps the in-memory cache; default 10,000.
	IdempotencyEntries int
}

// Defaults.
const (
	DefaultMaxUploadBytes     = 1 << 30
	DefaultMaxBlobBytes       = 4 << 30
	DefaultKeepAlive          = 15 * time.Second
	DefaultIdempotencyTTL     = 24 * time.Hour
	DefaultIdempotencyPending = 15 * time.Minute
	DefaultIdempotencyEntries = 10000
)

// Server is the REST API. Create it with New and serve Handler().
type Server struct {
	cfg  Config
	svc  Services
	log  *slog.Logger
	e    *echo.Echo
	idem api.IdempotencyStore
}

// New returns a Server for cfg and svc, with defaults filled in. It panics
// with the error of svc.Validate when a service is nil: that is a wiring
// mistake, not a condition to handle.
func New(cfg Config, svc Services) *Server {
	if err := svc.Validate(); err != nil {
		panic(err)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.MaxUploadBytes <= 0 {
		cfg.MaxUploadBytes = DefaultMaxUploadBytes
	}
	if cfg.MaxBlobBytes <= 0 {
		cfg.MaxBlobBytes = DefaultMaxBlobBytes
	}
	if cfg.KeepAlive <= 0 {
		cfg.KeepAlive = DefaultKeepAlive
	}
	if cfg.IdempotencyTTL <= 0 {
		cfg.IdempotencyTTL = DefaultIdempotencyTTL
	}
	if cfg.IdempotencyPending <= 0 {
		cfg.IdempotencyPending = DefaultIdempotencyPending
	}
	if cfg.IdempotencyEntries <= 0 {
		cfg.IdempotencyEntries = DefaultIdempotencyEntries
	}
	if cfg.Idempotency == nil {
		cfg.Idempotency = newIdempotencyCache(cfg.IdempotencyEntries)
	}
	s := &Server{
		cfg:  cfg,
		svc:  svc,
		log:  cfg.Logger,
		idem: cfg.Idempotency,
	}
	s.e = s.routes()
	return s
}

// Handler returns the http.Handler serving the API, /git/* and 404s.
func (s *Server) Handler() http.Handler { return s.e }

func (s *Server) routes() *echo.Echo {
	e := echo.New()
	e.HideBanner = true
	e.HidePort = true
	e.HTTPErrorHandler = s.handleError
	e.Use(s.recoverPanics, s.logRequests)

	e.Any("/git/*", echo.WrapHandler(s.svc.Git))

	v1 := e.Group("/v1")
	v1.GET("/info", s.info)
	v1.GET("/openapi.json", s.openAPI)

	authed := v1.Group("", s.authenticate)
	authed.GET("/whoami", s.whoami)
	authed.GET("/apps", s.listApps)
	authed.POST("/apps", s.createApp, s.idempotent)
	authed.GET("/apps/:name", s.appDetail)
	authed.DELETE("/apps/:name", s.deleteApp, s.idempotent)
	authed.POST("/apps/:name/purge-cache", s.purgeCache, s.idempotent)
	authed.POST("/apps/:name/push", s.push)
	authed.GET("/apps/:name/logs", s.logs)
	authed.GET("/apps/:name/releases", s.releases)
	authed.POST("/apps/:name/rollback", s.rollback, s.idempotent)
	authed.GET("/apps/:name/env", s.env)
	authed.PATCH("/apps/:name/env", s.changeEnv, s.idempotent)
	authed.POST("/apps/:name/scale", s.scale, s.idempotent)
	authed.POST("/apps/:name/start", s.setState(api.AppStarted), s.idempotent)
	authed.POST("/apps/:name/stop", s.setState(api.AppStopped), s.idempotent)
	authed.POST("/apps/:name/restart", s.restart, s.idempotent)
	authed.GET("/apps/:name/events", s.events)

	admin := authed.Group("", s.requireAdmin)
	// Executors fetch droplets and image files, builders sources and
	// buildpacks, with their own credentials; builders upload droplets.
	authed.GET("/blobs/:ref", s.getBlob, s.requireAdminOr(api.ComponentExecutor, api.ComponentBuilder))
	authed.POST("/blobs", s.putBlob, s.requireAdminOr(api.ComponentBuilder), s.idempotent)
	admin.GET("/nodes", s.nodes)
	s.placementRoutes(authed, admin)
	s.operateRoutes(authed)
	s.routeRoutes(authed)
	s.certificateRoutes(authed, admin)
	s.tenancyRoutes(v1, authed)
	return e
}

// recoverPanics turns a handler panic into an internal error and logs it.
func (s *Server) recoverPanics(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) (err error) {
		defer func() {
			if r := recover(); r != nil {
				if r == http.ErrAbortHandler {
					panic(r)
				}
				s.log.Error("http.panic", "method", c.Request().Method, "path", c.Request().URL.Path,
					"panic", fmt.Sprint(r), "stack", string(debug.Stack()))
				err = fmt.Errorf("panic: %v", r)
			}
		}()
		return next(c)
	}
}

func (s *Server) logRequests(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		start := time.Now()
		err := next(c)
		if err != nil {
			c.Error(err)
		}
		s.log.Debug("http.request", "method", c.Request().Method, "path", c.Request().URL.Path,
			"status", c.Response().Status, "dur", time.Since(start))
		return nil
	}
}

// authenticate requires a bearer token and puts the principal, and the
// target org and space of the X-Strata-Org/X-Strata-Space headers, in the
// request context.
func (s *Server) authenticate(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		h := c.Request().Header.Get(echo.HeaderAuthorization)
		scheme, token, ok := strings.Cut(h, " ")
		if h == "" {
			return api.Errorf(api.EUnauthorized, "missing API token — run strata login, or send Authorization: Bearer <token>")
		}
		token = strings.TrimSpace(token)
		if !ok || !strings.EqualFold(scheme, "Bearer") || token == "" {
			return api.Errorf(api.EUnauthorized, "the Authorization header is not a bearer token — send Authorization: Bearer <token>")
		}
		p, err := s.svc.Auth.Authenticate(c.Request().Context(), token)
		if err != nil {
			return err
		}
		if p == nil {
			return api.Errorf(api.EUnauthorized, "the API token is not valid — run strata login again")
		}
		target, err := targetOf(c.Request())
		if err != nil {
			return err
		}
		ctx := api.WithTarget(api.WithPrincipal(c.Request().Context(), p), target)
		c.SetRequest(c.Request().WithContext(ctx))
		return next(c)
	}
}

// requireAdminOr lets admins and the given components through.
func (s *Server) requireAdminOr(components ...string) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			p := api.PrincipalFrom(c.Request().Context())
			if p == nil || !p.Admin && !slices.Contains(components, p.Component) {
				return api.Errorf(api.EForbidden, "this endpoint needs an admin token or the %s credential", strings.Join(components, " or "))
			}
			return next(c)
		}
	}
}

func (s *Server) requireAdmin(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		p := api.PrincipalFrom(c.Request().Context())
		if p == nil || !p.Admin {
			return api.Errorf(api.EForbidden, "this endpoint needs an admin token — log in with the admin token")
		}
		return next(c)
	}
}

func (s *Server) info(c echo.Context) error { return c.JSON(http.StatusOK, s.cfg.Info) }

func (s *Server) whoami(c echo.Context) error {
	return c.JSON(http.StatusOK, api.PrincipalFrom(c.Request().Context()))
}

func ctxOf(c echo.Context) context.Context { return c.Request().Context() }

// readLimited reads at most max bytes of r, or returns EInvalid.
func readLimited(r io.Reader, max int64, what string) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, max+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", what, err)
	}
	if int64(len(b)) > max {
		return nil, api.Errorf(api.EInvalid, "%s is larger than %d bytes — send a smaller body", what, max)
	}
	return b, nil
}
