package bus_test

import (
	"context"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/strata-paas/strata/api"
	"github.com/strata-paas/strata/api/bus"
)

// clusterNode is one server of a test cluster and its controller secret.
type clusterNode struct {
	srv    *bus.Server
	secret string
}

var clusterCreds = map[string]string{api.ComponentExecutor: "exec-secret", api.ComponentRouter: "router-secret"}

// startCluster starts three embedded servers routed to each other on
// loopback, each requiring the component credentials, and waits until
// JetStream has a meta leader (StartServer does).
func startCluster(t *testing.T) []clusterNode {
	t.Helper()
	addrs := make([]string, 3)
	for i := range addrs {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addrs[i] = ln.Addr().String()
		ln.Close()
	}
	var routes []string
	for _, a := range addrs {
		routes = append(routes, "nats-route://"+a)
	}
	nodes := make([]clusterNode, 3)
	errs := make([]error, 3)
	var wg sync.WaitGroup
	for i := range nodes {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			secret := fmt.Sprintf("ctrl-secret-%d", i)
			srv, err := bus.StartServer(bus.ServerConfig{Port: 0, StoreDir: t.TempDir(), ServerName: fmt.Sprintf("s%d", i),
				Cluster: addrs[i], Routes: routes, ClusterSecret: "cluster-secret", ClusterWait: 30 * time.Second,
				Auth: bus.ComponentAuth(secret, func(c string) string { return clusterCreds[c] })})
			nodes[i], errs[i] = clusterNode{srv: srv, secret: secret}, err
		}(i)
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("server %d: %v", i, err)
		}
		t.Cleanup(nodes[i].srv.Shutdown)
	}
	for _, n := range nodes {
		if n.srv.Replicas() != 3 {
			t.Fatalf("server %s: replicas %d, want 3 in a cluster of three", n.srv.Name(), n.srv.Replicas())
		}
	}
	return nodes
}

// controllerOn connects in-process to n as its controller.
func controllerOn(t *testing.T, n clusterNode) *bus.Conn {
	return dial(t, n.srv, "", bus.Options{Name: "controller", Server: n.srv, User: bus.ControllerUser, Password: n.secret})
}

func TestClusterRoutesMessagesBetweenServers(t *testing.T) {
	nodes := startCluster(t)
	// An executor on server 0 gets the command the controller of server 2 sends.
	exec := dial(t, nodes[0].srv, nodes[0].srv.ClientURL(), bus.Options{Name: "executor", User: bus.ExecutorUser("n1"), Password: "exec-secret"})
	got := make(chan string, 10)
	if _, err := exec.Subscribe(api.SubjectNodeCommand("n1"), "", func(m *bus.Msg) { got <- string(m.Data) }); err != nil {
		t.Fatal(err)
	}
	fctx, fcancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer fcancel()
	if err := exec.Flush(fctx); err != nil {
		t.Fatal(err)
	}
	ctrl := controllerOn(t, nodes[2])
	// Interest travels over the route asynchronously: publish until it arrives.
	deadline := time.After(10 * time.Second)
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		if err := ctrl.Publish(api.SubjectNodeCommand("n1"), "hello"); err != nil {
			t.Fatal(err)
		}
		select {
		case d := <-got:
			if d != `"hello"` {
				t.Fatalf("got %s, want \"hello\"", d)
			}
			return
		case <-tick.C:
		case <-deadline:
			t.Fatal("the executor on server 0 got nothing the controller on server 2 published")
		}
	}
}

func TestClusterRouteNeedsTheClusterSecret(t *testing.T) {
	nodes := startCluster(t)
	join := func(name, secret string) (*bus.Server, error) {
		return bus.StartServer(bus.ServerConfig{Port: 0, StoreDir: t.TempDir(), ServerName: name,
			Cluster: "127.0.0.1:0", Routes: []string{"nats-route://" + nodes[0].srv.ClusterAddr()},
			ClusterSecret: secret, ClusterWait: 3 * time.Second})
	}
	// With the secret a fourth server joins and sees the meta leader...
	s4, err := join("s4", "cluster-secret")
	if err != nil {
		t.Fatalf("server with the cluster secret: %v", err)
	}
	s4.Shutdown()
	// ...with another it cannot join: it never sees one.
	_, err = join("intruder", "wrong")
	if err == nil || !strings.Contains(err.Error(), "no JetStream meta leader") {
		t.Fatalf("server with the wrong cluster secret: %v, want no meta leader", err)
	}
}

