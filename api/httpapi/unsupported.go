package httpapi

import (
	"context"
	"encoding/json"
	"io"
	"net/http"

	"github.com/strata-paas/strata/api"
)

// Unsupported stands in for a service a deployment does not have, so that
// every field of Services is set: each of its methods answers the
// api.EUnsupported error "<What> is not supported yet — <Hint>" and does
// nothing else, and as the Git handler it answers that error as JSON with
// status 501. It implements every service of Services and is safe for
// concurrent use.
type Unsupported struct {
	// What names the missing capability as the subject of the message,
	// e.g. "managing TLS certificates".
	What string
	// Hint says what to do instead, e.g. "start stratad with
	// --secret-key-file"; may be empty.
	Hint string
}

var (
	_ api.AuthService        = Unsupported{}
	_ api.UserService        = Unsupported{}
	_ api.OrgService         = Unsupported{}
	_ api.QuotaService       = Unsupported{}
	_ api.BuildpackService   = Unsupported{}
	_ api.DomainService      = Unsupported{}
	_ api.AppService         = Unsupported{}
	_ api.DeployService      = Unsupported{}
	_ api.LogService         = Unsupported{}
	_ api.LifecycleService   = Unsupported{}
	_ api.OperateService     = Unsupported{}
	_ api.PlacementService   = Unsupported{}
	_ api.RouteService       = Unsupported{}
	_ api.CertificateService = Unsupported{}
	_ api.BlobStore          = Unsupported{}
	_ NodeService            = Unsupported{}
	_ http.Handler           = Unsupported{}
)

// Err returns the error every method of u answers.
func (u Unsupported) Err() error {
	what := u.What
	if what == "" {
		what = "this"
	}
	if u.Hint == "" {
		return api.Errorf(api.EUnsupported, "%s is not supported yet", what)
	}
	return api.Errorf(api.EUnsupported, "%s is not supported yet — %s", what, u.Hint)
}

// ServeHTTP answers u.Err() as a JSON error.
func (u Unsupported) ServeHTTP(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(statusOf(api.EUnsupported))
	_ = json.NewEncoder(w).Encode(errorBody{Error: &api.Error{Code: api.EUnsupported, Message: api.ErrorMessage(u.Err())}})
}

// Authenticate implements api.AuthService.
func (u Unsupported) Authenticate(context.Context, string) (*api.Principal, error) {
	return nil, u.Err()
}

// CreateApp implements api.AppService.
func (u Unsupported) CreateApp(context.Context, string) (*api.App, error) { return nil, u.Err() }

// ListApps implements api.AppService.
func (u Unsupported) ListApps(context.Context) ([]*api.AppSummary, error) { return nil, u.Err() }

// AppDetail implements api.AppService.
func (u Unsupported) AppDetail(context.Context, string) (*api.AppDetail, error) { return nil, u.Err() }

// DeleteApp implements api.AppService.
func (u Unsupported) DeleteApp(context.Context, string) error { return u.Err() }

// PurgeCache implements api.AppService.
func (u Unsupported) PurgeCache(context.Context, string) error { return u.Err() }

// Deploy implements api.DeployService; it reads nothing of the source.
func (u Unsupported) Deploy(context.Context, api.DeployRequest) (*api.DeployResult, error) {
	return nil, u.Err()
}

// Logs implements api.LogService.
func (u Unsupported) Logs(context.Context, api.LogQuery, func(api.LogEnvelope) error) error {
	return u.Err()
}

// Releases implements api.LifecycleService.
func (u Unsupported) Releases(context.Context, string) ([]*api.Release, error) { return nil, u.Err() }

// Rollback implements api.LifecycleService.
func (u Unsupported) Rollback(context.Context, string, int) (*api.Release, error) {
	return nil, u.Err()
}

// Env implements api.LifecycleService.
func (u Unsupported) Env(context.Context, string) (map[string]string, error) { return nil, u.Err() }

// ChangeEnv implements api.LifecycleService.
func (u Unsupported) ChangeEnv(context.Context, string, api.EnvChange) (*api.Release, error) {
	return nil, u.Err()
}

