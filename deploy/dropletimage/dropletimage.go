// Package dropletimage turns a droplet into a container image with no
// registry: the stack image (a `docker save` tarball) plus one layer holding
// the droplet, written as a tarball that `docker load` accepts. It is the
// only package that imports github.com/google/go-containerregistry.
//
// The droplet layer puts the droplet's files under Root (default
// /home/strata, so the app dir is /home/strata/app), owned by UID, with
// setuid/setgid bits cleared; an entry whose name is not local, or that is a
// device or FIFO, fails the write. The image config is the stack's with the
// droplet's labels, WorkingDir at the app dir and User UID:UID.
package dropletimage

import (
	"archive/tar"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/strata-paas/strata/api"
)

// DefaultRoot is where the droplet's files go in the image.
const DefaultRoot = "/home/strata"

// Options say what to write.
type Options struct {
	Tag     string            // the image's tag, e.g. strata/droplet:<hex>
	Base    string            // path of the stack's `docker save` tarball
	Droplet string            // path of the droplet (tar.gz)
	Root    string            // where the droplet goes; default DefaultRoot
	UID     int               // owner of the droplet's files and the image's user
	Labels  map[string]string // added to the stack's labels
	TempDir string            // for the layer file; default os.TempDir()
}

// AppDir is the app dir in an image written with root (DefaultRoot when "").
func AppDir(root string) string {
	if root == "" {
		root = DefaultRoot
	}
	return path.Join(root, "app")
}

// Write writes the image o describes to w as a `docker load` tarball. A
// droplet with an unsafe entry is EInvalid.
func Write(w io.Writer, o Options) error {
	if o.Root == "" {
		o.Root = DefaultRoot
	}
	if !path.IsAbs(o.Root) || path.Clean(o.Root) != o.Root || o.Root == "/" {
		return api.Errorf(api.EInvalid, "droplet image root %q is not a clean absolute dir", o.Root)
	}
	tag, err := name.NewTag(o.Tag)
	if err != nil {
		return api.Errorf(api.EInvalid, "image tag %q: %v", o.Tag, err)
	}
	base, err := tarball.ImageFromPath(o.Base, nil)
	if err != nil {
		return fmt.Errorf("dropletimage: read the stack tarball: %w", err)
	}
	layerFile, err := os.CreateTemp(o.TempDir, "droplet-layer-*.tar")
	if err != nil {
		return fmt.Errorf("dropletimage: %w", err)
	}
	defer os.Remove(layerFile.Name())
	defer layerFile.Close()
	h := sha256.New()
	if err := writeLayer(io.MultiWriter(layerFile, h), o); err != nil {
		return err
	}
	if err := layerFile.Close(); err != nil {
		return fmt.Errorf("dropletimage: %w", err)
	}
	st, err := os.Stat(layerFile.Name())
	if err != nil {
		return fmt.Errorf("dropletimage: %w", err)
	}
	dropletDiff := v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(h.Sum(nil))}
	droplet := &rawLayer{diff: dropletDiff, size: st.Size(), open: func() (io.ReadCloser, error) { return os.Open(layerFile.Name()) }}

	// The stack's layers are written as they are, uncompressed: compressing
	// hundreds of MB per droplet would cost seconds, and the engine skips a
	// layer it already has (it has the stack) without reading it.
	bcf, err := base.ConfigFile()
	if err != nil {
		return fmt.Errorf("dropletimage: stack config: %w", err)
	}
	bl, err := base.Layers()
	if err != nil || len(bl) != len(bcf.RootFS.DiffIDs) {
		return fmt.Errorf("dropletimage: stack layers: %d layers for %d diff ids (%v)", len(bl), len(bcf.RootFS.DiffIDs), err)
	}
	var layers []v1.Layer
	for i, l := range bl {
		size, err := uncompressedSize(l)
		if err != nil {
			return fmt.Errorf("dropletimage: stack layer %d: %w", i, err)
		}
		layers = append(layers, &rawLayer{diff: bcf.RootFS.DiffIDs[i], size: size, open: l.Uncompressed})
	}
	layers = append(layers, droplet)
	img, err := mutate.AppendLayers(empty.Image, layers...)
	if err != nil {
		return fmt.Errorf("dropletimage: %w", err)
	}
	cf := bcf.DeepCopy()
	cf.RootFS.DiffIDs = append(cf.RootFS.DiffIDs, dropletDiff)
	cf.History = append(cf.History, v1.History{CreatedBy: "strata: droplet layer", Comment: o.Labels["io.strata.droplet"]})
	cfg := cf.Config
	cfg.Labels = map[string]string{}
	for k, v := range bcf.Config.Labels {
		cfg.Labels[k] = v
	}
	for k, v := range o.Labels {
		cfg.Labels[k] = v
	}
	cfg.WorkingDir = AppDir(o.Root)
	cfg.User = strconv.Itoa(o.UID) + ":" + strconv.Itoa(o.UID)
	cf.Config = cfg
	if img, err = mutate.ConfigFile(img, cf); err != nil {
		return fmt.Errorf("dropletimage: %w", err)
	}
	if err := tarball.Write(tag, img, w); err != nil {
		return fmt.Errorf("dropletimage: write the image: %w", err)
	}
	return nil
}

