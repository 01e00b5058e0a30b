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
	"path"
	"path/filepath"
	"strings"

	"github.com/strata-paas/strata/api"
)

// Limits bound what Extract accepts. Zero fields take their defaults
// (DefaultLimits) except MaxRatio, where 0 disables the ratio check.
type Limits struct {
	MaxBytes int64 // total uncompressed bytes (default 1 GiB)
	MaxFiles int   // entries (default 100_000)
	MaxDepth int   // path depth (default 64)
	MaxRatio int   // uncompressed/compressed ratio (default 200); 0 = no check
}

// DefaultLimits returns the limits used for app source and droplets.
func DefaultLimits() Limits {
	return Limits{MaxBytes: 1 << 30, MaxFiles: 100_000, MaxDepth: 64, MaxRatio: 200}
}

func (l Limits) withDefaults() Limits {
	d := DefaultLimits()
	if l.MaxBytes <= 0 {
		l.MaxBytes = d.MaxBytes
	}
	if l.MaxFiles <= 0 {
		l.MaxFiles = d.MaxFiles
	}
	if l.MaxDepth <= 0 {
		l.MaxDepth = d.MaxDepth
	}
	if l.MaxRatio < 0 {
		l.MaxRatio = 0
	}
	return l
}

// ratioFloor is the uncompressed size below which the ratio is not checked:
// tiny archives of empty or repetitive files compress very well legitimately.
const ratioFloor = 1 << 20

// maxSymlinkHops bounds symlink resolution when checking link targets.
const maxSymlinkHops = 255

// countingReader counts the bytes read through it.
type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// extractor holds the state of one Extract call.
type extractor struct {
	ctx        context.Context
	root       *os.Root
	lim        Limits
	compressed *countingReader // bytes of gzip read from the caller
	plain      *countingReader // bytes of tar read from gzip
	files      int
	bytes      int64
	seen       map[string]byte // cleaned name → tar type flag
	symlinks   []string
	buf        []byte
}

// Extract unpacks a gzip-compressed tar from r into dest, an existing
// directory, writing only through an os.Root opened on dest.
//
// Entries that could escape dest or are otherwise unsafe are refused with an
// EInvalid *api.Error naming the entry: non-local names, "..", absolute paths,
// backslashes, symlinks whose target resolves outside dest, hardlinks to
// anything but a regular file extracted earlier from the same archive, device
// nodes, FIFOs, sockets and duplicate entries. Setuid, setgid and sticky bits
// are stripped. Limits are enforced while streaming, so a bomb is refused
// before it fills the disk. On error, dest may hold a partial extraction that
// the caller should remove; nothing is ever written outside dest.
func Extract(ctx context.Context, r io.Reader, dest string, lim Limits) error {
	root, err := os.OpenRoot(dest)
	if err != nil {
		return fmt.Errorf("archive: open destination: %w", err)
	}
	defer root.Close()

	e := &extractor{
		ctx:        ctx,
		root:       root,
		lim:        lim.withDefaults(),
		compressed: &countingReader{r: r},
		seen:       map[string]byte{},
		buf:        make([]byte, 32<<10),
	}
	zr, err := gzip.NewReader(e.compressed)
	if err != nil {
		return api.Errorf(api.EInvalid, "archive is not gzip-compressed: %v — send a .tar.gz", err)
	}
	defer zr.Close()
	e.plain = &countingReader{r: zr}
	tr := tar.NewReader(e.plain)
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return api.Errorf(api.EInvalid, "archive is corrupt: %v", err)
		}
		if err := e.checkRatio(); err != nil {
			return err
		}
		if err := e.entry(tr, hdr); err != nil {
			return err
		}
	}
	return e.checkSymlinks()
}

