package api

import "time"

// NATS subjects. Desired state never lives on the bus: anything lost here is
// repaired by convergence from the database.
const (
	// SubjectRouterRegister and SubjectRouterUnregister carry RouterRegistration
	// (Cloud Foundry gorouter protocol), executor → routers.
	SubjectRouterRegister   = "router.register"
	SubjectRouterUnregister = "router.unregister"
	// SubjectRouterStart carries RouterStart, router → all, on router start.
	SubjectRouterStart = "router.start"
	// SubjectRouterGreet is a request from an executor; routers reply RouterStart.
	SubjectRouterGreet = "router.greet"

	// SubjectNodeHeartbeat carries NodeHeartbeat, executor → controllers.
	SubjectNodeHeartbeat = "strata.node.heartbeat"
	// SubjectInstanceEvent carries InstanceEvent, executor → controllers.
	SubjectInstanceEvent = "strata.instance.event"
	// SubjectBuildJobs is the JetStream work queue of BuildJob, controller → builders.
	SubjectBuildJobs = "strata.build.jobs"
	// SubjectBuildResult is a request carrying BuildResult, builder → controller;
	// the controller replies (empty body) once the result is committed. Builders
	// retry until they get a reply.
	SubjectBuildResult = "strata.build.result"
	// SubjectBuildCachePurge carries BuildCachePurge, controller → every
	// builder (strata apps purge-cache).
	SubjectBuildCachePurge = "strata.build.cache.purge"
	// BuildJobsStream is the JetStream stream holding SubjectBuildJobs.
	BuildJobsStream = "STRATA_BUILDS"
	// SubjectCertificatesChanged carries CertificatesChanged, controller →
	// routers, after a certificate is added or removed. Routers then fetch
	// the whole set from the API; they also refresh periodically, so a lost
	// notification only delays a change.
	SubjectCertificatesChanged = "strata.certificates.changed"
)

// SubjectNodeCommand is the request/reply subject of commands to one executor.
func SubjectNodeCommand(nodeID string) string { return "strata.node." + nodeID + ".cmd" }

// SubjectLogs is the subject of log envelopes of one app, by app ID: names
// are unique only within a space.
func SubjectLogs(appID string) string { return "strata.logs." + appID }

// SubjectLogsAll matches the log subjects of every app.
const SubjectLogsAll = "strata.logs.>"

// MessageVersion is the version of Strata's internal messages. Receivers accept
// messages of this version and ignore fields they do not know.
const MessageVersion = 1

// CertificatesChanged says the uploaded certificates changed. It carries no
// certificate or key.
type CertificatesChanged struct {
	Version int       `json:"v"`
	Name    string    `json:"name"` // the certificate added or removed
	Time    time.Time `json:"time"`
}

// RouterRegistration is the gorouter register/unregister message.
type RouterRegistration struct {
	Host                string            `json:"host"`
	Port                int               `json:"port"`
	URIs                []string          `json:"uris"`
	App                 string            `json:"app,omitempty"` // app ID
	PrivateInstanceID   string            `json:"private_instance_id,omitempty"`
	PrivateInstanceIdx  string            `json:"private_instance_index,omitempty"`
	Tags                map[string]string `json:"tags,omitempty"`
	StaleThresholdInSec int               `json:"stale_threshold_in_seconds,omitempty"`
	// Forget, on an unregister, says the URIs were removed from the app
	// (unmapped): routers drop each of them once it has no endpoint left, so
	// it answers 404 at once. Without it (an instance stopping or restarting,
	// and every message of older executors) a route that lost its last
	// endpoint stays known for a while and its requests are held.
	Forget bool `json:"forget,omitempty"`
	// Sleeping, on a register, says the URIs belong to App, whose web
	// instances are stopped while it is idle (scale to zero): routers keep
	// each route known, with no endpoint, as sleeping for the lease
	// (StaleThresholdInSec), and hold a request for it while they ask for a
	// wake-up on SubjectRouterWake. Host and Port are not used.
	Sleeping bool `json:"sleeping,omitempty"`
}

