package blobstore_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/strata-paas/strata/api"
	"github.com/strata-paas/strata/api/blobstore"
)

func newFS(t *testing.T, max int64) *blobstore.FS {
	t.Helper()
	f, err := blobstore.Open(blobstore.Config{Dir: t.TempDir(), MaxSize: max})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return f
}

func refOf(b []byte) api.BlobRef {
	s := sha256.Sum256(b)
	return api.BlobRef("sha256:" + hex.EncodeToString(s[:]))
}

func read(t *testing.T, f *blobstore.FS, ref api.BlobRef) []byte {
	t.Helper()
	rc, err := f.Get(context.Background(), ref)
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

// tempFiles returns the names left in the store's temporary directory.
func tempFiles(t *testing.T, f *blobstore.FS) []string {
	t.Helper()
	es, err := os.ReadDir(filepath.Join(f.Dir(), "tmp"))
	if err != nil {
		t.Fatalf("read tmp: %v", err)
	}
	var out []string
	for _, e := range es {
		out = append(out, e.Name())
	}
	return out
}

func TestPutGetStatPathDelete(t *testing.T) {
	ctx := context.Background()
	f := newFS(t, 0)
	tests := []struct {
		name    string
		content []byte
	}{
		{"empty", nil},
		{"hello", []byte("hello\n")},
		{"large", bytes.Repeat([]byte("0123456789abcdef"), 1<<16)}, // 1 MiB
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ref, err := f.Put(ctx, bytes.NewReader(tc.content))
			if err != nil {
				t.Fatalf("Put: %v", err)
			}
			if want := refOf(tc.content); ref != want {
				t.Fatalf("Put: got ref %s, want %s", ref, want)
			}
			if got := read(t, f, ref); !bytes.Equal(got, tc.content) {
				t.Fatalf("Get: got %d bytes, want %d", len(got), len(tc.content))
			}
			size, err := f.Stat(ctx, ref)
			if err != nil || size != int64(len(tc.content)) {
				t.Fatalf("Stat: got %d, %v; want %d", size, err, len(tc.content))
			}
			p, err := f.Path(ref)
			if err != nil {
				t.Fatalf("Path: %v", err)
			}
			d := ref.Digest()
			if want := filepath.Join(f.Dir(), "sha256", d[:2], d); p != want {
				t.Fatalf("Path: got %s, want %s", p, want)
			}
			onDisk, err := os.ReadFile(p)
			if err != nil || !bytes.Equal(onDisk, tc.content) {
				t.Fatalf("file at Path: %d bytes, %v", len(onDisk), err)
			}
			// Storing it again is a no-op with the same ref.
			again, err := f.Put(ctx, bytes.NewReader(tc.content))
			if err != nil || again != ref {
				t.Fatalf("second Put: got %s, %v", again, err)
			}
			if err := f.Delete(ctx, ref); err != nil {
				t.Fatalf("Delete: %v", err)
			}
			if _, err := f.Get(ctx, ref); api.ErrorCode(err) != api.ENotFound {
				t.Fatalf("Get after Delete: got %v, want not_found", err)
			}
			if _, err := f.Stat(ctx, ref); api.ErrorCode(err) != api.ENotFound {
				t.Fatalf("Stat after Delete: got %v, want not_found", err)
			}
			if _, err := f.Path(ref); api.ErrorCode(err) != api.ENotFound {
				t.Fatalf("Path after Delete: got %v, want not_found", err)
			}
			if err := f.Delete(ctx, ref); err != nil {
				t.Fatalf("Delete of a missing blob: %v, want nil", err)
			}
		})
	}
	if left := tempFiles(t, f); len(left) != 0 {
		t.Fatalf("temporary files left: %v", left)
	}
}

func TestGetMissingIsNotFoundAPIError(t *testing.T) {
	f := newFS(t, 0)
	_, err := f.Get(context.Background(), refOf([]byte("never stored")))
	var ae *api.Error
	if !errors.As(err, &ae) || ae.Code != api.ENotFound {
		t.Fatalf("Get missing: got %v, want *api.Error not_found", err)
	}
}

func TestMalformedRefs(t *testing.T) {
	ctx := context.Background()
	f := newFS(t, 0)
	// A real file that a path-traversing ref might try to reach.
	secret := filepath.Join(filepath.Dir(f.Dir()), "secret")
	if err := os.WriteFile(secret, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	good := string(refOf([]byte("x")))
	refs := []string{
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
		"sha256:" + good[7:70] + "g",                // non-hex
		"sha256:" + good[7:70] + "\x00",             // NUL
	}
	for _, r := range refs {
		ref := api.BlobRef(r)
		_, err := f.Get(ctx, ref)
		check := func(op string, err error) {
			t.Helper()
			if api.ErrorCode(err) != api.EInvalid {
				t.Fatalf("%s(%q): got %v, want invalid", op, r, err)
			}
		}
		check("Get", err)
		_, err = f.Stat(ctx, ref)
		check("Stat", err)
		_, err = f.Path(ref)
		check("Path", err)
		check("Delete", f.Delete(ctx, ref))
	}
	if _, err := os.Stat(secret); err != nil {
		t.Fatalf("file outside the store was touched: %v", err)
	}
}

func TestConcurrentPuts(t *testing.T) {
	ctx := context.Background()
	f := newFS(t, 0)
	same := bytes.Repeat([]byte("same content "), 10000)
	const n = 16
	var wg sync.WaitGroup
	refs := make([]api.BlobRef, n)
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			content := same
			if i%2 == 1 {
				content = []byte(fmt.Sprint("different ", i))
			}
			refs[i], errs[i] = f.Put(ctx, bytes.NewReader(content))
		})
	}
	wg.Wait()
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("Put %d: %v", i, errs[i])
		}
		want := refOf(same)
		if i%2 == 1 {
			want = refOf([]byte(fmt.Sprint("different ", i)))
		}
		if refs[i] != want {
			t.Fatalf("Put %d: got %s, want %s", i, refs[i], want)
		}
	}
	if got := read(t, f, refOf(same)); !bytes.Equal(got, same) {
		t.Fatalf("shared blob corrupted: %d bytes, want %d", len(got), len(same))
	}
	if left := tempFiles(t, f); len(left) != 0 {
		t.Fatalf("temporary files left: %v", left)
	}
}

