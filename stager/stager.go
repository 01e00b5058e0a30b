package stager

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/strata-paas/strata/api"
	"github.com/strata-paas/strata/api/archive"
	"github.com/strata-paas/strata/builder"
	"github.com/strata-paas/strata/builder/droplet"
)

// DefaultTimeout is how long one staging may take unless configured.
const DefaultTimeout = 15 * time.Minute

// Config configures a Stager.
type Config struct {
	WorkDir      string        // sandbox root: one fresh directory per build, droplets until uploaded
	CacheDir     string        // per-app build caches, CacheDir/<app id>
	Timeout      time.Duration // per build unless the job says otherwise (default 15m)
	StaticServer string        // the strata-static binary the static buildpack installs
	GoRoot       string        // Go installation for the go buildpack ("" = go on PATH)
	Env          []string      // base build environment (nil = HostEnv())
	Logger       *slog.Logger  // nil = discard
	// Buildpacks replaces the built-in buildpacks (detection order).
	Buildpacks []builder.Buildpack
	// BuildpacksDir holds custom classic buildpacks, one per subdirectory
	// named like the buildpack (builder.LoadClassic). They are detected
	// before the built-in ones, in name order, and a job may name them.
	BuildpacksDir string
	// Limits bound the source archive (zero = archive.DefaultLimits()).
	Limits archive.Limits
	// CacheMaxBytes caps the build caches of all apps together; after each
	// build the least recently used are removed until they fit (default
	// DefaultCacheMaxBytes).
	CacheMaxBytes int64
	// Confine says whether build commands run confined (default
	// ConfineAuto); BuildUID, BuildMemoryMB and BuildPidsMax are the
	// confined builds' user and limits (defaults DefaultBuildUID,
	// DefaultBuildMemoryMB, DefaultBuildPidsMax).
	Confine       Confinement
	BuildUID      int
	BuildMemoryMB int
	BuildPidsMax  int
	// Images builds apps whose source has a Dockerfile (and no other
	// buildpack detects) into images; nil fails such builds saying the
	// builder has no Docker engine (dockerfile.go).
	Images ImageBuilder
}

// DefaultCacheMaxBytes is the default cap of all build caches together.
const DefaultCacheMaxBytes = 4 << 30

// Result is the outcome of one staging. Failure is empty on success.
type Result struct {
	DropletPath string // a temp file the caller uploads then removes; "" on failure
	Info        api.StagingInfo
	Failure     api.BuildFailure
	Reason      string // for the user, e.g. "compile failed (exit 2)"
}

// Stager stages apps. It is safe for concurrent use.
type Stager struct {
	cfg     Config
	log     *slog.Logger
	bps     []builder.Buildpack
	confine *confiner // nil: build commands run as the builder's user

	mu    sync.Mutex
	inUse map[string]int // cache dir name → builds using it

	bpMu sync.Mutex // unpacking registered buildpacks (Registered)
}

