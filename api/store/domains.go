package store

import (
	"context"
	"time"
)

type domainRow struct {
	Name      string
	OrgID     string
	CreatedAt time.Time
}

func (domainRow) TableName() string { return "domains" }

// CreateDomain stores a domain (orgID "" = shared); EConflict if it exists.
func (s *Store) CreateDomain(ctx context.Context, name, orgID string) error {
	row := domainRow{Name: name, OrgID: orgID, CreatedAt: s.stamp(time.Time{})}
	return s.create(ctx, "create domain", &row, msgs{conflict: "domain " + q(name) + " is already registered — see strata domains"})
}

// Domains returns every domain: name → org id ("" = shared).
func (s *Store) Domains(ctx context.Context) (map[string]string, error) {
	var rows []domainRow
	if err := s.read.WithContext(ctx).Find(&rows).Error; err != nil {
		return nil, s.fail("list domains", err, msgs{})
	}
	out := make(map[string]string, len(rows))
	for _, r := range rows {
		out[r.Name] = r.OrgID
	}
	return out, nil
}

// DeleteDomain deletes a domain; ENotFound if absent.
func (s *Store) DeleteDomain(ctx context.Context, name string) error {
	return s.deleteWhere(ctx, "delete domain", &domainRow{}, msgs{notFound: "domain " + q(name) + " not found — see strata domains"}, "name = ?", name)
}
