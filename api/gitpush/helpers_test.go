package gitpush_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http/httptest"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/strata-paas/strata/api"
	"github.com/strata-paas/strata/api/gitpush"
)

const token = "secret"

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

type fakeAuth struct{}

func (fakeAuth) Authenticate(_ context.Context, tok string) (*api.Principal, error) {
	if tok != token {
		return nil, api.Errorf(api.EUnauthorized, "bad token")
	}
	return &api.Principal{UserID: "u1", Name: "dev"}, nil
}

// AuthorizePush lets "dev" push to the default space and to acme/dev, shows
// acme/audit read-only and hides every other space.
func (fakeAuth) AuthorizePush(ctx context.Context) error {
	switch t := api.TargetFrom(ctx); t {
	case api.Target{}, api.Target{Org: "acme", Space: "dev"}:
		return nil
	case api.Target{Org: "acme", Space: "audit"}:
		return api.Errorf(api.EForbidden, "changing apps in this space needs the space-developer role in acme/audit")
	default:
		return api.Errorf(api.ENotFound, "space %s/%s not found", t.Org, t.Space)
	}
}

// archiveFile is one entry of a received source archive.
type archiveFile struct {
	Mode     int64
	Type     byte
	Content  string
	Linkname string
}

// fakeDeployer records the archives it receives and answers with a result or
// with Err.
type fakeDeployer struct {
	mu       sync.Mutex
	calls    int
	files    map[string]archiveFile // of the last deploy
	errs     []error                // archive errors seen
	actor    string
	target   api.Target // of the last Deploy call
	Err      error
	Delay    time.Duration // simulated slow build
	Progress []string
	Started  chan struct{} // if set, receives one value when a deploy starts
	Release  chan struct{} // if set, a deploy waits for it
}

func (d *fakeDeployer) Deploy(ctx context.Context, req api.DeployRequest) (*api.DeployResult, error) {
	files, err := readArchive(req.Source)
	d.mu.Lock()
	d.calls++
	version := d.calls
	d.files = files
	if err != nil {
		d.errs = append(d.errs, err)
	}
	d.actor = api.ActorName(ctx)
	d.target = api.TargetFrom(ctx)
	d.mu.Unlock()
	if err != nil {
		return nil, api.Errorf(api.EInvalid, "bad source archive: %v", err)
	}
	if d.Started != nil {
		d.Started <- struct{}{}
	}
	if d.Release != nil {
		select {
		case <-d.Release:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	for _, l := range d.Progress {
		req.Progress(api.DeployEvent{Type: api.DeployEventLog, Line: l})
	}
	if d.Delay > 0 {
		select {
		case <-time.After(d.Delay):
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	if d.Err != nil {
		return nil, d.Err
	}
	return &api.DeployResult{
		Release: &api.Release{Version: version},
		URLs:    []string{"http://" + req.App + ".localhost:8080"},
		Running: 1, Desired: 1,
	}, nil
}

func (d *fakeDeployer) snapshot() (int, map[string]archiveFile, string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.calls, d.files, d.actor
}

// errUnsafe marks archives that must never be produced.
var errUnsafe = errors.New("unsafe archive")

// readArchive reads a gzip tar and checks every name stays inside the root.
func readArchive(r io.Reader) (map[string]archiveFile, error) {
	gz, err := gzip.NewReader(r)
	if err != nil {
		return nil, err
	}
	tr := tar.NewReader(gz)
	files := map[string]archiveFile{}
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return files, nil
		}
		if err != nil {
			return nil, err
		}
		name := strings.TrimSuffix(hdr.Name, "/")
		if name == "" || path.IsAbs(name) || path.Clean(name) != name || name == ".." || strings.HasPrefix(name, "../") || strings.ContainsAny(name, "\\\x00") {
			return nil, fmt.Errorf("%w: name %q", errUnsafe, hdr.Name)
		}
		if _, dup := files[name]; dup {
			return nil, fmt.Errorf("%w: duplicate entry %q", errUnsafe, name)
		}
		f := archiveFile{Mode: hdr.Mode, Type: hdr.Typeflag, Linkname: hdr.Linkname}
		switch hdr.Typeflag {
		case tar.TypeReg:
			b, err := io.ReadAll(tr)
			if err != nil {
				return nil, err
			}
			f.Content = string(b)
		case tar.TypeSymlink:
			to := path.Join(path.Dir(name), hdr.Linkname)
			if path.IsAbs(hdr.Linkname) || to == ".." || strings.HasPrefix(to, "../") {
				return nil, fmt.Errorf("%w: symlink %q escapes to %q", errUnsafe, name, hdr.Linkname)
			}
		case tar.TypeDir:
		default:
			return nil, fmt.Errorf("%w: unexpected type %c for %q", errUnsafe, hdr.Typeflag, name)
		}
		files[name] = f
	}
}

// server is a Handler behind httptest.
type server struct {
	*httptest.Server
	deployer *fakeDeployer
	repos    string
}

func newServer(t *testing.T, d *fakeDeployer, tweak ...func(*gitpush.Config)) *server {
	t.Helper()
	repos := filepath.Join(t.TempDir(), "repos")
	cfg := gitpush.Config{ReposDir: repos, Logger: slog.New(slog.NewTextHandler(testWriter{t}, nil))}
	for _, f := range tweak {
		f(&cfg)
	}
	h, err := gitpush.New(cfg, fakeAuth{}, d)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return &server{Server: srv, deployer: d, repos: repos}
}

// remote returns the push URL of app with the given token.
func (s *server) remote(app, tok string) string {
	return strings.Replace(s.URL, "http://", "http://x:"+tok+"@", 1) + "/git/" + app + ".git"
}

// workRepo is a local git working copy.
type workRepo struct {
	t    *testing.T
	dir  string
	home string
}

func newWorkRepo(t *testing.T) *workRepo {
	t.Helper()
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("git is not installed")
	}
	r := &workRepo{t: t, dir: t.TempDir(), home: t.TempDir()}
	r.mustGit("init", "-q", "-b", "main")
	return r
}

func (r *workRepo) env() []string {
	return append(os.Environ(),
		"HOME="+r.home, "XDG_CONFIG_HOME="+r.home, "GIT_CONFIG_NOSYSTEM=1", "GIT_TERMINAL_PROMPT=0",
		"GIT_AUTHOR_NAME=Dev", "GIT_AUTHOR_EMAIL=dev@example.com",
		"GIT_COMMITTER_NAME=Dev", "GIT_COMMITTER_EMAIL=dev@example.com",
		"GIT_ASKPASS=", "SSH_ASKPASS=", "LC_ALL=C",
	)
}

// git runs git in the working copy and returns stdout, stderr and the error.
func (r *workRepo) git(args ...string) (string, string, error) {
	cmd := exec.Command("git", args...)
	cmd.Dir = r.dir
	cmd.Env = r.env()
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if os.Getenv("GIT_TRACE_PACKET") != "" || os.Getenv("GIT_TRACE_CURL") != "" {
		r.t.Logf("git %s:\n%s", strings.Join(args, " "), stderr.String())
	}
	return stdout.String(), stderr.String(), err
}

func (r *workRepo) mustGit(args ...string) string {
	r.t.Helper()
	out, errOut, err := r.git(args...)
	if err != nil {
		r.t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, errOut)
	}
	return strings.TrimSpace(out)
}

