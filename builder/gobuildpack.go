package builder

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"go/parser"
	"go/token"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strings"
	"time"
)

// GoBuildpack builds Go modules with the host toolchain. It detects a go.mod,
// builds the main package at the root (or the single ./cmd/<x>) into
// bin/<name> with CGO disabled and the build and module caches in the app's
// cache dir, and releases "web: ./bin/<name>".
type GoBuildpack struct {
	// GoRoot is the Go installation to use; empty means "go" on PATH.
	GoRoot string
}

var _ Buildpack = (*GoBuildpack)(nil)

// Name returns "go".
func (*GoBuildpack) Name() string { return "go" }

// LooksFor returns "go.mod".
func (*GoBuildpack) LooksFor() string { return "go.mod" }

// Detect reports whether the app has a go.mod at its root.
func (*GoBuildpack) Detect(_ context.Context, w *Workspace) (bool, error) {
	return exists(filepath.Join(w.SourceDir, "go.mod"))
}

// goTarget is what to build: a package path relative to the module root
// ("." or "./cmd/x") and the binary's name.
type goTarget struct {
	pkg  string
	name string
}

// Compile runs go build. A compiler failure is an *ExitError; an app without a
// main package is an *AppError.
func (b *GoBuildpack) Compile(ctx context.Context, w *Workspace) error {
	target, err := findGoTarget(w.SourceDir)
	if err != nil {
		return err
	}
	goBin, err := b.goBinary()
	if err != nil {
		return err
	}
	env, err := goEnv(w)
	if err != nil {
		return err
	}
	if w.GoSeedCache != "" && w.SharedCacheDir == "" {
		seedGoCache(ctx, w, goBin, env, target.pkg)
	}
	fmt.Fprintf(w.Out, "-----> Building %s with %s\n", target.pkg, goBin)
	out := "./" + path.Join("bin", target.name)
	return Command(ctx, w, w.SourceDir, env, goBin, "build", "-trimpath", "-buildvcs=false", "-o", out, target.pkg)
}

// Release returns "web: ./bin/<name>".
func (*GoBuildpack) Release(_ context.Context, w *Workspace) (*ReleaseInfo, error) {
	target, err := findGoTarget(w.SourceDir)
	if err != nil {
		return nil, err
	}
	return &ReleaseInfo{Processes: map[string]string{"web": "./bin/" + target.name}}, nil
}

func (b *GoBuildpack) goBinary() (string, error) {
	if b.GoRoot != "" {
		p := filepath.Join(b.GoRoot, "bin", "go")
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("go buildpack: no go toolchain at %s: %w", p, err)
		}
		return p, nil
	}
	p, err := exec.LookPath("go")
	if err != nil {
		return "", fmt.Errorf("go buildpack: no go toolchain on PATH — install Go or set the builder's GoRoot: %w", err)
	}
	return p, nil
}

// goEnv is the base environment with Go's settings forced: no cgo, the local
// toolchain only, caches and HOME inside the app's cache dir.
func goEnv(w *Workspace) ([]string, error) {
	gopath := filepath.Join(w.CacheDir, "go")
	home := filepath.Join(w.CacheDir, "home")
	for _, d := range []string{gopath, home} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, fmt.Errorf("go buildpack: %w", err)
		}
	}
	mod := "-mod=mod"
	if fi, err := os.Stat(filepath.Join(w.SourceDir, "vendor")); err == nil && fi.IsDir() {
		mod = "-mod=vendor"
	}
	gocache, modcache := filepath.Join(w.CacheDir, "gocache"), filepath.Join(gopath, "pkg", "mod")
	if w.SharedCacheDir != "" {
		gocache, modcache = filepath.Join(w.SharedCacheDir, "go-build"), filepath.Join(w.SharedCacheDir, "go-mod")
	}
	forced := map[string]string{
		"CGO_ENABLED": "0",
		"GOTOOLCHAIN": "local",
		"GOFLAGS":     mod,
		"GOPATH":      gopath,
		"GOCACHE":     gocache,
		"GOMODCACHE":  modcache,
		"HOME":        home,
		"GOENV":       "off",
	}
	env := make([]string, 0, len(w.Env)+len(forced))
	for _, kv := range w.Env {
		k, _, _ := strings.Cut(kv, "=")
		if _, ok := forced[k]; !ok {
			env = append(env, kv)
		}
	}
	for k, v := range forced {
		env = append(env, k+"="+v)
	}
	return env, nil
}

// findGoTarget picks the main package to build: the module root if it is
// one, else the single main package under cmd/.
func findGoTarget(dir string) (goTarget, error) {
	if isMainPackage(dir) {
		return goTarget{pkg: ".", name: binaryName(modulePath(dir))}, nil
	}
	var mains []string
	ents, _ := os.ReadDir(filepath.Join(dir, "cmd"))
	for _, e := range ents {
		if e.IsDir() && isMainPackage(filepath.Join(dir, "cmd", e.Name())) {
			mains = append(mains, e.Name())
		}
	}
	switch len(mains) {
	case 1:
		return goTarget{pkg: "./cmd/" + mains[0], name: binaryName(mains[0])}, nil
	case 0:
		return goTarget{}, appErrorf("no main package at the module root or in cmd/<name> — add a main.go with package main")
	default:
		return goTarget{}, appErrorf("several main packages under cmd/ (%s) — keep one, or put the one to run at the module root", strings.Join(mains, ", "))
	}
}

