package archive

import (
	"archive/tar"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/strata-paas/strata/api"
)

// PackOptions configures Pack.
type PackOptions struct {
	// Ignore reads .stratignore, else .cfignore, else .gitignore in dir
	// (gitignore syntax: comments, negation !, dir/ patterns, leading /
	// anchors, ** globs) and skips matching paths. .git is always skipped.
	Ignore bool
	// Progress, if set, is called after each entry is added with the running
	// count of entries and content bytes.
	Progress func(files int, bytes int64)
	// Skip, if set, leaves out the paths (relative, forward slashes) for
	// which it reports true.
	Skip func(rel string) bool
}

// Pack writes dir as a gzip-compressed tar to w. Regular files keep their
// exec bit (modes are normalised to 0644 or 0755), symlinks are kept as
// symlinks, directories are entries of their own, names are relative with
// forward slashes, and mtimes and owners are zeroed so the same tree always
// gives the same bytes. Sockets, devices and FIFOs are skipped. A symlink
// pointing outside dir is an EInvalid *api.Error, since Extract would refuse
// it anyway.
func Pack(ctx context.Context, w io.Writer, dir string, opt PackOptions) error {
	aw, err := NewWriter(w, gzip.BestSpeed)
	if err != nil {
		return err
	}
	if err := aw.AddDir(ctx, "", dir, opt); err != nil {
		return err
	}
	return aw.Close()
}

// Writer builds a reproducible gzip-compressed tar from files and
// directory trees, for layouts Pack alone cannot express (a droplet is
// staging.json plus the app under app/). A Writer is not safe for concurrent
// use.
type Writer struct {
	zw *gzip.Writer
	tw *tar.Writer
}

// NewWriter returns a Writer compressing at the given gzip level (0 means
// gzip.BestSpeed). Close must be called to finish the archive.
func NewWriter(w io.Writer, level int) (*Writer, error) {
	if level == 0 {
		level = gzip.BestSpeed
	}
	zw, err := gzip.NewWriterLevel(w, level)
	if err != nil {
		return nil, fmt.Errorf("archive: %w", err)
	}
	return &Writer{zw: zw, tw: tar.NewWriter(zw)}, nil
}

// epoch is the mtime of every entry, for reproducible archives.
var epoch = time.Unix(0, 0)

// AddFile adds a regular file named name (slash-separated, local) holding
// data, with mode 0644 or, when exec is true, 0755.
func (w *Writer) AddFile(name string, data []byte, exec bool) error {
	if !filepath.IsLocal(filepath.FromSlash(name)) {
		return api.Errorf(api.EInvalid, "archive name %q is not local", name)
	}
	hdr := &tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(data)), ModTime: epoch, Format: tar.FormatPAX}
	if exec {
		hdr.Mode = 0o755
	}
	if err := w.tw.WriteHeader(hdr); err != nil {
		return fmt.Errorf("archive: %w", err)
	}
	if _, err := w.tw.Write(data); err != nil {
		return fmt.Errorf("archive: %w", err)
	}
	return nil
}

// AddDir adds the tree under dir as Pack does, with every name under prefix
// (a local slash-separated directory name, or "" for the archive root; a
// directory entry for prefix itself is added).
func (w *Writer) AddDir(ctx context.Context, prefix, dir string, opt PackOptions) error {
	if prefix != "" {
		prefix = strings.Trim(prefix, "/")
		if !filepath.IsLocal(filepath.FromSlash(prefix)) {
			return api.Errorf(api.EInvalid, "archive prefix %q is not local", prefix)
		}
		if err := w.tw.WriteHeader(&tar.Header{Name: prefix + "/", Typeflag: tar.TypeDir, Mode: 0o755, ModTime: epoch, Format: tar.FormatPAX}); err != nil {
			return fmt.Errorf("archive: %w", err)
		}
		prefix += "/"
	}
	matcher := &Matcher{}
	if opt.Ignore {
		m, err := loadIgnore(dir)
		if err != nil {
			return fmt.Errorf("archive: read ignore file: %w", err)
		}
		matcher = m
	}
	var (
		files int
		total int64
	)
	walkErr := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		if rel == "." {
			return nil
		}
		rel = filepath.ToSlash(rel)
		if d.IsDir() && d.Name() == ".git" {
			return filepath.SkipDir
		}
		if matcher.Match(rel, d.IsDir()) || opt.Skip != nil && opt.Skip(rel) {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		hdr := &tar.Header{Name: prefix + rel, ModTime: epoch, Format: tar.FormatPAX}
		var size int64
		switch t := d.Type(); {
		case t.IsDir():
			hdr.Typeflag, hdr.Name, hdr.Mode = tar.TypeDir, hdr.Name+"/", 0o755
		case t&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			if !linkTargetLocal(rel, filepath.ToSlash(target)) {
				return api.Errorf(api.EInvalid, "symlink %s points outside %s (to %q) — remove it or list it in .stratignore", rel, dir, target)
			}
			hdr.Typeflag, hdr.Linkname, hdr.Mode = tar.TypeSymlink, filepath.ToSlash(target), 0o777
		case t.IsRegular():
			fi, err := d.Info()
			if err != nil {
				return err
			}
			hdr.Typeflag, hdr.Mode, hdr.Size = tar.TypeReg, 0o644, fi.Size()
			if fi.Mode()&0o111 != 0 {
				hdr.Mode = 0o755
			}
			size = fi.Size()
		default:
			return nil // sockets, devices, FIFOs
		}
		if err := w.tw.WriteHeader(hdr); err != nil {
			return err
		}
		if hdr.Typeflag == tar.TypeReg {
			if err := copyFile(w.tw, p, size); err != nil {
				return err
			}
		}
		files++
		total += size
		if opt.Progress != nil {
			opt.Progress(files, total)
		}
		return nil
	})
	if walkErr != nil {
		var apiErr *api.Error
		if errors.As(walkErr, &apiErr) {
			return walkErr
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("archive: pack %s: %w", dir, walkErr)
	}
	return nil
}

// Close finishes the tar and gzip streams. It does not close the underlying
// writer.
func (w *Writer) Close() error {
	if err := w.tw.Close(); err != nil {
		return fmt.Errorf("archive: %w", err)
	}
	if err := w.zw.Close(); err != nil {
		return fmt.Errorf("archive: %w", err)
	}
	return nil
}

// copyFile writes exactly size bytes of the file at p: a file that changes
// size while being packed is an error rather than a corrupt archive.
func copyFile(w io.Writer, p string, size int64) error {
	f, err := os.Open(p)
	if err != nil {
		return err
	}
	defer f.Close()
	n, err := io.Copy(w, io.LimitReader(f, size))
	if err != nil {
		return err
	}
	if n != size {
		return fmt.Errorf("%s changed size while being packed", p)
	}
	return nil
}
