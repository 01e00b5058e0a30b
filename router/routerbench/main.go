// Command routerbench compares the Strata router with nginx (and, when the
// user built one, Cloud Foundry's gorouter) on the same machine (make
// bench-router) and measures route propagation and removal times over NATS.
//
// Without -role it orchestrates: it starts a backend (this program with
// -role backend), the router (-role router, GOMAXPROCS=1) and nginx (one
// worker, keep-alive upstream), pins the router and nginx to the same CPU
// with taskset, runs wrk against the backend directly, the router and nginx
// at each concurrency, and prints requests/s, p50, p99, CPU per request and
// the ratios. With -cores 2 the router runs with GOMAXPROCS=2 and nginx with
// two workers, both on CPUs 0-1, which on a 2-core machine they share with
// the backend and wrk. With -gorouter PATH it also starts that gorouter
// binary (logging and metrics off, keep-alive upstream) with the backend's
// route registered over an embedded NATS server, as a third peer; the
// project never builds gorouter. Then it starts an embedded NATS server and
// an in-process router and times register → first routed request and
// unregister → last routed request.
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/strata-paas/strata/api"
	"github.com/strata-paas/strata/api/bus"
	"github.com/strata-paas/strata/router"
	"github.com/strata-paas/strata/router/registry"
)

const benchHost = "bench.localhost"

func main() {
	role := flag.String("role", "", "internal: backend or router")
	listen := flag.String("listen", "127.0.0.1:0", "internal: address to listen on")
	backendAddr := flag.String("backend", "", "internal: backend address for -role router")
	cpuprofile := flag.String("cpuprofile", "", "write the router's CPU profile to this file")
	duration := flag.Duration("duration", 10*time.Second, "wrk duration per run")
	conns := flag.String("conns", "64,256", "wrk connection counts")
	proxyCPU := flag.String("proxy-cpu", "1", "CPU set for the router and nginx (taskset -c)")
	loadCPU := flag.String("load-cpu", "0", "CPU set for the backend and wrk")
	registrations := flag.Int("registrations", 50, "routes registered and removed to time propagation")
	cores := flag.Int("cores", 1, "CPUs for each proxy: 1 (router GOMAXPROCS=1 and one nginx worker alone on -proxy-cpu) or 2 (GOMAXPROCS=2 and two workers on CPUs 0-1, shared with the backend and wrk)")
	gorouter := flag.String("gorouter", "", "path of a gorouter binary built by the user, measured as a third peer (skipped if absent)")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var err error
	switch *role {
	case "backend":
		err = runBackend(ctx, *listen)
	case "router":
		err = runRouter(ctx, *listen, *backendAddr, *cpuprofile)
	case "":
		err = orchestrate(ctx, options{duration: *duration, conns: *conns, proxyCPU: *proxyCPU, loadCPU: *loadCPU,
			cpuprofile: *cpuprofile, registrations: *registrations, cores: *cores, gorouter: *gorouter})
	default:
		err = fmt.Errorf("unknown -role %q", *role)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "routerbench:", err)
		os.Exit(1)
	}
}

var payload = []byte(strings.Repeat("strata router benchmark payload\n", 8)) // 256 bytes

func backendHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		_, _ = w.Write(payload)
	})
}

// announce prints the listener address for the parent to read.
func announce(ln net.Listener) { fmt.Println("LISTEN", ln.Addr().String()) }

