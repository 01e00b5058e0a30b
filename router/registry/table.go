package registry

import (
	"path"
	"strings"
	"sync/atomic"
	"time"
)

// Endpoint is one app instance at one ip:port. Its identity fields never
// change after creation; a re-registration that changes them creates a new
// Endpoint. The failure mark is the only mutable part and is safe for
// concurrent use.
type Endpoint struct {
	Addr                 string // host:port to dial
	PrivateInstanceID    string
	PrivateInstanceIndex string
	AppID                string
	AppName              string            // tags["app_name"], for access logs
	Tags                 map[string]string // never modified; do not modify

	failedUntil atomic.Int64 // unix nanoseconds; 0 = healthy
	inFlight    atomic.Int64 // requests being proxied to it (least-connections routes)
}

// Acquire counts a request being proxied to the endpoint; Release ends it.
// Least-connections routes pick the endpoint with the fewest. Safe for
// concurrent use.
func (e *Endpoint) Acquire() { e.inFlight.Add(1) }

// Release undoes one Acquire.
func (e *Endpoint) Release() { e.inFlight.Add(-1) }

// InFlight returns the number of Acquires not yet Released.
func (e *Endpoint) InFlight() int64 { return e.inFlight.Load() }

// MarkFailed records that a connection to the endpoint failed; Failed reports
// true until the given time. Safe for concurrent use.
func (e *Endpoint) MarkFailed(until time.Time) { e.failedUntil.Store(until.UnixNano()) }

// Failed reports whether the endpoint was marked failed and the mark has not
// expired at now. Safe for concurrent use.
func (e *Endpoint) Failed(now time.Time) bool {
	u := e.failedUntil.Load()
	return u != 0 && now.UnixNano() < u
}

// sameIdentity reports whether e describes the same instance as reg would.
func (e *Endpoint) sameIdentity(o *Endpoint) bool {
	if e.Addr != o.Addr || e.PrivateInstanceID != o.PrivateInstanceID ||
		e.PrivateInstanceIndex != o.PrivateInstanceIndex || e.AppID != o.AppID ||
		len(e.Tags) != len(o.Tags) {
		return false
	}
	for k, v := range e.Tags {
		if ov, ok := o.Tags[k]; !ok || ov != v {
			return false
		}
	}
	return true
}

// Pool is the endpoints of one route (host + path prefix) in one Table
// snapshot. It is immutable except for its round-robin cursor, which is
// shared by every snapshot of the same route. Safe for concurrent use.
type Pool struct {
	host      string
	path      string
	appID     string
	appName   string
	leastConn bool
	sleeping  bool // the route's app sleeps (scale to zero)
	endpoints []*Endpoint
	cursor    *atomic.Uint32
	activity  *activity
}

// Host returns the normalised host of the route.
func (p *Pool) Host() string { return p.host }

// Path returns the path prefix of the route ("" for the whole host).
func (p *Pool) Path() string { return p.path }

// AppID returns the app ID of the route's latest endpoint (its log stream,
// api.SubjectLogs), kept like AppName; "" if never known.
func (p *Pool) AppID() string { return p.appID }

// AppName returns the app name of the route's latest endpoint (kept after the
// last endpoint leaves, for error pages and access logs); "" if never known.
func (p *Pool) AppName() string { return p.appName }

// LeastConn reports whether the route balances by least connections (its
// latest registration carried the tag lb_algo=least-conn) rather than
// round-robin.
func (p *Pool) LeastConn() bool { return p.leastConn }

// LeastLoaded returns the index (modulo Len) of the endpoint with the fewest
// requests in flight among those not Failed at now, scanning from start so
// that ties rotate. It returns start when every endpoint has failed. It
// panics on an empty pool.
func (p *Pool) LeastLoaded(start int, now time.Time) int {
	best, bestN := start, int64(-1)
	for j := range p.endpoints {
		ep := p.At(start + j)
		if ep.Failed(now) {
			continue
		}
		if n := ep.InFlight(); bestN < 0 || n < bestN {
			best, bestN = start+j, n
			if n == 0 {
				break
			}
		}
	}
	return best
}

// Len returns the number of endpoints.
func (p *Pool) Len() int { return len(p.endpoints) }

// Next advances the round-robin cursor and returns the index to start at.
func (p *Pool) Next() int { return int(p.cursor.Add(1) - 1) }

