package driver

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"time"

	"github.com/strata-paas/strata/api"
)

// HandleVersion is the version of Handle written by this code. Recover refuses
// handles of other versions with an EInvalid *api.Error.
const HandleVersion = 1

// CheckHandle is where Recover begins: h must be a handle of driver name
// and of HandleVersion, else EInvalid, for an instance id CheckID accepts.
func CheckHandle(h *Handle, name string) error {
	if h == nil || h.Version != HandleVersion || h.Driver != name {
		return api.Errorf(api.EInvalid, "not a %s driver handle of version %d", name, HandleVersion)
	}
	return CheckID(h.ID)
}

// Driver runs and supervises instances on one node. Implementations are safe
// for concurrent use; instance ids are chosen by the caller and unique per
// driver.
type Driver interface {
	// Start starts the instance described by spec and returns once it is
	// running (not once it is healthy). A spec the driver cannot run (bad
	// dir, unknown command) is an error; an id already started is EConflict.
	Start(ctx context.Context, spec *Spec) (*Handle, error)
	// Wait blocks until the instance exits (or ctx ends) and returns how it
	// ended. It may be called several times and after exit; output written by
	// the instance has been delivered to the Spec writers when Wait returns.
	// An unknown id is ENotFound.
	Wait(ctx context.Context, id string) (*ExitResult, error)
	// Stop sends SIGTERM to the instance's whole process tree, waits up to
	// grace, then sends SIGKILL, and returns once the instance has exited.
	// Stopping an instance that already exited is not an error; an unknown id
	// is ENotFound.
	Stop(ctx context.Context, id string, grace time.Duration) error
	// Destroy kills whatever is left of the instance and forgets it. It is
	// idempotent: destroying an unknown or destroyed id returns nil.
	Destroy(ctx context.Context, id string) error
	// Recover re-attaches to an instance started by an earlier run of the
	// executor. It returns ENotFound when the instance is gone (or its PID now
	// belongs to another process) and EInvalid for a handle it cannot read.
	Recover(ctx context.Context, h *Handle) error
}

// Spec describes one instance to start.
type Spec struct {
	ID       string   // unique instance id
	Dir      string   // working directory: the unpacked droplet's app dir
	Command  string   // run as /bin/sh -c <Command> (the developer's Procfile command); "" with an Image runs the image's own
	Env      []string // complete environment, KEY=value
	MemoryMB int      // memory limit; enforced only by drivers that can
	// Port is the port the instance listens on, as the instance sees it
	// (its $PORT), from the driver's PortAllocator; 0 when it serves
	// nothing. Where the executor reaches it is the Handle's Endpoint.
	Port int
	// Image is the image a container driver runs the instance from; ""
	// runs it on the driver's stack image with Dir and Writable mounted at
	// their own paths. Drivers without images ignore it.
	Image string
	// Space is the instance's space: drivers that give instances a network
	// of their own put one space's instances in one network.
	Space string
	// Labels describe the instance to people inspecting the node (app,
	// process type); drivers may attach them and never use them to find it.
	Labels map[string]string
	// Writable lists directories besides Dir the instance may write (its
	// HOME, its TMPDIR). Drivers that confine instances keep everything
	// else read-only; others ignore it.
	Writable []string
	// Stdout and Stderr receive the instance's output; nil discards it.
	// Drivers write to each from one goroutine at a time.
	Stdout, Stderr io.Writer
}

// Handle is the persisted state a driver needs to Recover an instance.
type Handle struct {
	Version   int             `json:"version"`
	Driver    string          `json:"driver"`
	ID        string          `json:"id"`
	PID       int             `json:"pid,omitempty"`
	PGID      int             `json:"pgid,omitempty"`
	StartTime uint64          `json:"start_time,omitempty"` // field 22 of /proc/<pid>/stat, so a reused PID is not mistaken
	Data      json.RawMessage `json:"data,omitempty"`       // driver-specific
	// Endpoint is where the instance serves Spec.Port, as the node reaches
	// it; zero when it serves nothing (the executor then assumes Spec.Port on
	// the node). A Host with Port 0 means the instance listens nowhere the
	// node can reach (it exited at once): no health check passes.
	Endpoint Endpoint `json:"endpoint,omitzero"`
}

// Endpoint is where an instance listens, as the executor health-checks it
// and routers reach it. The driver owns the instance's network and says.
type Endpoint struct {
	// Host is the address; "" means the node itself: routers dial the
	// node's advertise address and the executor checks loopback (an
	// instance sharing the host's network, as a process does).
	Host string `json:"host,omitempty"`
	Port int    `json:"port,omitempty"`
	// CheckHost and CheckPort are where the executor health-checks the
	// instance when that is not Host and Port: a container's own address,
	// because a published port may accept connections (the engine's proxy)
	// before the app listens. Empty means Host and Port.
	CheckHost string `json:"check_host,omitempty"`
	CheckPort int    `json:"check_port,omitempty"`
}

