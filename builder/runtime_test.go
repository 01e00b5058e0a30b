package builder_test

import (
	"archive/zip"
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/strata-paas/strata/builder"
)

// requireTool returns the path of name, skipping the test when it is missing
// — except in CI (CI=true), where a missing tool fails the test.
func requireTool(t testing.TB, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s is required in CI: %v", name, err)
		}
		t.Skipf("%s not installed: %v", name, err)
	}
	return p
}

// python3 is the interpreter the python buildpack uses by default.
func python3(t testing.TB) string {
	t.Helper()
	if _, err := os.Stat("/usr/bin/python3"); err == nil {
		return "/usr/bin/python3"
	}
	return requireTool(t, "python3")
}

// sh runs script with sh -c in dir after sourcing the app's .profile.d, as
// an executor starts instances, with PATH reduced to /usr/bin:/bin and
// returns its output.
func sh(t *testing.T, dir, script string, env ...string) string {
	t.Helper()
	cmd := exec.Command("/bin/sh", "-c", `for f in .profile.d/*.sh; do [ -r "$f" ] && . "./$f"; done; `+script)
	cmd.Dir = dir
	cmd.Env = append([]string{"PATH=/usr/bin:/bin", "HOME=" + t.TempDir()}, env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", script, err, out)
	}
	return strings.TrimSpace(string(out))
}

func output(w *builder.Workspace) string { return w.Out.(*bytes.Buffer).String() }

func wantAppError(t *testing.T, err error, contains ...string) {
	t.Helper()
	var ae *builder.AppError
	if !errors.As(err, &ae) {
		t.Fatalf("got %v, want an *AppError", err)
	}
	for _, c := range contains {
		if !strings.Contains(ae.Message, c) {
			t.Fatalf("error %q does not mention %q", ae.Message, c)
		}
	}
}

