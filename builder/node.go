package builder

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"
)

// Paths of the nodejs buildpack inside the app dir.
const (
	NodeRuntimeDir = ".strata/node" // bin/node, bin/npm, lib/node_modules/npm
	NodeCacheDir   = ".npm-cache"   // a committed npm cache (npm install --cache .npm-cache)
)

// MaxPackageJSONSize bounds the package.json read from an app.
const MaxPackageJSONSize = 1 << 20

// PackageJSON is what the nodejs buildpack reads from package.json.
type PackageJSON struct {
	Name            string
	EnginesNode     string            // engines.node, "" when absent
	Scripts         map[string]string // scripts with string values
	Dependencies    int               // number of dependencies
	DevDependencies int               // number of devDependencies
}

// ParsePackageJSON parses package.json. Malformed JSON, a non-object
// document, or engines.node or a script that is not a string is an *AppError
// saying which.
func ParsePackageJSON(data []byte) (*PackageJSON, error) {
	if len(data) > MaxPackageJSONSize {
		return nil, appErrorf("package.json is larger than %d bytes", MaxPackageJSONSize)
	}
	data = bytes.TrimPrefix(data, []byte("\xef\xbb\xbf"))
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(data, &raw); err != nil || raw == nil {
		msg := "not a JSON object"
		if err != nil {
			msg = err.Error()
		}
		return nil, appErrorf("package.json is not valid: %s — fix it (npm pkg get runs on it locally)", truncate(msg, 120))
	}
	p := &PackageJSON{Scripts: map[string]string{}}
	if v, ok := raw["name"]; ok {
		p.Name, _ = jsonString(v)
	}
	if v, ok := raw["engines"]; ok && string(v) != "null" {
		var engines map[string]json.RawMessage
		if err := json.Unmarshal(v, &engines); err != nil {
			return nil, appErrorf("package.json: engines must be an object like {\"node\": \">=18\"}")
		}
		if n, ok := engines["node"]; ok {
			s, ok := jsonString(n)
			if !ok {
				return nil, appErrorf("package.json: engines.node must be a string like \">=18\"")
			}
			p.EnginesNode = s
		}
	}
	if v, ok := raw["scripts"]; ok && string(v) != "null" {
		var scripts map[string]json.RawMessage
		if err := json.Unmarshal(v, &scripts); err != nil {
			return nil, appErrorf("package.json: scripts must be an object of strings")
		}
		for k, sv := range scripts {
			s, ok := jsonString(sv)
			if !ok {
				return nil, appErrorf("package.json: scripts.%s must be a string", truncate(k, 40))
			}
			p.Scripts[k] = s
		}
	}
	count := func(key string) (int, error) {
		v, ok := raw[key]
		if !ok || string(v) == "null" {
			return 0, nil
		}
		var m map[string]json.RawMessage
		if err := json.Unmarshal(v, &m); err != nil {
			return 0, appErrorf("package.json: %s must be an object", key)
		}
		return len(m), nil
	}
	var err error
	if p.Dependencies, err = count("dependencies"); err != nil {
		return nil, err
	}
	if p.DevDependencies, err = count("devDependencies"); err != nil {
		return nil, err
	}
	return p, nil
}

// NodeBuildpack builds Node.js apps offline with the builder's node and npm,
// which it copies into the droplet (see docs/buildpacks.md): it detects a
// package.json, checks engines.node against that node, uses a committed
// node_modules as it is or runs npm ci --offline from a committed
// .npm-cache, runs scripts.build, and releases "web: npm start".
type NodeBuildpack struct {
	// Node is the node binary; empty means "node" on the builder's PATH.
	// npm must be at <node's dir>/../lib/node_modules/npm, as Node.js
	// distributions and Debian's packages lay it out.
	Node string

	mu      sync.Mutex
	version Version // of Node, once known
	known   bool
}

var _ Buildpack = (*NodeBuildpack)(nil)

// Name returns "nodejs".
func (*NodeBuildpack) Name() string { return "nodejs" }

// LooksFor returns "package.json".
func (*NodeBuildpack) LooksFor() string { return "package.json" }

// Detect reports whether the app has a package.json at its root.
func (*NodeBuildpack) Detect(_ context.Context, w *Workspace) (bool, error) {
	return exists(filepath.Join(w.SourceDir, "package.json"))
}

