package blobstore_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/strata-paas/strata/api"
	"github.com/strata-paas/strata/api/blobstore"
	"github.com/strata-paas/strata/api/blobstore/blobstoretest"
)

func newFS(t *testing.T, max int64) *blobstore.FS {
	t.Helper()
	f, err := blobstore.Open(blobstore.Config{Dir: t.TempDir(), MaxSize: max})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return f
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
			if want := blobstoretest.RefOf(tc.content); ref != want {
				t.Fatalf("Put: got ref %s, want %s", ref, want)
			}
			if got := blobstoretest.Read(t, f, ref); !bytes.Equal(got, tc.content) {
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

// TestConformance runs the suite every api.BlobStore passes.
func TestConformance(t *testing.T) {
	blobstoretest.Run(t, func(t *testing.T) api.BlobStore {
		f := newFS(t, 0)
		t.Cleanup(func() {
			if left := tempFiles(t, f); len(left) != 0 {
				t.Errorf("temporary files left: %v", left)
			}
		})
		return f
	})
}

func TestMalformedRefs(t *testing.T) {
	ctx := context.Background()
	f := newFS(t, 0)
	// A real file that a path-traversing ref might try to reach.
	secret := filepath.Join(filepath.Dir(f.Dir()), "secret")
	if err := os.WriteFile(secret, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	// Get and Delete are checked by the conformance suite.
	for _, r := range blobstoretest.MalformedRefs() {
		ref := api.BlobRef(r)
		check := func(op string, err error) {
			t.Helper()
			if api.ErrorCode(err) != api.EInvalid {
				t.Fatalf("%s(%q): got %v, want invalid", op, r, err)
			}
		}
		_, err := f.Stat(ctx, ref)
		check("Stat", err)
		_, err = f.Path(ref)
		check("Path", err)
		check("Delete", f.Delete(ctx, ref))
	}
	if _, err := os.Stat(secret); err != nil {
		t.Fatalf("file outside the store was touched: %v", err)
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
			if _, err := f.Stat(ctx, blobstoretest.RefOf(content)); api.ErrorCode(err) != api.ENotFound {
				t.Fatalf("oversized blob was stored: %v", err)
			}
			continue
		}
		if ref != blobstoretest.RefOf(content) {
			t.Fatalf("Put %d bytes: ref %s", tc.size, ref)
		}
	}
	if left := tempFiles(t, f); len(left) != 0 {
		t.Fatalf("temporary files left: %v", left)
	}
}

// TestFailedPutLeavesNothing adds to the suite's FailedPutStoresNothing
// that no file is left behind.
func TestFailedPutLeavesNothing(t *testing.T) {
	f := newFS(t, 0)
	_, _ = f.Put(context.Background(), blobstoretest.FailingReader(5000))
	if left := tempFiles(t, f); len(left) != 0 {
		t.Fatalf("temporary files left: %v", left)
	}
	shards, err := os.ReadDir(filepath.Join(f.Dir(), "sha256"))
	if err != nil || len(shards) != 0 {
		t.Fatalf("blobs stored by a failed put: %v %v", shards, err)
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
	if got := blobstoretest.Read(t, g, ref); string(got) != "kept" {
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
