package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/strata-paas/strata/api"
	"github.com/strata-paas/strata/api/bus"
	"github.com/strata-paas/strata/api/client"
)

// With --blobs nats two controllers share their blobs: a droplet a builder
// uploads through one is what an executor fetches through the other, over
// the REST blob API they use; neither keeps it on its disk.
func TestControllersShareNATSBlobs(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	log := slog.New(slog.DiscardHandler)
	srv, err := bus.StartServer(bus.ServerConfig{Port: -1, StoreDir: t.TempDir(), Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Shutdown)
	start := func() *controllerRole {
		t.Helper()
		conn, err := bus.Connect(ctx, "", bus.Options{Name: "controller", Server: srv, Logger: log})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(conn.Close)
		role, err := startController(ctx, controllerConfig{DataDir: t.TempDir(), APIAddr: "127.0.0.1:0", Domain: "localhost", Blobs: blobsNATS, Logger: log}, conn)
		if err != nil {
			t.Fatal(err)
		}
		rctx, rcancel := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() { defer close(done); _ = role.run(rctx, conn) }()
		t.Cleanup(func() { rcancel(); <-done })
		return role
	}
	a, b := start(), start()
	droplet := make([]byte, 2<<20)
	_, _ = rand.Read(droplet)
	ref, err := client.New(a.apiURL, a.componentTokens[api.ComponentBuilder]).PutBlob(ctx, bytes.NewReader(droplet))
	if err != nil {
		t.Fatalf("builder upload through controller a: %v", err)
	}
	rc, err := client.New(b.apiURL, b.componentTokens[api.ComponentExecutor]).GetBlob(ctx, ref)
	if err != nil {
		t.Fatalf("executor fetch through controller b: %v", err)
	}
	got, err := io.ReadAll(rc)
	rc.Close()
	if err != nil || !bytes.Equal(got, droplet) {
		t.Fatalf("executor fetch through controller b: %d bytes, %v; want the %d uploaded", len(got), err, len(droplet))
	}
	for _, r := range []*controllerRole{a, b} {
		if _, err := os.Stat(filepath.Join(r.cfg.DataDir, "blobs")); !os.IsNotExist(err) {
			t.Errorf("controller keeps a blobs dir with --blobs nats: %v", err)
		}
	}
}

func TestControllerRefusesUnknownBlobStore(t *testing.T) {
	var out, errOut bytes.Buffer
	err := runController(context.Background(), []string{"--blobs", "s3", "--data", t.TempDir()}, &out, &errOut)
	if err == nil || !strings.Contains(err.Error(), `bad --blobs "s3"`) {
		t.Fatalf("--blobs s3: got %v, want bad --blobs", err)
	}
}
