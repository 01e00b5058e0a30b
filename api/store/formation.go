package store

import (
	"context"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"github.com/strata-paas/strata/api"
)

// Processes returns the formation of an app ordered by process type.
func (s *Store) Processes(ctx context.Context, appID string) ([]api.Process, error) {
	var rows []processRow
	if err := s.read.WithContext(ctx).Where("app_id = ?", appID).Order("type").Find(&rows).Error; err != nil {
		return nil, s.fail("list processes", err, msgs{})
	}
	return convert(rows, processRow.api), nil
}

// SetProcess creates or replaces the formation of one process type. The
// health check fields are stored only when the row is created (see
// SetHealthCheck). ENotFound if the app does not exist, EInvalid for an
// empty type or negative numbers.
func (s *Store) SetProcess(ctx context.Context, p api.Process) error {
	if p.Type == "" {
		return api.Errorf(api.EInvalid, "process type is empty — use a type such as \"web\"")
	}
	if p.Instances < 0 || p.MemoryMB < 0 || p.DiskMB < 0 || p.ScaleToZero < 0 {
		return api.Errorf(api.EInvalid, "process %s: instances, memory, disk and scale-to-zero must not be negative", q(p.Type))
	}
	row := processRow{AppID: p.AppID, Type: p.Type, Instances: p.Instances, MemoryMB: p.MemoryMB, DiskMB: p.DiskMB,
		HealthCheckType: p.HealthCheck, HealthCheckPath: p.HealthCheckPath, HealthCheckTimeout: p.HealthCheckTimeout,
		HealthCheckInterval: p.HealthCheckInterval, ScaleToZero: p.ScaleToZero}
	err := s.write.WithContext(ctx).Clauses(clause.OnConflict{
		Columns:   []clause.Column{{Name: "app_id"}, {Name: "type"}},
		DoUpdates: clause.AssignmentColumns([]string{"instances", "memory_mb", "disk_mb", "scale_to_zero"}),
	}).Create(&row).Error
	return s.fail("set process", err, appNotFound(p.AppID))
}

// SetSleeping marks an existing process type as sleeping (its instances
// stopped while the app is idle, scale to zero) or awake. SetProcess never
// changes it. ENotFound if the app has no such type.
func (s *Store) SetSleeping(ctx context.Context, appID, typ string, sleeping bool) error {
	res := s.write.WithContext(ctx).Model(&processRow{}).Where("app_id = ? AND type = ?", appID, typ).Update("sleeping", sleeping)
	if res.Error != nil {
		return s.fail("set sleeping", res.Error, msgs{})
	}
	if res.RowsAffected == 0 {
		return api.Errorf(api.ENotFound, "app %s has no process type %s", q(appID), q(typ))
	}
	return nil
}

// SetHealthCheck saves HealthCheck, HealthCheckPath, HealthCheckTimeout and
// HealthCheckInterval of an existing process type. ENotFound if the app has
// no such type, EInvalid for a negative timeout or interval.
func (s *Store) SetHealthCheck(ctx context.Context, p api.Process) error {
	if p.HealthCheckTimeout < 0 || p.HealthCheckInterval < 0 {
		return api.Errorf(api.EInvalid, "process %s: the health check timeout and interval must not be negative", q(p.Type))
	}
	res := s.write.WithContext(ctx).Model(&processRow{}).Where("app_id = ? AND type = ?", p.AppID, p.Type).Updates(map[string]any{
		"health_check_type":     p.HealthCheck,
		"health_check_path":     p.HealthCheckPath,
		"health_check_timeout":  p.HealthCheckTimeout,
		"health_check_interval": p.HealthCheckInterval,
	})
	if res.Error != nil {
		return s.fail("set health check", res.Error, msgs{})
	}
	if res.RowsAffected == 0 {
		return api.Errorf(api.ENotFound, "app %s has no process type %s", q(p.AppID), q(p.Type))
	}
	return nil
}

