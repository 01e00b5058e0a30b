package api

import "time"

// Org is a tenant. Every space belongs to one org.
type Org struct {
	ID        string    `json:"id"`
	Name      string    `json:"name"`
	CreatedAt time.Time `json:"created_at"`
}

// Space groups apps inside an org. App names are unique within a space.
type Space struct {
	ID        string    `json:"id"`
	OrgID     string    `json:"org_id"`
	Name      string    `json:"name"`
	CreatedAt time.Time `json:"created_at"`
}

// User is a person or robot that holds API tokens.
type User struct {
	ID        string    `json:"id"`
	Name      string    `json:"name"`
	Admin     bool      `json:"admin"`
	Component string    `json:"component,omitempty"` // executor, router: a part of Strata, not a person
	CreatedAt time.Time `json:"created_at"`
}

// AppState is what the user asked an app to be.
type AppState string

// App states.
const (
	AppStarted AppState = "started"
	AppStopped AppState = "stopped"
)

// App is a named, deployable unit in a space.
type App struct {
	ID             string    `json:"id"`
	SpaceID        string    `json:"space_id"`
	Name           string    `json:"name"`
	State          AppState  `json:"state"`
	CurrentRelease int       `json:"current_release"` // version; 0 = never released
	CreatedAt      time.Time `json:"created_at"`
	UpdatedAt      time.Time `json:"updated_at"`
}

// BuildState is the lifecycle of one staging run:
//
//	pending ──▶ staging ──▶ staged
//	   │           │
//	   └───────────┴──────▶ failed
type BuildState string

// Build states.
const (
	BuildPending BuildState = "pending"
	BuildStaging BuildState = "staging"
	BuildStaged  BuildState = "staged"
	BuildFailed  BuildState = "failed"
)

// CanTransitionTo reports whether a build may move from s to next.
func (s BuildState) CanTransitionTo(next BuildState) bool {
	switch s {
	case BuildPending:
		return next == BuildStaging || next == BuildFailed
	case BuildStaging:
		return next == BuildStaged || next == BuildFailed
	}
	return false
}

// Terminal reports whether s is a final state.
func (s BuildState) Terminal() bool { return s == BuildStaged || s == BuildFailed }

// BuildFailure says why a build failed. It is typed so that nobody classifies
// failures by string matching.
type BuildFailure string

// Build failure kinds.
const (
	FailNoBuildpack BuildFailure = "no_buildpack"   // no buildpack detected the app
	FailCompile     BuildFailure = "compile_failed" // a buildpack's compile step failed
	FailTimeout     BuildFailure = "timed_out"      // staging exceeded its deadline
	FailBadSource   BuildFailure = "bad_source"     // the source archive was refused (unsafe or too big)
	FailInternal    BuildFailure = "internal"       // the platform failed; retrying may help
	FailLostBuilder BuildFailure = "builder_lost"   // no builder finished the job in time
)

// Build is one staging run: source + buildpacks → droplet, or a failure with a
// reason.
type Build struct {
	ID          string       `json:"id"`
	AppID       string       `json:"app_id"`
	State       BuildState   `json:"state"`
	SourceBlob  BlobRef      `json:"source_blob"`
	DropletBlob BlobRef      `json:"droplet_blob,omitempty"`
	Buildpack   string       `json:"buildpack,omitempty"`
	Failure     BuildFailure `json:"failure,omitempty"`
	Reason      string       `json:"reason,omitempty"` // human-readable failure reason
	Actor       string       `json:"actor"`
	CreatedAt   time.Time    `json:"created_at"`
	UpdatedAt   time.Time    `json:"updated_at"`
}

// ProcessType is one process type of a droplet: a name and its start command.
type ProcessType struct {
	Type    string `json:"type"`
	Command string `json:"command"`
}

// StagingInfo is the content of a droplet's staging.json.
type StagingInfo struct {
	Buildpack string            `json:"buildpack"`
	Processes map[string]string `json:"process_types"` // type → start command, run by /bin/sh -c in the app dir
	Stack     string            `json:"stack,omitempty"`
}

// BuildpackDockerfile is the buildpack of a build that made an image from
// the app's Dockerfile instead of a droplet: the build's DropletBlob is then
// a `docker save` tarball, which its release runs as its ImageBlob
// (docs/containers.md).
const BuildpackDockerfile = "dockerfile"