// isMainPackage reports whether dir holds a non-test Go file of package main.
func isMainPackage(dir string) bool {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return false
	}
	fset := token.NewFileSet()
	for _, e := range ents {
		n := e.Name()
		if !e.Type().IsRegular() || !strings.HasSuffix(n, ".go") || strings.HasSuffix(n, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, filepath.Join(dir, n), nil, parser.PackageClauseOnly)
		if err == nil && f.Name.Name == "main" {
			return true
		}
	}
	return false
}

// modulePath returns the module path declared in dir/go.mod, or "".
func modulePath(dir string) string {
	data, err := os.ReadFile(filepath.Join(dir, "go.mod"))
	if err != nil {
		return ""
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) >= 2 && f[0] == "module" {
			return strings.Trim(f[1], `"`)
		}
	}
	return ""
}

// binaryName turns a module path or directory name into a safe file name.
func binaryName(s string) string {
	base := path.Base(s)
	if len(base) > 1 && base[0] == 'v' && strings.Trim(base[1:], "0123456789") == "" && path.Dir(s) != "." {
		base = path.Base(path.Dir(s)) // example.com/app/v2 → app, as go build does
	}
	s = base
	var b strings.Builder
	for _, r := range s {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.' {
			b.WriteRune(r)
		}
	}
	name := strings.Trim(b.String(), ".")
	if name == "" {
		return "app"
	}
	return name
}

// maxSeedPackages bounds the standard packages one build asks to seed.
const maxSeedPackages = 2000

// seedGoCache fills an app's empty Go build cache from w.GoSeedCache, a
// cache only the builder writes (see Workspace.GoSeedCache): the app's
// standard-library dependencies are listed by a go list run like the build
// (through w's Runner), compiled into the seed by the builder itself from
// GOROOT alone — with an environment of its own, none of the app's — and
// the seed is copied into the app's cache. Failures only cost speed: they
// are reported and the build goes on.
func seedGoCache(ctx context.Context, w *Workspace, goBin string, env []string, pkg string) {
	appCache := filepath.Join(w.CacheDir, "gocache")
	if ents, err := os.ReadDir(appCache); err == nil && len(ents) > 0 {
		return // warm already
	}
	list := &limitedBuffer{max: 1 << 20}
	err := w.run(ctx, &Cmd{Dir: w.SourceDir, Env: env, Argv: []string{goBin, "list", "-deps", "-f", "{{if .Standard}}{{.ImportPath}}{{end}}", pkg}, Stdout: list, Stderr: io.Discard})
	if err != nil || list.over {
		return // the build itself will say what is wrong
	}
	real, err := filepath.EvalSymlinks(goBin)
	if err != nil {
		return
	}
	goroot := filepath.Dir(filepath.Dir(real))
	var pkgs []string
	for _, p := range strings.Split(list.buf.String(), "\n") {
		if p == "" || len(pkgs) >= maxSeedPackages || !stdPackagePath(p) || !isDir(filepath.Join(goroot, "src", filepath.FromSlash(p))) {
			continue
		}
		pkgs = append(pkgs, p)
	}
	if len(pkgs) == 0 {
		return
	}
	seed := w.GoSeedCache
	work := filepath.Join(seed, "work")
	for _, d := range []string{filepath.Join(seed, "gocache"), work} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return
		}
	}
	if err := os.WriteFile(filepath.Join(work, "go.mod"), []byte("module strata-seed\n"), 0o600); err != nil {
		return
	}
	now := time.Now()
	_ = os.Chtimes(seed, now, now)
	trusted := []string{
		"PATH=" + filepath.Join(goroot, "bin") + ":/usr/bin:/bin", "HOME=" + work, "GOROOT=" + goroot,
		"GOCACHE=" + filepath.Join(seed, "gocache"), "GOPATH=" + filepath.Join(seed, "gopath"),
		"CGO_ENABLED=0", "GOTOOLCHAIN=local", "GOFLAGS=-mod=mod", "GOENV=off", "GOPROXY=off", "GOWORK=off",
	}
	fmt.Fprintf(w.Out, "-----> Compiling %d standard packages into the builder's seed cache\n", len(pkgs))
	args := append([]string{"build", "-trimpath"}, pkgs...)
	if err := (HostRunner{}).Run(ctx, &Cmd{Dir: work, Env: trusted, Argv: append([]string{goBin}, args...), Stdout: io.Discard, Stderr: io.Discard}); err != nil {
		fmt.Fprintf(w.Out, "       (seeding skipped: %v)\n", err)
		return
	}
	if err := copyTree(filepath.Join(seed, "gocache"), appCache, true); err != nil {
		fmt.Fprintf(w.Out, "       (seeding skipped: %v)\n", err)
	}
}

// stdPackagePath reports whether p looks like a standard library import
// path: lowercase letters, digits, '/', '.', '_' and '-', no leading '-' or
// '/', no "..", not under cmd/.
func stdPackagePath(p string) bool {
	if p == "" || len(p) > 200 || p[0] == '-' || p[0] == '/' || p[0] == '.' || strings.Contains(p, "..") || p == "cmd" || strings.HasPrefix(p, "cmd/") {
		return false
	}
	for i := 0; i < len(p); i++ {
		c := p[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '/' || c == '.' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}
