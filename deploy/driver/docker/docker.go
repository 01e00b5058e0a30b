package docker

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/mount"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/client"
	"github.com/docker/docker/pkg/stdcopy"
	"github.com/docker/go-connections/nat"

	"github.com/strata-paas/strata/api"
	"github.com/strata-paas/strata/deploy/driver"
)

// Name is the driver name recorded in handles.
const Name = "docker"

// Labels on everything the driver creates. LabelManaged marks an object as
// Strata's; LabelNode names the executor's node, so a sweep touches only
// that node's objects.
const (
	LabelManaged  = "io.strata.managed"
	LabelNode     = "io.strata.node"
	LabelInstance = "io.strata.instance"
	LabelSpace    = "io.strata.space"
)

// DefaultStackImage is the image instances run on when their spec names none.
const DefaultStackImage = "strata/stack:bookworm"

var (
	_ driver.Driver          = (*Driver)(nil)
	_ driver.Fingerprinter   = (*Driver)(nil)
	_ driver.OutputRecoverer = (*Driver)(nil)
	_ driver.PortAllocator   = (*Driver)(nil)
	_ driver.UsageReporter   = (*Driver)(nil)
	_ driver.Sweeper         = (*Driver)(nil)
)

// Config configures the docker driver.
type Config struct {
	// NodeID labels every container and network the driver creates
	// (required): Sweep and image collection touch only this node's.
	NodeID string
	// AdvertiseHost is the address instance ports are published on, where
	// the executor health-checks them and routers reach them. Default
	// 127.0.0.1.
	AdvertiseHost string
	// DirectEndpoint makes routers dial each container at its own address
	// in its network instead of the port published on AdvertiseHost, when
	// AdvertiseHost is a loopback address: every router then runs on this
	// node, which reaches its bridge networks (other machines could not),
	// and a port published on loopback goes through the engine's userland
	// proxy, which costs requests/s at the driver (docs/performance.md;
	// through a router no difference was measured, and every container of
	// the node then has the same port, so stratad leaves it off). Ignored
	// for other advertise addresses, whose published ports the kernel
	// forwards. The port stays published.
	DirectEndpoint bool
	// StackImage is the image of specs without one. Default
	// DefaultStackImage.
	StackImage string
	// ListenPort is the port every instance listens on in its own network
	// ($PORT). Default 8080.
	ListenPort int
	// UIDBase is the first uid (and gid) instances run as: UIDBase + a hash
	// of the instance id modulo 1,000,000. Default 3,000,000.
	UIDBase int
	// PidsMax caps the tasks of one container. Default 4096.
	PidsMax int64
	// ImageUID is the uid (and gid) that owns a droplet image's files and
	// runs its containers (each has its own file system). Default 2000.
	ImageUID int
	// ImageDir holds the stack's saved tarball droplet images are built
	// from. Default <os.TempDir()>/strata-docker-images.
	ImageDir string
	// KeepImages is how many droplet images no instance uses are kept, the
	// newest first. Default 3; negative keeps none.
	KeepImages int
	// Host is the engine's address; "" uses DOCKER_HOST or the default socket.
	Host   string
	Logger *slog.Logger
}

// Driver runs each instance as a container of the local Docker engine. It
// is safe for concurrent use.
type Driver struct {
	cfg Config
	cli *client.Client
	log *slog.Logger

	direct bool // Config.DirectEndpoint with a loopback advertise address

	netMu sync.Mutex // serialises network creation, container creation and network removal

	mu    sync.Mutex
	ctrs  map[string]*ctr
	using map[string]int           // image → instances of this driver using it (images.go)
	keys  map[string]chan struct{} // lockKey (images.go)
}

type ctr struct {
	id        string // instance id
	cid       string // container id
	image     string
	recovered bool
	ready     chan struct{}
	// Lifecycle: Exited when the container no longer runs, Done once its
	// output is delivered; Stopping and Killed when Stop or Destroy sent
	// SIGTERM or SIGKILL.
	driver.Lifecycle
}

