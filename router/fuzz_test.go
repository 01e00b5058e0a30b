package router_test

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/strata-paas/strata/api"
	"github.com/strata-paas/strata/router"
	"github.com/strata-paas/strata/router/registry"
)

// FuzzProxyRequest: hostile hosts, paths and request ids never panic the
// proxy, always get a well-formed answer, and never inject lines into the
// access log or headers into the response.
func FuzzProxyRequest(f *testing.F) {
	f.Add("known.localhost", "/a%0Ab", "id-1")
	f.Add("KNOWN.localhost.:1", "/", "x\r\nSet-Cookie: a=b")
	f.Add("", "//..", "")
	f.Add("[::1]", "/%zz", strings.Repeat("a", 129))

	reg := registry.New(registry.Config{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	// A dead endpoint: the proxy's retries and error pages run without a backend.
	if err := reg.Register(api.RouterRegistration{Host: "127.0.0.1", Port: 1, URIs: []string{"known.localhost"},
		PrivateInstanceID: "i", Tags: map[string]string{"app_name": "known"}}); err != nil {
		f.Fatal(err)
	}
	var lines []string
	p := router.New(router.Config{MaxTries: 1, AccessLog: func(e api.LogEnvelope) { lines = append(lines, e.Line) }}, reg,
		slog.New(slog.NewTextHandler(io.Discard, nil)))
	f.Fuzz(func(t *testing.T, host, path, reqID string) {
		lines = lines[:0]
		req := httptest.NewRequest("GET", "http://x/", nil)
		req.Host = host
		req.URL = &url.URL{Path: path}
		req.Header.Set("X-Request-Id", reqID)
		rec := httptest.NewRecorder()
		p.ServeHTTP(rec, req)
		switch rec.Code {
		case http.StatusNotFound, http.StatusBadGateway:
		default:
			t.Fatalf("host %q path %q: status %d", host, path, rec.Code)
		}
		if id := rec.Header().Get("X-Request-Id"); id == "" || strings.ContainsAny(id, "\r\n ") {
			t.Fatalf("bad response request id %q", id)
		}
		for _, l := range lines {
			if strings.ContainsAny(l, "\r\n") {
				t.Fatalf("access log line %q contains a line break", l)
			}
		}
	})
}

// FuzzGuard: the request-framing guard never panics, and its verdict does not
// depend on how the bytes were split into reads.
func FuzzGuard(f *testing.F) {
	f.Add([]byte("GET / HTTP/1.1\r\nHost: a\r\n\r\n"), 3)
	f.Add([]byte("POST / HTTP/1.1\r\nContent-Length: 5\r\n\r\nhelloPOST / HTTP/1.1\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n"), 7)
	f.Add([]byte("GET / HTTP/1.1\nX: a\n b\n\n"), 1)
	f.Add([]byte("\r\nGET / HTTP/1.1\r\nUpgrade: websocket\r\n\r\n"), 2)
	f.Fuzz(func(t *testing.T, data []byte, split int) {
		at, why := router.GuardScan(data, nil)
		at2, why2 := router.GuardScan(data, []int{split%97 + 1, 1, 5})
		if at != at2 || why != why2 {
			t.Fatalf("one read: stop %d reason %d; split reads: stop %d reason %d", at, why, at2, why2)
		}
		if why != 0 && at == 0 {
			t.Fatalf("reason %d without a stop", why)
		}
	})
}
