package e2e_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/strata-paas/strata/api/bus"
)

// TestThreeProcessTopology runs the controller, the router and an executor as
// separate processes against one external NATS server, and pushes an app
// through them.
func TestThreeProcessTopology(t *testing.T) {
	require(t, "go")
	srv, err := bus.StartServer(bus.ServerConfig{Host: "127.0.0.1", Port: 0, StoreDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Shutdown)
	natsURL := srv.ClientURL()

	ctrlData := t.TempDir()
	routerAddr := freeAddr(t)
	_, routerPort, _ := strings.Cut(routerAddr, ":")
	ctrl := start(t, "stratad controller", nil, "stratad", "controller",
		"--nats", natsURL, "--data", ctrlData, "--api-addr", "127.0.0.1:0", "--router-port", routerPort)
	apiURL := ctrl.waitLine(`API:\s+(http://\S+)`, 60*time.Second)[1]

	rt := start(t, "stratad router", nil, "stratad", "router", "--nats", natsURL, "--listen", routerAddr)
	rt.waitLine(`listening on`, 30*time.Second)

	ex := start(t, "stratad executor", nil, "stratad", "executor", "--nats", natsURL,
		"--controller", apiURL, "--token-file", filepath.Join(ctrlData, "executor.token"),
		"--data", t.TempDir(), "--stop-on-exit")
	ex.waitLine(`node \S+`, 30*time.Second)

	c := newCLI(t)
	c.must("", "strata", "login", "--api", apiURL, "--token-file", filepath.Join(ctrlData, "admin.token"))
	out := c.must("", "strata", "push", "topo", "-p", filepath.Join(repoRoot(), "examples", "hello-go"))
	t.Logf("push:\n%s", out)
	waitBody(t, routerAddr, "topo.localhost", helloBody, 30*time.Second)

	// The node shows up with its fingerprint.
	out = c.must("", "strata", "app", "topo", "--json")
	if !strings.Contains(out, `"node_id"`) {
		t.Errorf("app --json lacks node ids: %s", out)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	_ = ctx
	ex.stop(30 * time.Second)
	rt.stop(15 * time.Second)
	ctrl.stop(15 * time.Second)
}
