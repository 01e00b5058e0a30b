package gitpush_test

import (
	"archive/tar"
	"crypto/rand"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/strata-paas/strata/api"
	"github.com/strata-paas/strata/api/gitpush"
)

func assertContains(t *testing.T, out string, wants ...string) {
	t.Helper()
	for _, w := range wants {
		if !strings.Contains(out, w) {
			t.Errorf("output does not contain %q:\n%s", w, out)
		}
	}
}

func TestPushDeploysAndStreamsProgress(t *testing.T) {
	d := &fakeDeployer{Progress: []string{"-----> Building hello", "       installing dependencies"}}
	srv := newServer(t, d)
	repo := newWorkRepo(t)
	repo.write("app.py", "print('hi')\n", 0o644)
	repo.write("bin/run", "#!/bin/sh\necho run\n", 0o755)
	repo.write("docs/readme.md", "# hello\n", 0o644)
	if err := os.Symlink("../app.py", filepath.Join(repo.dir, "bin", "app")); err != nil {
		t.Fatal(err)
	}
	first := repo.commit("first")
	// A submodule (gitlink) is skipped.
	repo.mustGit("update-index", "--add", "--cacheinfo", "160000,"+first+",vendor/lib")
	repo.mustGit("commit", "-q", "-m", "submodule")
	head := repo.mustGit("rev-parse", "HEAD")

	_, stderr, err := repo.git("push", srv.remote("hello", token), "HEAD:main")
	if err != nil {
		t.Fatalf("git push: %v\n%s", err, stderr)
	}
	assertContains(t, stderr,
		"remote: -----> Building hello",
		"remote:        installing dependencies",
		"remote: -----> Skipping submodule vendor/lib",
		"remote: -----> Released v1",
		"remote:        http://hello.localhost:8080 deployed",
		"* [new branch]      HEAD -> main",
	)
	calls, files, actor := d.snapshot()
	if calls != 1 {
		t.Fatalf("deploy calls = %d, want 1", calls)
	}
	if actor != "dev" {
		t.Errorf("deploy actor = %q, want dev (principal in context)", actor)
	}
	want := map[string]archiveFile{
		"app.py":         {Mode: 0o644, Type: tar.TypeReg, Content: "print('hi')\n"},
		"bin":            {Mode: 0o755, Type: tar.TypeDir},
		"bin/run":        {Mode: 0o755, Type: tar.TypeReg, Content: "#!/bin/sh\necho run\n"},
		"bin/app":        {Mode: 0o777, Type: tar.TypeSymlink, Linkname: "../app.py"},
		"docs":           {Mode: 0o755, Type: tar.TypeDir},
		"docs/readme.md": {Mode: 0o644, Type: tar.TypeReg, Content: "# hello\n"},
		"vendor":         {Mode: 0o755, Type: tar.TypeDir}, // holds only the skipped submodule
	}
	if len(files) != len(want) {
		t.Errorf("archive has %d entries, want %d: %v", len(files), len(want), files)
	}
	for name, w := range want {
		if got := files[name]; got != w {
			t.Errorf("archive %s = %+v, want %+v", name, got, w)
		}
	}
	if got := srv.bareRef(t, "hello", "refs/heads/main"); got != head {
		t.Errorf("server main = %q, want %q", got, head)
	}

	// A second push sends an incremental pack (with deltas against objects
	// the server has) and deploys again.
	repo.write("app.py", strings.Repeat("print('hi')\n", 200)+"print('v2')\n", 0o644)
	head2 := repo.commit("second")
	_, stderr, err = repo.git("push", srv.remote("hello", token), "HEAD:main")
	if err != nil {
		t.Fatalf("second git push: %v\n%s", err, stderr)
	}
	assertContains(t, stderr, "remote: -----> Released v2", "HEAD -> main")
	_, files, _ = d.snapshot()
	if !strings.HasSuffix(files["app.py"].Content, "print('v2')\n") {
		t.Errorf("second deploy got app.py %q", files["app.py"].Content)
	}
	if got := srv.bareRef(t, "hello", "refs/heads/main"); got != head2 {
		t.Errorf("server main = %q, want %q", got, head2)
	}

	// A third push of a small change deltas against the big file.
	repo.write("app.py", strings.Repeat("print('hi')\n", 200)+"print('v3')\n", 0o644)
	repo.commit("third")
	if _, stderr, err = repo.git("push", srv.remote("hello", token), "HEAD:main"); err != nil {
		t.Fatalf("third git push: %v\n%s", err, stderr)
	}
	// A force push of rewritten history is accepted and deployed.
	repo.mustGit("reset", "-q", "--hard", head)
	repo.write("new.txt", "rewritten\n", 0o644)
	rewritten := repo.commit("rewritten")
	if _, stderr, err = repo.git("push", "--force", srv.remote("hello", token), "HEAD:main"); err != nil {
		t.Fatalf("force push: %v\n%s", err, stderr)
	}
	assertContains(t, stderr, "remote: -----> Released v4", "(forced update)")
	if got := srv.bareRef(t, "hello", "refs/heads/main"); got != rewritten {
		t.Errorf("server main after force push = %q, want %q", got, rewritten)
	}
	// Nothing to push: git does not even contact receive-pack's POST.
	if _, stderr, err = repo.git("push", srv.remote("hello", token), "HEAD:main"); err != nil || !strings.Contains(stderr, "Everything up-to-date") {
		t.Errorf("up-to-date push: %v\n%s", err, stderr)
	}
}

