package dropletimage_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/strata-paas/strata/api"
	"github.com/strata-paas/strata/deploy/dropletimage"
)

type entry struct {
	hdr  tar.Header
	data string
}

func tarGz(t *testing.T, entries ...entry) string {
	t.Helper()
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	for _, e := range entries {
		h := e.hdr
		h.Size = int64(len(e.data))
		if err := tw.WriteHeader(&h); err != nil {
			t.Fatal(err)
		}
		_, _ = tw.Write([]byte(e.data))
	}
	_ = tw.Close()
	_ = gz.Close()
	p := filepath.Join(t.TempDir(), "droplet.tgz")
	if err := os.WriteFile(p, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// base writes an empty image as a `docker save` tarball: the stack
// stand-in.
func base(t *testing.T) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "base.tar")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tag, _ := name.NewTag("strata/stack:test")
	if err := tarball.Write(tag, empty.Image, f); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestWrite(t *testing.T) {
	droplet := tarGz(t,
		entry{hdr: tar.Header{Name: "staging.json", Mode: 0o644, Typeflag: tar.TypeReg}, data: "{}"},
		entry{hdr: tar.Header{Name: "app/bin/web", Mode: 0o4755, Typeflag: tar.TypeReg}, data: "#!/bin/sh\n"},
		entry{hdr: tar.Header{Name: "app/link", Linkname: "bin/web", Typeflag: tar.TypeSymlink}},
	)
	out := filepath.Join(t.TempDir(), "image.tar")
	f, err := os.Create(out)
	if err != nil {
		t.Fatal(err)
	}
	err = dropletimage.Write(f, dropletimage.Options{Tag: "strata/droplet:abc", Base: base(t), Droplet: droplet, UID: 2000,
		Labels: map[string]string{"io.strata.droplet": "sha256:abc"}})
	f.Close()
	if err != nil {
		t.Fatalf("Write: %v", err)
	}
	tag, _ := name.NewTag("strata/droplet:abc")
	img, err := tarball.ImageFromPath(out, &tag)
	if err != nil {
		t.Fatalf("the written tarball is not an image tagged strata/droplet:abc: %v", err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if cf.Config.User != "2000:2000" || cf.Config.WorkingDir != "/home/strata/app" || cf.Config.Labels["io.strata.droplet"] != "sha256:abc" {
		t.Errorf("config = %+v, want user 2000:2000, the app dir and the labels", cf.Config)
	}
	layers, err := img.Layers()
	if err != nil || len(layers) != 1 {
		t.Fatalf("layers = %d, %v; want the droplet layer on the (empty) stack", len(layers), err)
	}
	rc, err := layers[0].Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	got := map[string]*tar.Header{}
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		got[h.Name] = h
	}
	for _, n := range []string{"home/", "home/strata/", "home/strata/app/", "home/strata/app/bin/", "home/strata/app/bin/web", "home/strata/app/link", "home/strata/staging.json"} {
		if got[n] == nil {
			t.Errorf("layer lacks %s (has %v)", n, got)
		}
	}
	if h := got["home/strata/app/bin/web"]; h != nil && (h.Uid != 2000 || h.Gid != 2000 || h.Mode&0o7000 != 0 || h.Mode&0o755 != 0o755) {
		t.Errorf("app/bin/web: uid %d gid %d mode %o, want 2000, 2000 and the setuid bit cleared", h.Uid, h.Gid, h.Mode)
	}
	if h := got["home/strata/app/"]; h != nil && h.Uid != 2000 {
		t.Errorf("app dir owned by %d, want 2000 (the app writes it)", h.Uid)
	}
	if h := got["home/"]; h != nil && h.Uid != 0 {
		t.Errorf("home/ owned by %d, want root", h.Uid)
	}
}

func TestWriteRefusesUnsafeEntries(t *testing.T) {
	for _, e := range []entry{
		{hdr: tar.Header{Name: "../escape", Mode: 0o644, Typeflag: tar.TypeReg}, data: "x"},
		{hdr: tar.Header{Name: "/abs", Mode: 0o644, Typeflag: tar.TypeReg}, data: "x"},
		{hdr: tar.Header{Name: "app/dev", Mode: 0o644, Typeflag: tar.TypeChar}},
		{hdr: tar.Header{Name: "app/hard", Linkname: "../../etc/passwd", Typeflag: tar.TypeLink}},
	} {
		t.Run(e.hdr.Name, func(t *testing.T) {
			err := dropletimage.Write(io.Discard, dropletimage.Options{Tag: "strata/droplet:x", Base: base(t), Droplet: tarGz(t, e), UID: 2000})
			if api.ErrorCode(err) != api.EInvalid {
				t.Fatalf("Write with %q: %v, want invalid", e.hdr.Name, err)
			}
		})
	}
}
