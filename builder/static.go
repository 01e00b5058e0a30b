package builder

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
)

// Paths of the static buildpack inside the app dir.
const (
	StaticRoot      = "public"                    // the site's files
	StaticServerBin = ".strata/bin/strata-static" // the server copied in
)

// StaticBuildpack serves a static site with strata-static. It detects an
// index.html or a Staticfile, moves the site's files under public/, copies
// the server binary to .strata/bin/strata-static, and releases
// "web: .strata/bin/strata-static -root public". Only public/ is served, so
// .strata, the Procfile and the Staticfile never are.
type StaticBuildpack struct {
	// Server is the path of the strata-static binary on the builder.
	Server string
}

var _ Buildpack = (*StaticBuildpack)(nil)

// Name returns "static".
func (*StaticBuildpack) Name() string { return "static" }

// LooksFor returns "index.html or Staticfile".
func (*StaticBuildpack) LooksFor() string { return "index.html or Staticfile" }

// Detect reports whether the app has an index.html or a Staticfile.
func (*StaticBuildpack) Detect(_ context.Context, w *Workspace) (bool, error) {
	for _, n := range []string{"index.html", "Staticfile"} {
		if ok, err := exists(filepath.Join(w.SourceDir, n)); ok || err != nil {
			return ok, err
		}
	}
	return false, nil
}

// staticKeep are the top-level entries that stay beside public/.
var staticKeep = map[string]bool{"Procfile": true, "Staticfile": true, ".strata": true, ".stratignore": true, ".cfignore": true, ".gitignore": true}

// Compile lays the site out under public/ and installs the server.
func (b *StaticBuildpack) Compile(_ context.Context, w *Workspace) error {
	if b.Server == "" {
		return fmt.Errorf("static buildpack: no strata-static binary configured")
	}
	staging := filepath.Join(w.SourceDir, ".strata-public")
	if err := os.Mkdir(staging, 0o755); err != nil {
		return fmt.Errorf("static buildpack: %w", err)
	}
	ents, err := os.ReadDir(w.SourceDir)
	if err != nil {
		return fmt.Errorf("static buildpack: %w", err)
	}
	moved := 0
	for _, e := range ents {
		n := e.Name()
		if staticKeep[n] || n == ".strata-public" {
			continue
		}
		if err := os.Rename(filepath.Join(w.SourceDir, n), filepath.Join(staging, n)); err != nil {
			return fmt.Errorf("static buildpack: %w", err)
		}
		moved++
	}
	if err := os.Rename(staging, filepath.Join(w.SourceDir, StaticRoot)); err != nil {
		return fmt.Errorf("static buildpack: %w", err)
	}
	fmt.Fprintf(w.Out, "-----> Serving %d top-level entries from %s/\n", moved, StaticRoot)
	dst := filepath.Join(w.SourceDir, filepath.FromSlash(StaticServerBin))
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return fmt.Errorf("static buildpack: %w", err)
	}
	_ = os.RemoveAll(dst) // whatever the app shipped there is replaced
	if err := copyFile(b.Server, dst, 0o755); err != nil {
		return fmt.Errorf("static buildpack: install strata-static: %w", err)
	}
	return nil
}

// Release returns "web: .strata/bin/strata-static -root public".
func (*StaticBuildpack) Release(context.Context, *Workspace) (*ReleaseInfo, error) {
	return &ReleaseInfo{Processes: map[string]string{"web": StaticServerBin + " -root " + StaticRoot}}, nil
}