func TestMaxSize(t *testing.T) {
	ctx := context.Background()
	f := newFS(t, 10)
	tests := []struct {
		size int
		want string
	}{
		{0, ""},
		{10, ""},
		{11, api.EInvalid},
		{1 << 20, api.EInvalid},
	}
	for _, tc := range tests {
		content := bytes.Repeat([]byte("a"), tc.size)
		ref, err := f.Put(ctx, bytes.NewReader(content))
		if got := api.ErrorCode(err); got != tc.want {
			t.Fatalf("Put %d bytes: got code %q (%v), want %q", tc.size, got, err, tc.want)
		}
		if tc.want != "" {
			if _, err := f.Stat(ctx, refOf(content)); api.ErrorCode(err) != api.ENotFound {
				t.Fatalf("oversized blob was stored: %v", err)
			}
			continue
		}
		if ref != refOf(content) {
			t.Fatalf("Put %d bytes: ref %s", tc.size, ref)
		}
	}
	if left := tempFiles(t, f); len(left) != 0 {
		t.Fatalf("temporary files left: %v", left)
	}
}

type failingReader struct{ n int }

func (r *failingReader) Read(p []byte) (int, error) {
	if r.n <= 0 {
		return 0, errors.New("connection reset")
	}
	k := min(len(p), r.n)
	r.n -= k
	return k, nil
}

func TestFailedPutLeavesNothing(t *testing.T) {
	f := newFS(t, 0)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	tests := []struct {
		name string
		ctx  context.Context
		r    io.Reader
		want string
	}{
		{"reader error", context.Background(), &failingReader{n: 5000}, api.EInternal},
		{"canceled", ctx, strings.NewReader("data"), api.ETimeout},
	}
	for _, tc := range tests {
		_, err := f.Put(tc.ctx, tc.r)
		if got := api.ErrorCode(err); got != tc.want {
			t.Fatalf("%s: got code %q (%v), want %q", tc.name, got, err, tc.want)
		}
	}
	if left := tempFiles(t, f); len(left) != 0 {
		t.Fatalf("temporary files left: %v", left)
	}
	shards, err := os.ReadDir(filepath.Join(f.Dir(), "sha256"))
	if err != nil || len(shards) != 0 {
		t.Fatalf("blobs stored by failed puts: %v %v", shards, err)
	}
}

func TestOpenReopensExistingStore(t *testing.T) {
	dir := t.TempDir()
	f, err := blobstore.New(dir)
	if err != nil {
		t.Fatal(err)
	}
	ref, err := f.Put(context.Background(), strings.NewReader("kept"))
	if err != nil {
		t.Fatal(err)
	}
	g, err := blobstore.New(dir)
	if err != nil {
		t.Fatal(err)
	}
	if got := read(t, g, ref); string(got) != "kept" {
		t.Fatalf("reopened store: got %q", got)
	}
	if _, err := blobstore.New(""); api.ErrorCode(err) != api.EInvalid {
		t.Fatalf("New(\"\"): got %v, want invalid", err)
	}
}

// FuzzPath checks that no reference, however malformed, yields a path
// outside the store.
func FuzzPath(f *testing.F) {
	for _, s := range []string{"sha256:" + strings.Repeat("a", 64), "sha256:../x", "", "sha256:" + strings.Repeat("../", 21) + "x"} {
		f.Add(s)
	}
	store, err := blobstore.New(f.TempDir())
	if err != nil {
		f.Fatal(err)
	}
	stored, err := store.Put(context.Background(), strings.NewReader("x"))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(string(stored))
	f.Fuzz(func(t *testing.T, s string) {
		ref := api.BlobRef(s)
		p, err := store.Path(ref)
		switch code := api.ErrorCode(err); {
		case !ref.Valid():
			if code != api.EInvalid {
				t.Fatalf("Path(%q): got %v, want invalid", s, err)
			}
		case code != "" && code != api.ENotFound:
			t.Fatalf("Path(%q): %v", s, err)
		case err == nil:
			rel, rerr := filepath.Rel(store.Dir(), p)
			if rerr != nil || !filepath.IsLocal(rel) {
				t.Fatalf("Path(%q) = %s escapes %s", s, p, store.Dir())
			}
		}
	})
}
