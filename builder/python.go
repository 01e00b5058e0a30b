package builder

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// Paths of the python buildpack inside the app dir.
const (
	PythonVenvDir = ".strata/python" // the virtualenv the app runs in
)

// PythonWheelDirs are the directories, in order, where the python buildpack
// looks for the app's wheels.
var PythonWheelDirs = []string{"wheels", "wheelhouse", "vendor/wheels"}

// pythonMarkers are the files the python buildpack detects.
var pythonMarkers = []string{"requirements.txt", "pyproject.toml", "setup.py", "Pipfile", ".python-version",
	"app.py", "main.py", "manage.py", "wsgi.py"}

// MaxPythonVersionSize bounds the .python-version read from an app.
const MaxPythonVersionSize = 4 << 10

// PythonVersionRequest is what a .python-version asks for: Major.Minor
// (Minor -1 when only the major was given), or Any for "system".
type PythonVersionRequest struct {
	Major, Minor, Patch int // Patch -1 when not given
	Any                 bool
}

// ParsePythonVersion parses a .python-version (pyenv's format): the first
// line that is not blank or a comment names the version, "3", "3.11",
// "3.11.7" or "system"; a "python-" prefix is allowed. Other interpreters
// (pypy…) and anything else are an *AppError.
func ParsePythonVersion(data []byte) (PythonVersionRequest, error) {
	var req PythonVersionRequest
	if len(data) > MaxPythonVersionSize {
		return req, appErrorf(".python-version is larger than %d bytes", MaxPythonVersionSize)
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		v := strings.TrimPrefix(line, "python-")
		if v == "system" {
			return PythonVersionRequest{Any: true}, nil
		}
		parts := strings.Split(v, ".")
		req = PythonVersionRequest{Minor: -1, Patch: -1}
		ok := len(parts) <= 3
		for i, p := range parts {
			if !ok {
				break
			}
			var n int
			n, ok = versionNumber(p)
			switch i {
			case 0:
				req.Major = n
			case 1:
				req.Minor = n
			case 2:
				req.Patch = n
			}
		}
		if !ok || req.Major != 3 {
			return req, appErrorf(".python-version asks for %q — Strata builds CPython 3 only: write a version like 3.11", truncate(line, 40))
		}
		return req, nil
	}
	return PythonVersionRequest{Any: true}, nil
}

// Match reports whether the interpreter version v satisfies the request.
func (r PythonVersionRequest) Match(v Version) bool {
	if r.Any {
		return true
	}
	return v[0] == r.Major && (r.Minor < 0 || v[1] == r.Minor) && (r.Patch < 0 || v[2] == r.Patch)
}

func (r PythonVersionRequest) String() string {
	switch {
	case r.Any:
		return "any"
	case r.Minor < 0:
		return fmt.Sprint(r.Major)
	case r.Patch < 0:
		return fmt.Sprintf("%d.%d", r.Major, r.Minor)
	}
	return fmt.Sprintf("%d.%d.%d", r.Major, r.Minor, r.Patch)
}

// PythonBuildpack builds Python apps offline: it detects the usual Python
// files, makes a virtualenv in the app (.strata/python, interpreter copied
// in, standard library from the stack), installs requirements.txt (or the
// pyproject.toml project) from a wheel directory of the app with pip
// --no-index, and needs a Procfile web: line.
type PythonBuildpack struct {
	// Python is the interpreter; empty means /usr/bin/python3 when it
	// exists, else "python3" on the builder's PATH.
	Python string

	mu      sync.Mutex
	version Version
	known   bool
}

var _ Buildpack = (*PythonBuildpack)(nil)

// Name returns "python".
func (*PythonBuildpack) Name() string { return "python" }

// LooksFor lists the files the buildpack detects.
func (*PythonBuildpack) LooksFor() string { return strings.Join(pythonMarkers, ", ") }

