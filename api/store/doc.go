// Package store is Strata's persistence: it implements controller.Store on
// SQLite (microcloud) and PostgreSQL (cluster) with gorm, which no other
// package imports.
//
// # Opening
//
//	cfg, err := store.ConfigFromURL("sqlite:///var/lib/strata/strata.db") // or postgres://…
//	cfg.Logger = logger
//	s, err := store.Open(ctx, cfg)
//	defer s.Close()
//
// Open applies the embedded migrations before it returns.
//
// # Schema and migrations
//
// The schema is plain SQL in migrations/sqlite/NNN_name.sql and
// migrations/postgres/NNN_name.sql, embedded in the binary. Open applies
// every file whose version is not yet in schema_migrations, in version
// order, each in one transaction together with its schema_migrations row,
// so a restart is idempotent and a failed migration leaves no trace. On
// PostgreSQL an advisory lock serialises controllers that start together.
// gorm's AutoMigrate is not used. To change the schema add a new file with
// the next number to both directories; never edit an applied one.
//
// Rows are private structs converted to and from api types. Timestamps are
// stored in UTC at microsecond precision (what PostgreSQL keeps), so both
// databases return identical values; Release.Processes and Release.Env are
// JSON text. Builds and events carry a database-assigned seq column that
// breaks ties between equal timestamps, so "oldest first"/"newest first" is
// insertion order within a timestamp.
//
// # SQLite
//
// SQLite runs through github.com/glebarez/sqlite (modernc.org/sqlite, pure
// Go; builds with CGO_ENABLED=0). Every connection sets busy_timeout (5s
// by default, Config.BusyTimeout), foreign_keys=ON and synchronous=NORMAL;
// the database is in WAL mode. synchronous=NORMAL with WAL never corrupts
// the database; a power loss (not a process crash) may roll back the last
// transactions committed before it, which convergence tolerates and which
// keeps commits from waiting on an fsync each.
//
// A transaction that reads before it writes fails at once with "database is
// locked" under a plain BEGIN, ignoring busy_timeout. glebarez/go-sqlite
// (v1.21, sqlite.go applyQueryParams/newTx) supports the DSN parameter
// _txlock=immediate, which makes every non-read-only transaction start with
// BEGIN IMMEDIATE, so the store uses it; it does not combine it with
// _time_format, because that driver version stops reading parameters after
// _time_format. In addition, writes go through a separate handle with one
// connection (writers queue in Go, honouring ctx, instead of spinning on
// busy_timeout) and reads go through a pool of query_only connections,
// which WAL lets run alongside the writer. ":memory:" uses one connection
// for both.
//
// # Errors
//
// Every method returns an *api.Error code, wrapping the driver error for
// logs: ENotFound for a missing row or a missing parent row (a foreign key
// violation), EConflict for a unique violation or a forbidden build state
// change, EUnavailable when the database cannot be reached or stays busy,
// ETimeout when ctx ends, EInvalid for input the store refuses (empty ids).
// Errors are classified by driver error types and codes — SQLite extended
// result codes from *sqlite.Error (glebarez/go-sqlite), SQLSTATE from
// *pgconn.PgError (23505 unique, 23503 foreign key, class 08 connection) —
// never by message text.
//
// # Tests
//
// storetest.Run is the conformance suite; store_test.go runs it on SQLite
// (a file in t.TempDir() and ":memory:") always, and on PostgreSQL when
// STRATA_TEST_POSTGRES holds a URL of a database in which the role may
// create schemas:
//
//	STRATA_TEST_POSTGRES='postgres://strata:strata@127.0.0.1:5432/strata_test?sslmode=disable' \
//	    go test ./api/store/...
//
// Each subtest then creates its own schema strata_test_<uuid> (selected
// with search_path) and drops it at the end, so runs do not collide. When
// STRATA_TEST_POSTGRES is unset the PostgreSQL suite is skipped, unless
// STRATA_REQUIRE (a comma-separated list) contains "postgres": then it
// fails.
//
// Store is safe for concurrent use.
package store
