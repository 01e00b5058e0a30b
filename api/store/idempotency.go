package store

import (
	"context"
	"errors"
	"time"

	"gorm.io/gorm"

	"github.com/strata-paas/strata/api"
)

// Idempotent responses (api.IdempotencyStore) in idempotency_keys, shared by
// every controller of the database. Expired rows are treated as absent and
// swept at most once a minute, by the Begin that finds the sweep due.

const idempotencySweepEvery = time.Minute

type idempotencyRow struct {
	Key         string `gorm:"primaryKey"`
	Pending     bool
	Status      int
	ContentType string
	Body        []byte
	Digest      []byte
	ExpiresAt   int64
}

func (idempotencyRow) TableName() string { return "idempotency_keys" }

// BeginIdempotent reserves key as pending until pendingUntil and returns
// (nil, true), or returns the unexpired entry of key and false.
func (s *Store) BeginIdempotent(ctx context.Context, key string, now, pendingUntil time.Time) (*api.IdempotentResponse, bool, error) {
	if key == "" {
		return nil, false, api.Errorf(api.EInvalid, "idempotency key must not be empty")
	}
	s.sweepIdempotency(ctx, now)
	res := s.write.WithContext(ctx).Exec(`INSERT INTO idempotency_keys (key, pending, status, content_type, body, digest, expires_at)
		VALUES (?, TRUE, 0, '', ?, ?, ?)
		ON CONFLICT (key) DO UPDATE SET pending = TRUE, status = 0, content_type = '', body = excluded.body,
			digest = excluded.digest, expires_at = excluded.expires_at
		WHERE idempotency_keys.expires_at <= ?`,
		key, []byte{}, []byte{}, pendingUntil.UnixMicro(), now.UnixMicro())
	if res.Error != nil {
		return nil, false, s.fail("reserve idempotency key", res.Error, msgs{})
	}
	if res.RowsAffected == 1 {
		return nil, true, nil
	}
	var row idempotencyRow
	err := s.write.WithContext(ctx).Where("key = ?", key).Take(&row).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		// Deleted by an abort or a sweep between the two statements: the
		// caller may retry.
		return nil, false, api.Errorf(api.EConflict, "a request with this Idempotency-Key just ended — retry")
	}
	if err != nil {
		return nil, false, s.fail("read idempotency key", err, msgs{})
	}
	return &api.IdempotentResponse{Pending: row.Pending, Status: row.Status, ContentType: row.ContentType, Body: row.Body, Digest: row.Digest}, false, nil
}

// FinishIdempotent stores the response of pending key until expires.
func (s *Store) FinishIdempotent(ctx context.Context, key string, r *api.IdempotentResponse, expires time.Time) error {
	body, digest := r.Body, r.Digest
	if body == nil {
		body = []byte{}
	}
	if digest == nil {
		digest = []byte{}
	}
	err := s.write.WithContext(ctx).Exec(`UPDATE idempotency_keys SET pending = FALSE, status = ?, content_type = ?, body = ?, digest = ?, expires_at = ?
		WHERE key = ? AND pending`, r.Status, r.ContentType, body, digest, expires.UnixMicro(), key).Error
	return s.fail("store idempotent response", err, msgs{})
}

// AbortIdempotent forgets pending key.
func (s *Store) AbortIdempotent(ctx context.Context, key string) error {
	err := s.write.WithContext(ctx).Exec(`DELETE FROM idempotency_keys WHERE key = ? AND pending`, key).Error
	return s.fail("forget idempotency key", err, msgs{})
}

// sweepIdempotency deletes expired rows when a sweep is due; a failed sweep
// is logged and retried at the next due time.
func (s *Store) sweepIdempotency(ctx context.Context, now time.Time) {
	s.lockMu.Lock()
	due := now.After(s.nextSweep)
	if due {
		s.nextSweep = now.Add(idempotencySweepEvery)
	}
	s.lockMu.Unlock()
	if !due {
		return
	}
	if err := s.write.WithContext(ctx).Exec(`DELETE FROM idempotency_keys WHERE expires_at <= ?`, now.UnixMicro()).Error; err != nil {
		s.log.Warn("store.idempotency_sweep_failed", "err", err)
	}
}