func (r *workRepo) write(name, content string, mode os.FileMode) {
	r.t.Helper()
	p := filepath.Join(r.dir, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		r.t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), mode); err != nil {
		r.t.Fatal(err)
	}
	if err := os.Chmod(p, mode); err != nil {
		r.t.Fatal(err)
	}
}

func (r *workRepo) commit(msg string) string {
	r.t.Helper()
	r.mustGit("add", "-A")
	r.mustGit("commit", "-q", "-m", msg)
	return r.mustGit("rev-parse", "HEAD")
}

// bareRef returns the commit of ref in the server's bare repository of app,
// or "" when the ref does not exist.
func (s *server) bareRef(t *testing.T, app, ref string) string {
	t.Helper()
	cmd := exec.Command("git", "--git-dir", filepath.Join(s.repos, app+".git"), "rev-parse", "--verify", "-q", ref)
	cmd.Env = append(os.Environ(), "GIT_CONFIG_NOSYSTEM=1")
	out, err := cmd.Output()
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(out))
}

// pkt encodes one pkt-line.
func pkt(s string) string { return fmt.Sprintf("%04x%s", len(s)+4, s) }

// pack returns a packfile with the objects of revs (git rev-list syntax).
func (r *workRepo) pack(revs ...string) []byte {
	r.t.Helper()
	cmd := exec.Command("git", "pack-objects", "--stdout", "--revs", "-q")
	cmd.Dir = r.dir
	cmd.Env = r.env()
	cmd.Stdin = strings.NewReader(strings.Join(revs, "\n") + "\n")
	out, err := cmd.Output()
	if err != nil {
		r.t.Fatalf("git pack-objects: %v", err)
	}
	return out
}

// receivePackBody returns a receive-pack request updating ref from old to
// new with the given capabilities, followed by pack.
func receivePackBody(old, new, ref, caps string, pack []byte) []byte {
	var b bytes.Buffer
	b.WriteString(pkt(old + " " + new + " " + ref + "\x00" + caps))
	b.WriteString("0000")
	b.Write(pack)
	return b.Bytes()
}

const zeroID = "0000000000000000000000000000000000000000"