func TestNodeBuildpack(t *testing.T) {
	requireTool(t, "node")
	requireTool(t, "npm")
	runBuildCases(t, &builder.NodeBuildpack{}, []buildCase{
		{
			name:  "no dependencies, start script, build script",
			files: map[string]string{"package.json": `{"engines":{"node":">=18"},"scripts":{"start":"node server.js","build":"node -e \"require('fs').writeFileSync('built.txt', process.env.NODE_ENV)\""}}`, "server.js": ""},
			check: func(t *testing.T, w *builder.Workspace, procs map[string]string) {
				if procs["web"] != "npm start" {
					t.Errorf("web = %q, want npm start", procs["web"])
				}
				if b, err := os.ReadFile(filepath.Join(w.SourceDir, "built.txt")); err != nil || string(b) != "production" {
					t.Errorf("scripts.build did not run with NODE_ENV=production: %q %v", b, err)
				}
				want := filepath.Join(w.SourceDir, ".strata", "node", "bin", "node")
				if got := sh(t, w.SourceDir, "command -v node"); got != want {
					t.Errorf("node at instance start is %q, want the droplet's %q", got, want)
				}
				if got := sh(t, w.SourceDir, "npm --version"); !strings.HasPrefix(got, "10.") && !strings.HasPrefix(got, "9.") {
					t.Errorf("npm in the droplet: %q", got)
				}
				if got := sh(t, w.SourceDir, "echo $NODE_ENV"); got != "production" {
					t.Errorf("NODE_ENV at start = %q", got)
				}
			},
		},
		{
			name:  "server.js without scripts",
			files: map[string]string{"package.json": `{"name":"x"}`, "server.js": ""},
			check: func(t *testing.T, _ *builder.Workspace, procs map[string]string) {
				if procs["web"] != "npm start" {
					t.Errorf("web = %q", procs["web"])
				}
			},
		},
		{
			name:  "Procfile wins",
			files: map[string]string{"package.json": `{}`, "index.js": "", "Procfile": "web: node index.js\n"},
			check: func(t *testing.T, _ *builder.Workspace, procs map[string]string) {
				if procs["web"] != "node index.js" {
					t.Errorf("web = %q", procs["web"])
				}
			},
		},
		{
			name:  "committed node_modules used as they are",
			files: map[string]string{"package.json": `{"dependencies":{"dep":"1.0.0"},"scripts":{"start":"node -e 1"}}`, "node_modules/dep/index.js": "module.exports = 42\n", "node_modules/dep/package.json": `{"name":"dep","version":"1.0.0"}`},
			check: func(t *testing.T, w *builder.Workspace, _ map[string]string) {
				if got := sh(t, w.SourceDir, `node -e 'console.log(require("dep"))'`); got != "42" {
					t.Errorf("require(dep) = %q", got)
				}
				if !strings.Contains(output(w), "committed node_modules") {
					t.Errorf("output does not say node_modules was used:\n%s", output(w))
				}
			},
		},
		{
			name:  "engines mismatch",
			files: map[string]string{"package.json": `{"engines":{"node":"<1"},"scripts":{"start":"x"}}`},
			err:   []string{`node "<1"`, "change engines.node"},
		},
		{
			name:  "engines not understood",
			files: map[string]string{"package.json": `{"engines":{"node":"lts/*"}}`},
			err:   []string{"engines.node", "not a version range"},
		},
		{
			name:  "dependencies without node_modules or cache",
			files: map[string]string{"package.json": `{"dependencies":{"left-pad":"^1.3.0"},"scripts":{"start":"x"}}`},
			err:   []string{"1 dependencies", "commit node_modules", ".npm-cache"},
		},
		{
			name:  "cache without lockfile",
			files: map[string]string{"package.json": `{"dependencies":{"left-pad":"^1.3.0"}}`, ".npm-cache/_cacache/index-v5/x": ""},
			err:   []string{"package-lock.json"},
		},
		{
			name:  "cache lacking a package",
			files: map[string]string{"package.json": `{"name":"a","version":"1.0.0","dependencies":{"left-pad":"1.3.0"}}`, ".npm-cache/README": "", "package-lock.json": leftPadLock},
			err:   []string{"npm ci --offline failed", "lacks a package"},
		},
		{
			name:  "no start command",
			files: map[string]string{"package.json": `{"name":"x"}`},
			err:   []string{"scripts.start", "Procfile"},
		},
		{
			name:  "failing build script",
			files: map[string]string{"package.json": `{"scripts":{"build":"exit 3","start":"x"}}`},
			err:   []string{"npm run build failed (exit 3)"},
		},
		{
			name:  "malformed package.json",
			files: map[string]string{"package.json": `{"scripts":`},
			err:   []string{"package.json is not valid"},
		},
	})
}

// buildCase is one build of a buildpack test table.
type buildCase struct {
	name   string
	files  map[string]string
	wheels []string // python packages to put in wheels/
	err    []string // wanted *AppError parts; nil = success
	check  func(t *testing.T, w *builder.Workspace, procs map[string]string)
}

func runBuildCases(t *testing.T, bp builder.Buildpack, cases []buildCase) {
	for _, tt := range cases {
		t.Run(tt.name, func(t *testing.T) {
			w := workspace(t, tt.files)
			for _, p := range tt.wheels {
				wheel(t, filepath.Join(w.SourceDir, "wheels"), p, "1.0")
			}
			procs, err := builder.Build(context.Background(), bp, w)
			if tt.err != nil {
				wantAppError(t, err, tt.err...)
				return
			}
			if err != nil {
				t.Fatalf("%v\n%s", err, output(w))
			}
			tt.check(t, w, procs)
		})
	}
}

const leftPadLock = `{
  "name": "a", "version": "1.0.0", "lockfileVersion": 3, "requires": true,
  "packages": {
    "": {"name": "a", "version": "1.0.0", "dependencies": {"left-pad": "1.3.0"}},
    "node_modules/left-pad": {
      "version": "1.3.0",
      "resolved": "https://registry.npmjs.org/left-pad/-/left-pad-1.3.0.tgz",
      "integrity": "sha512-XI5MPzVNApjAyhQzphX8BkmKsKUxD4LdyK24iZeQEuz7sOuU8YfvoePd3AbNa1LXmfYwbm3o8NVK4hQ/kfmG4w=="
    }
  }
}
`

