package e2e_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/strata-paas/strata/api/client"
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

// BenchmarkContainerVsProcessRouter measures, side by side in one run on
// one microcloud (drivers process and docker), examples/hello-go pushed
// twice, with placement isolation process and container:
//
//   - requests/s through the router to each (16 keep-alive connections,
//     STRATA_BENCH_SECONDS per round, default 5, rounds alternating so load
//     on the machine hits both alike);
//   - instance start → healthy: `scale -i 2` until the API shows the second
//     instance running (median of STRATA_BENCH_RUNS, default 3), which
//     includes the controller's placement, the same for both.
//
// Run it with `make bench` (go test -bench BenchmarkContainerVsProcessRouter
// -benchtime 1x ./e2e/). The numbers are in docs/performance.md.
func BenchmarkContainerVsProcessRouter(b *testing.B) {
	require(b, "go", "docker")
	runs, secs := 3, 5
	if s := os.Getenv("STRATA_BENCH_RUNS"); s != "" {
		runs, _ = strconv.Atoi(s)
	}
	if s := os.Getenv("STRATA_BENCH_SECONDS"); s != "" {
		secs, _ = strconv.Atoi(s)
	}
	data := b.TempDir()
	p := start(b, "stratad microcloud", nil, "stratad", "microcloud", "--data", data, "--api-addr", "127.0.0.1:0",
		"--router-addr", "127.0.0.1:0", "--drivers", "process,docker")
	apiURL := p.waitLine(`API:\s+(http://\S+)`, 60*time.Second)[1]
	routerAddr := "127.0.0.1:" + p.waitLine(`apps:\s+http://<app>\.localhost:(\d+)`, 10*time.Second)[1]
	token, err := os.ReadFile(filepath.Join(data, "admin.token"))
	if err != nil {
		b.Fatal(err)
	}
	api := client.New(apiURL, strings.TrimSpace(string(token)))
	c := newCLI(b)
	c.must("", "strata", "login", "--api", apiURL, "--token-file", filepath.Join(data, "admin.token"))
	apps := map[string]string{"process": "bench-proc", "container": "bench-ctr"}
	var node string
	b.Cleanup(func() { // before the microcloud stops (registered after it)
		for _, name := range apps {
			c.run("", "strata", "apps", "delete", name, "--force")
		}
		if node == "" {
			return
		}
		deadline := time.Now().Add(60 * time.Second)
		for time.Now().Before(deadline) {
			if cs, _ := exec.Command("docker", "ps", "-aq", "--filter", "label=io.strata.node="+node).Output(); len(strings.TrimSpace(string(cs))) == 0 {
				break
			}
			time.Sleep(200 * time.Millisecond)
		}
		if imgs, _ := exec.Command("docker", "images", "-q", "--filter", "label=io.strata.node="+node).Output(); len(strings.Fields(string(imgs))) > 0 {
			_ = exec.Command("docker", append([]string{"rmi", "-f"}, strings.Fields(string(imgs))...)...).Run()
		}
	})
	running := func(name string) (int, *apiInstance) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		d, err := api.App(ctx, name)
		if err != nil {
			b.Fatalf("app %s: %v", name, err)
		}
		n, one := 0, (*apiInstance)(nil)
		for _, in := range d.Instances {
			if in.State == "running" {
				n++
				one = &apiInstance{node: in.NodeID, isolation: string(in.Isolation)}
			}
		}
		return n, one
	}
	waitRunning := func(name string, n int) {
		deadline := time.Now().Add(3 * time.Minute)
		for {
			if got, _ := running(name); got == n {
				return
			}
			if time.Now().After(deadline) {
				b.Fatalf("%s: %d instances not running within 3m", name, n)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	for iso, name := range apps {
		app := copyDir(b, filepath.Join(repoRoot(), "examples", "hello-go"))
		manifest := fmt.Sprintf("applications:\n- name: %s\n  placement:\n    isolation: %s\n", name, iso)
		if err := os.WriteFile(filepath.Join(app, "strata.yml"), []byte(manifest), 0o644); err != nil {
			b.Fatal(err)
		}
		c.must(app, "strata", "push")
		waitBody(b, routerAddr, name+".localhost", helloBody, 5*time.Minute)
		waitRunning(name, 1)
		_, in := running(name)
		if in.isolation != iso {
			b.Fatalf("%s runs with isolation %q, want %s", name, in.isolation, iso)
		}
		node = in.node
	}

	// Requests/s through the router, rounds alternating.
	load := func(name string, d time.Duration) float64 {
		const conns = 16
		tr := &http.Transport{MaxIdleConnsPerHost: conns, MaxConnsPerHost: conns}
		defer tr.CloseIdleConnections()
		hc := &http.Client{Transport: tr, Timeout: 10 * time.Second}
		var total, failed atomic.Int64
		stop := time.Now().Add(d)
		var wg sync.WaitGroup
		for range conns {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for time.Now().Before(stop) {
					req, _ := http.NewRequest("GET", "http://"+routerAddr+"/", nil)
					req.Host = name + ".localhost"
					resp, err := hc.Do(req)
					if err != nil {
						failed.Add(1)
						continue
					}
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode == 200 {
						total.Add(1)
					} else {
						failed.Add(1)
					}
				}
			}()
		}
		wg.Wait()
		if f := failed.Load(); f > 0 {
			b.Logf("%s: %d failed requests", name, f)
		}
		return float64(total.Load()) / d.Seconds()
	}
	var procRPS, ctrRPS []float64
	load(apps["process"], time.Second) // warm up both
	load(apps["container"], time.Second)
	for r := 0; r < runs; r++ {
		procRPS = append(procRPS, load(apps["process"], time.Duration(secs)*time.Second))
		ctrRPS = append(ctrRPS, load(apps["container"], time.Duration(secs)*time.Second))
	}

	// Instance start → healthy: scale to 2, wait, scale back.
	startTime := func(name string) time.Duration {
		t0 := time.Now()
		c.must("", "strata", "scale", name, "-i", "2")
		waitRunning(name, 2)
		d := time.Since(t0)
		c.must("", "strata", "scale", name, "-i", "1")
		waitRunning(name, 1)
		return d
	}
	var procStart, ctrStart []time.Duration
	for r := 0; r < runs; r++ {
		procStart = append(procStart, startTime(apps["process"]))
		ctrStart = append(ctrStart, startTime(apps["container"]))
	}
	medianF := func(v []float64) float64 {
		s := append([]float64(nil), v...)
		sort.Float64s(s)
		return s[len(s)/2]
	}
	pr, cr := medianF(procRPS), medianF(ctrRPS)
	ps, cs := median(procStart), median(ctrStart)
	fmt.Printf("\nContainer vs process, examples/hello-go through the router, median of %d rounds\n", runs)
	fmt.Printf("%-34s %10s %10s %8s\n", "metric", "process", "container", "ratio")
	fmt.Printf("%-34s %10.0f %10.0f %7.3fx  (container costs %.1f %%)\n", "router requests/s (16 conns)", pr, cr, cr/pr, (1-cr/pr)*100)
	fmt.Printf("%-34s %9.3fs %9.3fs %7.2fx\n", "scale → instance running", ps.Seconds(), cs.Seconds(), cs.Seconds()/ps.Seconds())
	fmt.Printf("rounds req/s: process %.0f, container %.0f\n", procRPS, ctrRPS)
	b.ReportMetric(pr, "process-req/s")
	b.ReportMetric(cr, "container-req/s")
	b.ReportMetric(cr/pr, "req/s-ratio")
	b.ReportMetric(ps.Seconds(), "s/process-start")
	b.ReportMetric(cs.Seconds(), "s/container-start")
}

// apiInstance is what the router benchmark reads of a running instance.
type apiInstance struct{ node, isolation string }
