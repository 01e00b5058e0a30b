package builder

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
)

func isExecutable(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0
}

// copyTree copies the directory src into dst (created if missing): regular
// files with their permission bits, directories, and symlinks that stay
// inside src (others are refused). Files already in dst are kept when keep
// is true (merging content-addressed caches), replaced otherwise.
func copyTree(src, dst string, keep bool) error {
	return filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, p)
		if err != nil {
			return err
		}
		target := filepath.Join(dst, rel)
		info, err := d.Info()
		if err != nil {
			return err
		}
		switch {
		case d.IsDir():
			return os.MkdirAll(target, info.Mode().Perm()|0o700)
		case d.Type()&fs.ModeSymlink != 0:
			link, err := os.Readlink(p)
			if err != nil {
				return err
			}
			if filepath.IsAbs(link) || !filepath.IsLocal(filepath.Join(filepath.Dir(rel), link)) {
				return fmt.Errorf("%s is a symlink pointing outside %s", rel, src)
			}
			if keep {
				if _, err := os.Lstat(target); err == nil {
					return nil
				}
			}
			_ = os.Remove(target)
			return os.Symlink(link, target)
		case info.Mode().IsRegular():
			if keep {
				if _, err := os.Lstat(target); err == nil {
					return nil
				}
			}
			return copyFile(p, target, info.Mode().Perm())
		default:
			return fmt.Errorf("%s is not a regular file, directory or symlink", rel)
		}
	})
}

// copyFile copies src to dst with mode perm, replacing dst.
func copyFile(src, dst string, perm fs.FileMode) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	_ = os.Remove(dst)
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// readAppFile reads a regular file of the app (no symlinks, at most max
// bytes). A missing file gives nil and no error; a link, a directory or an
// oversized file is an *AppError naming it.
func readAppFile(dir, name string, max int64) ([]byte, error) {
	p := filepath.Join(dir, name)
	fi, err := os.Lstat(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, appErrorf("%s must be a regular file, not a link or directory", name)
	}
	if fi.Size() > max {
		return nil, appErrorf("%s is larger than %d bytes", name, max)
	}
	return os.ReadFile(p)
}

// isDir reports whether p is a directory (not a symlink to one).
func isDir(p string) bool {
	fi, err := os.Lstat(p)
	return err == nil && fi.IsDir()
}

// writeProfile writes the .profile.d script name into the app: the executor
// sources .profile.d/*.sh in the app dir before every start command (see
// docs/buildpacks.md).
func writeProfile(appDir, name, content string) error {
	d := filepath.Join(appDir, ".profile.d")
	if err := os.MkdirAll(d, 0o755); err != nil {
		return err
	}
	p := filepath.Join(d, name)
	_ = os.Remove(p)
	return os.WriteFile(p, []byte(content), 0o644)
}

// jsonString reports whether raw is a JSON string and returns it.
func jsonString(raw json.RawMessage) (string, bool) {
	var s string
	if json.Unmarshal(raw, &s) != nil {
		return "", false
	}
	return s, true
}
