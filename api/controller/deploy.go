package controller

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"

	"github.com/strata-paas/strata/api"
	"github.com/strata-paas/strata/api/bus"
	"github.com/strata-paas/strata/deploy/scheduler"
)

// Deploys runs pushes: it stores the source, applies its manifest, queues
// the build, waits for the release and its instances, and rolls a failing
// release back (api.DeployService).
type Deploys struct {
	cfg         Config
	log         *slog.Logger
	store       deploysStore
	blobs       api.BlobStore
	conn        deployBus
	find        appFinder
	audit       *audit
	sig         *signals
	locks       *appLocks
	apps        *Apps
	builds      *Builds
	routes      *Routes
	placement   *Placement
	nodes       *Nodes
	unplaceable *unplaceable
	buildpacks  *Buildpacks

	queueMu    sync.Mutex
	queueReady bool
}

// deploysStore is what Deploys reads and writes.
type deploysStore interface {
	BuildStore
	AppByID(ctx context.Context, id string) (*api.App, error)
	UpdateApp(ctx context.Context, a *api.App) error
	ListReleases(ctx context.Context, appID string) ([]*api.Release, error)
	Release(ctx context.Context, appID string, version int) (*api.Release, error)
	Processes(ctx context.Context, appID string) ([]api.Process, error)
	Instances(ctx context.Context, appID string) ([]*api.Instance, error)
	Routes(ctx context.Context, appID string) ([]*api.Route, error)
	Events(ctx context.Context, appID string, limit int) ([]*api.Event, error)
}

// deployBus is what Deploys needs of the bus: the build queue and flushes.
type deployBus interface {
	flusher
	bus.Subscriber // build output on its way to the pusher
	EnsureWorkQueue(ctx context.Context, stream string, subjects ...string) error
	Enqueue(ctx context.Context, subject string, v any) error
}

var _ api.DeployService = (*Deploys)(nil)

// buildPoll is how often Deploy re-reads a build in case the in-process
// notification was missed (the result reached another controller).
const buildPoll = 500 * time.Millisecond

