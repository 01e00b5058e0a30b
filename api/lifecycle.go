package api

import (
	"context"
	"sort"
	"strings"
)

// Config var limits, enforced by the controller (see api/controller/env.go
// for the name rules).
const (
	MaxEnvValueBytes = 32 << 10 // one value
	MaxEnvVars       = 500      // per release
	MaxEnvNameLength = 256
)

// ScaleRequest changes the formation of one process type. Nil fields are
// left as they are.
type ScaleRequest struct {
	Process   string `json:"process"` // default "web"
	Instances *int   `json:"instances,omitempty"`
	MemoryMB  *int   `json:"memory_mb,omitempty"`
	DiskMB    *int   `json:"disk_mb,omitempty"`
	// ScaleToZero sets the idle time in seconds after which web instances
	// are stopped until the next request (0 = off; web only).
	ScaleToZero *int `json:"scale_to_zero,omitempty"`
}

// ScaleResult is the formation after a scale, and the release that rolls
// the new memory/disk limits out (nil when only the instance count changed).
type ScaleResult struct {
	Process Process  `json:"process"`
	Release *Release `json:"release,omitempty"`
}

// EnvChange sets and unsets config vars in one new release.
type EnvChange struct {
	Set   map[string]string `json:"set,omitempty"`
	Unset []string          `json:"unset,omitempty"`
}

// LifecycleService operates an app after it is created: releases and
// rollback, config vars, scale, start/stop/restart and its audit trail.
// Every change records an event with the caller as actor.
type LifecycleService interface {
	// Releases returns an app's releases, newest first.
	Releases(ctx context.Context, app string) ([]*Release, error)
	// Rollback creates a new release copying version's droplet and config
	// (0 = the release before the current one) and makes it current.
	Rollback(ctx context.Context, app string, version int) (*Release, error)
	// Env returns the config vars of the app's current release.
	Env(ctx context.Context, app string) (map[string]string, error)
	// ChangeEnv validates the change and creates a new release with it.
	ChangeEnv(ctx context.Context, app string, change EnvChange) (*Release, error)
	// Scale changes the formation of one process type.
	Scale(ctx context.Context, app string, req ScaleRequest) (*ScaleResult, error)
	// SetState starts or stops an app.
	SetState(ctx context.Context, app string, state AppState) (*App, error)
	// Restart replaces the app's instances one by one (a new release with
	// the same droplet and config).
	Restart(ctx context.Context, app string) (*Release, error)
	// Events returns an app's audit trail, newest first, at most limit
	// (<= 0: a default).
	Events(ctx context.Context, app string, limit int) ([]*Event, error)
}

// platformEnv are names every instance gets from the platform; a config var
// of that name would be overwritten, so it is refused.
var platformEnv = map[string]bool{
	"PORT": true, "HOME": true, "PATH": true, "TMPDIR": true, "LANG": true,
}

// hijackEnv are names that change how the dynamic loader or a shell runs
// the app's command, refused so a config var cannot take over the process.
var hijackEnv = map[string]bool{
	"BASH_ENV": true, "ENV": true, "IFS": true, "GLIBC_TUNABLES": true,
	"SHELLOPTS": true, "BASHOPTS": true, "PS4": true, "PROMPT_COMMAND": true,
	"CDPATH": true,
}

// ValidateEnvName checks a config var name: [A-Za-z_][A-Za-z0-9_]*, at most
// MaxEnvNameLength bytes, not a loader or shell hijack (LD_*, DYLD_*,
// BASH_FUNC_*, BASH_ENV, ENV, IFS, GLIBC_TUNABLES, …) and not set by the
// platform (PORT, HOME, PATH, TMPDIR, LANG, STRATA_*, VCAP_*, CF_*). It
// returns an EInvalid *Error that says what to do.
func ValidateEnvName(name string) error {
	if name == "" {
		return Errorf(EInvalid, "config var name is empty — use a name like GREETING")
	}
	if len(name) > MaxEnvNameLength {
		return Errorf(EInvalid, "config var name %q is longer than %d characters — use a shorter name", truncate(name, 20), MaxEnvNameLength)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !(c == '_' || c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || i > 0 && c >= '0' && c <= '9') {
			return Errorf(EInvalid, "config var name %q is not valid — use letters, digits and '_', not starting with a digit", truncate(name, 40))
		}
	}
	upper := strings.ToUpper(name)
	if hijackEnv[upper] || strings.HasPrefix(upper, "LD_") || strings.HasPrefix(upper, "DYLD_") || strings.HasPrefix(upper, "BASH_FUNC_") {
		return Errorf(EInvalid, "config var %s would change how the loader or shell runs your app, so it is refused — choose another name", name)
	}
	if platformEnv[upper] || strings.HasPrefix(upper, "STRATA_") || strings.HasPrefix(upper, "VCAP_") || strings.HasPrefix(upper, "CF_") {
		return Errorf(EInvalid, "config var %s is set by the platform — choose another name", name)
	}
	return nil
}

// ValidateEnvValue checks one config var value: at most MaxEnvValueBytes,
// no NUL byte, no newline (CR or LF).
func ValidateEnvValue(name, value string) error {
	if len(value) > MaxEnvValueBytes {
		return Errorf(EInvalid, "config var %s is %d bytes, more than %d — store large data elsewhere and reference it", name, len(value), MaxEnvValueBytes)
	}
	if strings.ContainsAny(value, "\x00\n\r") {
		return Errorf(EInvalid, "config var %s contains a NUL byte or a newline — use a single-line value (base64-encode binary data)", name)
	}
	return nil
}

// ValidateEnv checks every name and value of env and that it holds at most
// MaxEnvVars vars.
func ValidateEnv(env map[string]string) error {
	if len(env) > MaxEnvVars {
		return Errorf(EInvalid, "%d config vars are more than the limit of %d — unset some", len(env), MaxEnvVars)
	}
	for _, k := range sortedKeys(env) {
		if err := ValidateEnvName(k); err != nil {
			return err
		}
		if err := ValidateEnvValue(k, env[k]); err != nil {
			return err
		}
	}
	return nil
}

// ParseEnvAssignment splits "K=V" into its name and value (the value may be
// empty and may contain '='), validating both.
func ParseEnvAssignment(s string) (string, string, error) {
	k, v, ok := strings.Cut(s, "=")
	if !ok {
		return "", "", Errorf(EInvalid, "%q is not NAME=VALUE — write e.g. GREETING=hi", truncate(s, 40))
	}
	if err := ValidateEnvName(k); err != nil {
		return "", "", err
	}
	if err := ValidateEnvValue(k, v); err != nil {
		return "", "", err
	}
	return k, v, nil
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
