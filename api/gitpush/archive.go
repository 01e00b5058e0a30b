package gitpush

import (
	"archive/tar"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"path"
	"strings"
	"time"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/plumbing/storer"

	"github.com/strata-paas/strata/api"
)

const (
	maxTreeDepth   = 64
	maxSymlinkSize = 4096
)

// sourceEntry is one entry of the archive built from a pushed tree.
type sourceEntry struct {
	name string // slash-separated tree path; directories end without '/'
	mode filemode.FileMode
	hash plumbing.Hash
	size int64
	link string // symlink target
}

// sourceTree is a checked commit tree, ready to be archived.
type sourceTree struct {
	entries    []sourceEntry
	submodules []string // gitlinks, skipped
	mtime      time.Time
}

// treeLimits bound a pushed tree.
type treeLimits struct {
	maxBytes int64
	maxFiles int
}

// readSourceTree walks the tree of commit, checks that every object is present
// and every name, mode and symlink is safe, and returns the entries to archive.
// A refused tree returns an EInvalid *api.Error.
func readSourceTree(st storer.EncodedObjectStorer, commit plumbing.Hash, lim treeLimits) (*sourceTree, error) {
	c, err := object.GetCommit(st, commit)
	if err != nil {
		return nil, missingObject(commit, err)
	}
	w := &treeWalker{st: st, lim: lim, out: &sourceTree{mtime: c.Committer.When.UTC()}}
	if err := w.walk(c.TreeHash, "", 0); err != nil {
		return nil, err
	}
	return w.out, nil
}

type treeWalker struct {
	st    storer.EncodedObjectStorer
	lim   treeLimits
	out   *sourceTree
	bytes int64
}

func (w *treeWalker) walk(h plumbing.Hash, prefix string, depth int) error {
	if depth > maxTreeDepth {
		return api.Errorf(api.EInvalid, "directories are nested deeper than %d levels at %q — flatten the source tree", maxTreeDepth, prefix)
	}
	t, err := object.GetTree(w.st, h)
	if err != nil {
		return missingObject(h, err)
	}
	seen := make(map[string]bool, len(t.Entries))
	for _, e := range t.Entries {
		name := path.Join(prefix, e.Name)
		if why := checkEntryName(e.Name); why != "" {
			return api.Errorf(api.EInvalid, "refused path %q in the pushed tree: %s", truncate(name, 80), why)
		}
		if seen[e.Name] {
			return api.Errorf(api.EInvalid, "refused path %q: it appears twice in the pushed tree", truncate(name, 80))
		}
		seen[e.Name] = true
		if len(w.out.entries)+len(w.out.submodules) >= w.lim.maxFiles {
			return api.Errorf(api.EInvalid, "the pushed tree has more than %d entries — remove files or add them to .gitignore", w.lim.maxFiles)
		}
		switch e.Mode {
		case filemode.Dir:
			w.out.entries = append(w.out.entries, sourceEntry{name: name, mode: e.Mode, hash: e.Hash})
			if err := w.walk(e.Hash, name, depth+1); err != nil {
				return err
			}
		case filemode.Regular, filemode.Deprecated, filemode.Executable:
			size, err := w.st.EncodedObjectSize(e.Hash)
			if err != nil {
				return missingObject(e.Hash, err)
			}
			w.bytes += size
			if w.bytes > w.lim.maxBytes {
				return api.Errorf(api.EInvalid, "the pushed tree is larger than %s — remove large files from the repository", sizeString(w.lim.maxBytes))
			}
			w.out.entries = append(w.out.entries, sourceEntry{name: name, mode: e.Mode, hash: e.Hash, size: size})
		case filemode.Symlink:
			target, err := w.symlinkTarget(e.Hash)
			if err != nil {
				return err
			}
			if why := checkSymlink(name, target); why != "" {
				return api.Errorf(api.EInvalid, "refused symlink %q: %s — make it point inside the app", truncate(name, 80), why)
			}
			w.out.entries = append(w.out.entries, sourceEntry{name: name, mode: e.Mode, hash: e.Hash, link: target})
		case filemode.Submodule:
			w.out.submodules = append(w.out.submodules, name)
		default:
			return api.Errorf(api.EInvalid, "refused path %q: unsupported file mode %o", truncate(name, 80), uint32(e.Mode))
		}
	}
	return nil
}

