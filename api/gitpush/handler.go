package gitpush

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/strata-paas/strata/api"
)

// Config configures a Handler. Zero fields take the defaults of DefaultConfig.
type Config struct {
	ReposDir     string // bare repositories live here, one per app: <ReposDir>/<app>.git
	MaxPackBytes int64  // refuse larger pushes (default 512 MiB)
	// MaxPackObjects bounds the objects of one push (default 1,000,000);
	// go-git allocates index memory per announced object up front.
	MaxPackObjects int
	// MaxSourceBytes bounds the total size of the files of a pushed tree
	// (default 1 GiB); MaxSourceFiles bounds their number (default 100,000).
	MaxSourceBytes int64
	MaxSourceFiles int
	// Keepalive is how long the connection may stay silent during a deploy
	// before an empty sideband packet is sent (default 10 s).
	Keepalive time.Duration
	Logger    *slog.Logger
}

// DefaultConfig returns the default limits; ReposDir must still be set.
func DefaultConfig() Config {
	return Config{
		MaxPackBytes:   512 << 20,
		MaxPackObjects: 1_000_000,
		MaxSourceBytes: 1 << 30,
		MaxSourceFiles: 100_000,
		Keepalive:      10 * time.Second,
	}
}

// Handler is the git smart-HTTP handler. It is safe for concurrent use.
type Handler struct {
	cfg      Config
	auth     Auth
	deployer api.DeployService
	log      *slog.Logger

	mu   sync.Mutex
	busy map[string]bool // apps with a push in progress
}

var _ http.Handler = (*Handler)(nil)

// New returns the git smart-HTTP handler for paths /git/<app>.git/info/refs and
// /git/<app>.git/git-receive-pack. It authenticates with HTTP basic auth: any
// user name, the API token as password. New creates ReposDir if needed and
// returns an EInvalid *api.Error when it is empty.
func New(cfg Config, auth Auth, deployer api.DeployService) (*Handler, error) {
	def := DefaultConfig()
	if cfg.ReposDir == "" {
		return nil, api.Errorf(api.EInvalid, "gitpush: ReposDir is empty — set the directory for git repositories")
	}
	if auth == nil || deployer == nil {
		return nil, api.Errorf(api.EInvalid, "gitpush: auth and deployer are required")
	}
	if cfg.MaxPackBytes <= 0 {
		cfg.MaxPackBytes = def.MaxPackBytes
	}
	if cfg.MaxPackObjects <= 0 {
		cfg.MaxPackObjects = def.MaxPackObjects
	}
	if cfg.MaxSourceBytes <= 0 {
		cfg.MaxSourceBytes = def.MaxSourceBytes
	}
	if cfg.MaxSourceFiles <= 0 {
		cfg.MaxSourceFiles = def.MaxSourceFiles
	}
	if cfg.Keepalive <= 0 {
		cfg.Keepalive = def.Keepalive
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	dir, err := filepath.Abs(cfg.ReposDir)
	if err != nil {
		return nil, fmt.Errorf("gitpush: repos dir: %w", err)
	}
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("gitpush: create repos dir: %w", err)
	}
	cfg.ReposDir = dir
	return &Handler{
		cfg:      cfg,
		auth:     auth,
		deployer: deployer,
		log:      cfg.Logger,
		busy:     map[string]bool{},
	}, nil
}

// Auth is what the handler needs of tenancy: tokens become principals, and
// a principal may push only to apps of spaces it develops in.
type Auth interface {
	api.AuthService
	// AuthorizePush returns nil when the principal of ctx may push to apps
	// of its target space (api.TargetFrom); ENotFound when it may not even
	// see the space, EForbidden when it may only read it.
	AuthorizePush(ctx context.Context) error
}

// Smart-HTTP services and their content types.
const (
	serviceReceivePack = "git-receive-pack"
	serviceUploadPack  = "git-upload-pack"
)

const fetchUnsupported = "fetch is not supported yet — strata accepts git push only; " +
	"keep your source in your own git host and push to strata to deploy\n"

// ServeHTTP implements http.Handler. It accepts the full request path
// (/git/<app>.git/…) and also the path with the /git prefix stripped.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	target, app, rest, ok := splitPath(r.URL.Path)
	if !ok {
		textError(w, http.StatusNotFound, "not a git repository path — use /git/<app>.git or /git/<org>/<space>/<app>.git\n")
		return
	}
	p, ok := h.authenticate(w, r)
	if !ok {
		return
	}
	if err := validTarget(target, app); err != nil {
		textError(w, http.StatusNotFound, api.ErrorMessage(err)+"\n")
		return
	}
	ctx := api.WithTarget(api.WithPrincipal(r.Context(), p), target)
	// Nothing of a repository, not even its refs, is shown before the
	// principal may push to its space.
	if err := h.auth.AuthorizePush(ctx); err != nil {
		status := http.StatusForbidden
		if api.ErrorCode(err) == api.ENotFound {
			status = http.StatusNotFound
		} else if code := api.ErrorCode(err); code == api.EUnavailable || code == api.ETimeout {
			status = http.StatusServiceUnavailable
		}
		textError(w, status, api.ErrorMessage(err)+"\n")
		return
	}
	r = r.WithContext(ctx)
	repo := repoRef{target: target, app: app}

	switch {
	case rest == "info/refs" && (r.Method == http.MethodGet || r.Method == http.MethodHead):
		switch r.URL.Query().Get("service") {
		case serviceReceivePack:
			h.advertise(w, repo)
		case serviceUploadPack:
			textError(w, http.StatusForbidden, fetchUnsupported)
		default:
			textError(w, http.StatusForbidden, "dumb HTTP is not supported — use git 1.6.6 or newer\n")
		}
	case rest == serviceReceivePack && r.Method == http.MethodPost:
		h.receivePack(w, r, repo)
	case rest == serviceUploadPack:
		textError(w, http.StatusForbidden, fetchUnsupported)
	case rest == "info/refs" || rest == serviceReceivePack:
		w.Header().Set("Allow", "GET, POST")
		textError(w, http.StatusMethodNotAllowed, "method not allowed\n")
	default:
		textError(w, http.StatusNotFound, "not found — strata serves only git smart HTTP push\n")
	}
}

