package main

import (
	"context"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/strata-paas/strata/api/bus"
)

func TestNatsClusterFlags(t *testing.T) {
	secret := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(secret, []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var cfg bus.ServerConfig
	c := natsCluster{listen: "0.0.0.0:6222", routes: "nats-route://a:6222, nats-route://b:6222", secretFile: secret}
	if err := c.apply(&cfg); err != nil {
		t.Fatal(err)
	}
	if cfg.Cluster != "0.0.0.0:6222" || cfg.ClusterSecret != "s3cret" || !reflect.DeepEqual(cfg.Routes, []string{"nats-route://a:6222", "nats-route://b:6222"}) {
		t.Fatalf("got %+v", cfg)
	}
	for _, tc := range []struct {
		c    natsCluster
		want string
	}{
		{natsCluster{routes: "nats-route://a:6222"}, "need --nats-cluster"},
		{natsCluster{listen: ":6222"}, "needs --nats-cluster-secret-file"},
		{natsCluster{listen: ":6222", secretFile: filepath.Join(t.TempDir(), "missing")}, "read --nats-cluster-secret-file"},
	} {
		if err := tc.c.apply(&bus.ServerConfig{}); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: %v, want %q", tc.c, err, tc.want)
		}
	}
	if err := (natsCluster{}).apply(&cfg); err != nil {
		t.Fatalf("no cluster: %v", err)
	}
}

// Three controllers' embedded servers, wired by the flags, form one bus.
func TestConnectOrEmbedFormsACluster(t *testing.T) {
	secret := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(secret, []byte("s3cret"), 0o600); err != nil {
		t.Fatal(err)
	}
	addrs := make([]string, 3)
	for i := range addrs {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addrs[i] = ln.Addr().String()
		ln.Close()
	}
	routes := "nats-route://" + strings.Join(addrs, ",nats-route://")
	conns := make([]*bus.Conn, 3)
	errs := make([]error, 3)
	var wg sync.WaitGroup
	for i := range conns {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			c, closeBus, err := connectOrEmbed(context.Background(), "", "127.0.0.1:0", natsCluster{listen: addrs[i], routes: routes, secretFile: secret},
				t.TempDir(), "controller", &busCredentials{}, slog.New(slog.DiscardHandler))
			if err == nil {
				t.Cleanup(closeBus)
			}
			conns[i], errs[i] = c, err
		}(i)
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("controller %d: %v", i, err)
		}
	}
	got := make(chan struct{}, 100)
	if _, err := conns[0].Subscribe("strata.test", "", func(*bus.Msg) { got <- struct{}{} }); err != nil {
		t.Fatal(err)
	}
	deadline := time.After(10 * time.Second)
	for {
		if err := conns[2].Publish("strata.test", 1); err != nil {
			t.Fatal(err)
		}
		select {
		case <-got:
			return
		case <-time.After(100 * time.Millisecond):
		case <-deadline:
			t.Fatal("controller 0 never got what controller 2 published")
		}
	}
}
