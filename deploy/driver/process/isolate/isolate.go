package isolate

import (
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
}

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
