package api

import (
	"context"
	"strings"
	"time"
)

// Health check types of a process type.
const (
	HealthPort    = "port"    // the instance accepts TCP connections on $PORT (web default)
	HealthHTTP    = "http"    // GET HealthCheckPath on $PORT answers 2xx or 3xx
	HealthProcess = "process" // the process is alive (default of non-web types)
)

// ProcessWeb is the process type that gets routes (the Procfile's web).
const ProcessWeb = "web"

// RunsByDefault reports whether a process type of a release gets one
// instance when it first appears (and is what a push waits for): web, or
// every type of a release that has no web.
func RunsByDefault(process string, processes map[string]string) bool {
	_, hasWeb := processes[ProcessWeb]
	return process == ProcessWeb || !hasWeb
}

// DefaultHealthCheck is the health check type of a process type that set
// none: port for web, process for the rest.
func DefaultHealthCheck(process string) string {
	if process == ProcessWeb {
		return HealthPort
	}
	return HealthProcess
}

// MaxHealthCheckTimeout is the longest start-up timeout, in seconds.
const MaxHealthCheckTimeout = 600

// MinScaleToZero and MaxScaleToZero bound a process's scale-to-zero idle
// time, in seconds.
const (
	MinScaleToZero = 60
	MaxScaleToZero = 30 * 24 * 3600
)

// IdleTime says a scale-to-zero idle time in seconds: "off" for 0, else a
// duration such as 15m or 1h30m.
func IdleTime(sec int) string {
	if sec == 0 {
		return "off"
	}
	d := (time.Duration(sec) * time.Second).String()
	for _, z := range []string{"m0s", "h0m"} {
		if strings.HasSuffix(d, z) {
			d = strings.TrimSuffix(d, z[1:])
		}
	}
	return d
}

// MaxHealthCheckInterval is the longest interval between two checks of a
// running instance, in seconds.
const MaxHealthCheckInterval = 300

// HealthCheckRequest sets how the instances of one process type are checked.
type HealthCheckRequest struct {
	Process string `json:"process"` // default "web"
	Type    string `json:"type"`    // port | http | process
	Path    string `json:"path,omitempty"`
	// Timeout is the start-up timeout in seconds (0 = the executor default).
	Timeout int `json:"timeout,omitempty"`
	// Interval is how often a running instance is checked again, in
	// seconds (0 = the executor default, 1 s).
	Interval int `json:"interval,omitempty"`
}

// TaskRequest asks to run one command in an app's current release.
type TaskRequest struct {
	// Command is run by /bin/sh -c in the app dir, like a Procfile command.
	Command string `json:"command"`
}

// Task event types.
const (
	TaskEventStarted = "started" // the task was placed (Line names the node)
	TaskEventLog     = "log"     // one line of output (Stream stdout/stderr)
	TaskEventExit    = "exit"    // the task ended (ExitCode, Reason)
)

// TaskEvent is one line of a task's stream.
type TaskEvent struct {
	Type     string `json:"type"`
	TaskID   string `json:"task_id,omitempty"`
	Stream   string `json:"stream,omitempty"`
	Line     string `json:"line,omitempty"`
	ExitCode *int   `json:"exit_code,omitempty"` // nil when killed by a signal or unknown
	Reason   string `json:"reason,omitempty"`
}

// OperateService runs one-off tasks and sets health checks.
type OperateService interface {
	// SetHealthCheck validates and stores the health check of one process
	// type; it applies to instances started afterwards.
	SetHealthCheck(ctx context.Context, app string, req HealthCheckRequest) (*Process, error)
	// RunTask runs req.Command as a one-off instance of the app's current
	// release (its droplet and config vars), calling fn with its events until
	// the exit event, which it returns. Ending ctx stops the task.
	RunTask(ctx context.Context, app string, req TaskRequest, fn func(TaskEvent) error) (*TaskEvent, error)
}
