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
	row := userRow{ID: u.ID, Name: u.Name, Admin: u.Admin, Component: u.Component, CreatedAt: u.CreatedAt}
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

// CreateToken stores the hash of an API token (t.Hash, never the token) for
// t.UserID, filling CreatedAt when zero. EConflict if the hash exists,
// ENotFound if the user does not, EInvalid if the hash is empty.
func (s *Store) CreateToken(ctx context.Context, t *api.Token) error {
	if t.Hash == "" {
		return api.Errorf(api.EInvalid, "token hash is empty — store the sha-256 hex of the token")
	}
	t.CreatedAt = s.stamp(t.CreatedAt)
	row := tokenRow{Hash: t.Hash, UserID: t.UserID, Description: t.Description, CreatedAt: t.CreatedAt}
	if t.ExpiresAt != nil {
		e := norm(*t.ExpiresAt)
		row.ExpiresAt = &e
	}
	return s.create(ctx, "create token", &row, msgs{
		conflict: "this token is already registered — generate a new token",
		missing:  "user " + q(t.UserID) + " not found — create the user first",
	})
}

// UserByTokenHash returns the user owning a token hash that has not expired
// (by the store's clock), or ENotFound.
func (s *Store) UserByTokenHash(ctx context.Context, tokenHash string) (*api.User, error) {
	var row userRow
	err := s.read.WithContext(ctx).
		Joins("JOIN tokens ON tokens.user_id = users.id").
		Where("tokens.hash = ? AND (tokens.expires_at IS NULL OR tokens.expires_at > ?)", tokenHash, norm(s.now())).
		Take(&row).Error
	if err != nil {
		return nil, s.fail("find token", err, msgs{notFound: "token not found or expired — log in again"})
	}
	return row.api(), nil
}

// Tokens returns a user's tokens, oldest first, expired ones included.
func (s *Store) Tokens(ctx context.Context, userID string) ([]*api.Token, error) {
	var rows []tokenRow
	if err := s.read.WithContext(ctx).Where("user_id = ?", userID).Order("created_at, hash").Find(&rows).Error; err != nil {
		return nil, s.fail("list tokens", err, msgs{})
	}
	out := make([]*api.Token, 0, len(rows))
	for _, r := range rows {
		out = append(out, r.api())
	}
	return out, nil
}

// DeleteToken deletes a token by its hash; ENotFound if there is none.
func (s *Store) DeleteToken(ctx context.Context, tokenHash string) error {
	return s.deleteWhere(ctx, "delete token", &tokenRow{}, msgs{notFound: "token not found"}, "hash = ?", tokenHash)
}

// ListUsers returns every user ordered by name.
func (s *Store) ListUsers(ctx context.Context) ([]*api.User, error) {
	var rows []userRow
	if err := s.read.WithContext(ctx).Order("name").Find(&rows).Error; err != nil {
		return nil, s.fail("list users", err, msgs{})
	}
	out := make([]*api.User, 0, len(rows))
	for _, r := range rows {
		out = append(out, r.api())
	}
	return out, nil
}

// DeleteUser deletes a user with its tokens and roles; ENotFound if absent.
func (s *Store) DeleteUser(ctx context.Context, id string) error {
	err := s.tx(ctx, func(tx *gorm.DB) error {
		for _, child := range []any{&tokenRow{}, &roleRow{}} {
			if err := tx.Where("user_id = ?", id).Delete(child).Error; err != nil {
				return err
			}
		}
		return affected(tx.Where("id = ?", id).Delete(&userRow{}))
	})
	return s.fail("delete user", err, msgs{notFound: "user " + q(id) + " not found"})
}

// SetPasswordHash saves the encoded password hash of a user ("" disables
// password login); ENotFound if the user does not exist.
func (s *Store) SetPasswordHash(ctx context.Context, userID, hash string) error {
	err := affected(s.write.WithContext(ctx).Model(&userRow{}).Where("id = ?", userID).Update("password_hash", hash))
	return s.fail("set password", err, msgs{notFound: "user " + q(userID) + " not found"})
}

// PasswordHash returns the encoded password hash of a user ("" when the user
// has no password); ENotFound if the user does not exist.
func (s *Store) PasswordHash(ctx context.Context, userID string) (string, error) {
	var row userRow
	if err := s.first(ctx, "find user", &row, msgs{notFound: "user " + q(userID) + " not found"}, "id = ?", userID); err != nil {
		return "", err
	}
	return row.PasswordHash, nil
}

// ListOrgs returns every org ordered by name.
func (s *Store) ListOrgs(ctx context.Context) ([]*api.Org, error) {
	var rows []orgRow
	if err := s.read.WithContext(ctx).Order("name").Find(&rows).Error; err != nil {
		return nil, s.fail("list orgs", err, msgs{})
	}
	out := make([]*api.Org, 0, len(rows))
	for _, r := range rows {
		out = append(out, r.api())
	}
	return out, nil
}

