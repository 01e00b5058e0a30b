package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/glebarez/sqlite"
	"gorm.io/driver/postgres"
	"gorm.io/gorm"
	gormlogger "gorm.io/gorm/logger"

	"github.com/strata-paas/strata/api"
)

// Store is the Strata database on SQLite or PostgreSQL. It is safe for
// concurrent use. Every method returns *api.Error codes (wrapped with the
// driver error): ENotFound for a missing row, EConflict for a unique clash,
// EUnavailable when the database cannot be reached, ETimeout when ctx ends.
type Store struct {
	read   *gorm.DB // queries outside transactions
	write  *gorm.DB // inserts, updates and every transaction
	driver string
	log    *slog.Logger
	now    func() time.Time

	appLocks  sync.Map // SQLite's app locks: app id → chan struct{} (applock.go)
	lockMu    sync.Mutex
	held      map[*sql.Conn]struct{} // PostgreSQL's connections holding app locks
	nextSweep time.Time              // of expired idempotency keys (idempotency.go)
}

// Open connects to the database in cfg, applies pending migrations and
// returns the Store. It returns EInvalid for a bad Config and EUnavailable
// when the database cannot be reached.
func Open(ctx context.Context, cfg Config) (*Store, error) {
	s := &Store{driver: cfg.Driver, log: cfg.Logger, now: cfg.Now}
	if s.log == nil {
		s.log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if s.now == nil {
		s.now = time.Now
	}
	gcfg := &gorm.Config{
		SkipDefaultTransaction: true,
		Logger: quietErrors{gormlogger.NewSlogLogger(s.log, gormlogger.Config{
			SlowThreshold:             time.Second,
			LogLevel:                  gormlogger.Warn,
			IgnoreRecordNotFoundError: true,
		})},
	}
	var err error
	switch cfg.Driver {
	case DriverSQLite:
		err = s.openSQLite(cfg, gcfg)
	case DriverPostgres:
		err = s.openPostgres(cfg, gcfg)
	default:
		return nil, api.Errorf(api.EInvalid, "database driver %q is not supported — use %q or %q", truncate(cfg.Driver, 20), DriverSQLite, DriverPostgres)
	}
	if err != nil {
		return nil, err
	}
	if err := s.Ping(ctx); err != nil {
		s.Close()
		return nil, err
	}
	if err := s.migrate(ctx); err != nil {
		s.Close()
		return nil, err
	}
	s.log.Debug("store opened", "driver", cfg.Driver)
	return s, nil
}

// openSQLite opens two handles on one file: a single-connection writer whose
// transactions start with BEGIN IMMEDIATE, and a read-only pool. WAL lets the
// readers run while the writer writes.
func (s *Store) openSQLite(cfg Config, gcfg *gorm.Config) error {
	path := cfg.DSN
	if path == "" {
		return api.Errorf(api.EInvalid, "sqlite database path is empty — give a file path such as /var/lib/strata/strata.db")
	}
	if strings.ContainsAny(path, "?#") || strings.HasPrefix(path, "file:") {
		return api.Errorf(api.EInvalid, "sqlite database path %q must be a plain file path without '?', '#' or file: — rename the path", truncate(path, 60))
	}
	busy := cfg.BusyTimeout
	if busy <= 0 {
		busy = 5 * time.Second
	}
	common := url.Values{}
	common.Add("_pragma", fmt.Sprintf("busy_timeout(%d)", busy.Milliseconds()))
	common.Add("_pragma", "foreign_keys(1)")
	common.Add("_pragma", "synchronous(NORMAL)")
	// Do not add _time_format: glebarez/go-sqlite v1.21 stops reading
	// parameters after it, which would silently drop _txlock.
	w := url.Values{}
	for k, v := range common {
		w[k] = append([]string(nil), v...)
	}
	if path != ":memory:" {
		w.Add("_pragma", "journal_mode(WAL)")
	}
	w.Set("_txlock", "immediate")

	var err error
	s.write, err = gorm.Open(sqlite.Open(path+"?"+w.Encode()), gcfg)
	if err != nil {
		return s.unreachable("open database", err)
	}
	wdb, err := s.write.DB()
	if err != nil {
		return s.fail("open database", err, msgs{})
	}
	wdb.SetMaxOpenConns(1)
	wdb.SetMaxIdleConns(1)
	wdb.SetConnMaxLifetime(0)
	wdb.SetConnMaxIdleTime(0)

	if path == ":memory:" {
		// A private in-memory database exists only on its one connection.
		s.read = s.write
		return nil
	}
	r := common
	r.Add("_pragma", "query_only(1)")
	s.read, err = gorm.Open(sqlite.Open(path+"?"+r.Encode()), gcfg)
	if err != nil {
		wdb.Close()
		return s.unreachable("open database", err)
	}
	rdb, err := s.read.DB()
	if err != nil {
		wdb.Close()
		return s.fail("open database", err, msgs{})
	}
	n := cfg.MaxReaders
	if n <= 0 {
		n = 4
	}
	rdb.SetMaxOpenConns(n)
	rdb.SetMaxIdleConns(n)
	return nil
}

func (s *Store) openPostgres(cfg Config, gcfg *gorm.Config) error {
	if cfg.DSN == "" {
		return api.Errorf(api.EInvalid, "postgres DSN is empty — give a URL such as postgres://strata@localhost/strata")
	}
	db, err := gorm.Open(postgres.Open(cfg.DSN), gcfg)
	if err != nil {
		return s.unreachable("open database", err)
	}
	s.read, s.write = db, db
	return nil
}

// Ping checks that the database answers; EUnavailable if it does not.
func (s *Store) Ping(ctx context.Context) error {
	for _, g := range s.handles() {
		db, err := g.DB()
		if err != nil {
			return s.fail("ping database", err, msgs{})
		}
		if err := db.PingContext(ctx); err != nil {
			return s.unreachable("ping database", err)
		}
	}
	return nil
}

// unreachable reports a failure to connect: EUnavailable unless the context
// ended first.
func (s *Store) unreachable(op string, err error) error {
	if classify(err) == kindTimeout {
		return s.fail(op, err, msgs{})
	}
	s.log.Warn("database unavailable", "op", op, "err", err)
	return fmt.Errorf("%w: %w", api.Errorf(api.EUnavailable, "%s: cannot reach the database — check the database URL and that the server is running", op), err)
}

// Close closes the database handles.
func (s *Store) Close() error {
	s.dropLocks()
	var errs []error
	for _, g := range s.handles() {
		db, err := g.DB()
		if err == nil {
			err = db.Close()
		}
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

func (s *Store) handles() []*gorm.DB {
	var hs []*gorm.DB
	if s.write != nil {
		hs = append(hs, s.write)
	}
	if s.read != nil && s.read != s.write {
		hs = append(hs, s.read)
	}
	return hs
}

// stamp returns t normalised for storage (UTC, microseconds: the precision
// both databases keep), or the store's clock if t is zero.
func (s *Store) stamp(t time.Time) time.Time {
	if t.IsZero() {
		t = s.now()
	}
	return norm(t)
}

func norm(t time.Time) time.Time { return t.UTC().Truncate(time.Microsecond) }

// tx runs fn in one write transaction (BEGIN IMMEDIATE on SQLite), after
// checking the lease fence ctx may carry (lease.go).
func (s *Store) tx(ctx context.Context, fn func(tx *gorm.DB) error) error {
	return s.write.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if err := s.checkFence(ctx, tx); err != nil {
			return err
		}
		return fn(tx)
	})
}
