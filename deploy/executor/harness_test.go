package executor_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/strata-paas/strata/api"
	"github.com/strata-paas/strata/api/archive"
	"github.com/strata-paas/strata/api/bus"
	"github.com/strata-paas/strata/deploy/driver"
	"github.com/strata-paas/strata/deploy/executor"
)

// webappBin is the test app built once by TestMain.
var webappBin []byte

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "executor-test-")
	if err != nil {
		panic(err)
	}
	out := filepath.Join(dir, "webapp")
	cmd := exec.Command("go", "build", "-o", out, "./testdata/webapp")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "build test app: %v\n%s", err, b)
		os.Exit(1)
	}
	webappBin, err = os.ReadFile(out)
	if err != nil {
		panic(err)
	}
	os.RemoveAll(dir)
	os.Exit(m.Run())
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(string(bytes.TrimSpace(p)))
	return len(p), nil
}

func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// fakeBlobs is a BlobFetcher over a map that counts fetches.
type fakeBlobs struct {
	mu      sync.Mutex
	blobs   map[api.BlobRef][]byte
	fetches map[api.BlobRef]int
}

func (f *fakeBlobs) GetBlob(ctx context.Context, ref api.BlobRef) (io.ReadCloser, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.fetches[ref]++
	b, ok := f.blobs[ref]
	if !ok {
		return nil, api.Errorf(api.ENotFound, "no blob %s", ref)
	}
	return io.NopCloser(bytes.NewReader(b)), nil
}

func (f *fakeBlobs) add(data []byte) api.BlobRef {
	sum := sha256.Sum256(data)
	ref := api.BlobRef("sha256:" + hex.EncodeToString(sum[:]))
	f.mu.Lock()
	f.blobs[ref] = data
	f.mu.Unlock()
	return ref
}

func (f *fakeBlobs) count(ref api.BlobRef) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.fetches[ref]
}

// droplet builds a droplet: staging.json plus the given files under app/.
func droplet(t *testing.T, files map[string][]byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	w, err := archive.NewWriter(&buf, 0)
	if err != nil {
		t.Fatal(err)
	}
	staging, _ := json.Marshal(api.StagingInfo{Buildpack: "test", Processes: map[string]string{"web": "./webapp"}})
	if err := w.AddFile("staging.json", staging, false); err != nil {
		t.Fatal(err)
	}
	for name, data := range files {
		if err := w.AddFile("app/"+name, data, true); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// scriptDroplet adds to h's blob store a droplet whose app is an empty
// shell script run.sh, for instances whose driver does not run it (mocks).
func (h *harness) scriptDroplet() api.BlobRef {
	h.t.Helper()
	return h.blobs.add(droplet(h.t, map[string][]byte{"run.sh": []byte("#!/bin/sh\n")}))
}

// webappDroplet adds to h's blob store a droplet of the test app (webappBin).
func (h *harness) webappDroplet() api.BlobRef {
	h.t.Helper()
	return h.blobs.add(droplet(h.t, map[string][]byte{"webapp": webappBin}))
}

// message is one message seen on the bus, in the order the recorder got it.
type message struct {
	subject string
	data    []byte
}

// recorder subscribes to every subject with one subscription, so the order
// of its messages is the order the server delivered them.
type recorder struct {
	mu   sync.Mutex
	msgs []message
}

func (r *recorder) len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.msgs)
}

// waitFor returns the index and value of the first message on subject at or
// after index from that decodes into a T satisfying pred.
func waitFor[T any](t *testing.T, r *recorder, subject string, from int, what string, pred func(*T) bool) (int, *T) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		r.mu.Lock()
		msgs := r.msgs[min(from, len(r.msgs)):]
		r.mu.Unlock()
		for i, m := range msgs {
			if m.subject != subject {
				continue
			}
			v := new(T)
			if json.Unmarshal(m.data, v) == nil && pred(v) {
				return from + i, v
			}
		}
		from += len(msgs)
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s on %s", what, subject)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

type harness struct {
	t     *testing.T
	srv   *bus.Server
	conn  *bus.Conn
	rec   *recorder
	blobs *fakeBlobs
}

