package droplet

import (
	"archive/tar"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/strata-paas/strata/api"
	"github.com/strata-paas/strata/api/archive"
)

// Names inside a droplet.
const (
	InfoFile = "staging.json" // api.StagingInfo
	AppDir   = "app"          // the app, the instance's working directory
)

// maxInfoSize bounds staging.json.
const maxInfoSize = 1 << 20

// Write writes a droplet of appDir with info to w.
func Write(ctx context.Context, w io.Writer, appDir string, info api.StagingInfo) error {
	data, err := json.MarshalIndent(info, "", "  ")
	if err != nil {
		return fmt.Errorf("droplet: %w", err)
	}
	aw, err := archive.NewWriter(w, gzip.BestSpeed)
	if err != nil {
		return err
	}
	if err := aw.AddFile(InfoFile, append(data, '\n'), false); err != nil {
		return err
	}
	if err := aw.AddDir(ctx, AppDir, appDir, archive.PackOptions{}); err != nil {
		return err
	}
	return aw.Close()
}

// ReadInfo returns the staging.json of the droplet read from r without
// extracting it. staging.json is written first, so only the start of the
// droplet is read. A droplet without one is an EInvalid *api.Error.
func ReadInfo(r io.Reader) (*api.StagingInfo, error) {
	zr, err := gzip.NewReader(r)
	if err != nil {
		return nil, api.Errorf(api.EInvalid, "droplet is not gzip-compressed: %v", err)
	}
	defer zr.Close()
	tr := tar.NewReader(zr)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil, api.Errorf(api.EInvalid, "droplet has no %s — rebuild the app", InfoFile)
		}
		if err != nil {
			return nil, api.Errorf(api.EInvalid, "droplet is corrupt: %v", err)
		}
		if hdr.Name == InfoFile && hdr.Typeflag == tar.TypeReg {
			return decodeInfo(io.LimitReader(tr, maxInfoSize+1))
		}
	}
}

// Extract unpacks the droplet read from r into dest (an existing, empty
// directory) with archive.Extract and returns its staging info. The app is
// then in filepath.Join(dest, AppDir).
func Extract(ctx context.Context, r io.Reader, dest string, lim archive.Limits) (*api.StagingInfo, error) {
	if err := archive.Extract(ctx, r, dest, lim); err != nil {
		return nil, err
	}
	root, err := os.OpenRoot(dest)
	if err != nil {
		return nil, fmt.Errorf("droplet: %w", err)
	}
	defer root.Close()
	f, err := root.Open(InfoFile)
	if err != nil {
		return nil, api.Errorf(api.EInvalid, "droplet has no %s — rebuild the app", InfoFile)
	}
	defer f.Close()
	info, err := decodeInfo(io.LimitReader(f, maxInfoSize+1))
	if err != nil {
		return nil, err
	}
	if fi, err := root.Lstat(AppDir); err != nil || !fi.IsDir() {
		return nil, api.Errorf(api.EInvalid, "droplet has no %s/ directory — rebuild the app", AppDir)
	}
	return info, nil
}

func decodeInfo(r io.Reader) (*api.StagingInfo, error) {
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, api.Errorf(api.EInvalid, "droplet %s unreadable: %v", InfoFile, err)
	}
	if len(data) > maxInfoSize {
		return nil, api.Errorf(api.EInvalid, "droplet %s is larger than %d bytes", InfoFile, maxInfoSize)
	}
	var info api.StagingInfo
	if err := json.Unmarshal(data, &info); err != nil {
		return nil, api.Errorf(api.EInvalid, "droplet %s is not valid JSON: %v", InfoFile, err)
	}
	return &info, nil
}
