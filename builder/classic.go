package builder

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"gopkg.in/yaml.v3"
)

// Limits on what classic buildpack scripts print.
const (
	MaxReleaseOutput = 64 << 10 // bin/release's YAML
	MaxExportEnv     = 1 << 20  // the environment after sourcing an export file
	maxDetectOutput  = 4 << 10
)

// ClassicBuildpack runs a buildpack of the classic Heroku / Cloud Foundry
// contract from a directory (see docs/buildpacks.md):
//
//   - bin/detect BUILD_DIR exits 0 when it applies (it may print a name);
//   - bin/compile BUILD_DIR CACHE_DIR ENV_DIR builds the app in place, its
//     output streamed to the user; ENV_DIR holds one file per config var;
//     a non-zero exit fails the build;
//   - bin/release BUILD_DIR prints YAML whose default_process_types are the
//     app's process types unless its Procfile names them;
//   - an "export" file the compile step writes at the root of the
//     buildpack is sourced into the environment of every later step, so
//     the buildpacks after it see what it exported;
//   - .profile.d/*.sh scripts it leaves in the app run at instance start.
//
// Each build runs a private copy of the directory (the copy is where the
// export file goes), through the workspace's Runner.
type ClassicBuildpack struct {
	name string
	dir  string
}

var _ Buildpack = (*ClassicBuildpack)(nil)

// NewClassic returns the classic buildpack name in dir, which must hold an
// executable bin/detect and bin/compile (bin/release is optional). Names are
// 1–63 characters of a–z, 0–9, '.', '_' and '-' and may not begin with '.'.
func NewClassic(name, dir string) (*ClassicBuildpack, error) {
	if !ValidBuildpackName(name) {
		return nil, fmt.Errorf("buildpack name %q may only contain a-z, 0-9, '.', '_' and '-' (at most 63, not starting with '.')", truncate(name, 40))
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	for _, s := range []string{"detect", "compile"} {
		if !isExecutable(filepath.Join(abs, "bin", s)) {
			return nil, fmt.Errorf("buildpack %s has no executable bin/%s in %s", name, s, abs)
		}
	}
	return &ClassicBuildpack{name: name, dir: abs}, nil
}

// LoadClassic returns the classic buildpacks in the subdirectories of root,
// each named by its directory, in name order. A subdirectory that is not a
// valid buildpack is an error naming it.
func LoadClassic(root string) ([]*ClassicBuildpack, error) {
	ents, err := os.ReadDir(root)
	if err != nil {
		return nil, fmt.Errorf("buildpacks: %w", err)
	}
	var out []*ClassicBuildpack
	for _, e := range ents {
		if !e.IsDir() || strings.HasPrefix(e.Name(), ".") {
			continue
		}
		bp, err := NewClassic(e.Name(), filepath.Join(root, e.Name()))
		if err != nil {
			return nil, err
		}
		out = append(out, bp)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].name < out[j].name })
	return out, nil
}

// ValidBuildpackName reports whether s can name a buildpack.
func ValidBuildpackName(s string) bool {
	if s == "" || len(s) > 63 || s[0] == '.' {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_' || c == '-' || c == '.') {
			return false
		}
	}
	return true
}

// Name returns the buildpack's name.
func (b *ClassicBuildpack) Name() string { return b.name }

// Dir returns the buildpack's directory.
func (b *ClassicBuildpack) Dir() string { return b.dir }

// LooksFor says that its bin/detect decides.
func (*ClassicBuildpack) LooksFor() string { return "its bin/detect" }

// copyIn returns the workspace's private copy of the buildpack, making it.
func (b *ClassicBuildpack) copyIn(w *Workspace) (string, error) {
	if p, ok := w.classic[b.name]; ok {
		return p, nil
	}
	scratch, err := w.scratch()
	if err != nil {
		return "", err
	}
	p := filepath.Join(scratch, "buildpacks", b.name)
	if err := os.RemoveAll(p); err != nil {
		return "", err
	}
	if err := copyTree(b.dir, p, false); err != nil {
		return "", fmt.Errorf("buildpack %s: copy: %w", b.name, err)
	}
	if w.classic == nil {
		w.classic = map[string]string{}
	}
	w.classic[b.name] = p
	return p, nil
}

