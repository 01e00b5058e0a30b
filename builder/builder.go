package builder

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
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
	// GoSeedCache, used when SharedCacheDir is empty (builds that must not
	// share writable caches), is a directory only the builder itself
	// writes: the go buildpack compiles the standard packages an app
	// imports into it, outside the build's confinement and from GOROOT
	// alone, and copies it into the app's empty Go build cache. New apps
	// then do not recompile the standard library. Empty = no seeding.
	GoSeedCache string
	Env         []string  // base environment, e.g. PATH, GOPROXY; buildpacks' export files extend it
	Out         io.Writer // build output, streamed to the user
	// ScratchDir is a private, writable directory of this build outside
	// the app (classic buildpacks are copied there, ENV_DIR is made there).
	// Empty: a directory under the system's temp dir.
	ScratchDir string
	// AppEnv is the app's config vars, given to classic buildpacks as
	// ENV_DIR. Built-in buildpacks do not read it.
	AppEnv map[string]string
	// Runner runs every build command; nil runs them as process groups of
	// the builder's user (HostRunner).
	Runner Runner

	classic map[string]string // classic buildpack name → its copy in ScratchDir
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

// LooksFor is an optional ability of a buildpack: what it detects, shown to
// the user when no buildpack detects an app ("package.json").
type LooksFor interface {
	LooksFor() string
}

// Config configures the built-in buildpacks.
type Config struct {
	// GoRoot is the Go installation used by the go buildpack; empty means
	// the "go" found on PATH.
	GoRoot string
	// StaticServer is the path of the strata-static binary the static
	// buildpack copies into droplets.
	StaticServer string
	// Node is the node binary the nodejs buildpack uses and copies into
	// droplets (with the npm beside it); empty means "node" on PATH.
	Node string
	// Python is the python3 interpreter the python buildpack makes
	// virtualenvs from; empty means /usr/bin/python3, else "python3" on
	// PATH.
	Python string
}

// Default returns the built-in buildpacks in detection order: go, nodejs,
// python, static, dockerfile, procfile.
func Default(cfg Config) []Buildpack {
	return []Buildpack{
		&GoBuildpack{GoRoot: cfg.GoRoot},
		&NodeBuildpack{Node: cfg.Node},
		&PythonBuildpack{Python: cfg.Python},
		&StaticBuildpack{Server: cfg.StaticServer},
		&DockerfileBuildpack{},
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

// NoneDetected is the message for an app no buildpack of bps detects: each
// buildpack tried, with what it looks for, and what to do.
func NoneDetected(bps []Buildpack) string {
	var tried []string
	for _, bp := range bps {
		s := bp.Name()
		if lf, ok := bp.(LooksFor); ok && lf.LooksFor() != "" {
			s += " (" + lf.LooksFor() + ")"
		}
		tried = append(tried, s)
	}
	return "no buildpack detected — tried " + strings.Join(tried, ", ") +
		"; add one of the files a buildpack looks for, e.g. a Procfile with \"web: <command>\""
}

// Build runs bp's compile and release steps on w and returns the process
// types: the buildpack's defaults, overridden and extended by the app's
// Procfile when it has one. An app without any process type is an *AppError.
func Build(ctx context.Context, bp Buildpack, w *Workspace) (map[string]string, error) {
	return BuildAll(ctx, []Buildpack{bp}, w)
}

// BuildAll runs the compile step of every buildpack of bps in order (each
// sees what the earlier ones left in the app and in w.Env), then the release
// step of the last one, and returns the process types as Build does.
func BuildAll(ctx context.Context, bps []Buildpack, w *Workspace) (map[string]string, error) {
	if len(bps) == 0 {
		return nil, errors.New("build: no buildpack")
	}
	for i, bp := range bps {
		if len(bps) > 1 {
			fmt.Fprintf(w.Out, "-----> Buildpack %d/%d: %s\n", i+1, len(bps), bp.Name())
		}
		if err := bp.Compile(ctx, w); err != nil {
			return nil, err
		}
	}
	rel, err := bps[len(bps)-1].Release(ctx, w)
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

// scratch returns the workspace's scratch dir, creating it.
func (w *Workspace) scratch() (string, error) {
	if w.ScratchDir == "" {
		d, err := os.MkdirTemp("", "strata-build-")
		if err != nil {
			return "", err
		}
		w.ScratchDir = d
	}
	return w.ScratchDir, os.MkdirAll(w.ScratchDir, 0o755)
}