func runBackend(ctx context.Context, addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	announce(ln)
	srv := &http.Server{Handler: backendHandler(), ReadHeaderTimeout: 10 * time.Second}
	go func() { <-ctx.Done(); _ = srv.Close() }()
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// runRouter serves the production proxy (access log built and dropped,
// metrics on) with one static route to the backend.
func runRouter(ctx context.Context, addr, backend, cpuprofile string) error {
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	reg := registry.New(registry.Config{Logger: log})
	host, port, err := net.SplitHostPort(backend)
	if err != nil {
		return err
	}
	p, _ := strconv.Atoi(port)
	if err := reg.Register(api.RouterRegistration{Host: host, Port: p, URIs: []string{benchHost}, PrivateInstanceID: "bench-0",
		Tags: map[string]string{"app_name": "bench"}, StaleThresholdInSec: 1 << 20}); err != nil {
		return err
	}
	cfg := router.DefaultConfig()
	cfg.AccessLog = func(api.LogEnvelope) {}
	cfg.Metrics = router.NewMetrics(reg)
	proxy := router.New(cfg, reg, log)
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	if cpuprofile != "" {
		f, err := os.Create(cpuprofile)
		if err != nil {
			return err
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer func() { pprof.StopCPUProfile(); f.Close() }()
	}
	announce(ln)
	return router.NewServer(cfg, proxy, log).Serve(ctx, ln)
}

type options struct {
	duration      time.Duration
	conns         string
	proxyCPU      string
	loadCPU       string
	cpuprofile    string
	registrations int
	cores         int
	gorouter      string
}

// child is a started process that announced its address.
type child struct {
	cmd  *exec.Cmd
	addr string
}

func (c *child) stop() {
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { _ = c.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(15 * time.Second):
		_ = c.cmd.Process.Kill()
		<-done
	}
}

// startSelf runs this program pinned to cpus with env and waits for its
// LISTEN line.
func startSelf(ctx context.Context, cpus string, env []string, args ...string) (*child, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command("taskset", append([]string{"-c", cpus, self}, args...)...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	lines := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if a, ok := strings.CutPrefix(sc.Text(), "LISTEN "); ok {
				lines <- a
			}
		}
	}()
	select {
	case a := <-lines:
		return &child{cmd: cmd, addr: a}, nil
	case <-time.After(30 * time.Second):
	case <-ctx.Done():
	}
	_ = cmd.Process.Kill()
	_ = cmd.Wait()
	return nil, fmt.Errorf("%v did not start listening", args)
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

const nginxConf = `worker_processes %[4]d;
pid %[1]s/nginx.pid;
error_log %[1]s/error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    client_body_temp_path %[1]s/body;
    proxy_temp_path %[1]s/proxy;
    fastcgi_temp_path %[1]s/fastcgi;
    uwsgi_temp_path %[1]s/uwsgi;
    scgi_temp_path %[1]s/scgi;
    keepalive_requests 1000000;
    upstream b { server %[2]s; keepalive 256; }
    server {
        listen 127.0.0.1:%[3]d;
        location / {
            proxy_pass http://b;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $host;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
        }
    }
}
`

func startNginx(ctx context.Context, cpus, backend string, workers int) (*child, func(), error) {
	bin, err := exec.LookPath("nginx")
	if err != nil {
		if _, serr := os.Stat("/usr/sbin/nginx"); serr != nil {
			return nil, nil, fmt.Errorf("nginx not found — install it with apt-get install nginx-light (make bench-router does)")
		}
		bin = "/usr/sbin/nginx"
	}
	dir, err := os.MkdirTemp("", "routerbench-nginx-")
	if err != nil {
		return nil, nil, err
	}
	cleanup := func() { os.RemoveAll(dir) }
	port, err := freePort()
	if err != nil {
		cleanup()
		return nil, nil, err
	}
	conf := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(conf, fmt.Appendf(nil, nginxConf, dir, backend, port, workers), 0o644); err != nil {
		cleanup()
		return nil, nil, err
	}
	cmd := exec.Command("taskset", "-c", cpus, bin, "-p", dir, "-c", conf, "-g", "daemon off;")
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		cleanup()
		return nil, nil, err
	}
	c := &child{cmd: cmd, addr: "127.0.0.1:" + strconv.Itoa(port)}
	deadline := time.Now().Add(20 * time.Second)
	for {
		if code, err := get(ctx, c.addr, benchHost, "/"); err == nil && code == 200 {
			return c, cleanup, nil
		}
		if time.Now().After(deadline) {
			c.stop()
			cleanup()
			return nil, nil, errors.New("nginx did not answer within 20s; see its error log above")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

var client = &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 16}, Timeout: 5 * time.Second}

func get(ctx context.Context, addr, host, path string) (int, error) {
	req, err := http.NewRequestWithContext(ctx, "GET", "http://"+addr+path, nil)
	if err != nil {
		return 0, err
	}
	req.Host = host
	resp, err := client.Do(req)
	if err != nil {
		return 0, err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, nil
}

// result is one wrk run.
type result struct {
	rps      float64
	requests float64
	p50, p99 time.Duration
	errors   string
	cpu      time.Duration // CPU (user+system) the target's processes used during the run; 0 if unknown
}

var (
	reRPS    = regexp.MustCompile(`Requests/sec:\s+([0-9.]+)`)
	reReqs   = regexp.MustCompile(`(\d+) requests in`)
	reLat    = regexp.MustCompile(`(?m)^\s+(50|99)%\s+([0-9.]+)(us|ms|s)\s*$`)
	reErrors = regexp.MustCompile(`(?m)^\s+(Non-2xx or 3xx responses: \d+|Socket errors: .*)$`)
)

func runWrk(ctx context.Context, cpus, addr string, conns int, d time.Duration) (result, error) {
	threads := min(2, conns)
	cmd := exec.CommandContext(ctx, "taskset", "-c", cpus, "wrk", "-t"+strconv.Itoa(threads), "-c"+strconv.Itoa(conns),
		"-d"+strconv.Itoa(int(d.Seconds()))+"s", "--latency", "-H", "Host: "+benchHost, "http://"+addr+"/")
	out, err := cmd.CombinedOutput()
	if err != nil {
		return result{}, fmt.Errorf("wrk: %w: %s", err, out)
	}
	var r result
	m := reRPS.FindSubmatch(out)
	if m == nil {
		return r, fmt.Errorf("wrk output without Requests/sec: %s", out)
	}
	r.rps, _ = strconv.ParseFloat(string(m[1]), 64)
	if m := reReqs.FindSubmatch(out); m != nil {
		r.requests, _ = strconv.ParseFloat(string(m[1]), 64)
	}
	for _, l := range reLat.FindAllSubmatch(out, -1) {
		v, _ := strconv.ParseFloat(string(l[2]), 64)
		unit := map[string]time.Duration{"us": time.Microsecond, "ms": time.Millisecond, "s": time.Second}[string(l[3])]
		if string(l[1]) == "50" {
			r.p50 = time.Duration(v * float64(unit))
		} else {
			r.p99 = time.Duration(v * float64(unit))
		}
	}
	for _, e := range reErrors.FindAllSubmatch(out, -1) {
		r.errors += strings.TrimSpace(string(e[1])) + "; "
	}
	return r, nil
}

// peer is one target wrk is run against.
type peer struct {
	name, addr string
	pid        int
}

func orchestrate(ctx context.Context, o options) error {
	var counts []int
	for f := range strings.SplitSeq(o.conns, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n <= 0 {
			return fmt.Errorf("-conns: %q is not a positive number", f)
		}
		counts = append(counts, n)
	}
	if _, err := exec.LookPath("wrk"); err != nil {
		return errors.New("wrk not found — install it with apt-get install wrk (make bench-router does)")
	}
	var setup string
	switch o.cores {
	case 1:
		setup = fmt.Sprintf("backend and wrk on CPU %s, each proxy alone on CPU %s (router GOMAXPROCS=1, nginx 1 worker, gorouter go_max_procs 1)",
			o.loadCPU, o.proxyCPU)
	case 2:
		o.loadCPU, o.proxyCPU = "0,1", "0,1"
		setup = "two cores each: router GOMAXPROCS=2, nginx 2 workers, gorouter go_max_procs 2, all on CPUs 0-1 — " +
			"on this 2-core machine the backend and wrk share those CPUs with the proxy, so requests/s is what the " +
			"proxy gets of a shared machine; CPU per request is the steadier comparison"
	default:
		return fmt.Errorf("-cores %d: use 1 or 2", o.cores)
	}
	procs := []string{"GOMAXPROCS=" + strconv.Itoa(o.cores)}

	be, err := startSelf(ctx, o.loadCPU, []string{"GOMAXPROCS=1"}, "-role", "backend")
	if err != nil {
		return err
	}
	defer be.stop()
	args := []string{"-role", "router", "-backend", be.addr}
	if o.cpuprofile != "" {
		args = append(args, "-cpuprofile", o.cpuprofile)
	}
	rt, err := startSelf(ctx, o.proxyCPU, procs, args...)
	if err != nil {
		return err
	}
	defer rt.stop()
	ng, cleanup, err := startNginx(ctx, o.proxyCPU, be.addr, o.cores)
	if err != nil {
		return err
	}
	defer cleanup()
	defer ng.stop()

	targets := []peer{{"direct", be.addr, be.cmd.Process.Pid}, {"router", rt.addr, rt.cmd.Process.Pid}, {"nginx", ng.addr, ng.cmd.Process.Pid}}
	gorouterNote := ""
	switch {
	case o.gorouter == "":
		gorouterNote = "gorouter: not measured (ROUTERBENCH=\"-gorouter PATH\" adds a gorouter binary you built as a third peer)"
	default:
		if st, err := os.Stat(o.gorouter); err != nil || st.IsDir() || st.Mode()&0o111 == 0 {
			gorouterNote = fmt.Sprintf("gorouter: skipped — %s is not an executable file", o.gorouter)
			break
		}
		gr, stopGR, err := startGorouter(ctx, o.gorouter, o.proxyCPU, o.cores, be.addr)
		if err != nil {
			gorouterNote = fmt.Sprintf("gorouter: skipped — %v", err)
			break
		}
		defer stopGR()
		targets = append(targets, peer{"gorouter", gr.addr, gr.cmd.Process.Pid})
	}
	fmt.Printf("routerbench: %s; %s per run, 256-byte responses\n", setup, o.duration)
	if gorouterNote != "" {
		fmt.Println(gorouterNote)
	}
	fmt.Println()
	fmt.Printf("%-6s %-8s %12s %10s %10s %10s  %s\n", "conns", "target", "requests/s", "p50", "p99", "CPU/req", "errors")
	for _, c := range counts {
		res := map[string]result{}
		for _, tg := range targets {
			// A short warm-up fills the keep-alive pools.
			if _, err := runWrk(ctx, o.loadCPU, tg.addr, c, time.Second); err != nil {
				return err
			}
			cpu0 := treeCPU(tg.pid) // 0: unknown
			r, err := runWrk(ctx, o.loadCPU, tg.addr, c, o.duration)
			if err != nil {
				return err
			}
			if cpu0 > 0 {
				r.cpu = treeCPU(tg.pid) - cpu0
			}
			res[tg.name] = r
			fmt.Printf("%-6d %-8s %12.0f %10s %10s %10s  %s\n", c, tg.name, r.rps, r.p50.Round(time.Microsecond), r.p99.Round(time.Microsecond),
				perRequest(r), r.errors)
		}
		rn, ro, rd := res["router"], res["nginx"], res["direct"]
		fmt.Printf("%-6d ratios   router/nginx %.2f (p99 %s vs %s, CPU/req %s)  router/direct %.2f\n", c, rn.rps/ro.rps,
			rn.p99.Round(time.Microsecond), ro.p99.Round(time.Microsecond), cpuRatio(rn, ro), rn.rps/rd.rps)
		if rg, ok := res["gorouter"]; ok {
			fmt.Printf("%-6d ratios   router/gorouter %.2f (p99 %s vs %s, CPU/req %s)\n", c, rn.rps/rg.rps,
				rn.p99.Round(time.Microsecond), rg.p99.Round(time.Microsecond), cpuRatio(rn, rg))
		}
		fmt.Println()
	}
	rt.stop() // writes the CPU profile
	if o.cpuprofile != "" {
		fmt.Printf("router CPU profile: %s (go tool pprof -top %s)\n\n", o.cpuprofile, o.cpuprofile)
	}
	return propagation(ctx, o.registrations)
}

// cpuRatio is a's CPU per request over b's, "-" if either is unknown.
func cpuRatio(a, b result) string {
	if a.cpu <= 0 || b.cpu <= 0 || a.requests <= 0 || b.requests <= 0 {
		return "-"
	}
	return fmt.Sprintf("%.2f×", (float64(a.cpu)/a.requests)/(float64(b.cpu)/b.requests))
}

// gorouterConf is a minimal gorouter configuration: plain HTTP only, routes
// from NATS only, logging at error level with no access log, no metrics
// forwarding, keep-alive connections to backends (gorouter disables them by
// default, nginx and the Strata router keep them).
const gorouterConf = `status:
  host: 127.0.0.1
  port: %[1]d
  user: bench
  pass: bench
nats:
  hosts:
  - hostname: 127.0.0.1
    port: %[2]d
logging:
  level: error
  loggregator_enabled: false
  metron_address: 127.0.0.1:1
access_log:
  file: ""
  enable_streaming: false
port: %[3]d
index: 0
go_max_procs: %[4]d
enable_ssl: false
start_response_delay_interval: 1s
droplet_stale_threshold: 120s
disable_keep_alives: false
max_idle_conns: 512
max_idle_conns_per_host: 256
per_request_metrics_reporting: false
send_http_start_stop_server_event: false
send_http_start_stop_client_event: false
per_app_prometheus_http_metrics_reporting: false
`

// startGorouter runs the user's gorouter binary pinned to cpus against an
// embedded NATS server and registers the backend's route on it (again every
// 10 s, well within its stale threshold) until the returned stop is called.
func startGorouter(ctx context.Context, bin, cpus string, procs int, backend string) (*child, func(), error) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	srv, err := bus.StartServer(bus.ServerConfig{Host: "127.0.0.1", Port: 0, Logger: log})
	if err != nil {
		return nil, nil, err
	}
	natsPort := 0
	if u := srv.ClientURL(); u != "" {
		if i := strings.LastIndexByte(u, ':'); i >= 0 {
			natsPort, _ = strconv.Atoi(u[i+1:])
		}
	}
	if natsPort == 0 {
		srv.Shutdown()
		return nil, nil, fmt.Errorf("embedded NATS server has no port (%q)", srv.ClientURL())
	}
	nc, err := bus.Connect(ctx, srv.ClientURL(), bus.Options{Name: "routerbench", Logger: log})
	if err != nil {
		srv.Shutdown()
		return nil, nil, err
	}
	dir, err := os.MkdirTemp("", "routerbench-gorouter-")
	if err != nil {
		nc.Close()
		srv.Shutdown()
		return nil, nil, err
	}
	statusPort, err1 := freePort()
	port, err2 := freePort()
	if err := errors.Join(err1, err2); err != nil {
		nc.Close()
		srv.Shutdown()
		os.RemoveAll(dir)
		return nil, nil, err
	}
	conf := filepath.Join(dir, "gorouter.yml")
	if err := os.WriteFile(conf, fmt.Appendf(nil, gorouterConf, statusPort, natsPort, port, procs), 0o644); err != nil {
		nc.Close()
		srv.Shutdown()
		os.RemoveAll(dir)
		return nil, nil, err
	}
	logf, err := os.Create(filepath.Join(dir, "gorouter.log"))
	if err != nil {
		nc.Close()
		srv.Shutdown()
		os.RemoveAll(dir)
		return nil, nil, err
	}
	cmd := exec.Command("taskset", "-c", cpus, bin, "-c", conf)
	cmd.Env = append(os.Environ(), "GOMAXPROCS="+strconv.Itoa(procs))
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		logf.Close()
		nc.Close()
		srv.Shutdown()
		os.RemoveAll(dir)
		return nil, nil, err
	}
	c := &child{cmd: cmd, addr: "127.0.0.1:" + strconv.Itoa(port)}
	host, bport, _ := net.SplitHostPort(backend)
	bp, _ := strconv.Atoi(bport)
	reg := api.RouterRegistration{Host: host, Port: bp, URIs: []string{benchHost}, PrivateInstanceID: "bench-0"}
	done := make(chan struct{})
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		t := time.NewTicker(10 * time.Second)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				_ = nc.Publish(api.SubjectRouterRegister, reg)
			}
		}
	}()
	stop := func() {
		close(done)
		<-stopped
		c.stop()
		logf.Close()
		nc.Close()
		srv.Shutdown()
		os.RemoveAll(dir)
	}
	// gorouter starts serving after its start_response_delay_interval and
	// learns routes from router.register messages: register every 200 ms
	// until the route answers.
	deadline := time.Now().Add(30 * time.Second)
	for {
		_ = nc.Publish(api.SubjectRouterRegister, reg)
		if code, err := get(ctx, c.addr, benchHost, "/"); err == nil && code == 200 {
			return c, stop, nil
		}
		if cmd.ProcessState != nil || time.Now().After(deadline) || ctx.Err() != nil {
			out, _ := os.ReadFile(logf.Name())
			stop()
			return nil, nil, fmt.Errorf("%s did not route %s within 30s; its output: %s", bin, benchHost, lastLines(out, 5))
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// lastLines returns the last n lines of b.
func lastLines(b []byte, n int) string {
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, " | ")
}

// perRequest is the CPU time the target spent per request, "-" if unknown.
// Unlike requests/s it does not depend on how much of the shared CPU the
// target got, so it compares the router with nginx on a busy machine too.
func perRequest(r result) string {
	if r.cpu <= 0 || r.requests <= 0 {
		return "-"
	}
	return (time.Duration(float64(r.cpu) / r.requests)).Round(100 * time.Nanosecond).String()
}

// treeCPU returns the user+system CPU time of pid and its direct children
// (nginx's worker) from /proc, or 0 where /proc is not available. The
// resolution is the kernel's clock tick (usually 10ms).
func treeCPU(pid int) time.Duration {
	total, ok := procCPU(pid)
	if !ok {
		return 0
	}
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		child, err := strconv.Atoi(e.Name())
		if err != nil || child == pid {
			continue
		}
		if f := procStat(child); len(f) > 1 && f[1] == strconv.Itoa(pid) {
			d, _ := procCPU(child)
			total += d
		}
	}
	return total
}

