package e2e_test

import (
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestConfinement pushes two apps (e2e/testdata/netprobe) to a microcloud
// whose controller API and NATS listen on every address of the node, and
// probes from inside an instance: connecting to the API and to NATS (at the
// instance's gateway, at the node's address, on loopback) and to the other
// app's instance address fails, while the node itself reaches each of them,
// and the same request for the other app through the router works — from
// the test and from inside the instance (docs/tenancy.md, "How tenants are
// kept apart").
func TestConfinement(t *testing.T) {
	require(t, "git", "go", "ip", "iptables")
	if os.Geteuid() != 0 {
		if os.Getenv("CI") != "" || os.Getenv("STRATA_REQUIRE") != "" {
			t.Fatal("instance confinement needs the executor to run as root: run the tests as root")
		}
		t.Skip("instance confinement needs root")
	}
	_, apiPort, _ := net.SplitHostPort(freeAddr(t))
	_, natsPort, _ := net.SplitHostPort(freeAddr(t))
	data := t.TempDir()
	p := start(t, "stratad microcloud", nil, "stratad", "microcloud", "--data", data, "--drivers", "process",
		"--api-addr", "0.0.0.0:"+apiPort, "--nats-listen", "0.0.0.0:"+natsPort, "--router-addr", "127.0.0.1:0")
	p.waitLine(`API:\s+(http://\S+)`, 60*time.Second)
	routerAddr := "127.0.0.1:" + p.waitLine(`apps:\s+http://<app>\.localhost:(\d+)`, 10*time.Second)[1]
	_, routerPort, _ := net.SplitHostPort(routerAddr)
	api := "http://127.0.0.1:" + apiPort
	c := newCLI(t)
	c.must("", "strata", "login", "--api", api, "--token-file", filepath.Join(data, "admin.token"))

	src := filepath.Join(repoRoot(), "e2e", "testdata", "netprobe")
	for _, app := range []string{"alpha", "beta"} {
		out := c.must("", "strata", "push", app, "-p", src)
		t.Logf("push %s:\n%s", app, out)
		waitBody(t, routerAddr, app+".localhost", "netprobe "+app, 60*time.Second)
	}
	if out := c.must("", "strata", "app", "alpha"); !strings.Contains(out, "process") || strings.Contains(out, "process-unconfined") {
		t.Fatalf("strata app alpha does not show isolation process:\n%s", out)
	}
	// ask asks alpha's instance, through the router, to run a probe.
	ask := func(path string) string {
		t.Helper()
		code, body, err := routerGet(routerAddr, "alpha.localhost", path)
		if err != nil || code != 200 {
			t.Fatalf("alpha %s: status %d, err %v, body %q", path, code, err, body)
		}
		return body
	}
	code, betaSelf, err := routerGet(routerAddr, "beta.localhost", "/self")
	if err != nil || code != 200 {
		t.Fatalf("beta /self: %d %v", code, err)
	}
	betaAP, err := netip.ParseAddrPort(betaSelf)
	if err != nil || !netip.MustParsePrefix("10.213.0.0/16").Contains(betaAP.Addr()) {
		t.Fatalf("beta's instance is at %q, want an address of 10.213.0.0/16", betaSelf)
	}
	node := nodeIPv4(t)

	// The node reaches every target: they listen, so a failure from inside
	// the instance is the confinement, not an absent listener.
	for _, addr := range []string{net.JoinHostPort(node, apiPort), net.JoinHostPort(node, natsPort), betaSelf} {
		conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			t.Fatalf("the node itself cannot reach %s: %v", addr, err)
		}
		conn.Close()
	}
	for _, tc := range []struct{ addr, what string }{
		{"GW:" + apiPort, "the controller API at the instance's gateway"},
		{net.JoinHostPort(node, apiPort), "the controller API at the node's address"},
		{"127.0.0.1:" + apiPort, "the controller API on loopback"},
		{"GW:" + natsPort, "NATS at the instance's gateway"},
		{net.JoinHostPort(node, natsPort), "NATS at the node's address"},
		{betaSelf, "the other app's instance"},
	} {
		got := ask("/dial?addr=" + url.QueryEscape(tc.addr))
		t.Logf("from alpha's instance, %s (%s): %s", tc.what, tc.addr, got)
		if !strings.HasPrefix(got, "fail:") {
			t.Errorf("alpha's instance reached %s (%s): %q", tc.what, tc.addr, got)
		}
	}
	// The same request for beta through the router works from inside.
	got := ask(fmt.Sprintf("/get?addr=%s&host=beta.localhost&path=/", url.QueryEscape("GW:"+routerPort)))
	t.Logf("from alpha's instance, beta through the router: %s", got)
	if !strings.HasPrefix(got, "200 netprobe beta") {
		t.Errorf("alpha's instance asking the router for beta got %q, want 200 netprobe beta", got)
	}
	if code, body, err := routerGet(routerAddr, "beta.localhost", "/"); err != nil || code != 200 || !strings.Contains(body, "netprobe beta") {
		t.Errorf("beta through the router from the test: %d %q %v", code, body, err)
	}
}

// nodeIPv4 is an IPv4 address of the node other than loopback and instance
// gateways.
func nodeIPv4(t *testing.T) string {
	t.Helper()
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range addrs {
		if p, err := netip.ParsePrefix(a.String()); err == nil && p.Addr().Is4() && !p.Addr().IsLoopback() &&
			!netip.MustParsePrefix("10.213.0.0/16").Contains(p.Addr()) {
			return p.Addr().String()
		}
	}
	t.Fatal("the node has no IPv4 address besides loopback")
	return ""
}
