package controller

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/strata-paas/strata/api"
	"github.com/strata-paas/strata/api/password"
)

var _ api.UserService = (*Users)(nil)

// Users owns users, their passwords and tokens: password login (throttled),
// logout, and the admin's user management (api.UserService).
type Users struct {
	cfg      Config
	log      *slog.Logger
	store    TenancyStore
	throttle *loginThrottle
	audit    *audit
}

// TokenTTL is how long a token from a password login lasts.
const TokenTTL = 30 * 24 * time.Hour

func newUsers(cfg Config, log *slog.Logger, store TenancyStore, aud *audit) *Users {
	return &Users{cfg: cfg, log: log, store: store, throttle: newLoginThrottle(cfg.Now), audit: aud}
}

func userInfo(u *api.User) api.UserInfo {
	return api.UserInfo{Name: u.Name, Admin: u.Admin, CreatedAt: u.CreatedAt}
}

// Login checks a user name and password and returns a new token that
// expires after TokenTTL. Wrong names and wrong passwords answer the same
// EUnauthorized; repeated failures for a user or from an address are
// refused for a while (ERateLimited) before the password is even checked.
func (s *Users) Login(ctx context.Context, req api.LoginRequest, from string) (*api.LoginResult, error) {
	if wait := s.throttle.wait(req.Username, from); wait > 0 {
		return nil, api.Errorf(api.ERateLimited, "too many failed logins — try again in %s", wait.Round(time.Second))
	}
	bad := api.Errorf(api.EUnauthorized, "wrong user name or password — check both, or ask an admin to reset it")
	u, err := s.store.UserByName(ctx, req.Username)
	if api.ErrorCode(err) == api.ENotFound || api.ValidateName("user", req.Username) != nil {
		s.throttle.failed(req.Username, from)
		return nil, bad
	}
	if err != nil {
		return nil, err
	}
	hash, err := s.store.PasswordHash(ctx, u.ID)
	if err != nil {
		return nil, err
	}
	if err := password.Verify(hash, req.Password); err != nil {
		s.throttle.failed(req.Username, from)
		s.log.Info("login.failed", "user", u.Name, "from", from)
		return nil, bad
	}
	s.throttle.succeeded(req.Username, from)
	token, exp, err := s.newToken(ctx, u, "login from "+from)
	if err != nil {
		return nil, err
	}
	s.log.Info("login", "user", u.Name, "from", from)
	return &api.LoginResult{Token: token, ExpiresAt: exp, User: userInfo(u)}, nil
}

func (s *Users) newToken(ctx context.Context, u *api.User, desc string) (string, time.Time, error) {
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		return "", time.Time{}, err
	}
	token := hex.EncodeToString(raw)
	exp := s.cfg.Now().Add(TokenTTL).UTC()
	if err := s.store.CreateToken(ctx, &api.Token{Hash: hashToken(token), UserID: u.ID, Description: desc, ExpiresAt: &exp}); err != nil {
		return "", time.Time{}, fmt.Errorf("create token: %w", err)
	}
	return token, exp, nil
}

// Logout revokes the token of the request.
func (s *Users) Logout(ctx context.Context) error {
	p := api.PrincipalFrom(ctx)
	if p == nil || p.TokenHash == "" {
		return api.Errorf(api.EUnauthorized, "not logged in")
	}
	return s.store.DeleteToken(ctx, p.TokenHash)
}

// CreateUser creates a user (admin only). Without a password one is
// generated and returned once.
func (s *Users) CreateUser(ctx context.Context, req api.UserRequest) (*api.CreatedUser, error) {
	if err := requireAdmin(ctx, "creating users"); err != nil {
		return nil, err
	}
	if err := api.ValidateName("user", req.Name); err != nil {
		return nil, err
	}
	pw, generated := req.Password, ""
	if pw == "" {
		var err error
		if pw, err = password.Generate(); err != nil {
			return nil, err
		}
		generated = pw
	} else if err := password.Check(pw); err != nil {
		return nil, api.Errorf(api.EInvalid, "%v", err)
	}
	hash, err := password.Hash(pw)
	if err != nil {
		return nil, err
	}
	u := &api.User{ID: uuid.NewString(), Name: req.Name, Admin: req.Admin}
	if err := s.store.CreateUser(ctx, u); err != nil {
		return nil, err
	}
	if err := s.store.SetPasswordHash(ctx, u.ID, hash); err != nil {
		_ = s.store.DeleteUser(context.WithoutCancel(ctx), u.ID)
		return nil, err
	}
	s.log.Info("user.created", "user", u.Name, "admin", u.Admin, "actor", api.ActorName(ctx))
	if u.Admin {
		s.audit.recordPlatform(ctx, "user.create", "created user %s (admin)", u.Name)
	} else {
		s.audit.recordPlatform(ctx, "user.create", "created user %s", u.Name)
	}
	return &api.CreatedUser{User: userInfo(u), GeneratedPassword: generated}, nil
}

// ListUsers lists every user (admin only).
func (s *Users) ListUsers(ctx context.Context) ([]api.UserInfo, error) {
	if err := requireAdmin(ctx, "listing users"); err != nil {
		return nil, err
	}
	us, err := s.store.ListUsers(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]api.UserInfo, 0, len(us))
	for _, u := range us {
		out = append(out, userInfo(u))
	}
	return out, nil
}

