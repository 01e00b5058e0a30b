package docker_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/strata-paas/strata/api"
	"github.com/strata-paas/strata/deploy/driver"
	"github.com/strata-paas/strata/deploy/driver/docker"
	"github.com/strata-paas/strata/deploy/driver/drivertest"
	"github.com/strata-paas/strata/deploy/driver/process"
)

// BenchmarkContainerVsProcess measures, in one run, the test app on the
// process driver and in a container from a droplet image: start until it
// answers HTTP, and requests per second over 8 keep-alive connections at the
// address routers use (the published port for the container) and, for the
// container, at its own address. It reports each and the ratios (container
// / process).
//
//	go test -run '^$' -bench ContainerVsProcess -benchtime 5x ./deploy/driver/docker/
func BenchmarkContainerVsProcess(b *testing.B) {
	const requests, conns = 4000, 8
	ctx := context.Background()
	d, err := docker.New(ctx, docker.Config{NodeID: newNode(), ImageDir: b.TempDir(), Logger: drivertest.Logger(b)})
	if err != nil {
		drivertest.Missing(b, "docker", "no Docker engine: %v", err)
	}
	defer d.Close()
	defer func() { _, _ = d.Sweep(context.Background(), nil) }()
	pd, err := process.New(process.Config{StateDir: b.TempDir(), Confine: process.ConfineNever})
	if err != nil {
		b.Fatal(err)
	}
	app := webappDir(b)
	dropletPath, ref := benchDroplet(b, app)
	img, err := d.DropletImage(ctx, ref, dropletPath)
	if err != nil {
		drivertest.Missing(b, "docker", "droplet image: %v", err)
	}
	defer func() { _ = exec.Command("docker", "rmi", "-f", img.Image).Run() }()

	type result struct{ start, reqs, direct time.Duration }
	runOne := func(drv driver.Driver, i int, spec driver.Spec) result {
		port, err := drv.(driver.PortAllocator).AllocatePort(spec.ID)
		if err != nil {
			b.Fatal(err)
		}
		spec.ID = fmt.Sprintf("%s-%d", spec.ID, i)
		spec.Port, spec.MemoryMB = port, 256
		spec.Env = []string{"PORT=" + strconv.Itoa(port), "WEBAPP_HOST=0.0.0.0", "PATH=/usr/bin:/bin"}
		t0 := time.Now()
		h, err := drv.Start(ctx, &spec)
		if err != nil {
			b.Fatal(err)
		}
		defer drv.Destroy(context.Background(), spec.ID)
		host := h.Endpoint.Host
		if host == "" {
			host = "127.0.0.1"
		}
		url := "http://" + net.JoinHostPort(host, strconv.Itoa(h.Endpoint.Port)) + "/"
		client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: conns}, Timeout: 5 * time.Second}
		get := func() error {
			resp, err := client.Get(url)
			if err != nil {
				return err
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 {
				return fmt.Errorf("status %d", resp.StatusCode)
			}
			return nil
		}
		deadline := time.Now().Add(30 * time.Second)
		for get() != nil {
			if time.Now().After(deadline) {
				b.Fatalf("%s did not answer within 30 s", spec.ID)
			}
			time.Sleep(5 * time.Millisecond)
		}
		start := time.Since(t0)
		serve := func() time.Duration {
			t1 := time.Now()
			var wg sync.WaitGroup
			errs := make(chan error, conns)
			for range conns {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for range requests / conns {
						if err := get(); err != nil {
							errs <- err
							return
						}
					}
				}()
			}
			wg.Wait()
			close(errs)
			if err := <-errs; err != nil {
				b.Fatal(err)
			}
			return time.Since(t1)
		}
		r := result{start: start, reqs: serve()}
		if h.Endpoint.CheckHost != "" { // the container's own address
			url = "http://" + net.JoinHostPort(h.Endpoint.CheckHost, strconv.Itoa(h.Endpoint.CheckPort)) + "/"
			r.direct = serve()
		}
		return r
	}
	var proc, ctr result
	b.ResetTimer()
	for i := range b.N {
		p := runOne(pd, i, driver.Spec{ID: "bench-proc", Dir: app, Command: "exec ./webapp"})
		c := runOne(d, i, driver.Spec{ID: "bench-ctr", Image: img.Image, Dir: img.AppDir, Writable: []string{img.Root}, Command: "exec ./webapp"})
		proc.start += p.start
		proc.reqs += p.reqs
		ctr.start += c.start
		ctr.reqs += c.reqs
		ctr.direct += c.direct
	}
	n := float64(b.N)
	b.ReportMetric(proc.start.Seconds()*1000/n, "process-start-ms")
	b.ReportMetric(ctr.start.Seconds()*1000/n, "container-start-ms")
	b.ReportMetric(ctr.start.Seconds()/proc.start.Seconds(), "start-ratio")
	pr, cr := requests*n/proc.reqs.Seconds(), requests*n/ctr.reqs.Seconds()
	b.ReportMetric(pr, "process-req/s")
	b.ReportMetric(cr, "container-req/s")
	b.ReportMetric(cr/pr, "req/s-ratio")
	dr := requests * n / ctr.direct.Seconds()
	b.ReportMetric(dr, "container-direct-req/s")
	b.ReportMetric(dr/pr, "direct-req/s-ratio")
}

// benchDroplet is a droplet holding the webapp built in dir.
func benchDroplet(b *testing.B, dir string) (string, api.BlobRef) {
	bin, err := os.ReadFile(filepath.Join(dir, "webapp"))
	if err != nil {
		b.Fatal(err)
	}
	return droplet(b, map[string]string{"webapp": string(bin)})
}
