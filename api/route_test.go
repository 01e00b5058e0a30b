package api_test

import (
	"strings"
	"testing"

	"github.com/strata-paas/strata/api"
)

func TestParseRoute(t *testing.T) {
	good := map[string]api.RouteRequest{
		"blog":                         {Host: "blog.localhost"},
		"Blog.LOCALHOST":               {Host: "blog.localhost"},
		"blog.localhost/api":           {Host: "blog.localhost", Path: "/api"},
		"http://blog.localhost/api/v1": {Host: "blog.localhost", Path: "/api/v1"},
		"a.b.localhost":                {Host: "a.b.localhost"},
		"shop/cart_2~x":                {Host: "shop.localhost", Path: "/cart_2~x"},
	}
	for in, want := range good {
		got, err := api.ParseRoute(in, "localhost")
		if err != nil || got != want {
			t.Errorf("ParseRoute(%q) = %+v, %v; want %+v", in, got, err, want)
		}
	}
	bad := map[string]string{
		"":                                      "no host",
		"localhost":                             "reserved",
		"blog.example.com":                      "not under the domain localhost",
		"blog.localhost.":                       "ends with a dot",
		"-blog":                                 "must not start or end with '-'",
		"xn--bcher-kva":                         "punycode",
		"bl_og":                                 "may only contain",
		"bl og":                                 "may only contain",
		"blög":                                  "may only contain",
		"a..localhost":                          "is empty",
		"api":                                   "reserved",
		"x.git.localhost":                       "reserved",
		"blog/":                                 "no trailing slash",
		"blog//x":                               "empty",
		"blog/../x":                             "\"..\"",
		"blog/a?b":                              "may only contain",
		"blog/a%2e":                             "may only contain",
		"blog/" + strings.Repeat("a", 200):      "longer than",
		strings.Repeat("a.", 130) + "localhost": "longer than",
	}
	if _, err := api.NormalizeRoute(api.RouteRequest{Host: "LocalHost"}, "localhost"); err == nil || !strings.Contains(err.Error(), "the platform's domain itself") {
		t.Errorf("the bare domain as a route: got %v", err)
	}
	for in, want := range bad {
		_, err := api.ParseRoute(in, "localhost")
		if api.ErrorCode(err) != api.EInvalid || !strings.Contains(err.Error(), want) {
			t.Errorf("ParseRoute(%q) = %v; want invalid, %q", in, err, want)
		}
	}
}

// FuzzParseRoute: whatever it accepts is normalised (parsing its own output
// gives it back) and holds no byte a router or shell could misread.
func FuzzParseRoute(f *testing.F) {
	for _, s := range []string{"blog", "blog.localhost/api", "http://A.localhost/x/y", "a..b", "x/../y", "\x00", "é.localhost"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := api.ParseRoute(s, "localhost")
		if err != nil {
			return
		}
		again, err := api.ParseRoute(r.String(), "localhost")
		if err != nil || again != r {
			t.Fatalf("ParseRoute(%q) = %+v, but parsing %q gives %+v, %v", s, r, r.String(), again, err)
		}
		if strings.ContainsAny(r.String(), " \t\r\n\x00?#%\\@:") || r.Host != strings.ToLower(r.Host) {
			t.Fatalf("ParseRoute(%q) accepted %q", s, r.String())
		}
	})
}

// FuzzDomains: registered domains are DNS names (ValidateDomain), and a
// route parsed among several domains is under one of them, normalised like
// one under the platform's.
func FuzzDomains(f *testing.F) {
	for _, s := range []string{"apps.example.com", "www.apps.example.com/x", "blog", "example", "a.b", "x..y", "-a.b", "A.example.com", "xn--p.example.com"} {
		f.Add(s)
	}
	domains := []string{"localhost", "apps.example.com", "example.com"}
	f.Fuzz(func(t *testing.T, s string) {
		if api.ValidateDomain(s) == nil {
			if s != strings.ToLower(s) || strings.ContainsAny(s, " /:@\x00") || !strings.Contains(s, ".") {
				t.Fatalf("ValidateDomain accepted %q", s)
			}
		}
		r, err := api.ParseRouteIn(s, domains)
		if err != nil {
			return
		}
		d := api.DomainOf(r.Host, domains)
		if !strings.HasSuffix(r.Host, "."+d) {
			t.Fatalf("ParseRouteIn(%q) = %+v, not under %s", s, r, d)
		}
		again, err := api.ParseRouteIn(r.String(), domains)
		if err != nil || again != r {
			t.Fatalf("ParseRouteIn(%q) = %+v, but parsing %q gives %+v, %v", s, r, r.String(), again, err)
		}
	})
}
