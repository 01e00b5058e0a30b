package controller

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"log/slog"

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
	if err := s.store.CreateToken(ctx, &api.Token{Hash: hashToken(token), UserID: u.ID, Description: "bootstrap admin token"}); err != nil {
		return "", false, fmt.Errorf("bootstrap token: %w", err)
	}
	s.log.Info("bootstrap.admin_created", "user", adminName)
	return token, true, nil
}

// ComponentToken returns a token for a Strata component (api.ComponentExecutor,
// api.ComponentRouter): current when it still authenticates as that
// component, else a new one (the component's user is created on first use).
// stratad writes it to <data>/<component>.token for executors and routers.
func (s *Tenancy) ComponentToken(ctx context.Context, component, current string) (string, error) {
	if current != "" {
		if p, err := s.Authenticate(ctx, current); err == nil && p.Component == component {
			return current, nil
		}
	}
	name := "strata-" + component
	u, err := s.store.UserByName(ctx, name)
	if api.ErrorCode(err) == api.ENotFound {
		u = &api.User{ID: uuid.NewString(), Name: name, Component: component}
		err = s.store.CreateUser(ctx, u)
	}
	if err != nil {
		return "", fmt.Errorf("component %s: %w", component, err)
	}
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		return "", err
	}
	token := hex.EncodeToString(raw)
	if err := s.store.CreateToken(ctx, &api.Token{Hash: hashToken(token), UserID: u.ID, Description: component + " credential"}); err != nil {
		return "", fmt.Errorf("component %s token: %w", component, err)
	}
	return token, nil
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
	p := &api.Principal{UserID: u.ID, Name: u.Name, Admin: u.Admin, Component: u.Component, TokenHash: hashToken(token)}
	if !u.Admin && u.Component == "" {
		if p.Roles, err = s.store.RolesOfUser(ctx, u.ID); err != nil {
			return nil, fmt.Errorf("authenticate: %w", err)
		}
	}
	return p, nil
}

func errBadToken() error {
	return api.Errorf(api.EUnauthorized, "invalid token — run `strata login`")
}

// scope resolves the target of ctx (api.TargetFrom; empty names are the
// default org and space) and authorizes act in it. A space the caller may
// not see answers ENotFound, as one that does not exist does.
func (s *Tenancy) scope(ctx context.Context, act action) (orgID, spaceID string, err error) {
	t := TargetOf(ctx)
	org, err := s.store.OrgByName(ctx, t.Org)
	if err != nil {
		return "", "", noSpace(t, err)
	}
	sp, err := s.store.SpaceByName(ctx, org.ID, t.Space)
	if err != nil {
		if authorize(api.PrincipalFrom(ctx), actReadOrg, org.ID, "") == hidden {
			return "", "", noSpace(t, api.Errorf(api.ENotFound, "org not found"))
		}
		return "", "", noSpace(t, err)
	}
	switch authorize(api.PrincipalFrom(ctx), act, org.ID, sp.ID) {
	case hidden:
		return "", "", noSpace(t, api.Errorf(api.ENotFound, "space not found"))
	case forbid:
		return "", "", forbidden(act, t.Org+"/"+t.Space)
	}
	return org.ID, sp.ID, nil
}

// AuthorizePush returns nil when the caller may push to apps of its target
// space (gitpush asks before it shows a repository); ENotFound when it may
// not see the space, EForbidden when it may only read it.
func (s *Tenancy) AuthorizePush(ctx context.Context) error {
	_, _, err := s.scope(ctx, actDevelop)
	return err
}

// space returns the ID of the caller's target space once act is allowed.
func (s *Tenancy) space(ctx context.Context, act action) (string, error) {
	_, id, err := s.scope(ctx, act)
	return id, err
}

// org resolves an org by name and authorizes act on it (org-level); an org
// the caller may not see answers ENotFound.
func (s *Tenancy) org(ctx context.Context, name string, act action) (*api.Org, error) {
	if name == "" {
		name = DefaultOrg
	}
	org, err := s.store.OrgByName(ctx, name)
	notFound := api.Errorf(api.ENotFound, "org %q not found — see strata orgs", name)
	if api.ErrorCode(err) == api.ENotFound {
		return nil, notFound
	}
	if err != nil {
		return nil, err
	}
	switch authorize(api.PrincipalFrom(ctx), act, org.ID, "") {
	case hidden:
		return nil, notFound
	case forbid:
		return nil, forbidden(act, "org "+name)
	}
	return org, nil
}

// TargetOf is api.TargetFrom with the default org and space filled in.
func TargetOf(ctx context.Context) api.Target {
	t := api.TargetFrom(ctx)
	if t.Org == "" {
		t.Org = DefaultOrg
	}
	if t.Space == "" {
		t.Space = DefaultSpace
	}
	return t
}

func noSpace(t api.Target, err error) error {
	if api.ErrorCode(err) == api.ENotFound {
		if t.Org == DefaultOrg && t.Space == DefaultSpace {
			return api.Errorf(api.ENotFound, "the default space does not exist — start stratad once so it bootstraps, or strata target another space")
		}
		return api.Errorf(api.ENotFound, "space %s/%s not found — see strata spaces, and strata target --org O --space S", t.Org, t.Space)
	}
	return err
}