func TestPushFailures(t *testing.T) {
	tests := []struct {
		name      string
		deployErr error
		wants     []string
		repoGone  bool
	}{
		{
			name:      "build failed",
			deployErr: api.Errorf(api.EBuildFailed, "compile failed (exit 2)"),
			wants: []string{
				"remote: !      compile failed (exit 2)",
				"! [remote rejected] HEAD -> main (compile failed (exit 2))",
			},
		},
		{
			name:      "app not found",
			deployErr: api.Errorf(api.ENotFound, "app not found"),
			wants:     []string{"remote: !      app hello does not exist — run `strata apps create hello` and push again"},
			repoGone:  true,
		},
		{
			name:      "internal error does not leak",
			deployErr: os.ErrPermission,
			wants:     []string{"remote: !      internal error", "(internal error)"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := &fakeDeployer{Err: tt.deployErr, Progress: []string{"-----> Building"}}
			srv := newServer(t, d)
			repo := newWorkRepo(t)
			repo.write("main.go", "package main\n", 0o644)
			repo.commit("first")
			_, stderr, err := repo.git("push", srv.remote("hello", token), "HEAD:main")
			if err == nil {
				t.Fatalf("git push succeeded, want failure:\n%s", stderr)
			}
			assertContains(t, stderr, append([]string{"remote: -----> Building"}, tt.wants...)...)
			if strings.Contains(stderr, "permission denied") {
				t.Errorf("internal error text leaked:\n%s", stderr)
			}
			if got := srv.bareRef(t, "hello", "refs/heads/main"); got != "" {
				t.Errorf("server main = %q after a failed deploy, want no branch", got)
			}
			_, err = os.Stat(filepath.Join(srv.repos, "hello.git"))
			if gone := os.IsNotExist(err); gone != tt.repoGone {
				t.Errorf("repository removed = %v, want %v", gone, tt.repoGone)
			}
		})
	}
}

