package controller

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/google/uuid"

	"github.com/strata-paas/strata/api"
)

// Builds turns builders' results into build states, releases and formations,
// and fails builds whose builder went away.
type Builds struct {
	cfg   Config
	log   *slog.Logger
	store buildsStore
	audit *audit
	sig   *signals
	locks *appLocks
}

// buildsStore is what Builds reads and writes.
type buildsStore interface {
	BuildStore
	ReleaseStore
	FormationStore
	AppByID(ctx context.Context, id string) (*api.App, error)
}

// errTerminal stops an UpdateBuild whose build already finished.
var errTerminal = errors.New("build already finished")

// buildResult handles a builder's report. It is idempotent: a report for a
// build that already finished is acknowledged and ignored, except that a
// staged report re-creates a release that a crash kept from being recorded.
// An error reply makes the builder retry.
func (s *Builds) buildResult(ctx context.Context, r *api.BuildResult) (*struct{}, error) {
	ack := &struct{}{}
	b, err := s.store.Build(ctx, r.BuildID)
	if api.ErrorCode(err) == api.ENotFound {
		return ack, nil // the app was deleted with its builds
	}
	if err != nil {
		return nil, err
	}
	log := s.log.With("build", b.ID, "state", r.State)
	// Events of the build are the pusher's doing.
	ctx = api.WithPrincipal(ctx, &api.Principal{Name: b.Actor})
	defer s.sig.notifyChanged()
	switch r.State {
	case api.BuildStaging:
		if b.State == api.BuildPending {
			if _, err := s.transition(ctx, b.ID, api.BuildStaging, nil); err != nil {
				return nil, err
			}
		}
		return ack, nil
	case api.BuildStaged:
		if b.State == api.BuildFailed {
			log.Info("build_result.late_staged_ignored")
			return ack, nil
		}
		if b.State == api.BuildPending {
			if _, err := s.transition(ctx, b.ID, api.BuildStaging, nil); err != nil {
				return nil, err
			}
		}
		if !r.DropletBlob.Valid() && b.State != api.BuildStaged {
			return nil, api.Errorf(api.EInvalid, "staged result without a valid droplet ref")
		}
		staged, err := s.transition(ctx, b.ID, api.BuildStaged, func(b *api.Build) {
			b.DropletBlob, b.Buildpack = r.DropletBlob, r.Buildpack
		})
		if err != nil {
			return nil, err
		}
		if staged != nil {
			b = staged
			if app, err := s.store.AppByID(ctx, b.AppID); err == nil {
				s.audit.record(ctx, app, "build.staged", "build %s staged with %s", b.ID, b.Buildpack)
			}
		} else if b, err = s.store.Build(ctx, b.ID); err != nil {
			return nil, err
		}
		if b.State != api.BuildStaged {
			return ack, nil
		}
		if err := s.ensureRelease(ctx, b, r.Processes); err != nil {
			return nil, err
		}
		return ack, nil
	case api.BuildFailed:
		failed, err := s.transition(ctx, b.ID, api.BuildFailed, func(b *api.Build) {
			b.Failure, b.Reason = r.Failure, r.Reason
			if b.Failure == "" {
				b.Failure = api.FailInternal
			}
		})
		if err != nil {
			return nil, err
		}
		if failed != nil {
			s.buildFailedEvent(ctx, failed)
		}
		return ack, nil
	}
	return nil, api.Errorf(api.EInvalid, "build result state %q is not staging, staged or failed", r.State)
}

// transition moves a build to state (applying edit), returning the saved
// build, or nil when the build had already finished.
func (s *Builds) transition(ctx context.Context, id string, state api.BuildState, edit func(*api.Build)) (*api.Build, error) {
	b, err := s.store.UpdateBuild(ctx, id, func(b *api.Build) error {
		if b.State.Terminal() || b.State == state {
			return errTerminal
		}
		b.State = state
		if edit != nil {
			edit(b)
		}
		return nil
	})
	if errors.Is(err, errTerminal) {
		return nil, nil
	}
	return b, err
}

func (s *Builds) buildFailedEvent(ctx context.Context, b *api.Build) {
	if app, err := s.store.AppByID(ctx, b.AppID); err == nil {
		s.audit.record(ctx, app, "build.failed", "build %s failed: %s", b.ID, failureReason(b))
	}
}

