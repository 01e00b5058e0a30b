// Package router is Strata's HTTP router: it answers Host: <app>.<domain> and
// proxies each request to a healthy instance of the app found through a
// Lookup (implemented by router/registry from the gorouter NATS protocol).
//
// The Proxy picks endpoints round-robin and retries a request on another
// instance when connecting fails (nothing was sent yet), so a crashed instance
// costs no client errors while a healthy one remains. Unknown hosts get 404,
// known hosts without instances 503, backends that cannot be reached 502 and
// backends that do not answer in time 504; every error page names the request
// id. Server runs the Proxy with slowloris and header-size limits.
package router
