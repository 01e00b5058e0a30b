package e2e_test

import (
	"strings"
	"testing"
	"time"
)

// waitUnmapped polls host+path through the router at addr after an unmap:
// it may still answer 200 until every router has heard of it, and then must
// answer 404 at once. A route kept known would hold the request for the
// router's hold bound (10 s) and answer 503, which fails.
func waitUnmapped(t testing.TB, addr, host, path string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		code, body, err := routerGet(addr, host, path)
		switch {
		case err != nil:
			t.Fatalf("%s%s via router after unmap: %v", host, path, err)
		case code == 200:
			time.Sleep(20 * time.Millisecond)
			continue
		case code != 404 || !strings.Contains(body, "no app is mapped"):
			t.Fatalf("%s%s via router after unmap: %d %q, want 404 at once", host, path, code, tail(body, 300))
		}
		return
	}
	t.Fatalf("%s%s via router: still 200 30s after unmap", host, path)
}
