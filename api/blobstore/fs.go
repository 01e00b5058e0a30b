package blobstore

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/strata-paas/strata/api"
)

// Config configures an FS.
type Config struct {
	// Dir is the store's directory; it is created if missing.
	Dir string
	// MaxSize refuses blobs larger than this many bytes with EInvalid; zero
	// means no limit.
	MaxSize int64
	// Logger receives the store's logs; nil discards them.
	Logger *slog.Logger
}

// FS is a content-addressed blob store in a local directory.
type FS struct {
	dir     string
	tmp     string
	maxSize int64
	log     *slog.Logger
}

var _ api.BlobStore = (*FS)(nil)

// staleTemp is the age after which a leftover temporary file (from a crash
// during Put) is removed by Open.
const staleTemp = time.Hour

// New opens the blob store in dir with no size limit.
func New(dir string) (*FS, error) { return Open(Config{Dir: dir}) }

// Open opens the blob store described by cfg, creating its directories and
// removing stale temporary files. It returns EInvalid for an empty Dir.
func Open(cfg Config) (*FS, error) {
	if cfg.Dir == "" {
		return nil, api.Errorf(api.EInvalid, "blob store directory is empty — give a directory such as /var/lib/strata/blobs")
	}
	dir, err := filepath.Abs(cfg.Dir)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", api.Errorf(api.EInvalid, "blob store directory %q is not usable", cfg.Dir), err)
	}
	f := &FS{dir: dir, tmp: filepath.Join(dir, "tmp"), maxSize: cfg.MaxSize, log: cfg.Logger}
	if f.log == nil {
		f.log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	for _, d := range []string{f.tmp, filepath.Join(dir, "sha256")} {
		if err := os.MkdirAll(d, 0o750); err != nil {
			return nil, ioError("create blob store directory", err)
		}
	}
	f.removeStaleTemp()
	return f, nil
}

// Dir returns the store's directory.
func (f *FS) Dir() string { return f.dir }

// Put stores the content of r and returns its reference. It returns EInvalid
// if the content exceeds MaxSize, ETimeout if ctx ends first, and leaves
// nothing behind on failure.
func (f *FS) Put(ctx context.Context, r io.Reader) (api.BlobRef, error) {
	tmp, err := os.CreateTemp(f.tmp, "put-*")
	if err != nil {
		return "", ioError("create temporary blob", err)
	}
	done := false
	defer func() {
		if !done {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()

	h := sha256.New()
	src := io.Reader(&ctxReader{ctx: ctx, r: r})
	if f.maxSize > 0 {
		src = io.LimitReader(src, f.maxSize+1)
	}
	n, err := io.Copy(io.MultiWriter(tmp, h), src)
	if err != nil {
		if ctx.Err() != nil {
			return "", fmt.Errorf("%w: %w", api.Errorf(api.ETimeout, "blob upload did not finish in time — retry"), err)
		}
		return "", ioError("write blob", err)
	}
	if f.maxSize > 0 && n > f.maxSize {
		return "", api.Errorf(api.EInvalid, "blob is larger than the limit of %d bytes — make the upload smaller", f.maxSize)
	}
	if err := tmp.Chmod(0o444); err != nil {
		return "", ioError("write blob", err)
	}
	if err := tmp.Sync(); err != nil {
		return "", ioError("sync blob", err)
	}
	if err := tmp.Close(); err != nil {
		return "", ioError("write blob", err)
	}

	digest := hex.EncodeToString(h.Sum(nil))
	ref := api.BlobRef("sha256:" + digest)
	final, _ := f.path(ref) // digest is valid by construction
	if _, err := os.Stat(final); err == nil {
		done = true
		os.Remove(tmp.Name())
		return ref, nil
	}
	shard := filepath.Dir(final)
	if err := os.MkdirAll(shard, 0o750); err != nil {
		return "", ioError("create blob directory", err)
	}
	if err := os.Rename(tmp.Name(), final); err != nil {
		return "", ioError("store blob", err)
	}
	done = true
	if err := syncDir(shard); err != nil {
		return "", ioError("sync blob directory", err)
	}
	f.log.Debug("blob stored", "ref", ref, "size", n)
	return ref, nil
}

// Get opens the blob for reading; the caller closes it. ENotFound if the
// blob is missing, EInvalid for a malformed ref.
func (f *FS) Get(ctx context.Context, ref api.BlobRef) (io.ReadCloser, error) {
	p, err := f.path(ref)
	if err != nil {
		return nil, err
	}
	file, err := os.Open(p)
	if err != nil {
		return nil, notFoundOr(ref, "open blob", err)
	}
	return file, nil
}

// Stat returns the size of a blob. ENotFound if the blob is missing,
// EInvalid for a malformed ref.
func (f *FS) Stat(ctx context.Context, ref api.BlobRef) (int64, error) {
	p, err := f.path(ref)
	if err != nil {
		return 0, err
	}
	fi, err := os.Stat(p)
	if err != nil {
		return 0, notFoundOr(ref, "stat blob", err)
	}
	return fi.Size(), nil
}

// Path returns the local file holding a blob, for fast local reads; the
// file must not be modified. ENotFound if the blob is missing, EInvalid for
// a malformed ref.
func (f *FS) Path(ref api.BlobRef) (string, error) {
	p, err := f.path(ref)
	if err != nil {
		return "", err
	}
	if _, err := os.Stat(p); err != nil {
		return "", notFoundOr(ref, "stat blob", err)
	}
	return p, nil
}

// Delete removes a blob. Deleting a missing blob is not an error, so
// garbage collection can be retried. EInvalid for a malformed ref.
func (f *FS) Delete(ctx context.Context, ref api.BlobRef) error {
	p, err := f.path(ref)
	if err != nil {
		return err
	}
	if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return ioError("delete blob", err)
	}
	return nil
}

// path validates ref and returns where its blob lives.
func (f *FS) path(ref api.BlobRef) (string, error) {
	if !ref.Valid() {
		return "", api.Errorf(api.EInvalid, "blob reference %q is malformed — it must be sha256: followed by 64 lowercase hex digits", truncate(string(ref), 80))
	}
	d := ref.Digest()
	return filepath.Join(f.dir, "sha256", d[:2], d), nil
}

// removeStaleTemp deletes temporary files older than staleTemp: Puts that a
// crash interrupted. Younger ones may belong to a Put in another process.
func (f *FS) removeStaleTemp() {
	entries, err := os.ReadDir(f.tmp)
	if err != nil {
		return
	}
	for _, e := range entries {
		info, err := e.Info()
		if err != nil || time.Since(info.ModTime()) < staleTemp {
			continue
		}
		if err := os.Remove(filepath.Join(f.tmp, e.Name())); err == nil {
			f.log.Info("stale temporary blob removed", "file", e.Name())
		}
	}
}

// ctxReader stops reading once ctx ends.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c *ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

func notFoundOr(ref api.BlobRef, op string, err error) error {
	if errors.Is(err, fs.ErrNotExist) {
		return api.Errorf(api.ENotFound, "blob %s not found", ref)
	}
	return ioError(op, err)
}

// ioError classifies a file system error: a full disk is EUnavailable,
// anything else EInternal; the OS error stays in the chain for logs.
func ioError(op string, err error) error {
	if errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT) {
		return fmt.Errorf("%w: %w", api.Errorf(api.EUnavailable, "%s: the blob store is out of space — free disk space and retry", op), err)
	}
	return fmt.Errorf("%w: %w", api.Errorf(api.EInternal, "%s: blob store error", op), err)
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
