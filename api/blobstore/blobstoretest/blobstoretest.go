package blobstoretest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/strata-paas/strata/api"
)

// LargeSize is the size of the large blob of the suite: several chunks of
// any store, more than a NATS message.
const LargeSize = 6<<20 + 12345

// Run runs the suite on the stores open returns; each subtest opens its
// own (open may return stores sharing a backend, as long as each starts
// without the suite's blobs).
func Run(t *testing.T, open func(t *testing.T) api.BlobStore) {
	t.Run("RoundTrip", func(t *testing.T) { roundTrip(t, open(t)) })
	t.Run("Large", func(t *testing.T) { large(t, open(t)) })
	t.Run("Missing", func(t *testing.T) { missing(t, open(t)) })
	t.Run("MalformedRefs", func(t *testing.T) { malformed(t, open(t)) })
	t.Run("Delete", func(t *testing.T) { deleteBlob(t, open(t)) })
	t.Run("ConcurrentPuts", func(t *testing.T) { concurrentPuts(t, open(t)) })
	t.Run("FailedPutStoresNothing", func(t *testing.T) { failedPut(t, open(t)) })
}

// RefOf is the reference of content.
func RefOf(content []byte) api.BlobRef {
	s := sha256.Sum256(content)
	return api.BlobRef("sha256:" + hex.EncodeToString(s[:]))
}

// Read returns the whole blob ref of s.
func Read(t *testing.T, s api.BlobStore, ref api.BlobRef) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	rc, err := s.Get(ctx, ref)
	if err != nil {
		t.Fatalf("Get(%s): %v", ref, err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatalf("read %s: %v", ref, err)
	}
	return b
}

// Content returns n bytes that do not compress and differ by seed.
func Content(seed uint64, n int) []byte {
	b := make([]byte, n)
	r := rand.NewChaCha8([32]byte{byte(seed), byte(seed >> 8), byte(seed >> 16), byte(seed >> 24)})
	_, _ = r.Read(b)
	return b
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return c
}

func roundTrip(t *testing.T, s api.BlobStore) {
	for _, tc := range []struct {
		name    string
		content []byte
	}{
		{"empty", nil},
		{"hello", []byte("hello\n")},
		{"1MiB", bytes.Repeat([]byte("0123456789abcdef"), 1<<16)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ref, err := s.Put(ctx(t), bytes.NewReader(tc.content))
			if err != nil {
				t.Fatalf("Put: %v", err)
			}
			if want := RefOf(tc.content); ref != want {
				t.Fatalf("Put: got ref %s, want %s", ref, want)
			}
			if got := Read(t, s, ref); !bytes.Equal(got, tc.content) {
				t.Fatalf("Get: got %d bytes, want %d", len(got), len(tc.content))
			}
			again, err := s.Put(ctx(t), bytes.NewReader(tc.content))
			if err != nil || again != ref {
				t.Fatalf("second Put: got %s, %v; want %s", again, err, ref)
			}
			if got := Read(t, s, ref); !bytes.Equal(got, tc.content) {
				t.Fatalf("Get after the second Put: got %d bytes, want %d", len(got), len(tc.content))
			}
		})
	}
}

// large streams a multi-MiB blob in and out through plain readers (no
// io.WriterTo or Seeker for a store to take a shortcut through).
func large(t *testing.T, s api.BlobStore) {
	content := Content(1, LargeSize)
	ref, err := s.Put(ctx(t), struct{ io.Reader }{bytes.NewReader(content)})
	if err != nil {
		t.Fatalf("Put %d bytes: %v", len(content), err)
	}
	if want := RefOf(content); ref != want {
		t.Fatalf("Put: got ref %s, want %s", ref, want)
	}
	rc, err := s.Get(ctx(t), ref)
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	defer rc.Close()
	h := sha256.New()
	n, err := io.CopyBuffer(h, struct{ io.Reader }{rc}, make([]byte, 4096))
	if err != nil {
		t.Fatalf("read: %v after %d bytes", err, n)
	}
	if n != int64(len(content)) || "sha256:"+hex.EncodeToString(h.Sum(nil)) != string(ref) {
		t.Fatalf("Get: read %d bytes hashing to another digest, want %d bytes of %s", n, len(content), ref)
	}
}

func missing(t *testing.T, s api.BlobStore) {
	ref := RefOf([]byte("never stored"))
	_, err := s.Get(ctx(t), ref)
	var ae *api.Error
	if !errors.As(err, &ae) || ae.Code != api.ENotFound {
		t.Fatalf("Get of a missing blob: got %v, want *api.Error not_found", err)
	}
	if err := s.Delete(ctx(t), ref); err != nil {
		t.Fatalf("Delete of a missing blob: %v, want nil", err)
	}
}