// Release is an immutable, numbered pair of droplet and config. Deploying makes
// a release current; rollback makes an older one current.
type Release struct {
	ID          string  `json:"id"`
	AppID       string  `json:"app_id"`
	Version     int     `json:"version"`
	BuildID     string  `json:"build_id,omitempty"`
	DropletBlob BlobRef `json:"droplet_blob"`
	// Image and ImageBlob are set instead of DropletBlob for an image
	// deploy (strata push --docker-image / --docker-image-file): an image
	// reference the nodes' engines have, or a `docker save` tarball blob.
	Image       string            `json:"image,omitempty"`
	ImageBlob   BlobRef           `json:"image_blob,omitempty"`
	Processes   map[string]string `json:"process_types"`
	Env         map[string]string `json:"env,omitempty"`
	Description string            `json:"description"`
	Actor       string            `json:"actor"`
	CreatedAt   time.Time         `json:"created_at"`
}

// Runnable reports whether instances can run the release: it has a droplet
// or an image (a release of config vars alone before the first push has
// neither).
func (r *Release) Runnable() bool {
	return r.DropletBlob.Valid() || r.Image != "" || r.ImageBlob.Valid()
}

// IsImage reports whether the release runs an image rather than a droplet.
func (r *Release) IsImage() bool { return r.Image != "" || r.ImageBlob.Valid() }

// Process is the desired formation of one process type of an app.
type Process struct {
	AppID     string `json:"app_id"`
	Type      string `json:"type"`
	Instances int    `json:"instances"`
	MemoryMB  int    `json:"memory_mb"`
	DiskMB    int    `json:"disk_mb"`
	// HealthCheck is how instances of this type are checked ("" = port for
	// web, process for others); HealthCheckPath the path of an http check;
	// HealthCheckTimeout the start-up timeout in seconds (0 = default);
	// HealthCheckInterval how often a running instance is checked again, in
	// seconds (0 = default).
	HealthCheck         string `json:"health_check_type,omitempty"`
	HealthCheckPath     string `json:"health_check_http_endpoint,omitempty"`
	HealthCheckTimeout  int    `json:"health_check_timeout,omitempty"`
	HealthCheckInterval int    `json:"health_check_interval,omitempty"`
	// ScaleToZero, for web, is how long in seconds the app may go without
	// requests before its web instances are stopped (0 = never); Sleeping
	// says they are stopped for that reason until the next request wakes
	// them (docs/architecture.md, "Scale to zero").
	ScaleToZero int  `json:"scale_to_zero,omitempty"`
	Sleeping    bool `json:"sleeping,omitempty"`
}

// Default formation values.
const (
	DefaultMemoryMB = 256
	DefaultDiskMB   = 1024
)

// InstanceState is the lifecycle of one running copy of a process type:
//
//	starting ──▶ running ──▶ stopping ──▶ stopped
//	   │            │                        ▲
//	   ▼            ▼                        │
//	crashed ◀───────┘ ──────────────────────-┘
//	   │
//	   └──▶ starting (restart)
type InstanceState string

// Instance states.
const (
	InstanceStarting InstanceState = "starting"
	InstanceRunning  InstanceState = "running"
	InstanceCrashed  InstanceState = "crashed"
	InstanceStopping InstanceState = "stopping"
	InstanceStopped  InstanceState = "stopped"
)

// CanTransitionTo reports whether an instance may move from s to next.
func (s InstanceState) CanTransitionTo(next InstanceState) bool {
	switch s {
	case InstanceStarting:
		return next == InstanceRunning || next == InstanceCrashed || next == InstanceStopping || next == InstanceStopped
	case InstanceRunning:
		return next == InstanceCrashed || next == InstanceStopping || next == InstanceStopped
	case InstanceCrashed:
		return next == InstanceStarting || next == InstanceStopped
	case InstanceStopping:
		return next == InstanceStopped
	}
	return false
}

// Instance is one placed copy of a process type: the controller's record of
// where it should run (written only by the plan applier) and the last state
// its executor reported.
type Instance struct {
	ID        string        `json:"id"` // instance GUID
	AppID     string        `json:"app_id"`
	Process   string        `json:"process"`
	Index     int           `json:"index"`
	Release   int           `json:"release"`
	NodeID    string        `json:"node_id"`
	State     InstanceState `json:"state"`
	Port      int           `json:"port,omitempty"`
	Reason    string        `json:"reason,omitempty"`
	Restarts  int           `json:"restarts"`
	StartedAt time.Time     `json:"started_at,omitempty"`
	CreatedAt time.Time     `json:"created_at"`
	UpdatedAt time.Time     `json:"updated_at"`
	// CPUPercent and MemoryBytes are live usage from the node's latest
	// heartbeat (not stored; 0 when unknown).
	CPUPercent  float64 `json:"cpu_percent,omitempty"`
	MemoryBytes int64   `json:"memory_bytes,omitempty"`
	// Substrate is the instance's node's as its latest heartbeat said (not
	// stored; empty when the node has not reported).
	Substrate Substrate `json:"substrate,omitempty"`
	// Isolation is how the instance is wrapped: the scheduler's choice,
	// stored with the row (empty for rows older than that, which show the
	// node's first isolation).
	Isolation Isolation `json:"isolation,omitempty"`
	// Accel is how a microvm instance's node runs guests ("kvm" or "tcg")
	// as its latest heartbeat said (not stored; empty for other isolations).
	Accel string `json:"accel,omitempty"`
}