// Detect reports whether the app has one of the usual Python files at its
// root.
func (*PythonBuildpack) Detect(_ context.Context, w *Workspace) (bool, error) {
	for _, n := range pythonMarkers {
		if ok, err := exists(filepath.Join(w.SourceDir, n)); ok || err != nil {
			return ok, err
		}
	}
	return false, nil
}

func (b *PythonBuildpack) interpreter(ctx context.Context) (string, Version, error) {
	py := b.Python
	if py == "" {
		py = "/usr/bin/python3"
		if !isExecutable(py) {
			p, err := exec.LookPath("python3")
			if err != nil {
				return "", Version{}, fmt.Errorf("python buildpack: no python3 on the builder — install python3 and python3-venv: %w", err)
			}
			py = p
		}
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.known {
		return py, b.version, nil
	}
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(cctx, py, "-c", `import sys; print("%d.%d.%d" % sys.version_info[:3])`).Output()
	if err != nil {
		return "", Version{}, fmt.Errorf("python buildpack: %s: %w", py, err)
	}
	v, err := ParseVersion(string(out))
	if err != nil {
		return "", Version{}, fmt.Errorf("python buildpack: %s: %w", py, err)
	}
	b.version, b.known = v, true
	return py, v, nil
}

// hasRequirements reports whether requirements.txt names anything to install.
func hasRequirements(data []byte) bool {
	for _, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSpace(line)
		if line != "" && !strings.HasPrefix(line, "#") {
			return true
		}
	}
	return false
}

// Compile checks .python-version, makes the virtualenv and installs the
// app's requirements from its wheels. A version mismatch, requirements
// without wheels, or a requirement pip cannot satisfy from them is an
// *AppError saying what to commit.
func (b *PythonBuildpack) Compile(ctx context.Context, w *Workspace) error {
	py, v, err := b.interpreter(ctx)
	if err != nil {
		return err
	}
	pv, err := readAppFile(w.SourceDir, ".python-version", MaxPythonVersionSize)
	if err != nil {
		return err
	}
	if pv != nil {
		req, err := ParsePythonVersion(pv)
		if err != nil {
			return err
		}
		if !req.Match(v) {
			return appErrorf(".python-version asks for Python %s but this builder has Python %s — write %d.%d in .python-version", req, v, v[0], v[1])
		}
	}
	reqs, err := readAppFile(w.SourceDir, "requirements.txt", 1<<20)
	if err != nil {
		return err
	}
	pyproject, _ := exists(filepath.Join(w.SourceDir, "pyproject.toml"))
	setupPy, _ := exists(filepath.Join(w.SourceDir, "setup.py"))
	pipfile, _ := exists(filepath.Join(w.SourceDir, "Pipfile"))
	if pipfile && reqs == nil && !pyproject && !setupPy {
		return appErrorf("Pipfile without requirements.txt is not supported yet — run pipenv requirements > requirements.txt, pip download -r requirements.txt -d wheels, and commit both")
	}
	fmt.Fprintf(w.Out, "-----> Using Python %s (%s)\n", v, py)

	venv := filepath.Join(w.SourceDir, filepath.FromSlash(PythonVenvDir))
	if err := os.RemoveAll(venv); err != nil {
		return fmt.Errorf("python buildpack: %w", err)
	}
	home := filepath.Join(w.CacheDir, "home")
	if err := os.MkdirAll(home, 0o755); err != nil {
		return fmt.Errorf("python buildpack: %w", err)
	}
	env := withEnv(w.Env, map[string]string{
		"HOME": home, "PIP_DISABLE_PIP_VERSION_CHECK": "1", "PIP_NO_INPUT": "1", "PYTHONUNBUFFERED": "1",
	}, "")
	fmt.Fprintf(w.Out, "-----> Creating the virtualenv %s\n", PythonVenvDir)
	if err := Command(ctx, w, w.SourceDir, env, py, "-m", "venv", "--copies", venv); err != nil {
		var ee *ExitError
		if errors.As(err, &ee) {
			return fmt.Errorf("python buildpack: %s -m venv failed (exit %d) — install python3-venv on the builder", py, ee.Code)
		}
		return err
	}
	vpy := filepath.Join(venv, "bin", "python")

	var targets []string
	var what string
	switch {
	case reqs != nil && hasRequirements(reqs):
		targets, what = []string{"-r", "requirements.txt"}, "requirements.txt"
	case reqs == nil && (pyproject || setupPy):
		targets, what = []string{"."}, "the project"
	}
	if targets != nil {
		wheels := ""
		for _, d := range PythonWheelDirs {
			if isDir(filepath.Join(w.SourceDir, filepath.FromSlash(d))) {
				wheels = d
				break
			}
		}
		if wheels == "" {
			return appErrorf("%s needs packages but the app has no wheels/ directory, and builds cannot reach PyPI — run pip download -r requirements.txt -d wheels (or pip wheel . -w wheels) and commit wheels/", what)
		}
		fmt.Fprintf(w.Out, "-----> Installing %s with pip from %s/ (no index)\n", what, wheels)
		args := append([]string{"-m", "pip", "install", "--no-index", "--find-links", filepath.Join(w.SourceDir, filepath.FromSlash(wheels)),
			"--cache-dir", filepath.Join(w.CacheDir, "pip")}, targets...)
		if err := Command(ctx, w, w.SourceDir, env, vpy, args...); err != nil {
			var ee *ExitError
			if errors.As(err, &ee) {
				return appErrorf("pip could not install %s from %s/ (exit %d): a requirement has no matching wheel there — add it with pip download -r requirements.txt -d %s and commit %s/", what, wheels, ee.Code, wheels, wheels)
			}
			return err
		}
	} else {
		fmt.Fprintf(w.Out, "-----> No requirements to install\n")
	}
	if err := relocateScripts(filepath.Join(venv, "bin"), venv); err != nil {
		return fmt.Errorf("python buildpack: %w", err)
	}
	return writeProfile(w.SourceDir, "strata-python.sh", `# Written by Strata's python buildpack: the app runs in its virtualenv.
export VIRTUAL_ENV="$PWD/`+PythonVenvDir+`"
export PATH="$VIRTUAL_ENV/bin:$PATH"
export PYTHONUNBUFFERED=1
`)
}