// New returns a Stager, creating WorkDir and CacheDir if needed. One Stager
// owns WorkDir: New removes what builds of an earlier process left there.
func New(cfg Config) (*Stager, error) {
	if cfg.WorkDir == "" || cfg.CacheDir == "" {
		return nil, api.Errorf(api.EInvalid, "stager needs a work dir and a cache dir")
	}
	for _, d := range []string{cfg.WorkDir, cfg.CacheDir} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, fmt.Errorf("stager: %w", err)
		}
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.Env == nil {
		cfg.Env = HostEnv()
	}
	if cfg.Limits == (archive.Limits{}) {
		cfg.Limits = archive.DefaultLimits()
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	bps := cfg.Buildpacks
	if bps == nil {
		bps = builder.Default(builder.Config{GoRoot: cfg.GoRoot, StaticServer: cfg.StaticServer})
	}
	if cfg.BuildpacksDir != "" {
		custom, err := builder.LoadClassic(cfg.BuildpacksDir)
		if err != nil {
			return nil, api.Errorf(api.EInvalid, "stager: %v", err)
		}
		var all []builder.Buildpack
		for _, bp := range custom {
			all = append(all, bp)
		}
		bps = append(all, bps...)
	}
	if cfg.CacheMaxBytes <= 0 {
		cfg.CacheMaxBytes = DefaultCacheMaxBytes
	}
	if cfg.BuildUID <= 0 {
		cfg.BuildUID = DefaultBuildUID
	}
	if cfg.BuildMemoryMB <= 0 {
		cfg.BuildMemoryMB = DefaultBuildMemoryMB
	}
	if cfg.BuildPidsMax <= 0 {
		cfg.BuildPidsMax = DefaultBuildPidsMax
	}
	if n := sweepWorkDir(cfg.WorkDir); n > 0 {
		log.Info("stager.swept", "dir", cfg.WorkDir, "removed", n)
	}
	s := &Stager{cfg: cfg, log: log, bps: bps, inUse: map[string]int{}}
	if cfg.Confine != ConfineNever {
		c, err := newConfiner(cfg)
		switch {
		case err == nil:
			// Other builds' sandboxes and other apps' caches stay
			// hidden from a build whatever the data dir's mode.
			for _, d := range []string{cfg.WorkDir, cfg.CacheDir} {
				if err := os.Chmod(d, 0o700); err != nil {
					return nil, fmt.Errorf("stager: %w", err)
				}
			}
			s.confine = c
			log.Info("stager.confined", "uid", cfg.BuildUID, "memory_mb", cfg.BuildMemoryMB, "pids_max", cfg.BuildPidsMax)
			for _, d := range []string{cfg.WorkDir, cfg.CacheDir} {
				if parent := filepath.Dir(d); !hiddenFromOthers(parent) {
					log.Warn("stager.data_dir_visible", "dir", parent,
						"effect", "confined builds can read what in it other users may read — chmod 0700 it")
				}
			}
		case cfg.Confine == ConfineAlways:
			return nil, api.Errorf(api.EUnavailable, "stager cannot confine builds: %v — run the builder as root on Linux with a cgroup memory controller", err)
		default:
			log.Warn("stager.unconfined", "reason", err.Error(),
				"effect", "buildpack scripts run as the builder's user, without limits, and can read what it can")
		}
	}
	return s, nil
}

// sweepWorkDir removes the sandboxes, probe dirs and droplets that builds of
// an earlier process left in dir (it was killed mid-build, or before its
// worker uploaded a droplet) and returns how many. One Stager owns a work
// dir.
func sweepWorkDir(dir string) int {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return 0
	}
	n := 0
	for _, e := range ents {
		name := e.Name()
		if strings.HasPrefix(name, "build-") || strings.HasPrefix(name, "probe-") || strings.HasPrefix(name, "droplet-") && strings.HasSuffix(name, ".tgz") ||
			strings.HasPrefix(name, "image-") && strings.HasSuffix(name, ".tar") {
			if os.RemoveAll(filepath.Join(dir, name)) == nil {
				n++
			}
		}
	}
	return n
}

// hiddenFromOthers reports whether users other than dir's owner and group
// cannot reach dir: it or one of its ancestors is not searchable by them.
// The confinement hides such directories from builds (package isolate).
func hiddenFromOthers(dir string) bool {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return false
	}
	for {
		if fi, err := os.Stat(abs); err == nil && fi.Mode().Perm()&0o001 == 0 {
			return true
		}
		parent := filepath.Dir(abs)
		if parent == abs {
			return false
		}
		abs = parent
	}
}

// Confined reports whether build commands run confined.
func (s *Stager) Confined() bool { return s.confine != nil }