// splitPath parses [/git]/<app>.git/<rest> (the default org and space) and
// [/git]/<org>/<space>/<app>.git/<rest>. Names are returned as they are;
// the caller validates them.
func splitPath(p string) (t api.Target, app, rest string, ok bool) {
	if strings.HasPrefix(p, "/git/") {
		p = p[len("/git"):]
	}
	p, ok = strings.CutPrefix(p, "/")
	if !ok {
		return t, "", "", false
	}
	repo, rest, ok := strings.Cut(p, ".git/")
	if !ok {
		return t, "", "", false
	}
	parts := strings.Split(repo, "/")
	switch len(parts) {
	case 1:
		app = parts[0]
	case 3:
		t, app = api.Target{Org: parts[0], Space: parts[1]}, parts[2]
		if t.Org == "" || t.Space == "" {
			return t, "", "", false
		}
	default:
		return t, "", "", false
	}
	if app == "" {
		return t, "", "", false
	}
	return t, app, rest, true
}

func validTarget(t api.Target, app string) error {
	if t.Org != "" {
		if err := api.ValidateName("org", t.Org); err != nil {
			return err
		}
		if err := api.ValidateName("space", t.Space); err != nil {
			return err
		}
	}
	return api.ValidateAppName(app)
}

// repoRef names one app's repository: its space and name.
type repoRef struct {
	target api.Target // zero: the default org and space
	app    string
}

func (r repoRef) isDefault() bool {
	return (r.target.Org == "" || r.target.Org == "default") && (r.target.Space == "" || r.target.Space == "default")
}

// authenticate checks HTTP basic auth; on failure it writes the response.
func (h *Handler) authenticate(w http.ResponseWriter, r *http.Request) (*api.Principal, bool) {
	_, token, ok := r.BasicAuth()
	if !ok || token == "" {
		askCredentials(w, "authentication required — use your strata API token as the password\n")
		return nil, false
	}
	p, err := h.auth.Authenticate(r.Context(), token)
	if err == nil && p != nil {
		return p, true
	}
	switch api.ErrorCode(err) {
	case api.EUnauthorized, "":
		askCredentials(w, "bad credentials — use a valid strata API token as the password (strata login)\n")
	case api.EUnavailable, api.ETimeout:
		textError(w, http.StatusServiceUnavailable, api.ErrorMessage(err)+" — try again later\n")
	default:
		h.log.Error("gitpush.auth_failed", "err", err)
		textError(w, http.StatusInternalServerError, "authentication failed: "+api.ErrorMessage(err)+"\n")
	}
	return nil, false
}

func askCredentials(w http.ResponseWriter, msg string) {
	w.Header().Set("WWW-Authenticate", `Basic realm="strata"`)
	textError(w, http.StatusUnauthorized, msg)
}

// textError writes a text/plain error; git shows text/plain bodies of failed
// requests as `remote:` lines.
func textError(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-cache")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_, _ = io.WriteString(w, msg)
}

// repoPath returns the bare repository of a validated repoRef: <app>.git
// for the default org and space (as before there were others),
// <org>/<space>/<app>.git otherwise.
func (h *Handler) repoPath(r repoRef) string {
	if r.isDefault() {
		return filepath.Join(h.cfg.ReposDir, r.app+".git")
	}
	return filepath.Join(h.cfg.ReposDir, r.target.Org, r.target.Space, r.app+".git")
}

// lock marks a repository busy; it reports false when another push to it is
// running.
func (h *Handler) lock(app string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.busy[app] {
		return false
	}
	h.busy[app] = true
	return true
}

func (h *Handler) unlock(app string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(h.busy, app)
}

// errTooLarge is returned by limitReader past its limit.
var errTooLarge = errors.New("push too large")

// limitReader returns errTooLarge once more than n bytes were read.
type limitReader struct {
	r io.Reader
	n int64
}

func (l *limitReader) Read(p []byte) (int, error) {
	if l.n <= 0 {
		var b [1]byte
		if k, err := l.r.Read(b[:]); k > 0 {
			return 0, errTooLarge
		} else {
			return 0, err
		}
	}
	if int64(len(p)) > l.n {
		p = p[:l.n]
	}
	n, err := l.r.Read(p)
	l.n -= int64(n)
	return n, err
}

// contextReader fails reads once ctx is done.
type contextReader struct {
	ctx context.Context
	r   io.Reader
}

func (c contextReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}