// procStat returns the fields of /proc/pid/stat after the command name
// (state, ppid, ...), or nil.
func procStat(pid int) []string {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return nil
	}
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 {
		return nil
	}
	return strings.Fields(string(b[i+1:]))
}

func procCPU(pid int) (time.Duration, bool) {
	f := procStat(pid)
	if len(f) < 13 {
		return 0, false
	}
	utime, _ := strconv.ParseInt(f[11], 10, 64)
	stime, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(utime+stime) * 10 * time.Millisecond, true // USER_HZ is 100 on Linux
}

// propagation times register → first routed request and unregister → last
// routed request over an embedded NATS server, and checks that killing one
// of two instances costs no client errors.
func propagation(ctx context.Context, n int) error {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	srv, err := bus.StartServer(bus.ServerConfig{Port: 0, Logger: log})
	if err != nil {
		return err
	}
	defer srv.Shutdown()
	cctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	rconn, err := bus.Connect(cctx, srv.ClientURL(), bus.Options{Name: "router", Logger: log})
	if err != nil {
		return err
	}
	defer rconn.Close()
	econn, err := bus.Connect(cctx, srv.ClientURL(), bus.Options{Name: "executor", Logger: log})
	if err != nil {
		return err
	}
	defer econn.Close()
	reg := registry.New(registry.Config{Logger: log})
	stopSub, err := registry.Subscribe(cctx, rconn, reg, reg.Start("bench", nil))
	if err != nil {
		return err
	}
	defer stopSub()
	// The server has the subscriptions once a round trip on their
	// connection is done: without it the first registration can come first
	// and be lost (seen as "p0.localhost: no change within 10s").
	if err := rconn.Flush(cctx); err != nil {
		return err
	}
	proxy := router.New(router.Config{}, reg, log)
	defer proxy.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	go func() { _ = router.NewServer(router.Config{}, proxy, log).Serve(cctx, ln) }()
	rAddr := ln.Addr().String()

	startBackend := func() (*http.Server, *net.TCPAddr, error) {
		bl, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, nil, err
		}
		s := &http.Server{Handler: backendHandler(), ReadHeaderTimeout: 10 * time.Second}
		go func() { _ = s.Serve(bl) }()
		return s, bl.Addr().(*net.TCPAddr), nil
	}
	bs, ba, err := startBackend()
	if err != nil {
		return err
	}
	defer bs.Close()

	// until polls the router for host until ok reports true (bounded).
	until := func(host string, ok func(int) bool) error {
		deadline := time.Now().Add(10 * time.Second)
		for {
			code, err := get(cctx, rAddr, host, "/")
			if err == nil && ok(code) {
				return nil
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("%s: no change within 10s (last status %d, %v)", host, code, err)
			}
		}
	}
	var add, del []time.Duration
	for i := range n {
		host := "p" + strconv.Itoa(i) + ".localhost"
		r := api.RouterRegistration{Host: "127.0.0.1", Port: ba.Port, URIs: []string{host}, PrivateInstanceID: "p-0",
			Tags: map[string]string{"app_name": "p"}}
		t0 := time.Now()
		if err := econn.Publish(api.SubjectRouterRegister, r); err != nil {
			return err
		}
		if err := until(host, func(c int) bool { return c == 200 }); err != nil {
			return err
		}
		add = append(add, time.Since(t0))
		t0 = time.Now()
		if err := econn.Publish(api.SubjectRouterUnregister, r); err != nil {
			return err
		}
		if err := until(host, func(c int) bool { return c != 200 }); err != nil {
			return err
		}
		del = append(del, time.Since(t0))
	}
	fmt.Printf("route propagation over NATS (%d routes): register → first routed request p50 %s p99 %s; unregister → no longer routed p50 %s p99 %s\n",
		n, pct(add, 50), pct(add, 99), pct(del, 50), pct(del, 99))

	// Crash: two instances, one dies without unregistering. Connect failures
	// are retried on the other at once; the lease of the dead one is pruned
	// after its stale threshold.
	bs2, ba2, err := startBackend()
	if err != nil {
		return err
	}
	for _, a := range []*net.TCPAddr{ba, ba2} {
		if err := econn.Publish(api.SubjectRouterRegister, api.RouterRegistration{Host: "127.0.0.1", Port: a.Port,
			URIs: []string{"crash.localhost"}, PrivateInstanceID: "c-" + strconv.Itoa(a.Port), Tags: map[string]string{"app_name": "crash"}}); err != nil {
			return err
		}
	}
	if err := until("crash.localhost", func(c int) bool { return c == 200 && reg.Lookup("crash.localhost", "/").Len() == 2 }); err != nil {
		return err
	}
	t0 := time.Now()
	bs2.Close()
	failed, total := 0, 0
	for end := time.Now().Add(2 * time.Second); time.Now().Before(end); total++ {
		if code, err := get(cctx, rAddr, "crash.localhost", "/"); err != nil || code != 200 {
			failed++
		}
	}
	fmt.Printf("instance killed without unregistering: %d of %d requests failed in the %s after the kill (a refused connect is retried on the live instance and marks the dead one last-resort for %s; its lease is pruned after %s)\n",
		failed, total, time.Since(t0).Round(time.Millisecond), router.DefaultConfig().FailedEndpointTTL, registry.DefaultPruneThreshold)
	return nil
}

func pct(d []time.Duration, p int) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	i := (len(s)*p + 99) / 100
	if i > 0 {
		i--
	}
	return s[i].Round(10 * time.Microsecond)
}