// SubjectRouterWake carries RouterWake, router → controllers: a request
// arrived for a sleeping route (at most about once a second per route and
// router) and is held. Not under "router.", which is what routers hear.
const SubjectRouterWake = "strata.app.wake"

// RouterWake asks for an instance of a sleeping app.
type RouterWake struct {
	Version int       `json:"v"`
	App     string    `json:"app"` // app ID, from the sleeping registration
	Host    string    `json:"host"`
	Path    string    `json:"path,omitempty"`
	Time    time.Time `json:"time"`
}

// SubjectRouterActivity carries RouterActivity, router → controllers: every
// few seconds, the routes that served requests since the router's previous
// report (scale to zero's idle times).
const SubjectRouterActivity = "strata.app.activity"

// RouterActivity is one router's report of the routes that served requests.
type RouterActivity struct {
	Version int             `json:"v"`
	Router  string          `json:"router"`
	Routes  []RouteActivity `json:"routes"`
	Time    time.Time       `json:"time"`
}

// RouteActivity is when one route of an app last served a request.
type RouteActivity struct {
	App         string    `json:"app"` // app ID, from the route's registrations
	Host        string    `json:"host"`
	Path        string    `json:"path,omitempty"`
	LastRequest time.Time `json:"last_request"`
}

// RouterStart is announced by a router on start and returned to router.greet.
type RouterStart struct {
	ID                               string   `json:"id"`
	Hosts                            []string `json:"hosts"`
	MinimumRegisterIntervalInSeconds int      `json:"minimumRegisterIntervalInSeconds"`
	PruneThresholdInSeconds          int      `json:"pruneThresholdInSeconds"`
}

// NodeHeartbeat is an executor's periodic report of itself and its instances.
type NodeHeartbeat struct {
	Version    int               `json:"v"`
	NodeID     string            `json:"node_id"`
	Address    string            `json:"address"`
	Substrate  Substrate         `json:"substrate"`
	Isolations []Isolation       `json:"isolations"`
	Capacity   Capacity          `json:"capacity"`
	Labels     map[string]string `json:"labels,omitempty"`
	Instances  []InstanceReport  `json:"instances"`
	Time       time.Time         `json:"time"`
	Interval   time.Duration     `json:"interval"` // how often this node heartbeats
	// Accel is how the node's microvm driver runs guests ("kvm" or "tcg",
	// measured by its probe boot); empty without one.
	Accel string `json:"accel,omitempty"`
}

// InstanceReport is one instance as its executor sees it.
type InstanceReport struct {
	InstanceID string        `json:"instance_id"`
	AppID      string        `json:"app_id"`
	Process    string        `json:"process"`
	Index      int           `json:"index"`
	Release    int           `json:"release"`
	State      InstanceState `json:"state"`
	Port       int           `json:"port,omitempty"`
	Restarts   int           `json:"restarts"`
	StartedAt  time.Time     `json:"started_at,omitempty"`
	// FailedStarts counts consecutive runs that ended before the instance
	// ever passed its health check; it is reset once it passes.
	FailedStarts int `json:"failed_starts,omitempty"`
	// CPUPercent is the CPU the instance used since the previous heartbeat
	// (100 = one core); MemoryBytes its memory (cgroup usage when the driver
	// confines it, else the RSS of its processes). Both 0 when unknown.
	CPUPercent  float64 `json:"cpu_percent,omitempty"`
	MemoryBytes int64   `json:"memory_bytes,omitempty"`
	// Routes are the URIs the instance registers (web instances), in the
	// order of its spec; the converger compares them with the app's routes.
	Routes []string `json:"routes,omitempty"`
	// Isolation is how the instance is wrapped on its node (the isolation of
	// the driver running it); empty from executors older than this field.
	Isolation Isolation `json:"isolation,omitempty"`
}

