package e2e_test

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/strata-paas/strata/api/bus"
)

// BenchmarkFailover measures failover with default settings: two executors,
// one instance; the node running it dies (executor and instance SIGKILLed at
// once) and the clock runs until the app answers through the router again,
// from an instance on the other node. It prints the time; it asserts
// nothing about it. Run it with `make bench-push`.
func BenchmarkFailover(b *testing.B) {
	require(b, "go", "fuser")
	for i := 0; i < b.N; i++ {
		store := b.TempDir()
		srv, err := bus.StartServer(bus.ServerConfig{Host: "127.0.0.1", Port: 0, StoreDir: store})
		if err != nil {
			b.Fatal(err)
		}
		ctrlData, routerAddr := b.TempDir(), freeAddr(b)
		_, routerPort, _ := strings.Cut(routerAddr, ":")
		ctrl := start(b, "stratad controller", nil, "stratad", "controller",
			"--nats", srv.ClientURL(), "--data", ctrlData, "--api-addr", "127.0.0.1:0", "--router-port", routerPort)
		apiURL := ctrl.waitLine(`API:\s+(http://\S+)`, 60*time.Second)[1]
		start(b, "stratad router", nil, "stratad", "router", "--nats", srv.ClientURL(), "--listen", routerAddr).
			waitLine(`listening on`, 30*time.Second)
		tokenFile := filepath.Join(ctrlData, "executor.token")
		execs := map[string]*proc{}
		for _, id := range []string{"node-a", "node-b"} {
			execs[id] = start(b, "stratad executor "+id, nil, "stratad", "executor", "--nats", srv.ClientURL(),
				"--controller", apiURL, "--token-file", tokenFile, "--data", b.TempDir(), "--node-id", id, "--stop-on-exit")
			execs[id].waitLine(`node `+id, 30*time.Second)
		}
		c := newCLI(b)
		c.must("", "strata", "login", "--api", apiURL, "--token-file", tokenFile)
		c.must("", "strata", "push", "failover", "-p", filepath.Join(repoRoot(), "examples", "hello-go"))
		waitBody(b, routerAddr, "failover.localhost", helloBody, 60*time.Second)
		var app struct {
			Instances []placedInstance `json:"instances"`
		}
		if err := json.Unmarshal([]byte(c.must("", "strata", "app", "failover", "--json")), &app); err != nil || len(app.Instances) != 1 || app.Instances[0].Port == 0 {
			b.Fatalf("app --json: %+v %v", app, err)
		}
		first := app.Instances[0]

		killed := time.Now()
		_ = execs[first.NodeID].cmd.Process.Kill()
		killListener(b, first) // by instance: an isolated one listens in a network of its own
		waitBody(b, routerAddr, "failover.localhost", helloBody, 120*time.Second)
		took := time.Since(killed)
		b.ReportMetric(took.Seconds(), "failover-s")
		b.Logf("failover: node %s killed → serving again through the router in %s (goal: under 10 s)", first.NodeID, took.Round(10*time.Millisecond))
		srv.Shutdown()
	}
}
