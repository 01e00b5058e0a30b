package stager_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/strata-paas/strata/api"
	"github.com/strata-paas/strata/api/bus"
	"github.com/strata-paas/strata/builder/droplet"
	"github.com/strata-paas/strata/stager"
)

// memBlobs is an in-memory BlobClient.
type memBlobs struct {
	mu    sync.Mutex
	blobs map[api.BlobRef][]byte
}

var _ stager.BlobClient = (*memBlobs)(nil)

func (m *memBlobs) GetBlob(_ context.Context, ref api.BlobRef) (io.ReadCloser, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	b, ok := m.blobs[ref]
	if !ok {
		return nil, api.Errorf(api.ENotFound, "no blob %s", ref)
	}
	return io.NopCloser(bytes.NewReader(b)), nil
}

func (m *memBlobs) PutBlob(_ context.Context, r io.Reader) (api.BlobRef, error) {
	b, err := io.ReadAll(r)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(b)
	ref := api.BlobRef("sha256:" + hex.EncodeToString(sum[:]))
	m.mu.Lock()
	m.blobs[ref] = b
	m.mu.Unlock()
	return ref, nil
}

func (m *memBlobs) get(ref api.BlobRef) []byte {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.blobs[ref]
}

// fakeController records build results and log lines from the bus.
type fakeController struct {
	mu      sync.Mutex
	results []api.BuildResult
	logs    []api.LogEnvelope
	// logsAtFinal is how many log lines had arrived when each terminal
	// result did.
	logsAtFinal []int
}

func (c *fakeController) snapshot() ([]api.BuildResult, []api.LogEnvelope, []int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]api.BuildResult(nil), c.results...), append([]api.LogEnvelope(nil), c.logs...), append([]int(nil), c.logsAtFinal...)
}

func TestWorker(t *testing.T) {
	log := slog.New(slog.NewTextHandler(testWriter{t}, nil))
	srv, err := bus.StartServer(bus.ServerConfig{Port: -1, StoreDir: t.TempDir(), Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Shutdown()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	connect := func(name string) *bus.Conn {
		c, err := bus.Connect(ctx, "", bus.Options{Name: name, Server: srv, Logger: log})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(c.Close)
		return c
	}
	ctl, builderConn := connect("controller"), connect("builder")

	fc := &fakeController{}
	if _, err := bus.SubscribeJSON(ctl, api.SubjectLogsAll, "", func(_ string, env *api.LogEnvelope) {
		fc.mu.Lock()
		fc.logs = append(fc.logs, *env)
		fc.mu.Unlock()
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := bus.Handle(ctl, api.SubjectBuildResult, "", func(_ context.Context, res *api.BuildResult) (*struct{}, error) {
		fc.mu.Lock()
		fc.results = append(fc.results, *res)
		if res.State.Terminal() {
			fc.logsAtFinal = append(fc.logsAtFinal, len(fc.logs))
		}
		fc.mu.Unlock()
		return &struct{}{}, nil
	}); err != nil {
		t.Fatal(err)
	}
	fctx, fcancel := context.WithTimeout(ctx, 10*time.Second)
	defer fcancel()
	if err := ctl.Flush(fctx); err != nil {
		t.Fatal(err)
	}

	blobs := &memBlobs{blobs: map[api.BlobRef][]byte{}}
	good, err := blobs.PutBlob(ctx, bytes.NewReader(sourceOf(t, map[string]string{"Procfile": "web: ./run.sh\n", "run.sh": "#!/bin/sh\n"})))
	if err != nil {
		t.Fatal(err)
	}
	bad, err := blobs.PutBlob(ctx, bytes.NewReader(sourceOf(t, map[string]string{"README": "nothing"})))
	if err != nil {
		t.Fatal(err)
	}

	w := &stager.Worker{Bus: builderConn, Blobs: blobs, Stager: newStager(t, t.TempDir(), nil), ID: "builder-1", Logger: log}
	runDone := make(chan error, 1)
	go func() { runDone <- w.Run(ctx) }()

	// Enqueue once the worker has created the stream.
	jobs := []api.BuildJob{
		{Version: api.MessageVersion, BuildID: "b1", AppID: "a1", AppName: "good", SourceBlob: good},
		{Version: api.MessageVersion, BuildID: "b2", AppID: "a2", AppName: "bad", SourceBlob: bad},
	}
	deadline := time.Now().Add(20 * time.Second)
	for _, j := range jobs {
		for {
			err := ctl.Enqueue(ctx, api.SubjectBuildJobs, j)
			if err == nil {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("enqueue: %v", err)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}

	var results []api.BuildResult
	var logs []api.LogEnvelope
	var logsAtFinal []int
	for {
		results, logs, logsAtFinal = fc.snapshot()
		if len(logsAtFinal) == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("results so far: %+v", results)
		}
		time.Sleep(20 * time.Millisecond)
	}
	final := map[string]api.BuildResult{}
	staging := map[string]bool{}
	for _, r := range results {
		if r.State == api.BuildStaging {
			if _, done := final[r.BuildID]; done {
				t.Errorf("build %s: staging reported after its final result", r.BuildID)
			}
			staging[r.BuildID] = true
		} else {
			final[r.BuildID] = r
		}
		if r.BuilderID != "builder-1" || r.Version != api.MessageVersion {
			t.Errorf("result %+v lacks builder id or version", r)
		}
	}
	if !staging["b1"] || !staging["b2"] {
		t.Errorf("staging not reported for every build: %v", staging)
	}

	r1 := final["b1"]
	if r1.State != api.BuildStaged || r1.Buildpack != "procfile" || r1.Processes["web"] != "./run.sh" || !r1.DropletBlob.Valid() {
		t.Fatalf("b1 result %+v", r1)
	}
	info, err := droplet.ReadInfo(bytes.NewReader(blobs.get(r1.DropletBlob)))
	if err != nil {
		t.Fatalf("uploaded droplet: %v", err)
	}
	if info.Processes["web"] != "./run.sh" {
		t.Fatalf("uploaded droplet info %+v", info)
	}

	r2 := final["b2"]
	if r2.State != api.BuildFailed || r2.Failure != api.FailNoBuildpack || r2.Reason == "" {
		t.Fatalf("b2 result %+v", r2)
	}

	// Every build's log lines arrived before its final result, tagged.
	perBuild := map[string]int{}
	for _, env := range logs {
		if env.Source != api.LogSourceStaging || env.Time.IsZero() {
			t.Errorf("bad envelope %+v", env)
		}
		perBuild[env.BuildID]++
		if (env.BuildID == "b1") != (env.App == "good") {
			t.Errorf("envelope of build %s on app %s", env.BuildID, env.App)
		}
	}
	if perBuild["b1"] == 0 || perBuild["b2"] == 0 {
		t.Fatalf("log lines per build %v", perBuild)
	}
	if logsAtFinal[1] != len(logs) {
		t.Errorf("%d log lines arrived after the last final result", len(logs)-logsAtFinal[1])
	}
	if logsAtFinal[0] < min(perBuild["b1"], perBuild["b2"]) {
		t.Errorf("the first final result arrived before its build's log lines (%d lines then)", logsAtFinal[0])
	}

	cancel()
	select {
	case <-runDone:
	case <-time.After(15 * time.Second):
		t.Fatal("worker did not stop when its context ended")
	}
}
