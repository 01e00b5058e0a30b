package executor

import (
	"bytes"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/strata-paas/strata/api"
)

// Substrate values accepted by Config.Substrate besides api.Substrate values.
const SubstrateAuto = "auto"

// Config configures an Executor. Zero values take the defaults below.
type Config struct {
	NodeID        string            // stable id; if empty, read or create <DataDir>/node-id
	DataDir       string            // droplet cache, instance dirs, node-id (required)
	AdvertiseHost string            // host routers dial; default 127.0.0.1
	Substrate     string            // auto (default) | metal | vm
	Labels        map[string]string // placement labels reported in heartbeats

	HeartbeatInterval time.Duration // default 1s
	StartTimeout      time.Duration // health check start-up timeout; default 60s
	StopGrace         time.Duration // SIGTERM → SIGKILL grace; default 10s
	// DrainDelay is how long a routed instance keeps running after its
	// routes are withdrawn, before SIGTERM, so routers stop sending to it;
	// default 1s.
	DrainDelay time.Duration
	// LivenessInterval is how often a running instance's health check is
	// repeated (unless its spec sets one); default 1s. A failed check
	// unroutes the instance at once; LivenessFailures consecutive failures
	// (default 3) count as a crash.
	LivenessInterval time.Duration
	LivenessFailures int
	// TaskTimeout bounds one one-off task; default 1h.
	TaskTimeout time.Duration
	// RegisterInterval is the route re-registration interval used until a
	// router announces its own (router.start / router.greet); default 2s.
	RegisterInterval time.Duration
	Restart          RestartPolicy
	// KeepDroplets is how many droplets the cache keeps; default 5.
	KeepDroplets int
	// LogBuffer is how many log lines may wait for the bus before lines are
	// dropped (and counted); default 4096.
	LogBuffer int
	// StopOnExit stops every instance when Run returns (microcloud does this).
	// Without it instances keep running and the next Run recovers them.
	StopOnExit bool
	Logger     *slog.Logger
}

// RestartPolicy is how crashed instances are restarted: Immediate restarts
// at once, then Backoff doubling up to MaxBackoff. An instance that stayed
// healthy for ResetAfter starts counting again from zero.
type RestartPolicy struct {
	Immediate  int           // default 3
	Backoff    time.Duration // default 1s
	MaxBackoff time.Duration // default 30s
	ResetAfter time.Duration // default 60s
}

// Delay returns how long to wait before restarting after the n-th
// consecutive crash (n ≥ 1).
func (p RestartPolicy) Delay(n int) time.Duration {
	if n <= p.Immediate {
		return 0
	}
	d := p.Backoff
	for i := p.Immediate + 1; i < n && d < p.MaxBackoff; i++ {
		d *= 2
	}
	return min(d, p.MaxBackoff)
}

