package store

import (
	"context"

	"gorm.io/gorm"

	"github.com/strata-paas/strata/api"
)

// CreateBuild stores b, filling CreatedAt and UpdatedAt when zero and State
// with BuildPending when empty. ENotFound if the app does not exist,
// EConflict if the id is taken.
func (s *Store) CreateBuild(ctx context.Context, b *api.Build) error {
	if err := needID("build", b.ID); err != nil {
		return err
	}
	if b.State == "" {
		b.State = api.BuildPending
	}
	b.CreatedAt = s.stamp(b.CreatedAt)
	if b.UpdatedAt.IsZero() {
		b.UpdatedAt = b.CreatedAt
	}
	b.UpdatedAt = norm(b.UpdatedAt)
	row := toBuildRow(b)
	return s.create(ctx, "create build", &row, msgs{
		conflict: "build " + q(b.ID) + " already exists",
		missing:  "app " + q(b.AppID) + " not found",
	})
}

// Build returns the build with id, or ENotFound.
func (s *Store) Build(ctx context.Context, id string) (*api.Build, error) {
	var row buildRow
	if err := s.first(ctx, "find build", &row, buildNotFound(id), "id = ?", id); err != nil {
		return nil, err
	}
	return row.api(), nil
}

// UpdateBuild loads the build, calls fn on it, checks that a state change is
// allowed by BuildState.CanTransitionTo (EConflict if not) and saves it, all
// in one write transaction. ID, AppID and CreatedAt cannot be changed by fn.
// UpdatedAt is set to the store's clock unless fn changed it. An error from
// fn aborts the update and is returned as is. ENotFound if the build does
// not exist.
func (s *Store) UpdateBuild(ctx context.Context, id string, fn func(b *api.Build) error) (*api.Build, error) {
	var saved *api.Build
	err := s.tx(ctx, func(tx *gorm.DB) error {
		var row buildRow
		if err := s.firstTx(tx, "update build", &row, buildNotFound(id), "id = ?", id); err != nil {
			return err
		}
		old := row.api()
		b := row.api()
		if err := fn(b); err != nil {
			return err
		}
		if b.State != old.State && !old.State.CanTransitionTo(b.State) {
			return api.Errorf(api.EConflict, "build %s cannot go from %s to %s", q(id), old.State, q(string(b.State)))
		}
		b.ID, b.AppID, b.CreatedAt = old.ID, old.AppID, old.CreatedAt
		b.UpdatedAt = s.touched(b.UpdatedAt, old.UpdatedAt)
		nr := toBuildRow(b)
		err := tx.Model(&buildRow{}).Where("id = ?", id).Updates(map[string]any{
			"state":        nr.State,
			"source_blob":  nr.SourceBlob,
			"droplet_blob": nr.DropletBlob,
			"buildpack":    nr.Buildpack,
			"failure":      nr.Failure,
			"reason":       nr.Reason,
			"actor":        nr.Actor,
			"updated_at":   nr.UpdatedAt,
		}).Error
		saved = b
		return err
	})
	if err != nil {
		return nil, s.fail("update build", err, msgs{})
	}
	return saved, nil
}

// BuildsInState lists the builds in any of states, oldest first. No states
// means no builds.
func (s *Store) BuildsInState(ctx context.Context, states ...api.BuildState) ([]*api.Build, error) {
	if len(states) == 0 {
		return []*api.Build{}, nil
	}
	ss := make([]string, len(states))
	for i, st := range states {
		ss[i] = string(st)
	}
	var rows []buildRow
	if err := s.read.WithContext(ctx).Where("state IN ?", ss).Order("created_at, seq").Find(&rows).Error; err != nil {
		return nil, s.fail("list builds", err, msgs{})
	}
	return convert(rows, buildRow.api), nil
}

// LatestBuild returns the newest build of an app, or ENotFound.
func (s *Store) LatestBuild(ctx context.Context, appID string) (*api.Build, error) {
	var row buildRow
	err := s.read.WithContext(ctx).Where("app_id = ?", appID).Order("created_at DESC, seq DESC").Take(&row).Error
	if err != nil {
		return nil, s.fail("find latest build", err, msgs{notFound: "app " + q(appID) + " has no builds — push the app first"})
	}
	return row.api(), nil
}

func buildNotFound(id string) msgs { return msgs{notFound: "build " + q(id) + " not found"} }
