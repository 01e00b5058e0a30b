package store

import (
	"log/slog"
	"net/url"
	"strings"
	"time"

	"github.com/strata-paas/strata/api"
)

// Database drivers understood by Open.
const (
	DriverSQLite   = "sqlite"
	DriverPostgres = "postgres"
)

// Config says which database Open connects to.
type Config struct {
	// Driver is DriverSQLite or DriverPostgres.
	Driver string
	// DSN is a file path for SQLite (":memory:" for a private in-memory
	// database) or a postgres:// URL for PostgreSQL.
	DSN string
	// Logger receives the store's logs; nil discards them.
	Logger *slog.Logger
	// BusyTimeout is how long an SQLite connection waits for a lock before
	// failing. Zero means 5s.
	BusyTimeout time.Duration
	// MaxReaders caps the SQLite read pool. Zero means 4.
	MaxReaders int
	// Now is the store's clock for timestamps it fills in; nil means time.Now.
	Now func() time.Time
}

// ConfigFromURL turns a database URL into a Config: "sqlite:///abs/path.db",
// "sqlite://rel/path.db", "sqlite::memory:" or a bare file path select
// SQLite; "postgres://…" and "postgresql://…" select PostgreSQL. Anything else
// is an EInvalid *api.Error.
func ConfigFromURL(s string) (Config, error) {
	switch {
	case s == "":
		return Config{}, api.Errorf(api.EInvalid, "database URL is empty — use sqlite:///path/to/strata.db or postgres://user@host/db")
	case strings.HasPrefix(s, "postgres://"), strings.HasPrefix(s, "postgresql://"):
		if _, err := url.Parse(s); err != nil {
			return Config{}, api.Errorf(api.EInvalid, "database URL is not a valid postgres:// URL — check its syntax")
		}
		return Config{Driver: DriverPostgres, DSN: s}, nil
	case strings.HasPrefix(s, "sqlite://"):
		p := strings.TrimPrefix(s, "sqlite://")
		if p == "" {
			return Config{}, api.Errorf(api.EInvalid, "database URL %q has no path — use sqlite:///path/to/strata.db", s)
		}
		return Config{Driver: DriverSQLite, DSN: p}, nil
	case strings.HasPrefix(s, "sqlite:"):
		p := strings.TrimPrefix(s, "sqlite:")
		if p == "" {
			return Config{}, api.Errorf(api.EInvalid, "database URL %q has no path — use sqlite:///path/to/strata.db", s)
		}
		return Config{Driver: DriverSQLite, DSN: p}, nil
	case strings.Contains(s, "://"):
		scheme, _, _ := strings.Cut(s, "://")
		return Config{}, api.Errorf(api.EInvalid, "database URL scheme %q is not supported — use sqlite:///path or postgres://…", truncate(scheme, 20))
	}
	return Config{Driver: DriverSQLite, DSN: s}, nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
