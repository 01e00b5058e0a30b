package bus

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/strata-paas/strata/api"
)

// BlobsBucket is the JetStream object store that holds the blobs of a
// Strata cluster (docs/architecture.md, "The NATS cluster"). Its stream is
// OBJ_STRATA_BLOBS on the subjects $O.STRATA_BLOBS.>.
const BlobsBucket = "STRATA_BLOBS"

// ObjectsConfig configures a blob store on JetStream's object store.
type ObjectsConfig struct {
	// Bucket names the object store; "" = BlobsBucket.
	Bucket string
	// Replicas is how many servers keep each blob. 0: as the connection's
	// work queues (Options.Replicas): 3 in a cluster of three or more
	// servers, else 1. An existing bucket never loses replicas here.
	Replicas int
	// SpoolDir holds the content of a Put while it is hashed: the
	// reference, and so the object's name, is known only at the end of
	// the content, and a blob already stored is not sent again. Required;
	// created if missing.
	SpoolDir string
	// MaxSize refuses blobs larger than this many bytes with EInvalid;
	// zero means no limit.
	MaxSize int64
	// ReadTimeout bounds a Get whose context has no deadline, from Get
	// until the reader is closed (default 30 minutes): without one the
	// object store would give up after 5 s.
	ReadTimeout time.Duration
	// Logger receives the store's logs; nil discards them.
	Logger *slog.Logger
}

// Objects is a content-addressed blob store on a JetStream object store:
// every controller connected to the same NATS cluster sees the same
// blobs. It implements api.BlobStore with the contract of the file store
// (api/blobstore): references are "sha256:<hex>" of the content and are
// validated before use; Get of a missing blob is ENotFound; Delete of a
// missing blob is not an error. Objects is safe for concurrent use.
type Objects struct {
	obs         jetstream.ObjectStore
	bucket      string
	spool       string
	maxSize     int64
	readTimeout time.Duration
	log         *slog.Logger

	mu      sync.Mutex
	putting map[api.BlobRef]*refLock
}

var _ api.BlobStore = (*Objects)(nil)

// refLock serialises the Puts of one reference in this process.
type refLock struct {
	mu    sync.Mutex
	users int
}

// staleSpool is the age after which a leftover spool file (from a crash
// during Put) is removed by OpenObjects.
const staleSpool = time.Hour