// failureReason is the human-readable reason of a failed build.
func failureReason(b *api.Build) string {
	if b.Reason != "" {
		return b.Reason
	}
	switch b.Failure {
	case api.FailNoBuildpack:
		return "no buildpack detected"
	case api.FailCompile:
		return "compile failed"
	case api.FailTimeout:
		return "timed out"
	case api.FailBadSource:
		return "the source archive was refused"
	case api.FailLostBuilder:
		return "no builder finished the build in time"
	}
	return "internal error"
}

// ensureRelease records the release of a staged build unless it exists, and
// adds formation rows for process types the app has not had before.
func (s *Builds) ensureRelease(ctx context.Context, b *api.Build, procs map[string]string) error {
	app, err := s.store.AppByID(ctx, b.AppID)
	if api.ErrorCode(err) == api.ENotFound {
		return nil
	}
	if err != nil {
		return err
	}
	// Under the app's lock and re-read, so a concurrent `env set` is not lost.
	unlock, err := s.locks.lock(ctx, app.ID)
	if err != nil {
		return err
	}
	defer unlock()
	if app, err = s.store.AppByID(ctx, app.ID); err != nil {
		return err
	}
	rels, err := s.store.ListReleases(ctx, app.ID)
	if err != nil {
		return err
	}
	for _, r := range rels {
		if r.BuildID == b.ID {
			return nil
		}
	}
	var env map[string]string
	if len(rels) > 0 && app.CurrentRelease > 0 {
		prev, err := s.store.Release(ctx, app.ID, app.CurrentRelease)
		if err != nil {
			return err
		}
		env = prev.Env
	}
	rel := &api.Release{
		ID: uuid.NewString(), AppID: app.ID, BuildID: b.ID, DropletBlob: b.DropletBlob,
		Processes: procs, Env: env, Description: deployDescription(b), Actor: b.Actor,
	}
	if b.Buildpack == api.BuildpackDockerfile {
		// A Dockerfile build made an image tarball: it runs as an image
		// deploy (in a container), not as a droplet.
		rel.DropletBlob, rel.ImageBlob = "", b.DropletBlob
	}
	if err := s.store.CreateRelease(ctx, rel); err != nil {
		return fmt.Errorf("create release: %w", err)
	}
	if err := ensureFormation(ctx, s.store, app.ID, procs); err != nil {
		return err
	}
	s.audit.record(ctx, app, "release", "release v%d from build %s", rel.Version, b.ID)
	s.sig.Kick()
	return nil
}

// deployDescription says what a build's release changed.
func deployDescription(b *api.Build) string {
	d := "Deploy build " + b.ID
	if b.Buildpack != "" {
		d += " (" + b.Buildpack + ")"
	}
	return d
}

// ensureFormation gives each process type of a release that the app does not
// have yet its default scale (api.RunsByDefault), keeping existing ones.
func ensureFormation(ctx context.Context, st FormationStore, appID string, procs map[string]string) error {
	have, err := st.Processes(ctx, appID)
	if err != nil {
		return err
	}
	known := make(map[string]bool, len(have))
	for _, p := range have {
		known[p.Type] = true
	}
	for typ := range procs {
		if known[typ] {
			continue
		}
		n := 0
		if api.RunsByDefault(typ, procs) {
			n = 1
		}
		if err := st.SetProcess(ctx, api.Process{AppID: appID, Type: typ, Instances: n, MemoryMB: api.DefaultMemoryMB, DiskMB: api.DefaultDiskMB}); err != nil {
			return err
		}
	}
	return nil
}

// failStuckBuilds fails builds pending or staging for longer than
// BuildTimeout + 1m: their builder is gone (docs/reliability.md rule 2).
func (s *Builds) failStuckBuilds(ctx context.Context) {
	bs, err := s.store.BuildsInState(ctx, api.BuildPending, api.BuildStaging)
	if err != nil {
		return
	}
	limit := s.cfg.BuildTimeout + time.Minute
	now := s.cfg.Now()
	for _, b := range bs {
		if now.Sub(b.CreatedAt) <= limit {
			continue
		}
		failed, err := s.transition(ctx, b.ID, api.BuildFailed, func(b *api.Build) {
			b.Failure = api.FailLostBuilder
			b.Reason = fmt.Sprintf("no builder finished the build within %s — push again", limit)
		})
		if err != nil {
			s.log.Warn("converge.fail_stuck_build", "build", b.ID, "err", err)
			continue
		}
		if failed != nil {
			s.buildFailedEvent(ctx, failed)
			s.sig.notifyChanged()
		}
	}
}
