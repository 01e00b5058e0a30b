package process_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/strata-paas/strata/api"
	"github.com/strata-paas/strata/deploy/driver"
	"github.com/strata-paas/strata/deploy/driver/drivertest"
	"github.com/strata-paas/strata/deploy/driver/process"
)

// helperEnv switches the test binary into a helper an instance runs (see
// TestMain): "serve" answers every connection on $PORT with $HELLO;
// "dial ADDR…" prints one line per address: "ADDR ok <what it read>" or
// "ADDR fail <error>".
const helperEnv = "STRATA_PROCESS_TEST_HELPER"

func TestMain(m *testing.M) {
	switch os.Getenv(helperEnv) {
	case "serve":
		l, err := net.Listen("tcp", ":"+os.Getenv("PORT"))
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		fmt.Println("ready")
		for {
			c, err := l.Accept()
			if err != nil {
				os.Exit(1)
			}
			_, _ = io.WriteString(c, os.Getenv("HELLO"))
			c.Close()
		}
	case "dial":
		for _, a := range os.Args[1:] {
			if rest, ok := strings.CutPrefix(a, "GW:"); ok {
				a = net.JoinHostPort(gateway(), rest)
			}
			c, err := net.DialTimeout("tcp", a, 3*time.Second)
			if err != nil {
				fmt.Printf("%s fail %v\n", a, err)
				continue
			}
			_ = c.SetDeadline(time.Now().Add(3 * time.Second))
			b, _ := io.ReadAll(c)
			c.Close()
			fmt.Printf("%s ok %q\n", a, b)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// gateway is the default route's gateway, from /proc/net/route.
func gateway() string {
	b, _ := os.ReadFile("/proc/net/route")
	for line := range strings.SplitSeq(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) > 2 && f[1] == "00000000" {
			v, err := strconv.ParseUint(f[2], 16, 32)
			if err == nil {
				return netip.AddrFrom4([4]byte{byte(v), byte(v >> 8), byte(v >> 16), byte(v >> 24)}).String()
			}
		}
	}
	return "0.0.0.0"
}

// helperDir is an instance dir holding a copy of the test binary (the
// instance sees neither the host's /tmp nor the build dir).
func helperDir(t *testing.T) string {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(self)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "helper"), b, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// hostListener accepts on addr and answers each connection with "host".
func hostListener(t *testing.T, addr string) netip.AddrPort {
	t.Helper()
	l, err := net.Listen("tcp4", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			_, _ = io.WriteString(c, "host")
			c.Close()
		}
	}()
	return l.Addr().(*net.TCPAddr).AddrPort()
}

// nodeAddr is one of the node's own IPv4 addresses that is not loopback and
// not an instance gateway.
func nodeAddr(t *testing.T) netip.Addr {
	t.Helper()
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range addrs {
		if p, err := netip.ParsePrefix(a.String()); err == nil && p.Addr().Is4() && !p.Addr().IsLoopback() && !netip.MustParsePrefix("10.213.0.0/16").Contains(p.Addr()) {
			return p.Addr()
		}
	}
	t.Skip("the node has no IPv4 address besides loopback")
	return netip.Addr{}
}

// TestNetworkConfinement: an isolated instance has a network of its own; it
// cannot connect to the node's listeners (on loopback, on 0.0.0.0, at its
// gateway or the node's address) nor to another instance, which the node
// itself reaches at the address its handle reports; it can connect to the
// node's ports the driver opens for it (the router's).
func TestNetworkConfinement(t *testing.T) {
	loop := hostListener(t, "127.0.0.1:0")
	any := hostListener(t, "0.0.0.0:0")
	router := hostListener(t, "127.0.0.1:0")
	d := confined(t, t.TempDir(), router)
	if fp := d.Fingerprint(); fp.Isolations[0] != api.IsolationProcess {
		t.Fatalf("Fingerprint = %+v, want %s", fp, api.IsolationProcess)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	// Instance b serves; the node reaches it where its handle says.
	port, err := d.AllocatePort("b")
	if err != nil {
		t.Fatal(err)
	}
	bOut := &drivertest.Buffer{}
	hb, err := d.Start(ctx, &driver.Spec{ID: "net-b", Dir: helperDir(t), Command: "exec ./helper", Port: port, MemoryMB: 128,
		Env: []string{helperEnv + "=serve", "PORT=" + strconv.Itoa(port), "HELLO=b"}, Stdout: bOut, Stderr: bOut})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = d.Destroy(context.Background(), "net-b") })
	waitFor(t, "instance b to listen", func() bool { return strings.Contains(bOut.String(), "ready") })
	ep := hb.Endpoint
	bAddr, err := netip.ParseAddr(ep.Host)
	if err != nil || ep.Port != port || !netip.MustParsePrefix("10.213.0.0/16").Contains(bAddr) {
		t.Fatalf("instance b's endpoint %+v: want an address of 10.213.0.0/16 and port %d", ep, port)
	}
	bEP := net.JoinHostPort(ep.Host, strconv.Itoa(ep.Port))
	c, err := net.DialTimeout("tcp", bEP, 5*time.Second)
	if err != nil {
		t.Fatalf("the node cannot reach instance b at its endpoint %s: %v", bEP, err)
	}
	if b, _ := io.ReadAll(c); string(b) != "b" {
		t.Fatalf("instance b at %s answered %q, want b", bEP, b)
	}
	c.Close()

	node := nodeAddr(t)
	probes := []struct {
		addr, why string
		ok        bool
	}{
		{loop.String(), "the node's loopback listener (127.0.0.1 is the instance's own loopback)", false},
		{"GW:" + strconv.Itoa(int(loop.Port())), "the node's loopback listener, at the gateway", false},
		{"GW:" + strconv.Itoa(int(any.Port())), "the node's 0.0.0.0 listener, at the gateway", false},
		{netip.AddrPortFrom(node, any.Port()).String(), "the node's 0.0.0.0 listener, at the node's address", false},
		{bEP, "another instance", false},
		{"GW:" + strconv.Itoa(int(router.Port())), "the router's port the driver opened, at the gateway", true},
	}
	var args []string
	for _, p := range probes {
		args = append(args, p.addr)
	}
	out, errOut, res := run(t, d, &driver.Spec{ID: "net-a", Dir: helperDir(t), Command: "exec ./helper " + strings.Join(args, " "),
		MemoryMB: 128, Env: []string{helperEnv + "=dial"}})
	if res.ExitCode != 0 {
		t.Fatalf("instance a: %+v, stderr %q", res, errOut)
	}
	t.Logf("from inside instance a:\n%s", out)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != len(probes) {
		t.Fatalf("instance a printed %q, want one line per probe", out)
	}
	for i, p := range probes {
		f := strings.Fields(lines[i])
		if len(f) < 2 || !strings.HasSuffix(f[0], strings.TrimPrefix(p.addr, "GW")) {
			t.Fatalf("probe line %q, want one for %s", lines[i], p.addr)
		}
		if got := f[1] == "ok"; got != p.ok {
			t.Errorf("instance a connecting to %s: %s; want ok=%v: %s", f[0], strings.Join(f[1:], " "), p.ok, p.why)
		}
	}
	if !strings.Contains(lines[len(lines)-1], `"host"`) {
		t.Errorf("the router's port answered %q, want the node's listener", lines[len(lines)-1])
	}
}

