package router_test

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/strata-paas/strata/router"
)

// recorder is an instrumented backend: it records every request it sees
// (method, path, body) so tests can check the router sent exactly one
// backend request per accepted client request and never a smuggled one.
type recorder struct {
	mu   sync.Mutex
	seen []string
	srv  *httptest.Server
}

func newRecorder(t testing.TB) *recorder {
	rec := &recorder{}
	rec.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, err := io.ReadAll(r.Body)
		entry := r.Method + " " + r.URL.Path + " " + string(b)
		if err != nil {
			entry += " (body error)"
		}
		rec.mu.Lock()
		rec.seen = append(rec.seen, entry)
		rec.mu.Unlock()
		_, _ = io.WriteString(w, "ok")
	}))
	t.Cleanup(rec.srv.Close)
	return rec
}

func (r *recorder) requests() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.seen...)
}

func (r *recorder) reset() {
	r.mu.Lock()
	r.seen = nil
	r.mu.Unlock()
}

// rawExchange writes raw to the router and reads responses until the router
// closes the connection (or the deadline passes). It returns the responses'
// status codes and whether the connection was closed by the router.
func rawExchange(t *testing.T, addr, raw string) (statuses []int, closed bool) {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(conn, raw); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(conn)
	for {
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				return statuses, false
			}
			return statuses, true // EOF or reset: closed
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		statuses = append(statuses, resp.StatusCode)
		if resp.Close {
			// The router announced it closes; verify it really does.
			_, err := br.ReadByte()
			var ne net.Error
			return statuses, !(errors.As(err, &ne) && ne.Timeout())
		}
		if len(statuses) > 8 {
			return statuses, false
		}
	}
}

const smuggled = "GET /smuggled HTTP/1.1\r\nHost: s.localhost\r\n\r\n"

