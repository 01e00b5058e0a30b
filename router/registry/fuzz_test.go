package registry_test

import (
	"strings"
	"testing"

	"github.com/strata-paas/strata/router/registry"
)

// FuzzParseURI: any uri an executor (or anyone on the bus) sends either is
// refused or yields a normalised route that a request for it finds.
func FuzzParseURI(f *testing.F) {
	for _, s := range []string{"hello.localhost", "A.B.:80/api/", "h/../x", "[::1]:8/p?q#f", " ", "x//y//"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, uri string) {
		host, path, ok := registry.ParseURI(uri)
		if !ok {
			return
		}
		if host != registry.NormalizeHost(host) {
			t.Fatalf("host %q is not normal (NormalizeHost gives %q)", host, registry.NormalizeHost(host))
		}
		if path != "" && (!strings.HasPrefix(path, "/") || strings.HasSuffix(path, "/")) {
			t.Fatalf("path %q: want empty or /a/b without trailing slash", path)
		}
		r := registry.New(registry.Config{})
		if err := r.Register(reg(80, "i", uri)); err != nil {
			t.Fatal(err)
		}
		reqPath := path
		if reqPath == "" {
			reqPath = "/"
		}
		if p := r.Lookup(host, reqPath); p == nil || p.Len() != 1 {
			t.Fatalf("uri %q registered as (%q, %q) but Lookup(%q, %q) = %+v", uri, host, path, host, reqPath, p)
		}
	})
}