// TestNetworkMissingTools: a node without iptables (here: a search path
// without it) cannot keep instances apart: New refuses, saying what is
// missing and how to allow the node's network, and with HostNetwork the
// driver isolates instances on the node's network and says process-unconfined.
func TestNetworkMissingTools(t *testing.T) {
	if os.Geteuid() != 0 {
		isolated(t, t.TempDir()) // skips, or fails in CI
	}
	empty := t.TempDir()
	defer process.SetNetSearchPath(empty)()
	_, err := process.New(process.Config{StateDir: t.TempDir(), Logger: slog.New(slog.NewTextHandler(testWriter{t}, nil))})
	if api.ErrorCode(err) != api.EUnavailable || !strings.Contains(err.Error(), "ip command is missing") || !strings.Contains(err.Error(), "--process-host-network") {
		t.Fatalf("New without the ip command: %v; want unavailable, naming the missing command and --process-host-network", err)
	}
	d, err := process.New(process.Config{StateDir: t.TempDir(), HostNetwork: true, Logger: slog.New(slog.NewTextHandler(testWriter{t}, nil))})
	if err != nil {
		t.Fatalf("New with HostNetwork: %v", err)
	}
	if !d.Isolated() || d.Fingerprint().Isolations[0] != api.IsolationProcessUnconfined {
		t.Fatalf("with HostNetwork: Isolated %v, fingerprint %+v; want isolated and %s", d.Isolated(), d.Fingerprint(), api.IsolationProcessUnconfined)
	}
	out, _, res := run(t, d, &driver.Spec{ID: "hostnet", Dir: t.TempDir(), MemoryMB: 64, Command: "readlink /proc/self/ns/net"})
	host, _ := os.Readlink("/proc/self/ns/net")
	if res.ExitCode != 0 || strings.TrimSpace(out) != host {
		t.Fatalf("instance with HostNetwork in net namespace %q (%+v), want the node's %q", out, res, host)
	}
}

