// Package client is the Go client of Strata's REST API (see api/httpapi),
// used by the strata CLI and the web console.
//
// Every method takes a context and returns *api.Error values: HTTP error
// answers are decoded back into their code and message (status.go holds the
// one status → code fallback), and an API that cannot be reached is reported
// as api.EUnavailable with what to do. The underlying http.Client has no
// overall timeout because pushes and followed logs stream for a long time;
// use the context to bound calls. A Client is safe for concurrent use.
package client
