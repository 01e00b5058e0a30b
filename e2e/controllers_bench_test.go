package e2e_test

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// BenchmarkLeaderFailover kills the leading controller of two (PostgreSQL,
// one NATS server, a router, an executor; processes) and times how long
// until the other leads, and until a scale made through the one address
// right after the kill runs: with the default lease time to live and with
// --lease-ttl 10s (the default before 2026-12-04), side by side (`make bench-push`; docs/performance.md).
func BenchmarkLeaderFailover(b *testing.B) {
	for _, ttl := range []string{"", "10s"} {
		name := "lease-ttl=" + ttl
		if ttl == "" {
			name = "lease-ttl=default"
		}
		b.Run(name, func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				cs := startControllers(b, 2, ttl)
				c := newCLI(b)
				c.must("", "strata", "login", "--api", cs.one, "--token-file", cs.token)
				c.must("", "strata", "push", "lead", "-p", filepath.Join(repoRoot(), "examples", "hello-go"))
				waitBody(b, cs.routerAddr, "lead.localhost", helloBody, 60*time.Second)
				leader := cs.leader(b)
				survivor := cs.ctls[1-leader]

				killed := time.Now()
				cs.ctls[leader].p.kill()
				for !survivor.p.logged("msg=leader.acquired") {
					if time.Since(killed) > 60*time.Second {
						b.Fatal("the survivor did not lead within 60 s")
					}
					time.Sleep(20 * time.Millisecond)
				}
				led := time.Since(killed)
				c.must("", "strata", "scale", "lead", "-i", "2")
				for len(runningRx.FindAllString(c.must("", "strata", "app", "lead", "--json"), -1)) != 2 {
					if time.Since(killed) > 120*time.Second {
						b.Fatal("two instances not running 120 s after the kill")
					}
					time.Sleep(50 * time.Millisecond)
				}
				converged := time.Since(killed)
				b.ReportMetric(led.Seconds(), "lead-s")
				b.ReportMetric(converged.Seconds(), "converged-s")
				b.Logf("leader killed → %s leads in %s; a scale made after the kill runs in %s (goal: leading under 5 s)",
					survivor.id, led.Round(10*time.Millisecond), converged.Round(10*time.Millisecond))
			}
		})
	}
}

// apiRate is the API requests/s of each controller count, for the ratio.
var apiRate sync.Map

// BenchmarkAPIControllers sends authenticated GET /v1/apps requests (each
// reads the database) through the router's api.localhost for 5 s from 16
// clients, to one controller and to three, side by side, and prints
// requests/s and the ratio (`make bench-push`; docs/performance.md). On a
// 2-core machine the three share the same two cores.
func BenchmarkAPIControllers(b *testing.B) {
	for _, n := range []int{1, 3} {
		b.Run(fmt.Sprintf("controllers=%d", n), func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				cs := startControllers(b, n, "")
				tok, err := os.ReadFile(cs.token)
				if err != nil {
					b.Fatal(err)
				}
				token := strings.TrimSpace(string(tok))
				var ok, failed atomic.Int64
				deadline := time.Now().Add(5 * time.Second)
				var wg sync.WaitGroup
				for range 16 {
					wg.Add(1)
					go func() {
						defer wg.Done()
						hc := &http.Client{Timeout: 10 * time.Second}
						for time.Now().Before(deadline) {
							req, _ := http.NewRequest("GET", "http://"+cs.routerAddr+"/v1/apps", nil)
							req.Host = "api.localhost"
							req.Header.Set("Authorization", "Bearer "+token)
							res, err := hc.Do(req)
							if err != nil {
								failed.Add(1)
								continue
							}
							_, _ = io.Copy(io.Discard, res.Body) // drained, so the connection is reused
							res.Body.Close()
							if res.StatusCode == 200 {
								ok.Add(1)
							} else {
								failed.Add(1)
							}
						}
					}()
				}
				wg.Wait()
				rate := float64(ok.Load()) / 5
				apiRate.Store(n, rate)
				b.ReportMetric(rate, "req/s")
				b.ReportMetric(float64(failed.Load()), "failed")
				line := fmt.Sprintf("API through the router, %d controller(s): %.0f req/s, %d failed", n, rate, failed.Load())
				if one, ok := apiRate.Load(1); ok && n != 1 {
					line += fmt.Sprintf(" — %.2f× one controller", rate/one.(float64))
				}
				b.Log(line)
			}
		})
	}
}
