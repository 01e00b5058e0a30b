package router_test

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/strata-paas/strata/router"
)

// TestServingLoopHandsOff: on one pipelined keep-alive connection, a GET the
// router's own loop serves, then a POST with a body (handed to net/http with
// the bytes already read), then a GET net/http serves, are all answered in
// order, and the backend sees each once, the body intact.
func TestServingLoopHandsOff(t *testing.T) {
	h := newHarness(t, router.Config{})
	rec := newRecorder(t)
	h.register("s.localhost", rec.srv.URL, "s-0", "s")
	raw := "GET /one HTTP/1.1\r\nHost: s.localhost\r\nX-A: 1\r\n\r\n" +
		"POST /two HTTP/1.1\r\nHost: s.localhost\r\nContent-Length: 5\r\n\r\nhello" +
		"GET /three HTTP/1.1\r\nHost: s.localhost\r\nConnection: close\r\n\r\n"
	statuses, closed := rawExchange(t, strings.TrimPrefix(h.url, "http://"), raw)
	if len(statuses) != 3 || statuses[0] != 200 || statuses[1] != 200 || statuses[2] != 200 || !closed {
		t.Errorf("got %v closed=%v, want [200 200 200] and the connection closed after the last", statuses, closed)
	}
	want := []string{"GET /one ", "POST /two hello", "GET /three "}
	if got := rec.requests(); strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("backend saw %q, want %q", got, want)
	}
}

// TestServingLoopKeepAliveAndClose: pipelined GETs the loop serves itself are
// answered in order on one connection, which it closes after the one that
// asked for it.
func TestServingLoopKeepAliveAndClose(t *testing.T) {
	h := newHarness(t, router.Config{})
	rec := newRecorder(t)
	h.register("s.localhost", rec.srv.URL, "s-0", "s")
	raw := "GET /a HTTP/1.1\r\nHost: s.localhost\r\n\r\n" +
		"GET /b HTTP/1.1\r\nhost: s.localhost\r\n\r\n" +
		"GET /c?x=1 HTTP/1.1\r\nHost: s.localhost\r\nConnection: close\r\n\r\n" +
		"GET /never HTTP/1.1\r\nHost: s.localhost\r\n\r\n"
	statuses, closed := rawExchange(t, strings.TrimPrefix(h.url, "http://"), raw)
	if len(statuses) != 3 || !closed {
		t.Errorf("got %v closed=%v, want three answers and the connection closed", statuses, closed)
	}
	want := []string{"GET /a ", "GET /b ", "GET /c "}
	if got := rec.requests(); strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("backend saw %q, want %q", got, want)
	}
}

// TestServingLoopHead: a HEAD served by the loop carries the backend's
// Content-Length and no body, and the connection stays usable.
func TestServingLoopHead(t *testing.T) {
	h := newHarness(t, router.Config{})
	rec := newRecorder(t)
	h.register("s.localhost", rec.srv.URL, "s-0", "s")
	client := &http.Client{Transport: &http.Transport{}}
	defer client.CloseIdleConnections()
	for _, method := range []string{"HEAD", "GET", "HEAD"} {
		req, _ := http.NewRequest(method, h.url+"/h", nil)
		req.Host = "s.localhost"
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || (method == "HEAD" && len(body) != 0) || resp.Header.Get("X-Request-Id") == "" {
			t.Errorf("%s: %d, %d body bytes, request id %q", method, resp.StatusCode, len(body), resp.Header.Get("X-Request-Id"))
		}
	}
	if got := rec.requests(); len(got) != 3 {
		t.Errorf("backend saw %q, want 3 requests", got)
	}
}