// runtime returns the node binary (resolved), the npm package dir and the
// node version.
func (b *NodeBuildpack) runtime(ctx context.Context) (node, npmDir string, v Version, err error) {
	node = b.Node
	if node == "" {
		if node, err = exec.LookPath("node"); err != nil {
			return "", "", v, fmt.Errorf("nodejs buildpack: no node on the builder's PATH — install Node.js on the builder: %w", err)
		}
	}
	if node, err = filepath.EvalSymlinks(node); err != nil {
		return "", "", v, fmt.Errorf("nodejs buildpack: %w", err)
	}
	npmDir = filepath.Join(filepath.Dir(filepath.Dir(node)), "lib", "node_modules", "npm")
	if !fileExists(filepath.Join(npmDir, "bin", "npm-cli.js")) {
		return "", "", v, fmt.Errorf("nodejs buildpack: no npm at %s — install npm beside %s", npmDir, node)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.known {
		return node, npmDir, b.version, nil
	}
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(cctx, node, "--version").Output()
	if err != nil {
		return "", "", v, fmt.Errorf("nodejs buildpack: %s --version: %w", node, err)
	}
	if v, err = ParseVersion(string(out)); err != nil {
		return "", "", v, fmt.Errorf("nodejs buildpack: %s --version: %w", node, err)
	}
	b.version, b.known = v, true
	return node, npmDir, v, nil
}

func fileExists(p string) bool { ok, _ := exists(p); return ok }

func readPackageJSON(dir string) (*PackageJSON, error) {
	data, err := readAppFile(dir, "package.json", MaxPackageJSONSize)
	if err != nil {
		return nil, err
	}
	if data == nil {
		return nil, appErrorf("no package.json at the app's root")
	}
	return ParsePackageJSON(data)
}

// Compile installs the runtime into the app, checks engines.node, installs
// dependencies and runs scripts.build. A mismatching engines.node, missing
// dependencies or a failed npm step is an *AppError saying what to do.
func (b *NodeBuildpack) Compile(ctx context.Context, w *Workspace) error {
	pkg, err := readPackageJSON(w.SourceDir)
	if err != nil {
		return err
	}
	node, npmDir, v, err := b.runtime(ctx)
	if err != nil {
		return err
	}
	if pkg.EnginesNode != "" {
		r, err := ParseRange(pkg.EnginesNode)
		if err != nil {
			return appErrorf("package.json: engines.node %q is not a version range Strata understands (%v) — write it like \">=18\" or \"20.x\"", truncate(pkg.EnginesNode, 60), err)
		}
		if !r.Match(v) {
			return appErrorf("package.json asks for node %q but this builder has node %s — change engines.node to a range that includes %s (e.g. \">=%d\")", truncate(pkg.EnginesNode, 60), v, v, v[0])
		}
		fmt.Fprintf(w.Out, "-----> Using node %s (engines.node %q)\n", v, pkg.EnginesNode)
	} else {
		fmt.Fprintf(w.Out, "-----> Using node %s (set engines.node in package.json to pin a range)\n", v)
	}

	// Decide how dependencies come before copying the runtime, so an app
	// that cannot build fails at once.
	deps := pkg.Dependencies + pkg.DevDependencies
	install := ""
	switch {
	case isDir(filepath.Join(w.SourceDir, "node_modules")):
		fmt.Fprintf(w.Out, "-----> Using the committed node_modules as it is\n")
	case deps == 0:
		fmt.Fprintf(w.Out, "-----> No dependencies to install\n")
	case isDir(filepath.Join(w.SourceDir, NodeCacheDir)):
		if ok, _ := exists(filepath.Join(w.SourceDir, "package-lock.json")); !ok {
			return appErrorf("npm ci needs a package-lock.json — run npm install --cache %s and commit package-lock.json with %s", NodeCacheDir, NodeCacheDir)
		}
		install = "ci"
	default:
		return appErrorf("package.json has %d dependencies but the app has neither node_modules nor %s, and builds cannot reach the npm registry — commit node_modules, or run npm install --cache %s and commit %s with package-lock.json", deps, NodeCacheDir, NodeCacheDir, NodeCacheDir)
	}

	rt := filepath.Join(w.SourceDir, filepath.FromSlash(NodeRuntimeDir))
	if err := os.RemoveAll(rt); err != nil {
		return fmt.Errorf("nodejs buildpack: %w", err)
	}
	if err := installNode(node, npmDir, rt); err != nil {
		return fmt.Errorf("nodejs buildpack: install the runtime: %w", err)
	}
	env, err := nodeEnv(w, rt)
	if err != nil {
		return err
	}
	npm := filepath.Join(rt, "bin", "npm")
	if install == "ci" {
		// The per-app cache keeps what earlier builds installed; npm's
		// cache is content-addressed, so merging the committed one in is
		// safe.
		cache := filepath.Join(w.CacheDir, "npm")
		if err := copyTree(filepath.Join(w.SourceDir, NodeCacheDir), cache, true); err != nil {
			return appErrorf("cannot use the committed %s: %v", NodeCacheDir, err)
		}
		fmt.Fprintf(w.Out, "-----> Installing %d dependencies with npm ci --offline from %s\n", deps, NodeCacheDir)
		err := Command(ctx, w, w.SourceDir, env, npm, "ci", "--offline", "--include=dev", "--cache", cache)
		var ee *ExitError
		if errors.As(err, &ee) {
			return appErrorf("npm ci --offline failed (exit %d): %s lacks a package that package-lock.json needs — run npm install --cache %s again and commit both", ee.Code, NodeCacheDir, NodeCacheDir)
		}
		if err != nil {
			return err
		}
	}

	if _, ok := pkg.Scripts["build"]; ok {
		fmt.Fprintf(w.Out, "-----> Running npm run build\n")
		if err := Command(ctx, w, w.SourceDir, env, npm, "run", "build"); err != nil {
			var ee *ExitError
			if errors.As(err, &ee) {
				return appErrorf("npm run build failed (exit %d) — see the output above", ee.Code)
			}
			return err
		}
	}
	return writeProfile(w.SourceDir, "strata-nodejs.sh", `# Written by Strata's nodejs buildpack: the droplet's node and npm come first.
export PATH="$PWD/`+NodeRuntimeDir+`/bin:$PWD/node_modules/.bin:$PATH"
export NODE_ENV="${NODE_ENV:-production}"
`)
}

// installNode copies node and npm into rt, with sh wrappers for npm and npx.
func installNode(node, npmDir, rt string) error {
	bin := filepath.Join(rt, "bin")
	if err := os.MkdirAll(bin, 0o755); err != nil {
		return err
	}
	if err := copyFile(node, filepath.Join(bin, "node"), 0o755); err != nil {
		return err
	}
	if err := copyTree(npmDir, filepath.Join(rt, "lib", "node_modules", "npm"), false); err != nil {
		return err
	}
	for _, tool := range []string{"npm", "npx"} {
		script := "#!/bin/sh\nd=$(dirname -- \"$0\")\nexec \"$d/node\" \"$d/../lib/node_modules/npm/bin/" + tool + "-cli.js\" \"$@\"\n"
		if err := os.WriteFile(filepath.Join(bin, tool), []byte(script), 0o755); err != nil {
			return err
		}
	}
	return nil
}

// nodeEnv is the build environment of npm: the droplet's runtime first on
// PATH, npm's home and cache in the app's cache dir, no network chatter.
func nodeEnv(w *Workspace, rt string) ([]string, error) {
	home := filepath.Join(w.CacheDir, "home")
	if err := os.MkdirAll(home, 0o755); err != nil {
		return nil, fmt.Errorf("nodejs buildpack: %w", err)
	}
	path := filepath.Join(rt, "bin") + ":" + filepath.Join(w.SourceDir, "node_modules", ".bin")
	forced := map[string]string{
		"HOME":                       home,
		"NODE_ENV":                   "production",
		"npm_config_cache":           filepath.Join(w.CacheDir, "npm"),
		"npm_config_update_notifier": "false",
		"npm_config_fund":            "false",
		"npm_config_audit":           "false",
		"npm_config_offline":         "true",
	}
	return withEnv(w.Env, forced, path), nil
}

// withEnv returns base with forced set (replacing earlier values) and
// prependPath, when not empty, put in front of PATH.
func withEnv(base []string, forced map[string]string, prependPath string) []string {
	env := make([]string, 0, len(base)+len(forced)+1)
	path := ""
	for _, kv := range base {
		k, v, _ := strings.Cut(kv, "=")
		if k == "PATH" {
			path = v
			continue
		}
		if _, ok := forced[k]; !ok {
			env = append(env, kv)
		}
	}
	keys := make([]string, 0, len(forced))
	for k := range forced {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		env = append(env, k+"="+forced[k])
	}
	if prependPath != "" {
		if path != "" {
			path = prependPath + ":" + path
		} else {
			path = prependPath
		}
	}
	if path != "" {
		env = append(env, "PATH="+path)
	}
	return env
}

// Release returns "web: npm start" when package.json has scripts.start or
// the app has a server.js (npm start's default). Without either, and
// without a Procfile web line, it is an *AppError.
func (*NodeBuildpack) Release(_ context.Context, w *Workspace) (*ReleaseInfo, error) {
	pkg, err := readPackageJSON(w.SourceDir)
	if err != nil {
		return nil, err
	}
	_, start := pkg.Scripts["start"]
	if !start {
		start, _ = exists(filepath.Join(w.SourceDir, "server.js"))
	}
	if start {
		return &ReleaseInfo{Processes: map[string]string{"web": "npm start"}}, nil
	}
	procs, err := ReadProcfile(w.SourceDir)
	if err != nil {
		return nil, err
	}
	if _, ok := procs["web"]; ok {
		return &ReleaseInfo{}, nil
	}
	return nil, appErrorf("package.json has no scripts.start and there is no server.js — add \"start\": \"node index.js\" to scripts, or a Procfile with a web: line")
}