func refuse(name, format string, args ...any) error {
	return api.Errorf(api.EInvalid, "archive entry %q refused: %s", truncate(name, 200), fmt.Sprintf(format, args...))
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// cleanName checks a tar entry name and returns it cleaned, with forward
// slashes and no trailing slash; "." is the destination itself.
func cleanName(name string) (string, error) {
	switch {
	case name == "":
		return "", refuse(name, "empty name")
	case strings.ContainsRune(name, '\\'):
		return "", refuse(name, "backslash in name")
	case strings.ContainsRune(name, 0):
		return "", refuse(name, "NUL in name")
	case strings.HasPrefix(name, "/"):
		return "", refuse(name, "absolute path")
	}
	for _, part := range strings.Split(name, "/") {
		if part == ".." {
			return "", refuse(name, "\"..\" in path")
		}
	}
	clean := path.Clean(name)
	if clean != "." && !filepath.IsLocal(filepath.FromSlash(clean)) {
		return "", refuse(name, "path is not local to the archive")
	}
	return clean, nil
}

func depth(clean string) int {
	if clean == "." {
		return 0
	}
	return strings.Count(clean, "/") + 1
}

func (e *extractor) checkRatio() error {
	if e.lim.MaxRatio == 0 || e.plain.n < ratioFloor {
		return nil
	}
	c := max(e.compressed.n, 1)
	if e.plain.n/c > int64(e.lim.MaxRatio) {
		return api.Errorf(api.EInvalid, "archive refused: compression ratio over %d:1 looks like a decompression bomb", e.lim.MaxRatio)
	}
	return nil
}

func (e *extractor) entry(tr *tar.Reader, hdr *tar.Header) error {
	if hdr.Typeflag == tar.TypeXGlobalHeader {
		return nil // metadata only
	}
	name, err := cleanName(hdr.Name)
	if err != nil {
		return err
	}
	if name == "." {
		if hdr.Typeflag == tar.TypeDir {
			return nil // the root itself, e.g. "./"
		}
		return refuse(hdr.Name, "only a directory may name the archive root")
	}
	if d := depth(name); d > e.lim.MaxDepth {
		return refuse(hdr.Name, "path depth %d is over the limit of %d", d, e.lim.MaxDepth)
	}
	if _, dup := e.seen[name]; dup {
		return refuse(hdr.Name, "duplicate entry")
	}
	e.files++
	if e.files > e.lim.MaxFiles {
		return api.Errorf(api.EInvalid, "archive refused: more than %d entries — remove files or add them to .stratignore", e.lim.MaxFiles)
	}
	perm := fs.FileMode(hdr.Mode) & fs.ModePerm // drops setuid, setgid, sticky
	switch hdr.Typeflag {
	case tar.TypeDir:
		if err := e.mkdirParents(name); err != nil {
			return err
		}
		err := e.root.Mkdir(name, 0o700)
		if err != nil && !errors.Is(err, fs.ErrExist) {
			return refuse(hdr.Name, "cannot create directory: %v", err)
		}
		if fi, err := e.root.Lstat(name); err != nil || !fi.IsDir() {
			return refuse(hdr.Name, "a non-directory is in the way")
		}
		if err := e.root.Chmod(name, perm|0o700); err != nil {
			return refuse(hdr.Name, "cannot set mode: %v", err)
		}
	case tar.TypeReg: // tar.Reader already reports old TypeRegA entries as TypeReg
		if err := e.regular(tr, hdr, name, perm|0o600); err != nil {
			return err
		}
	case tar.TypeSymlink:
		if err := e.symlink(hdr, name); err != nil {
			return err
		}
	case tar.TypeLink:
		if err := e.hardlink(hdr, name); err != nil {
			return err
		}
	case tar.TypeChar, tar.TypeBlock:
		return refuse(hdr.Name, "device nodes are not allowed")
	case tar.TypeFifo:
		return refuse(hdr.Name, "FIFOs are not allowed")
	default:
		return refuse(hdr.Name, "unsupported entry type %q", string(hdr.Typeflag))
	}
	e.seen[name] = hdr.Typeflag
	return nil
}

// mkdirParents creates the parent directories of name that the archive did
// not list (many tools omit them).
func (e *extractor) mkdirParents(name string) error {
	dir := path.Dir(name)
	if dir == "." {
		return nil
	}
	if err := e.root.MkdirAll(dir, 0o755); err != nil {
		return refuse(name, "cannot create parent directory: %v", err)
	}
	return nil
}

func (e *extractor) regular(tr *tar.Reader, hdr *tar.Header, name string, perm fs.FileMode) error {
	if hdr.Size < 0 {
		return refuse(hdr.Name, "negative size")
	}
	if e.bytes+hdr.Size > e.lim.MaxBytes {
		return api.Errorf(api.EInvalid, "archive refused: more than %d bytes uncompressed — remove large files or add them to .stratignore", e.lim.MaxBytes)
	}
	e.bytes += hdr.Size
	if err := e.mkdirParents(name); err != nil {
		return err
	}
	f, err := e.root.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		return refuse(hdr.Name, "cannot create file: %v", err)
	}
	if err := e.copy(f, tr); err != nil {
		f.Close()
		if api.ErrorCode(err) == api.EInvalid || e.ctx.Err() != nil {
			return err
		}
		return refuse(hdr.Name, "cannot write file: %v", err)
	}
	if err := f.Chmod(perm); err != nil { // umask may have cleared bits
		f.Close()
		return refuse(hdr.Name, "cannot set mode: %v", err)
	}
	return f.Close()
}