// hostEnvKeys are the host variables a build inherits by default.
func hostEnvKeys() []string {
	return []string{"PATH", "GOPROXY", "GOSUMDB", "GONOSUMDB", "GOPRIVATE", "GONOPROXY", "GOINSECURE",
		"HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "http_proxy", "https_proxy", "no_proxy", "SSL_CERT_FILE", "SSL_CERT_DIR", "LANG"}
}

// HostEnv returns the host environment variables builds inherit by default:
// PATH, the Go proxy settings, HTTP proxies and TLS roots.
func HostEnv() []string {
	var env []string
	for _, k := range hostEnvKeys() {
		if v, ok := os.LookupEnv(k); ok {
			env = append(env, k+"="+v)
		}
	}
	return env
}

// buildEnv is base with TMPDIR and HOME set to the build's own (writable)
// directories, replacing the builder's.
func buildEnv(base []string, tmp, home string) []string {
	env := slices.DeleteFunc(slices.Clone(base), func(kv string) bool {
		return strings.HasPrefix(kv, "TMPDIR=") || strings.HasPrefix(kv, "HOME=")
	})
	return append(env, "TMPDIR="+tmp, "HOME="+home)
}

func failed(f api.BuildFailure, format string, args ...any) *Result {
	return &Result{Failure: f, Reason: fmt.Sprintf(format, args...)}
}

// Stage builds the gzip-compressed tar source for job, streaming build output
// to out as it happens (out need not be safe for concurrent use). A failure
// caused by the app is a Result with Failure set and a nil error; a non-nil
// error means the platform failed or ctx ended. On success the caller owns
// Result.DropletPath and must remove it.
func (s *Stager) Stage(ctx context.Context, job api.BuildJob, source io.Reader, out io.Writer) (*Result, error) {
	return s.StageWith(ctx, job, source, out, nil)
}

// StageWith is Stage with extra buildpacks (the registered ones, see
// Registered) tried before the stager's own and available by name.
func (s *Stager) StageWith(ctx context.Context, job api.BuildJob, source io.Reader, out io.Writer, extra []builder.Buildpack) (*Result, error) {
	start := time.Now()
	log := s.log.With("build", job.BuildID, "app", job.AppName)
	cacheKey := job.AppID
	if cacheKey == "" {
		cacheKey = job.AppName
	}
	if cacheKey == "" || strings.HasPrefix(cacheKey, "_") || !filepath.IsLocal(cacheKey) || strings.ContainsAny(cacheKey, `/\`) {
		return nil, api.Errorf(api.EInvalid, "build job has no usable app id (%q)", cacheKey)
	}
	sandbox, err := os.MkdirTemp(s.cfg.WorkDir, "build-")
	if err != nil {
		return nil, fmt.Errorf("stager: sandbox: %w", err)
	}
	defer func() {
		if err := os.RemoveAll(sandbox); err != nil {
			log.Warn("stage.cleanup_failed", "dir", sandbox, "err", err)
		}
	}()
	src := filepath.Join(sandbox, "app")
	tmp := filepath.Join(sandbox, "tmp")
	home := filepath.Join(sandbox, "home")
	cache, release, err := s.cacheFor(cacheKey, job.NoCache, sandbox)
	if err != nil {
		return nil, err
	}
	defer release()
	for _, d := range []string{src, tmp, home} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, fmt.Errorf("stager: %w", err)
		}
	}
	if job.NoCache {
		fmt.Fprintf(out, "-----> Building without the build cache (no-cache)\n")
	}

	fmt.Fprintf(out, "-----> Receiving source\n")
	if err := archive.Extract(ctx, source, src, s.cfg.Limits); err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if api.ErrorCode(err) == api.EInvalid {
			fmt.Fprintf(out, "       %s\n", api.ErrorMessage(err))
			return failed(api.FailBadSource, "%s", api.ErrorMessage(err)), nil
		}
		return nil, fmt.Errorf("stager: extract source: %w", err)
	}
	if job.Procfile != "" {
		if err := writeProcfile(src, job.Procfile); err != nil {
			fmt.Fprintf(out, "       %s\n", err)
			return failed(api.FailBadSource, "%s", err), nil
		}
	}

	ws := &builder.Workspace{
		SourceDir:  src,
		CacheDir:   cache,
		Env:        buildEnv(s.cfg.Env, tmp, home),
		Out:        out,
		ScratchDir: filepath.Join(sandbox, "scratch"),
		AppEnv:     job.Env,
	}
	if !job.NoCache && s.confine == nil {
		// Go's build and module caches are content-addressed: share them
		// between apps (see builder.Workspace). Not when builds are
		// confined: a build could plant entries another app's build
		// would then trust.
		ws.SharedCacheDir = filepath.Join(s.cfg.CacheDir, sharedCache)
	}
	if s.confine != nil {
		ws.Runner = s.confine.runner([]string{sandbox, cache}, filepath.Base(sandbox))
		if !job.NoCache {
			// Written by the builder only, hidden from builds (CacheDir
			// is 0700): see builder.Workspace.GoSeedCache.
			ws.GoSeedCache = filepath.Join(s.cfg.CacheDir, seedCache)
		}
	}
	// Detection runs buildpack scripts too: the staging timeout covers it.
	timeout := s.cfg.Timeout
	if job.Timeout > 0 {
		timeout = job.Timeout
	}
	bctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	bps, res, err := s.pick(bctx, job, ws, append(append([]builder.Buildpack{}, extra...), s.bps...))
	if err != nil && ctx.Err() == nil && errors.Is(bctx.Err(), context.DeadlineExceeded) {
		res, err = classify(ctx, err, true, timeout)
	}
	if res != nil || err != nil {
		if res != nil {
			fmt.Fprintf(out, "       %s\n", res.Reason)
		}
		return res, err
	}
	names := make([]string, len(bps))
	for i, bp := range bps {
		names[i] = bp.Name()
	}
	if len(job.Buildpacks) > 0 {
		fmt.Fprintf(out, "-----> Using buildpacks %s\n", strings.Join(names, ", "))
	} else {
		fmt.Fprintf(out, "-----> %s app detected\n", names[0])
	}
	if isDockerfile(bps) {
		return s.stageDockerfile(ctx, bctx, job, src, bps, out, timeout)
	}

	procs, err := builder.BuildAll(bctx, bps, ws)
	timedOut := errors.Is(bctx.Err(), context.DeadlineExceeded)
	cancel()
	if err != nil {
		res, err := classify(ctx, err, timedOut, timeout)
		if res != nil {
			fmt.Fprintf(out, "       %s\n", res.Reason)
			log.Info("stage.failed", "failure", res.Failure, "reason", res.Reason, "took", time.Since(start))
		}
		return res, err
	}

	info := api.StagingInfo{Buildpack: strings.Join(names, ","), Processes: procs, Stack: job.Stack}
	for _, t := range sortedKeys(procs) {
		fmt.Fprintf(out, "       %s: %s\n", t, procs[t])
	}
	fmt.Fprintf(out, "-----> Packing droplet\n")
	path, err := s.writeDroplet(ctx, src, info)
	if api.ErrorCode(err) == api.EInvalid { // e.g. the build left a symlink pointing outside the app
		fmt.Fprintf(out, "       %s\n", api.ErrorMessage(err))
		return failed(api.FailCompile, "%s", api.ErrorMessage(err)), nil
	}
	if err != nil {
		return nil, err
	}
	log.Info("stage.staged", "buildpack", info.Buildpack, "took", time.Since(start))
	return &Result{DropletPath: path, Info: info}, nil
}

// builtinAliases maps Cloud Foundry's and Heroku's names of buildpacks to
// the built-in ones that do the same job.
var builtinAliases = map[string]string{
	"go_buildpack": "go", "heroku/go": "go",
	"nodejs_buildpack": "nodejs", "heroku/nodejs": "nodejs", "node": "nodejs",
	"python_buildpack": "python", "heroku/python": "python",
	"staticfile_buildpack": "static", "staticfile": "static",
	"binary_buildpack": "procfile",
}

// pick chooses the buildpacks: the ones the job names, in order, or the
// first to detect.
func (s *Stager) pick(ctx context.Context, job api.BuildJob, ws *builder.Workspace, all []builder.Buildpack) ([]builder.Buildpack, *Result, error) {
	if len(job.Buildpacks) > 0 {
		var bps []builder.Buildpack
		for _, name := range job.Buildpacks {
			if strings.Contains(name, "://") || strings.HasPrefix(name, "git@") {
				return nil, failed(api.FailNoBuildpack, "buildpack %q: buildpacks from URLs are not supported yet — name one of: %s", name, strings.Join(names(all), ", ")), nil
			}
			i := slices.IndexFunc(all, func(bp builder.Buildpack) bool { return bp.Name() == name })
			if i < 0 {
				// The names Cloud Foundry and Heroku give the same
				// built-in buildpacks, for manifests written for them.
				i = slices.IndexFunc(all, func(bp builder.Buildpack) bool { return bp.Name() == builtinAliases[name] })
			}
			if i < 0 {
				return nil, failed(api.FailNoBuildpack, "unknown buildpack %q — available: %s", name, strings.Join(names(all), ", ")), nil
			}
			bps = append(bps, all[i])
		}
		return bps, nil, nil
	}
	bp, err := builder.Detect(ctx, all, ws)
	if err != nil {
		if ctx.Err() != nil {
			return nil, nil, ctx.Err()
		}
		return nil, nil, fmt.Errorf("stager: %w", err)
	}
	if bp == nil {
		return nil, failed(api.FailNoBuildpack, "%s", builder.NoneDetected(all)), nil
	}
	return []builder.Buildpack{bp}, nil, nil
}

func names(bps []builder.Buildpack) []string {
	var n []string
	for _, bp := range bps {
		n = append(n, bp.Name())
	}
	return n
}

// classify turns a build error into a typed failure, or an error when the
// platform failed or the caller's ctx ended.
func classify(ctx context.Context, err error, timedOut bool, timeout time.Duration) (*Result, error) {
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	if timedOut {
		return failed(api.FailTimeout, "timed out after %s — make the build faster or raise the staging timeout", timeout), nil
	}
	var ee *builder.ExitError
	if errors.As(err, &ee) {
		return failed(api.FailCompile, "compile failed (exit %d)", ee.Code), nil
	}
	var ae *builder.AppError
	if errors.As(err, &ae) {
		return failed(api.FailCompile, "%s", ae.Message), nil
	}
	return nil, fmt.Errorf("stager: build: %w", err)
}

func (s *Stager) writeDroplet(ctx context.Context, appDir string, info api.StagingInfo) (string, error) {
	f, err := os.CreateTemp(s.cfg.WorkDir, "droplet-*.tgz")
	if err != nil {
		return "", fmt.Errorf("stager: droplet: %w", err)
	}
	err = droplet.Write(ctx, f, appDir, info)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(f.Name())
		if ctx.Err() != nil {
			return "", ctx.Err()
		}
		if api.ErrorCode(err) == api.EInvalid {
			return "", err
		}
		return "", fmt.Errorf("stager: droplet: %w", err)
	}
	return f.Name(), nil
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// writeProcfile writes the manifest's start commands as the source's
// Procfile, through an os.Root so a planted symlink cannot redirect it; a
// Procfile already there is refused (the manifest and a Procfile would
// disagree).
func writeProcfile(src, procfile string) error {
	root, err := os.OpenRoot(src)
	if err != nil {
		return err
	}
	defer root.Close()
	f, err := root.OpenFile("Procfile", os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return fmt.Errorf("cannot write the manifest's start commands as the Procfile: %v — remove the Procfile or the manifest's commands", err)
	}
	_, err = f.WriteString(procfile)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}
