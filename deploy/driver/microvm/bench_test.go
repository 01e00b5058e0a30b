package microvm_test

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/strata-paas/strata/deploy/driver"
	"github.com/strata-paas/strata/deploy/driver/process"
)

// BenchmarkBootVsProcess measures, in one run, examples/hello-go (built
// static) from Start until it answers HTTP at its endpoint: on the process
// driver and in a microVM (TCG or KVM, whichever the probe chose). It
// reports both and the ratio (microvm / process).
//
//	go test -run '^$' -bench BootVsProcess -benchtime 3x ./deploy/driver/microvm/
func BenchmarkBootVsProcess(b *testing.B) {
	ctx := context.Background()
	vm := newDriverIn(b, b.TempDir())
	pd, err := process.New(process.Config{StateDir: b.TempDir(), Confine: process.ConfineNever})
	if err != nil {
		b.Fatal(err)
	}
	inst := b.TempDir()
	app := filepath.Join(inst, "droplet", "app")
	build := exec.Command("go", "build", "-trimpath", "-o", filepath.Join(app, "hello"), ".")
	build.Dir = filepath.Join("..", "..", "..", "examples", "hello-go")
	build.Env = append(os.Environ(), "CGO_ENABLED=0", "GOWORK=off")
	if out, err := build.CombinedOutput(); err != nil {
		b.Fatalf("build examples/hello-go: %v: %s", err, out)
	}
	serve := func(drv driver.Driver, id string) time.Duration {
		port, err := drv.(driver.PortAllocator).AllocatePort(id)
		if err != nil {
			b.Fatal(err)
		}
		t0 := time.Now()
		h, err := drv.Start(ctx, &driver.Spec{ID: id, Dir: app, Command: "./hello", MemoryMB: 128, Port: port,
			Writable: []string{filepath.Join(inst, "droplet")}, Env: []string{"PATH=/bin:/usr/bin", fmt.Sprintf("PORT=%d", port)}})
		if err != nil {
			b.Fatalf("Start on %T: %v", drv, err)
		}
		defer func() { _ = drv.Destroy(context.Background(), id) }()
		host := h.Endpoint.Host
		if host == "" {
			host = "127.0.0.1"
		}
		url := fmt.Sprintf("http://%s:%d/healthz", host, h.Endpoint.Port)
		if h.Endpoint.Port == 0 {
			url = fmt.Sprintf("http://127.0.0.1:%d/healthz", port)
		}
		client := &http.Client{Timeout: time.Second}
		deadline := time.Now().Add(time.Minute)
		for time.Now().Before(deadline) {
			if resp, err := client.Get(url); err == nil {
				resp.Body.Close()
				if resp.StatusCode == 200 {
					return time.Since(t0)
				}
			}
			time.Sleep(5 * time.Millisecond)
		}
		b.Fatalf("%s did not answer within a minute", id)
		return 0
	}
	var p, m time.Duration
	for i := 0; i < b.N; i++ {
		p += serve(pd, fmt.Sprint("proc-", i))
		m += serve(vm, fmt.Sprint("vm-", i))
	}
	n := time.Duration(b.N)
	b.ReportMetric(float64((p / n).Milliseconds()), "process-ms")
	b.ReportMetric(float64((m / n).Milliseconds()), "microvm-ms")
	b.ReportMetric(float64(m)/float64(p), "microvm/process")
	b.Logf("start until HTTP: process %s, microvm (%s) %s", p/n, vm.Acceleration(), m/n)
}