// Deploy stores the source, stages it on a builder (streaming its output to
// req.Progress), and returns once the build's release is recorded — and,
// with req.Wait, once the release's instances run. A failed build is an
// EBuildFailed error carrying the reason; instances that do not become
// healthy within DeployWaitTimeout are ETimeout. If ctx ends first the
// build carries on and ctx's error is returned.
func (s *Deploys) Deploy(ctx context.Context, req api.DeployRequest) (*api.DeployResult, error) {
	if err := validBuildpacks(req.Buildpacks); err != nil {
		return nil, err
	}
	if req.Image != "" || req.ImageFile {
		return s.deployImage(ctx, req)
	}
	if req.Source == nil {
		return nil, api.Errorf(api.EInvalid, "no source to deploy — send a gzip-compressed tar archive")
	}
	app, err := s.find.appByName(ctx, req.App, actDevelop)
	if err != nil && (api.ErrorCode(err) != api.ENotFound || !req.CreateApp) {
		return nil, err
	}
	progress := serialProgress(req.Progress)

	ref, src, err := s.putSource(ctx, req.Source, !req.IgnoreManifest)
	if err != nil {
		return nil, fmt.Errorf("store source: %w", err)
	}
	// The manifest is checked before anything changes, the app included.
	var plan *manifestPlan
	if src != nil {
		domains, err := s.routes.domains.names(ctx)
		if err != nil {
			return nil, err
		}
		if plan, err = planManifest(src, req.App, domains); err != nil {
			return nil, err
		}
	}
	created := false
	if app == nil {
		app, err = s.apps.CreateApp(ctx, req.App)
		created = err == nil
		if api.ErrorCode(err) == api.EConflict { // created concurrently
			app, err = s.find.appByName(ctx, req.App, actDevelop)
		}
		if err != nil {
			return nil, err
		}
		if routes, err := s.store.Routes(ctx, app.ID); err == nil && len(routes) == 0 && (plan == nil || len(plan.routes) == 0) {
			progress(api.DeployEvent{Type: api.DeployEventStatus, Line: fmt.Sprintf(
				"warning: %s.%s is taken by another app, so %s has no route — map one with strata routes map %s HOST, or list routes in strata.yml", app.Name, s.cfg.Domain, app.Name, app.Name)})
		}
	}
	if plan != nil {
		for _, w := range plan.warnings {
			progress(api.DeployEvent{Type: api.DeployEventStatus, Line: "warning: " + plan.file + ": " + w})
		}
		changes, err := s.applyBefore(ctx, app, plan)
		if err != nil {
			if created { // nothing changes: not even the app is left
				_ = s.apps.DeleteApp(context.WithoutCancel(ctx), app.Name)
			}
			return nil, err
		}
		s.manifestApplied(ctx, app, plan, changes, progress)
		if app, err = s.store.AppByID(ctx, app.ID); err != nil {
			return nil, err
		}
	}
	if plan != nil && plan.image != "" {
		// docker: {image: …} deploys the image; the pushed tree is not built.
		base := &api.Release{Image: plan.image, Processes: map[string]string{api.ProcessWeb: plan.app.Command}}
		return s.releaseImage(ctx, app, base, "image "+plan.image+" of "+plan.file, req.Wait, progress)
	}
	prev := app.CurrentRelease // what keeps serving if this release never becomes healthy

	build := &api.Build{ID: uuid.NewString(), AppID: app.ID, State: api.BuildPending, SourceBlob: ref, Actor: api.ActorName(ctx), CreatedAt: s.cfg.Now()}
	if err := s.store.CreateBuild(ctx, build); err != nil {
		return nil, fmt.Errorf("create build: %w", err)
	}
	s.audit.record(ctx, app, "push", "push received, build %s", build.ID)

	// Subscribe to the build's output before the job exists, so no line is lost.
	var lastLine atomic.Int64
	buildID := build.ID
	sub, err := bus.SubscribeJSON(s.conn, api.SubjectLogs(app.ID), "", func(_ string, e *api.LogEnvelope) {
		if e.BuildID == buildID {
			lastLine.Add(1)
			progress(api.DeployEvent{Type: api.DeployEventLog, Line: e.Line})
		}
	})
	if err != nil {
		return nil, s.failDispatch(ctx, build, err)
	}
	defer func() { _ = sub.Unsubscribe() }()
	if err := flushBus(ctx, s.conn, s.cfg.CommandTimeout); err != nil {
		return nil, s.failDispatch(ctx, build, err)
	}
	if err := s.ensureQueue(ctx); err != nil {
		return nil, s.failDispatch(ctx, build, err)
	}
	job := api.BuildJob{
		Version: api.MessageVersion, BuildID: build.ID, AppID: app.ID, AppName: app.Name,
		SourceBlob: ref, Timeout: s.cfg.BuildTimeout,
	}
	if plan != nil {
		job.Procfile, job.Buildpacks = plan.procfile, plan.buildpacks
	}
	if len(req.Buildpacks) > 0 {
		job.Buildpacks = req.Buildpacks // strata push -b wins over the manifest
	}
	job.NoCache = req.NoCache
	if job.Registered, err = s.buildpacks.registered(ctx); err != nil {
		return nil, s.failDispatch(ctx, build, err)
	}
	// Classic buildpacks see the config vars as ENV_DIR, as instances see
	// them in their environment.
	// (The manifest's env may just have made a release: read it afresh.)
	if now, err := s.store.AppByID(ctx, app.ID); err == nil && now.CurrentRelease > 0 {
		if cur, err := s.store.Release(ctx, app.ID, now.CurrentRelease); err == nil {
			job.Env = maps.Clone(cur.Env)
		}
	}
	if err := s.conn.Enqueue(ctx, api.SubjectBuildJobs, job); err != nil {
		return nil, s.failDispatch(ctx, build, err)
	}

	build, err = s.waitBuild(ctx, build.ID)
	s.drainLogs(ctx, &lastLine)
	if err != nil {
		return nil, err
	}
	if build.State == api.BuildFailed {
		return nil, api.Errorf(api.EBuildFailed, "%s", failureReason(build))
	}
	rel, err := s.releaseOf(ctx, app.ID, build.ID)
	if err != nil {
		return nil, err
	}
	progress(api.DeployEvent{Type: api.DeployEventStatus, Line: fmt.Sprintf("release v%d created", rel.Version)})
	if plan != nil && len(plan.procs) > 0 {
		// Not ended by the pusher going away: the release already runs.
		changes, err := s.applyAfter(context.WithoutCancel(ctx), app, plan)
		if err != nil {
			return nil, err
		}
		if len(changes) > 0 {
			s.manifestApplied(ctx, app, plan, changes, progress)
		}
	}
	return s.rollOut(ctx, &api.DeployResult{Build: build, Release: rel}, app, prev, req.Wait, progress)
}

