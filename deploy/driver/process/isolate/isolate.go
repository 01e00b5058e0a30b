package isolate

import (
	"context"
	"encoding/json"
	"os"
)

// Arg0 is the argv[0] under which this binary runs as an instance's init.
const Arg0 = "strata-init"

// InitConfig is what the driver tells an init, through its config pipe.
type InitConfig struct {
	Hostname string   `json:"hostname"`
	Dir      string   `json:"dir"`      // the command's working directory; absolute, no symlinks
	Writable []string `json:"writable"` // directories kept writable (absolute, no symlinks); the rest is read-only
	Argv     []string `json:"argv"`     // the command, Argv[0] an absolute path
	Env      []string `json:"env"`
	UID      int      `json:"uid"`
	GID      int      `json:"gid"`
	TmpMB    int      `json:"tmp_mb"` // size of the private /tmp; 0: the kernel's default
	// Net, when set, is the network the init configures in its own network
	// namespace before anything else; nil keeps the host's network.
	Net *Network `json:"net,omitempty"`
}

// Network is what an init configures in its network namespace: loopback up,
// Link (a veth end the driver moved in) renamed eth0 with Addr and up, and a
// default route through Gateway.
type Network struct {
	IPTool  string `json:"ip_tool"` // absolute path of ip(8)
	Link    string `json:"link"`
	Addr    string `json:"addr"` // CIDR
	Gateway string `json:"gateway"`
}

// Attach connects the network namespace of a just-started init (its host
// pid) and says what the init must configure there.
type Attach func(ctx context.Context, pid int) (*Network, error)

// Result is how the command ended, written by the init to the result file.
type Result struct {
	ExitCode int    `json:"exit_code"`        // -1 when killed by a signal
	Signal   string `json:"signal,omitempty"` // e.g. "killed"
}

// ReadResult reads the result file an init wrote. ok is false when the init
// died before the command ended (e.g. it was SIGKILLed).
func ReadResult(path string) (res Result, ok bool) {
	data, err := os.ReadFile(path)
	if err != nil || len(data) == 0 {
		return res, false
	}
	if json.Unmarshal(data, &res) != nil {
		return res, false
	}
	return res, true
}
