package stager

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/strata-paas/strata/api"
	"github.com/strata-paas/strata/api/bus"
)

// BlobClient fetches sources and stores droplets; api/client's *Client
// implements it over HTTP and a blob store can be adapted in-process.
type BlobClient interface {
	GetBlob(ctx context.Context, ref api.BlobRef) (io.ReadCloser, error)
	PutBlob(ctx context.Context, r io.Reader) (api.BlobRef, error)
}

// Worker consumes build jobs from the bus and reports their results.
type Worker struct {
	Bus    *bus.Conn
	Blobs  BlobClient
	Stager *Stager
	ID     string       // builder id reported in results
	Logger *slog.Logger // nil = discard
}

// Work-queue settings of builders.
const (
	workDurable    = "builders"
	workAckWait    = 30 * time.Second
	workMaxDeliver = 3
)

// maxLogLine is the longest log line published; longer output is split.
const maxLogLine = 8 << 10

// Run consumes build jobs until ctx ends. A job whose platform side fails
// (blob store down, disk full) is left for redelivery, and reported as an
// internal failure on its last attempt.
func (w *Worker) Run(ctx context.Context) error {
	if w.Logger == nil {
		w.Logger = slog.New(slog.DiscardHandler)
	}
	if err := w.Bus.EnsureWorkQueue(ctx, api.BuildJobsStream, api.SubjectBuildJobs); err != nil {
		return err
	}
	// Every builder purges its copy of an app's cache when asked.
	purge, err := bus.SubscribeJSON(w.Bus, api.SubjectBuildCachePurge, "", func(_ string, p *api.BuildCachePurge) {
		if err := w.Stager.PurgeCache(p.AppID); err != nil {
			w.Logger.Warn("builder.purge_failed", "app_id", p.AppID, "err", err)
			return
		}
		w.Logger.Info("builder.cache_purged", "app_id", p.AppID)
	})
	if err != nil {
		return err
	}
	defer func() { _ = purge.Unsubscribe() }()
	w.Logger.Info("builder.consuming", "id", w.ID)
	return w.Bus.ConsumeWork(ctx, bus.WorkConfig{
		Stream:     api.BuildJobsStream,
		Durable:    workDurable,
		AckWait:    workAckWait,
		MaxDeliver: workMaxDeliver,
	}, w.handle)
}

func (w *Worker) handle(ctx context.Context, data []byte, attempt int) error {
	var job api.BuildJob
	if err := json.Unmarshal(data, &job); err != nil {
		w.Logger.Warn("builder.bad_job", "err", err)
		return nil // acknowledge: redelivering garbage helps nobody
	}
	log := w.Logger.With("build", job.BuildID, "app", job.AppName, "attempt", attempt)
	log.Info("builder.job")

	start := api.BuildResult{Version: api.MessageVersion, BuildID: job.BuildID, State: api.BuildStaging, BuilderID: w.ID}
	sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	if _, err := bus.Request[api.BuildResult, struct{}](sctx, w.Bus, api.SubjectBuildResult, &start); err != nil {
		log.Warn("builder.report_staging_failed", "err", err)
	}
	cancel()

	lw := &logWriter{bus: w.Bus, env: api.LogEnvelope{AppID: job.AppID, App: job.AppName, Source: api.LogSourceStaging, BuildID: job.BuildID}, log: log}
	res, err := w.build(ctx, job, lw)
	lw.Close()
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if attempt < workMaxDeliver {
			log.Warn("builder.platform_error", "err", err)
			return err // redeliver
		}
		log.Error("builder.platform_error_final", "err", err)
		res = &api.BuildResult{State: api.BuildFailed, Failure: api.FailInternal, Reason: "the platform failed while staging — push again"}
	}
	res.Version, res.BuildID, res.BuilderID = api.MessageVersion, job.BuildID, w.ID
	fctx, fcancel := context.WithTimeout(ctx, 10*time.Second) // Flush needs a deadline
	if err := w.Bus.Flush(fctx); err != nil {
		log.Warn("builder.flush_failed", "err", err)
	}
	fcancel()
	return w.report(ctx, log, res)
}

