package e2e_test

import (
	"context"
	"os/exec"
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

// TestBusRequiresComponentCredentials runs the controller with its embedded
// NATS server on a network address: the router and the executor connect with
// their component credentials and an app is pushed and served through them,
// while a client without credentials, and an executor presenting another
// credential, are refused (docs/tenancy.md, "The bus").
func TestBusRequiresComponentCredentials(t *testing.T) {
	require(t, "go")
	natsAddr := freeAddr(t)
	natsURL := "nats://" + natsAddr
	ctrlData := t.TempDir()
	routerAddr := freeAddr(t)
	_, routerPort, _ := strings.Cut(routerAddr, ":")
	ctrl := start(t, "stratad controller", nil, "stratad", "controller",
		"--nats-listen", natsAddr, "--data", ctrlData, "--api-addr", "127.0.0.1:0", "--router-port", routerPort)
	apiURL := ctrl.waitLine(`API:\s+(http://\S+)`, 60*time.Second)[1]

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if c, err := bus.Connect(ctx, natsURL, bus.Options{Name: "anonymous"}); err == nil {
		c.Close()
		t.Fatal("a client without credentials connected to the controller's NATS server")
	}
	out, err := exec.CommandContext(ctx, filepath.Join(binDir, "stratad"), "executor", "--nats", natsURL,
		"--controller", apiURL, "--token-file", filepath.Join(ctrlData, "admin.token"), "--data", t.TempDir()).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "refused the credentials") {
		t.Fatalf("an executor presenting the admin token: err %v, output:\n%s\nwant it refused, naming the credentials", err, out)
	}

	rt := start(t, "stratad router", nil, "stratad", "router", "--nats", natsURL, "--listen", routerAddr,
		"--token-file", filepath.Join(ctrlData, "router.token"))
	rt.waitLine(`listening on`, 30*time.Second)
	ex := start(t, "stratad executor", nil, "stratad", "executor", "--nats", natsURL,
		"--controller", apiURL, "--token-file", filepath.Join(ctrlData, "executor.token"),
		"--data", t.TempDir(), "--stop-on-exit")
	ex.waitLine(`node \S+`, 30*time.Second)

	c := newCLI(t)
	c.must("", "strata", "login", "--api", apiURL, "--token-file", filepath.Join(ctrlData, "admin.token"))
	c.must("", "strata", "push", "busauth", "-p", filepath.Join(repoRoot(), "examples", "hello-go"))
	waitBody(t, routerAddr, "busauth.localhost", helloBody, 30*time.Second)
	// The instance's output travels from the executor to the controller
	// over the bus.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		out := c.must("", "strata", "logs", "busauth", "--recent")
		if strings.Contains(out, "hello listening") {
			break
		}
		if time.Now().After(deadline) {
			t.Errorf("the instance's log lines did not reach the controller:\n%s", out)
			break
		}
	}
	ex.stop(30 * time.Second)
	rt.stop(15 * time.Second)
	ctrl.stop(15 * time.Second)
}
