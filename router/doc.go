// Package router is Strata's HTTP router: it answers Host: <app>.<domain> and
// proxies each request to a healthy instance of the app found through a
// Lookup (implemented by router/registry from the gorouter NATS protocol).
//
// The Proxy picks endpoints round-robin, or by least connections on routes
// registered with the tag lb_algo=least-conn, and retries a request on
// another instance when connecting fails (nothing was sent yet; a request is
// never replayed once its body was read), so a crashed instance costs no
// client errors while a healthy one remains. Bodiless requests take a lean
// path that writes the outbound request head directly and goes to backends
// over a single-goroutine keep-alive connection pool; bodies and upgrades
// (WebSockets) go through httputil.ReverseProxy and net/http's Transport.
// Both send the same request head. Unknown hosts get 404, known hosts
// without instances 503, backends that cannot be reached 502 and backends
// that do not answer in time 504; every error page names the request id.
//
// Server runs the Proxy with slowloris and header-size limits and a framing
// guard on each plaintext connection that refuses (400, connection closed)
// requests with both Content-Length and Transfer-Encoding or folded headers,
// which net/http would accept; net/http itself refuses the other ambiguous
// framings. Plaintext connections start on the router's own HTTP/1.1 loop
// (h1serve.go), which serves GET and HEAD requests with a plain header block
// itself — one read buffer, one write per response, no goroutine hand-off —
// and hands a connection, with the bytes read so far, to net/http at the
// first request it does not serve (bodies, upgrades, HTTP/1.0, anything
// unusual or malformed), so that net/http and the guard judge those exactly
// as before. The lean path reads plain backend response heads itself too;
// both parsers are fuzzed against net/http's. ServeTLS terminates TLS with
// certificates chosen by SNI from a CertStore and offers HTTP/2. On ctx end Server drains: it stops accepting,
// lets in-flight requests finish within ShutdownGrace, then cancels the rest.
// Metrics exports Prometheus counters and histograms per app for an admin
// listener (AdminHandler).
package router
