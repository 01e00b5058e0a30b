package controller

import (
	"context"
	"fmt"

	"github.com/strata-paas/strata/api"
)

// Authenticate returns the principal owning token. A missing or unknown token
// is EUnauthorized; a database failure keeps its code (EUnavailable). Only the
// token's SHA-256 hash is looked up, so timing does not depend on how much of
// a stored token matches.
func (c *Controller) Authenticate(ctx context.Context, token string) (*api.Principal, error) {
	if token == "" {
		return nil, errBadToken()
	}
	u, err := c.store.UserByTokenHash(ctx, hashToken(token))
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