// build fetches the source, stages it and uploads the droplet. Failures
// caused by the app come back as a failed result with a nil error.
func (w *Worker) build(ctx context.Context, job api.BuildJob, out io.Writer) (*api.BuildResult, error) {
	src, err := w.Blobs.GetBlob(ctx, job.SourceBlob)
	if err != nil {
		if c := api.ErrorCode(err); c == api.ENotFound || c == api.EInvalid {
			fmt.Fprintf(out, "source archive %s is missing — push again\n", job.SourceBlob)
			return &api.BuildResult{State: api.BuildFailed, Failure: api.FailBadSource, Reason: "source archive is missing — push again"}, nil
		}
		return nil, fmt.Errorf("fetch source: %w", err)
	}
	extra, err := w.Stager.Registered(ctx, job.Registered, w.Blobs.GetBlob)
	if err != nil {
		src.Close()
		if api.ErrorCode(err) == api.EInvalid || api.ErrorCode(err) == api.ENotFound {
			fmt.Fprintf(out, "%s\n", api.ErrorMessage(err))
			return &api.BuildResult{State: api.BuildFailed, Failure: api.FailNoBuildpack, Reason: api.ErrorMessage(err)}, nil
		}
		return nil, fmt.Errorf("fetch registered buildpacks: %w", err)
	}
	res, err := w.Stager.StageWith(ctx, job, src, out, extra)
	src.Close()
	if err != nil {
		return nil, err
	}
	if res.Failure != "" {
		return &api.BuildResult{State: api.BuildFailed, Failure: res.Failure, Reason: res.Reason}, nil
	}
	defer os.Remove(res.DropletPath)
	f, err := os.Open(res.DropletPath)
	if err != nil {
		return nil, fmt.Errorf("open droplet: %w", err)
	}
	defer f.Close()
	if res.Info.Buildpack == api.BuildpackDockerfile {
		fmt.Fprintf(out, "-----> Uploading image\n")
	} else {
		fmt.Fprintf(out, "-----> Uploading droplet\n")
	}
	ref, err := w.Blobs.PutBlob(ctx, f)
	if err != nil {
		return nil, fmt.Errorf("upload droplet: %w", err)
	}
	return &api.BuildResult{
		State:       api.BuildStaged,
		DropletBlob: ref,
		Buildpack:   res.Info.Buildpack,
		Processes:   res.Info.Processes,
	}, nil
}

// report sends res to the controller until it acknowledges or ctx ends.
func (w *Worker) report(ctx context.Context, log *slog.Logger, res *api.BuildResult) error {
	backoff := 100 * time.Millisecond
	for {
		_, err := bus.Request[api.BuildResult, struct{}](ctx, w.Bus, api.SubjectBuildResult, res)
		if err == nil {
			log.Info("builder.reported", "state", res.State, "failure", res.Failure)
			return nil
		}
		log.Warn("builder.report_failed", "err", err, "retry_in", backoff)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, 5*time.Second)
	}
}

// logWriter publishes each line written to it as a staging log envelope.
type logWriter struct {
	bus *bus.Conn
	env api.LogEnvelope
	log *slog.Logger

	mu      sync.Mutex
	partial []byte
}

func (l *logWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.partial = append(l.partial, p...)
	for {
		i := bytes.IndexByte(l.partial, '\n')
		if i < 0 {
			break
		}
		l.publish(l.partial[:i])
		l.partial = l.partial[i+1:]
	}
	for len(l.partial) >= maxLogLine {
		l.publish(l.partial[:maxLogLine])
		l.partial = l.partial[maxLogLine:]
	}
	return len(p), nil
}

// Close publishes a final unterminated line.
func (l *logWriter) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.partial) > 0 {
		l.publish(l.partial)
		l.partial = nil
	}
	return nil
}

func (l *logWriter) publish(line []byte) {
	env := l.env
	env.Line = string(bytes.TrimRight(line, "\r"))
	env.Time = time.Now().UTC()
	if err := l.bus.Publish(api.SubjectLogs(env.AppID), env); err != nil && !errors.Is(err, context.Canceled) {
		l.log.Debug("builder.log_publish_failed", "err", err)
	}
}
