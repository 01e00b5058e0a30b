package controller

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"log/slog"
	"sync"

	"github.com/google/uuid"

	"github.com/strata-paas/strata/api"
)

// Default names of the tenancy objects every installation has.
const (
	DefaultOrg   = "default"
	DefaultSpace = "default"
)

var _ api.AuthService = (*Tenancy)(nil)

// Tenancy owns orgs, spaces, users and tokens: it bootstraps the default org,
// space and admin, turns tokens into principals, and tells the other services
// which space the caller acts in.
type Tenancy struct {
	store TenancyStore
	log   *slog.Logger

	mu      sync.Mutex
	spaceID string
}

func newTenancy(store TenancyStore, log *slog.Logger) *Tenancy {
	return &Tenancy{store: store, log: log}
}

// Bootstrap ensures the default org and space and an admin user named
// adminName. When it creates the admin it also creates an API token, stores
// only its SHA-256 hash, and returns the token with created = true; otherwise
// it returns "", false.
func (s *Tenancy) Bootstrap(ctx context.Context, adminName string) (string, bool, error) {
	if err := api.ValidateName("user", adminName); err != nil {
		return "", false, err
	}
	org, err := s.store.OrgByName(ctx, DefaultOrg)
	if api.ErrorCode(err) == api.ENotFound {
		org = &api.Org{ID: uuid.NewString(), Name: DefaultOrg}
		err = s.store.CreateOrg(ctx, org)
	}
	if err != nil {
		return "", false, fmt.Errorf("bootstrap org: %w", err)
	}
	_, err = s.store.SpaceByName(ctx, org.ID, DefaultSpace)
	if api.ErrorCode(err) == api.ENotFound {
		err = s.store.CreateSpace(ctx, &api.Space{ID: uuid.NewString(), OrgID: org.ID, Name: DefaultSpace})
	}
	if err != nil {
		return "", false, fmt.Errorf("bootstrap space: %w", err)
	}
	_, err = s.store.UserByName(ctx, adminName)
	if err == nil {
		return "", false, nil
	}
	if api.ErrorCode(err) != api.ENotFound {
		return "", false, fmt.Errorf("bootstrap admin: %w", err)
	}
	u := &api.User{ID: uuid.NewString(), Name: adminName, Admin: true}
	if err := s.store.CreateUser(ctx, u); err != nil {
		return "", false, fmt.Errorf("bootstrap admin: %w", err)
	}
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		return "", false, err
	}
	token := hex.EncodeToString(raw)
	if err := s.store.CreateToken(ctx, u.ID, hashToken(token), "bootstrap admin token"); err != nil {
		return "", false, fmt.Errorf("bootstrap token: %w", err)
	}
	s.log.Info("bootstrap.admin_created", "user", adminName)
	return token, true, nil
}

func hashToken(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

// Authenticate returns the principal owning token. A missing or unknown token
// is EUnauthorized; a database failure keeps its code (EUnavailable). Only the
// token's SHA-256 hash is looked up, so timing does not depend on how much of
// a stored token matches.
func (s *Tenancy) Authenticate(ctx context.Context, token string) (*api.Principal, error) {
	if token == "" {
		return nil, errBadToken()
	}
	u, err := s.store.UserByTokenHash(ctx, hashToken(token))
	if api.ErrorCode(err) == api.ENotFound {
		return nil, errBadToken()
	}
	if err != nil {
		return nil, fmt.Errorf("authenticate: %w", err)
	}
	return &api.Principal{UserID: u.ID, Name: u.Name, Admin: u.Admin}, nil
}

func errBadToken() error {
	return api.Errorf(api.EUnauthorized, "invalid token — run `strata login`")
}

// space returns the ID of the space apps live in (the default space for now).
func (s *Tenancy) space(ctx context.Context) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.spaceID != "" {
		return s.spaceID, nil
	}
	org, err := s.store.OrgByName(ctx, DefaultOrg)
	if err != nil {
		return "", noSpace(err)
	}
	sp, err := s.store.SpaceByName(ctx, org.ID, DefaultSpace)
	if err != nil {
		return "", noSpace(err)
	}
	s.spaceID = sp.ID
	return sp.ID, nil
}

func noSpace(err error) error {
	if api.ErrorCode(err) == api.ENotFound {
		return api.Errorf(api.EUnavailable, "the default space does not exist yet — start stratad once so it bootstraps")
	}
	return err
}
