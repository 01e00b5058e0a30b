package router_test

import (
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	"github.com/strata-paas/strata/router"
)

// TestBackendConnectionReuse covers the keep-alive fast path to backends:
// stale pooled connections are replaced without client errors, responses
// without bodies do not confuse the framing of the next one, interim 1xx
// responses are skipped, and backends that close after each response work.
func TestBackendConnectionReuse(t *testing.T) {
	var conns atomic.Int32
	be := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/204":
			w.WriteHeader(http.StatusNoContent)
		case "/hints":
			w.Header().Set("Link", "</a.css>; rel=preload")
			w.WriteHeader(http.StatusEarlyHints)
			_, _ = io.WriteString(w, "after hints")
		case "/close":
			w.Header().Set("Connection", "close")
			_, _ = io.WriteString(w, "closing")
		default:
			_, _ = io.WriteString(w, "body of "+r.Method)
		}
	}))
	be.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	be.Start()
	t.Cleanup(be.Close)
	h := newHarness(t, router.Config{})
	h.register("k.localhost", be.URL, "k-0", "k")

	steps := []struct {
		method, path string
		status       int
		body         string
	}{
		{"GET", "/", 200, "body of GET"},
		{"HEAD", "/", 200, ""},
		{"GET", "/204", 204, ""},
		{"GET", "/hints", 200, "after hints"},
		{"GET", "/close", 200, "closing"},
		{"GET", "/", 200, "body of GET"},
	}
	for round := range 5 {
		for _, s := range steps {
			resp, body := h.do(s.method, "k.localhost", s.path, nil)
			if resp.StatusCode != s.status || body != s.body {
				t.Fatalf("round %d %s %s: got %d %q, want %d %q", round, s.method, s.path, resp.StatusCode, body, s.status, s.body)
			}
		}
		// The backend drops every connection, idle ones included: the next
		// request finds a dead pooled connection and must still succeed.
		be.CloseClientConnections()
	}
	if n := conns.Load(); n > 5*3 {
		t.Errorf("backend saw %d connections for 5 rounds; keep-alive is not reused", n)
	}
}