// TestHostileRequests sends malformed and ambiguous requests over raw TCP:
// each gets a 4xx/5xx and a closed connection, and the backend never sees a
// smuggled request.
func TestHostileRequests(t *testing.T) {
	h := newHarness(t, router.Config{MaxHeaderBytes: 8 << 10})
	rec := newRecorder(t)
	h.register("s.localhost", rec.srv.URL, "s-0", "s")
	addr := strings.TrimPrefix(h.url, "http://")

	tests := []struct {
		name string
		raw  string
		want []int // acceptable status of the (only) response
		// maxBackend is how many backend requests the client request may cause
		// (1 when the request line and headers are sound and the body is not).
		maxBackend int
	}{
		{"CL.TE", "POST / HTTP/1.1\r\nHost: s.localhost\r\nContent-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + smuggled, []int{400}, 0},
		{"TE.CL", "POST / HTTP/1.1\r\nHost: s.localhost\r\nTransfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n5c\r\n" + smuggled + "\r\n0\r\n\r\n", []int{400}, 0},
		{"CL.TE lower case", "POST / HTTP/1.1\r\nhost: s.localhost\r\ncontent-length: 3\r\ntransfer-encoding: chunked\r\n\r\n0\r\n\r\n", []int{400}, 0},
		{"TE obfuscated", "POST / HTTP/1.1\r\nHost: s.localhost\r\nContent-Length: 4\r\nTransfer-Encoding: xchunked\r\n\r\n0\r\n\r\n", []int{400, 501}, 0},
		{"TE list", "POST / HTTP/1.1\r\nHost: s.localhost\r\nTransfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n", []int{400, 501}, 0},
		{"two TE", "POST / HTTP/1.1\r\nHost: s.localhost\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", []int{400, 501}, 0},
		{"TE space before colon", "POST / HTTP/1.1\r\nHost: s.localhost\r\nTransfer-Encoding : chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n", []int{400}, 0},
		{"two different CL", "POST / HTTP/1.1\r\nHost: s.localhost\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!" + smuggled, []int{400}, 0},
		{"CL list", "POST / HTTP/1.1\r\nHost: s.localhost\r\nContent-Length: 5, 6\r\n\r\nhello!", []int{400}, 0},
		{"CL sign", "POST / HTTP/1.1\r\nHost: s.localhost\r\nContent-Length: +5\r\n\r\nhello", []int{400}, 0},
		{"CL negative", "POST / HTTP/1.1\r\nHost: s.localhost\r\nContent-Length: -1\r\n\r\n", []int{400}, 0},
		{"CL hex", "POST / HTTP/1.1\r\nHost: s.localhost\r\nContent-Length: 0x5\r\n\r\nhello", []int{400}, 0},
		{"bad chunk size", "POST / HTTP/1.1\r\nHost: s.localhost\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n", []int{400}, 1},
		{"chunk size overflow", "POST / HTTP/1.1\r\nHost: s.localhost\r\nTransfer-Encoding: chunked\r\n\r\nfffffffffffffffff1\r\nhello\r\n0\r\n\r\n", []int{400}, 1},
		{"chunk data too long", "POST / HTTP/1.1\r\nHost: s.localhost\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nhelloXX\r\n0\r\n\r\n" + smuggled, []int{400}, 1},
		{"chunk negative", "POST / HTTP/1.1\r\nHost: s.localhost\r\nTransfer-Encoding: chunked\r\n\r\n-3\r\nabc\r\n0\r\n\r\n", []int{400}, 1},
		{"two Host", "GET / HTTP/1.1\r\nHost: s.localhost\r\nHost: evil.localhost\r\n\r\n", []int{400}, 0},
		{"no Host", "GET / HTTP/1.1\r\n\r\n", []int{400}, 0},
		{"obs-fold", "GET / HTTP/1.1\r\nHost: s.localhost\r\nX-A: a\r\n b\r\n\r\n", []int{400}, 0},
		{"obs-fold TE", "POST / HTTP/1.1\r\nHost: s.localhost\r\nTransfer-Encoding:\r\n chunked\r\nContent-Length: 3\r\n\r\n0\r\n\r\n", []int{400}, 0},
		{"obs-fold first", "GET / HTTP/1.1\r\n X-A: a\r\nHost: s.localhost\r\n\r\n", []int{400}, 0},
		{"NUL in header", "GET / HTTP/1.1\r\nHost: s.localhost\r\nX-A: a\x00b\r\n\r\n", []int{400}, 0},
		{"bare CR in header", "GET / HTTP/1.1\r\nHost: s.localhost\r\nX-A: a\rContent-Length: 5\r\n\r\n", []int{400}, 0},
		{"header without colon", "GET / HTTP/1.1\r\nHost: s.localhost\r\nX-A\r\n\r\n", []int{400}, 0},
		{"oversize header", "GET / HTTP/1.1\r\nHost: s.localhost\r\nX-Big: " + strings.Repeat("x", 64<<10) + "\r\n\r\n", []int{400, 431}, 0},
		{"bad version", "GET / HTTP/9.9\r\nHost: s.localhost\r\n\r\n", []int{400, 505}, 0},
		{"HTTP/1.0 CL and TE", "POST / HTTP/1.0\r\nHost: s.localhost\r\nConnection: keep-alive\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\nhello", []int{400}, 0},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// A path per case: a backend handler of an earlier case may still
			// be finishing (reading a broken body) when this one runs.
			path := "/case-" + strconv.Itoa(i)
			statuses, closed := rawExchange(t, addr, strings.Replace(tt.raw, " / HTTP", " "+path+" HTTP", 1))
			if len(statuses) != 1 || !slices.Contains(tt.want, statuses[0]) {
				t.Errorf("got responses %v, want one of %v", statuses, tt.want)
			}
			if !closed {
				t.Errorf("connection left open")
			}
			var seen []string
			for _, s := range rec.requests() {
				if f := strings.Fields(s); len(f) > 1 && f[1] == path {
					seen = append(seen, s)
				}
			}
			if len(seen) > tt.maxBackend {
				t.Errorf("backend saw %d requests %q, want at most %d", len(seen), seen, tt.maxBackend)
			}
		})
	}
	for _, s := range rec.requests() {
		if strings.Contains(s, "smuggled") {
			t.Errorf("backend saw a smuggled request: %q", s)
		}
	}
}

