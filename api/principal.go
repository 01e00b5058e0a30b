package api

import "context"

// Principal is the authenticated caller of an API or git request.
type Principal struct {
	UserID string `json:"user_id"`
	Name   string `json:"name"`
	Admin  bool   `json:"admin"`
	// Component is set for Strata's own parts (ComponentExecutor,
	// ComponentRouter), which may do only what that part needs.
	Component string `json:"component,omitempty"`
	// Roles are the user's role bindings when the request was authenticated.
	Roles []RoleBinding `json:"-"`
	// TokenHash identifies the token of the request (for logout).
	TokenHash string `json:"-"`
}

type principalKey struct{}

// WithPrincipal returns a context carrying p.
func WithPrincipal(ctx context.Context, p *Principal) context.Context {
	return context.WithValue(ctx, principalKey{}, p)
}

// PrincipalFrom returns the principal in ctx, or nil.
func PrincipalFrom(ctx context.Context) *Principal {
	p, _ := ctx.Value(principalKey{}).(*Principal)
	return p
}

// ActorName returns the name of ctx's principal, or "system".
func ActorName(ctx context.Context) string {
	if p := PrincipalFrom(ctx); p != nil {
		return p.Name
	}
	return "system"
}

// Components: the credentials of Strata's own parts.
const (
	ComponentExecutor = "executor" // fetches droplets and image files (GET /v1/blobs/:ref)
	ComponentRouter   = "router"   // fetches TLS certificates (GET /v1/router/certificates)
	ComponentBuilder  = "builder"  // fetches sources and buildpacks, uploads droplets (GET and POST /v1/blobs)
)
