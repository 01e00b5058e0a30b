package e2e_test

import (
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// BenchmarkMicrocloud measures what a user feels on one machine and prints it
// next to a peer measured in the same run:
//
//   - push-to-first-200 of examples/hello-go, first push and second push after
//     a one-line change (median of several runs), against building and
//     running the same app by hand (go build + exec + first 200);
//   - microcloud start-to-API-ready, against a plain exec of a minimal Go HTTP
//     server (strata-static) until it answers;
//   - idle resident memory of the microcloud, against the same minimal server.
//
// Run it with `make bench` (go test -bench BenchmarkMicrocloud -benchtime 1x).
func BenchmarkMicrocloud(b *testing.B) {
	require(b, "git", "go")
	runs := 3
	if s := os.Getenv("STRATA_BENCH_RUNS"); s != "" {
		runs, _ = strconv.Atoi(s)
	}
	for i := 0; i < b.N; i++ {
		var first, second, peerFirst, peerSecond, startT, peerStart []time.Duration
		var rss, peerRSS []int
		for r := 0; r < runs; r++ {
			data := b.TempDir()
			t0 := time.Now()
			mc := startMicrocloud(b, data)
			waitHTTP(b, mc.api+"/v1/info", 30*time.Second)
			startT = append(startT, time.Since(t0))
			time.Sleep(3 * time.Second)
			rss = append(rss, rssKiB(b, mc.cmd.Process.Pid))

			c := newCLI(b)
			c.must("", "strata", "login", "--api", mc.api, "--token-file", mc.tokenFile)
			app := copyDir(b, filepath.Join(repoRoot(), "examples", "hello-go"))
			gitRepo(b, c, app)
			c.must(app, "strata", "git-remote", "hello")
			t1 := time.Now()
			c.must(app, "git", "push", "strata", "main")
			waitBody(b, mc.routerAddr, "hello.localhost", helloBody, 5*time.Minute)
			first = append(first, time.Since(t1))

			changeGreeting(b, app, fmt.Sprintf("Hello, run %d!", r))
			c.must(app, "git", "commit", "-qam", "change")
			t2 := time.Now()
			c.must(app, "git", "push", "strata", "main")
			waitBody(b, mc.routerAddr, "hello.localhost", fmt.Sprintf("Hello, run %d!", r), 5*time.Minute)
			second = append(second, time.Since(t2))
			mc.stop(30 * time.Second)

			// Peer: the same app built and run by hand, cold then warm cache.
			peerApp := copyDir(b, filepath.Join(repoRoot(), "examples", "hello-go"))
			cache := b.TempDir()
			peerFirst = append(peerFirst, buildAndServe(b, peerApp, cache))
			changeGreeting(b, peerApp, "peer")
			peerSecond = append(peerSecond, buildAndServe(b, peerApp, cache))

			// Peer for start and memory: a plain exec of a minimal Go HTTP server.
			d, kib := startPlain(b)
			peerStart = append(peerStart, d)
			peerRSS = append(peerRSS, kib)
		}
		report := []struct {
			name           string
			got, peer      float64
			unit, peerName string
		}{
			{"first push → first 200", median(first).Seconds(), median(peerFirst).Seconds(), "s", "go build+exec (cold cache)"},
			{"second push → first 200", median(second).Seconds(), median(peerSecond).Seconds(), "s", "go build+exec (warm cache)"},
			{"start → API ready", median(startT).Seconds(), median(peerStart).Seconds(), "s", "plain exec of a Go HTTP server"},
			{"idle resident memory", float64(medianInt(rss)) / 1024, float64(medianInt(peerRSS)) / 1024, "MiB", "plain Go HTTP server"},
		}
		fmt.Printf("\nStrata microcloud, examples/hello-go, median of %d runs\n", runs)
		fmt.Printf("%-26s %10s %10s %8s  %s\n", "metric", "strata", "peer", "ratio", "peer")
		for _, r := range report {
			fmt.Printf("%-26s %9.3f%s %9.3f%s %7.2fx  %s\n", r.name, r.got, unitSuffix(r.unit), r.peer, unitSuffix(r.unit), r.got/r.peer, r.peerName)
		}
		b.ReportMetric(median(first).Seconds(), "s/first-push")
		b.ReportMetric(median(second).Seconds(), "s/second-push")
		b.ReportMetric(median(startT).Seconds(), "s/start")
		b.ReportMetric(float64(medianInt(rss))/1024, "MiB/idle-rss")
	}
}

func unitSuffix(u string) string {
	if u == "s" {
		return "s"
	}
	return "M"
}

func changeGreeting(t testing.TB, dir, greeting string) {
	t.Helper()
	p := filepath.Join(dir, "main.go")
	src, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(src), "\n")
	for i, l := range lines {
		if strings.HasPrefix(l, "const greeting") {
			lines[i] = fmt.Sprintf("const greeting = %q", greeting)
		}
	}
	if err := os.WriteFile(p, []byte(strings.Join(lines, "\n")), 0o644); err != nil {
		t.Fatal(err)
	}
}

// buildAndServe builds the app with go build (GOCACHE in cache), runs it and
// returns the time until its first 200.
func buildAndServe(t testing.TB, dir, cache string) time.Duration {
	t.Helper()
	t0 := time.Now()
	build := exec.Command("go", "build", "-o", "app", ".")
	build.Dir = dir
	build.Env = append(os.Environ(), "CGO_ENABLED=0", "GOCACHE="+filepath.Join(cache, "go-build"), "GOFLAGS=-mod=mod")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("peer go build: %v\n%s", err, out)
	}
	addr := freeAddr(t)
	_, port, _ := strings.Cut(addr, ":")
	run := exec.Command(filepath.Join(dir, "app"))
	run.Env = append(os.Environ(), "PORT="+port)
	if err := run.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { run.Process.Kill(); run.Wait() }()
	waitHTTP(t, "http://"+addr+"/", 60*time.Second)
	return time.Since(t0)
}

// startPlain execs strata-static (a minimal Go HTTP server) and returns the
// time until it answers and its idle resident memory.
func startPlain(t testing.TB) (time.Duration, int) {
	t.Helper()
	root := t.TempDir()
	os.WriteFile(filepath.Join(root, "index.html"), []byte("hi"), 0o644)
	addr := freeAddr(t)
	_, port, _ := strings.Cut(addr, ":")
	t0 := time.Now()
	cmd := exec.Command(filepath.Join(binDir, "strata-static"), "-root", root)
	cmd.Env = append(os.Environ(), "PORT="+port)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	waitHTTP(t, "http://"+addr+"/", 30*time.Second)
	d := time.Since(t0)
	time.Sleep(3 * time.Second)
	return d, rssKiB(t, cmd.Process.Pid)
}

func waitHTTP(t testing.TB, url string, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	c := &http.Client{Timeout: time.Second}
	for time.Now().Before(deadline) {
		resp, err := c.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode < 500 {
				return
			}
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("%s did not answer within %s", url, timeout)
}

// rssKiB reads VmRSS of pid from /proc.
func rssKiB(t testing.TB, pid int) int {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "VmRSS:") {
			f := strings.Fields(l)
			n, _ := strconv.Atoi(f[1])
			return n
		}
	}
	t.Fatalf("no VmRSS for pid %d", pid)
	return 0
}

func median(d []time.Duration) time.Duration {
	s := append([]time.Duration(nil), d...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[len(s)/2]
}

func medianInt(d []int) int {
	s := append([]int(nil), d...)
	sort.Ints(s)
	return s[len(s)/2]
}

// apiInstance is what the router benchmark reads of a running instance.
type apiInstance struct{ node, isolation string }
