package store

import (
	"context"
	"time"

	"gorm.io/gorm"

	"github.com/strata-paas/strata/api"
)

// CreateApp stores a, filling CreatedAt and UpdatedAt when zero and State
// with AppStopped when empty. EConflict if the space already has an app of
// that name, ENotFound if the space does not exist.
func (s *Store) CreateApp(ctx context.Context, a *api.App) error {
	if err := needID("app", a.ID); err != nil {
		return err
	}
	a.CreatedAt = s.stamp(a.CreatedAt)
	if a.UpdatedAt.IsZero() {
		a.UpdatedAt = a.CreatedAt
	}
	a.UpdatedAt = norm(a.UpdatedAt)
	if a.State == "" {
		a.State = api.AppStopped
	}
	row := appRow{ID: a.ID, SpaceID: a.SpaceID, Name: a.Name, State: string(a.State),
		CurrentRelease: a.CurrentRelease, CreatedAt: a.CreatedAt, UpdatedAt: a.UpdatedAt}
	return s.create(ctx, "create app", &row, msgs{
		conflict: "app " + q(a.Name) + " already exists in this space — choose another name",
		missing:  "space " + q(a.SpaceID) + " not found — create the space first",
	})
}

// AppByName returns the app called name in a space, or ENotFound.
func (s *Store) AppByName(ctx context.Context, spaceID, name string) (*api.App, error) {
	var row appRow
	if err := s.first(ctx, "find app", &row, msgs{notFound: "app " + q(name) + " not found — check the name with `strata apps`"},
		"space_id = ? AND name = ?", spaceID, name); err != nil {
		return nil, err
	}
	return row.api(), nil
}

// AppByID returns the app with id, or ENotFound.
func (s *Store) AppByID(ctx context.Context, id string) (*api.App, error) {
	var row appRow
	if err := s.first(ctx, "find app", &row, appNotFound(id), "id = ?", id); err != nil {
		return nil, err
	}
	return row.api(), nil
}

// ListApps returns the apps of a space ordered by name.
func (s *Store) ListApps(ctx context.Context, spaceID string) ([]*api.App, error) {
	return s.listApps(ctx, s.read.WithContext(ctx).Where("space_id = ?", spaceID))
}

// ListAllApps returns the apps of every space ordered by space and name.
func (s *Store) ListAllApps(ctx context.Context) ([]*api.App, error) {
	return s.listApps(ctx, s.read.WithContext(ctx))
}

func (s *Store) listApps(_ context.Context, db *gorm.DB) ([]*api.App, error) {
	var rows []appRow
	if err := db.Order("space_id, name").Find(&rows).Error; err != nil {
		return nil, s.fail("list apps", err, msgs{})
	}
	return convert(rows, appRow.api), nil
}

// UpdateApp saves State, CurrentRelease and UpdatedAt of a. UpdatedAt is set
// to the store's clock when a.UpdatedAt is zero or unchanged from the stored
// row, and written back into a. ENotFound if the app does not exist.
func (s *Store) UpdateApp(ctx context.Context, a *api.App) error {
	err := s.tx(ctx, func(tx *gorm.DB) error {
		var old appRow
		if err := s.firstTx(tx, "update app", &old, appNotFound(a.ID), "id = ?", a.ID); err != nil {
			return err
		}
		a.UpdatedAt = s.touched(a.UpdatedAt, old.UpdatedAt)
		return tx.Model(&appRow{}).Where("id = ?", a.ID).Updates(map[string]any{
			"state":           string(a.State),
			"current_release": a.CurrentRelease,
			"updated_at":      a.UpdatedAt,
		}).Error
	})
	return s.fail("update app", err, msgs{})
}

// DeleteApp deletes the app and, in the same transaction, its processes,
// instances, routes, builds and releases; its events are kept. ENotFound if
// the app does not exist.
func (s *Store) DeleteApp(ctx context.Context, id string) error {
	err := s.tx(ctx, func(tx *gorm.DB) error {
		for _, child := range []any{&processRow{}, &instanceRow{}, &routeRow{}, &buildRow{}, &releaseRow{}} {
			if err := tx.Where("app_id = ?", id).Delete(child).Error; err != nil {
				return err
			}
		}
		res := tx.Where("id = ?", id).Delete(&appRow{})
		if res.Error != nil {
			return res.Error
		}
		if res.RowsAffected == 0 {
			return gorm.ErrRecordNotFound
		}
		return nil
	})
	return s.fail("delete app", err, appNotFound(id))
}

func appNotFound(id string) msgs {
	return msgs{notFound: "app " + q(id) + " not found", missing: "app " + q(id) + " not found"}
}

// touched returns the UpdatedAt to save: the caller's value if it changed
// it, otherwise the store's clock.
func (s *Store) touched(given, stored time.Time) time.Time {
	if given.IsZero() || given.Equal(stored) {
		return s.stamp(time.Time{})
	}
	return norm(given)
}