// rollOut lets res.Release roll out: it fills in the app's URLs and, with
// wait, waits for its instances; a release that never becomes healthy is
// given up for prev.
func (s *Deploys) rollOut(ctx context.Context, res *api.DeployResult, app *api.App, prev int, wait bool, progress func(api.DeployEvent)) (*api.DeployResult, error) {
	routes, err := s.store.Routes(ctx, app.ID)
	if err != nil {
		return nil, err
	}
	res.URLs = routeURLs(routes, s.cfg.RouterPort)
	s.sig.Kick()
	res.Running, res.Desired, err = s.waitInstances(ctx, app, res.Release, wait, progress)
	if err != nil {
		var failed *releaseFailed
		if !asReleaseFailed(err, &failed) {
			return nil, err
		}
		return nil, s.rollbackFailed(ctx, app, res.Release, prev, failed.reason, progress)
	}
	return res, nil
}

// releaseFailed is waitInstances' error for a release whose instances did
// not become healthy.
type releaseFailed struct{ reason string }

func (e *releaseFailed) Error() string { return e.reason }

func asReleaseFailed(err error, target **releaseFailed) bool { return errors.As(err, target) }

// rollbackFailed stops a release whose instances never became healthy by
// making the release that was current before the deploy current again (no
// new release: the failed one stays in the history, the event says why).
// The previous release's instances never stopped — the rollout keeps old
// instances until new ones run — so they keep serving; the failed release's
// instances are stopped by the converger. Without a previous release (a first
// push) nothing is rolled back. It returns the pusher's error.
func (s *Deploys) rollbackFailed(ctx context.Context, app *api.App, rel *api.Release, prev int, reason string, progress func(api.DeployEvent)) error {
	ctx = context.WithoutCancel(ctx)
	fail := func(format string, args ...any) error {
		return api.Errorf(api.ETimeout, "release v%d did not become healthy: %s — %s; see `strata logs %s`", rel.Version, reason, fmt.Sprintf(format, args...), app.Name)
	}
	if prev == 0 || prev == rel.Version {
		return fail("there is no earlier release to roll back to")
	}
	// The converger may have rolled it back first: then cur is prev too.
	cur, err := s.apps.rollBackTo(ctx, app.ID, rel.Version, prev, reason)
	if err != nil {
		return fail("the automatic rollback failed: %s", api.ErrorMessage(err))
	}
	if cur != prev {
		return fail("not rolled back: v%d is current now", cur)
	}
	progress(api.DeployEvent{Type: api.DeployEventStatus, Line: fmt.Sprintf("rolled back to v%d", prev)})
	return fail("rolled back to v%d, which keeps serving", prev)
}

// serialProgress makes fn safe to call from several goroutines, one at a time.
func serialProgress(fn func(api.DeployEvent)) func(api.DeployEvent) {
	if fn == nil {
		return func(api.DeployEvent) {}
	}
	var mu sync.Mutex
	return func(e api.DeployEvent) {
		mu.Lock()
		defer mu.Unlock()
		fn(e)
	}
}

