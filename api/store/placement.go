package store

import (
	"context"
	"encoding/json"
	"time"

	"gorm.io/gorm/clause"

	"github.com/strata-paas/strata/api"
)

// placementRow mirrors the placements table of 003_placement.sql.
type placementRow struct {
	Scope     string
	OwnerID   string
	Substrate string
	Isolation string
	Labels    string
	UpdatedAt time.Time
}

func (placementRow) TableName() string { return "placements" }

func (r placementRow) api() (api.Placement, error) {
	pl := api.Placement{Scope: api.PlacementScope(r.Scope), OwnerID: r.OwnerID, Policy: api.PlacementPolicy{
		Substrate: api.Substrate(r.Substrate), Isolation: api.Isolation(r.Isolation),
	}}
	var labels map[string]string
	if err := json.Unmarshal([]byte(r.Labels), &labels); err != nil {
		return pl, err
	}
	if len(labels) > 0 {
		pl.Policy.Labels = labels
	}
	return pl, nil
}

type nodeDrainRow struct {
	NodeID    string
	CreatedAt time.Time
}

func (nodeDrainRow) TableName() string { return "node_drains" }

// SetPlacement stores the policy of one org, space or app, replacing any
// it had; a zero policy deletes it. EInvalid for an unknown scope or an
// empty owner.
func (s *Store) SetPlacement(ctx context.Context, pl api.Placement) error {
	switch pl.Scope {
	case api.PlacementOrg, api.PlacementSpace, api.PlacementApp:
	default:
		return api.Errorf(api.EInvalid, "placement scope %s is not org, space or app", q(string(pl.Scope)))
	}
	if err := needID("placement owner", pl.OwnerID); err != nil {
		return err
	}
	db := s.write.WithContext(ctx)
	if pl.Policy.IsZero() {
		err := db.Where("scope = ? AND owner_id = ?", pl.Scope, pl.OwnerID).Delete(&placementRow{}).Error
		return s.fail("clear placement", err, msgs{})
	}
	labels, err := jsonMap(pl.Policy.Labels)
	if err != nil {
		return s.fail("set placement", err, msgs{})
	}
	row := placementRow{
		Scope: string(pl.Scope), OwnerID: pl.OwnerID, Substrate: string(pl.Policy.Substrate),
		Isolation: string(pl.Policy.Isolation), Labels: labels, UpdatedAt: s.stamp(time.Time{}),
	}
	err = db.Clauses(clause.OnConflict{
		Columns:   []clause.Column{{Name: "scope"}, {Name: "owner_id"}},
		DoUpdates: clause.AssignmentColumns([]string{"substrate", "isolation", "labels", "updated_at"}),
	}).Create(&row).Error
	return s.fail("set placement", err, msgs{})
}

// Placements returns every stored policy ordered by scope and owner.
func (s *Store) Placements(ctx context.Context) ([]api.Placement, error) {
	var rows []placementRow
	if err := s.read.WithContext(ctx).Order("scope, owner_id").Find(&rows).Error; err != nil {
		return nil, s.fail("list placements", err, msgs{})
	}
	out := make([]api.Placement, 0, len(rows))
	for _, r := range rows {
		pl, err := r.api()
		if err != nil {
			return nil, s.fail("decode placement", err, msgs{})
		}
		out = append(out, pl)
	}
	return out, nil
}

// ListSpaces returns the spaces of an org ordered by name.
func (s *Store) ListSpaces(ctx context.Context, orgID string) ([]*api.Space, error) {
	var rows []spaceRow
	if err := s.read.WithContext(ctx).Where("org_id = ?", orgID).Order("name").Find(&rows).Error; err != nil {
		return nil, s.fail("list spaces", err, msgs{})
	}
	return convert(rows, spaceRow.api), nil
}

// SetNodeDrain records that a node is draining (or deletes the record).
// Idempotent both ways. EInvalid for an empty node ID.
func (s *Store) SetNodeDrain(ctx context.Context, nodeID string, draining bool) error {
	if err := needID("node", nodeID); err != nil {
		return err
	}
	db := s.write.WithContext(ctx)
	var err error
	if draining {
		err = db.Clauses(clause.OnConflict{DoNothing: true}).Create(&nodeDrainRow{NodeID: nodeID, CreatedAt: s.stamp(time.Time{})}).Error
	} else {
		err = db.Where("node_id = ?", nodeID).Delete(&nodeDrainRow{}).Error
	}
	return s.fail("set node drain", err, msgs{})
}

// DrainingNodes returns the IDs of draining nodes, sorted.
func (s *Store) DrainingNodes(ctx context.Context) ([]string, error) {
	var ids []string
	err := s.read.WithContext(ctx).Model(&nodeDrainRow{}).Order("node_id").Pluck("node_id", &ids).Error
	if err != nil {
		return nil, s.fail("list draining nodes", err, msgs{})
	}
	return ids, nil
}