// InstanceEvent is a state transition of one instance, executor → controllers.
type InstanceEvent struct {
	Version  int            `json:"v"`
	NodeID   string         `json:"node_id"`
	Instance InstanceReport `json:"instance"`
	ExitCode *int           `json:"exit_code,omitempty"`
	Reason   string         `json:"reason,omitempty"`
	Time     time.Time      `json:"time"`
	// LastLines are the instance's last output lines before a crash (or a
	// task's end), oldest first.
	LastLines []string `json:"last_lines,omitempty"`
}

// NodeCommandKind is what a NodeCommand asks.
type NodeCommandKind string

// Node command kinds.
const (
	CmdStart NodeCommandKind = "start"
	CmdStop  NodeCommandKind = "stop"
	// CmdRun runs a one-off task: Start holds its spec with Task set. Its
	// output comes as log envelopes with source "task/<instance id>" and its
	// end as an InstanceEvent on SubjectTaskExit; CmdStop cancels it.
	CmdRun NodeCommandKind = "run"
	// CmdRoutes replaces the routes of a running instance (InstanceID,
	// Routes): URIs it no longer has are unregistered at once, new ones
	// registered. An unknown instance is not an error (it is gone or not
	// started yet; its next start carries the routes).
	CmdRoutes NodeCommandKind = "routes"
)

// SubjectTaskExit carries the InstanceEvent (state stopped, ExitCode when
// known) that ends one task, executor → the controller running it.
func SubjectTaskExit(taskID string) string { return "strata.task." + taskID + ".exit" }

// InstanceSpec is everything an executor needs to start one instance.
type InstanceSpec struct {
	InstanceID  string            `json:"instance_id"`
	AppID       string            `json:"app_id"`
	AppName     string            `json:"app_name"`
	SpaceID     string            `json:"space_id,omitempty"`
	Process     string            `json:"process"`
	Index       int               `json:"index"`
	Release     int               `json:"release"`
	DropletBlob BlobRef           `json:"droplet_blob"`
	Command     string            `json:"command"` // run by /bin/sh -c in the app dir
	Env         map[string]string `json:"env,omitempty"`
	MemoryMB    int               `json:"memory_mb"`
	DiskMB      int               `json:"disk_mb"`
	Routes      []string          `json:"routes,omitempty"` // URIs: host or host/path; only web instances have routes
	HealthCheck HealthCheck       `json:"health_check"`
	// Task marks a one-off task: never routed, restarted or health-checked.
	Task bool `json:"task,omitempty"`
	// Isolation is how the instance is to be wrapped on the node, as the
	// scheduler chose it among the node's isolations (scheduler.Placement);
	// empty keeps the node's process driver.
	Isolation Isolation `json:"isolation,omitempty"`
	// Image deploys (strata push --docker-image, --docker-image-file) run an
	// image instead of a droplet, on an isolation that runs images
	// (container). Image is a reference the node's engine has; ImageBlob a
	// `docker save` tarball in the blob store, loaded once per digest. With
	// either, DropletBlob is empty, and an empty Command runs the image's own
	// entrypoint and command.
	Image     string  `json:"image,omitempty"`
	ImageBlob BlobRef `json:"image_blob,omitempty"`
}

// HealthCheck says how an executor decides an instance is healthy.
type HealthCheck struct {
	Type    string        `json:"type"` // port (default) | http | process
	Path    string        `json:"path,omitempty"`
	Timeout time.Duration `json:"timeout,omitempty"` // start-up timeout; 0 = executor default
	// Interval is how often a running instance is checked again (liveness);
	// 0 = executor default.
	Interval time.Duration `json:"interval,omitempty"`
}