// TestNetworkAddresses: instances of two drivers sharing the node get
// distinct addresses, and a destroyed instance's link is gone and its
// address unreachable.
func TestNetworkAddresses(t *testing.T) {
	ds := []*process.Driver{isolated(t, t.TempDir()), isolated(t, t.TempDir())}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	type started struct {
		d  *process.Driver
		id string
		h  *driver.Handle
	}
	res := make(chan started)
	errs := make(chan error)
	n := 0
	for i, d := range ds {
		for j := range 3 {
			n++
			id := fmt.Sprintf("addr-%d-%d", i, j)
			go func() {
				h, err := d.Start(ctx, &driver.Spec{ID: id, Dir: t.TempDir(), MemoryMB: 64, Port: process.ListenPort, Command: "while :; do sleep 0.05; done"})
				if err != nil {
					errs <- err
					return
				}
				res <- started{d, id, h}
			}()
		}
	}
	seen := map[string]string{}
	var all []started
	for range n {
		select {
		case s := <-res:
			all = append(all, s)
			t.Cleanup(func() { _ = s.d.Destroy(context.Background(), s.id) })
			if other, ok := seen[s.h.Endpoint.Host]; ok || s.h.Endpoint.Host == "" {
				t.Errorf("instance %s got address %q, already %s's", s.id, s.h.Endpoint.Host, other)
			}
			seen[s.h.Endpoint.Host] = s.id
		case err := <-errs:
			t.Fatalf("Start: %v", err)
		}
	}
	for _, s := range all {
		link := linkOf(t, s.h)
		if _, err := os.Stat("/sys/class/net/" + link); err != nil {
			t.Fatalf("instance %s's link %s: %v", s.id, link, err)
		}
		if err := s.d.Destroy(ctx, s.id); err != nil {
			t.Fatal(err)
		}
		waitLinkGone(t, link)
		// Its address is routed nowhere: not the default route, where
		// something might answer.
		if c, err := net.DialTimeout("tcp", net.JoinHostPort(s.h.Endpoint.Host, strconv.Itoa(process.ListenPort)), 3*time.Second); err == nil {
			c.Close()
			t.Fatalf("a connection to destroyed instance %s's address %s opened", s.id, s.h.Endpoint.Host)
		}
	}
}