// At returns the endpoint at index i modulo Len. It panics on an empty pool.
func (p *Pool) At(i int) *Endpoint {
	if i < 0 {
		i = -i
	}
	return p.endpoints[i%len(p.endpoints)]
}

// Endpoints returns a copy of the endpoints.
func (p *Pool) Endpoints() []*Endpoint { return append([]*Endpoint(nil), p.endpoints...) }

// hostEntry is every route of one host, longest path first.
type hostEntry struct {
	pools []*Pool
}

// Table is an immutable snapshot of the route table. Lookup is lock-free and
// does not allocate. Safe for concurrent use.
type Table struct {
	hosts     map[string]*hostEntry
	routes    int
	endpoints int
}

// Routes returns the number of routes (host + path prefix) in the table,
// including routes without endpoints.
func (t *Table) Routes() int { return t.routes }

// Endpoints returns the number of (route, endpoint) pairs in the table: an
// instance serving two routes counts twice.
func (t *Table) Endpoints() int { return t.endpoints }

var emptyTable = &Table{hosts: map[string]*hostEntry{}}

// Lookup returns the pool of the longest path prefix of host that matches
// requestPath, preferring routes that have endpoints; a route without
// endpoints is returned only when no matching route has any (the proxy
// answers 503). It returns nil when no route of host matches (404). host is
// normalised with NormalizeHost.
func (t *Table) Lookup(host, requestPath string) *Pool {
	e := t.hosts[NormalizeHost(host)]
	if e == nil {
		return nil
	}
	var empty *Pool
	for _, p := range e.pools {
		if !matchPath(p.path, requestPath) {
			continue
		}
		if len(p.endpoints) > 0 {
			return p
		}
		if empty == nil {
			empty = p
		}
	}
	return empty
}

// Hosts returns the number of hosts in the table.
func (t *Table) Hosts() int { return len(t.hosts) }

// HasHost reports whether any route (of any path) is known for host.
func (t *Table) HasHost(host string) bool { return t.hosts[NormalizeHost(host)] != nil }

// matchPath reports whether prefix matches requestPath on a segment boundary:
// "/api" matches "/api", "/api/x" but not "/apix".
func matchPath(prefix, requestPath string) bool {
	if prefix == "" {
		return true
	}
	if !strings.HasPrefix(requestPath, prefix) {
		return false
	}
	return len(requestPath) == len(prefix) || requestPath[len(prefix)] == '/'
}

// NormalizeHost returns host lowercased, without a port, brackets around an
// IPv6 literal, or trailing dots. It does not allocate when host is already
// normal.
func NormalizeHost(host string) string {
	if len(host) > 0 && host[0] == '[' {
		if i := strings.IndexByte(host, ']'); i > 0 {
			host = host[1:i]
		}
	} else if i := strings.LastIndexByte(host, ':'); i >= 0 && strings.IndexByte(host, ':') == i {
		host = host[:i] // exactly one colon: host:port (several: a bare IPv6 literal)
	}
	for len(host) > 0 && host[len(host)-1] == '.' {
		host = host[:len(host)-1]
	}
	return strings.ToLower(host)
}

// validHost reports whether host is non-empty, made of lowercase hostname
// characters (a-z, 0-9, '.', '-', '_', '*', and ':' of IPv6 literals) and
// already normal.
func validHost(host string) bool {
	if host == "" || len(host) > 255 {
		return false
	}
	for i := 0; i < len(host); i++ {
		c := host[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '.' || c == '-' || c == '_' || c == '*' || c == ':') {
			return false
		}
	}
	return NormalizeHost(host) == host
}

// ParseURI splits a registered uri ("host[:port][/path]") into its normalised
// host and path prefix ("" or "/a/b", cleaned, without a trailing slash). ok
// is false when the host is empty or not a host name.
func ParseURI(uri string) (host, pathPrefix string, ok bool) {
	uri = strings.TrimSpace(uri)
	if i := strings.IndexAny(uri, "?#"); i >= 0 {
		uri = uri[:i]
	}
	host, pathPrefix = uri, ""
	if i := strings.IndexByte(uri, '/'); i >= 0 {
		host, pathPrefix = uri[:i], uri[i:]
	}
	host = NormalizeHost(host)
	if !validHost(host) {
		return "", "", false
	}
	if pathPrefix != "" {
		pathPrefix = path.Clean(pathPrefix)
		if pathPrefix == "/" || pathPrefix == "." {
			pathPrefix = ""
		}
	}
	return host, pathPrefix, true
}
