package gitpush_test

import (
	"bytes"
	"compress/gzip"
	"errors"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/strata-paas/strata/api/gitpush"
)

func TestHTTPAnswers(t *testing.T) {
	srv := newServer(t, &fakeDeployer{})
	tests := []struct {
		name, method, path, tok string
		want                    int
		wantBody                string
	}{
		{"no credentials", "GET", "/git/hello.git/info/refs?service=git-receive-pack", "", 401, "authentication required"},
		{"bad credentials", "GET", "/git/hello.git/info/refs?service=git-receive-pack", "nope", 401, "bad credentials"},
		{"advertisement", "GET", "/git/hello.git/info/refs?service=git-receive-pack", token, 200, "# service=git-receive-pack\n"},
		{"dumb http", "GET", "/git/hello.git/info/refs", token, 403, "dumb HTTP is not supported"},
		{"upload-pack advertisement", "GET", "/git/hello.git/info/refs?service=git-upload-pack", token, 403, "fetch is not supported yet"},
		{"upload-pack", "POST", "/git/hello.git/git-upload-pack", token, 403, "fetch is not supported yet"},
		{"traversal app", "GET", "/git/..%2f..%2fetc.git/info/refs?service=git-receive-pack", token, 404, ""},
		{"prefix stripped by the router", "GET", "/hello.git/info/refs?service=git-receive-pack", token, 200, "# service=git-receive-pack\n"},
		{"no .git", "GET", "/git/hello/info/refs?service=git-receive-pack", token, 404, "not a git repository path"},
		{"other file", "GET", "/git/hello.git/HEAD", token, 404, "not found"},
		{"wrong method", "PUT", "/git/hello.git/git-receive-pack", token, 405, ""},
		{"wrong content type", "POST", "/git/hello.git/git-receive-pack", token, 415, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, err := http.NewRequest(tt.method, srv.URL+tt.path, nil)
			if err != nil {
				t.Fatal(err)
			}
			if tt.tok != "" {
				req.SetBasicAuth("anyone", tt.tok)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tt.want {
				t.Errorf("status = %d, want %d (%s)", resp.StatusCode, tt.want, body)
			}
			if !strings.Contains(string(body), tt.wantBody) {
				t.Errorf("body = %q, want it to contain %q", body, tt.wantBody)
			}
			if tt.want == 401 && resp.Header.Get("WWW-Authenticate") != `Basic realm="strata"` {
				t.Errorf("WWW-Authenticate = %q", resp.Header.Get("WWW-Authenticate"))
			}
		})
	}
	if entries, _ := os.ReadDir(srv.repos); len(entries) != 0 {
		t.Errorf("repos dir has %d entries after requests that push nothing", len(entries))
	}
}

func gzipBytes(p []byte) []byte {
	var b bytes.Buffer
	w := gzip.NewWriter(&b)
	_, _ = w.Write(p)
	_ = w.Close()
	return b.Bytes()
}

