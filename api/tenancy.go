package api

import (
	"context"
	"io"
	"time"
)

// Role is what a user may do in an org or a space, as in Cloud Foundry.
// Admins (User.Admin) may do everything and need no role.
type Role string

// Roles. Org roles are bound to an org, space roles to one space of it.
const (
	RoleOrgManager     Role = "org-manager"     // manages the org's spaces, members and private domains
	RoleOrgAuditor     Role = "org-auditor"     // reads the org: its spaces, members, quotas
	RoleSpaceManager   Role = "space-manager"   // manages the space's members; reads its apps
	RoleSpaceDeveloper Role = "space-developer" // pushes, scales, sets env, runs tasks, maps routes
	RoleSpaceAuditor   Role = "space-auditor"   // reads the space's apps, releases, events and logs
)

// Roles lists every role, org roles first.
var Roles = []Role{RoleOrgManager, RoleOrgAuditor, RoleSpaceManager, RoleSpaceDeveloper, RoleSpaceAuditor}

// IsSpaceRole reports whether r is bound to a space (else to an org).
func (r Role) IsSpaceRole() bool {
	return r == RoleSpaceManager || r == RoleSpaceDeveloper || r == RoleSpaceAuditor
}

// ParseRole checks a role name as users type it.
func ParseRole(s string) (Role, error) {
	for _, r := range Roles {
		if string(r) == s {
			return r, nil
		}
	}
	return "", Errorf(EInvalid, "role %q is not one of org-manager, org-auditor, space-manager, space-developer, space-auditor", truncate(s, 40))
}

// RoleBinding gives a user a role in an org (SpaceID "") or in a space.
type RoleBinding struct {
	UserID  string `json:"user_id"`
	OrgID   string `json:"org_id"`
	SpaceID string `json:"space_id,omitempty"`
	Role    Role   `json:"role"`
}

// Member is a user with a role, as `strata users --org O` lists them.
type Member struct {
	User  string `json:"user"`
	Org   string `json:"org"`
	Space string `json:"space,omitempty"`
	Role  Role   `json:"role"`
}

// RoleRequest binds or unbinds a role.
type RoleRequest struct {
	User  string `json:"user"`
	Role  Role   `json:"role"`
	Org   string `json:"org"`
	Space string `json:"space,omitempty"` // required for space roles
}

// UserInfo is a user as the API shows it (never a password hash).
type UserInfo struct {
	Name      string    `json:"name"`
	Admin     bool      `json:"admin"`
	CreatedAt time.Time `json:"created_at"`
}

// UserRequest creates a user. An empty Password makes the controller
// generate one and return it once.
type UserRequest struct {
	Name     string `json:"name"`
	Admin    bool   `json:"admin"`
	Password string `json:"password,omitempty"`
}

// CreatedUser is a new user and, when the controller generated it, the
// password (shown once).
type CreatedUser struct {
	User              UserInfo `json:"user"`
	GeneratedPassword string   `json:"generated_password,omitempty"`
}

// LoginRequest exchanges a user name and password for a token.
type LoginRequest struct {
	Username string `json:"username"`
	Password string `json:"password"`
}

// LoginResult is a new API token. The token is shown once; only its hash is
// stored.
type LoginResult struct {
	Token     string    `json:"token"`
	ExpiresAt time.Time `json:"expires_at"`
	User      UserInfo  `json:"user"`
}

// TokenInfo describes one of a user's tokens; ID is the first 16 hex digits
// of the token's SHA-256 hash, never the token.
type TokenInfo struct {
	ID          string     `json:"id"`
	Description string     `json:"description"`
	CreatedAt   time.Time  `json:"created_at"`
	ExpiresAt   *time.Time `json:"expires_at,omitempty"`
	Current     bool       `json:"current,omitempty"` // the token of this request
}

// PasswordChange changes the caller's password.
type PasswordChange struct {
	Old string `json:"old"`
	New string `json:"new"`
}

// OrgInfo is an org with its spaces.
type OrgInfo struct {
	Name      string    `json:"name"`
	Spaces    []string  `json:"spaces"`
	CreatedAt time.Time `json:"created_at"`
}

// Target is the org and space a request acts in. Empty names mean the
// default org and space.
type Target struct {
	Org   string `json:"org"`
	Space string `json:"space"`
}

// Validate checks the names of a target as they arrive from headers, the
// CLI config or the environment; empty names (the defaults) are fine.
func (t Target) Validate() error {
	if t.Org != "" {
		if err := ValidateName("org", t.Org); err != nil {
			return err
		}
	}
	if t.Space != "" {
		if err := ValidateName("space", t.Space); err != nil {
			return err
		}
	}
	return nil
}

type targetKey struct{}

// WithTarget returns a context whose app requests act in t.
func WithTarget(ctx context.Context, t Target) context.Context {
	return context.WithValue(ctx, targetKey{}, t)
}

// TargetFrom returns the target in ctx (zero: the default org and space).
func TargetFrom(ctx context.Context) Target {
	t, _ := ctx.Value(targetKey{}).(Target)
	return t
}

// Headers that carry the target of an API request.
const (
	HeaderOrg   = "X-Strata-Org"
	HeaderSpace = "X-Strata-Space"
)

