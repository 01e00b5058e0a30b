package store

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"sync"
	"time"

	"github.com/strata-paas/strata/api"
)

// App locks serialise the read-modify-write changes of one app (env, scale,
// routes, releases) across every controller of the database
// (docs/architecture.md, "Per-app locks").
//
// On PostgreSQL a lock is a session-level advisory lock, keyed by the app's
// id, held on a connection set aside for it: another controller's
// pg_advisory_lock waits, and a controller that dies loses its session and
// so its locks. On SQLite, which only one process opens, a lock is a
// channel in this Store.

// appLockClass is the first key of the advisory locks on apps, so they do
// not clash with other users of advisory locks in the same database.
const appLockClass = 0x5354 // "ST"

// unlockTimeout bounds the statement that releases an advisory lock; if it
// does not answer, the connection is discarded, which ends the session and
// its locks.
const unlockTimeout = 5 * time.Second

// LockApp takes the lock of app id, waiting until it is free or ctx ends
// (ETimeout), and returns the function that releases it.
func (s *Store) LockApp(ctx context.Context, appID string) (func(), error) {
	if appID == "" {
		return nil, api.Errorf(api.EInvalid, "app id must not be empty")
	}
	if s.driver == DriverPostgres {
		return s.advisoryLock(ctx, appID)
	}
	return s.localLock(ctx, appID)
}

func (s *Store) advisoryLock(ctx context.Context, appID string) (func(), error) {
	db, err := s.write.DB()
	if err != nil {
		return nil, s.fail("lock app", err, msgs{})
	}
	conn, err := db.Conn(ctx)
	if err != nil {
		return nil, s.fail("lock app", err, msgs{})
	}
	if _, err := conn.ExecContext(ctx, "SELECT pg_advisory_lock($1, hashtext($2))", appLockClass, appID); err != nil {
		discard(conn)
		return nil, s.fail("lock app", err, msgs{})
	}
	s.hold(conn, true)
	var once sync.Once
	return func() {
		once.Do(func() {
			if !s.hold(conn, false) {
				return // Close dropped it
			}
			uctx, cancel := context.WithTimeout(context.Background(), unlockTimeout)
			defer cancel()
			var released bool
			if err := conn.QueryRowContext(uctx, "SELECT pg_advisory_unlock($1, hashtext($2))", appLockClass, appID).Scan(&released); err != nil || !released {
				s.log.Warn("store.unlock_failed", "app", appID, "err", err)
				discard(conn)
				return
			}
			_ = conn.Close() // back to the pool
		})
	}, nil
}

// hold notes (held) or forgets a connection that holds an app lock; when
// forgetting, it says whether the connection was still noted.
func (s *Store) hold(conn *sql.Conn, held bool) bool {
	s.lockMu.Lock()
	defer s.lockMu.Unlock()
	if held {
		if s.held == nil {
			s.held = map[*sql.Conn]struct{}{}
		}
		s.held[conn] = struct{}{}
		return true
	}
	_, ok := s.held[conn]
	delete(s.held, conn)
	return ok
}

// dropLocks ends the sessions of the connections that hold app locks, so a
// closed Store holds none.
func (s *Store) dropLocks() {
	s.lockMu.Lock()
	held := s.held
	s.held = nil
	s.lockMu.Unlock()
	for conn := range held {
		discard(conn)
	}
}

// discard closes conn's session instead of returning it to the pool.
func discard(conn *sql.Conn) {
	_ = conn.Raw(func(any) error { return driver.ErrBadConn })
	_ = conn.Close()
}

func (s *Store) localLock(ctx context.Context, appID string) (func(), error) {
	v, _ := s.appLocks.LoadOrStore(appID, make(chan struct{}, 1))
	ch := v.(chan struct{})
	select {
	case ch <- struct{}{}:
	case <-ctx.Done():
		return nil, s.fail("lock app", ctx.Err(), msgs{})
	}
	var once sync.Once
	return func() { once.Do(func() { <-ch }) }, nil
}