func TestPushRefused(t *testing.T) {
	tests := []struct {
		name   string
		app    string
		tok    string
		refs   []string
		wants  []string
		nobody bool // no repository may be created
	}{
		{name: "bad token", app: "hello", tok: "wrong", refs: []string{"HEAD:main"}, wants: []string{"Authentication failed"}, nobody: true},
		{name: "bad app name", app: "Hello_World", tok: token, refs: []string{"HEAD:main"}, wants: []string{"remote: app name", "may only contain lowercase"}, nobody: true},
		{name: "reserved app name", app: "api", tok: token, refs: []string{"HEAD:main"}, wants: []string{"reserved by the platform"}, nobody: true},
		{name: "dash branch", app: "hello", tok: token, refs: []string{"HEAD:refs/heads/-x"}, wants: []string{"must not start with '-'"}, nobody: true},
		{name: "tag", app: "hello", tok: token, refs: []string{"HEAD:refs/tags/v1"}, wants: []string{"only branches can be pushed"}, nobody: true},
		{name: "two branches", app: "hello", tok: token, refs: []string{"HEAD:main", "HEAD:other"}, wants: []string{"push one branch at a time"}},
		{name: "push option", app: "hello", tok: token, refs: []string{"--push-option=x", "HEAD:main"}, wants: []string{"does not support push options"}, nobody: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := &fakeDeployer{}
			srv := newServer(t, d)
			repo := newWorkRepo(t)
			repo.write("index.html", "hi\n", 0o644)
			repo.commit("first")
			args := append([]string{"push", srv.remote(tt.app, tt.tok)}, tt.refs...)
			if strings.HasPrefix(tt.refs[0], "--") {
				args = append([]string{"push", tt.refs[0], srv.remote(tt.app, tt.tok)}, tt.refs[1:]...)
			}
			_, stderr, err := repo.git(args...)
			if err == nil {
				t.Fatalf("git push succeeded, want refusal:\n%s", stderr)
			}
			assertContains(t, stderr, tt.wants...)
			if calls, _, _ := d.snapshot(); calls != 0 {
				t.Errorf("deploy called %d times, want 0", calls)
			}
			if tt.nobody {
				entries, _ := os.ReadDir(srv.repos)
				if len(entries) != 0 {
					t.Errorf("repos dir has %d entries, want none", len(entries))
				}
			}
		})
	}
}

func TestFetchIsRefused(t *testing.T) {
	srv := newServer(t, &fakeDeployer{})
	repo := newWorkRepo(t)
	for _, args := range [][]string{
		{"ls-remote", srv.remote("hello", token)},
		{"clone", srv.remote("hello", token), filepath.Join(t.TempDir(), "c")},
	} {
		_, stderr, err := repo.git(args...)
		if err == nil {
			t.Fatalf("git %s succeeded, want refusal", args[0])
		}
		assertContains(t, stderr, "remote: fetch is not supported yet")
	}
}

func TestDeleteBranchDoesNotDeploy(t *testing.T) {
	d := &fakeDeployer{}
	srv := newServer(t, d)
	repo := newWorkRepo(t)
	repo.write("index.html", "hi\n", 0o644)
	repo.commit("first")
	if _, stderr, err := repo.git("push", srv.remote("hello", token), "HEAD:feature"); err != nil {
		t.Fatalf("push: %v\n%s", err, stderr)
	}
	_, stderr, err := repo.git("push", srv.remote("hello", token), ":feature")
	if err != nil {
		t.Fatalf("delete push: %v\n%s", err, stderr)
	}
	assertContains(t, stderr, "[deleted]", "remote: -----> Deleted branch feature")
	if calls, _, _ := d.snapshot(); calls != 1 {
		t.Errorf("deploy calls = %d, want 1 (the delete must not deploy)", calls)
	}
	if got := srv.bareRef(t, "hello", "refs/heads/feature"); got != "" {
		t.Errorf("feature still exists at %s", got)
	}
}

