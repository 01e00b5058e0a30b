package droplet_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/strata-paas/strata/api"
	"github.com/strata-paas/strata/api/archive"
	"github.com/strata-paas/strata/builder/droplet"
)

func TestWriteReadExtract(t *testing.T) {
	app := t.TempDir()
	if err := os.MkdirAll(filepath.Join(app, "bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(app, "bin", "hello"), []byte("#!/bin/sh\necho hi\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	info := api.StagingInfo{Buildpack: "go", Processes: map[string]string{"web": "./bin/hello"}}
	var buf bytes.Buffer
	if err := droplet.Write(context.Background(), &buf, app, info); err != nil {
		t.Fatal(err)
	}
	got, err := droplet.ReadInfo(bytes.NewReader(buf.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	if got.Buildpack != "go" || got.Processes["web"] != "./bin/hello" {
		t.Fatalf("ReadInfo got %+v", got)
	}
	dest := t.TempDir()
	got, err = droplet.Extract(context.Background(), bytes.NewReader(buf.Bytes()), dest, archive.DefaultLimits())
	if err != nil {
		t.Fatal(err)
	}
	if got.Processes["web"] != "./bin/hello" {
		t.Fatalf("Extract info %+v", got)
	}
	fi, err := os.Stat(filepath.Join(dest, droplet.AppDir, "bin", "hello"))
	if err != nil || fi.Mode().Perm() != 0o755 {
		t.Fatalf("binary after extract: %v, %v", fi, err)
	}
}

func TestReadInfoMissing(t *testing.T) {
	var buf bytes.Buffer
	if err := archive.Pack(context.Background(), &buf, t.TempDir(), archive.PackOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := droplet.ReadInfo(&buf); api.ErrorCode(err) != api.EInvalid {
		t.Fatalf("got %v, want EInvalid", err)
	}
}
