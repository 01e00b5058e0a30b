package bus_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/strata-paas/strata/api"
	"github.com/strata-paas/strata/api/blobstore/blobstoretest"
	"github.com/strata-paas/strata/api/bus"
)

var bucketSeq atomic.Int64

// openObjects opens a fresh bucket on conn.
func openObjects(t *testing.T, conn *bus.Conn, cfg bus.ObjectsConfig) *bus.Objects {
	t.Helper()
	if cfg.Bucket == "" {
		cfg.Bucket = fmt.Sprintf("TEST_%d", bucketSeq.Add(1))
	}
	if cfg.SpoolDir == "" {
		cfg.SpoolDir = t.TempDir()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	o, err := bus.OpenObjects(ctx, conn, cfg)
	if err != nil {
		t.Fatalf("OpenObjects: %v", err)
	}
	return o
}

func TestObjectsConformance(t *testing.T) {
	_, conn := startBus(t, -1)
	blobstoretest.Run(t, func(t *testing.T) api.BlobStore { return openObjects(t, conn, bus.ObjectsConfig{}) })
}

// streamInfo is what the server at url knows of the bucket's stream.
func streamInfo(t *testing.T, url, bucket string, opts ...nats.Option) *jetstream.StreamInfo {
	t.Helper()
	nc, err := nats.Connect(url, opts...)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := js.Stream(ctx, "OBJ_"+bucket)
	if err != nil {
		t.Fatal(err)
	}
	return s.CachedInfo()
}

func TestObjectsPutOfPresentBlobSendsNothing(t *testing.T) {
	srv, conn := startBus(t, 0)
	spool := t.TempDir()
	o := openObjects(t, conn, bus.ObjectsConfig{Bucket: "PRESENT", SpoolDir: spool})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	content := blobstoretest.Content(7, 1<<20)
	ref, err := o.Put(ctx, bytes.NewReader(content))
	if err != nil {
		t.Fatal(err)
	}
	info := streamInfo(t, srv.ClientURL(), "PRESENT")
	if info.Config.Replicas != 1 {
		t.Fatalf("bucket on one server: %d replicas, want 1", info.Config.Replicas)
	}
	before := info.State.Msgs
	if before < 2 {
		t.Fatalf("stream holds %d messages after a 1 MiB Put, want its chunks and meta", before)
	}
	// Again through another store on the same bucket (as another
	// controller would): the same ref, nothing sent.
	other := openObjects(t, conn, bus.ObjectsConfig{Bucket: "PRESENT"})
	for _, s := range []*bus.Objects{o, other} {
		again, err := s.Put(ctx, bytes.NewReader(content))
		if err != nil || again != ref {
			t.Fatalf("second Put: %s, %v; want %s", again, err, ref)
		}
	}
	if after := streamInfo(t, srv.ClientURL(), "PRESENT").State.Msgs; after != before {
		t.Fatalf("stream holds %d messages after Puts of a present blob, want %d", after, before)
	}
	if got := blobstoretest.Read(t, other, ref); !bytes.Equal(got, content) {
		t.Fatalf("read through the second store: %d bytes, want %d", len(got), len(content))
	}
	if left, _ := filepathGlob(spool); len(left) != 0 {
		t.Fatalf("spool files left: %v", left)
	}
}

func TestObjectsMaxSizeAndConfig(t *testing.T) {
	_, conn := startBus(t, -1)
	o := openObjects(t, conn, bus.ObjectsConfig{MaxSize: 10})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := o.Put(ctx, strings.NewReader("0123456789")); err != nil {
		t.Fatalf("Put of 10 bytes: %v", err)
	}
	big := []byte("0123456789a")
	if _, err := o.Put(ctx, bytes.NewReader(big)); api.ErrorCode(err) != api.EInvalid {
		t.Fatalf("Put of 11 bytes: got %v, want invalid", err)
	}
	if _, err := o.Get(ctx, blobstoretest.RefOf(big)); api.ErrorCode(err) != api.ENotFound {
		t.Fatalf("oversized blob was stored: %v", err)
	}
	for _, cfg := range []bus.ObjectsConfig{{}, {SpoolDir: t.TempDir(), Bucket: "a.b"}, {SpoolDir: t.TempDir(), Bucket: "x>"}} {
		if _, err := bus.OpenObjects(ctx, conn, cfg); api.ErrorCode(err) != api.EInvalid {
			t.Fatalf("OpenObjects(%+v): got %v, want invalid", cfg, err)
		}
	}
}

func TestObjectsRemovesStaleSpoolFiles(t *testing.T) {
	_, conn := startBus(t, -1)
	spool := t.TempDir()
	old, young := filepath.Join(spool, "put-crashed"), filepath.Join(spool, "put-running")
	for _, f := range []string{old, young} {
		if err := os.WriteFile(f, []byte("partial"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	// A Put that a crash interrupted two hours ago, and one under way now
	// in another process sharing the directory.
	past := time.Now().Add(-2 * time.Hour)
	if err := os.Chtimes(old, past, past); err != nil {
		t.Fatal(err)
	}
	openObjects(t, conn, bus.ObjectsConfig{SpoolDir: spool})
	if _, err := os.Stat(old); !os.IsNotExist(err) {
		t.Fatalf("stale spool file: %v, want removed", err)
	}
	if _, err := os.Stat(young); err != nil {
		t.Fatalf("young spool file: %v, want kept", err)
	}
}

func TestObjectsRefusedToComponentsWithoutTheGrant(t *testing.T) {
	srv, ctrl := authBus(t)
	o := openObjects(t, ctrl, bus.ObjectsConfig{Bucket: bus.BlobsBucket})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ref, err := o.Put(ctx, strings.NewReader("a droplet"))
	if err != nil {
		t.Fatalf("the controller's Put: %v", err)
	}
	for _, opts := range []bus.Options{
		{Name: "executor", User: bus.ExecutorUser("node-1"), Password: "exec-secret"},
		{Name: "router", User: bus.RouterUser("r1"), Password: "router-secret"},
	} {
		t.Run(opts.Name, func(t *testing.T) {
			var log lockedBuffer
			opts.Logger = slog.New(slog.NewTextHandler(&log, nil))
			c := dial(t, srv, "", opts)
			// The JetStream API is refused: the bucket cannot be opened.
			octx, ocancel := context.WithTimeout(context.Background(), 3*time.Second)
			defer ocancel()
			if _, err := bus.OpenObjects(octx, c, bus.ObjectsConfig{Bucket: bus.BlobsBucket, SpoolDir: t.TempDir()}); err == nil {
				t.Fatalf("%s opened the blob store", opts.User)
			}
			// Nor can it read the chunks directly.
			seen := received(t, c, "$O."+bus.BlobsBucket+".>")
			for end := time.Now().Add(10 * time.Second); !strings.Contains(log.String(), "Permissions Violation for Subscription") && time.Now().Before(end); {
				time.Sleep(10 * time.Millisecond)
			}
			for _, want := range []string{`Permissions Violation for Publish to \"$JS.API.`, "Permissions Violation for Subscription"} {
				if !strings.Contains(log.String(), want) {
					t.Fatalf("%s: the server did not refuse with %q; the client logged:\n%s", opts.User, want, log.String())
				}
			}
			if _, err := o.Put(ctx, strings.NewReader("another droplet")); err != nil {
				t.Fatal(err)
			}
			select {
			case s := <-seen:
				t.Fatalf("%s read %s", opts.User, s)
			default:
			}
		})
	}
	// The controller still reads it.
	if got := blobstoretest.Read(t, o, ref); string(got) != "a droplet" {
		t.Fatalf("controller read %q", got)
	}
}

func TestClusterObjectsSurviveLosingAServer(t *testing.T) {
	nodes := startCluster(t)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	o := openObjects(t, controllerOn(t, nodes[0]), bus.ObjectsConfig{Bucket: bus.BlobsBucket, Logger: slog.New(slog.NewTextHandler(t.Output(), nil))})
	// What one controller stored, a controller on another server reads at
	// once (a builder fetches the source the moment its job arrives).
	others := []*bus.Objects{
		openObjects(t, controllerOn(t, nodes[1]), bus.ObjectsConfig{Bucket: bus.BlobsBucket}),
		openObjects(t, controllerOn(t, nodes[2]), bus.ObjectsConfig{Bucket: bus.BlobsBucket}),
	}
	for i := range 30 {
		small := []byte(fmt.Sprint("source ", i))
		ref, err := o.Put(ctx, bytes.NewReader(small))
		if err != nil {
			t.Fatal(err)
		}
		if got := blobstoretest.Read(t, others[i%2], ref); !bytes.Equal(got, small) {
			t.Fatalf("read on another server: %q, want %q", got, small)
		}
	}
	content := blobstoretest.Content(9, 3<<20)
	ref, err := o.Put(ctx, bytes.NewReader(content))
	if err != nil {
		t.Fatal(err)
	}
	// Shut down the server that leads the bucket's stream: with one
	// replica the blob would go with it.
	leader := streamLeader(ctx, t, nodes, "OBJ_"+bus.BlobsBucket)
	nodes[leader].srv.Shutdown()
	other := nodes[(leader+1)%3]
	// A controller on a survivor opens the same bucket (it waits for the
	// new stream leader) and reads the blob put before.
	survivor := openObjects(t, controllerOn(t, other), bus.ObjectsConfig{Bucket: bus.BlobsBucket, Logger: slog.New(slog.NewTextHandler(t.Output(), nil))})
	got := blobstoretest.Read(t, survivor, ref)
	if !bytes.Equal(got, content) {
		t.Fatalf("after server %d (stream leader) died the survivor read %d bytes, want the %d put before", leader, len(got), len(content))
	}
	// Two of three still take new blobs.
	more := blobstoretest.Content(10, 1<<20)
	if _, err := survivor.Put(ctx, bytes.NewReader(more)); err != nil {
		t.Fatalf("Put on two servers of three: %v", err)
	}
	if got := blobstoretest.Read(t, survivor, blobstoretest.RefOf(more)); !bytes.Equal(got, more) {
		t.Fatalf("read back %d bytes, want %d", len(got), len(more))
	}
}

func filepathGlob(dir string) ([]string, error) { return filepath.Glob(filepath.Join(dir, "*")) }

// streamLeader is the index of the server of nodes that leads stream.
func streamLeader(ctx context.Context, t *testing.T, nodes []clusterNode, stream string) int {
	t.Helper()
	for ctx.Err() == nil {
		for i, n := range nodes {
			if n.srv.IsStreamLeader(stream) {
				return i
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("stream %s has no leader", stream)
	return -1
}