func newHarness(t *testing.T) *harness {
	t.Helper()
	srv, err := bus.StartServer(bus.ServerConfig{Port: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Shutdown)
	h := &harness{t: t, srv: srv, rec: &recorder{}, blobs: &fakeBlobs{blobs: map[api.BlobRef][]byte{}, fetches: map[api.BlobRef]int{}}}
	h.conn = h.connect("test")
	sub, err := h.conn.Subscribe(">", "", func(m *bus.Msg) {
		h.rec.mu.Lock()
		h.rec.msgs = append(h.rec.msgs, message{m.Subject, append([]byte(nil), m.Data...)})
		h.rec.mu.Unlock()
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Unsubscribe() })
	return h
}

func (h *harness) connect(name string) *bus.Conn {
	c, err := bus.Connect(context.Background(), "", bus.Options{Name: name, Server: h.srv, Logger: testLogger(h.t)})
	if err != nil {
		h.t.Fatal(err)
	}
	h.t.Cleanup(c.Close)
	return c
}

// run starts an executor; the returned func ends Run and waits for it.
func (h *harness) run(cfg executor.Config, drvs ...driver.Driver) (*executor.Executor, func()) {
	h.t.Helper()
	return runExecutor(h.t, cfg, h.connect("executor"), h.blobs, drvs, h.rec, nil)
}

// runExecutor starts an executor on conn, whose messages rec sees, and waits
// for its first heartbeat; before, if set, runs between New and Run. The
// returned func ends Run and waits for it; it also runs at cleanup.
func runExecutor(t *testing.T, cfg executor.Config, conn executor.Bus, blobs executor.BlobFetcher, drvs []driver.Driver, rec *recorder, before func(*executor.Executor)) (*executor.Executor, func()) {
	t.Helper()
	if cfg.Logger == nil {
		cfg.Logger = testLogger(t)
	}
	e, err := executor.New(cfg, conn, blobs, drvs...)
	if err != nil {
		t.Fatal(err)
	}
	if before != nil {
		before(e)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.Run(ctx) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("Run: %v", err)
			}
		})
	}
	t.Cleanup(stop)
	// Wait until the executor serves commands (its first heartbeat precedes that by little).
	waitFor(t, rec, api.SubjectNodeHeartbeat, 0, "first heartbeat", func(hb *api.NodeHeartbeat) bool { return hb.NodeID == e.NodeID() })
	return e, stop
}

func (h *harness) command(nodeID string, cmd api.NodeCommand) error {
	cmd.Version = api.MessageVersion
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var err error
	for range 50 { // the command subscription may trail the first heartbeat a little
		_, err = bus.Request[api.NodeCommand, api.NodeCommandReply](ctx, h.conn, api.SubjectNodeCommand(nodeID), &cmd)
		if api.ErrorCode(err) != api.EUnavailable {
			return err
		}
		time.Sleep(20 * time.Millisecond)
	}
	return err
}

func (h *harness) start(nodeID string, spec api.InstanceSpec) {
	h.t.Helper()
	if err := h.command(nodeID, api.NodeCommand{Kind: api.CmdStart, Start: &spec}); err != nil {
		h.t.Fatalf("start %s: %v", spec.InstanceID, err)
	}
}

func (h *harness) stop(nodeID, id string, grace time.Duration) {
	h.t.Helper()
	if err := h.command(nodeID, api.NodeCommand{Kind: api.CmdStop, InstanceID: id, Grace: grace}); err != nil {
		h.t.Fatalf("stop %s: %v", id, err)
	}
}

func eventIs(id string, st api.InstanceState) func(*api.InstanceEvent) bool {
	return func(ev *api.InstanceEvent) bool { return ev.Instance.InstanceID == id && ev.Instance.State == st }
}

// decodeAt decodes message i of r if it is on subject.
func decodeAt[T any](r *recorder, i int, subject string) (*T, bool) {
	r.mu.Lock()
	m := r.msgs[i]
	r.mu.Unlock()
	if m.subject != subject {
		return nil, false
	}
	v := new(T)
	if json.Unmarshal(m.data, v) != nil {
		return nil, false
	}
	return v, true
}
