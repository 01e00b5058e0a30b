//go:build linux && !amd64 && !arm64

package guest

// sysFinitModule is unknown here: loading modules fails with a reason.
var sysFinitModule = -1
