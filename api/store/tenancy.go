package store

import (
	"context"
	"strconv"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"github.com/strata-paas/strata/api"
)

// CreateOrg stores o, filling CreatedAt when zero. EConflict if the name is
// taken.
func (s *Store) CreateOrg(ctx context.Context, o *api.Org) error {
	if err := needID("org", o.ID); err != nil {
		return err
	}
	o.CreatedAt = s.stamp(o.CreatedAt)
	row := orgRow{ID: o.ID, Name: o.Name, CreatedAt: o.CreatedAt}
	return s.create(ctx, "create org", &row, msgs{
		conflict: "org " + q(o.Name) + " already exists — choose another name",
	})
}

// OrgByName returns the org called name, or ENotFound.
func (s *Store) OrgByName(ctx context.Context, name string) (*api.Org, error) {
	var row orgRow
	if err := s.first(ctx, "find org", &row, msgs{notFound: "org " + q(name) + " not found"}, "name = ?", name); err != nil {
		return nil, err
	}
	return row.api(), nil
}

// CreateSpace stores sp, filling CreatedAt when zero. EConflict if its org
// already has a space of that name, ENotFound if the org does not exist.
func (s *Store) CreateSpace(ctx context.Context, sp *api.Space) error {
	if err := needID("space", sp.ID); err != nil {
		return err
	}
	sp.CreatedAt = s.stamp(sp.CreatedAt)
	row := spaceRow{ID: sp.ID, OrgID: sp.OrgID, Name: sp.Name, CreatedAt: sp.CreatedAt}
	return s.create(ctx, "create space", &row, msgs{
		conflict: "space " + q(sp.Name) + " already exists in this org — choose another name",
		missing:  "org " + q(sp.OrgID) + " not found — create the org first",
	})
}

// SpaceByName returns the space called name in an org, or ENotFound.
func (s *Store) SpaceByName(ctx context.Context, orgID, name string) (*api.Space, error) {
	var row spaceRow
	if err := s.first(ctx, "find space", &row, msgs{notFound: "space " + q(name) + " not found"},
		"org_id = ? AND name = ?", orgID, name); err != nil {
		return nil, err
	}
	return row.api(), nil
}

// CreateUser stores u, filling CreatedAt when zero. EConflict if the name is
// taken.
func (s *Store) CreateUser(ctx context.Context, u *api.User) error {
	if err := needID("user", u.ID); err != nil {
		return err
	}
	u.CreatedAt = s.stamp(u.CreatedAt)
	row := userRow{ID: u.ID, Name: u.Name, Admin: u.Admin, CreatedAt: u.CreatedAt}
	return s.create(ctx, "create user", &row, msgs{
		conflict: "user " + q(u.Name) + " already exists — choose another name",
	})
}

// UserByName returns the user called name, or ENotFound.
func (s *Store) UserByName(ctx context.Context, name string) (*api.User, error) {
	var row userRow
	if err := s.first(ctx, "find user", &row, msgs{notFound: "user " + q(name) + " not found"}, "name = ?", name); err != nil {
		return nil, err
	}
	return row.api(), nil
}

// CreateToken stores the hash of an API token for a user. EConflict if the
// hash exists, ENotFound if the user does not, EInvalid if the hash is empty.
func (s *Store) CreateToken(ctx context.Context, userID, tokenHash, description string) error {
	if tokenHash == "" {
		return api.Errorf(api.EInvalid, "token hash is empty — store the sha-256 hex of the token")
	}
	row := tokenRow{Hash: tokenHash, UserID: userID, Description: description, CreatedAt: s.stamp(s.now())}
	return s.create(ctx, "create token", &row, msgs{
		conflict: "this token is already registered — generate a new token",
		missing:  "user " + q(userID) + " not found — create the user first",
	})
}

// UserByTokenHash returns the user owning a token hash, or ENotFound.
func (s *Store) UserByTokenHash(ctx context.Context, tokenHash string) (*api.User, error) {
	var row userRow
	err := s.read.WithContext(ctx).
		Joins("JOIN tokens ON tokens.user_id = users.id").
		Where("tokens.hash = ?", tokenHash).
		Take(&row).Error
	if err != nil {
		return nil, s.fail("find token", err, msgs{notFound: "token not found — log in again"})
	}
	return row.api(), nil
}

// create inserts row with the writer.
func (s *Store) create(ctx context.Context, op string, row any, m msgs) error {
	return s.fail(op, s.write.WithContext(ctx).Create(row).Error, m)
}

// first loads one row matching the condition into dest with the reader.
func (s *Store) first(ctx context.Context, op string, dest any, m msgs, cond string, args ...any) error {
	return s.fail(op, s.read.WithContext(ctx).Where(cond, args...).Take(dest).Error, m)
}

// firstTx is first inside a write transaction, locking the row (SELECT …
// FOR UPDATE on PostgreSQL; SQLite's BEGIN IMMEDIATE already holds the
// database write lock) so that read-modify-write cannot lose an update.
func (s *Store) firstTx(tx *gorm.DB, op string, dest any, m msgs, cond string, args ...any) error {
	return s.fail(op, tx.Clauses(clause.Locking{Strength: "UPDATE"}).Where(cond, args...).Take(dest).Error, m)
}

func needID(kind, id string) error {
	if id == "" {
		return api.Errorf(api.EInvalid, "%s id is empty — the caller must assign a UUID", kind)
	}
	return nil
}

// q quotes a name for a message, shortening absurdly long input.
func q(s string) string { return strconv.Quote(truncate(s, 80)) }
