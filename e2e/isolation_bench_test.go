package e2e_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/strata-paas/strata/api/client"
)

// BenchmarkIsolationsRouter measures, side by side in one run on one
// microcloud, examples/hello-go pushed once per isolation (placement
// isolation process, container and microvm; STRATA_BENCH_ISOLATIONS picks
// others, e.g. "process,container"):
//
//   - requests/s through the router to each (16 keep-alive connections,
//     STRATA_BENCH_SECONDS per round, default 5, rounds alternating so load
//     on the machine hits all alike);
//   - instance start → healthy: `scale -i 2` until the API shows the second
//     instance running (median of STRATA_BENCH_RUNS, default 3), which
//     includes the controller's placement, the same for all; for microvm
//     the droplet's disk image is made by then (the first push made it),
//     so this is the boot.
//
// Ratios are against process. Run it with `make bench` (bench-isolations).
// The numbers are in docs/performance.md.
func BenchmarkIsolationsRouter(b *testing.B) {
	isolations := []string{"process", "container", "microvm"}
	if s := os.Getenv("STRATA_BENCH_ISOLATIONS"); s != "" {
		isolations = strings.Split(s, ",")
	}
	if isolations[0] != "process" {
		b.Fatal("STRATA_BENCH_ISOLATIONS must start with process: the ratios are against it")
	}
	drivers := map[string]string{"process": "process", "container": "docker", "microvm": "microvm"}
	needs := map[string][]string{"container": {"docker"}, "microvm": {"qemu-system-x86_64", "qemu-img", "mkfs.ext4", "docker"}}
	var drv []string
	progs := []string{"go"}
	for _, iso := range isolations {
		d, ok := drivers[iso]
		if !ok {
			b.Fatalf("unknown isolation %q in STRATA_BENCH_ISOLATIONS", iso)
		}
		drv = append(drv, d)
		progs = append(progs, needs[iso]...)
	}
	require(b, progs...)
	if slices.Contains(isolations, "microvm") {
		buildGuestInit(b)
	}
	runs, secs := 3, 5
	if s := os.Getenv("STRATA_BENCH_RUNS"); s != "" {
		runs, _ = strconv.Atoi(s)
	}
	if s := os.Getenv("STRATA_BENCH_SECONDS"); s != "" {
		secs, _ = strconv.Atoi(s)
	}
	data := b.TempDir()
	p := start(b, "stratad microcloud", nil, "stratad", "microcloud", "--data", data, "--api-addr", "127.0.0.1:0",
		"--router-addr", "127.0.0.1:0", "--drivers", strings.Join(drv, ","))
	// A node's first start with the microvm driver probes KVM (~20 s here).
	apiURL := p.waitLine(`API:\s+(http://\S+)`, 3*time.Minute)[1]
	routerAddr := "127.0.0.1:" + p.waitLine(`apps:\s+http://<app>\.localhost:(\d+)`, 10*time.Second)[1]
	token, err := os.ReadFile(filepath.Join(data, "admin.token"))
	if err != nil {
		b.Fatal(err)
	}
	api := client.New(apiURL, strings.TrimSpace(string(token)))
	c := newCLI(b)
	c.must("", "strata", "login", "--api", apiURL, "--token-file", filepath.Join(data, "admin.token"))
	app := func(iso string) string { return "bench-" + iso }
	var node string
	b.Cleanup(func() { // before the microcloud stops (registered after it)
		for _, iso := range isolations {
			c.run("", "strata", "apps", "delete", app(iso), "--force")
		}
		if node == "" || !slices.Contains(isolations, "container") {
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
		deadline := time.Now().Add(10 * time.Minute)
		for {
			if got, _ := running(name); got == n {
				return
			}
			if time.Now().After(deadline) {
				b.Fatalf("%s: %d instances not running within 10m", name, n)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	for _, iso := range isolations {
		src := copyDir(b, filepath.Join(repoRoot(), "examples", "hello-go"))
		manifest := fmt.Sprintf("applications:\n- name: %s\n  placement:\n    isolation: %s\n", app(iso), iso)
		if err := os.WriteFile(filepath.Join(src, "strata.yml"), []byte(manifest), 0o644); err != nil {
			b.Fatal(err)
		}
		c.must(src, "strata", "push")
		waitBody(b, routerAddr, app(iso)+".localhost", helloBody, 10*time.Minute)
		waitRunning(app(iso), 1)
		_, in := running(app(iso))
		if in.isolation != iso {
			b.Fatalf("%s runs with isolation %q, want %s", app(iso), in.isolation, iso)
		}
		node = in.node
	}

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
	startTime := func(name string) time.Duration {
		t0 := time.Now()
		c.must("", "strata", "scale", name, "-i", "2")
		waitRunning(name, 2)
		d := time.Since(t0)
		c.must("", "strata", "scale", name, "-i", "1")
		waitRunning(name, 1)
		return d
	}
	rps := map[string][]float64{}
	starts := map[string][]time.Duration{}
	for _, iso := range isolations { // warm up
		load(app(iso), time.Second)
	}
	for r := 0; r < runs; r++ {
		for _, iso := range isolations {
			rps[iso] = append(rps[iso], load(app(iso), time.Duration(secs)*time.Second))
		}
	}
	for r := 0; r < runs; r++ {
		for _, iso := range isolations {
			starts[iso] = append(starts[iso], startTime(app(iso)))
		}
	}
	medianF := func(v []float64) float64 {
		s := append([]float64(nil), v...)
		sort.Float64s(s)
		return s[len(s)/2]
	}
	pr, ps := medianF(rps["process"]), median(starts["process"])
	fmt.Printf("\nIsolations, examples/hello-go through the router, median of %d rounds (ratios against process)\n", runs)
	fmt.Printf("%-10s %14s %8s %16s %8s\n", "isolation", "router req/s", "ratio", "scale → running", "ratio")
	for _, iso := range isolations {
		r, s := medianF(rps[iso]), median(starts[iso])
		fmt.Printf("%-10s %14.0f %7.3fx %15.3fs %7.1fx\n", iso, r, r/pr, s.Seconds(), s.Seconds()/ps.Seconds())
		fmt.Printf("           rounds req/s %.0f; starts %v\n", rps[iso], starts[iso])
		b.ReportMetric(r, iso+"-req/s")
		b.ReportMetric(s.Seconds(), "s/"+iso+"-start")
	}
}
