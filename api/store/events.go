package store

import (
	"context"

	"github.com/strata-paas/strata/api"
)

// AddEvent appends e to the audit trail, filling Time when zero. Events
// need no existing app: they outlive the apps they describe. EConflict if
// the id is taken.
func (s *Store) AddEvent(ctx context.Context, e *api.Event) error {
	if err := needID("event", e.ID); err != nil {
		return err
	}
	e.Time = s.stamp(e.Time)
	row := eventRow{ID: e.ID, AppID: e.AppID, OrgID: e.OrgID, SpaceID: e.SpaceID, Type: e.Type, Actor: e.Actor, Message: e.Message, CreatedAt: e.Time}
	return s.create(ctx, "add event", &row, msgs{conflict: "event " + q(e.ID) + " already exists"})
}

// OrgEvents returns the org-level events of an org (those of no app),
// newest first, at most limit; limit <= 0 means all.
func (s *Store) OrgEvents(ctx context.Context, orgID string, limit int) ([]*api.Event, error) {
	db := s.read.WithContext(ctx).Where("org_id = ? AND app_id = ''", orgID).Order("created_at DESC, seq DESC")
	if limit > 0 {
		db = db.Limit(limit)
	}
	var rows []eventRow
	if err := db.Find(&rows).Error; err != nil {
		return nil, s.fail("list events", err, msgs{})
	}
	return convert(rows, eventRow.api), nil
}

// Events returns an app's events, newest first, at most limit of them;
// limit <= 0 means all.
func (s *Store) Events(ctx context.Context, appID string, limit int) ([]*api.Event, error) {
	db := s.read.WithContext(ctx).Where("app_id = ?", appID).Order("created_at DESC, seq DESC")
	if limit > 0 {
		db = db.Limit(limit)
	}
	var rows []eventRow
	if err := db.Find(&rows).Error; err != nil {
		return nil, s.fail("list events", err, msgs{})
	}
	return convert(rows, eventRow.api), nil
}