func (c *Config) setDefaults() {
	if c.AdvertiseHost == "" {
		c.AdvertiseHost = "127.0.0.1"
	}
	if c.Substrate == "" {
		c.Substrate = SubstrateAuto
	}
	if c.HeartbeatInterval <= 0 {
		c.HeartbeatInterval = time.Second
	}
	if c.StartTimeout <= 0 {
		c.StartTimeout = 60 * time.Second
	}
	if c.StopGrace <= 0 {
		c.StopGrace = 10 * time.Second
	}
	if c.DrainDelay <= 0 {
		c.DrainDelay = time.Second
	}
	if c.LivenessInterval <= 0 {
		c.LivenessInterval = time.Second
	}
	if c.LivenessFailures <= 0 {
		c.LivenessFailures = 3
	}
	if c.TaskTimeout <= 0 {
		c.TaskTimeout = time.Hour
	}
	if c.RegisterInterval <= 0 {
		c.RegisterInterval = 2 * time.Second
	}
	if c.Restart.Immediate == 0 {
		c.Restart.Immediate = 3
	}
	if c.Restart.Immediate < 0 {
		c.Restart.Immediate = 0
	}
	if c.Restart.Backoff <= 0 {
		c.Restart.Backoff = time.Second
	}
	if c.Restart.MaxBackoff <= 0 {
		c.Restart.MaxBackoff = 30 * time.Second
	}
	if c.Restart.ResetAfter <= 0 {
		c.Restart.ResetAfter = 60 * time.Second
	}
	if c.KeepDroplets <= 0 {
		c.KeepDroplets = 5
	}
	if c.LogBuffer <= 0 {
		c.LogBuffer = 4096
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
}

// validNodeID reports whether id can be a NATS subject token and a file name.
func validNodeID(id string) bool {
	if id == "" || len(id) > 128 {
		return false
	}
	for _, c := range id {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// LoadNodeID returns the node id New will use for a Config with DataDir
// dataDir and no NodeID: the one kept in <dataDir>/node-id, created (with
// the dir) when absent. Drivers that label what they create with the node
// (the docker driver) get it before the executor exists.
func LoadNodeID(dataDir string) (string, error) {
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return "", api.Errorf(api.EUnavailable, "cannot create %s: %v", dataDir, err)
	}
	return loadNodeID(dataDir)
}

// loadNodeID reads <dataDir>/node-id, creating it with a new UUID if absent.
func loadNodeID(dataDir string) (string, error) {
	p := filepath.Join(dataDir, "node-id")
	data, err := os.ReadFile(p)
	if err == nil {
		id := strings.TrimSpace(string(data))
		if !validNodeID(id) {
			return "", api.Errorf(api.EInvalid, "%s holds an invalid node id %q — fix or delete the file", p, id)
		}
		return id, nil
	}
	if !os.IsNotExist(err) {
		return "", api.Errorf(api.EUnavailable, "cannot read %s: %v", p, err)
	}
	id := uuid.NewString()
	if err := writeFileAtomic(p, []byte(id+"\n")); err != nil {
		return "", err
	}
	return id, nil
}

// writeFileAtomic writes data to p through a temporary file and a rename.
func writeFileAtomic(p string, data []byte) error {
	tmp := p + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		return api.Errorf(api.EUnavailable, "cannot write %s: %v", p, err)
	}
	if err := os.Rename(tmp, p); err != nil {
		return api.Errorf(api.EUnavailable, "cannot write %s: %v", p, err)
	}
	return nil
}

// detectSubstrate says vm when the CPU reports a hypervisor or DMI names a
// known virtual platform, and metal otherwise.
func detectSubstrate(cpuinfo, sysVendor []byte) api.Substrate {
	for line := range bytes.Lines(cpuinfo) {
		k, v, ok := bytes.Cut(line, []byte(":"))
		if ok && string(bytes.TrimSpace(k)) == "flags" {
			for _, f := range bytes.Fields(v) {
				if string(f) == "hypervisor" {
					return api.SubstrateVM
				}
			}
		}
	}
	vendor := strings.ToLower(strings.TrimSpace(string(sysVendor)))
	for _, v := range []string{"qemu", "kvm", "vmware", "innotek", "virtualbox", "xen", "microsoft corporation", "amazon ec2", "google", "bochs", "parallels", "digitalocean", "hetzner", "openstack"} {
		if strings.HasPrefix(vendor, v) {
			return api.SubstrateVM
		}
	}
	return api.SubstrateMetal
}

func resolveSubstrate(s string) (api.Substrate, error) {
	switch s {
	case SubstrateAuto:
		cpu, _ := os.ReadFile("/proc/cpuinfo")
		vendor, _ := os.ReadFile("/sys/class/dmi/id/sys_vendor")
		return detectSubstrate(cpu, vendor), nil
	case string(api.SubstrateMetal), string(api.SubstrateVM):
		return api.Substrate(s), nil
	}
	return "", api.Errorf(api.EInvalid, "substrate %q is not auto, metal or vm", s)
}
