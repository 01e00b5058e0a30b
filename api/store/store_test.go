package store_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/glebarez/sqlite"
	"github.com/google/uuid"
	"gorm.io/driver/postgres"
	"gorm.io/gorm"
	gormlogger "gorm.io/gorm/logger"

	"github.com/strata-paas/strata/api"
	"github.com/strata-paas/strata/api/controller"
	"github.com/strata-paas/strata/api/store"
	"github.com/strata-paas/strata/api/store/storetest"
)

var _ controller.Store = (*store.Store)(nil)

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

func openSQLite(t *testing.T) *store.Store {
	t.Helper()
	s, err := store.Open(context.Background(), store.Config{
		Driver: store.DriverSQLite,
		DSN:    filepath.Join(t.TempDir(), "strata.db"),
		Logger: testLogger(t),
	})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestSQLiteConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) controller.Store { return openSQLite(t) })
}

func TestSQLiteMemoryConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) controller.Store {
		s, err := store.Open(context.Background(), store.Config{Driver: store.DriverSQLite, DSN: ":memory:", Logger: testLogger(t)})
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	})
}

// postgresDSN returns STRATA_TEST_POSTGRES, or skips (fails when
// STRATA_REQUIRE names postgres).
func postgresDSN(t *testing.T) string {
	dsn := os.Getenv("STRATA_TEST_POSTGRES")
	if dsn != "" {
		return dsn
	}
	for _, r := range strings.Split(os.Getenv("STRATA_REQUIRE"), ",") {
		if strings.TrimSpace(r) == "postgres" {
			t.Fatal("STRATA_REQUIRE contains postgres but STRATA_TEST_POSTGRES is unset — set it to a postgres:// URL of a database the test may create schemas in")
		}
	}
	t.Skip("STRATA_TEST_POSTGRES is unset — set it to a postgres:// URL to run the PostgreSQL conformance suite")
	return ""
}

// openPostgres opens a store in a fresh schema of the STRATA_TEST_POSTGRES
// database and drops the schema when the test ends.
func openPostgres(t *testing.T, dsn string) *store.Store {
	t.Helper()
	return openPostgresAt(t, freshSchema(t, dsn))
}

// freshSchema makes a schema in the STRATA_TEST_POSTGRES database, dropped
// when the test ends, and returns the DSN that uses it.
func freshSchema(t *testing.T, dsn string) string {
	t.Helper()
	schema := "strata_test_" + strings.ReplaceAll(uuid.NewString(), "-", "")
	admin, err := gorm.Open(postgres.Open(dsn), &gorm.Config{Logger: gormlogger.Discard})
	if err != nil {
		t.Fatalf("connect to STRATA_TEST_POSTGRES: %v", err)
	}
	adminDB, _ := admin.DB()
	t.Cleanup(func() { adminDB.Close() })
	if err := admin.Exec("CREATE SCHEMA " + schema).Error; err != nil {
		t.Fatalf("create schema: %v", err)
	}
	t.Cleanup(func() {
		if err := admin.Exec("DROP SCHEMA " + schema + " CASCADE").Error; err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
		}
	})
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatalf("STRATA_TEST_POSTGRES is not a URL: %v", err)
	}
	qv := u.Query()
	qv.Set("search_path", schema)
	u.RawQuery = qv.Encode()
	return u.String()
}

// openPostgresAt opens a store on dsn, closed when the test ends.
func openPostgresAt(t *testing.T, dsn string) *store.Store {
	t.Helper()
	s, err := store.Open(context.Background(), store.Config{Driver: store.DriverPostgres, DSN: dsn, Logger: testLogger(t)})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestPostgresConformance(t *testing.T) {
	dsn := postgresDSN(t)
	storetest.Run(t, func(t *testing.T) controller.Store { return openPostgres(t, dsn) })
}

// TestReopenIsIdempotent opens the same database twice: the second Open
// must find every migration applied and keep the data.
func TestReopenIsIdempotent(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "strata.db")
	cfg := store.Config{Driver: store.DriverSQLite, DSN: path, Logger: testLogger(t)}
	for i := range 3 {
		s, err := store.Open(ctx, cfg)
		if err != nil {
			t.Fatalf("Open %d: %v", i, err)
		}
		if i == 0 {
			if err := s.CreateOrg(ctx, &api.Org{ID: uuid.NewString(), Name: "kept"}); err != nil {
				t.Fatalf("CreateOrg: %v", err)
			}
		}
		if _, err := s.OrgByName(ctx, "kept"); err != nil {
			t.Fatalf("Open %d lost data: %v", i, err)
		}
		if err := s.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
	}
	// Exactly one row per migration.
	db, err := gorm.Open(sqlite.Open(path), &gorm.Config{Logger: gormlogger.Discard})
	if err != nil {
		t.Fatal(err)
	}
	sqlDB, _ := db.DB()
	defer sqlDB.Close()
	var versions []int
	if err := db.Raw("SELECT version FROM schema_migrations ORDER BY version").Scan(&versions).Error; err != nil {
		t.Fatalf("read schema_migrations: %v", err)
	}
	files, err := filepath.Glob(filepath.Join("migrations", "sqlite", "*.sql"))
	if err != nil {
		t.Fatal(err)
	}
	// Versions are the NNN prefixes of the files; gaps are allowed (work on
	// two migrations may land in either order).
	want := make([]int, len(files))
	for i, f := range files {
		if _, err := fmt.Sscanf(filepath.Base(f), "%03d_", &want[i]); err != nil {
			t.Fatalf("migration file %s: %v", f, err)
		}
	}
	if fmt.Sprint(versions) != fmt.Sprint(want) {
		t.Fatalf("schema_migrations: got %v, want %v (one row per migration file)", versions, want)
	}
}