// Substrate is what a node is.
type Substrate string

// Substrates.
const (
	SubstrateMetal Substrate = "metal"
	SubstrateVM    Substrate = "vm"
)

// Isolation is how an instance is wrapped on a node.
type Isolation string

// Isolations.
const (
	IsolationProcess           Isolation = "process"
	IsolationProcessUnconfined Isolation = "process-unconfined"
	IsolationContainer         Isolation = "container"
	IsolationMicroVM           Isolation = "microvm"
)

// Capacity is what a node can hold.
type Capacity struct {
	MemoryMB int `json:"memory_mb"`
	DiskMB   int `json:"disk_mb"`
	CPUs     int `json:"cpus"`
}

// Node is an executor as the controller knows it from its heartbeats.
type Node struct {
	ID         string            `json:"id"`
	Address    string            `json:"address"`
	Substrate  Substrate         `json:"substrate"`
	Isolations []Isolation       `json:"isolations"`
	Capacity   Capacity          `json:"capacity"`
	Labels     map[string]string `json:"labels,omitempty"`
	State      string            `json:"state"` // ready | lost | draining
	LastSeen   time.Time         `json:"last_seen"`
	Instances  int               `json:"instances"`
	// Accel is how the node's microvm driver runs guests ("kvm" or "tcg"),
	// as its latest heartbeat said; empty without one.
	Accel string `json:"accel,omitempty"`
}

// Route maps a host (and optional path) on a domain to an app.
type Route struct {
	ID    string `json:"id"`
	AppID string `json:"app_id"`
	Host  string `json:"host"` // full host name, e.g. hello.localhost
	Path  string `json:"path,omitempty"`
}

// URL returns the http URL of the route on the given router port ("" for 80).
func (r Route) URL(port string) string {
	u := "http://" + r.Host
	if port != "" && port != "80" {
		u += ":" + port
	}
	return u + r.Path
}

// AppSummary is one line of `strata apps`.
type AppSummary struct {
	App
	Running int    `json:"running"`
	Desired int    `json:"desired"`
	URL     string `json:"url,omitempty"`
	// ReleasedAt is when the current release was made (the last deploy,
	// config change, scale or rollback); zero before the first.
	ReleasedAt time.Time `json:"released_at,omitempty"`
}

// AppDetail is what `strata app NAME` shows.
type AppDetail struct {
	App
	URLs      []string    `json:"urls"`
	Processes []Process   `json:"processes"`
	Instances []*Instance `json:"instances"`
	Release   *Release    `json:"release,omitempty"`
	LastBuild *Build      `json:"last_build,omitempty"`
	// Placement is the app's effective placement policy (org, space and app
	// policies combined); Unplaceable says why an instance cannot be placed.
	Placement   PlacementPolicy `json:"placement"`
	Unplaceable string          `json:"unplaceable,omitempty"`
	// Sleeping says the app's web instances are stopped while it is idle
	// (scale to zero); LastRequest is when a router last reported a request
	// for it (zero when no router has since this controller started).
	Sleeping    bool      `json:"sleeping,omitempty"`
	LastRequest time.Time `json:"last_request,omitzero"`
}

// Event is one line of an app's audit trail.
type Event struct {
	ID      string    `json:"id"`
	AppID   string    `json:"app_id"`             // "" for an org-level event
	OrgID   string    `json:"org_id,omitempty"`   // the org it happened in
	SpaceID string    `json:"space_id,omitempty"` // the space ("" for org-level events)
	Type    string    `json:"type"`               // push, build.staged, build.failed, release, app.create, role.set, …
	Actor   string    `json:"actor"`
	Message string    `json:"message"`
	Time    time.Time `json:"time"`
}

// MetricPoint is one minute of an app's use: requests and their latency as
// its routers' access lines tell, CPU and memory as its nodes' heartbeats
// tell. A minute with no data has zero values.
type MetricPoint struct {
	Time        time.Time `json:"time"` // the minute's start
	Requests    int       `json:"requests"`
	LatencyMs   float64   `json:"latency_ms"`   // mean of the minute's requests
	CPUPercent  float64   `json:"cpu_percent"`  // 100 = one core, all instances
	MemoryBytes int64     `json:"memory_bytes"` // all instances
}
