package microvm

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A VM dir too deep for a Unix socket's path is reached through a short
// symlink, and a socket made there can be dialled; a short dir is used as
// it is.
func TestCtlPathFitsASocket(t *testing.T) {
	short := t.TempDir()
	if got := ctlPath(short); got != filepath.Join(short, "ctl.sock") {
		t.Errorf("short dir: %s", got)
	}
	deep := filepath.Join(t.TempDir(), strings.Repeat("d", 60), strings.Repeat("e", 60))
	if err := os.MkdirAll(deep, 0o700); err != nil {
		t.Fatal(err)
	}
	p := ctlPath(deep)
	if len(p) > maxSocketPath {
		t.Fatalf("ctlPath(%d-byte dir) = %d bytes", len(deep), len(p))
	}
	if err := linkCtl(deep); err != nil {
		t.Fatal(err)
	}
	if err := linkCtl(deep); err != nil { // again, as a reboot of the VM does
		t.Fatal(err)
	}
	ln, err := net.Listen("unix", p)
	if err != nil {
		t.Fatalf("listen on %s: %v", p, err)
	}
	defer ln.Close()
	if _, err := os.Stat(filepath.Join(deep, "ctl.sock")); err != nil {
		t.Errorf("the socket is not in the VM's dir: %v", err)
	}
	c, err := net.Dial("unix", ctlPath(deep))
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	c.Close()
	unlinkCtl(deep)
	if _, err := os.Lstat(ctlLink(deep)); !os.IsNotExist(err) {
		t.Errorf("the symlink is left: %v", err)
	}
}