// TestWellFormedFraming is the control for TestHostileRequests: valid
// keep-alive, pipelined, chunked and duplicate-but-equal Content-Length
// requests are each forwarded exactly once, in order.
func TestWellFormedFraming(t *testing.T) {
	h := newHarness(t, router.Config{})
	rec := newRecorder(t)
	h.register("s.localhost", rec.srv.URL, "s-0", "s")
	addr := strings.TrimPrefix(h.url, "http://")

	tests := []struct {
		name     string
		raw      string
		statuses []int
		backend  []string
		closed   bool
	}{
		{"pipelined", "GET /a HTTP/1.1\r\nHost: s.localhost\r\n\r\nPOST /b HTTP/1.1\r\nHost: s.localhost\r\nContent-Length: 5\r\n\r\nhelloGET /c HTTP/1.1\r\nHost: s.localhost\r\nConnection: close\r\n\r\n",
			[]int{200, 200, 200}, []string{"GET /a ", "POST /b hello", "GET /c "}, true},
		{"body looks like a request", "POST /a HTTP/1.1\r\nHost: s.localhost\r\nContent-Length: 48\r\n\r\nPOST /x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nGET /b HTTP/1.1\r\nHost: s.localhost\r\nConnection: close\r\n\r\n",
			[]int{200, 200}, []string{"POST /a POST /x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n", "GET /b "}, true},
		{"chunked then closed", "POST /a HTTP/1.1\r\nHost: s.localhost\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\nGET /b HTTP/1.1\r\nHost: s.localhost\r\n\r\n",
			[]int{200}, []string{"POST /a hello"}, true},
		{"equal CL twice", "POST /a HTTP/1.1\r\nHost: s.localhost\r\nContent-Length: 5\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello",
			[]int{200}, []string{"POST /a hello"}, true},
		{"LF line ends", "GET /a HTTP/1.1\nHost: s.localhost\nConnection: close\n\n",
			[]int{200}, []string{"GET /a "}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec.reset()
			statuses, closed := rawExchange(t, addr, tt.raw)
			if !slices.Equal(statuses, tt.statuses) || closed != tt.closed {
				t.Errorf("got %v closed=%v, want %v closed=%v", statuses, closed, tt.statuses, tt.closed)
			}
			if got := rec.requests(); strings.Join(got, "|") != strings.Join(tt.backend, "|") {
				t.Errorf("backend saw %q, want %q", got, tt.backend)
			}
		})
	}
}

// TestSmugglingAfterValidRequest: an ambiguous request pipelined behind a
// valid one is refused; the valid one is served, and nothing else reaches the
// backend.
func TestSmugglingAfterValidRequest(t *testing.T) {
	h := newHarness(t, router.Config{})
	rec := newRecorder(t)
	h.register("s.localhost", rec.srv.URL, "s-0", "s")
	raw := "GET /ok HTTP/1.1\r\nHost: s.localhost\r\n\r\n" +
		"POST / HTTP/1.1\r\nHost: s.localhost\r\nContent-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + smuggled
	statuses, closed := rawExchange(t, strings.TrimPrefix(h.url, "http://"), raw)
	if len(statuses) == 0 || statuses[0] != 200 || !closed {
		t.Errorf("got %v closed=%v, want 200 first and a closed connection", statuses, closed)
	}
	if len(statuses) > 1 && statuses[1] != 400 {
		t.Errorf("second response %d, want 400", statuses[1])
	}
	if got := rec.requests(); len(got) != 1 || got[0] != "GET /ok " {
		t.Errorf("backend saw %q, want exactly GET /ok", got)
	}
}

// TestSlowlorisDoesNotHurtOthers: many clients trickling headers are cut by
// the header-read timeout while a normal client is served at once.
func TestSlowlorisDoesNotHurtOthers(t *testing.T) {
	h := newHarness(t, router.Config{ReadHeaderTimeout: 300 * time.Millisecond})
	h.register("s.localhost", backend(t, "fine").URL, "s-0", "s")
	addr := strings.TrimPrefix(h.url, "http://")

	const slow = 50
	conns := make([]net.Conn, 0, slow)
	for range slow {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		if _, err := io.WriteString(c, "GET / HTTP/1.1\r\nHost: s.localhost\r\n"); err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
	}
	// Keep trickling one header byte at a time; the server must cut them anyway.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for _, c := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tk := time.NewTicker(50 * time.Millisecond)
			defer tk.Stop()
			for {
				select {
				case <-stop:
					return
				case <-tk.C:
					if _, err := c.Write([]byte("X")); err != nil {
						return
					}
				}
			}
		}()
	}
	defer func() { close(stop); wg.Wait() }()

	for i := range 20 {
		resp, body := h.do("GET", "s.localhost", "/", nil)
		if resp.StatusCode != 200 || body != "fine" {
			t.Fatalf("request %d during slowloris: %d %q", i, resp.StatusCode, body)
		}
	}
	for i, c := range conns {
		_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
		_, err := io.ReadAll(c)
		if errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("slow connection %d was not cut by the header timeout", i)
		}
	}
}