// OpenObjects creates the object store of cfg if it is missing (with
// cfg.Replicas, waiting in a cluster until its stream has a leader) and
// returns a blob store on it. Several controllers may open the same bucket
// at once. EUnavailable when JetStream does not answer before ctx ends,
// EInvalid for a bad configuration.
func OpenObjects(ctx context.Context, c *Conn, cfg ObjectsConfig) (*Objects, error) {
	if cfg.SpoolDir == "" {
		return nil, api.Errorf(api.EInvalid, "the NATS blob store needs a spool directory — give one such as /var/lib/strata/spool")
	}
	if cfg.Bucket == "" {
		cfg.Bucket = BlobsBucket
	}
	if strings.Trim(cfg.Bucket, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-") != "" {
		return nil, api.Errorf(api.EInvalid, "object store bucket %q may hold only letters, digits, _ and -", cfg.Bucket)
	}
	if cfg.ReadTimeout <= 0 {
		cfg.ReadTimeout = 30 * time.Minute
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if err := os.MkdirAll(cfg.SpoolDir, 0o750); err != nil {
		return nil, objectsIOError("create the blob spool directory", err)
	}
	js, err := jetstream.New(c.nc)
	if err != nil {
		return nil, api.Errorf(api.EUnavailable, "cannot use JetStream: %v", err)
	}
	replicas := cfg.Replicas
	if replicas <= 0 {
		replicas = c.workReplicas()
	}
	stream := "OBJ_" + cfg.Bucket
	var obs jetstream.ObjectStore
	for {
		// One attempt answers within 5 s, or is made again: a cluster
		// electing its meta or stream leader may drop the request.
		actx, cancel := context.WithTimeout(ctx, 5*time.Second)
		obs, err = createObjects(actx, js, cfg.Bucket, &replicas)
		cancel()
		if err == nil || ctx.Err() != nil || !errors.Is(err, context.DeadlineExceeded) {
			break
		}
		log.Debug("blobs.create_retry", "bucket", cfg.Bucket, "err", err)
	}
	if err != nil {
		if ctx.Err() != nil {
			err = ctx.Err()
		}
		return nil, api.Errorf(api.EUnavailable, "cannot create the NATS object store %s: %v — is JetStream enabled, and may this client use $JS.API.> and $O.%s.>?", cfg.Bucket, err, cfg.Bucket)
	}
	// A replicated stream takes blobs once its servers have elected its
	// leader.
	for replicas > 1 {
		actx, cancel := context.WithTimeout(ctx, 5*time.Second)
		s, err := js.Stream(actx, stream)
		cancel()
		if err == nil && s.CachedInfo().Cluster != nil && s.CachedInfo().Cluster.Leader != "" {
			break
		}
		select {
		case <-ctx.Done():
			return nil, api.Errorf(api.EUnavailable, "the NATS object store %s has no leader: %v", cfg.Bucket, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
	o := &Objects{obs: obs, bucket: cfg.Bucket, spool: cfg.SpoolDir, maxSize: cfg.MaxSize, readTimeout: cfg.ReadTimeout,
		log: log, putting: map[api.BlobRef]*refLock{}}
	o.removeStaleSpool()
	log.Info("blobs.opened", "bucket", cfg.Bucket, "replicas", replicas)
	return o, nil
}

// createObjects makes (or updates) the object store bucket with *replicas,
// raised to those of an existing bucket: a client that sees fewer servers
// does not scale it down.
func createObjects(ctx context.Context, js jetstream.JetStream, bucket string, replicas *int) (jetstream.ObjectStore, error) {
	s, err := js.Stream(ctx, "OBJ_"+bucket)
	switch {
	case err == nil:
		*replicas = max(*replicas, s.CachedInfo().Config.Replicas)
	case !errors.Is(err, jetstream.ErrStreamNotFound):
		return nil, err
	}
	// The stream of an object store as nats.go makes it, but without
	// direct gets: those are answered by any replica, also one that has
	// not yet stored what another controller just put, so a blob could be
	// "not found" right after its Put. Reads go to the stream leader.
	if _, err := js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name:        "OBJ_" + bucket,
		Description: "Strata blobs: sources, droplets, buildpacks (content-addressed)",
		Subjects:    []string{"$O." + bucket + ".C.>", "$O." + bucket + ".M.>"},
		MaxBytes:    -1,
		Storage:     jetstream.FileStorage,
		Replicas:    *replicas,
		Discard:     jetstream.DiscardNew,
		AllowRollup: true,
		AllowDirect: false,
	}); err != nil {
		return nil, err
	}
	return js.ObjectStore(ctx, bucket)
}

// Put stores the content of r and returns its reference. The content is
// hashed while it is written to a spool file, then sent to the object
// store unless a blob with that reference is already there. It returns
// EInvalid if the content exceeds MaxSize, ETimeout if ctx ends first,
// EUnavailable if NATS does not take it, and stores nothing on failure.
func (o *Objects) Put(ctx context.Context, r io.Reader) (api.BlobRef, error) {
	tmp, err := os.CreateTemp(o.spool, "put-*")
	if err != nil {
		return "", objectsIOError("create spool file", err)
	}
	defer func() {
		tmp.Close()
		os.Remove(tmp.Name())
	}()
	h := sha256.New()
	src := io.Reader(&ctxReader{ctx: ctx, r: r})
	if o.maxSize > 0 {
		src = io.LimitReader(src, o.maxSize+1)
	}
	n, err := io.Copy(io.MultiWriter(tmp, h), src)
	if err != nil {
		if ctx.Err() != nil {
			return "", fmt.Errorf("%w: %w", api.Errorf(api.ETimeout, "blob upload did not finish in time — retry"), err)
		}
		return "", objectsIOError("write blob", err)
	}
	if o.maxSize > 0 && n > o.maxSize {
		return "", api.Errorf(api.EInvalid, "blob is larger than the limit of %d bytes — make the upload smaller", o.maxSize)
	}
	sum := h.Sum(nil)
	ref := api.BlobRef("sha256:" + hex.EncodeToString(sum))

	unlock := o.lock(ref)
	defer unlock()
	if ok, err := o.present(ctx, ref, sum); err != nil {
		return "", err
	} else if ok {
		o.log.Debug("blobs.present", "ref", ref)
		return ref, nil
	}
	// In a cluster the stream may be electing a leader and not answer:
	// send again for up to 15 s (a failed Put purges what it sent).
	giveUp := time.Now().Add(15 * time.Second)
	for {
		if _, err = tmp.Seek(0, io.SeekStart); err != nil {
			return "", objectsIOError("read spool file", err)
		}
		var info *jetstream.ObjectInfo
		info, err = o.obs.Put(ctx, jetstream.ObjectMeta{Name: string(ref)}, &ctxReader{ctx: ctx, r: tmp})
		if err == nil {
			if !digestIs(info.Digest, sum) || info.Size != uint64(n) {
				return "", api.Errorf(api.EInternal, "blob %s: the object store recorded %d bytes with digest %s — the spool file changed during the upload", ref, info.Size, info.Digest)
			}
			o.log.Debug("blobs.stored", "ref", ref, "size", n)
			return ref, nil
		}
		if ctx.Err() != nil {
			return "", fmt.Errorf("%w: %w", api.Errorf(api.ETimeout, "blob upload did not finish in time — retry"), err)
		}
		if time.Now().After(giveUp) || !retryable(err) {
			return "", api.Errorf(api.EUnavailable, "cannot store blob %s in the NATS object store %s: %v — retry", ref, o.bucket, err)
		}
		o.log.Info("blobs.put_retry", "ref", ref, "err", err)
		select {
		case <-ctx.Done():
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// present reports whether the blob ref (of digest sum) is stored complete.
func (o *Objects) present(ctx context.Context, ref api.BlobRef, sum []byte) (bool, error) {
	// In a cluster the stream may be electing a leader and not answer:
	// ask again for up to 15 s, as Put and Get do.
	var info *jetstream.ObjectInfo
	var err error
	for giveUp := time.Now().Add(15 * time.Second); ; {
		info, err = o.obs.GetInfo(ctx, string(ref))
		if err == nil || errors.Is(err, jetstream.ErrObjectNotFound) || ctx.Err() != nil || time.Now().After(giveUp) || !retryable(err) {
			break
		}
		o.log.Info("blobs.lookup_retry", "ref", ref, "err", err)
		select {
		case <-ctx.Done():
		case <-time.After(200 * time.Millisecond):
		}
	}
	switch {
	case errors.Is(err, jetstream.ErrObjectNotFound):
		return false, nil
	case err != nil:
		return false, o.unavailable(ctx, "look up blob", ref, err)
	}
	// A record whose digest is not its name's is stored again.
	return !info.Deleted && digestIs(info.Digest, sum), nil
}

// Get opens the blob for reading; the caller closes it. The content is
// checked against the object store's digest as it is read (a mismatch is
// a read error), and reading stops when ctx ends — or, when ctx has no
// deadline, after ReadTimeout. ENotFound if the blob is missing, EInvalid
// for a malformed ref, EUnavailable if NATS does not answer (asked again
// for up to 15 s while a cluster elects a leader).
func (o *Objects) Get(ctx context.Context, ref api.BlobRef) (io.ReadCloser, error) {
	if err := checkRef(ref); err != nil {
		return nil, err
	}
	cancel := context.CancelFunc(func() {})
	if _, ok := ctx.Deadline(); !ok {
		ctx, cancel = context.WithTimeout(ctx, o.readTimeout)
	}
	// In a cluster the stream may be electing a leader and not answer:
	// ask again for up to 15 s.
	var res jetstream.ObjectResult
	var err error
	for giveUp := time.Now().Add(15 * time.Second); ; {
		// Get's own info request is bounded only by ctx (up to
		// ReadTimeout): a probe bounded to 5 s finds a stream that does
		// not answer first.
		ictx, icancel := context.WithTimeout(ctx, 5*time.Second)
		_, err = o.obs.GetInfo(ictx, string(ref))
		icancel()
		if err == nil {
			res, err = o.obs.Get(ctx, string(ref))
		}
		if err == nil || ctx.Err() != nil || time.Now().After(giveUp) || !retryable(err) {
			break
		}
		o.log.Info("blobs.get_retry", "ref", ref, "err", err)
		select {
		case <-ctx.Done():
		case <-time.After(200 * time.Millisecond):
		}
	}
	if err != nil {
		cancel()
		if errors.Is(err, jetstream.ErrObjectNotFound) {
			return nil, api.Errorf(api.ENotFound, "blob %s not found", ref)
		}
		return nil, o.unavailable(ctx, "open blob", ref, err)
	}
	info, _ := res.Info()
	want, _ := hex.DecodeString(ref.Digest())
	if info == nil || !digestIs(info.Digest, want) {
		res.Close()
		cancel()
		return nil, api.Errorf(api.EInternal, "blob %s: the object store holds content of another digest — delete it and upload it again", ref)
	}
	return &objectReader{res: res, ref: ref, cancel: cancel, stall: readStall}, nil
}

// Delete removes a blob. Deleting a missing blob is not an error, so
// garbage collection can be retried. EInvalid for a malformed ref,
// EUnavailable if NATS does not answer.
func (o *Objects) Delete(ctx context.Context, ref api.BlobRef) error {
	if err := checkRef(ref); err != nil {
		return err
	}
	err := o.obs.Delete(ctx, string(ref))
	if err == nil || errors.Is(err, jetstream.ErrObjectNotFound) {
		return nil
	}
	return o.unavailable(ctx, "delete blob", ref, err)
}

// lock serialises the Puts of ref in this process, so that one uploads and
// the others find the blob present; it returns the unlock.
func (o *Objects) lock(ref api.BlobRef) func() {
	o.mu.Lock()
	l := o.putting[ref]
	if l == nil {
		l = &refLock{}
		o.putting[ref] = l
	}
	l.users++
	o.mu.Unlock()
	l.mu.Lock()
	return func() {
		l.mu.Unlock()
		o.mu.Lock()
		if l.users--; l.users == 0 {
			delete(o.putting, ref)
		}
		o.mu.Unlock()
	}
}

func (o *Objects) unavailable(ctx context.Context, op string, ref api.BlobRef, err error) error {
	if ctx.Err() != nil {
		return fmt.Errorf("%w: %w", api.Errorf(api.ETimeout, "%s %s: did not finish in time — retry", op, ref), err)
	}
	return fmt.Errorf("%w: %w", api.Errorf(api.EUnavailable, "%s %s: the NATS object store %s did not answer — retry", op, ref, o.bucket), err)
}

// removeStaleSpool deletes spool files older than staleSpool: Puts that a
// crash interrupted. Younger ones may belong to a Put in another process.
func (o *Objects) removeStaleSpool() {
	entries, err := os.ReadDir(o.spool)
	if err != nil {
		return
	}
	for _, e := range entries {
		info, err := e.Info()
		if err != nil || time.Since(info.ModTime()) < staleSpool {
			continue
		}
		if err := os.Remove(filepath.Join(o.spool, e.Name())); err == nil {
			o.log.Info("blobs.stale_spool_removed", "file", e.Name())
		}
	}
}

// objectReader is a blob being read from the object store.
// readStall is how long a Read may wait for the next chunk: when the
// stream's leader dies mid-transfer the chunks can stop coming, and the
// reader then fails (unavailable, "retry") instead of hanging until the
// read timeout. Only time spent inside Read counts, not a slow consumer.
const readStall = 15 * time.Second

type objectReader struct {
	res     jetstream.ObjectResult
	ref     api.BlobRef
	cancel  context.CancelFunc
	stall   time.Duration
	stalled atomic.Bool
}

func (r *objectReader) Read(p []byte) (int, error) {
	t := time.AfterFunc(r.stall, func() {
		r.stalled.Store(true)
		_ = r.res.Close() // ends the blocked Read
	})
	n, err := r.res.Read(p)
	t.Stop()
	if r.stalled.Load() {
		return n, api.Errorf(api.EUnavailable, "read blob %s from the NATS object store: nothing arrived for %s — retry", r.ref, r.stall)
	}
	if err != nil && err != io.EOF {
		code := api.EUnavailable
		if errors.Is(err, jetstream.ErrDigestMismatch) {
			code = api.EInternal
		}
		return n, fmt.Errorf("%w: %w", api.Errorf(code, "read blob %s from the NATS object store", r.ref), err)
	}
	return n, err
}

func (r *objectReader) Close() error {
	err := r.res.Close()
	r.cancel()
	return err
}

// checkRef returns EInvalid for a malformed reference, as the file store does.
func checkRef(ref api.BlobRef) error {
	if ref.Valid() {
		return nil
	}
	s := string(ref)
	if len(s) > 80 {
		s = s[:80] + "…"
	}
	return api.Errorf(api.EInvalid, "blob reference %q is malformed — it must be sha256: followed by 64 lowercase hex digits", s)
}

// digestIs reports whether an object store digest ("SHA-256=<base64url>")
// is sum.
func digestIs(digest string, sum []byte) bool {
	d, err := jetstream.DecodeObjectDigest(digest)
	return err == nil && len(sum) == sha256.Size && bytes.Equal(d, sum)
}

// retryable reports whether a failed Put may succeed when sent again: the
// stream did not answer, as while a cluster elects its leader.
func retryable(err error) bool {
	return errors.Is(err, jetstream.ErrNoStreamResponse) || errors.Is(err, context.DeadlineExceeded) ||
		errors.Is(err, nats.ErrNoResponders) || errors.Is(err, nats.ErrTimeout)
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

// objectsIOError classifies a spool file error: a full disk is
// EUnavailable, anything else EInternal.
func objectsIOError(op string, err error) error {
	if errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT) {
		return fmt.Errorf("%w: %w", api.Errorf(api.EUnavailable, "%s: the blob spool directory is out of space — free disk space and retry", op), err)
	}
	return fmt.Errorf("%w: %w", api.Errorf(api.EInternal, "%s: blob store error", op), err)
}
