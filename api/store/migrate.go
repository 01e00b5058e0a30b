package store

import (
	"context"
	"embed"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strconv"
	"strings"

	"gorm.io/gorm"

	"github.com/strata-paas/strata/api"
)

//go:embed migrations/sqlite/*.sql migrations/postgres/*.sql
var migrationFiles embed.FS

// migration is one versioned schema change, NNN_name.sql.
type migration struct {
	version int
	name    string
	sql     string
}

// migrationLockKey is the PostgreSQL advisory lock that serialises
// migrations of several controllers starting at once.
const migrationLockKey = 0x5374726174 // "Strat"

// migrations returns the driver's migrations in version order.
func migrations(driver string) ([]migration, error) {
	dir := "migrations/" + driver
	entries, err := fs.ReadDir(migrationFiles, dir)
	if err != nil {
		return nil, err
	}
	var ms []migration
	seen := map[int]string{}
	for _, e := range entries {
		if e.IsDir() || !strings.HasSuffix(e.Name(), ".sql") {
			continue
		}
		num, _, ok := strings.Cut(e.Name(), "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil || v <= 0 {
			return nil, fmt.Errorf("migration %s: name must be NNN_name.sql", e.Name())
		}
		if prev, dup := seen[v]; dup {
			return nil, fmt.Errorf("migrations %s and %s share version %d", prev, e.Name(), v)
		}
		seen[v] = e.Name()
		b, err := migrationFiles.ReadFile(path.Join(dir, e.Name()))
		if err != nil {
			return nil, err
		}
		ms = append(ms, migration{version: v, name: e.Name(), sql: string(b)})
	}
	sort.Slice(ms, func(i, j int) bool { return ms[i].version < ms[j].version })
	return ms, nil
}

// migrate applies every migration not yet recorded in schema_migrations, each
// in its own write transaction together with its record. Restarting is
// idempotent; concurrent starts are serialised (BEGIN IMMEDIATE on SQLite,
// an advisory lock on PostgreSQL).
func (s *Store) migrate(ctx context.Context) error {
	ms, err := migrations(s.driver)
	if err != nil {
		return fmt.Errorf("%w: %w", api.Errorf(api.EInternal, "store migrations are malformed"), err)
	}
	create := `CREATE TABLE IF NOT EXISTS schema_migrations (
		version INTEGER PRIMARY KEY,
		name TEXT NOT NULL,
		applied_at TIMESTAMP NOT NULL)`
	if s.driver == DriverPostgres {
		create = strings.Replace(create, "TIMESTAMP", "TIMESTAMPTZ", 1)
	}
	if err := s.tx(ctx, func(tx *gorm.DB) error {
		if err := s.lockMigrations(tx); err != nil {
			return err
		}
		return tx.Exec(create).Error
	}); err != nil {
		return s.fail("create schema_migrations", err, msgs{})
	}
	for _, m := range ms {
		err := s.tx(ctx, func(tx *gorm.DB) error {
			if err := s.lockMigrations(tx); err != nil {
				return err
			}
			var n int64
			if err := tx.Table("schema_migrations").Where("version = ?", m.version).Count(&n).Error; err != nil {
				return err
			}
			if n > 0 {
				return nil
			}
			if err := tx.Exec(m.sql).Error; err != nil {
				return err
			}
			s.log.Info("store migration applied", "version", m.version, "name", m.name)
			return tx.Exec("INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)",
				m.version, m.name, s.stamp(s.now())).Error
		})
		if err != nil {
			return s.fail("apply migration "+m.name, err, msgs{})
		}
	}
	return nil
}

func (s *Store) lockMigrations(tx *gorm.DB) error {
	if s.driver != DriverPostgres {
		return nil
	}
	return tx.Exec("SELECT pg_advisory_xact_lock(?)", migrationLockKey).Error
}
