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
	return NormalizeRoute(RouteRequest{Host: host, Path: path}, domain)
}

// NormalizeRoute lowercases req.Host and checks the route: the host is a
// name under domain made of DNS labels (a–z, 0–9, '-', no punycode, not the
// bare domain, not a name the platform reserves), and the path is empty or
// "/segment[/segment…]" of unreserved URL characters without "." or ".."
// segments or a trailing slash. Errors are EInvalid and say how to fix it.
func NormalizeRoute(req RouteRequest, domain string) (RouteRequest, error) {
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
		return req, Errorf(EInvalid, "route host %q is not under the domain %s — use a name such as %s (other domains are not supported yet)", truncate(host, 60), domain, example)
	}
	sub := strings.TrimSuffix(host, "."+domain)
	labels := strings.Split(sub, ".")
	for _, l := range labels {
		if err := ValidateName("route host label", l); err != nil {
			return req, Errorf(EInvalid, "route host %q: %s", truncate(host, 60), ErrorMessage(err))
		}
	}
	if reservedNames[labels[len(labels)-1]] {
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