// limitedBuffer keeps the first max bytes written and counts the rest.
type limitedBuffer struct {
	max  int
	buf  bytes.Buffer
	over bool
}

func (l *limitedBuffer) Write(p []byte) (int, error) {
	if room := l.max - l.buf.Len(); room < len(p) {
		l.over = true
		if room > 0 {
			l.buf.Write(p[:room])
		}
		return len(p), nil
	}
	return l.buf.Write(p)
}

// Detect runs bin/detect BUILD_DIR: exit 0 detects, any other exit does not.
func (b *ClassicBuildpack) Detect(ctx context.Context, w *Workspace) (bool, error) {
	dir, err := b.copyIn(w)
	if err != nil {
		return false, err
	}
	out := &limitedBuffer{max: maxDetectOutput}
	err = w.run(ctx, &Cmd{Dir: w.SourceDir, Env: w.Env, Argv: []string{filepath.Join(dir, "bin", "detect"), w.SourceDir}, Stdout: out, Stderr: io.Discard})
	var ee *ExitError
	if errors.As(err, &ee) {
		return false, nil
	}
	return err == nil, err
}

// Compile writes ENV_DIR, runs bin/compile BUILD_DIR CACHE_DIR ENV_DIR and
// then sources the export file the compile step left, if any, into w.Env.
// A non-zero exit of bin/compile is an *ExitError.
func (b *ClassicBuildpack) Compile(ctx context.Context, w *Workspace) error {
	dir, err := b.copyIn(w)
	if err != nil {
		return err
	}
	envDir, err := writeEnvDir(w)
	if err != nil {
		return fmt.Errorf("buildpack %s: %w", b.name, err)
	}
	if err := os.MkdirAll(w.CacheDir, 0o755); err != nil {
		return err
	}
	err = w.run(ctx, &Cmd{Dir: w.SourceDir, Env: w.Env, Argv: []string{filepath.Join(dir, "bin", "compile"), w.SourceDir, w.CacheDir, envDir}, Stdout: w.Out, Stderr: w.Out})
	var ee *ExitError
	if errors.As(err, &ee) {
		return &ExitError{Cmd: b.name + "/bin/compile", Code: ee.Code}
	}
	if err != nil {
		return err
	}
	return b.sourceExport(ctx, w, dir)
}

// sourceExport replaces w.Env by the environment after sourcing the
// buildpack's export file in a shell started with w.Env.
func (b *ClassicBuildpack) sourceExport(ctx context.Context, w *Workspace, dir string) error {
	export := filepath.Join(dir, "export")
	fi, err := os.Lstat(export)
	if err != nil || !fi.Mode().IsRegular() {
		return nil
	}
	out := &limitedBuffer{max: MaxExportEnv}
	err = w.run(ctx, &Cmd{Dir: w.SourceDir, Env: w.Env, Argv: []string{"/bin/sh", "-c", `set -a; . "$1" >&2; exec env -0`, "sh", export}, Stdout: out, Stderr: w.Out})
	var ee *ExitError
	if errors.As(err, &ee) {
		return appErrorf("the export file of buildpack %s failed in sh (exit %d) — fix the buildpack's export lines", b.name, ee.Code)
	}
	if err != nil {
		return err
	}
	if out.over {
		return appErrorf("the export file of buildpack %s makes an environment larger than %d bytes", b.name, MaxExportEnv)
	}
	var env []string
	for _, kv := range strings.Split(out.buf.String(), "\x00") {
		k, _, ok := strings.Cut(kv, "=")
		if !ok || k == "" || k == "PWD" || k == "OLDPWD" || k == "SHLVL" || k == "_" {
			continue
		}
		env = append(env, kv)
	}
	w.Env = env
	fmt.Fprintf(w.Out, "-----> Sourced the export file of %s\n", b.name)
	return nil
}