// failDispatch marks a build that could not be dispatched as failed, so no
// accepted push is left pending, and returns the error to the caller.
func (s *Deploys) failDispatch(ctx context.Context, b *api.Build, cause error) error {
	failed, err := s.builds.transition(context.WithoutCancel(ctx), b.ID, api.BuildFailed, func(b *api.Build) {
		b.Failure, b.Reason = api.FailInternal, "the build could not be dispatched to a builder"
	})
	if err == nil && failed != nil {
		s.builds.buildFailedEvent(ctx, failed)
	}
	s.log.Warn("deploy.dispatch_failed", "build", b.ID, "err", cause)
	return api.Errorf(api.EUnavailable, "cannot dispatch the build: %s — try again shortly", api.ErrorMessage(cause))
}

// pollStore calls check until it reports done or fails: again after every
// change notice, and at least every buildPoll (a notice of a change made by
// another controller never arrives here). It ends with ctx.
func (s *Deploys) pollStore(ctx context.Context, check func() (done bool, err error)) error {
	for {
		changed := s.sig.changedCh() // before check, so no notice is missed
		if done, err := check(); done || err != nil {
			return err
		}
		t := time.NewTimer(buildPoll)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-changed:
		case <-t.C:
		}
		t.Stop()
	}
}

// waitBuild waits until a build is staged or failed.
func (s *Deploys) waitBuild(ctx context.Context, id string) (*api.Build, error) {
	var b *api.Build
	err := s.pollStore(ctx, func() (bool, error) {
		got, err := s.store.Build(ctx, id)
		if err != nil && api.ErrorCode(err) != api.EUnavailable {
			return false, err
		}
		b = got
		return err == nil && got.State.Terminal(), nil
	})
	return b, err
}

// drainLogs lets the build's last output lines reach the pusher: a bus
// round trip, then wait until no line arrived for a short quiet period.
func (s *Deploys) drainLogs(ctx context.Context, lines *atomic.Int64) {
	fctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	_ = s.conn.Flush(fctx)
	const quiet = 50 * time.Millisecond
	deadline := time.After(time.Second)
	for last := lines.Load(); ; {
		select {
		case <-ctx.Done():
			return
		case <-deadline:
			return
		case <-time.After(quiet):
		}
		n := lines.Load()
		if n == last {
			return
		}
		last = n
	}
}

// releaseWait bounds how long a staged build's release may take to appear:
// the build row turns staged before its release is written (buildResult).
const releaseWait = 30 * time.Second

// releaseOf returns the release recorded for a staged build, waiting for it
// while the build result is still being recorded.
func (s *Deploys) releaseOf(ctx context.Context, appID, buildID string) (*api.Release, error) {
	deadline := time.Now().Add(releaseWait)
	var rel *api.Release
	err := s.pollStore(ctx, func() (bool, error) {
		rels, err := s.store.ListReleases(ctx, appID)
		if err != nil {
			return false, err
		}
		if i := slices.IndexFunc(rels, func(r *api.Release) bool { return r.BuildID == buildID }); i >= 0 {
			rel = rels[i]
			return true, nil
		}
		if time.Now().After(deadline) {
			return false, api.Errorf(api.EInternal, "build %s is staged but has no release — push again", buildID)
		}
		return false, nil
	})
	return rel, err
}