func TestPushBigFileAndSlowBuild(t *testing.T) {
	d := &fakeDeployer{Delay: 300 * time.Millisecond, Progress: []string{"-----> Building"}}
	srv := newServer(t, d, func(c *gitpush.Config) { c.Keepalive = 20 * time.Millisecond })
	repo := newWorkRepo(t)
	big := make([]byte, 5<<20) // incompressible: larger than git's post buffer
	if _, err := rand.Read(big); err != nil {
		t.Fatal(err)
	}
	repo.write("data.bin", string(big), 0o644)
	repo.commit("big")
	_, stderr, err := repo.git("push", srv.remote("hello", token), "HEAD:main")
	if err != nil {
		t.Fatalf("git push: %v\n%s", err, stderr)
	}
	assertContains(t, stderr, "remote: -----> Released v1")
	_, files, _ := d.snapshot()
	if got := files["data.bin"].Content; got != string(big) {
		t.Errorf("data.bin: got %d bytes, want %d identical bytes", len(got), len(big))
	}
}

func TestPushTooLarge(t *testing.T) {
	d := &fakeDeployer{}
	srv := newServer(t, d, func(c *gitpush.Config) { c.MaxPackBytes = 64 << 10 })
	repo := newWorkRepo(t)
	big := make([]byte, 256<<10)
	if _, err := rand.Read(big); err != nil {
		t.Fatal(err)
	}
	repo.write("data.bin", string(big), 0o644)
	repo.commit("big")
	_, stderr, err := repo.git("push", srv.remote("hello", token), "HEAD:main")
	if err == nil {
		t.Fatalf("push of a too large pack succeeded:\n%s", stderr)
	}
	if calls, _, _ := d.snapshot(); calls != 0 {
		t.Errorf("deploy called %d times, want 0", calls)
	}
	matches, _ := filepath.Glob(filepath.Join(srv.repos, "hello.git", "objects", "pack", "*"))
	if len(matches) != 0 {
		t.Errorf("pack files left behind: %v", matches)
	}
}

func TestSymlinkOutsideTreeIsRefused(t *testing.T) {
	d := &fakeDeployer{}
	srv := newServer(t, d)
	repo := newWorkRepo(t)
	repo.write("index.html", "hi\n", 0o644)
	if err := os.Symlink("../../etc/passwd", filepath.Join(repo.dir, "passwd")); err != nil {
		t.Fatal(err)
	}
	repo.commit("escape")
	_, stderr, err := repo.git("push", srv.remote("hello", token), "HEAD:main")
	if err == nil {
		t.Fatalf("push succeeded:\n%s", stderr)
	}
	assertContains(t, stderr, `refused symlink "passwd": target points outside the app`)
	if calls, _, _ := d.snapshot(); calls != 0 {
		t.Errorf("deploy called %d times, want 0", calls)
	}
}

func TestConcurrentPushOfOneAppIsRefused(t *testing.T) {
	d := &fakeDeployer{Started: make(chan struct{}, 1), Release: make(chan struct{})}
	srv := newServer(t, d)
	first, second := newWorkRepo(t), newWorkRepo(t)
	first.write("a.txt", "a\n", 0o644)
	first.commit("a")
	second.write("b.txt", "b\n", 0o644)
	second.commit("b")

	done := make(chan error, 1)
	var firstErr string
	go func() {
		_, stderr, err := first.git("push", srv.remote("hello", token), "HEAD:main")
		firstErr = stderr
		done <- err
	}()
	select {
	case <-d.Started:
	case err := <-done:
		t.Fatalf("first push ended before deploying: %v\n%s", err, firstErr)
	}
	_, stderr, err := second.git("push", srv.remote("hello", token), "HEAD:main")
	if err == nil {
		t.Fatalf("second push succeeded during the first:\n%s", stderr)
	}
	assertContains(t, stderr, "another push of this app is in progress")
	close(d.Release)
	if err := <-done; err != nil {
		t.Fatalf("first push: %v\n%s", err, firstErr)
	}
	// Once the first push is done the app can be pushed again.
	if _, stderr, err := second.git("push", "--force", srv.remote("hello", token), "HEAD:main"); err != nil {
		t.Fatalf("push after the first finished: %v\n%s", err, stderr)
	}
}