// DeleteUser deletes a user with their tokens and roles (admin only); an
// admin cannot delete themself.
func (s *Users) DeleteUser(ctx context.Context, name string) error {
	if err := requireAdmin(ctx, "deleting users"); err != nil {
		return err
	}
	if p := api.PrincipalFrom(ctx); p != nil && p.Name == name {
		return api.Errorf(api.EInvalid, "you cannot delete yourself — ask another admin")
	}
	u, err := s.store.UserByName(ctx, name)
	if err != nil {
		return err
	}
	if err := s.store.DeleteUser(ctx, u.ID); err != nil {
		return err
	}
	s.log.Info("user.deleted", "user", name, "actor", api.ActorName(ctx))
	s.audit.recordPlatform(ctx, "user.delete", "deleted user %s", name)
	return nil
}

// ChangePassword sets the caller's password after checking the old one (a
// user who has none yet, such as the bootstrap admin, gives "").
func (s *Users) ChangePassword(ctx context.Context, ch api.PasswordChange) error {
	p := api.PrincipalFrom(ctx)
	if p == nil {
		return api.Errorf(api.EUnauthorized, "not logged in")
	}
	if err := password.Check(ch.New); err != nil {
		return api.Errorf(api.EInvalid, "%v", err)
	}
	old, err := s.store.PasswordHash(ctx, p.UserID)
	if err != nil {
		return err
	}
	if old != "" {
		if err := password.Verify(old, ch.Old); err != nil {
			if errors.Is(err, password.ErrMismatch) {
				return api.Errorf(api.EForbidden, "the current password is wrong — type it again")
			}
			return err
		}
	}
	hash, err := password.Hash(ch.New)
	if err != nil {
		return err
	}
	if err := s.store.SetPasswordHash(ctx, p.UserID, hash); err != nil {
		return err
	}
	s.audit.recordPlatform(ctx, "user.password", "%s changed their password", p.Name)
	return nil
}

// Tokens lists the caller's tokens, marking the current one.
func (s *Users) Tokens(ctx context.Context) ([]api.TokenInfo, error) {
	p := api.PrincipalFrom(ctx)
	if p == nil {
		return nil, api.Errorf(api.EUnauthorized, "not logged in")
	}
	ts, err := s.store.Tokens(ctx, p.UserID)
	if err != nil {
		return nil, err
	}
	out := make([]api.TokenInfo, 0, len(ts))
	for _, t := range ts {
		out = append(out, api.TokenInfo{ID: t.ID(), Description: t.Description, CreatedAt: t.CreatedAt, ExpiresAt: t.ExpiresAt, Current: t.Hash == p.TokenHash})
	}
	return out, nil
}

// RevokeToken deletes one of the caller's tokens by its ID.
func (s *Users) RevokeToken(ctx context.Context, id string) error {
	p := api.PrincipalFrom(ctx)
	if p == nil {
		return api.Errorf(api.EUnauthorized, "not logged in")
	}
	if len(id) != 16 || strings.Trim(id, "0123456789abcdef") != "" {
		return api.Errorf(api.EInvalid, "token id %q is not 16 hex digits — see strata tokens", id)
	}
	ts, err := s.store.Tokens(ctx, p.UserID)
	if err != nil {
		return err
	}
	for _, t := range ts {
		if t.ID() == id {
			return s.store.DeleteToken(ctx, t.Hash)
		}
	}
	return api.Errorf(api.ENotFound, "you have no token %s — see strata tokens", id)
}

// loginThrottle refuses logins for a user name or from an address after
// repeated failures: after failFree failures in a row, each further one
// doubles the wait from failWait up to failMax. A success clears the name
// and the address. State is per controller and in memory.
type loginThrottle struct {
	now func() time.Time
	mu  sync.Mutex
	m   map[string]*failures
}

type failures struct {
	n     int
	until time.Time
}

const (
	failFree = 5
	failWait = time.Second
	failMax  = 15 * time.Minute
	// throttleKeys bounds the remembered keys; the oldest half is dropped.
	throttleKeys = 100_000
)

func newLoginThrottle(now func() time.Time) *loginThrottle {
	return &loginThrottle{now: now, m: map[string]*failures{}}
}

func throttleKeysOf(user, from string) [2]string { return [2]string{"u:" + user, "a:" + from} }

// wait returns how long the user or address must still wait, or 0.
func (t *loginThrottle) wait(user, from string) time.Duration {
	t.mu.Lock()
	defer t.mu.Unlock()
	now, longest := t.now(), time.Duration(0)
	for _, k := range throttleKeysOf(user, from) {
		if f := t.m[k]; f != nil && f.until.After(now) && f.until.Sub(now) > longest {
			longest = f.until.Sub(now)
		}
	}
	return longest
}

func (t *loginThrottle) failed(user, from string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.m) >= throttleKeys {
		for k := range t.m {
			delete(t.m, k)
			if len(t.m) < throttleKeys/2 {
				break
			}
		}
	}
	for _, k := range throttleKeysOf(user, from) {
		f := t.m[k]
		if f == nil {
			f = &failures{}
			t.m[k] = f
		}
		f.n++
		if f.n > failFree {
			d := failWait << min(f.n-failFree-1, 20)
			f.until = t.now().Add(min(d, failMax))
		}
	}
}

func (t *loginThrottle) succeeded(user, from string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, k := range throttleKeysOf(user, from) {
		delete(t.m, k)
	}
}