// relocateScripts rewrites the "#!<venv>/bin/python" lines of the scripts
// in bin so they run the python beside them wherever the droplet is
// unpacked (pip's own trick for paths a shebang cannot hold).
func relocateScripts(bin, venv string) error {
	ents, err := os.ReadDir(bin)
	if err != nil {
		return err
	}
	prefix := []byte("#!" + venv + "/bin/")
	for _, e := range ents {
		if !e.Type().IsRegular() {
			continue
		}
		p := filepath.Join(bin, e.Name())
		data, err := os.ReadFile(p)
		if err != nil || !bytes.HasPrefix(data, prefix) {
			continue
		}
		nl := bytes.IndexByte(data, '\n')
		if nl < 0 {
			continue
		}
		interp := string(data[len(prefix):nl])
		if strings.ContainsAny(interp, " '\"$\\`") {
			continue
		}
		head := "#!/bin/sh\n'''exec' \"$(dirname -- \"$0\")/" + interp + "\" \"$0\" \"$@\"\n' '''\n"
		fi, _ := e.Info()
		if err := os.WriteFile(p, append([]byte(head), data[nl+1:]...), fi.Mode().Perm()); err != nil {
			return err
		}
	}
	return nil
}

// Release needs the app's Procfile to have a web: line: a Python app has no
// conventional start command.
func (*PythonBuildpack) Release(_ context.Context, w *Workspace) (*ReleaseInfo, error) {
	procs, err := ReadProcfile(w.SourceDir)
	if err != nil {
		return nil, err
	}
	if _, ok := procs["web"]; !ok {
		return nil, appErrorf("python apps need a Procfile with a web: line — add one like \"web: python app.py\" (the server must listen on $PORT)")
	}
	return &ReleaseInfo{}, nil
}