// DeleteOrg deletes an org without spaces, with its roles and placement
// policy. EConflict while it has spaces, ENotFound if absent.
func (s *Store) DeleteOrg(ctx context.Context, id string) error {
	err := s.tx(ctx, func(tx *gorm.DB) error {
		var n int64
		if err := tx.Model(&spaceRow{}).Where("org_id = ?", id).Count(&n).Error; err != nil {
			return err
		}
		if n > 0 {
			return api.Errorf(api.EConflict, "the org still has %d space(s) — delete them first", n)
		}
		if err := tx.Where("org_id = ?", id).Delete(&roleRow{}).Error; err != nil {
			return err
		}
		if err := tx.Where("scope = ? AND owner_id = ?", string(api.PlacementOrg), id).Delete(&placementRow{}).Error; err != nil {
			return err
		}
		if err := tx.Where("scope = ? AND owner_id = ?", string(api.QuotaOrg), id).Delete(&quotaRow{}).Error; err != nil {
			return err
		}
		return affected(tx.Where("id = ?", id).Delete(&orgRow{}))
	})
	return s.fail("delete org", err, msgs{notFound: "org " + q(id) + " not found"})
}

// SpaceByID returns a space, or ENotFound.
func (s *Store) SpaceByID(ctx context.Context, id string) (*api.Space, error) {
	var row spaceRow
	if err := s.first(ctx, "find space", &row, msgs{notFound: "space " + q(id) + " not found"}, "id = ?", id); err != nil {
		return nil, err
	}
	return row.api(), nil
}

// DeleteSpace deletes a space without apps, with its roles and placement
// policy. EConflict while it has apps, ENotFound if absent.
func (s *Store) DeleteSpace(ctx context.Context, id string) error {
	err := s.tx(ctx, func(tx *gorm.DB) error {
		var n int64
		if err := tx.Model(&appRow{}).Where("space_id = ?", id).Count(&n).Error; err != nil {
			return err
		}
		if n > 0 {
			return api.Errorf(api.EConflict, "the space still has %d app(s) — delete them first or use --recursive", n)
		}
		if err := tx.Where("space_id = ?", id).Delete(&roleRow{}).Error; err != nil {
			return err
		}
		if err := tx.Where("scope = ? AND owner_id = ?", string(api.PlacementSpace), id).Delete(&placementRow{}).Error; err != nil {
			return err
		}
		if err := tx.Where("scope = ? AND owner_id = ?", string(api.QuotaSpace), id).Delete(&quotaRow{}).Error; err != nil {
			return err
		}
		return affected(tx.Where("id = ?", id).Delete(&spaceRow{}))
	})
	return s.fail("delete space", err, msgs{notFound: "space " + q(id) + " not found"})
}

// SetRole binds a role; binding it again is not an error. ENotFound if the
// user or org does not exist.
func (s *Store) SetRole(ctx context.Context, b api.RoleBinding) error {
	row := roleRow{UserID: b.UserID, OrgID: b.OrgID, SpaceID: b.SpaceID, Role: string(b.Role)}
	err := s.write.WithContext(ctx).Clauses(clause.OnConflict{DoNothing: true}).Create(&row).Error
	return s.fail("set role", err, msgs{missing: "user or org not found"})
}

// DeleteRole unbinds a role; ENotFound if it was not bound.
func (s *Store) DeleteRole(ctx context.Context, b api.RoleBinding) error {
	return s.deleteWhere(ctx, "unset role", &roleRow{}, msgs{notFound: "the user does not have this role"},
		"user_id = ? AND org_id = ? AND space_id = ? AND role = ?", b.UserID, b.OrgID, b.SpaceID, string(b.Role))
}

// RolesOfUser returns a user's role bindings.
func (s *Store) RolesOfUser(ctx context.Context, userID string) ([]api.RoleBinding, error) {
	return s.roles(ctx, "user_id = ?", userID)
}

// RolesInOrg returns the role bindings of an org and its spaces.
func (s *Store) RolesInOrg(ctx context.Context, orgID string) ([]api.RoleBinding, error) {
	return s.roles(ctx, "org_id = ?", orgID)
}

func (s *Store) roles(ctx context.Context, cond string, args ...any) ([]api.RoleBinding, error) {
	var rows []roleRow
	if err := s.read.WithContext(ctx).Where(cond, args...).Order("org_id, space_id, user_id, role").Find(&rows).Error; err != nil {
		return nil, s.fail("list roles", err, msgs{})
	}
	out := make([]api.RoleBinding, 0, len(rows))
	for _, r := range rows {
		out = append(out, r.api())
	}
	return out, nil
}

// deleteWhere deletes the rows matching cond; ENotFound when none matched.
func (s *Store) deleteWhere(ctx context.Context, op string, model any, m msgs, cond string, args ...any) error {
	return s.fail(op, affected(s.write.WithContext(ctx).Where(cond, args...).Delete(model)), m)
}

// affected turns a statement that changed no row into ErrRecordNotFound.
func affected(res *gorm.DB) error {
	if res.Error != nil {
		return res.Error
	}
	if res.RowsAffected == 0 {
		return gorm.ErrRecordNotFound
	}
	return nil
}

// create inserts row with the writer.
func (s *Store) create(ctx context.Context, op string, row any, m msgs) error {
	return s.fail(op, s.writeDB(ctx, func(db *gorm.DB) error { return db.Create(row).Error }), m)
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