func (w *treeWalker) symlinkTarget(h plumbing.Hash) (string, error) {
	b, err := object.GetBlob(w.st, h)
	if err != nil {
		return "", missingObject(h, err)
	}
	if b.Size > maxSymlinkSize {
		return "", api.Errorf(api.EInvalid, "a symlink target is longer than %d bytes", maxSymlinkSize)
	}
	r, err := b.Reader()
	if err != nil {
		return "", missingObject(h, err)
	}
	defer r.Close()
	data, err := io.ReadAll(io.LimitReader(r, maxSymlinkSize+1))
	if err != nil {
		return "", missingObject(h, err)
	}
	return string(data), nil
}

func missingObject(h plumbing.Hash, err error) error {
	if errors.Is(err, plumbing.ErrObjectNotFound) {
		return api.Errorf(api.EInvalid, "the push is missing object %s — push again (with --force if the branch history was rewritten)", h)
	}
	return api.Errorf(api.EInvalid, "cannot read object %s of the push: %v", h, err)
}

// checkEntryName returns why a tree entry name is refused, or "".
func checkEntryName(n string) string {
	switch {
	case n == "" || n == "." || n == "..":
		return "empty or relative name"
	case strings.ContainsAny(n, "/\\\x00"):
		return "name contains '/', '\\' or NUL"
	case strings.EqualFold(n, ".git"):
		return ".git entries are not allowed"
	}
	return ""
}

// checkSymlink returns why a symlink at name pointing to target is refused:
// it must be relative and resolve (lexically) inside the tree.
func checkSymlink(name, target string) string {
	switch {
	case target == "":
		return "empty target"
	case strings.ContainsAny(target, "\x00\\"):
		return "target contains NUL or '\\'"
	case path.IsAbs(target):
		return "absolute target"
	}
	resolved := path.Join(path.Dir(name), target)
	if resolved == ".." || strings.HasPrefix(resolved, "../") {
		return "target points outside the app"
	}
	return ""
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// writeArchive writes t as a gzip-compressed tar to w, reading blobs from st
// one at a time.
func writeArchive(w io.Writer, st storer.EncodedObjectStorer, t *sourceTree) error {
	gz := gzip.NewWriter(w)
	tw := tar.NewWriter(gz)
	for _, e := range t.entries {
		hdr := &tar.Header{Name: e.name, ModTime: t.mtime, Uname: "root", Gname: "root", Format: tar.FormatPAX}
		switch e.mode {
		case filemode.Dir:
			hdr.Typeflag, hdr.Name, hdr.Mode = tar.TypeDir, e.name+"/", 0o755
		case filemode.Symlink:
			hdr.Typeflag, hdr.Linkname, hdr.Mode = tar.TypeSymlink, e.link, 0o777
		case filemode.Executable:
			hdr.Typeflag, hdr.Size, hdr.Mode = tar.TypeReg, e.size, 0o755
		default:
			hdr.Typeflag, hdr.Size, hdr.Mode = tar.TypeReg, e.size, 0o644
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return fmt.Errorf("archive %s: %w", e.name, err)
		}
		if hdr.Typeflag == tar.TypeReg {
			if err := copyBlob(tw, st, e); err != nil {
				return err
			}
		}
	}
	if err := tw.Close(); err != nil {
		return err
	}
	return gz.Close()
}

func copyBlob(w io.Writer, st storer.EncodedObjectStorer, e sourceEntry) error {
	b, err := object.GetBlob(st, e.hash)
	if err != nil {
		return missingObject(e.hash, err)
	}
	r, err := b.Reader()
	if err != nil {
		return missingObject(e.hash, err)
	}
	defer r.Close()
	n, err := io.Copy(w, io.LimitReader(r, e.size))
	if err != nil {
		return fmt.Errorf("archive %s: %w", e.name, err)
	}
	if n != e.size {
		return api.Errorf(api.EInvalid, "object %s of the push is truncated — push again", e.hash)
	}
	return nil
}