// Scale implements api.LifecycleService.
func (u Unsupported) Scale(context.Context, string, api.ScaleRequest) (*api.ScaleResult, error) {
	return nil, u.Err()
}

// SetState implements api.LifecycleService.
func (u Unsupported) SetState(context.Context, string, api.AppState) (*api.App, error) {
	return nil, u.Err()
}

// Restart implements api.LifecycleService.
func (u Unsupported) Restart(context.Context, string) (*api.Release, error) { return nil, u.Err() }

// Events implements api.LifecycleService.
func (u Unsupported) Events(context.Context, string, int) ([]*api.Event, error) {
	return nil, u.Err()
}

// SetHealthCheck implements api.OperateService.
func (u Unsupported) SetHealthCheck(context.Context, string, api.HealthCheckRequest) (*api.Process, error) {
	return nil, u.Err()
}

// RunTask implements api.OperateService; it calls fn never.
func (u Unsupported) RunTask(context.Context, string, api.TaskRequest, func(api.TaskEvent) error) (*api.TaskEvent, error) {
	return nil, u.Err()
}

// Spaces implements api.PlacementService.
func (u Unsupported) Spaces(context.Context) ([]*api.SpaceInfo, error) { return nil, u.Err() }

// SetSpacePlacement implements api.PlacementService.
func (u Unsupported) SetSpacePlacement(context.Context, string, api.PlacementPolicy) (*api.SpaceInfo, error) {
	return nil, u.Err()
}

// SetOrgPlacement implements api.PlacementService.
func (u Unsupported) SetOrgPlacement(context.Context, api.PlacementPolicy) error { return u.Err() }

// AppPlacement implements api.PlacementService.
func (u Unsupported) AppPlacement(context.Context, string) (api.PlacementPolicy, error) {
	return api.PlacementPolicy{}, u.Err()
}

// SetAppPlacement implements api.PlacementService.
func (u Unsupported) SetAppPlacement(context.Context, string, api.PlacementPolicy) error {
	return u.Err()
}

// DrainNode implements api.PlacementService.
func (u Unsupported) DrainNode(context.Context, string) (*api.Node, error) { return nil, u.Err() }

// UndrainNode implements api.PlacementService.
func (u Unsupported) UndrainNode(context.Context, string) (*api.Node, error) { return nil, u.Err() }

// ListRoutes implements api.RouteService.
func (u Unsupported) ListRoutes(context.Context) ([]*api.RouteInfo, error) { return nil, u.Err() }

// MapRoute implements api.RouteService.
func (u Unsupported) MapRoute(context.Context, string, api.RouteRequest) (*api.RouteInfo, error) {
	return nil, u.Err()
}

// UnmapRoute implements api.RouteService.
func (u Unsupported) UnmapRoute(context.Context, string, api.RouteRequest) error { return u.Err() }

// AddCertificate implements api.CertificateService.
func (u Unsupported) AddCertificate(context.Context, api.CertificateUpload) (*api.Certificate, error) {
	return nil, u.Err()
}

// Certificates implements api.CertificateService.
func (u Unsupported) Certificates(context.Context) ([]api.Certificate, error) { return nil, u.Err() }

// RemoveCertificate implements api.CertificateService.
func (u Unsupported) RemoveCertificate(context.Context, string) error { return u.Err() }

// CertificateKeyPairs implements api.CertificateService.
func (u Unsupported) CertificateKeyPairs(context.Context) ([]api.CertificateKeyPair, error) {
	return nil, u.Err()
}

// Put implements api.BlobStore; it reads nothing of r.
func (u Unsupported) Put(context.Context, io.Reader) (api.BlobRef, error) { return "", u.Err() }

// Get implements api.BlobStore.
func (u Unsupported) Get(context.Context, api.BlobRef) (io.ReadCloser, error) { return nil, u.Err() }

// Delete implements api.BlobStore.
func (u Unsupported) Delete(context.Context, api.BlobRef) error { return u.Err() }

// Nodes implements NodeService.
func (u Unsupported) Nodes(context.Context) ([]api.Node, error) { return nil, u.Err() }

// Login implements api.UserService.
func (u Unsupported) Login(context.Context, api.LoginRequest, string) (*api.LoginResult, error) {
	return nil, u.Err()
}