// writeEnvDir writes w.AppEnv to the workspace's ENV_DIR, one file per
// variable named like it. Names that cannot be file names are skipped.
func writeEnvDir(w *Workspace) (string, error) {
	scratch, err := w.scratch()
	if err != nil {
		return "", err
	}
	d := filepath.Join(scratch, "env")
	if err := os.RemoveAll(d); err != nil {
		return "", err
	}
	if err := os.MkdirAll(d, 0o700); err != nil {
		return "", err
	}
	for k, v := range w.AppEnv {
		if k == "" || k == "." || k == ".." || strings.ContainsAny(k, "/\x00") {
			continue
		}
		if err := os.WriteFile(filepath.Join(d, k), []byte(v), 0o600); err != nil {
			return "", err
		}
	}
	return d, nil
}

// Release runs bin/release BUILD_DIR when the buildpack has one and returns
// its default_process_types.
func (b *ClassicBuildpack) Release(ctx context.Context, w *Workspace) (*ReleaseInfo, error) {
	dir, err := b.copyIn(w)
	if err != nil {
		return nil, err
	}
	rel := filepath.Join(dir, "bin", "release")
	if !isExecutable(rel) {
		return &ReleaseInfo{}, nil
	}
	out := &limitedBuffer{max: MaxReleaseOutput}
	err = w.run(ctx, &Cmd{Dir: w.SourceDir, Env: w.Env, Argv: []string{rel, w.SourceDir}, Stdout: out, Stderr: w.Out})
	var ee *ExitError
	if errors.As(err, &ee) {
		return nil, &ExitError{Cmd: b.name + "/bin/release", Code: ee.Code}
	}
	if err != nil {
		return nil, err
	}
	if out.over {
		return nil, appErrorf("bin/release of buildpack %s printed more than %d bytes", b.name, MaxReleaseOutput)
	}
	procs, err := ParseRelease(out.buf.Bytes())
	if err != nil {
		var ae *AppError
		if errors.As(err, &ae) {
			return nil, appErrorf("bin/release of buildpack %s: %s", b.name, ae.Message)
		}
		return nil, err
	}
	return &ReleaseInfo{Processes: procs}, nil
}

// ParseRelease reads the default_process_types of bin/release output: YAML
// with a mapping of process type to command; other keys (addons,
// config_vars) are ignored. Types and commands follow the Procfile rules;
// aliases are refused. Anything else is an *AppError.
func ParseRelease(data []byte) (map[string]string, error) {
	if len(data) > MaxReleaseOutput {
		return nil, appErrorf("output is larger than %d bytes", MaxReleaseOutput)
	}
	procs := map[string]string{}
	if len(bytes.TrimSpace(data)) == 0 {
		return procs, nil
	}
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return nil, appErrorf("output is not YAML: %s", truncate(err.Error(), 120))
	}
	if root.Kind != yaml.DocumentNode || len(root.Content) == 0 {
		return procs, nil
	}
	doc := root.Content[0]
	if doc.Kind != yaml.MappingNode {
		return nil, appErrorf("output is not a YAML mapping")
	}
	for i := 0; i+1 < len(doc.Content); i += 2 {
		if doc.Content[i].Value != "default_process_types" {
			continue
		}
		m := doc.Content[i+1]
		if m.Kind == yaml.ScalarNode && (m.Tag == "!!null" || m.Value == "") {
			return procs, nil
		}
		if m.Kind != yaml.MappingNode {
			return nil, appErrorf("default_process_types is not a mapping of process type to command")
		}
		for j := 0; j+1 < len(m.Content); j += 2 {
			k, v := m.Content[j], m.Content[j+1]
			if k.Kind != yaml.ScalarNode || v.Kind != yaml.ScalarNode {
				return nil, appErrorf("default_process_types must map names to commands (no lists, maps or aliases)")
			}
			if !validProcessType(k.Value) {
				return nil, appErrorf("process type %q may only contain a-z, 0-9, '_' and '-' (at most 63)", truncate(k.Value, 40))
			}
			cmd := strings.TrimSpace(v.Value)
			if err := validCommand(k.Value, cmd); err != nil {
				return nil, err
			}
			if _, dup := procs[k.Value]; dup {
				return nil, appErrorf("process type %q is defined twice", k.Value)
			}
			procs[k.Value] = cmd
		}
	}
	return procs, nil
}
