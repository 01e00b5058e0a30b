package archive_test

import (
	"archive/tar"
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/strata-paas/strata/api"
	"github.com/strata-paas/strata/api/archive"
)

func TestRootFiles(t *testing.T) {
	ctx := context.Background()
	data := makeTarGz(t, dir("./"), file("./strata.yml", "apps"), file("sub/Procfile", "nested"),
		symlink("manifest.yml", "strata.yml"), file("big.txt", strings.Repeat("x", 100)), file("main.go", "package main"))
	got, err := archive.RootFiles(ctx, bytes.NewReader(data), []string{"strata.yml", "manifest.yml", "Procfile", "big.txt"}, 50, archive.DefaultLimits())
	if err != nil {
		t.Fatal(err)
	}
	if f := got["strata.yml"]; !f.Regular || string(f.Data) != "apps" || f.Size != 4 {
		t.Errorf("strata.yml = %+v", f)
	}
	if f, ok := got["manifest.yml"]; !ok || f.Regular || f.Data != nil {
		t.Errorf("manifest.yml (a symlink) = %+v, %v", f, ok)
	}
	if _, ok := got["Procfile"]; ok {
		t.Error("a nested Procfile was reported at the root")
	}
	if f := got["big.txt"]; !f.Regular || f.Size != 100 || f.Data != nil {
		t.Errorf("an entry over maxBytes = size %d, %d bytes read", f.Size, len(f.Data))
	}

	for name, bad := range map[string][]byte{
		"not gzip":  []byte("plain text"),
		"escape":    makeTarGz(t, file("../strata.yml", "x")),
		"duplicate": makeTarGz(t, file("strata.yml", "a"), file("./strata.yml", "b")),
		"bomb":      makeTarGz(t, entry{name: "bomb", typ: tar.TypeReg, mode: 0o644, size: 64 << 20, zeroFill: true}),
	} {
		if _, err := archive.RootFiles(ctx, bytes.NewReader(bad), []string{"strata.yml"}, 50, archive.DefaultLimits()); api.ErrorCode(err) != api.EInvalid {
			t.Errorf("%s: err = %v, want invalid", name, err)
		}
	}
	big := makeTarGz(t, entry{name: "big", typ: tar.TypeReg, mode: 0o644, size: 4 << 20, zeroFill: true})
	if _, err := archive.RootFiles(ctx, bytes.NewReader(big), nil, 50, archive.Limits{MaxBytes: 1 << 20}); err == nil || !strings.Contains(err.Error(), "more than 1048576 bytes") {
		t.Errorf("over MaxBytes: %v", err)
	}
}

// FuzzRootFiles: the controller reads manifests from pushed archives with
// RootFiles; no input panics, and data is returned only for regular files
// within maxBytes.
func FuzzRootFiles(f *testing.F) {
	f.Add(makeTarGz(f, file("strata.yml", "applications: []"), symlink("manifest.yml", "strata.yml")))
	f.Add(makeTarGz(f, file("../strata.yml", "x")))
	f.Add(makeTarGz(f, entry{name: "strata.yml", typ: tar.TypeReg, mode: 0o644, size: 2 << 20, zeroFill: true}))
	lim := archive.Limits{MaxBytes: 8 << 20, MaxFiles: 200, MaxDepth: 16, MaxRatio: 200}
	f.Fuzz(func(t *testing.T, data []byte) {
		got, err := archive.RootFiles(context.Background(), bytes.NewReader(data), []string{"strata.yml", "Procfile"}, 1024, lim)
		if err != nil {
			return
		}
		for name, rf := range got {
			if name != "strata.yml" && name != "Procfile" {
				t.Fatalf("unasked entry %q", name)
			}
			if len(rf.Data) > 1024 || !rf.Regular && rf.Data != nil {
				t.Fatalf("%s: %d bytes, regular %v", name, len(rf.Data), rf.Regular)
			}
		}
	})
}