// confined is an isolating driver on state whose instances may reach the
// node's hostPorts.
func confined(t *testing.T, state string, hostPorts ...netip.AddrPort) *process.Driver {
	t.Helper()
	if os.Geteuid() != 0 {
		isolated(t, t.TempDir()) // skips, or fails in CI
	}
	d, err := process.New(process.Config{StateDir: state, Confine: process.ConfineAlways, HostPorts: hostPorts,
		Logger: slog.New(slog.NewTextHandler(testWriter{t}, nil))})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func waitLinkGone(t *testing.T, link string) {
	t.Helper()
	waitFor(t, "link "+link+" to go", func() bool {
		_, err := os.Stat("/sys/class/net/" + link)
		return errors.Is(err, os.ErrNotExist)
	})
}

// linkOf is the node's end of an instance's veth pair, from its handle.
func linkOf(t *testing.T, h *driver.Handle) string {
	t.Helper()
	var data struct {
		Net struct {
			HostIf string `json:"host_if"`
		} `json:"net"`
	}
	if err := json.Unmarshal(h.Data, &data); err != nil || data.Net.HostIf == "" {
		t.Fatalf("handle data %s names no link: %v", h.Data, err)
	}
	return data.Net.HostIf
}

// serveHello starts the helper serving hello at process.ListenPort as
// instance id of d (destroyed when t ends) and waits until it listens.
func serveHello(ctx context.Context, t *testing.T, d *process.Driver, id, hello string) *driver.Handle {
	t.Helper()
	out := &drivertest.Buffer{}
	h, err := d.Start(ctx, &driver.Spec{ID: id, Dir: helperDir(t), Command: "exec ./helper", Port: process.ListenPort, MemoryMB: 128,
		Env: []string{helperEnv + "=serve", "PORT=" + strconv.Itoa(process.ListenPort), "HELLO=" + hello}, Stdout: out})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = d.Destroy(context.Background(), id) })
	waitFor(t, "the instance to listen", func() bool { return strings.Contains(out.String(), "ready") })
	return h
}

// TestNetworkRecover: after a restart (a second driver on the state dir) an
// instance is adopted with its network: it still answers at the address its
// handle reports, and once it is stopped its link and rules are gone.
func TestNetworkRecover(t *testing.T) {
	state := t.TempDir()
	router := hostListener(t, "127.0.0.1:0")
	d1 := confined(t, state, router)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	h := serveHello(ctx, t, d1, "net-rec", "rec")
	raw, _ := json.Marshal(h)
	var loaded driver.Handle
	if err := json.Unmarshal(raw, &loaded); err != nil {
		t.Fatal(err)
	}
	d2 := confined(t, state, router)
	if err := d2.Recover(ctx, &loaded); err != nil {
		t.Fatalf("Recover: %v", err)
	}
	addr := net.JoinHostPort(loaded.Endpoint.Host, strconv.Itoa(loaded.Endpoint.Port))
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatalf("recovered instance at %s: %v", addr, err)
	}
	if b, _ := io.ReadAll(c); string(b) != "rec" {
		t.Fatalf("recovered instance answered %q", b)
	}
	c.Close()
	link := linkOf(t, h)
	if err := d2.Stop(ctx, "net-rec", 5*time.Second); err != nil {
		t.Fatal(err)
	}
	if _, err := d2.Wait(ctx, "net-rec"); err != nil {
		t.Fatal(err)
	}
	waitLinkGone(t, link)
	for _, chain := range [][]string{{"-t", "filter", "-S", "STRATA-INST-PORTS"}, {"-t", "nat", "-S", "STRATA-INST-DNAT"}} {
		b, err := exec.Command("iptables", chain...).Output()
		if err != nil {
			t.Fatalf("iptables %v: %v", chain, err)
		}
		if strings.Contains(string(b), "-i "+link+" ") {
			t.Errorf("rules of the stopped instance's link %s are left in %s:\n%s", link, chain[3], b)
		}
	}
}

