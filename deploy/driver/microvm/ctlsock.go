package microvm

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
)

// maxSocketPath keeps a Unix socket's path within sun_path (108 bytes with
// its NUL) on Linux.
const maxSocketPath = 100

// ctlPath is the path QEMU and the driver use for the control socket of
// the VM in dir. A deep state dir (a long --data) would not fit in a Unix
// socket's path, so such a dir is reached through a short symlink in the
// temp dir (linkCtl), named for dir.
func ctlPath(dir string) string {
	if p := filepath.Join(dir, "ctl.sock"); len(p) <= maxSocketPath {
		return p
	}
	return filepath.Join(ctlLink(dir), "ctl.sock")
}

func ctlLink(dir string) string {
	sum := sha256.Sum256([]byte(dir))
	return filepath.Join(os.TempDir(), "strata-vm-"+hex.EncodeToString(sum[:8]))
}

// linkCtl makes the short symlink ctlPath goes through, when it needs one.
func linkCtl(dir string) error {
	if len(filepath.Join(dir, "ctl.sock")) <= maxSocketPath {
		return nil
	}
	link := ctlLink(dir)
	if target, err := os.Readlink(link); err == nil && target == dir {
		return nil
	}
	_ = os.Remove(link)
	return os.Symlink(dir, link)
}

// unlinkCtl removes dir's symlink, if it has one.
func unlinkCtl(dir string) {
	if len(filepath.Join(dir, "ctl.sock")) <= maxSocketPath {
		return
	}
	if target, err := os.Readlink(ctlLink(dir)); err == nil && target == dir {
		_ = os.Remove(ctlLink(dir))
	}
}
