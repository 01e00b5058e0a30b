package controller

import (
	"context"
	"errors"
	"fmt"
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

// buildPoll is how often Deploy re-reads a build in case the in-process
// notification was missed (the result reached another controller).
const buildPoll = 500 * time.Millisecond

// Deploy stores the source, stages it on a builder (streaming its output to
// req.Progress), and returns once the build's release is recorded — and,
// with req.Wait, once the release's instances run. A failed build is an
// EBuildFailed error carrying the reason; instances that do not become
// healthy within DeployWaitTimeout are ETimeout. If ctx ends first the
// build carries on and ctx's error is returned.
func (c *Controller) Deploy(ctx context.Context, req api.DeployRequest) (*api.DeployResult, error) {
	if req.Source == nil {
		return nil, api.Errorf(api.EInvalid, "no source to deploy — send a gzip-compressed tar archive")
	}
	app, err := c.appByName(ctx, req.App)
	if err != nil && (api.ErrorCode(err) != api.ENotFound || !req.CreateApp) {
		return nil, err
	}
	progress := serialProgress(req.Progress)

	ref, src, err := c.putSource(ctx, req.Source, !req.IgnoreManifest)
	if err != nil {
		return nil, fmt.Errorf("store source: %w", err)
	}
	// The manifest is checked before anything changes, the app included.
	var plan *manifestPlan
	if src != nil {
		if plan, err = planManifest(src, req.App, c.cfg.Domain); err != nil {
			return nil, err
		}
	}
	created := false
	if app == nil {
		app, err = c.CreateApp(ctx, req.App)
		created = err == nil
		if api.ErrorCode(err) == api.EConflict { // created concurrently
			app, err = c.appByName(ctx, req.App)
		}
		if err != nil {
			return nil, err
		}
	}
	if plan != nil {
		for _, w := range plan.warnings {
			progress(api.DeployEvent{Type: api.DeployEventStatus, Line: "warning: " + plan.file + ": " + w})
		}
		changes, err := c.applyBefore(ctx, app, plan)
		if err != nil {
			if created { // nothing changes: not even the app is left
				_ = c.DeleteApp(context.WithoutCancel(ctx), app.Name)
			}
			return nil, err
		}
		c.manifestApplied(ctx, app, plan, changes, progress)
		if app, err = c.store.AppByID(ctx, app.ID); err != nil {
			return nil, err
		}
	}
	prev := app.CurrentRelease // what keeps serving if this release never becomes healthy

	build := &api.Build{ID: uuid.NewString(), AppID: app.ID, State: api.BuildPending, SourceBlob: ref, Actor: api.ActorName(ctx), CreatedAt: c.cfg.Now()}
	if err := c.store.CreateBuild(ctx, build); err != nil {
		return nil, fmt.Errorf("create build: %w", err)
	}
	c.record(ctx, app, "push", "push received, build %s", build.ID)

	// Subscribe to the build's output before the job exists, so no line is lost.
	var lastLine atomic.Int64
	buildID := build.ID
	sub, err := bus.SubscribeJSON(c.conn, api.SubjectLogs(app.Name), "", func(_ string, e *api.LogEnvelope) {
		if e.BuildID == buildID {
			lastLine.Add(1)
			progress(api.DeployEvent{Type: api.DeployEventLog, Line: e.Line})
		}
	})
	if err != nil {
		return nil, c.failDispatch(ctx, build, err)
	}
	defer func() { _ = sub.Unsubscribe() }()
	if err := c.flush(ctx); err != nil {
		return nil, c.failDispatch(ctx, build, err)
	}
	if err := c.ensureQueue(ctx); err != nil {
		return nil, c.failDispatch(ctx, build, err)
	}
	job := api.BuildJob{
		Version: api.MessageVersion, BuildID: build.ID, AppID: app.ID, AppName: app.Name,
		SourceBlob: ref, Timeout: c.cfg.BuildTimeout,
	}
	if plan != nil {
		job.Procfile = plan.procfile
	}
	if err := c.conn.Enqueue(ctx, api.SubjectBuildJobs, job); err != nil {
		return nil, c.failDispatch(ctx, build, err)
	}

	build, err = c.waitBuild(ctx, build.ID)
	c.drainLogs(ctx, &lastLine)
	if err != nil {
		return nil, err
	}
	if build.State == api.BuildFailed {
		return nil, api.Errorf(api.EBuildFailed, "%s", failureReason(build))
	}
	rel, err := c.releaseOf(ctx, app.ID, build.ID)
	if err != nil {
		return nil, err
	}
	progress(api.DeployEvent{Type: api.DeployEventStatus, Line: fmt.Sprintf("release v%d created", rel.Version)})
	if plan != nil && len(plan.procs) > 0 {
		// Not ended by the pusher going away: the release already runs.
		changes, err := c.applyAfter(context.WithoutCancel(ctx), app, plan)
		if err != nil {
			return nil, err
		}
		if len(changes) > 0 {
			c.manifestApplied(ctx, app, plan, changes, progress)
		}
	}
	res := &api.DeployResult{Build: build, Release: rel}
	routes, err := c.store.Routes(ctx, app.ID)
	if err != nil {
		return nil, err
	}
	res.URLs = c.urls(routes)
	c.Kick()
	res.Running, res.Desired, err = c.waitInstances(ctx, app, rel, req.Wait, progress)
	if err != nil {
		var failed *releaseFailed
		if !asReleaseFailed(err, &failed) {
			return nil, err
		}
		return nil, c.rollbackFailed(ctx, app, rel, prev, failed.reason, progress)
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
func (c *Controller) rollbackFailed(ctx context.Context, app *api.App, rel *api.Release, prev int, reason string, progress func(api.DeployEvent)) error {
	ctx = context.WithoutCancel(ctx)
	fail := func(format string, args ...any) error {
		return api.Errorf(api.ETimeout, "release v%d did not become healthy: %s — %s; see `strata logs %s`", rel.Version, reason, fmt.Sprintf(format, args...), app.Name)
	}
	if prev == 0 || prev == rel.Version {
		return fail("there is no earlier release to roll back to")
	}
	// The converger may have rolled it back first: then cur is prev too.
	cur, err := c.rollBackTo(ctx, app.ID, rel.Version, prev, reason)
	if err != nil {
		return fail("the automatic rollback failed: %s", api.ErrorMessage(err))
	}
	if cur != prev {
		return fail("not rolled back: v%d is current now", cur)
	}
	progress(api.DeployEvent{Type: api.DeployEventStatus, Line: fmt.Sprintf("rolled back to v%d", prev)})
	return fail("rolled back to v%d, which keeps serving", prev)
}

// rollBackTo makes release to current again if failed still is, recording
// why, and returns the app's current release afterwards. Both the deploy
// watch and the converger roll back through it, under the app's lock.
func (c *Controller) rollBackTo(ctx context.Context, appID string, failed, to int, reason string) (int, error) {
	defer c.locks.lock(appID)()
	app, err := c.store.AppByID(ctx, appID)
	if err != nil {
		return 0, err
	}
	if app.CurrentRelease != failed {
		return app.CurrentRelease, nil
	}
	app.CurrentRelease = to
	if err := c.store.UpdateApp(ctx, app); err != nil {
		return failed, err
	}
	c.record(ctx, app, "rollback", "automatic rollback to v%d: release v%d did not become healthy: %s", to, failed, reason)
	c.log.Info("controller.rolled_back", "app", app.Name, "from", failed, "to", to)
	c.Kick()
	return to, nil
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
func (c *Controller) failDispatch(ctx context.Context, b *api.Build, cause error) error {
	failed, err := c.transition(context.WithoutCancel(ctx), b.ID, api.BuildFailed, func(b *api.Build) {
		b.Failure, b.Reason = api.FailInternal, "the build could not be dispatched to a builder"
	})
	if err == nil && failed != nil {
		c.buildFailedEvent(ctx, failed)
	}
	c.log.Warn("deploy.dispatch_failed", "build", b.ID, "err", cause)
	return api.Errorf(api.EUnavailable, "cannot dispatch the build: %s — try again shortly", api.ErrorMessage(cause))
}

// pollStore calls check until it reports done or fails: again after every
// change notice, and at least every buildPoll (a notice of a change made by
// another controller never arrives here). It ends with ctx.
func (c *Controller) pollStore(ctx context.Context, check func() (done bool, err error)) error {
	for {
		changed := c.changedCh() // before check, so no notice is missed
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
func (c *Controller) waitBuild(ctx context.Context, id string) (*api.Build, error) {
	var b *api.Build
	err := c.pollStore(ctx, func() (bool, error) {
		got, err := c.store.Build(ctx, id)
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
func (c *Controller) drainLogs(ctx context.Context, lines *atomic.Int64) {
	fctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	_ = c.conn.Flush(fctx)
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
func (c *Controller) releaseOf(ctx context.Context, appID, buildID string) (*api.Release, error) {
	deadline := time.Now().Add(releaseWait)
	var rel *api.Release
	err := c.pollStore(ctx, func() (bool, error) {
		rels, err := c.store.ListReleases(ctx, appID)
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
func (c *Controller) waitInstances(ctx context.Context, app *api.App, rel *api.Release, wait bool, progress func(api.DeployEvent)) (int, int, error) {
	procs, err := c.store.Processes(ctx, app.ID)
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
	timeout := time.NewTimer(c.cfg.DeployWaitTimeout)
	defer timeout.Stop()
	lastStatus := ""
	for {
		changed := c.changedCh()
		ins, err := c.store.Instances(ctx, app.ID)
		if err != nil {
			return 0, desired, err
		}
		running, reason := 0, ""
		failed := false
		views := c.nodes.views(c.cfg.Now(), c.cfg.NodeTTL)
		for _, in := range ins {
			if !target[in.Process] || in.Release != rel.Version {
				continue
			}
			if in.State == api.InstanceRunning {
				running++
			} else if in.Reason != "" {
				reason = in.Reason
			}
			if v := views[in.NodeID]; v != nil && in.State != api.InstanceRunning && v.listed[in.ID].FailedStarts >= c.cfg.FailedStarts {
				failed = true
			}
		}
		if !wait || running >= desired {
			return running, desired, nil
		}
		if failed {
			if reason == "" {
				reason = "its instances keep failing to start"
			}
			return running, desired, &releaseFailed{reason: fmt.Sprintf("%s (%d failed starts in a row)", reason, c.cfg.FailedStarts)}
		}
		status := fmt.Sprintf("waiting for %d/%d instances", running, desired)
		un := c.unplaceableReason(app.ID)
		if un != "" {
			status += " — " + un // e.g. no node matches the placement policy
		}
		if running == 0 && strings.Contains(un, scheduler.NoNodeMatches) && c.freshState() {
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
				reason = c.unplaceableReason(app.ID)
			}
			if reason == "" {
				reason = "no instance became healthy"
			}
			return running, desired, &releaseFailed{reason: fmt.Sprintf("%d of %d instances running after %s: %s", running, desired, c.cfg.DeployWaitTimeout, reason)}
		case <-changed:
		case <-t.C:
		}
		t.Stop()
	}
}