// CreateInstance stores in, filling CreatedAt and UpdatedAt when zero.
// ENotFound if the app does not exist, EConflict if the id is taken.
func (s *Store) CreateInstance(ctx context.Context, in *api.Instance) error {
	if err := needID("instance", in.ID); err != nil {
		return err
	}
	in.CreatedAt = s.stamp(in.CreatedAt)
	if in.UpdatedAt.IsZero() {
		in.UpdatedAt = in.CreatedAt
	}
	in.UpdatedAt = norm(in.UpdatedAt)
	if !in.StartedAt.IsZero() {
		in.StartedAt = norm(in.StartedAt)
	}
	row := toInstanceRow(in)
	return s.create(ctx, "create instance", &row, msgs{
		conflict: "instance " + q(in.ID) + " already exists",
		missing:  "app " + q(in.AppID) + " not found",
	})
}

// Instance returns the instance with id, or ENotFound.
func (s *Store) Instance(ctx context.Context, id string) (*api.Instance, error) {
	var row instanceRow
	if err := s.first(ctx, "find instance", &row, instanceNotFound(id), "id = ?", id); err != nil {
		return nil, err
	}
	return row.api(), nil
}

// Instances returns an app's instances ordered by process type and index.
func (s *Store) Instances(ctx context.Context, appID string) ([]*api.Instance, error) {
	return s.listInstances(s.read.WithContext(ctx).Where("app_id = ?", appID))
}

// AllInstances returns every instance ordered by app, process type and index.
func (s *Store) AllInstances(ctx context.Context) ([]*api.Instance, error) {
	return s.listInstances(s.read.WithContext(ctx))
}

func (s *Store) listInstances(db *gorm.DB) ([]*api.Instance, error) {
	var rows []instanceRow
	if err := db.Order("app_id, process, instance_index, created_at, id").Find(&rows).Error; err != nil {
		return nil, s.fail("list instances", err, msgs{})
	}
	return convert(rows, instanceRow.api), nil
}

// UpdateInstance saves NodeID, State, Port, Reason, Restarts, StartedAt and
// UpdatedAt of in. UpdatedAt is set to the store's clock when zero or
// unchanged from the stored row, and written back into in. ENotFound if the
// instance does not exist.
func (s *Store) UpdateInstance(ctx context.Context, in *api.Instance) error {
	err := s.tx(ctx, func(tx *gorm.DB) error {
		var old instanceRow
		if err := s.firstTx(tx, "update instance", &old, instanceNotFound(in.ID), "id = ?", in.ID); err != nil {
			return err
		}
		in.UpdatedAt = s.touched(in.UpdatedAt, old.UpdatedAt)
		if !in.StartedAt.IsZero() {
			in.StartedAt = norm(in.StartedAt)
		}
		return tx.Model(&instanceRow{}).Where("id = ?", in.ID).Updates(map[string]any{
			"node_id":    in.NodeID,
			"state":      string(in.State),
			"port":       in.Port,
			"reason":     in.Reason,
			"restarts":   in.Restarts,
			"started_at": nullTime(in.StartedAt),
			"updated_at": in.UpdatedAt,
		}).Error
	})
	return s.fail("update instance", err, msgs{})
}

// DeleteInstance deletes the instance with id. ENotFound if it does not
// exist.
func (s *Store) DeleteInstance(ctx context.Context, id string) error {
	return s.deleteByID(ctx, "delete instance", &instanceRow{}, id, instanceNotFound(id))
}

func instanceNotFound(id string) msgs { return msgs{notFound: "instance " + q(id) + " not found"} }

// deleteByID deletes the row of model's table with id; ENotFound if none.
func (s *Store) deleteByID(ctx context.Context, op string, model any, id string, m msgs) error {
	err := s.writeDB(ctx, func(db *gorm.DB) error {
		res := db.Where("id = ?", id).Delete(model)
		if res.Error == nil && res.RowsAffected == 0 {
			return gorm.ErrRecordNotFound
		}
		return res.Error
	})
	return s.fail(op, err, m)
}
