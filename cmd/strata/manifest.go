package main

import (
	"path/filepath"
	"strings"

	"github.com/strata-paas/strata/api"
	"github.com/strata-paas/strata/manifest"
)

// pushManifest is the manifest a push carries. The CLI reads it only to
// learn the app's name and to refuse a bad file before uploading; the
// controller applies it from the upload, the same way for `git push`
// (docs/cli.md, "Manifest").
type pushManifest struct {
	name string // under this name at the root of the upload
	data []byte
}

// loadManifest reads the manifest (path, or auto-detected in dir) and
// returns the app to push and the manifest; a nil manifest means none. name
// is the app named on the command line ("" for none).
func loadManifest(path, dir, name string) (string, *pushManifest, error) {
	upload := "strata.yml" // a -f file travels as the directory's strata.yml
	if path == "" {
		path = manifest.Find(dir)
		upload = filepath.Base(path)
	}
	if path == "" {
		return name, nil, nil
	}
	m, data, err := manifest.ReadFile(path)
	if err != nil {
		return "", nil, err
	}
	var app *manifest.App
	switch {
	case name != "":
		for i := range m.Applications {
			if m.Applications[i].Name == name {
				app = &m.Applications[i]
			}
		}
		if app == nil {
			return "", nil, api.Errorf(api.EInvalid, "%s has no application named %s — add it or push without a name", filepath.Base(path), name)
		}
	case len(m.Applications) == 1:
		app = &m.Applications[0]
	default:
		var names []string
		for _, a := range m.Applications {
			names = append(names, a.Name)
		}
		return "", nil, api.Errorf(api.EInvalid, "%s describes several apps (%s) — name the one to push: strata push NAME", filepath.Base(path), strings.Join(names, ", "))
	}
	return app.Name, &pushManifest{name: upload, data: data}, nil
}
