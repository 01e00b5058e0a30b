package executor_test

import (
	"context"
	"net"
	"slices"
	"testing"
	"time"

	"github.com/strata-paas/strata/api"
	"github.com/strata-paas/strata/deploy/driver"
	"github.com/strata-paas/strata/deploy/driver/mock"
	"github.com/strata-paas/strata/deploy/executor"
)

// TestSeveralDrivers: an executor with two drivers offers both isolations in
// its heartbeats, hands each instance to the driver of its spec's isolation
// (the process driver when it names none), reports that isolation per
// instance, and refuses an isolation it does not offer.
func TestSeveralDrivers(t *testing.T) {
	h := newHarness(t)
	proc := mock.New(mock.Config{})
	ctr := mock.New(mock.Config{Name: "mock-container", Isolations: []api.Isolation{api.IsolationContainer}})
	e, _ := h.run(executor.Config{NodeID: "node-iso", DataDir: t.TempDir()}, ctr, proc)
	ref := h.scriptDroplet()
	spec := func(id string, iso api.Isolation) api.InstanceSpec {
		return api.InstanceSpec{InstanceID: id, AppID: "app-i", AppName: "iso", Process: "worker",
			DropletBlob: ref, Command: "run", Isolation: iso, HealthCheck: api.HealthCheck{Type: api.HealthProcess}}
	}
	h.start(e.NodeID(), spec("in-ctr", api.IsolationContainer))
	h.start(e.NodeID(), spec("in-default", ""))
	mark := h.rec.len()
	err := h.command(e.NodeID(), api.NodeCommand{Kind: api.CmdStart, Start: &[]api.InstanceSpec{spec("in-vm", api.IsolationMicroVM)}[0]})
	if api.ErrorCode(err) != api.EInvalid {
		t.Fatalf("start with isolation microvm: %v, want invalid (not offered here)", err)
	}
	_, hb := waitFor(t, h.rec, api.SubjectNodeHeartbeat, mark, "a heartbeat with both instances running", func(hb *api.NodeHeartbeat) bool {
		n := 0
		for _, r := range hb.Instances {
			if r.State == api.InstanceRunning {
				n++
			}
		}
		return n == 2
	})
	if want := []api.Isolation{api.IsolationContainer, api.IsolationProcessUnconfined}; !slices.Equal(hb.Isolations, want) {
		t.Errorf("heartbeat isolations = %v, want %v", hb.Isolations, want)
	}
	for _, r := range hb.Instances {
		want := map[string]api.Isolation{"in-ctr": api.IsolationContainer, "in-default": api.IsolationProcessUnconfined}[r.InstanceID]
		if r.Isolation != want {
			t.Errorf("instance %s reports isolation %q, want %q", r.InstanceID, r.Isolation, want)
		}
	}
	ids := func(d *mock.Driver) []string {
		var out []string
		for _, s := range d.Starts() {
			out = append(out, s.ID)
		}
		return out
	}
	if got := ids(ctr); !slices.Equal(got, []string{"in-ctr"}) {
		t.Errorf("container driver started %v, want [in-ctr]", got)
	}
	if got := ids(proc); !slices.Equal(got, []string{"in-default"}) {
		t.Errorf("process driver started %v, want [in-default]", got)
	}
	for _, id := range []string{"in-ctr", "in-default"} {
		m := h.rec.len()
		h.stop(e.NodeID(), id, time.Second)
		waitFor(t, h.rec, api.SubjectInstanceEvent, m, id+" stopped", eventIs(id, api.InstanceStopped))
	}
}

// TestDuplicateIsolationRefused: two drivers offering one isolation are a
// configuration error.
func TestDuplicateIsolationRefused(t *testing.T) {
	h := newHarness(t)
	a := mock.New(mock.Config{Name: "a"})
	b := mock.New(mock.Config{Name: "b"})
	if _, err := executor.New(executor.Config{DataDir: t.TempDir()}, h.conn, h.blobs, a, b); api.ErrorCode(err) != api.EInvalid {
		t.Fatalf("New with two process-unconfined drivers: %v, want invalid", err)
	}
	var none []driver.Driver
	if _, err := executor.New(executor.Config{DataDir: t.TempDir()}, h.conn, h.blobs, none...); err == nil {
		t.Fatalf("New without drivers succeeded")
	}
}

// netDriver is a mock whose instances have a network of their own: they
// listen on port 1 as they see it, and the node reaches them at endpoint.
type netDriver struct {
	*mock.Driver
	endpoint driver.Endpoint
}

func (d *netDriver) AllocatePort(string) (int, error) { return 1, nil }

func (d *netDriver) Start(ctx context.Context, s *driver.Spec) (*driver.Handle, error) {
	h, err := d.Driver.Start(ctx, s)
	if err == nil {
		h.Endpoint = d.endpoint
	}
	return h, err
}

// TestDriverOwnsNetwork: the driver chooses the instance's $PORT and says
// where it listens; the executor health-checks that endpoint and registers
// it with routers instead of assuming a loopback port of the node.
func TestDriverOwnsNetwork(t *testing.T) {
	h := newHarness(t)
	l, err := net.Listen("tcp", "127.0.0.1:0") // the "published" port
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	pub := l.Addr().(*net.TCPAddr).Port
	drv := &netDriver{Driver: mock.New(mock.Config{Name: "net", Isolations: []api.Isolation{api.IsolationContainer}}),
		endpoint: driver.Endpoint{Host: "127.0.0.1", Port: pub}}
	e, _ := h.run(executor.Config{NodeID: "node-net", DataDir: t.TempDir(), AdvertiseHost: "192.0.2.1"}, drv)
	ref := h.scriptDroplet()
	spec := api.InstanceSpec{InstanceID: "web-net", AppID: "app-n", AppName: "net", Process: api.ProcessWeb,
		DropletBlob: ref, Command: "run", Routes: []string{"net.example"}, HealthCheck: api.HealthCheck{Type: api.HealthPort}}
	mark := h.rec.len()
	h.start(e.NodeID(), spec)
	_, reg := waitFor(t, h.rec, api.SubjectRouterRegister, mark, "registration", func(r *api.RouterRegistration) bool { return r.PrivateInstanceID == "web-net" })
	if reg.Host != "127.0.0.1" || reg.Port != pub {
		t.Errorf("registered %s:%d, want the driver's endpoint 127.0.0.1:%d (not the advertise host)", reg.Host, reg.Port, pub)
	}
	_, hb := waitFor(t, h.rec, api.SubjectNodeHeartbeat, mark, "heartbeat with the instance running", func(hb *api.NodeHeartbeat) bool {
		return len(hb.Instances) == 1 && hb.Instances[0].State == api.InstanceRunning
	})
	if hb.Instances[0].Port != pub {
		t.Errorf("heartbeat port %d, want the endpoint's %d", hb.Instances[0].Port, pub)
	}
	starts := drv.Starts()
	if len(starts) != 1 || starts[0].Port != 1 || !slices.Contains(starts[0].Env, "PORT=1") {
		t.Fatalf("spec port %d env %v, want $PORT 1 from the driver", starts[0].Port, starts[0].Env)
	}
	m := h.rec.len()
	h.stop(e.NodeID(), "web-net", time.Second)
	waitFor(t, h.rec, api.SubjectInstanceEvent, m, "stopped", eventIs("web-net", api.InstanceStopped))
}
