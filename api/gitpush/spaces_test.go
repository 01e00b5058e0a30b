package gitpush_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/strata-paas/strata/api"
)

// /git/<org>/<space>/<app>.git pushes into that space: the deploy acts in
// it and the repository lives apart from a same-named app of the default
// space. A space the pusher only reads refuses the push; one it may not see
// answers as if it did not exist, and shows no refs.
func TestPushToSpaces(t *testing.T) {
	d := &fakeDeployer{}
	srv := newServer(t, d)
	repo := newWorkRepo(t)
	repo.write("index.html", "hi\n", 0o644)
	repo.commit("first")

	if _, stderr, err := repo.git("push", srv.remote("acme/dev/hello", token), "HEAD:main"); err != nil {
		t.Fatalf("push to acme/dev: %v\n%s", err, stderr)
	}
	d.mu.Lock()
	target := d.target
	d.mu.Unlock()
	if target != (api.Target{Org: "acme", Space: "dev"}) {
		t.Errorf("deploy acted in %+v, want acme/dev", target)
	}
	if _, err := os.Stat(filepath.Join(srv.repos, "acme", "dev", "hello.git", "HEAD")); err != nil {
		t.Errorf("repository of acme/dev/hello: %v", err)
	}
	if _, err := os.Stat(filepath.Join(srv.repos, "hello.git")); err == nil {
		t.Error("the push to acme/dev also made the default space's repository")
	}
	if _, stderr, err := repo.git("push", srv.remote("hello", token), "HEAD:main"); err != nil {
		t.Fatalf("push to the default space: %v\n%s", err, stderr)
	}
	d.mu.Lock()
	target = d.target
	d.mu.Unlock()
	if target != (api.Target{}) {
		t.Errorf("deploy of /git/hello.git acted in %+v, want the default space", target)
	}

	_, stderr, err := repo.git("push", srv.remote("acme/audit/hello", token), "HEAD:main")
	if err == nil || !strings.Contains(stderr, "needs the space-developer role") {
		t.Errorf("push to a read-only space: err %v\n%s", err, stderr)
	}
	_, stderr, err = repo.git("push", srv.remote("other/space/hello", token), "HEAD:main")
	if err == nil || !strings.Contains(stderr, "space other/space not found") {
		t.Errorf("push to a hidden space: err %v\n%s", err, stderr)
	}
	out, stderr, err := repo.git("ls-remote", srv.remote("other/space/hello", token))
	if err == nil || out != "" {
		t.Errorf("ls-remote of a hidden space: %q %v\n%s", out, err, stderr)
	}
	for _, bad := range []string{"acme/hello", "a/b/c/hello", "ACME/dev/hello", "acme//hello"} {
		if _, _, err := repo.git("push", srv.remote(bad, token), "HEAD:main"); err == nil {
			t.Errorf("push to /git/%s.git succeeded", bad)
		}
	}
}
