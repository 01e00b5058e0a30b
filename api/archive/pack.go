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
	// Level is the gzip level; 0 means gzip.BestSpeed.
	Level int
}

// Pack writes dir as a gzip-compressed tar to w. Regular files keep their
// exec bit (modes are normalised to 0644 or 0755), symlinks are kept as
// symlinks, directories are entries of their own, names are relative with
// forward slashes, and mtimes and owners are zeroed so the same tree always
// gives the same bytes. Sockets, devices and FIFOs are skipped. A symlink
// pointing outside dir is an EInvalid *api.Error, since Extract would refuse
// it anyway.
func Pack(ctx context.Context, w io.Writer, dir string, opt PackOptions) error {
	matcher := &Matcher{}
	if opt.Ignore {
		m, err := loadIgnore(dir)
		if err != nil {
			return fmt.Errorf("archive: read ignore file: %w", err)
		}
		matcher = m
	}
	level := opt.Level
	if level == 0 {
		level = gzip.BestSpeed
	}
	zw, err := gzip.NewWriterLevel(w, level)
	if err != nil {
		return fmt.Errorf("archive: %w", err)
	}
	tw := tar.NewWriter(zw)
	var (
		files int
		total int64
	)
	epoch := time.Unix(0, 0)
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
		if matcher.Match(rel, d.IsDir()) {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		hdr := &tar.Header{Name: rel, ModTime: epoch, Format: tar.FormatPAX}
		var size int64
		switch t := d.Type(); {
		case t.IsDir():
			hdr.Typeflag, hdr.Name, hdr.Mode = tar.TypeDir, rel+"/", 0o755
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
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if hdr.Typeflag == tar.TypeReg {
			if err := copyFile(tw, p, size); err != nil {
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
	if err := tw.Close(); err != nil {
		return fmt.Errorf("archive: %w", err)
	}
	if err := zw.Close(); err != nil {
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