// NodeCommand is a request to one executor on SubjectNodeCommand.
type NodeCommand struct {
	Version    int             `json:"v"`
	Kind       NodeCommandKind `json:"kind"`
	Start      *InstanceSpec   `json:"start,omitempty"`
	InstanceID string          `json:"instance_id,omitempty"` // for stop
	Grace      time.Duration   `json:"grace,omitempty"`       // for stop; 0 = default 10 s
	Routes     []string        `json:"routes,omitempty"`      // for routes
	// Term is the leader lease term of the controller that sent the command
	// from its leader-only loops (docs/architecture.md, "Leader lease"); 0
	// for commands of a REST request. An executor ignores a command whose
	// term is below the highest it has seen.
	Term int64 `json:"term,omitempty"`
}

// NodeCommandReply answers a NodeCommand. Error is nil when the executor
// accepted the command (start is asynchronous: progress comes as events).
type NodeCommandReply struct {
	Version int    `json:"v"`
	Error   *Error `json:"error,omitempty"`
}

// BuildJob is one staging request on the SubjectBuildJobs work queue.
type BuildJob struct {
	Version    int           `json:"v"`
	BuildID    string        `json:"build_id"`
	AppID      string        `json:"app_id"`
	AppName    string        `json:"app_name"`
	SourceBlob BlobRef       `json:"source_blob"`
	Buildpacks []string      `json:"buildpacks,omitempty"` // empty = detect
	Stack      string        `json:"stack,omitempty"`
	Timeout    time.Duration `json:"timeout,omitempty"`
	// Procfile, when set, is written as the source's Procfile before
	// detection: the start commands of the app's manifest. The controller
	// refuses sources that have a Procfile of their own.
	Procfile string `json:"procfile,omitempty"`
	// NoCache makes the build start from an empty build cache and leave the
	// app's cache as it was (strata push --no-cache).
	NoCache bool `json:"no_cache,omitempty"`
	// Registered are the buildpacks admins registered (strata buildpacks
	// create), in their order: detected before the built-in ones and
	// available by name.
	Registered []RegisteredBuildpack `json:"registered,omitempty"`
	// Env is the app's config vars, given to classic buildpacks' bin/compile
	// as ENV_DIR (one file per variable). The job travels on the bus, so
	// builds see config vars as instances do.
	Env map[string]string `json:"env,omitempty"`
}

// BuildCachePurge asks every builder to delete an app's build cache.
type BuildCachePurge struct {
	Version int    `json:"v"`
	AppID   string `json:"app_id"`
}

// RegisteredBuildpack is a registered classic buildpack: its name and the
// gzip tar of its directory in the blob store.
type RegisteredBuildpack struct {
	Name string  `json:"name"`
	Blob BlobRef `json:"blob"`
}

// BuildResult is a builder's report of one finished (or started) build.
type BuildResult struct {
	Version     int               `json:"v"`
	BuildID     string            `json:"build_id"`
	State       BuildState        `json:"state"` // staging, staged or failed
	DropletBlob BlobRef           `json:"droplet_blob,omitempty"`
	Buildpack   string            `json:"buildpack,omitempty"`
	Processes   map[string]string `json:"process_types,omitempty"`
	Failure     BuildFailure      `json:"failure,omitempty"`
	Reason      string            `json:"reason,omitempty"`
	BuilderID   string            `json:"builder_id,omitempty"`
}

// Log sources.
const (
	LogSourceStaging = "staging"
	LogSourceRouter  = "router"
	LogSourceStrata  = "strata"
)

// LogEnvelope is one log line of an app.
type LogEnvelope struct {
	Time    time.Time `json:"time"`
	AppID   string    `json:"app_id"`             // the subject's app (SubjectLogs)
	App     string    `json:"app"`                // app name, for display
	Source  string    `json:"source"`             // app/web/0, staging, router, strata/…
	BuildID string    `json:"build_id,omitempty"` // for staging lines
	Stream  string    `json:"stream,omitempty"`   // stdout | stderr
	// Dropped, on a "strata" note of a followed stream, is how many lines
	// were dropped just before it because the reader fell behind.
	Dropped int `json:"dropped,omitempty"`
	// LatencyMs, on a router's access line, is how long the request took.
	LatencyMs float64 `json:"latency_ms,omitempty"`
	Line      string  `json:"line"`
}