// MalformedRefs are references every store refuses with EInvalid.
func MalformedRefs() []string {
	good := string(RefOf([]byte("x")))
	return []string{
		"",
		"sha256:",
		"sha256",
		good[7:],              // no prefix
		strings.ToUpper(good), // uppercase
		"sha512:" + good[7:],  // other algorithm
		good[:len(good)-1],    // 63 digits
		good + "0",            // 65 digits
		"sha256:../../secret", // traversal
		"sha256:" + strings.Repeat("../", 21) + "x", // 64 chars of traversal
		"sha256:" + good[7:69] + "/x",               // slash
		"sha256:" + good[7:69] + ".>",               // NATS wildcard
		"sha256:" + good[7:70] + "g",                // non-hex
		"sha256:" + good[7:70] + "\x00",             // NUL
	}
}

func malformed(t *testing.T, s api.BlobStore) {
	for _, r := range MalformedRefs() {
		ref := api.BlobRef(r)
		if _, err := s.Get(ctx(t), ref); api.ErrorCode(err) != api.EInvalid {
			t.Fatalf("Get(%q): got %v, want invalid", r, err)
		}
		if err := s.Delete(ctx(t), ref); api.ErrorCode(err) != api.EInvalid {
			t.Fatalf("Delete(%q): got %v, want invalid", r, err)
		}
	}
}

func deleteBlob(t *testing.T, s api.BlobStore) {
	content := Content(2, 300<<10)
	ref, err := s.Put(ctx(t), bytes.NewReader(content))
	if err != nil {
		t.Fatalf("Put: %v", err)
	}
	kept, err := s.Put(ctx(t), strings.NewReader("kept"))
	if err != nil {
		t.Fatalf("Put: %v", err)
	}
	if err := s.Delete(ctx(t), ref); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	if _, err := s.Get(ctx(t), ref); api.ErrorCode(err) != api.ENotFound {
		t.Fatalf("Get after Delete: got %v, want not_found", err)
	}
	if err := s.Delete(ctx(t), ref); err != nil {
		t.Fatalf("second Delete: %v, want nil", err)
	}
	if got := Read(t, s, kept); string(got) != "kept" {
		t.Fatalf("another blob after Delete: got %q", got)
	}
	// A deleted blob can be stored again.
	again, err := s.Put(ctx(t), bytes.NewReader(content))
	if err != nil || again != ref {
		t.Fatalf("Put after Delete: got %s, %v; want %s", again, err, ref)
	}
	if got := Read(t, s, ref); !bytes.Equal(got, content) {
		t.Fatalf("Get after Put after Delete: got %d bytes, want %d", len(got), len(content))
	}
}

func concurrentPuts(t *testing.T, s api.BlobStore) {
	same := Content(3, 1<<20+7)
	const n = 12
	refs := make([]api.BlobRef, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			content := same
			if i%3 == 2 {
				content = []byte(fmt.Sprint("different ", i))
			}
			refs[i], errs[i] = s.Put(ctx(t), bytes.NewReader(content))
		})
	}
	wg.Wait()
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("Put %d: %v", i, errs[i])
		}
		want := RefOf(same)
		if i%3 == 2 {
			want = RefOf([]byte(fmt.Sprint("different ", i)))
		}
		if refs[i] != want {
			t.Fatalf("Put %d: got %s, want %s", i, refs[i], want)
		}
	}
	if got := Read(t, s, RefOf(same)); !bytes.Equal(got, same) {
		t.Fatalf("shared blob: got %d bytes (%s), want %d", len(got), RefOf(got), len(same))
	}
	for i := 2; i < n; i += 3 {
		if got := Read(t, s, refs[i]); string(got) != fmt.Sprint("different ", i) {
			t.Fatalf("blob %d: got %q", i, got)
		}
	}
}

// FailingReader returns a reader that gives n bytes, then fails as a
// broken connection does.
func FailingReader(n int) io.Reader { return &failingReader{n: n} }

type failingReader struct{ n int }

func (r *failingReader) Read(p []byte) (int, error) {
	if r.n <= 0 {
		return 0, errors.New("connection reset")
	}
	k := min(len(p), r.n)
	r.n -= k
	return k, nil
}

func failedPut(t *testing.T, s api.BlobStore) {
	canceled, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := s.Put(context.Background(), FailingReader(5000)); api.ErrorCode(err) != api.EInternal {
		t.Fatalf("Put from a failing reader: got code %q (%v), want internal", api.ErrorCode(err), err)
	}
	if _, err := s.Put(canceled, strings.NewReader("data")); api.ErrorCode(err) != api.ETimeout {
		t.Fatalf("Put with a canceled context: got code %q (%v), want timeout", api.ErrorCode(err), err)
	}
	if _, err := s.Get(ctx(t), RefOf([]byte("data"))); api.ErrorCode(err) != api.ENotFound {
		t.Fatalf("the content of a canceled Put was stored: Get got %v, want not_found", err)
	}
}
