package store

import (
	"context"
	"strconv"
	"time"

	"gorm.io/gorm"

	"github.com/strata-paas/strata/api"
)

// CreateRelease assigns r.Version = (highest version of the app)+1, stores
// r and makes it the app's CurrentRelease, in one write transaction; it fills
// CreatedAt when zero. Concurrent calls get distinct consecutive versions.
// ENotFound if the app does not exist.
func (s *Store) CreateRelease(ctx context.Context, r *api.Release) error {
	if err := needID("release", r.ID); err != nil {
		return err
	}
	r.CreatedAt = s.stamp(r.CreatedAt)
	err := s.tx(ctx, func(tx *gorm.DB) error {
		// Touch the app first: on PostgreSQL this row lock serialises
		// concurrent releases of one app; on SQLite the transaction already
		// holds the write lock.
		res := tx.Model(&appRow{}).Where("id = ?", r.AppID).Update("updated_at", s.stamp(time.Time{}))
		if res.Error != nil {
			return res.Error
		}
		if res.RowsAffected == 0 {
			return gorm.ErrRecordNotFound
		}
		var max int
		if err := tx.Model(&releaseRow{}).Where("app_id = ?", r.AppID).Select("COALESCE(MAX(version), 0)").Scan(&max).Error; err != nil {
			return err
		}
		r.Version = max + 1
		row, err := toReleaseRow(r)
		if err != nil {
			return api.Errorf(api.EInvalid, "release config cannot be encoded: %v", err)
		}
		if err := tx.Create(&row).Error; err != nil {
			return err
		}
		return tx.Model(&appRow{}).Where("id = ?", r.AppID).Update("current_release", r.Version).Error
	})
	if err != nil {
		r.Version = 0
	}
	return s.fail("create release", err, msgs{
		notFound: "app " + q(r.AppID) + " not found",
		missing:  "app " + q(r.AppID) + " not found",
		conflict: "release " + q(r.ID) + " already exists",
	})
}

// Release returns version of an app's releases, or ENotFound.
func (s *Store) Release(ctx context.Context, appID string, version int) (*api.Release, error) {
	var row releaseRow
	if err := s.first(ctx, "find release", &row, msgs{notFound: "release v" + strconv.Itoa(version) + " not found — list releases with `strata releases`"},
		"app_id = ? AND version = ?", appID, version); err != nil {
		return nil, err
	}
	out, err := row.api()
	if err != nil {
		return nil, s.fail("decode release", err, msgs{})
	}
	return out, nil
}

// ListReleases returns an app's releases, newest first.
func (s *Store) ListReleases(ctx context.Context, appID string) ([]*api.Release, error) {
	var rows []releaseRow
	if err := s.read.WithContext(ctx).Where("app_id = ?", appID).Order("version DESC").Find(&rows).Error; err != nil {
		return nil, s.fail("list releases", err, msgs{})
	}
	out := make([]*api.Release, len(rows))
	for i, r := range rows {
		rel, err := r.api()
		if err != nil {
			return nil, s.fail("decode release", err, msgs{})
		}
		out[i] = rel
	}
	return out, nil
}
