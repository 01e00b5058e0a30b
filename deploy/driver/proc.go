package driver

import (
	"fmt"
	"os"
	"strings"

	"github.com/strata-paas/strata/api"
)

// The helpers below are shared by the drivers that supervise host processes
// (the process driver's instances, the microvm driver's QEMUs): a pid is
// matched with its start time so a reused pid is not mistaken for it.

// StartTime returns the start time (field 22 of /proc/<pid>/stat, in clock
// ticks since boot) of a live process. A zombie or missing process is an
// ENotFound *api.Error.
func StartTime(pid int) (uint64, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, api.Errorf(api.ENotFound, "no process %d", pid)
	}
	return ParseStat(data)
}

// ParseStat extracts the start time from a /proc/<pid>/stat line. The command
// name (field 2) may contain spaces and parentheses, so fields are counted
// from the last ')'.
func ParseStat(data []byte) (uint64, error) {
	s := string(data)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, api.Errorf(api.EInvalid, "malformed /proc stat")
	}
	f := strings.Fields(s[i+1:])
	// f[0] is field 3 (state); field 22 is f[19].
	if len(f) < 20 {
		return 0, api.Errorf(api.EInvalid, "malformed /proc stat")
	}
	if f[0] == "Z" || f[0] == "X" {
		return 0, api.Errorf(api.ENotFound, "process is a zombie")
	}
	var v uint64
	for _, c := range f[19] {
		if c < '0' || c > '9' {
			return 0, api.Errorf(api.EInvalid, "malformed /proc stat start time")
		}
		v = v*10 + uint64(c-'0')
	}
	return v, nil
}

// CheckID refuses an instance id that is not a plain name (a-z, A-Z, 0-9,
// '-', '_'; at most 128): drivers put it in names of containers, files and
// labels.
func CheckID(id string) error {
	if id == "" || len(id) > 128 {
		return api.Errorf(api.EInvalid, "instance id %q is not a plain name — use the instance GUID", id)
	}
	for _, c := range id {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return api.Errorf(api.EInvalid, "instance id %q is not a plain name — use the instance GUID", id)
		}
	}
	return nil
}
