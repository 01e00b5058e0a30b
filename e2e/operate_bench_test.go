package e2e_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// crashOnRequestApp answers "ok" and exits with code 1 on GET /crash.
const crashOnRequestApp = `package main

import (
	"fmt"
	"net/http"
	"os"
)

func main() {
	http.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "ok (instance %s, release %s)\n", os.Getenv("STRATA_INSTANCE_INDEX"), os.Getenv("STRATA_RELEASE"))
	})
	http.HandleFunc("/crash", func(w http.ResponseWriter, r *http.Request) { os.Exit(1) })
	fmt.Println(http.ListenAndServe(":"+os.Getenv("PORT"), nil))
}
`

// BenchmarkOperate measures how fast the microcloud operates a running app
// and prints it next to a peer measured in the same run:
//
//   - env set → every instance (2) serving the new release through the
//     router, against restarting the same two processes by hand one after
//     the other (kill, exec, first 200);
//   - crash → serving again through the router (one instance), against a
//     supervisor loop that execs the process again at once.
//
// Run it with `make bench` (go test -bench BenchmarkOperate -benchtime 1x).
func BenchmarkOperate(b *testing.B) {
	require(b, "go")
	runs := 3
	if s := os.Getenv("STRATA_BENCH_RUNS"); s != "" {
		runs, _ = strconv.Atoi(s)
	}
	for i := 0; i < b.N; i++ {
		mc := startMicrocloud(b, b.TempDir())
		c := newCLI(b)
		c.must("", "strata", "login", "--api", mc.api, "--token-file", mc.tokenFile)
		src := goApp(b, crashOnRequestApp, nil)
		c.must("", "strata", "push", "roll", "-p", src)
		c.must("", "strata", "scale", "roll", "-i", "2")
		waitAllAt(b, mc.routerAddr, "roll.localhost", 1, 2, 2*time.Minute)

		var envSet, crash, peerEnv, peerCrash []time.Duration
		for r := 0; r < runs; r++ {
			t0 := time.Now()
			c.must("", "strata", "env", "set", "roll", "RUN="+strconv.Itoa(r))
			waitAllAt(b, mc.routerAddr, "roll.localhost", r+2, 2, 2*time.Minute)
			envSet = append(envSet, time.Since(t0))

			// A new app per run: each crash is its first (immediate restart).
			name := fmt.Sprintf("crash%d", r)
			c.must("", "strata", "push", name, "-p", src)
			host := name + ".localhost"
			waitBody(b, mc.routerAddr, host, "ok", time.Minute)
			t1 := time.Now()
			_, _, _ = routerGet(mc.routerAddr, host, "/crash")
			waitBody(b, mc.routerAddr, host, "ok", time.Minute)
			crash = append(crash, time.Since(t1))
			c.must("", "strata", "stop", name)

			peerEnv = append(peerEnv, peerRestarts(b, src, 2))
			peerCrash = append(peerCrash, peerRestarts(b, src, 1))
		}
		mc.stop(30 * time.Second)
		fmt.Printf("\nStrata microcloud operating an app, median of %d runs\n", runs)
		fmt.Printf("%-34s %10s %10s %8s  %s\n", "metric", "strata", "peer", "ratio", "peer")
		for _, r := range []struct {
			name      string
			got, peer time.Duration
			peerName  string
		}{
			{"env set → 2 instances at new rel.", median(envSet), median(peerEnv), "2 plain process restarts, one by one"},
			{"crash → serving again", median(crash), median(peerCrash), "plain process re-exec after exit"},
		} {
			fmt.Printf("%-34s %9.3fs %9.3fs %7.2fx  %s\n", r.name, r.got.Seconds(), r.peer.Seconds(), r.got.Seconds()/r.peer.Seconds(), r.peerName)
		}
		b.ReportMetric(median(envSet).Seconds(), "s/env-set-rollout")
		b.ReportMetric(median(crash).Seconds(), "s/crash-to-serving")
	}
}

// waitAllAt polls host through the router until `want` consecutive answers
// all come from release rel and every instance index below n has answered.
func waitAllAt(t testing.TB, addr, host string, rel, n int, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	relMark := fmt.Sprintf("release %d)", rel)
	const want = 20
	streak, seen := 0, map[string]bool{}
	for time.Now().Before(deadline) {
		code, body, err := routerGet(addr, host, "/")
		if err != nil || code != 200 || !strings.Contains(body, relMark) {
			streak, seen = 0, map[string]bool{}
			time.Sleep(5 * time.Millisecond)
			continue
		}
		streak++
		if _, rest, ok := strings.Cut(body, "(instance "); ok {
			idx, _, _ := strings.Cut(rest, ",")
			seen[idx] = true
		}
		if streak >= want && len(seen) >= n {
			return
		}
	}
	t.Fatalf("%s: not all %d instances at release %d within %s", host, n, rel, timeout)
}

// peerRestarts builds the app once, starts n copies, then restarts them one
// after another (kill, exec, first 200) and returns the restart time.
func peerRestarts(t testing.TB, src string, n int) time.Duration {
	t.Helper()
	dir := t.TempDir()
	build := exec.Command("go", "build", "-o", filepath.Join(dir, "app"), ".")
	build.Dir = src
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("peer build: %v\n%s", err, out)
	}
	start := func(port string) *exec.Cmd {
		cmd := exec.Command(filepath.Join(dir, "app"))
		cmd.Env = append(os.Environ(), "PORT="+port)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		waitHTTP(t, "http://127.0.0.1:"+port+"/", 30*time.Second)
		return cmd
	}
	ports := make([]string, n)
	procs := make([]*exec.Cmd, n)
	for i := range procs {
		_, ports[i], _ = strings.Cut(freeAddr(t), ":")
		procs[i] = start(ports[i])
	}
	t0 := time.Now()
	for i, p := range procs {
		_ = p.Process.Kill()
		_ = p.Wait()
		procs[i] = start(ports[i])
	}
	d := time.Since(t0)
	for _, p := range procs {
		_ = p.Process.Kill()
		_ = p.Wait()
	}
	return d
}
