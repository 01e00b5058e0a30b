package guest

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// ConfigPath is where the per-instance part of the initramfs puts the
// instance's Config (JSON).
const ConfigPath = "/strata/config.json"

// Names of the virtio-serial ports (their QEMU "name" property, read by the
// guest from /sys/class/virtio-ports/*/name).
const (
	OutPortName     = "strata.out" // guest → host: frames
	ControlPortName = "strata.ctl" // host → guest: lines of Control commands
)

// Control commands the host sends, one per line.
const (
	ControlTerm = "TERM" // SIGTERM to the command's process group
	ControlKill = "KILL" // SIGKILL to it
)

// Config is what the guest init needs to run one instance.
type Config struct {
	Command  string   `json:"command"`   // run as /bin/sh -c Command
	Env      []string `json:"env"`       // the complete environment
	Dir      string   `json:"dir"`       // working dir
	DiskRoot string   `json:"disk_root"` // where the app disk (/dev/vda) is mounted; "" with RootDisk
	// RootDisk says /dev/vda is the guest's root file system (the stack
	// plus the droplet): the command runs chrooted into it, with /proc,
	// /sys, /dev and a /tmp of its own.
	RootDisk bool `json:"root_disk,omitempty"`
	// ChownDisk gives the files of the disk at DiskRoot to UID at boot (a
	// disk made of a node's dir; droplet images have their owners).
	ChownDisk bool     `json:"chown_disk,omitempty"`
	Writable  []string `json:"writable"` // further dirs made and given to the user
	UID       int      `json:"uid"`
	GID       int      `json:"gid"`
	Modules   []string `json:"modules"` // kernel modules to load, in order (paths in the initramfs)
	Port      int      `json:"port"`    // the instance's $PORT; 0 = none to watch
	Address   string   `json:"address"` // e.g. 10.0.2.15/24; "" = no network
	Gateway   string   `json:"gateway"`
}

// ListenReport is how often the init reports whether the port listens.
const ListenReport = time.Second

// Exit is how the command ended.
type Exit struct {
	Code   int    // -1 when killed by a signal
	Signal string // "terminated", "killed", … when killed by one
	// OOM says the guest's kernel killed a process for want of memory
	// while the command ran (the guest's RAM is the instance's limit).
	OOM bool
}

// EncodeExit encodes e as a KindExit payload: "code N" or "signal NAME",
// followed by " oom" when e.OOM.
func EncodeExit(e Exit) []byte {
	s := "code " + strconv.Itoa(e.Code)
	if e.Signal != "" {
		s = "signal " + e.Signal
	}
	if e.OOM {
		s += " oom"
	}
	return []byte(s)
}

// DecodeExit decodes a KindExit payload.
func DecodeExit(p []byte) (Exit, error) {
	s, oom := strings.CutSuffix(string(p), " oom")
	k, v, ok := strings.Cut(s, " ")
	switch {
	case ok && k == "signal" && v != "" && !strings.ContainsAny(v, " \x00"):
		return Exit{Code: -1, Signal: v, OOM: oom}, nil
	case ok && k == "code":
		n, err := strconv.Atoi(v)
		if err == nil {
			return Exit{Code: n, OOM: oom}, nil
		}
	}
	return Exit{}, fmt.Errorf("malformed exit record %q", p)
}
