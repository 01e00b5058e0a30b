package api

import (
	"context"
	"strings"
)

// Route limits.
const (
	MaxRouteHostLength = 253
	MaxRoutePathLength = 128
	MaxRoutesPerApp    = 32
)

// RouteRequest names a route: a full host name on the platform's domain and
// an optional path prefix ("/api"; "" routes the whole host).
type RouteRequest struct {
	Host string `json:"host"`
	Path string `json:"path,omitempty"`
}

// String returns the route as HOST[/PATH].
func (r RouteRequest) String() string { return r.Host + r.Path }

// RouteInfo is one route with the app it is mapped to.
type RouteInfo struct {
	Route
	App string `json:"app"`
	URL string `json:"url"`
}

// RouteService maps routes to apps in the caller's space. A route is unique
// across the platform: mapping a route another app holds is EConflict.
type RouteService interface {
	// ListRoutes returns every route of the caller's space, by host and path.
	ListRoutes(ctx context.Context) ([]*RouteInfo, error)
	// MapRoute maps req to app; mapping a route the app already has returns
	// it unchanged. Running web instances pick the route up without restart.
	MapRoute(ctx context.Context, app string, req RouteRequest) (*RouteInfo, error)
	// UnmapRoute removes req from app (ENotFound if the app does not have
	// it); routers stop sending it to the app's instances.
	UnmapRoute(ctx context.Context, app string, req RouteRequest) error
}

// ParseRoute reads a route as users write it — HOST[.DOMAIN][/PATH] — on the
// platform's domain: a host without a dot is a name under domain ("blog" →
// blog.localhost). The result is normalised (lowercase host) and validated
// by NormalizeRoute.
func ParseRoute(s, domain string) (RouteRequest, error) {
	return NormalizeRoute(splitRoute(s, domain), domain)
}

// ParseRouteIn is ParseRoute for a space that may use several domains: a
// host without a dot is under the first (the platform's), a full host under
// the longest of domains it is under (NormalizeRouteIn).
func ParseRouteIn(s string, domains []string) (RouteRequest, error) {
	return NormalizeRouteIn(splitRoute(s, domains[0]), domains)
}

// splitRoute splits HOST[.DOMAIN][/PATH], dropping a scheme and putting a
// bare name under domain.
func splitRoute(s, domain string) RouteRequest {
	s = strings.TrimSpace(s)
	for _, scheme := range []string{"http://", "https://"} {
		if len(s) >= len(scheme) && strings.EqualFold(s[:len(scheme)], scheme) {
			s = s[len(scheme):]
		}
	}
	host, path := s, ""
	if i := strings.IndexByte(s, '/'); i >= 0 {
		host, path = s[:i], s[i:]
	}
	if host != "" && !strings.Contains(host, ".") {
		host += "." + domain
	}
	return RouteRequest{Host: host, Path: path}
}

// NormalizeRouteIn is NormalizeRoute under the longest of domains that
// req.Host is under (the platform's domain first, then those a space may
// use); a host under none is checked against the first.
func NormalizeRouteIn(req RouteRequest, domains []string) (RouteRequest, error) {
	d := DomainOf(req.Host, domains)
	// The names the platform reserves (api, www …) are its own only under
	// its domain; a registered domain's owner may use them.
	return normalizeRoute(req, d, len(domains) > 0 && d == strings.ToLower(strings.TrimSuffix(domains[0], ".")))
}

// DomainOf returns the longest of domains that host is under or is, or the
// first domain when none is.
func DomainOf(host string, domains []string) string {
	host = strings.ToLower(host)
	best := ""
	for _, d := range domains {
		d = strings.ToLower(strings.TrimSuffix(d, "."))
		if (host == d || strings.HasSuffix(host, "."+d)) && len(d) > len(best) {
			best = d
		}
	}
	if best == "" && len(domains) > 0 {
		best = domains[0]
	}
	return best
}

