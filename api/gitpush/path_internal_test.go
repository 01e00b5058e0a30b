package gitpush

import (
	"strings"
	"testing"
)

// splitPath reads URL paths of anyone on the network: it never panics, and
// what it accepts names one repository with non-empty parts that contain no
// slash, which validTarget then checks as names.
func FuzzSplitPath(f *testing.F) {
	for _, s := range []string{"/git/hello.git/info/refs", "/git/acme/dev/hello.git/git-receive-pack", "/hello.git/", "/git/a//b.git/x", "/git/../../etc.git/x", "/git/a/b/c/d.git/x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, p string) {
		target, app, _, ok := splitPath(p)
		if !ok {
			return
		}
		for _, part := range []string{app, target.Org, target.Space} {
			if strings.Contains(part, "/") {
				t.Fatalf("splitPath(%q) = %+v %q: a part holds a slash", p, target, app)
			}
		}
		if app == "" || (target.Org == "") != (target.Space == "") {
			t.Fatalf("splitPath(%q) = %+v %q: empty parts", p, target, app)
		}
		if validTarget(target, app) == nil {
			for _, part := range []string{app, target.Org, target.Space} {
				if strings.Contains(part, "..") || strings.ContainsAny(part, `\.`) {
					t.Fatalf("validTarget accepted %+v %q from %q", target, app, p)
				}
			}
		}
	})
}