// PortAllocator is an optional ability: a driver that chooses the port an
// instance listens on in its network ($PORT) before it starts. Without it
// the executor picks a free loopback port of the node, which suits drivers
// whose instances share the host's network.
type PortAllocator interface {
	// AllocatePort returns the port instance id is to listen on.
	AllocatePort(id string) (int, error)
}

// ExitResult says how an instance ended.
type ExitResult struct {
	ExitCode  int    // -1 when killed by a signal or unknown
	Signal    string // signal name ("terminated", "killed") when killed by one
	OOMKilled bool   // killed for exceeding its memory limit (drivers that can tell)
	Err       error  // the exit status could not be learned (e.g. a recovered process)
}

// Fingerprint is what a driver can offer on this host.
type Fingerprint struct {
	Driver     string          // driver name, e.g. "process"
	Isolations []api.Isolation // isolations this driver provides here
	// Accel is how a VM driver runs guests here ("kvm" or "tcg"); the
	// node's heartbeat reports it. Empty for other drivers.
	Accel string
}

// Fingerprinter is an optional ability: a driver that reports what it
// supports on this host.
type Fingerprinter interface {
	Fingerprint() Fingerprint
}

// OutputRecoverer is an optional ability: Recover that also resumes
// delivering the instance's output to new writers.
type OutputRecoverer interface {
	RecoverOutput(ctx context.Context, h *Handle, stdout, stderr io.Writer) error
}

// Sweeper is an optional ability: a driver whose instances outlive the
// executor's records of them (containers an engine keeps) removes, once
// recovery is done, those of this node that are not in known — the instance
// ids the executor runs — and reports how many it removed.
type Sweeper interface {
	Sweep(ctx context.Context, known []string) (int, error)
}

// DropletImager is an optional ability: a driver that runs instances from
// images turns a droplet into one. The executor then starts the instance
// with Spec.Image set, Spec.Dir the app dir inside it and Spec.Writable the
// droplet's root there, instead of unpacking the droplet on the node.
type DropletImager interface {
	// DropletImage returns the image of the droplet ref whose tarball is at
	// path (building it once per digest), the droplet's root in it (HOME)
	// and its app dir.
	DropletImage(ctx context.Context, ref api.BlobRef, path string) (*DropletImage, error)
}

// DropletImage is a droplet as an image, or the image of an image deploy.
type DropletImage struct {
	Image  string // image reference the engine knows
	Root   string // the droplet's root inside the image (HOME); "" for an image deploy
	AppDir string // its app dir (the working dir)
	// Port is the port an image deploy's image declares it listens on (its
	// single EXPOSE); 0 when it declares none or several, and for droplets:
	// then the app listens on $PORT.
	Port int
}

// ImageRunner is an optional ability: a driver that runs the images of image
// deploys. The executor then starts the instance with Spec.Image set, Dir the
// image's working dir, nothing writable but the driver's /tmp, and Command
// empty unless the spec overrides the image's own.
type ImageRunner interface {
	// AppImage returns the image to run: ref when the engine has it (else
	// EInvalid), or, with blob set, the image in the `docker save` tarball
	// at path, loaded once per digest.
	AppImage(ctx context.Context, ref string, blob api.BlobRef, path string) (*DropletImage, error)
}

// Usage is the resources an instance uses now.
type Usage struct {
	CPUTime     time.Duration // CPU time its processes used so far (user + system)
	MemoryBytes int64         // cgroup memory usage when confined, else the RSS of its processes
}

// UsageReporter is an optional ability: a driver that measures instances.
// An unknown id is ENotFound.
type UsageReporter interface {
	Usage(ctx context.Context, id string) (*Usage, error)
}

// FreeLoopbackPort asks the kernel for a free TCP port on loopback: the
// AllocatePort of drivers whose instances share the host's network.
func FreeLoopbackPort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, api.Errorf(api.EUnavailable, "no free port on the node: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// Escalate is the stop sequence of Driver.Stop: term, then up to grace for
// exited to close, then kill, then exited again. It returns nil once exited
// is closed, at once if it already is, and ETimeout when ctx ends after the
// kill.
func Escalate(ctx context.Context, id string, exited <-chan struct{}, grace time.Duration, term, kill func()) error {
	select {
	case <-exited:
		return nil
	default:
	}
	term()
	t := time.NewTimer(grace)
	defer t.Stop()
	select {
	case <-exited:
		return nil
	case <-t.C:
	case <-ctx.Done():
	}
	kill()
	select {
	case <-exited:
		return nil
	case <-ctx.Done():
		return api.Errorf(api.ETimeout, "instance %s did not exit after SIGKILL: %v", id, ctx.Err())
	}
}
