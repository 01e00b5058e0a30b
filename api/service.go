package api

import (
	"context"
	"io"
)

// The services below are implemented by api/controller and consumed by the
// adapters that face users (api/httpapi, api/gitpush). Every method reads the
// caller from ctx (PrincipalFrom) and returns *Error values with codes.

// AuthService turns a bearer token into a principal.
type AuthService interface {
	// Authenticate returns the principal owning token, or EUnauthorized.
	Authenticate(ctx context.Context, token string) (*Principal, error)
}

// AppService manages apps in the caller's space.
type AppService interface {
	CreateApp(ctx context.Context, name string) (*App, error)
	ListApps(ctx context.Context) ([]*AppSummary, error)
	AppDetail(ctx context.Context, name string) (*AppDetail, error)
	// DeleteApp stops the app's instances, unmaps its routes and deletes it.
	DeleteApp(ctx context.Context, name string) error
	// PurgeCache asks the builders to delete the app's build cache.
	PurgeCache(ctx context.Context, name string) error
}

// DeployRequest asks to build source and make it the app's current release.
type DeployRequest struct {
	App       string
	Source    io.Reader // a gzip-compressed tar archive of the app's source
	CreateApp bool      // create the app first if it does not exist
	Wait      bool      // wait until the new release's instances are healthy
	// IgnoreManifest skips the manifest at the root of Source (strata.yml,
	// else manifest.yml), which is otherwise applied before the build.
	IgnoreManifest bool
	// Buildpacks names the buildpacks to run, in order (strata push -b);
	// empty: the manifest's buildpacks, else detection.
	Buildpacks []string
	// NoCache builds without the app's build cache (strata push --no-cache).
	NoCache bool
	// Image deploys an image the nodes' engines have instead of building
	// Source (strata push --docker-image); Source is then empty.
	Image string
	// ImageFile says Source is a `docker save` tarball to deploy (strata
	// push --docker-image-file), stored as a blob and loaded by each node.
	ImageFile bool
	// Progress receives build output and status lines as they happen. It is
	// called from one goroutine at a time and must not block for long.
	Progress func(DeployEvent)
}

// Deploy event types.
const (
	DeployEventLog    = "log"    // a line of build output
	DeployEventStatus = "status" // a platform status line ("waiting for 1/2 instances")
)

// DeployEvent is one line of progress of a deploy.
type DeployEvent struct {
	Type string `json:"type"`
	Line string `json:"line"`
}

// DeployResult is the outcome of a successful deploy.
type DeployResult struct {
	Build   *Build   `json:"build"`
	Release *Release `json:"release"`
	URLs    []string `json:"urls"`
	Running int      `json:"running"`
	Desired int      `json:"desired"`
}

// EBuildFailed is the error code of a deploy whose build failed; the message
// carries the typed reason ("compile failed (exit 2)").
const EBuildFailed = "build_failed"

// DeployService builds source into a release and rolls it out.
type DeployService interface {
	// Deploy stores the source, stages it, records a release, and (with Wait)
	// waits for its instances. A failed build returns an EBuildFailed *Error;
	// instances that never become healthy return ETimeout.
	Deploy(ctx context.Context, req DeployRequest) (*DeployResult, error)
}

// MetricsService serves the last hour of an app's use, minute by minute.
type MetricsService interface {
	Metrics(ctx context.Context, app string) ([]MetricPoint, error)
}

// LogQuery selects log lines of one app.
type LogQuery struct {
	App    string
	Source string // "" = all; else a source prefix: "app", "staging", "router", "strata", "app/web/0"
	Recent int    // how many recent lines to send first (0 = default 100)
	Follow bool   // keep sending live lines until ctx ends
}

// LogService serves an app's logs.
type LogService interface {
	// Logs calls fn with recent lines (oldest first), then, with Follow, with
	// live lines until ctx is done or fn returns an error.
	Logs(ctx context.Context, q LogQuery, fn func(LogEnvelope) error) error
}

// Info describes a Strata installation; served without auth at /v1/info.
type Info struct {
	Version    string `json:"version"`
	Domain     string `json:"domain"`
	RouterPort string `json:"router_port"`
	API        string `json:"api"`
}