// waitInstances reports running/desired instances of rel's web process (or
// of all its processes when it has no web), waiting with wait until all run.
func (s *Deploys) waitInstances(ctx context.Context, app *api.App, rel *api.Release, wait bool, progress func(api.DeployEvent)) (int, int, error) {
	procs, err := s.store.Processes(ctx, app.ID)
	if err != nil {
		return 0, 0, err
	}
	target := map[string]bool{}
	desired := 0
	for _, p := range procs {
		if _, ok := rel.Processes[p.Type]; ok && api.RunsByDefault(p.Type, rel.Processes) {
			target[p.Type] = true
			desired += p.Instances
		}
	}
	timeout := time.NewTimer(s.cfg.DeployWaitTimeout)
	defer timeout.Stop()
	lastStatus := ""
	// The last crash reason seen is kept across passes: at the moment the
	// wait ends the instance may be between a crash and its restart, with
	// no reason of its own, and the user still needs to know why.
	lastReason, failedPasses := "", 0
	started := s.cfg.Now()
	for {
		changed := s.sig.changedCh()
		ins, err := s.store.Instances(ctx, app.ID)
		if err != nil {
			return 0, desired, err
		}
		running, reason := 0, ""
		failed := false
		views := s.nodes.views(s.cfg.Now(), s.cfg.NodeTTL)
		for _, in := range ins {
			if !target[in.Process] || in.Release != rel.Version {
				continue
			}
			if in.State == api.InstanceRunning {
				running++
			} else if in.Reason != "" {
				reason = in.Reason
			}
			if in.Reason != "" && in.State != api.InstanceRunning {
				lastReason = in.Reason
			}
			if v := views[in.NodeID]; v != nil && in.State != api.InstanceRunning && v.listed[in.ID].FailedStarts >= s.cfg.FailedStarts {
				failed = true
			}
		}
		if !wait || running >= desired {
			return running, desired, nil
		}
		if reason == "" {
			reason = lastReason
		}
		if reason == "" && failed {
			reason = s.crashSince(ctx, app.ID, started)
		}
		// The heartbeat that counts a failed start may come before the
		// instance event that says why: give the reason a few more passes.
		if failed && (reason != "" || failedPasses >= 4) {
			if reason == "" {
				reason = "its instances keep failing to start"
			}
			return running, desired, &releaseFailed{reason: fmt.Sprintf("%s (%d failed starts in a row)", reason, s.cfg.FailedStarts)}
		}
		if failed {
			failedPasses++
		}
		status := fmt.Sprintf("waiting for %d/%d instances", running, desired)
		un := s.unplaceable.reason(app.ID)
		if un != "" {
			status += " — " + un // e.g. no node matches the placement policy
		}
		if running == 0 && strings.Contains(un, scheduler.NoNodeMatches) && s.nodes.fresh() {
			// Waiting cannot help until an operator adds or relabels a node;
			// the app stays desired and is placed once one matches.
			return running, desired, &releaseFailed{reason: un + " — add a node that matches or change the placement (the manifest's placement:, or strata spaces set-placement)"}
		}
		if status != lastStatus {
			lastStatus = status
			progress(api.DeployEvent{Type: api.DeployEventStatus, Line: status})
		}
		t := time.NewTimer(250 * time.Millisecond)
		select {
		case <-ctx.Done():
			t.Stop()
			return running, desired, ctx.Err()
		case <-timeout.C:
			t.Stop()
			if reason == "" {
				// A crashed instance may be gone before a pass saw it (a
				// rollback stops it at once); its crash event says why.
				reason = s.crashSince(ctx, app.ID, started)
			}
			if reason == "" {
				reason = s.unplaceable.reason(app.ID)
			}
			if reason == "" {
				reason = "no instance became healthy"
			}
			return running, desired, &releaseFailed{reason: fmt.Sprintf("%d of %d instances running after %s: %s", running, desired, s.cfg.DeployWaitTimeout, reason)}
		case <-changed:
		case <-t.C:
		}
		t.Stop()
	}
}

// ensureQueue creates the build queue once it can.
func (s *Deploys) ensureQueue(ctx context.Context) error {
	s.queueMu.Lock()
	defer s.queueMu.Unlock()
	if s.queueReady {
		return nil
	}
	if err := s.conn.EnsureWorkQueue(ctx, api.BuildJobsStream, api.SubjectBuildJobs); err != nil {
		return err
	}
	s.queueReady = true
	return nil
}

// MaxImageRef is the longest image reference accepted.
const MaxImageRef = 512