func postReceivePack(t *testing.T, url string, body []byte, gz bool) (int, string) {
	t.Helper()
	if gz {
		body = gzipBytes(body)
	}
	req, err := http.NewRequest("POST", url+"/git/hello.git/git-receive-pack", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.SetBasicAuth("x", token)
	req.Header.Set("Content-Type", "application/x-git-receive-pack-request")
	if gz {
		req.Header.Set("Content-Encoding", "gzip")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(out)
}

func readFile(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestReceivePackRequests(t *testing.T) {
	repo := newWorkRepo(t)
	repo.write("index.html", "hello\n", 0o644)
	head := repo.commit("first")
	pack := repo.pack("HEAD")

	tests := []struct {
		name  string
		body  []byte
		gzip  bool
		wants []string
	}{
		{
			name:  "gzip body with sideband",
			body:  receivePackBody(zeroID, head, "refs/heads/main", "report-status side-band-64k", pack),
			gzip:  true,
			wants: []string{"\x02-----> Released v1\n", "\x01000eunpack ok\n0017ok refs/heads/main\n0000", "0000"},
		},
		{
			name:  "no sideband: plain report-status, no progress",
			body:  receivePackBody(zeroID, head, "refs/heads/main", "report-status", pack),
			wants: []string{"000eunpack ok\n0017ok refs/heads/main\n0000"},
		},
		{
			name:  "probe",
			body:  []byte("0000"),
			wants: []string{""},
		},
		{
			name:  "corrupt pack",
			body:  receivePackBody(zeroID, head, "refs/heads/main", "report-status", append([]byte("PACK\x00\x00\x00\x02\x00\x00\x00\x05"), pack[12:40]...)),
			wants: []string{"unpack unpacking the pushed objects failed\n", "ng refs/heads/main unpacker error\n"},
		},
		{
			name:  "pack announcing billions of objects",
			body:  receivePackBody(zeroID, head, "refs/heads/main", "report-status", append([]byte("PACK\x00\x00\x00\x02\xf0\x00\x00\x00"), pack[12:]...)),
			wants: []string{"unpack push has 4026531840 objects, more than the limit of 1000000\n", "ng refs/heads/main unpacker error\n"},
		},
		{
			name:  "commit not in pack",
			body:  receivePackBody(zeroID, strings.Repeat("ab", 20), "refs/heads/main", "report-status", pack),
			wants: []string{"unpack ok\n", "ng refs/heads/main the push is missing object abab"},
		},
		{
			name:  "crafted tree with a .. entry",
			body:  readFile(t, "testdata/dotdot.bin"),
			wants: []string{"unpack ok\n", `ng refs/heads/main refused path ".." in the pushed tree: empty or relative name`},
		},
		{
			name:  "symlink escaping the tree",
			body:  readFile(t, "testdata/push.bin"),
			wants: []string{"unpack ok\n", `ng refs/heads/main refused symlink "esc": target points outside the app`},
		},
		{
			name:  "push-options capability",
			body:  receivePackBody(zeroID, head, "refs/heads/main", "report-status push-options", pack),
			wants: []string{"ng refs/heads/main push options are not supported\n"},
		},
		{
			name:  "control character in ref",
			body:  receivePackBody(zeroID, head, "refs/heads/a\x01b", "report-status", pack),
			wants: []string{"branch name contains control characters"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := &fakeDeployer{}
			srv := newServer(t, d)
			status, out := postReceivePack(t, srv.URL, tt.body, tt.gzip)
			if status != 200 {
				t.Fatalf("status = %d, want 200: %q", status, out)
			}
			for _, w := range tt.wants {
				if !strings.Contains(out, w) {
					t.Errorf("response %q does not contain %q", out, w)
				}
			}
			if calls, _, _ := d.snapshot(); calls > 0 && !strings.Contains(out, "ok refs/heads/main") {
				t.Errorf("deployer called for a refused push")
			}
			if tt.name == "probe" && out != "" {
				t.Errorf("probe answered %q, want nothing", out)
			}
			if strings.Contains(tt.name, "no sideband") && strings.Contains(out, "Released") {
				t.Errorf("progress sent without sideband: %q", out)
			}
		})
	}
}

// FuzzReceivePack posts arbitrary request bodies to the handler. It must not
// panic, must not write outside ReposDir, and any archive it hands to the
// deployer must be safe.
func FuzzReceivePack(f *testing.F) {
	repos := filepath.Join(f.TempDir(), "repos")
	d := &fakeDeployer{}
	h, err := gitpush.New(gitpush.Config{ReposDir: repos, MaxPackBytes: 1 << 20, Logger: slog.New(slog.DiscardHandler)}, fakeAuth{}, d)
	if err != nil {
		f.Fatal(err)
	}
	f.Add([]byte("0000"), false)
	f.Add([]byte(pkt(zeroID+" "+strings.Repeat("1", 40)+" refs/heads/main\x00report-status side-band-64k")+"0000PACK"), false)
	f.Add([]byte(pkt(strings.Repeat("1", 40)+" "+zeroID+" refs/heads/main\x00report-status delete-refs")+"0000"), true)
	f.Add([]byte(pkt("shallow "+strings.Repeat("2", 40))+pkt(zeroID+" "+strings.Repeat("1", 40)+" refs/heads/../x\x00")+"0000"), false)
	seeds, _ := filepath.Glob(filepath.Join("testdata", "*.bin"))
	for _, name := range seeds {
		if seed, err := os.ReadFile(name); err == nil {
			f.Add(seed, false)
		}
	}
	root := filepath.Dir(repos)
	f.Fuzz(func(t *testing.T, body []byte, gz bool) {
		if gz {
			body = gzipBytes(body)
		}
		req := httptest.NewRequest("POST", "/git/hello.git/git-receive-pack", bytes.NewReader(body))
		req.SetBasicAuth("x", token)
		req.Header.Set("Content-Type", "application/x-git-receive-pack-request")
		if gz {
			req.Header.Set("Content-Encoding", "gzip")
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != 200 && rec.Code != 400 {
			t.Fatalf("status %d", rec.Code)
		}
		d.mu.Lock()
		for _, err := range d.errs {
			if errors.Is(err, errUnsafe) {
				t.Fatalf("unsafe archive handed to the deployer: %v", err)
			}
		}
		d.mu.Unlock()
		_ = filepath.WalkDir(root, func(p string, e fs.DirEntry, err error) error {
			rel, _ := filepath.Rel(root, p)
			if rel != "." && rel != "repos" && !strings.HasPrefix(rel, filepath.Join("repos", "hello.git")) {
				t.Fatalf("file outside the app repository: %s", rel)
			}
			return nil
		})
	})
}
