package store

import (
	"context"
	"time"

	"gorm.io/gorm"

	"github.com/strata-paas/strata/api"
)

type buildpackRow struct {
	Name      string
	Position  int
	Blob      string
	UpdatedAt time.Time
}

func (buildpackRow) TableName() string { return "buildpacks" }

// ListBuildpacks returns the registered buildpacks in detection order.
func (s *Store) ListBuildpacks(ctx context.Context) ([]api.BuildpackInfo, error) {
	var rows []buildpackRow
	if err := s.read.WithContext(ctx).Order("position, name").Find(&rows).Error; err != nil {
		return nil, s.fail("list buildpacks", err, msgs{})
	}
	out := make([]api.BuildpackInfo, 0, len(rows))
	for _, r := range rows {
		out = append(out, api.BuildpackInfo{Name: r.Name, Position: r.Position, Blob: api.BlobRef(r.Blob), UpdatedAt: r.UpdatedAt.UTC()})
	}
	return out, nil
}

// PutBuildpack stores a buildpack at position (1 first; 0 or past the end:
// last), moving the others to keep positions 1…n. With create an existing
// name is EConflict; without, a missing one is ENotFound.
func (s *Store) PutBuildpack(ctx context.Context, b api.BuildpackInfo, create bool) (*api.BuildpackInfo, error) {
	var out api.BuildpackInfo
	err := s.tx(ctx, func(tx *gorm.DB) error {
		var rows []buildpackRow
		if err := tx.Order("position, name").Find(&rows).Error; err != nil {
			return err
		}
		var others []buildpackRow
		var old *buildpackRow
		for i := range rows {
			if rows[i].Name == b.Name {
				old = &rows[i]
				continue
			}
			others = append(others, rows[i])
		}
		switch {
		case create && old != nil:
			return api.Errorf(api.EConflict, "buildpack %s exists — update it with strata buildpacks update", b.Name)
		case !create && old == nil:
			return api.Errorf(api.ENotFound, "buildpack %s not found — see strata buildpacks", b.Name)
		}
		pos := b.Position
		if pos <= 0 && old != nil {
			pos = old.Position
		}
		if pos <= 0 || pos > len(others)+1 {
			pos = len(others) + 1
		}
		me := buildpackRow{Name: b.Name, Blob: string(b.Blob), UpdatedAt: s.stamp(time.Time{})}
		ordered := append(append(append([]buildpackRow{}, others[:pos-1]...), me), others[pos-1:]...)
		if err := tx.Where("1 = 1").Delete(&buildpackRow{}).Error; err != nil {
			return err
		}
		for i := range ordered {
			ordered[i].Position = i + 1
			if err := tx.Create(&ordered[i]).Error; err != nil {
				return err
			}
		}
		out = api.BuildpackInfo{Name: me.Name, Position: pos, Blob: b.Blob, UpdatedAt: me.UpdatedAt}
		return nil
	})
	if err != nil {
		return nil, s.fail("put buildpack", err, msgs{})
	}
	return &out, nil
}

// DeleteBuildpack deletes a buildpack and closes the gap in positions;
// ENotFound if absent.
func (s *Store) DeleteBuildpack(ctx context.Context, name string) error {
	err := s.tx(ctx, func(tx *gorm.DB) error {
		var row buildpackRow
		if err := tx.Where("name = ?", name).Take(&row).Error; err != nil {
			return err
		}
		if err := tx.Where("name = ?", name).Delete(&buildpackRow{}).Error; err != nil {
			return err
		}
		return tx.Model(&buildpackRow{}).Where("position > ?", row.Position).Update("position", gorm.Expr("position - 1")).Error
	})
	return s.fail("delete buildpack", err, msgs{notFound: "buildpack " + q(name) + " not found — see strata buildpacks"})
}
