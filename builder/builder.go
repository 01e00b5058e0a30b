package builder

import (
	"context"
	"fmt"
	"io"
)

// Workspace is where one build happens.
type Workspace struct {
	SourceDir string // extracted source; becomes the droplet's app dir
	CacheDir  string // per-app, persistent across builds
	// SharedCacheDir is builder-wide and shared by every app's builds. Only
	// content-addressed caches that are safe to share go there: Go's build
	// cache (keyed by hashes of the compile inputs, safe for concurrent go
	// commands) and its module cache (verified against go.sum). Sharing them
	// makes the first build of a new app as fast as a rebuild of the
	// standard library parts it shares with other apps. Empty = per-app.
	SharedCacheDir string
	Env            []string  // base environment, e.g. PATH, GOPROXY
	Out            io.Writer // build output, streamed to the user
}

// ReleaseInfo is what a buildpack's release step returns.
type ReleaseInfo struct {
	Processes map[string]string // process type → start command
}

// Buildpack is the classic buildpack contract. Implementations are safe for
// concurrent use by several builds: all per-build state is in the Workspace.
type Buildpack interface {
	Name() string
	// Detect reports whether the buildpack can build the workspace.
	Detect(ctx context.Context, w *Workspace) (bool, error)
	// Compile builds the app in place. A failure caused by the app returns
	// *ExitError or *AppError; any other error is a platform failure.
	Compile(ctx context.Context, w *Workspace) error
	// Release returns the default process types.
	Release(ctx context.Context, w *Workspace) (*ReleaseInfo, error)
}

// ExitError is a build command that exited non-zero (Code is -1 when it was
// killed by a signal).
type ExitError struct {
	Cmd  string
	Code int
}

func (e *ExitError) Error() string { return fmt.Sprintf("%s: exit status %d", e.Cmd, e.Code) }

// AppError is a build that cannot succeed because of the app itself (no main
// package, a malformed Procfile). Message is lowercase, shown to the user and
// says what to fix.
type AppError struct {
	Message string
}

func (e *AppError) Error() string { return e.Message }

func appErrorf(format string, args ...any) *AppError {
	return &AppError{Message: fmt.Sprintf(format, args...)}
}

// Config configures the built-in buildpacks.
type Config struct {
	// GoRoot is the Go installation used by the go buildpack; empty means
	// the "go" found on PATH.
	GoRoot string
	// StaticServer is the path of the strata-static binary the static
	// buildpack copies into droplets.
	StaticServer string
}

// Default returns the built-in buildpacks in detection order: go, static,
// procfile.
func Default(cfg Config) []Buildpack {
	return []Buildpack{
		&GoBuildpack{GoRoot: cfg.GoRoot},
		&StaticBuildpack{Server: cfg.StaticServer},
		&ProcfileBuildpack{},
	}
}

// Detect returns the first buildpack of bps that detects w, or nil when none
// does.
func Detect(ctx context.Context, bps []Buildpack, w *Workspace) (Buildpack, error) {
	for _, bp := range bps {
		ok, err := bp.Detect(ctx, w)
		if err != nil {
			return nil, fmt.Errorf("detect %s: %w", bp.Name(), err)
		}
		if ok {
			return bp, nil
		}
	}
	return nil, nil
}

// Build runs bp's compile and release steps on w and returns the process
// types: the buildpack's defaults, overridden and extended by the app's
// Procfile when it has one. An app without any process type is an *AppError.
func Build(ctx context.Context, bp Buildpack, w *Workspace) (map[string]string, error) {
	if err := bp.Compile(ctx, w); err != nil {
		return nil, err
	}
	rel, err := bp.Release(ctx, w)
	if err != nil {
		return nil, err
	}
	procs := map[string]string{}
	if rel != nil {
		for k, v := range rel.Processes {
			procs[k] = v
		}
	}
	fromFile, err := ReadProcfile(w.SourceDir)
	if err != nil {
		return nil, err
	}
	for k, v := range fromFile {
		procs[k] = v
	}
	if len(procs) == 0 {
		return nil, appErrorf("no process types — add a Procfile with a line like \"web: ./my-server\"")
	}
	return procs, nil
}