// ValidateDomain checks a domain users register (strata domains create): a
// lowercase DNS name of at least two labels, each a-z, 0-9 and '-' (not at
// either end, no punycode), at most MaxRouteHostLength long.
func ValidateDomain(name string) error {
	labels := strings.Split(name, ".")
	if len(name) > MaxRouteHostLength || len(labels) < 2 {
		return Errorf(EInvalid, "domain %q is not a DNS name of two labels or more, such as apps.example.com", truncate(name, 60))
	}
	for _, l := range labels {
		if err := ValidateName("domain label", l); err != nil {
			return Errorf(EInvalid, "domain %q: %s", truncate(name, 60), ErrorMessage(err))
		}
	}
	return nil
}

// DomainInfo is a domain routes may use besides the platform's: shared (Org
// "") by every space, or private to one org's spaces.
type DomainInfo struct {
	Name string `json:"name"`
	Org  string `json:"org,omitempty"`
}

// DomainService registers domains: admins shared ones, org managers their
// org's private ones.
type DomainService interface {
	ListDomains(ctx context.Context) ([]DomainInfo, error)
	CreateDomain(ctx context.Context, d DomainInfo) (*DomainInfo, error)
	DeleteDomain(ctx context.Context, name string) error
}

// NormalizeRoute lowercases req.Host and checks the route: the host is a
// name under domain made of DNS labels (a–z, 0–9, '-', no punycode, not the
// bare domain, not a name the platform reserves), and the path is empty or
// "/segment[/segment…]" of unreserved URL characters without "." or ".."
// segments or a trailing slash. Errors are EInvalid and say how to fix it.
func NormalizeRoute(req RouteRequest, domain string) (RouteRequest, error) {
	return normalizeRoute(req, domain, true)
}

func normalizeRoute(req RouteRequest, domain string, reserved bool) (RouteRequest, error) {
	host := strings.ToLower(req.Host)
	domain = strings.ToLower(strings.TrimSuffix(domain, "."))
	if domain == "" {
		return req, Errorf(EUnavailable, "the platform has no app domain configured — start stratad with --domain")
	}
	example := "blog." + domain
	if host == "" {
		return req, Errorf(EInvalid, "route has no host — give one such as %s", example)
	}
	if len(host) > MaxRouteHostLength {
		return req, Errorf(EInvalid, "route host %q is longer than %d characters", truncate(host, 40), MaxRouteHostLength)
	}
	if strings.HasSuffix(host, ".") {
		return req, Errorf(EInvalid, "route host %q ends with a dot — drop it", truncate(host, 60))
	}
	if host == domain {
		return req, Errorf(EInvalid, "route host %q is the platform's domain itself — put a name in front, such as %s", host, example)
	}
	if !strings.HasSuffix(host, "."+domain) {
		return req, Errorf(EInvalid, "route host %q is not under the domain %s — use a name such as %s, or a domain of strata domains", truncate(host, 60), domain, example)
	}
	sub := strings.TrimSuffix(host, "."+domain)
	labels := strings.Split(sub, ".")
	for _, l := range labels {
		if err := ValidateName("route host label", l); err != nil {
			return req, Errorf(EInvalid, "route host %q: %s", truncate(host, 60), ErrorMessage(err))
		}
	}
	if reserved && reservedNames[labels[len(labels)-1]] {
		return req, Errorf(EInvalid, "route host %q is reserved by the platform — choose another name", host)
	}
	if err := checkRoutePath(req.Path); err != nil {
		return req, err
	}
	return RouteRequest{Host: host, Path: req.Path}, nil
}

func checkRoutePath(p string) error {
	if p == "" {
		return nil
	}
	if len(p) > MaxRoutePathLength {
		return Errorf(EInvalid, "route path %q is longer than %d characters", truncate(p, 40), MaxRoutePathLength)
	}
	if p[0] != '/' || p == "/" || strings.HasSuffix(p, "/") {
		return Errorf(EInvalid, "route path %q must look like /api (a leading slash, no trailing slash)", truncate(p, 40))
	}
	for _, seg := range strings.Split(p[1:], "/") {
		if seg == "" || seg == "." || seg == ".." {
			return Errorf(EInvalid, "route path %q has an empty, \".\" or \"..\" segment", truncate(p, 40))
		}
		for i := 0; i < len(seg); i++ {
			c := seg[i]
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '.' || c == '_' || c == '~') {
				return Errorf(EInvalid, "route path %q may only contain letters, digits, '-', '.', '_', '~' and '/'", truncate(p, 40))
			}
		}
	}
	return nil
}