// TestNetworkPublished: with an advertise address that is not loopback, an
// instance's port is published on a port of the node: the endpoint is that
// address and port (checked at the instance's own address), reached from the
// node itself and from another machine (a network namespace of the test's
// own, routed to the node through a veth pair that is not an instance's),
// but not from another instance.
func TestNetworkPublished(t *testing.T) {
	if os.Geteuid() != 0 {
		isolated(t, t.TempDir()) // skips, or fails in CI
	}
	node := nodeAddr(t)
	d, err := process.New(process.Config{StateDir: t.TempDir(), Confine: process.ConfineAlways, AdvertiseHost: node.String(),
		Logger: slog.New(slog.NewTextHandler(testWriter{t}, nil))})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	h := serveHello(ctx, t, d, "pub-b", "b")
	ep := h.Endpoint
	if ep.Host != node.String() || ep.Port == 0 || ep.CheckPort != process.ListenPort || !netip.MustParsePrefix("10.213.0.0/16").Contains(netip.MustParseAddr(ep.CheckHost)) {
		t.Fatalf("endpoint %+v: want %s and a published port, checked at the instance's address and %d", ep, node, process.ListenPort)
	}
	pub := net.JoinHostPort(ep.Host, strconv.Itoa(ep.Port))
	for _, addr := range []string{pub, net.JoinHostPort(ep.CheckHost, strconv.Itoa(ep.CheckPort))} {
		c, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			t.Fatalf("the node cannot reach the instance at %s: %v", addr, err)
		}
		if b, _ := io.ReadAll(c); string(b) != "b" {
			t.Fatalf("%s answered %q, want b", addr, b)
		}
		c.Close()
	}

	// Another machine: a namespace routed to the node.
	ns := fmt.Sprintf("strata-pubtest-%d", os.Getpid())
	ipc := func(args ...string) {
		t.Helper()
		if b, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			t.Fatalf("ip %v: %v: %s", args, err, b)
		}
	}
	ipc("netns", "add", ns)
	t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", ns).Run() })
	host, peer := fmt.Sprintf("sptest%d", os.Getpid()%100000), fmt.Sprintf("sppeer%d", os.Getpid()%100000)
	ipc("link", "add", host, "type", "veth", "peer", "name", peer)
	t.Cleanup(func() { _ = exec.Command("ip", "link", "del", host).Run() })
	ipc("link", "set", peer, "netns", ns)
	ipc("addr", "add", "172.31.254.1/30", "dev", host)
	ipc("link", "set", host, "up")
	ipc("-n", ns, "addr", "add", "172.31.254.2/30", "dev", peer)
	ipc("-n", ns, "link", "set", peer, "up")
	ipc("-n", ns, "route", "add", "default", "via", "172.31.254.1")
	self, _ := os.Executable()
	cmd := exec.Command("ip", "netns", "exec", ns, self, pub)
	cmd.Env = append(os.Environ(), helperEnv+"=dial")
	remote, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(remote), pub+` ok "b"`) {
		t.Fatalf("from another machine, %s: %s (%v); want the instance's answer", pub, remote, err)
	}

	a, errOut, res := run(t, d, &driver.Spec{ID: "pub-a", Dir: helperDir(t), MemoryMB: 128, Port: process.ListenPort,
		Command: "exec ./helper " + pub, Env: []string{helperEnv + "=dial"}})
	if res.ExitCode != 0 || !strings.Contains(a, pub+" fail") {
		t.Fatalf("from another instance, %s: %q (%+v, stderr %q); want a failure", pub, a, res, errOut)
	}
	if err := d.Destroy(ctx, "pub-b"); err != nil {
		t.Fatal(err)
	}
	b, err := exec.Command("iptables", "-t", "nat", "-S", "STRATA-INST-PUB").Output()
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(b), "--dport "+strconv.Itoa(ep.Port)+" ") {
		t.Errorf("the published port's rule outlived the instance:\n%s", b)
	}
}