// validImageRef checks the form of an image reference (the engine says
// whether it has it): registry/name:tag or name@sha256:…, printable, no
// spaces.
func validImageRef(ref string) error {
	if ref == "" || len(ref) > MaxImageRef || strings.IndexFunc(ref, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("._-/:@", r))
	}) >= 0 || strings.HasPrefix(ref, "-") {
		return api.Errorf(api.EInvalid, "%q is not an image reference — give one like strata/stack:bookworm or myapp@sha256:…", clip(ref))
	}
	return nil
}

// deployImage makes a release that runs an image instead of a droplet (no
// build): the image a reference names, or a `docker save` tarball stored as
// a blob. Its web process runs the image's own entrypoint with $PORT set,
// in a container (readPass); the release rolls out, and rolls back when it
// never becomes healthy, like a built one.
func (s *Deploys) deployImage(ctx context.Context, req api.DeployRequest) (*api.DeployResult, error) {
	if req.Image != "" && req.ImageFile {
		return nil, api.Errorf(api.EInvalid, "both an image and an image file given — deploy one of them")
	}
	if req.ImageFile && req.Source == nil {
		return nil, api.Errorf(api.EInvalid, "no image file to deploy — send a `docker save` tarball")
	}
	if req.Image != "" {
		if err := validImageRef(req.Image); err != nil {
			return nil, err
		}
	}
	if len(req.Buildpacks) > 0 {
		return nil, api.Errorf(api.EInvalid, "an image deploy runs no buildpack — drop -b")
	}
	app, err := s.find.appByName(ctx, req.App, actDevelop)
	if api.ErrorCode(err) == api.ENotFound && req.CreateApp {
		app, err = s.apps.CreateApp(ctx, req.App)
		if api.ErrorCode(err) == api.EConflict {
			app, err = s.find.appByName(ctx, req.App, actDevelop)
		}
	}
	if err != nil {
		return nil, err
	}
	progress := serialProgress(req.Progress)
	// The web process runs the image's own entrypoint (an empty command).
	base := &api.Release{Image: req.Image, Processes: map[string]string{api.ProcessWeb: ""}}
	what := "image " + req.Image
	if req.ImageFile {
		if base.ImageBlob, err = s.blobs.Put(ctx, req.Source); err != nil {
			return nil, fmt.Errorf("store the image file: %w", err)
		}
		what = "image file " + string(base.ImageBlob)
	}
	return s.releaseImage(ctx, app, base, what, req.Wait, progress)
}

// releaseImage makes a release of base (an image, its web command) with the
// app's current config vars and rolls it out.
func (s *Deploys) releaseImage(ctx context.Context, app *api.App, base *api.Release, what string, wait bool, progress func(api.DeployEvent)) (*api.DeployResult, error) {
	unlock, err := s.locks.lock(ctx, app.ID)
	if err != nil {
		return nil, err
	}
	if app, err = s.store.AppByID(ctx, app.ID); err != nil {
		unlock()
		return nil, err
	}
	prev := app.CurrentRelease // what keeps serving if the image never becomes healthy
	var env map[string]string
	if prev > 0 {
		cur, err := s.store.Release(ctx, app.ID, prev)
		if err != nil {
			unlock()
			return nil, err
		}
		env = maps.Clone(cur.Env)
	}
	rel, err := s.apps.cut(ctx, app, base, env, "release", "Deploy "+what)
	unlock()
	if err != nil {
		return nil, err
	}
	progress(api.DeployEvent{Type: api.DeployEventStatus, Line: fmt.Sprintf("release v%d created (%s)", rel.Version, what)})
	return s.rollOut(ctx, &api.DeployResult{Release: rel}, app, prev, wait, progress)
}

// crashSince is the message of the app's newest instance crash event since
// t ("" if none): what a deploy that did not become healthy tells the user
// when the crashed instance itself is gone.
func (s *Deploys) crashSince(ctx context.Context, appID string, t time.Time) string {
	evs, err := s.store.Events(ctx, appID, 20)
	if err != nil {
		return ""
	}
	for _, e := range evs { // newest first
		if e.Time.Before(t) {
			break
		}
		if e.Type == "instance.crashed" {
			return e.Message
		}
	}
	return ""
}