// handleData is the driver-specific part of a Handle.
type handleData struct {
	ContainerID string `json:"container_id"`
	Image       string `json:"image,omitempty"`
}

// New connects to the engine (negotiating the API version, so an engine of
// API 1.41 works) and returns a driver. An unreachable engine is
// EUnavailable.
func New(ctx context.Context, cfg Config) (*Driver, error) {
	if cfg.NodeID == "" {
		return nil, api.Errorf(api.EInvalid, "docker driver needs the node id to label containers")
	}
	if cfg.AdvertiseHost == "" {
		cfg.AdvertiseHost = "127.0.0.1"
	}
	if net.ParseIP(cfg.AdvertiseHost) == nil {
		// The engine publishes ports on an address, not a name.
		ips, err := net.DefaultResolver.LookupIP(ctx, "ip4", cfg.AdvertiseHost)
		if err != nil || len(ips) == 0 {
			return nil, api.Errorf(api.EInvalid, "advertise host %q does not resolve to an IPv4 address (%v) — give --advertise an address", cfg.AdvertiseHost, err)
		}
		cfg.AdvertiseHost = ips[0].String()
	}
	if cfg.StackImage == "" {
		cfg.StackImage = DefaultStackImage
	}
	if cfg.ListenPort <= 0 {
		cfg.ListenPort = 8080
	}
	if cfg.UIDBase <= 0 {
		cfg.UIDBase = 3_000_000
	}
	if cfg.PidsMax <= 0 {
		cfg.PidsMax = 4096
	}
	if cfg.ImageUID <= 0 {
		cfg.ImageUID = 2000
	}
	if cfg.ImageDir == "" {
		cfg.ImageDir = filepath.Join(os.TempDir(), "strata-docker-images")
	}
	if cfg.KeepImages == 0 {
		cfg.KeepImages = 3
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	opts := []client.Opt{client.FromEnv, client.WithAPIVersionNegotiation()}
	if cfg.Host != "" {
		opts = append(opts, client.WithHost(cfg.Host))
	}
	cli, err := client.NewClientWithOpts(opts...)
	if err != nil {
		return nil, api.Errorf(api.EUnavailable, "docker driver: %v", err)
	}
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if _, err := cli.Ping(pctx); err != nil {
		cli.Close()
		return nil, api.Errorf(api.EUnavailable, "no Docker engine answers: %v — start dockerd or leave the docker driver out", err)
	}
	cli.NegotiateAPIVersion(pctx)
	d := &Driver{cfg: cfg, cli: cli, log: cfg.Logger, ctrs: map[string]*ctr{}, using: map[string]int{}, keys: map[string]chan struct{}{},
		direct: cfg.DirectEndpoint && net.ParseIP(cfg.AdvertiseHost).IsLoopback()}
	d.log.Info("docker.connected", "api_version", cli.ClientVersion(), "node", cfg.NodeID)
	return d, nil
}

// Close closes the engine connection. Containers keep running.
func (d *Driver) Close() error { return d.cli.Close() }

// Fingerprint reports api.IsolationContainer.
func (d *Driver) Fingerprint() driver.Fingerprint {
	return driver.Fingerprint{Driver: Name, Isolations: []api.Isolation{api.IsolationContainer}}
}

// AllocatePort returns Config.ListenPort: every container has a network
// namespace of its own, and its port is published on the advertise address.
func (d *Driver) AllocatePort(string) (int, error) { return d.cfg.ListenPort, nil }

// UID is the uid (and gid) instance id runs as.
func (d *Driver) UID(id string) int {
	h := fnv.New32a()
	_, _ = h.Write([]byte(id))
	return d.cfg.UIDBase + int(h.Sum32()%1_000_000)
}

func checkID(id string) error { return driver.CheckID(id) }

// containerName is unique per node and instance, so two executors sharing an
// engine never collide.
func (d *Driver) containerName(id string) string { return "strata-" + d.cfg.NodeID + "-" + id }

// networkName is the bridge network of one space on this node.
func (d *Driver) networkName(space string) string {
	if space == "" {
		space = "default"
	}
	if checkID(space) != nil { // not a plain name: a name made of its hash
		sum := sha256.Sum256([]byte(space))
		space = hex.EncodeToString(sum[:8])
	}
	return "strata-" + d.cfg.NodeID + "-" + space
}

func (d *Driver) get(id string) (*ctr, error) { return driver.Lookup(&d.mu, d.ctrs, id) }

func (d *Driver) nodeFilter(extra ...string) filters.Args {
	f := filters.NewArgs(filters.Arg("label", LabelManaged+"=true"), filters.Arg("label", LabelNode+"="+d.cfg.NodeID))
	for _, e := range extra {
		f.Add("label", e)
	}
	return f
}

// Start creates and starts the instance's container: from spec.Image (else
// the stack image, with spec.Dir and spec.Writable bind-mounted at their own
// paths), in the space's bridge network, as an unprivileged user, with a
// read-only root file system, a private tmpfs /tmp, no capabilities, no
// new privileges, the memory limit (without swap), CPU shares in
// proportion to memory (at least the default 1024) and a pids limit;
// spec.Port is published on the advertise address at a port the engine
// picks.
func (d *Driver) Start(ctx context.Context, spec *driver.Spec) (*driver.Handle, error) {
	if err := checkID(spec.ID); err != nil {
		return nil, err
	}
	image := spec.Image
	if image == "" {
		image = d.cfg.StackImage
		if st, err := os.Stat(spec.Dir); err != nil || !st.IsDir() {
			return nil, api.Errorf(api.EInvalid, "instance dir %s does not exist", spec.Dir)
		}
	}
	c := &ctr{id: spec.ID, image: image, ready: make(chan struct{})}
	if err := driver.Claim(&d.mu, d.ctrs, spec.ID, c, func() { d.using[image]++ }); err != nil {
		return nil, err
	}

	h, err := d.start(ctx, c, spec)
	if err != nil {
		if c.cid != "" {
			rctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			_ = d.cli.ContainerRemove(rctx, c.cid, container.RemoveOptions{Force: true, RemoveVolumes: true})
			cancel()
		}
		driver.Forget(&d.mu, d.ctrs, spec.ID, c, func() { d.release(image) })
		return nil, err
	}
	return h, nil
}

func (d *Driver) start(ctx context.Context, c *ctr, spec *driver.Spec) (*driver.Handle, error) {
	fail := func(format string, args ...any) (*driver.Handle, error) {
		return nil, api.Errorf(api.EInvalid, "cannot start instance %s: "+format, append([]any{spec.ID}, args...)...)
	}
	img, err := d.cli.ImageInspect(ctx, c.image)
	if cerrdefs.IsNotFound(err) {
		hint := "load it into the node's engine"
		if c.image == d.cfg.StackImage {
			hint = "build it with `stratad stack build` (make stack)"
		}
		return nil, api.Errorf(api.EInvalid, "cannot start instance %s: image %s is not on this node — %s", spec.ID, c.image, hint)
	} else if err != nil {
		return fail("inspect image %s: %v", c.image, err)
	}
	uid := d.UID(spec.ID)
	user := ""
	mounts := []mount.Mount{{
		Type: mount.TypeTmpfs, Target: "/tmp",
		TmpfsOptions: &mount.TmpfsOptions{SizeBytes: int64(max(spec.MemoryMB, 16)) << 20, Mode: 0o1777},
	}}
	workDir := spec.Dir
	if spec.Image == "" {
		// The stack image: the executor's unpacked droplet is mounted.
		for i, w := range append([]string{spec.Dir}, spec.Writable...) {
			if err := os.MkdirAll(w, 0o700); err != nil {
				return fail("%v", err)
			}
			real, err := filepath.EvalSymlinks(w)
			if err != nil {
				return fail("%v", err)
			}
			if real, err = filepath.Abs(real); err != nil {
				return fail("%v", err)
			}
			if err := chownTree(real, uid); err != nil {
				return fail("%v", err)
			}
			if i == 0 {
				workDir = real
			}
			if slices.ContainsFunc(mounts, func(m mount.Mount) bool { return m.Target == real }) {
				continue
			}
			mounts = append(mounts, mount.Mount{Type: mount.TypeBind, Source: real, Target: real})
		}
	} else {
		// An image: its writable dirs (a droplet's root, holding the app
		// dir) are anonymous volumes the engine fills from the image and
		// removes with the container. It runs as the image's user unless
		// that is root (or unset): then as ImageUID, which owns a droplet
		// image's files.
		user = fmt.Sprintf("%d:%d", d.cfg.ImageUID, d.cfg.ImageUID)
		if img.Config != nil && !isRoot(img.Config.User) {
			user = img.Config.User
		}
		for _, w := range spec.Writable {
			if !filepath.IsAbs(w) {
				return fail("writable dir %q is not absolute", w)
			}
			mounts = append(mounts, mount.Mount{Type: mount.TypeVolume, Target: w,
				VolumeOptions: &mount.VolumeOptions{Labels: d.labels(spec)}})
		}
	}
	env := spec.Env
	if env == nil {
		env = []string{}
	}
	memory := int64(max(spec.MemoryMB, 6)) << 20
	pids := d.cfg.PidsMax
	init := true
	if user == "" {
		user = fmt.Sprintf("%d:%d", uid, uid)
	}
	cfg := &container.Config{
		Image: c.image, Env: env, WorkingDir: workDir, User: user,
		Labels:   d.labels(spec),
		Hostname: hostname(spec.ID),
	}
	if spec.Command != "" || spec.Image == "" {
		// The spec's command, instead of the image's entrypoint and command.
		cfg.Entrypoint, cfg.Cmd = []string{"/bin/sh", "-c"}, []string{spec.Command}
	}
	host := &container.HostConfig{
		Init:           &init, // docker-init reaps orphans and forwards signals
		ReadonlyRootfs: true,
		Mounts:         mounts,
		CapDrop:        []string{"ALL"},
		SecurityOpt:    []string{"no-new-privileges"},
		NetworkMode:    container.NetworkMode(d.networkName(spec.Space)),
		LogConfig:      container.LogConfig{Type: "json-file", Config: map[string]string{"max-size": "8m", "max-file": "2"}},
		Resources: container.Resources{
			// At least a host process's default weight (1024), more in
			// proportion to memory above 1 GB.
			Memory: memory, MemorySwap: memory, CPUShares: int64(max(spec.MemoryMB, 1024)), PidsLimit: &pids,
		},
	}
	var port nat.Port
	if spec.Port > 0 {
		port = nat.Port(strconv.Itoa(spec.Port) + "/tcp")
		cfg.ExposedPorts = nat.PortSet{port: struct{}{}}
		host.PortBindings = nat.PortMap{port: {{HostIP: d.cfg.AdvertiseHost, HostPort: ""}}}
	}
	d.netMu.Lock()
	err = d.ensureNetwork(ctx, spec.Space)
	if err == nil {
		var resp container.CreateResponse
		resp, err = d.cli.ContainerCreate(ctx, cfg, host, nil, nil, d.containerName(spec.ID))
		if err == nil {
			c.cid = resp.ID
			err = d.cli.ContainerStart(ctx, c.cid, container.StartOptions{})
		}
	}
	d.netMu.Unlock()
	if err != nil {
		if cerrdefs.IsConflict(err) {
			return nil, api.Errorf(api.EConflict, "cannot start instance %s: a container named %s exists — destroy the instance first", spec.ID, d.containerName(spec.ID))
		}
		return fail("%v", err)
	}
	ins, err := d.cli.ContainerInspect(ctx, c.cid)
	if err != nil {
		return fail("inspect: %v", err)
	}
	ep := driver.Endpoint{}
	if port != "" {
		if ins.State != nil && !ins.State.Running {
			// It exited at once, before the engine published its port: an
			// endpoint no check can pass, and Wait reports how it ended.
			ep = driver.Endpoint{Host: d.cfg.AdvertiseHost}
		} else if ep, err = d.endpoint(ins, port); err != nil {
			return fail("%v", err)
		}
	}
	close(c.ready)
	d.follow(c, spec.Stdout, spec.Stderr, "")
	data, _ := json.Marshal(handleData{ContainerID: c.cid, Image: c.image})
	return &driver.Handle{Version: driver.HandleVersion, Driver: Name, ID: spec.ID, PID: ins.State.Pid, Data: data, Endpoint: ep}, nil
}

func (d *Driver) labels(spec *driver.Spec) map[string]string {
	l := map[string]string{LabelManaged: "true", LabelNode: d.cfg.NodeID, LabelInstance: spec.ID, LabelSpace: spec.Space}
	for k, v := range spec.Labels {
		if !strings.HasPrefix(k, "io.strata.") || k == LabelApp || k == LabelProcess {
			l[k] = v
		}
	}
	return l
}

// Labels a spec may carry for people reading `docker ps`.
const (
	LabelApp     = "io.strata.app"
	LabelProcess = "io.strata.process"
)

// isRoot reports whether an image's USER runs as root.
func isRoot(user string) bool {
	name, _, _ := strings.Cut(user, ":")
	return name == "" || name == "root" || name == "0"
}

func hostname(id string) string {
	if len(id) > 63 {
		return id[:63]
	}
	return id
}

// endpoint reads the host port the engine published port on: where
// routers reach the instance, with the container's own address as where it
// is checked; with a direct endpoint (Config.DirectEndpoint) the container's
// own address for both.
func (d *Driver) endpoint(ins container.InspectResponse, port nat.Port) (driver.Endpoint, error) {
	if ins.NetworkSettings == nil {
		return driver.Endpoint{}, errors.New("the engine reports no network settings")
	}
	ep := driver.Endpoint{Host: d.cfg.AdvertiseHost, CheckPort: port.Int()}
	for _, n := range ins.NetworkSettings.Networks {
		if n != nil && n.IPAddress != "" {
			ep.CheckHost = n.IPAddress
		}
	}
	if ep.CheckHost == "" {
		return driver.Endpoint{}, errors.New("the container has no address in its network")
	}
	for _, b := range ins.NetworkSettings.Ports[port] {
		if p, err := strconv.Atoi(b.HostPort); err == nil && p > 0 {
			if d.direct {
				return driver.Endpoint{Host: ep.CheckHost, Port: ep.CheckPort}, nil
			}
			ep.Port = p
			return ep, nil
		}
	}
	return driver.Endpoint{}, fmt.Errorf("port %s was not published (the container may have exited at once)", port)
}

// ensureNetwork creates the space's bridge network if it does not exist; the
// caller holds netMu. Containers in it cannot talk to each other (icc off):
// instances reach one another through the routers.
func (d *Driver) ensureNetwork(ctx context.Context, space string) error {
	name := d.networkName(space)
	if _, err := d.cli.NetworkInspect(ctx, name, network.InspectOptions{}); err == nil {
		return nil
	} else if !cerrdefs.IsNotFound(err) {
		return fmt.Errorf("network %s: %w", name, err)
	}
	_, err := d.cli.NetworkCreate(ctx, name, network.CreateOptions{
		Driver: "bridge",
		Labels: map[string]string{LabelManaged: "true", LabelNode: d.cfg.NodeID, LabelSpace: space},
		Options: map[string]string{
			"com.docker.network.bridge.enable_icc": "false",
		},
	})
	if err != nil && !cerrdefs.IsConflict(err) {
		return fmt.Errorf("create network %s: %w", name, err)
	}
	return nil
}

// removeUnusedNetworks removes this node's networks no container uses; the
// caller holds netMu.
func (d *Driver) removeUnusedNetworks(ctx context.Context) int {
	nets, err := d.cli.NetworkList(ctx, network.ListOptions{Filters: d.nodeFilter()})
	if err != nil {
		return 0
	}
	removed := 0
	for _, n := range nets {
		cs, err := d.cli.ContainerList(ctx, container.ListOptions{All: true, Filters: filters.NewArgs(filters.Arg("network", n.ID))})
		if err != nil || len(cs) > 0 {
			continue
		}
		if d.cli.NetworkRemove(ctx, n.ID) == nil {
			removed++
		}
	}
	return removed
}

// follow copies the container's output to stdout and stderr from since
// (RFC 3339 or Unix time; "" = from the start) and then watches for its
// exit: c.Exited closes when it no longer runs, c.Done once its output is
// delivered and its exit recorded.
func (d *Driver) follow(c *ctr, stdout, stderr io.Writer, since string) {
	if stdout == nil {
		stdout = io.Discard
	}
	if stderr == nil {
		stderr = io.Discard
	}
	logsDone := make(chan struct{})
	logCtx, cancelLogs := context.WithCancel(context.Background())
	go func() {
		defer close(logsDone)
		rc, err := d.cli.ContainerLogs(logCtx, c.cid, container.LogsOptions{ShowStdout: true, ShowStderr: true, Follow: true, Since: since})
		if err != nil {
			d.log.Warn("docker.logs_failed", "id", c.id, "err", err)
			return
		}
		defer rc.Close()
		_, _ = stdcopy.StdCopy(stdout, stderr, rc)
	}()
	go func() {
		waitCh, errCh := d.cli.ContainerWait(context.Background(), c.cid, container.WaitConditionNotRunning)
		select {
		case <-waitCh:
		case err := <-errCh:
			if !cerrdefs.IsNotFound(err) {
				d.pollExit(c) // the wait stream broke: poll instead
			}
		}
		c.MarkExited()
		// The log stream ends when the container stops; bound it anyway.
		select {
		case <-logsDone:
		case <-time.After(10 * time.Second):
			cancelLogs()
			<-logsDone
		}
		cancelLogs()
		c.Finish(d.exitResult(c))
	}()
}

// pollExit returns once c's container no longer runs (or is gone).
func (d *Driver) pollExit(c *ctr) {
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		ins, err := d.cli.ContainerInspect(ctx, c.cid)
		cancel()
		if err != nil && cerrdefs.IsNotFound(err) || err == nil && (ins.State == nil || !ins.State.Running) {
			return
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// exitResult says how c's container ended, from the engine: its exit code,
// whether the kernel OOM-killed it, and a signal when Stop or Destroy sent
// the one its exit code (128 + n) names.
func (d *Driver) exitResult(c *ctr) *driver.ExitResult {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ins, err := d.cli.ContainerInspect(ctx, c.cid)
	if err != nil || ins.State == nil {
		if err == nil {
			err = errors.New("no state")
		}
		return &driver.ExitResult{ExitCode: -1, Err: fmt.Errorf("the container is gone: %w", err)}
	}
	st := ins.State
	res := &driver.ExitResult{ExitCode: st.ExitCode, OOMKilled: st.OOMKilled}
	switch {
	case st.ExitCode == 128+9 && (c.Killed.Load() || st.OOMKilled):
		res.ExitCode, res.Signal = -1, "killed"
	case st.ExitCode == 128+15 && c.Stopping.Load():
		res.ExitCode, res.Signal = -1, "terminated"
	}
	return res
}

// Wait blocks until the container has exited and its output is delivered.
func (d *Driver) Wait(ctx context.Context, id string) (*driver.ExitResult, error) {
	return driver.WaitFor(ctx, &d.mu, d.ctrs, id)
}

// Stop sends SIGTERM to the container's init (which forwards it), waits up
// to grace, then sends SIGKILL.
func (d *Driver) Stop(ctx context.Context, id string, grace time.Duration) error {
	return driver.StopFor(ctx, &d.mu, d.ctrs, id, grace, func(c *ctr) {
		if err := d.cli.ContainerKill(ctx, c.cid, "SIGTERM"); err != nil && !isGone(err) {
			d.log.Warn("docker.sigterm_failed", "id", id, "err", err)
		}
	}, func(c *ctr) {
		kctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := d.cli.ContainerKill(kctx, c.cid, "SIGKILL"); err != nil && !isGone(err) {
			d.log.Warn("docker.sigkill_failed", "id", id, "err", err)
		}
	})
}

// isGone reports an engine error saying the container is not running or
// does not exist.
func isGone(err error) bool {
	return cerrdefs.IsNotFound(err) || cerrdefs.IsConflict(err)
}

// Destroy removes the instance's container (killing it first) and its
// anonymous volumes, and the space's network once no container uses it.
func (d *Driver) Destroy(ctx context.Context, id string) error {
	if err := checkID(id); err != nil {
		return err
	}
	c, _ := driver.Find(&d.mu, d.ctrs, id)
	cids := []string{}
	if c != nil {
		c.Killed.Store(true)
		if c.cid != "" {
			cids = append(cids, c.cid)
		}
	} else {
		// Not adopted by this driver: find it by label.
		cs, err := d.cli.ContainerList(ctx, container.ListOptions{All: true, Filters: d.nodeFilter(LabelInstance + "=" + id)})
		if err != nil {
			return api.Errorf(api.EUnavailable, "docker driver: list containers of %s: %v", id, err)
		}
		for _, s := range cs {
			cids = append(cids, s.ID)
		}
	}
	for _, cid := range cids {
		if err := d.remove(ctx, cid); err != nil {
			return api.Errorf(api.EUnavailable, "docker driver: remove container of %s: %v", id, err)
		}
	}
	if c != nil {
		if err := driver.Retire(ctx, &d.mu, d.ctrs, id, c, func() { d.release(c.image) }); err != nil {
			return err
		}
	}
	if len(cids) > 0 {
		d.netMu.Lock()
		d.removeUnusedNetworks(ctx)
		d.netMu.Unlock()
	}
	if c != nil && c.image != d.cfg.StackImage {
		if _, err := d.CollectImages(ctx); err != nil {
			d.log.Warn("docker.image_collection_failed", "err", err)
		}
	}
	return nil
}

// Recover re-attaches to the running container of an instance started by an
// earlier executor; its output is discarded. Use RecoverOutput to keep it.
func (d *Driver) Recover(ctx context.Context, h *driver.Handle) error {
	return d.RecoverOutput(ctx, h, nil, nil)
}

// RecoverOutput re-attaches to the container h names if it still runs and is
// labelled for this node and instance, and copies its output from now on to
// stdout and stderr. A container that is gone or stopped is ENotFound.
func (d *Driver) RecoverOutput(ctx context.Context, h *driver.Handle, stdout, stderr io.Writer) error {
	if err := driver.CheckHandle(h, Name); err != nil {
		return err
	}
	var data handleData
	if err := json.Unmarshal(h.Data, &data); err != nil || data.ContainerID == "" {
		return api.Errorf(api.EInvalid, "docker driver handle of %s names no container", h.ID)
	}
	ins, err := d.cli.ContainerInspect(ctx, data.ContainerID)
	if err != nil {
		if cerrdefs.IsNotFound(err) {
			return api.Errorf(api.ENotFound, "the container of instance %s is gone", h.ID)
		}
		return api.Errorf(api.EUnavailable, "docker driver: inspect %s: %v", h.ID, err)
	}
	if ins.Config == nil || ins.Config.Labels[LabelInstance] != h.ID || ins.Config.Labels[LabelNode] != d.cfg.NodeID {
		return api.Errorf(api.ENotFound, "container %s is not instance %s of this node", data.ContainerID, h.ID)
	}
	if ins.State == nil || !ins.State.Running {
		return api.Errorf(api.ENotFound, "the container of instance %s is no longer running", h.ID)
	}
	image := data.Image
	if image == "" {
		image = ins.Config.Image
	}
	c := &ctr{id: h.ID, cid: ins.ID, image: image, recovered: true, ready: make(chan struct{})}
	close(c.ready)
	if !driver.Add(&d.mu, d.ctrs, h.ID, c, func() { d.using[image]++ }) {
		return nil
	}
	d.follow(c, stdout, stderr, strconv.FormatInt(time.Now().Unix(), 10))
	return nil
}

// Sweep removes this node's containers whose instance is not in known (the
// executor's actual state), and then networks no container uses. It returns
// how many containers it removed.
func (d *Driver) Sweep(ctx context.Context, known []string) (int, error) {
	cs, err := d.cli.ContainerList(ctx, container.ListOptions{All: true, Filters: d.nodeFilter()})
	if err != nil {
		return 0, api.Errorf(api.EUnavailable, "docker driver: list containers: %v", err)
	}
	removed := 0
	for _, s := range cs {
		id := s.Labels[LabelInstance]
		_, mine := driver.Find(&d.mu, d.ctrs, id)
		if mine || slices.Contains(known, id) {
			continue
		}
		if err := d.remove(ctx, s.ID); err != nil {
			return removed, api.Errorf(api.EUnavailable, "docker driver: remove orphan container %s: %v", s.ID, err)
		}
		d.log.Info("docker.orphan_removed", "instance", id, "container", s.ID)
		removed++
	}
	d.netMu.Lock()
	d.removeUnusedNetworks(ctx)
	d.netMu.Unlock()
	if _, err := d.CollectImages(ctx); err != nil {
		d.log.Warn("docker.image_collection_failed", "err", err)
	}
	return removed, nil
}

// Usage reads the container's CPU time and memory (usage less page cache)
// from the engine.
func (d *Driver) Usage(ctx context.Context, id string) (*driver.Usage, error) {
	c, err := d.get(id)
	if err != nil {
		return nil, err
	}
	<-c.ready
	r, err := d.cli.ContainerStatsOneShot(ctx, c.cid)
	if err != nil {
		return nil, api.Errorf(api.EUnavailable, "docker driver: stats of %s: %v", id, err)
	}
	defer r.Body.Close()
	var st container.StatsResponse
	if err := json.NewDecoder(r.Body).Decode(&st); err != nil {
		return nil, api.Errorf(api.EUnavailable, "docker driver: stats of %s: %v", id, err)
	}
	mem := int64(st.MemoryStats.Usage)
	if cache, ok := st.MemoryStats.Stats["cache"]; ok && int64(cache) <= mem {
		mem -= int64(cache)
	} else if file, ok := st.MemoryStats.Stats["inactive_file"]; ok && int64(file) <= mem {
		mem -= int64(file)
	}
	return &driver.Usage{CPUTime: time.Duration(st.CPUStats.CPUUsage.TotalUsage), MemoryBytes: mem}, nil
}

// chownTree gives uid (and gid uid) dir and everything below it, without
// following symlinks, and makes dir private to it (0700).
func chownTree(dir string, uid int) error {
	err := filepath.WalkDir(dir, func(p string, _ fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(p, uid, uid)
	})
	if err != nil {
		return err
	}
	return os.Chmod(dir, 0o700)
}

// release drops one use of image; the caller holds mu.
func (d *Driver) release(image string) {
	if d.using[image]--; d.using[image] <= 0 {
		delete(d.using, image)
	}
}

// ImageExists reports whether the engine has image ref.
func (d *Driver) ImageExists(ctx context.Context, ref string) (bool, error) {
	if _, err := d.cli.ImageInspect(ctx, ref); err != nil {
		if cerrdefs.IsNotFound(err) {
			return false, nil
		}
		return false, api.Errorf(api.EUnavailable, "docker driver: inspect image %s: %v", ref, err)
	}
	return true, nil
}

// remove force-removes a container and its anonymous volumes; one already
// gone is not an error, and a removal the engine has in progress is waited
// for (a few tries).
func (d *Driver) remove(ctx context.Context, cid string) error {
	var err error
	for range 20 {
		err = d.cli.ContainerRemove(ctx, cid, container.RemoveOptions{Force: true, RemoveVolumes: true})
		if err == nil || cerrdefs.IsNotFound(err) {
			return nil
		}
		if !cerrdefs.IsConflict(err) {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(250 * time.Millisecond):
		}
	}
	return err
}