// writeLayer writes the droplet's entries under o.Root to w as a tar.
func writeLayer(w io.Writer, o Options) error {
	f, err := os.Open(o.Droplet)
	if err != nil {
		return fmt.Errorf("dropletimage: %w", err)
	}
	defer f.Close()
	gz, err := gzip.NewReader(f)
	if err != nil {
		return api.Errorf(api.EInvalid, "droplet is not a tar.gz: %v", err)
	}
	defer gz.Close()
	tr := tar.NewReader(gz)
	tw := tar.NewWriter(w)
	root := strings.TrimPrefix(o.Root, "/")
	// The root's ancestors belong to root; the root itself to the app user.
	parts := strings.Split(root, "/")
	for i := range parts {
		hdr := &tar.Header{Typeflag: tar.TypeDir, Name: strings.Join(parts[:i+1], "/") + "/", Mode: 0o755}
		if i == len(parts)-1 {
			hdr.Uid, hdr.Gid = o.UID, o.UID
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return fmt.Errorf("dropletimage: %w", err)
		}
	}
	made := map[string]bool{}
	var parents []string
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return api.Errorf(api.EInvalid, "droplet is not a readable tar: %v", err)
		}
		clean := strings.TrimSuffix(strings.TrimPrefix(hdr.Name, "./"), "/")
		if clean == "" || clean == "." {
			continue
		}
		if !filepath.IsLocal(clean) || strings.Contains(clean, `\`) {
			return api.Errorf(api.EInvalid, "droplet entry %q is not a local path", hdr.Name)
		}
		// Parents the droplet does not list belong to the app user too.
		for dir := path.Dir(clean); dir != "." && !made[dir]; dir = path.Dir(dir) {
			made[dir] = true
			parents = append(parents, dir)
		}
		for i := len(parents) - 1; i >= 0; i-- {
			if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: root + "/" + parents[i] + "/", Mode: 0o755, Uid: o.UID, Gid: o.UID, Format: tar.FormatPAX}); err != nil {
				return fmt.Errorf("dropletimage: %w", err)
			}
		}
		parents = parents[:0]
		if hdr.Typeflag == tar.TypeDir {
			made[clean] = true
		}
		out := &tar.Header{Name: root + "/" + clean, Mode: hdr.Mode &^ 0o7000, Uid: o.UID, Gid: o.UID,
			ModTime: hdr.ModTime, Size: hdr.Size, Typeflag: hdr.Typeflag, Format: tar.FormatPAX}
		switch hdr.Typeflag {
		case tar.TypeDir:
			out.Name += "/"
			out.Size = 0
		case tar.TypeReg:
		case tar.TypeSymlink:
			out.Linkname, out.Size = hdr.Linkname, 0
		case tar.TypeLink:
			target := strings.TrimPrefix(hdr.Linkname, "./")
			if !filepath.IsLocal(target) {
				return api.Errorf(api.EInvalid, "droplet hard link %q points outside the droplet", hdr.Name)
			}
			out.Linkname, out.Size = root+"/"+target, 0
		default:
			return api.Errorf(api.EInvalid, "droplet entry %q is a device, FIFO or other special file", hdr.Name)
		}
		if err := tw.WriteHeader(out); err != nil {
			return fmt.Errorf("dropletimage: %w", err)
		}
		if out.Typeflag == tar.TypeReg {
			if _, err := io.Copy(tw, tr); err != nil {
				return api.Errorf(api.EInvalid, "droplet entry %q: %v", hdr.Name, err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		return fmt.Errorf("dropletimage: %w", err)
	}
	return nil
}

// rawLayer is a layer written uncompressed, with its diff id known in
// advance (its digest is its diff id).
type rawLayer struct {
	diff v1.Hash
	size int64
	open func() (io.ReadCloser, error)
}

func (l *rawLayer) Digest() (v1.Hash, error)             { return l.diff, nil }
func (l *rawLayer) DiffID() (v1.Hash, error)             { return l.diff, nil }
func (l *rawLayer) Compressed() (io.ReadCloser, error)   { return l.open() }
func (l *rawLayer) Uncompressed() (io.ReadCloser, error) { return l.open() }
func (l *rawLayer) Size() (int64, error)                 { return l.size, nil }
func (l *rawLayer) MediaType() (types.MediaType, error)  { return types.DockerUncompressedLayer, nil }

// uncompressedSize reads l once to learn its uncompressed size.
func uncompressedSize(l v1.Layer) (int64, error) {
	rc, err := l.Uncompressed()
	if err != nil {
		return 0, err
	}
	defer rc.Close()
	return io.Copy(io.Discard, rc)
}

// ConfigOf returns the config of the image in a `docker load` tarball, for
// tests and checks.
func ConfigOf(path string) (*v1.ConfigFile, error) {
	img, err := tarball.ImageFromPath(path, nil)
	if err != nil {
		return nil, err
	}
	return img.ConfigFile()
}