// Logout implements api.UserService.
func (u Unsupported) Logout(context.Context) error { return u.Err() }

// CreateUser implements api.UserService.
func (u Unsupported) CreateUser(context.Context, api.UserRequest) (*api.CreatedUser, error) {
	return nil, u.Err()
}

// ListUsers implements api.UserService.
func (u Unsupported) ListUsers(context.Context) ([]api.UserInfo, error) { return nil, u.Err() }

// DeleteUser implements api.UserService.
func (u Unsupported) DeleteUser(context.Context, string) error { return u.Err() }

// ChangePassword implements api.UserService.
func (u Unsupported) ChangePassword(context.Context, api.PasswordChange) error { return u.Err() }

// Tokens implements api.UserService.
func (u Unsupported) Tokens(context.Context) ([]api.TokenInfo, error) { return nil, u.Err() }

// RevokeToken implements api.UserService.
func (u Unsupported) RevokeToken(context.Context, string) error { return u.Err() }

// ListOrgs implements api.OrgService.
func (u Unsupported) ListOrgs(context.Context) ([]api.OrgInfo, error) { return nil, u.Err() }

// CreateOrg implements api.OrgService.
func (u Unsupported) CreateOrg(context.Context, string) (*api.OrgInfo, error) { return nil, u.Err() }

// DeleteOrg implements api.OrgService.
func (u Unsupported) DeleteOrg(context.Context, string, bool) error { return u.Err() }

// ListSpaces implements api.OrgService.
func (u Unsupported) ListSpaces(context.Context, string) ([]*api.Space, error) { return nil, u.Err() }

// CreateSpace implements api.OrgService.
func (u Unsupported) CreateSpace(context.Context, string, string) (*api.Space, error) {
	return nil, u.Err()
}

// DeleteSpace implements api.OrgService.
func (u Unsupported) DeleteSpace(context.Context, string, string, bool) error { return u.Err() }

// SetRole implements api.OrgService.
func (u Unsupported) SetRole(context.Context, api.RoleRequest) error { return u.Err() }

// UnsetRole implements api.OrgService.
func (u Unsupported) UnsetRole(context.Context, api.RoleRequest) error { return u.Err() }

// OrgEvents implements api.OrgService.
func (u Unsupported) OrgEvents(context.Context, string, int) ([]*api.Event, error) {
	return nil, u.Err()
}

// PlatformEvents implements api.OrgService.
func (u Unsupported) PlatformEvents(context.Context, int) ([]*api.Event, error) {
	return nil, u.Err()
}

// Members implements api.OrgService.
func (u Unsupported) Members(context.Context, string) ([]api.Member, error) { return nil, u.Err() }

// Quotas implements api.QuotaService.
func (u Unsupported) Quotas(context.Context, string) ([]api.QuotaInfo, error) { return nil, u.Err() }

// SetQuota implements api.QuotaService.
func (u Unsupported) SetQuota(context.Context, api.QuotaRequest) (*api.QuotaInfo, error) {
	return nil, u.Err()
}

// ListBuildpacks implements api.BuildpackService.
func (u Unsupported) ListBuildpacks(context.Context) ([]api.BuildpackInfo, error) {
	return nil, u.Err()
}

// PutBuildpack implements api.BuildpackService; it reads nothing.
func (u Unsupported) PutBuildpack(context.Context, string, int, io.Reader, bool) (*api.BuildpackInfo, error) {
	return nil, u.Err()
}

// DeleteBuildpack implements api.BuildpackService.
func (u Unsupported) DeleteBuildpack(context.Context, string) error { return u.Err() }

// ListDomains implements api.DomainService.
func (u Unsupported) ListDomains(context.Context) ([]api.DomainInfo, error) { return nil, u.Err() }

// CreateDomain implements api.DomainService.
func (u Unsupported) CreateDomain(context.Context, api.DomainInfo) (*api.DomainInfo, error) {
	return nil, u.Err()
}

// DeleteDomain implements api.DomainService.
func (u Unsupported) DeleteDomain(context.Context, string) error { return u.Err() }