func TestClusterWorkQueueSurvivesLosingItsLeader(t *testing.T) {
	nodes := startCluster(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	ctrl := controllerOn(t, nodes[0])
	if err := ctrl.EnsureWorkQueue(ctx, api.BuildJobsStream, api.SubjectBuildJobs); err != nil {
		t.Fatal(err)
	}
	if err := ctrl.Enqueue(ctx, api.SubjectBuildJobs, api.BuildJob{BuildID: "b1"}); err != nil {
		t.Fatal(err)
	}
	// Shut down the server that leads the stream: with one replica the job
	// would go with it.
	leader := streamLeader(ctx, t, nodes, api.BuildJobsStream)
	nodes[leader].srv.Shutdown()
	other := nodes[(leader+1)%3]
	worker := controllerOn(t, other)
	got := make(chan string, 1)
	// No deadline on the worker's context: JetStream requests then time
	// out on their own (5 s) and are retried, as a builder's are, instead
	// of waiting out the whole test for an answer lost in the election.
	wctx, wcancel := context.WithCancel(context.Background())
	defer wcancel()
	go func() {
		// The consumer can be made once the survivors have elected a new
		// stream leader; retry until then.
		for wctx.Err() == nil {
			_ = worker.ConsumeWork(wctx, bus.WorkConfig{Stream: api.BuildJobsStream, Durable: "builders"}, func(_ context.Context, data []byte, _ int) error {
				select {
				case got <- string(data):
				default:
				}
				return nil
			})
			time.Sleep(200 * time.Millisecond)
		}
	}()
	select {
	case d := <-got:
		if !strings.Contains(d, `"b1"`) {
			t.Fatalf("got job %s, want b1", d)
		}
	case <-ctx.Done():
		t.Fatalf("the job enqueued before server %d (stream leader) died never reached a worker on %s", leader, other.srv.Name())
	}
}

func TestClusterClientMovesToAnotherServer(t *testing.T) {
	nodes := startCluster(t)
	var urls []string
	for _, n := range nodes {
		urls = append(urls, n.srv.ClientURL())
	}
	exec := dial(t, nodes[0].srv, strings.Join(urls, ","), bus.Options{Name: "executor", User: bus.ExecutorUser("n1"), Password: "exec-secret"})
	on := -1
	for i, n := range nodes {
		if exec.ServerName() == n.srv.Name() {
			on = i
		}
	}
	if on < 0 {
		t.Fatalf("executor on server %q, not one of the cluster", exec.ServerName())
	}
	// The controller of another server listens for instance events.
	ctrlNode := nodes[(on+1)%3]
	ctrl := controllerOn(t, ctrlNode)
	got := make(chan struct{}, 100)
	if _, err := ctrl.Subscribe(api.SubjectInstanceEvent, "", func(*bus.Msg) { got <- struct{}{} }); err != nil {
		t.Fatal(err)
	}
	fctx, fcancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer fcancel()
	if err := ctrl.Flush(fctx); err != nil {
		t.Fatal(err)
	}
	nodes[on].srv.Shutdown()
	deadline := time.After(20 * time.Second)
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		_ = exec.Publish(api.SubjectInstanceEvent, api.InstanceEvent{})
		select {
		case <-got:
			if exec.ServerName() == nodes[on].srv.Name() || exec.ServerName() == "" {
				t.Fatalf("event arrived but the executor is on %q", exec.ServerName())
			}
			return
		case <-tick.C:
		case <-deadline:
			t.Fatalf("after server %d died the executor (on %q now) reached nobody", on, exec.ServerName())
		}
	}
}