func TestOpenErrors(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	tests := []struct {
		name string
		cfg  store.Config
		want string
	}{
		{"unknown driver", store.Config{Driver: "mysql", DSN: "x"}, api.EInvalid},
		{"empty sqlite path", store.Config{Driver: store.DriverSQLite}, api.EInvalid},
		{"sqlite path with query", store.Config{Driver: store.DriverSQLite, DSN: filepath.Join(dir, "a.db?_txlock=deferred")}, api.EInvalid},
		{"sqlite in missing dir", store.Config{Driver: store.DriverSQLite, DSN: filepath.Join(dir, "no", "such", "a.db")}, api.EUnavailable},
		{"empty postgres dsn", store.Config{Driver: store.DriverPostgres}, api.EInvalid},
		{"postgres refused", store.Config{Driver: store.DriverPostgres, DSN: "postgres://nobody@127.0.0.1:1/none?sslmode=disable&connect_timeout=2"}, api.EUnavailable},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.cfg.Logger = testLogger(t)
			s, err := store.Open(ctx, tc.cfg)
			if err == nil {
				s.Close()
			}
			if got := api.ErrorCode(err); got != tc.want {
				t.Fatalf("Open: got code %q (%v), want %q", got, err, tc.want)
			}
		})
	}
}

func TestConfigFromURL(t *testing.T) {
	tests := []struct {
		in         string
		driver     string
		dsn        string
		wantErrStr string
	}{
		{"sqlite:///var/lib/strata/db", store.DriverSQLite, "/var/lib/strata/db", ""},
		{"sqlite://rel/db", store.DriverSQLite, "rel/db", ""},
		{"sqlite::memory:", store.DriverSQLite, ":memory:", ""},
		{"/data/strata.db", store.DriverSQLite, "/data/strata.db", ""},
		{"strata.db", store.DriverSQLite, "strata.db", ""},
		{"postgres://u:p@h/db?sslmode=disable", store.DriverPostgres, "postgres://u:p@h/db?sslmode=disable", ""},
		{"postgresql://h/db", store.DriverPostgres, "postgresql://h/db", ""},
		{"", "", "", api.EInvalid},
		{"sqlite://", "", "", api.EInvalid},
		{"mysql://u:secret@h/db", "", "", api.EInvalid},
	}
	for _, tc := range tests {
		cfg, err := store.ConfigFromURL(tc.in)
		if got := api.ErrorCode(err); got != tc.wantErrStr {
			t.Fatalf("ConfigFromURL(%q): got code %q (%v), want %q", tc.in, got, err, tc.wantErrStr)
		}
		if cfg.Driver != tc.driver || cfg.DSN != tc.dsn {
			t.Fatalf("ConfigFromURL(%q): got %q %q, want %q %q", tc.in, cfg.Driver, cfg.DSN, tc.driver, tc.dsn)
		}
		if err != nil && strings.Contains(err.Error(), "secret") {
			t.Fatalf("ConfigFromURL(%q) leaked the password: %v", tc.in, err)
		}
	}
}

func FuzzConfigFromURL(f *testing.F) {
	for _, s := range []string{"sqlite:///a", "postgres://u:p@h/d", "x://y", "", "sqlite:"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		cfg, err := store.ConfigFromURL(s)
		if err != nil {
			if api.ErrorCode(err) != api.EInvalid {
				t.Fatalf("ConfigFromURL(%q): code %q", s, api.ErrorCode(err))
			}
			return
		}
		if cfg.Driver != store.DriverSQLite && cfg.Driver != store.DriverPostgres {
			t.Fatalf("ConfigFromURL(%q): driver %q", s, cfg.Driver)
		}
		if cfg.DSN == "" {
			t.Fatalf("ConfigFromURL(%q): empty DSN", s)
		}
	})
}

// TestPostgresAppLockAcrossStores: two Stores on one database (two
// controllers) share the app locks, and a Store that closes frees its own.
func TestPostgresAppLockAcrossStores(t *testing.T) {
	dsn := postgresDSN(t)
	schema := freshSchema(t, dsn)
	first, second := openPostgresAt(t, schema), openPostgresAt(t, schema)
	ctx := context.Background()
	app := uuid.NewString()
	if _, err := first.LockApp(ctx, app); err != nil {
		t.Fatal(err)
	}
	short, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancel()
	if _, err := second.LockApp(short, app); api.ErrorCode(err) != api.ETimeout {
		t.Fatalf("second store's lock while the first holds it: %v, want timeout", err)
	}
	got := make(chan error, 1)
	go func() {
		unlock, err := second.LockApp(ctx, app)
		if err == nil {
			unlock()
		}
		got <- err
	}()
	first.Close() // its session ends, and its lock with it
	select {
	case err := <-got:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the lock of a closed store was not freed")
	}
}
