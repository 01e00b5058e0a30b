package router_test

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/strata-paas/strata/router"
)

// TestLeanPathMatchesReverseProxy sends the same request without a body
// (the lean path) and with one (httputil.ReverseProxy) and checks that the
// backend sees the same request head and the client the same response
// headers and trailers.
func TestLeanPathMatchesReverseProxy(t *testing.T) {
	be := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		lines := []string{r.Method + " " + r.RequestURI + " " + r.Proto, "Host: " + r.Host}
		for k, vv := range r.Header {
			if k != "Content-Length" {
				lines = append(lines, k+": "+strings.Join(vv, " | "))
			}
		}
		slices.Sort(lines[2:])
		_, _ = io.ReadAll(r.Body)
		w.Header().Set("Connection", "X-Drop")
		w.Header().Set("X-Drop", "1")
		w.Header().Set("Keep-Alive", "timeout=5")
		w.Header().Set("Proxy-Authenticate", "Basic")
		w.Header().Add("X-Keep", "a")
		w.Header().Add("X-Keep", "b")
		w.Header().Set("X-Request-Id", "from-backend")
		w.Header().Set("Trailer", "X-Sum")
		_, _ = io.WriteString(w, strings.Join(lines, "\n"))
		w.Header().Set("X-Sum", "42")
	}))
	t.Cleanup(be.Close)
	h := newHarness(t, router.Config{})
	h.register("lean.localhost", be.URL, "lean-0", "lean")

	send := func(body string) (*http.Response, string) {
		t.Helper()
		var rd io.Reader
		if body != "" {
			rd = strings.NewReader(body)
		}
		req, err := http.NewRequest("POST", h.url+"/p/a%2Fb?q=1&r=%20", rd)
		if err != nil {
			t.Fatal(err)
		}
		req.Host = "lean.localhost"
		req.Header = http.Header{
			"X-Forwarded-For":     {"203.0.113.7", "198.51.100.1"},
			"X-Forwarded-Host":    {"evil.example"},
			"X-Forwarded-Proto":   {"https"},
			"Forwarded":           {"for=192.0.2.1"},
			"Te":                  {"trailers, deflate"},
			"Connection":          {"X-Hop, keep-alive"},
			"X-Hop":               {"secret"},
			"Keep-Alive":          {"300"},
			"Proxy-Authorization": {"Basic eA=="},
			"Proxy-Connection":    {"keep-alive"},
			"User-Agent":          {"ua/1"},
			"X-Multi":             {"a", "b"},
			"X-Request-Id":        {"rid-1"},
			"Accept":              {"*/*"},
		}
		resp, err := h.client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return resp, string(b)
	}
	leanResp, leanSeen := send("")
	rpResp, rpSeen := send("x")
	if leanSeen != rpSeen {
		t.Errorf("backend saw different requests:\nlean path:\n%s\n\nReverseProxy:\n%s", leanSeen, rpSeen)
	}
	for _, bad := range []string{"X-Hop", "Keep-Alive", "Proxy-", "Forwarded: ", "evil", "Connection"} {
		if strings.Contains(leanSeen, bad) {
			t.Errorf("backend saw %q:\n%s", bad, leanSeen)
		}
	}
	for _, want := range []string{"X-Forwarded-For: 203.0.113.7, 198.51.100.1, 127.0.0.1", "X-Forwarded-Host: lean.localhost",
		"X-Forwarded-Proto: http", "X-Request-Id: rid-1", "Te: trailers", "User-Agent: ua/1", "X-Multi: a | b", "POST /p/a%2Fb?q=1&r=%20 HTTP/1.1"} {
		if !strings.Contains(leanSeen, want) {
			t.Errorf("backend did not see %q:\n%s", want, leanSeen)
		}
	}
	clean := func(h http.Header) http.Header {
		h = h.Clone()
		h.Del("Date")
		h.Del("Content-Length")
		return h
	}
	if got, want := clean(leanResp.Header), clean(rpResp.Header); !equalHeaders(got, want) {
		t.Errorf("response headers differ:\nlean path:    %v\nReverseProxy: %v", got, want)
	}
	if got := leanResp.Header.Get("X-Request-Id"); got != "rid-1" {
		t.Errorf("X-Request-Id: got %q, want rid-1", got)
	}
	for _, k := range []string{"X-Drop", "Keep-Alive", "Proxy-Authenticate"} {
		if v, ok := leanResp.Header[k]; ok {
			t.Errorf("response kept hop-by-hop header %s: %q", k, v)
		}
	}
	if got, want := leanResp.Trailer.Get("X-Sum"), rpResp.Trailer.Get("X-Sum"); got != "42" || got != want {
		t.Errorf("trailer X-Sum: lean path %q, ReverseProxy %q, want 42", got, want)
	}
}

func equalHeaders(a, b http.Header) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if !slices.Equal(v, b[k]) {
			return false
		}
	}
	return true
}

// TestLeanPathStreamsAndAborts checks that a streamed response reaches the
// client before the backend finishes it, and that a response the backend
// cuts short is cut short for the client too (never completed).
func TestLeanPathStreamsAndAborts(t *testing.T) {
	release := make(chan struct{})
	be := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/events":
			w.Header().Set("Content-Type", "text/event-stream")
			_, _ = io.WriteString(w, "data: one\n\n")
			w.(http.Flusher).Flush()
			<-release
			_, _ = io.WriteString(w, "data: two\n\n")
		case "/short":
			conn, brw, err := http.NewResponseController(w).Hijack()
			if err != nil {
				t.Error(err)
				return
			}
			defer conn.Close()
			_, _ = brw.WriteString("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly ten b")
			_ = brw.Flush()
		}
	}))
	t.Cleanup(be.Close)
	h := newHarness(t, router.Config{})
	h.register("stream.localhost", be.URL, "s-0", "stream")

	conn, err := net.Dial("tcp", strings.TrimPrefix(h.url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
	_, _ = io.WriteString(conn, "GET /events HTTP/1.1\r\nHost: stream.localhost\r\n\r\n")
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(resp.Body).ReadString('\n')
	if err != nil || line != "data: one\n" {
		t.Fatalf("first event before the backend finished: got %q, %v", line, err)
	}
	close(release)

	req, _ := http.NewRequest("GET", h.url+"/short", nil)
	req.Host = "stream.localhost"
	resp, err = h.client.Do(req)
	if err != nil {
		return // cut before the headers were sent: fine
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err == nil {
		t.Errorf("truncated backend response reached the client as complete: %q", b)
	}
}
