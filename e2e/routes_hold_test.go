package e2e_test

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// waitUnmapped polls host+path through the router at addr after an unmap:
// it may still answer 200 until every router has heard of it, and then must
// answer 404 at once. A route kept known would hold the request for the
// router's hold bound (10 s) and answer 503, which fails.
func waitUnmapped(t testing.TB, addr, host, path string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		code, body, err := routerGet(addr, host, path)
		switch {
		case err != nil:
			t.Fatalf("%s%s via router after unmap: %v", host, path, err)
		case code == 200:
			time.Sleep(20 * time.Millisecond)
			continue
		case code != 404 || !strings.Contains(body, "no app is mapped"):
			t.Fatalf("%s%s via router after unmap: %d %q, want 404 at once", host, path, code, tail(body, 300))
		}
		return
	}
	t.Fatalf("%s%s via router: still 200 30s after unmap", host, path)
}

// gracefulCrashApp answers "alive <token>" (a token new at every start) and, on
// /crash, answers and then exits with code 3 — a crash to the platform —
// after finishing the requests it has accepted, so that nothing but the
// router decides whether the client loop sees an error.
const gracefulCrashApp = `package main

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"time"
)

func main() {
	token := strconv.FormatInt(time.Now().UnixNano(), 36)
	srv := &http.Server{Addr: ":" + os.Getenv("PORT")}
	http.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) { fmt.Fprintln(w, "alive", token) })
	http.HandleFunc("/crash", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, "crashing", token)
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			srv.Shutdown(ctx)
			os.Exit(3)
		}()
	})
	fmt.Println("listening")
	fmt.Println(srv.ListenAndServe())
	select {} // Shutdown returns ListenAndServe at once; the exit comes from /crash
}
`

// clientLoop sends GET / for host through the router from a few clients
// until stop is closed and records every answer.
type clientLoop struct {
	mu      sync.Mutex
	ok      int
	bad     []string      // status and body of every answer other than 200
	tokens  []string      // distinct tokens seen, in order
	slowest time.Duration // the longest request (a held one)
	done    sync.WaitGroup
	stop    chan struct{}
}

func startClientLoop(addr, host string, clients int) *clientLoop {
	l := &clientLoop{stop: make(chan struct{})}
	client := &http.Client{Timeout: 20 * time.Second} // past the router's 10 s hold bound
	for range clients {
		l.done.Add(1)
		go func() {
			defer l.done.Done()
			for {
				select {
				case <-l.stop:
					return
				default:
				}
				req, _ := http.NewRequest("GET", "http://"+addr+"/", nil)
				req.Host = host
				start := time.Now()
				resp, err := client.Do(req)
				var code int
				var body []byte
				if err == nil {
					code = resp.StatusCode
					body, err = io.ReadAll(resp.Body)
					resp.Body.Close()
				}
				l.record(code, string(body), err, time.Since(start))
			}
		}()
	}
	return l
}

func (l *clientLoop) record(code int, body string, err error, took time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.slowest = max(l.slowest, took)
	f := strings.Fields(body)
	if err != nil || code != 200 || len(f) != 2 || f[0] != "alive" {
		l.bad = append(l.bad, fmt.Sprintf("status %d err %v body %q", code, err, tail(body, 200)))
		return
	}
	l.ok++
	if len(l.tokens) == 0 || l.tokens[len(l.tokens)-1] != f[1] {
		l.tokens = append(l.tokens, f[1])
	}
}

// waitTokens waits until n distinct instances have answered the loop.
func (l *clientLoop) waitTokens(t *testing.T, n int, what string) {
	t.Helper()
	waitFor(t, what, 60*time.Second, func() (bool, string) {
		l.mu.Lock()
		defer l.mu.Unlock()
		return len(l.tokens) >= n || len(l.bad) > 0, fmt.Sprintf("%d answers from %d instances", l.ok, len(l.tokens))
	})
}

// end stops the loop and fails the test on any answer but 200 from the app.
func (l *clientLoop) end(t *testing.T, what string) {
	t.Helper()
	close(l.stop)
	l.done.Wait()
	t.Logf("%s: %d answers from the app, from %d instances, %d others; slowest request %s", what, l.ok, len(l.tokens), len(l.bad), l.slowest)
	if len(l.bad) > 0 {
		t.Fatalf("%s: %d of %d requests failed, first: %s", what, len(l.bad), len(l.bad)+l.ok, l.bad[0])
	}
}

// TestRoutesHeldThroughCrashRestart: a one-instance app whose instance
// crashes, and then is restarted, while clients keep sending requests
// through the router: every request is answered by the app (held while no
// instance serves), none with 502 or 503.
func TestRoutesHeldThroughCrashRestart(t *testing.T) {
	require(t, "go")
	mc := startMicrocloud(t, t.TempDir())
	c := newCLI(t)
	c.must("", "strata", "login", "--api", mc.api, "--token-file", mc.tokenFile)
	c.must("", "strata", "push", "crashy", "-p", goApp(t, gracefulCrashApp, nil))
	waitBody(t, mc.routerAddr, "crashy.localhost", "alive", 60*time.Second)

	t.Run("crash", func(t *testing.T) {
		loop := startClientLoop(mc.routerAddr, "crashy.localhost", 3)
		loop.waitTokens(t, 1, "answers from the instance")
		code, body, err := routerGet(mc.routerAddr, "crashy.localhost", "/crash")
		if err != nil || code != 200 || !strings.HasPrefix(body, "crashing") {
			t.Fatalf("/crash: %d %q %v", code, body, err)
		}
		loop.waitTokens(t, 2, "answers from the restarted instance")
		loop.end(t, "crash restart")
		waitFor(t, "the crash in the app's events", 30*time.Second, func() (bool, string) {
			out := c.must("", "strata", "events", "crashy")
			return strings.Contains(out, "crash"), out
		})
	})
	t.Run("restart", func(t *testing.T) {
		loop := startClientLoop(mc.routerAddr, "crashy.localhost", 3)
		loop.waitTokens(t, 1, "answers from the instance")
		c.must("", "strata", "restart", "crashy")
		loop.waitTokens(t, 2, "answers from the new instance")
		loop.end(t, "restart")
	})
}
