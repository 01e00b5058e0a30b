package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"gorm.io/gorm"

	"github.com/strata-paas/strata/api"
)

// Leases (docs/architecture.md, "Leader lease"). Every statement reads the
// database clock only, so controllers with skewed clocks agree on who holds
// a lease: julianday('now') on SQLite (expires_at is a julianday), now() on
// PostgreSQL.

// leaseSQL is one driver's lease statements.
type leaseSQL struct {
	acquire, release, fence string
	ttl                     func(time.Duration) any // the ttl parameter of acquire
}

var leaseStatements = map[string]leaseSQL{
	DriverSQLite: {
		acquire: `INSERT INTO leases (name, holder, term, expires_at) VALUES (?, ?, 1, julianday('now') + ?)
			ON CONFLICT (name) DO UPDATE SET
				term = CASE WHEN leases.holder = excluded.holder THEN leases.term ELSE leases.term + 1 END,
				holder = excluded.holder, expires_at = excluded.expires_at
			WHERE leases.holder = excluded.holder OR leases.expires_at < julianday('now')
			RETURNING term`,
		release: `UPDATE leases SET expires_at = julianday('now') - 1.0/86400 WHERE name = ? AND holder = ? AND term = ?`,
		fence:   `SELECT term FROM leases WHERE name = ? AND holder = ? AND term = ? AND expires_at > julianday('now')`,
		ttl:     func(d time.Duration) any { return d.Seconds() / 86400 },
	},
	DriverPostgres: {
		acquire: `INSERT INTO leases (name, holder, term, expires_at) VALUES (?, ?, 1, now() + ? * interval '1 microsecond')
			ON CONFLICT (name) DO UPDATE SET
				term = CASE WHEN leases.holder = excluded.holder THEN leases.term ELSE leases.term + 1 END,
				holder = excluded.holder, expires_at = excluded.expires_at
			WHERE leases.holder = excluded.holder OR leases.expires_at < now()
			RETURNING term`,
		release: `UPDATE leases SET expires_at = now() - interval '1 second' WHERE name = ? AND holder = ? AND term = ?`,
		// FOR SHARE holds the lease row until the write commits: a takeover
		// (an UPDATE of the row) waits for it, so no fenced write of an old
		// term commits after a new term was granted.
		fence: `SELECT term FROM leases WHERE name = ? AND holder = ? AND term = ? AND expires_at > now() FOR SHARE`,
		ttl:   func(d time.Duration) any { return d.Microseconds() },
	},
}

// AcquireLease takes lease name for holder, or renews it, until ttl from
// now by the database clock, and returns its term. The term starts at 1 and
// increases whenever the holder changes. EConflict if another holder's
// lease has not expired.
func (s *Store) AcquireLease(ctx context.Context, name, holder string, ttl time.Duration) (int64, error) {
	if name == "" || holder == "" {
		return 0, api.Errorf(api.EInvalid, "lease name and holder must not be empty")
	}
	if ttl <= 0 {
		return 0, api.Errorf(api.EInvalid, "lease ttl must be positive, not %s", ttl)
	}
	st := leaseStatements[s.driver]
	var term int64
	err := s.write.WithContext(ctx).Raw(st.acquire, name, holder, st.ttl(ttl)).Row().Scan(&term)
	if errors.Is(err, sql.ErrNoRows) {
		var cur struct {
			Holder string
			Term   int64
		}
		msg := fmt.Sprintf("lease %q is held by another controller", name)
		if s.read.WithContext(ctx).Raw("SELECT holder, term FROM leases WHERE name = ?", name).Scan(&cur).Error == nil && cur.Holder != "" {
			msg = fmt.Sprintf("lease %q is held by %s (term %d) until it expires", name, cur.Holder, cur.Term)
		}
		return 0, api.Errorf(api.EConflict, "%s", msg)
	}
	if err != nil {
		return 0, s.fail("acquire lease", err, msgs{})
	}
	return term, nil
}

// ReleaseLease ends holder's lease of term at once so that another holder
// may take it; nil if holder no longer holds it at term.
func (s *Store) ReleaseLease(ctx context.Context, name, holder string, term int64) error {
	return s.fail("release lease", s.write.WithContext(ctx).Exec(leaseStatements[s.driver].release, name, holder, term).Error, msgs{})
}

// checkFence refuses, inside write transaction tx, a write whose ctx
// carries a fence (api.WithFence) that no longer holds: another holder or
// term, or an expired lease. Without a fence it does nothing.
func (s *Store) checkFence(ctx context.Context, tx *gorm.DB) error {
	f, ok := api.FenceFrom(ctx)
	if !ok {
		return nil
	}
	var term int64
	err := tx.Raw(leaseStatements[s.driver].fence, f.Lease, f.Holder, f.Term).Row().Scan(&term)
	if errors.Is(err, sql.ErrNoRows) {
		return api.Errorf(api.EConflict, "write refused by the lease fence: %s no longer holds the %s lease of term %d (another controller leads, or the lease expired)", f.Holder, f.Lease, f.Term)
	}
	return err
}

// writeDB runs one write: with a fence in ctx, in a write transaction that
// checks it first (see tx); without, directly on the writer.
func (s *Store) writeDB(ctx context.Context, fn func(db *gorm.DB) error) error {
	if _, ok := api.FenceFrom(ctx); ok {
		return s.tx(ctx, fn)
	}
	return fn(s.write.WithContext(ctx))
}