// copy streams one entry's content, checking ctx and the ratio as it goes.
func (e *extractor) copy(w io.Writer, r io.Reader) error {
	for {
		if err := e.ctx.Err(); err != nil {
			return err
		}
		n, rerr := r.Read(e.buf)
		if n > 0 {
			if _, err := w.Write(e.buf[:n]); err != nil {
				return err
			}
			if err := e.checkRatio(); err != nil {
				return err
			}
		}
		if errors.Is(rerr, io.EOF) {
			return nil
		}
		if rerr != nil {
			return api.Errorf(api.EInvalid, "archive is corrupt: %v", rerr)
		}
	}
}

// linkTargetLocal reports whether target, read relative to the directory of
// name, stays inside the archive lexically.
func linkTargetLocal(name, target string) bool {
	if target == "" || strings.HasPrefix(target, "/") || strings.ContainsRune(target, '\\') || strings.ContainsRune(target, 0) {
		return false
	}
	joined := path.Join(path.Dir(name), target)
	return joined == "." || filepath.IsLocal(filepath.FromSlash(joined))
}

func (e *extractor) symlink(hdr *tar.Header, name string) error {
	if !linkTargetLocal(name, hdr.Linkname) {
		return refuse(hdr.Name, "symlink target %q points outside the archive", truncate(hdr.Linkname, 200))
	}
	if err := e.mkdirParents(name); err != nil {
		return err
	}
	if err := e.root.Symlink(hdr.Linkname, name); err != nil {
		return refuse(hdr.Name, "cannot create symlink: %v", err)
	}
	e.symlinks = append(e.symlinks, name)
	return nil
}

func (e *extractor) hardlink(hdr *tar.Header, name string) error {
	target, err := cleanName(hdr.Linkname)
	if err != nil || target == "." {
		return refuse(hdr.Name, "hardlink target %q points outside the archive", truncate(hdr.Linkname, 200))
	}
	if t, ok := e.seen[target]; !ok || t != tar.TypeReg {
		return refuse(hdr.Name, "hardlink target %q is not a regular file earlier in the archive", truncate(hdr.Linkname, 200))
	}
	if err := e.mkdirParents(name); err != nil {
		return err
	}
	if err := e.root.Link(target, name); err != nil {
		return refuse(hdr.Name, "cannot create hardlink: %v", err)
	}
	return nil
}

// checkSymlinks resolves every extracted symlink through the tree as it now
// stands and refuses any whose target leaves dest through another symlink
// (e.g. "a" → "." and "b" → "a/..").
func (e *extractor) checkSymlinks() error {
	for _, name := range e.symlinks {
		if !e.resolvesInside(name) {
			target, _ := e.root.Readlink(name)
			return refuse(name, "symlink target %q resolves outside the archive", truncate(target, 200))
		}
	}
	return nil
}

// resolvesInside follows name component by component, symlinks included,
// and reports whether it never climbs above the root. Missing components are
// taken lexically.
func (e *extractor) resolvesInside(name string) bool {
	var resolved []string
	todo := strings.Split(name, "/")
	hops := 0
	for len(todo) > 0 {
		c := todo[0]
		todo = todo[1:]
		switch c {
		case "", ".":
			continue
		case "..":
			if len(resolved) == 0 {
				return false
			}
			resolved = resolved[:len(resolved)-1]
			continue
		}
		resolved = append(resolved, c)
		p := strings.Join(resolved, "/")
		fi, err := e.root.Lstat(p)
		if err != nil || fi.Mode()&fs.ModeSymlink == 0 {
			continue
		}
		hops++
		if hops > maxSymlinkHops {
			return false
		}
		target, err := e.root.Readlink(p)
		if err != nil || strings.HasPrefix(target, "/") {
			return false
		}
		resolved = resolved[:len(resolved)-1]
		todo = append(strings.Split(target, "/"), todo...)
	}
	return true
}
