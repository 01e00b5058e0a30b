package store

import (
	"context"
	"time"

	"gorm.io/gorm/clause"

	"github.com/strata-paas/strata/api"
)

type quotaRow struct {
	Scope     string
	OwnerID   string
	MemoryMB  int `gorm:"column:memory_mb"`
	Instances int
	Apps      int
	Routes    int
	UpdatedAt time.Time
}

func (quotaRow) TableName() string { return "quotas" }

// SetQuota stores the quota of an org or space, replacing it; a zero quota
// deletes it.
func (s *Store) SetQuota(ctx context.Context, q api.StoredQuota) error {
	if q.Quota.IsZero() {
		return s.fail("delete quota", s.write.WithContext(ctx).Where("scope = ? AND owner_id = ?", string(q.Scope), q.OwnerID).Delete(&quotaRow{}).Error, msgs{})
	}
	row := quotaRow{Scope: string(q.Scope), OwnerID: q.OwnerID, MemoryMB: q.Quota.MemoryMB, Instances: q.Quota.Instances,
		Apps: q.Quota.Apps, Routes: q.Quota.Routes, UpdatedAt: s.stamp(time.Time{})}
	err := s.write.WithContext(ctx).Clauses(clause.OnConflict{
		Columns:   []clause.Column{{Name: "scope"}, {Name: "owner_id"}},
		DoUpdates: clause.AssignmentColumns([]string{"memory_mb", "instances", "apps", "routes", "updated_at"}),
	}).Create(&row).Error
	return s.fail("set quota", err, msgs{})
}

// Quotas returns every stored quota.
func (s *Store) Quotas(ctx context.Context) ([]api.StoredQuota, error) {
	var rows []quotaRow
	if err := s.read.WithContext(ctx).Order("scope, owner_id").Find(&rows).Error; err != nil {
		return nil, s.fail("list quotas", err, msgs{})
	}
	out := make([]api.StoredQuota, 0, len(rows))
	for _, r := range rows {
		out = append(out, api.StoredQuota{Scope: api.QuotaScope(r.Scope), OwnerID: r.OwnerID,
			Quota: api.Quota{MemoryMB: r.MemoryMB, Instances: r.Instances, Apps: r.Apps, Routes: r.Routes}})
	}
	return out, nil
}