// UserService manages users, passwords and tokens. Creating and deleting
// users is for admins; everyone manages their own password and tokens.
type UserService interface {
	Login(ctx context.Context, req LoginRequest, from string) (*LoginResult, error)
	// Logout revokes the token of the request.
	Logout(ctx context.Context) error
	CreateUser(ctx context.Context, req UserRequest) (*CreatedUser, error)
	ListUsers(ctx context.Context) ([]UserInfo, error)
	DeleteUser(ctx context.Context, name string) error
	ChangePassword(ctx context.Context, ch PasswordChange) error
	Tokens(ctx context.Context) ([]TokenInfo, error)
	RevokeToken(ctx context.Context, id string) error
}

// OrgService manages orgs, spaces and roles.
type OrgService interface {
	ListOrgs(ctx context.Context) ([]OrgInfo, error)
	CreateOrg(ctx context.Context, name string) (*OrgInfo, error)
	// DeleteOrg refuses an org that still has spaces unless recursive.
	DeleteOrg(ctx context.Context, name string, recursive bool) error
	ListSpaces(ctx context.Context, org string) ([]*Space, error)
	CreateSpace(ctx context.Context, org, name string) (*Space, error)
	// DeleteSpace refuses a space that still has apps unless recursive.
	DeleteSpace(ctx context.Context, org, name string, recursive bool) error
	SetRole(ctx context.Context, req RoleRequest) error
	UnsetRole(ctx context.Context, req RoleRequest) error
	Members(ctx context.Context, org string) ([]Member, error)
	// OrgEvents lists the org-level events (roles, quotas, spaces), newest
	// first, at most limit (0: the default).
	OrgEvents(ctx context.Context, org string, limit int) ([]*Event, error)
	// PlatformEvents lists the events of no org — users and certificates —
	// newest first, at most limit (0: the default); admins only.
	PlatformEvents(ctx context.Context, limit int) ([]*Event, error)
}

// Token is a stored API token: the SHA-256 hex hash of the token, never the
// token itself. ExpiresAt nil never expires.
type Token struct {
	Hash        string
	UserID      string
	Description string
	CreatedAt   time.Time
	ExpiresAt   *time.Time
}

// ID is how users name a token: the first 16 hex digits of its hash.
func (t *Token) ID() string {
	if len(t.Hash) < 16 {
		return t.Hash
	}
	return t.Hash[:16]
}

// Quota limits what the apps of an org or a space may use together; 0 is
// unlimited. Memory and instances count the desired formations (instances ×
// memory of every process type), so a push or scale over them is refused
// before anything starts.
type Quota struct {
	MemoryMB  int `json:"memory_mb"`
	Instances int `json:"instances"`
	Apps      int `json:"apps"`
	Routes    int `json:"routes"`
}

// IsZero reports whether q limits nothing.
func (q Quota) IsZero() bool { return q == Quota{} }

// QuotaScope is what a stored quota belongs to.
type QuotaScope string

// Quota scopes.
const (
	QuotaOrg   QuotaScope = "org"
	QuotaSpace QuotaScope = "space"
)

// StoredQuota is a quota with its owner.
type StoredQuota struct {
	Scope   QuotaScope
	OwnerID string
	Quota   Quota
}

// QuotaInfo is a quota as `strata quotas` shows it, with what is used.
type QuotaInfo struct {
	Org   string `json:"org"`
	Space string `json:"space,omitempty"`
	Quota Quota  `json:"quota"`
	Used  Quota  `json:"used"`
}

// QuotaRequest sets the quota of an org (Space "") or a space.
type QuotaRequest struct {
	Org   string `json:"org"`
	Space string `json:"space,omitempty"`
	Quota Quota  `json:"quota"`
}

// EQuota is the error code of a change that would exceed a quota (422); the
// message names what is used and what is allowed.
const EQuota = "quota_exceeded"

// QuotaService reads and sets quotas.
type QuotaService interface {
	// Quotas lists the quotas of an org and its spaces with their use.
	Quotas(ctx context.Context, org string) ([]QuotaInfo, error)
	// SetQuota sets a quota (admin); a zero quota removes it.
	SetQuota(ctx context.Context, req QuotaRequest) (*QuotaInfo, error)
}

// BuildpackInfo is a registered classic buildpack (strata buildpacks).
type BuildpackInfo struct {
	Name      string    `json:"name"`
	Position  int       `json:"position"` // detection order, 1 first
	Blob      BlobRef   `json:"blob"`
	UpdatedAt time.Time `json:"updated_at"`
}

// BuildpackService registers classic buildpacks (admin) and lists them.
type BuildpackService interface {
	ListBuildpacks(ctx context.Context) ([]BuildpackInfo, error)
	// PutBuildpack stores archive (a gzip tar of the buildpack's directory,
	// with bin/detect and bin/compile) under name at position (0: last);
	// create refuses an existing name, update a missing one.
	PutBuildpack(ctx context.Context, name string, position int, archive io.Reader, create bool) (*BuildpackInfo, error)
	DeleteBuildpack(ctx context.Context, name string) error
}

// ValidateBuildpackName checks a buildpack name: 1–63 of a–z, 0–9, '.', '_'
// and '-', not starting with '.' or '-'.
func ValidateBuildpackName(name string) error {
	ok := name != "" && len(name) <= MaxNameLength && name[0] != '.' && name[0] != '-'
	for i := 0; ok && i < len(name); i++ {
		c := name[i]
		ok = c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-'
	}
	if !ok {
		return Errorf(EInvalid, "buildpack name %q may only contain a-z, 0-9, '.', '_' and '-' (at most %d, not starting with '.' or '-')", truncate(name, 40), MaxNameLength)
	}
	return nil
}
