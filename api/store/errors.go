package store

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"net"

	gosqlite "github.com/glebarez/go-sqlite"
	"github.com/jackc/pgx/v5/pgconn"
	"gorm.io/gorm"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/strata-paas/strata/api"
)

// kind is what a database error means to the caller, decided from driver
// error types and codes, never from message text.
type kind int

const (
	kindOther       kind = iota
	kindNotFound         // no row
	kindUnique           // unique or primary key violation
	kindForeignKey       // a referenced row is missing
	kindUnavailable      // the database cannot be reached or is busy
	kindTimeout          // the context ended first
)

func classify(err error) kind {
	if errors.Is(err, gorm.ErrRecordNotFound) || errors.Is(err, sql.ErrNoRows) {
		return kindNotFound
	}
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		return kindTimeout
	}
	var se *gosqlite.Error
	if errors.As(err, &se) {
		switch se.Code() {
		case sqlite3.SQLITE_CONSTRAINT_UNIQUE, sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY:
			return kindUnique
		case sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY:
			return kindForeignKey
		case sqlite3.SQLITE_INTERRUPT:
			return kindTimeout
		}
		switch se.Code() & 0xff { // primary result code
		case sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED, sqlite3.SQLITE_CANTOPEN,
			sqlite3.SQLITE_IOERR, sqlite3.SQLITE_FULL, sqlite3.SQLITE_READONLY,
			sqlite3.SQLITE_PROTOCOL, sqlite3.SQLITE_NOLFS:
			return kindUnavailable
		}
		return kindOther
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch {
		case pe.Code == "23505": // unique_violation
			return kindUnique
		case pe.Code == "23503": // foreign_key_violation
			return kindForeignKey
		case pe.Code == "57014": // query_canceled
			return kindTimeout
		case pe.Code == "40001", pe.Code == "40P01", // serialization failure, deadlock: retry
			pe.Code == "55P03",                                         // lock_not_available
			pe.Code == "57P01", pe.Code == "57P02", pe.Code == "57P03", // shutting down, cannot connect now
			len(pe.Code) == 5 && (pe.Code[:2] == "08" || pe.Code[:2] == "53"): // connection exception, insufficient resources
			return kindUnavailable
		}
		return kindOther
	}
	var ce *pgconn.ConnectError
	var ne net.Error
	var oe *net.OpError
	if errors.As(err, &ce) || errors.As(err, &ne) || errors.As(err, &oe) ||
		errors.Is(err, driver.ErrBadConn) || errors.Is(err, sql.ErrConnDone) ||
		pgconn.SafeToRetry(err) {
		return kindUnavailable
	}
	return kindOther
}

// msgs are the user-facing messages for the outcomes a call expects.
type msgs struct {
	notFound string // for a missing row
	conflict string // for a unique violation
	missing  string // for a foreign key violation (a parent row is missing)
}

// fail turns a database error into an *api.Error with a code, keeping the
// driver error in the chain for logs. op names the operation ("create app").
func (s *Store) fail(op string, err error, m msgs) error {
	if err == nil {
		return nil
	}
	var ae *api.Error
	if errors.As(err, &ae) {
		return err
	}
	switch classify(err) {
	case kindNotFound:
		if m.notFound != "" {
			return api.Errorf(api.ENotFound, "%s", m.notFound)
		}
		return fmt.Errorf("%w: %w", api.Errorf(api.ENotFound, "%s: not found", op), err)
	case kindUnique:
		msg := m.conflict
		if msg == "" {
			msg = op + ": already exists"
		}
		return fmt.Errorf("%w: %w", api.Errorf(api.EConflict, "%s", msg), err)
	case kindForeignKey:
		msg := m.missing
		if msg == "" {
			msg = op + ": a referenced object does not exist"
		}
		return fmt.Errorf("%w: %w", api.Errorf(api.ENotFound, "%s", msg), err)
	case kindUnavailable:
		s.log.Warn("database unavailable", "op", op, "err", err)
		return fmt.Errorf("%w: %w", api.Errorf(api.EUnavailable, "%s: the database is unavailable — retry later", op), err)
	case kindTimeout:
		return fmt.Errorf("%w: %w", api.Errorf(api.ETimeout, "%s: the database did not answer in time — retry later", op), err)
	}
	s.log.Error("database error", "op", op, "err", err)
	return fmt.Errorf("%w: %w", api.Errorf(api.EInternal, "%s: internal database error", op), err)
}