// TestNodeBuildpackOfflineCache installs a dependency with npm ci --offline
// from a committed cache that npm itself filled from a local tarball.
func TestNodeBuildpackOfflineCache(t *testing.T) {
	requireTool(t, "node")
	npm := requireTool(t, "npm")
	// A package "greet" packed to a tarball, added to a fresh cache, then
	// installed into the app so package-lock.json records it.
	work := t.TempDir()
	pkgDir := filepath.Join(work, "greet")
	appDir := filepath.Join(work, "app")
	for d, files := range map[string]map[string]string{
		pkgDir: {"package.json": `{"name":"greet","version":"1.0.0","main":"index.js"}`, "index.js": `module.exports = "hi from greet"`},
		appDir: {"package.json": `{"name":"app","version":"1.0.0","scripts":{"start":"node -e 1"}}`},
	} {
		for n, c := range files {
			if err := os.MkdirAll(d, 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(d, n), []byte(c), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	run := func(dir string, args ...string) {
		t.Helper()
		cmd := exec.Command(npm, args...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "npm_config_audit=false", "npm_config_fund=false", "npm_config_update_notifier=false", "HOME="+work)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("npm %v: %v\n%s", args, err, out)
		}
	}
	run(pkgDir, "pack", "--pack-destination", work)
	run(appDir, "install", "--offline", "--cache", filepath.Join(appDir, ".npm-cache"), filepath.Join(work, "greet-1.0.0.tgz"))
	if err := os.RemoveAll(filepath.Join(appDir, "node_modules")); err != nil {
		t.Fatal(err)
	}
	files := map[string]string{}
	err := filepath.WalkDir(appDir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		rel, _ := filepath.Rel(appDir, p)
		files[filepath.ToSlash(rel)] = string(b)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	w := workspace(t, files)
	if _, err := builder.Build(context.Background(), &builder.NodeBuildpack{}, w); err != nil {
		t.Fatalf("%v\n%s", err, output(w))
	}
	if got := sh(t, w.SourceDir, `node -e 'console.log(require("greet"))'`); got != "hi from greet" {
		t.Fatalf("require(greet) = %q\n%s", got, output(w))
	}
	if !strings.Contains(output(w), "npm ci --offline") {
		t.Errorf("output does not say npm ci ran:\n%s", output(w))
	}
}

// wheel writes a pure-Python wheel of package name (with a console script
// "<name>-hello") into dir.
func wheel(t *testing.T, dir, name, version string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	f, err := os.Create(filepath.Join(dir, name+"-"+version+"-py3-none-any.whl"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zw := zip.NewWriter(f)
	info := name + "-" + version + ".dist-info/"
	files := map[string]string{
		name + "/__init__.py":     "GREETING = 'hi from " + name + "'\ndef main():\n    print(GREETING)\n",
		info + "METADATA":         "Metadata-Version: 2.1\nName: " + name + "\nVersion: " + version + "\n",
		info + "WHEEL":            "Wheel-Version: 1.0\nGenerator: strata-test\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
		info + "entry_points.txt": "[console_scripts]\n" + name + "-hello = " + name + ":main\n",
		info + "top_level.txt":    name + "\n",
	}
	record := ""
	for n, c := range files {
		w, err := zw.Create(n)
		if err != nil {
			t.Fatal(err)
		}
		w.Write([]byte(c))
		record += n + ",,\n"
	}
	w, _ := zw.Create(info + "RECORD")
	w.Write([]byte(record + info + "RECORD,,\n"))
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestPythonBuildpack(t *testing.T) {
	py := python3(t)
	runBuildCases(t, &builder.PythonBuildpack{Python: py}, []buildCase{
		{
			name:  "standard library app",
			files: map[string]string{"app.py": "print('hi')\n", "Procfile": "web: python app.py\n", "requirements.txt": "# nothing\n"},
			check: func(t *testing.T, w *builder.Workspace, procs map[string]string) {
				if procs["web"] != "python app.py" {
					t.Errorf("web = %q", procs["web"])
				}
				venvPy := filepath.Join(w.SourceDir, ".strata", "python", "bin", "python")
				if fi, err := os.Lstat(venvPy); err != nil || !fi.Mode().IsRegular() {
					t.Fatalf("the virtualenv's python is not a copied file: %v %v", fi, err)
				}
				if got := sh(t, w.SourceDir, "command -v python"); got != venvPy {
					t.Errorf("python at start = %q, want %q", got, venvPy)
				}
				if got := sh(t, w.SourceDir, "python app.py"); got != "hi" {
					t.Errorf("python app.py = %q", got)
				}
			},
		},
		{
			name:   "requirements from wheels, relocatable",
			files:  map[string]string{"requirements.txt": "greetpkg==1.0\n", "Procfile": "web: greetpkg-hello\n", ".python-version": "3\n"},
			wheels: []string{"greetpkg"},
			check: func(t *testing.T, w *builder.Workspace, _ map[string]string) {
				// The droplet is unpacked elsewhere than it was built.
				moved := filepath.Join(t.TempDir(), "app")
				if err := os.Rename(w.SourceDir, moved); err != nil {
					t.Fatal(err)
				}
				if got := sh(t, moved, "greetpkg-hello"); got != "hi from greetpkg" {
					t.Errorf("console script after moving the app = %q", got)
				}
				if got := sh(t, moved, `python -c 'import greetpkg; print(greetpkg.GREETING)'`); got != "hi from greetpkg" {
					t.Errorf("import = %q", got)
				}
			},
		},
		{
			name:  "requirements without wheels",
			files: map[string]string{"requirements.txt": "flask\n", "Procfile": "web: x\n"},
			err:   []string{"no wheels/ directory", "pip download"},
		},
		{
			name:   "requirement missing from wheels",
			files:  map[string]string{"requirements.txt": "greetpkg\nflask>=3\n", "Procfile": "web: x\n"},
			wheels: []string{"greetpkg"},
			err:    []string{"pip could not install requirements.txt from wheels/", "pip download"},
		},
		{
			name:  "no Procfile",
			files: map[string]string{"app.py": ""},
			err:   []string{"Procfile with a web: line"},
		},
		{
			name:  "python-version mismatch",
			files: map[string]string{".python-version": "3.1\n", "Procfile": "web: x\n"},
			err:   []string{"asks for Python 3.1", "this builder has Python 3."},
		},
		{
			name:  "pypy",
			files: map[string]string{".python-version": "pypy3.9-7.3.9\n", "Procfile": "web: x\n"},
			err:   []string{"CPython 3 only"},
		},
		{
			name:  "Pipfile only",
			files: map[string]string{"Pipfile": "[packages]\n", "Procfile": "web: x\n"},
			err:   []string{"not supported yet", "requirements.txt"},
		},
	})
}

func TestDetectNodeAndPython(t *testing.T) {
	bps := builder.Default(builder.Config{StaticServer: "/nonexistent"})
	for files, want := range map[string]string{
		"package.json":     "nodejs",
		"requirements.txt": "python",
		"pyproject.toml":   "python",
		".python-version":  "python",
		"Pipfile":          "python",
		"app.py":           "python",
		"manage.py":        "python",
		"go.mod":           "go",
	} {
		bp, err := builder.Detect(context.Background(), bps, workspace(t, map[string]string{files: "", "Procfile": "web: x"}))
		if err != nil || bp == nil || bp.Name() != want {
			t.Errorf("%s: detected %v (%v), want %s", files, bp, err, want)
		}
	}
}

func TestNoneDetectedListsBuildpacks(t *testing.T) {
	msg := builder.NoneDetected(builder.Default(builder.Config{}))
	for _, want := range []string{"go (go.mod)", "nodejs (package.json)", "python (requirements.txt, pyproject.toml", "static (index.html or Staticfile)", "procfile (Procfile)"} {
		if !strings.Contains(msg, want) {
			t.Errorf("%q lacks %q", msg, want)
		}
	}
}
