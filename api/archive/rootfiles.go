package archive

import (
	"archive/tar"
	"compress/gzip"
	"context"
	"errors"
	"io"

	"github.com/strata-paas/strata/api"
)

// RootFile is one entry at the top of an archive found by RootFiles.
type RootFile struct {
	Name    string // as asked for, e.g. "strata.yml"
	Regular bool   // a regular file; false for symlinks, directories and the rest
	Size    int64  // of a regular file
	Data    []byte // a regular file's contents, unless Size is over the maxBytes asked for
}

// RootFiles reads a gzip-compressed tar from r and returns the entries at
// its root whose names are in names (an entry "./strata.yml" counts as
// "strata.yml"), with the contents of each regular one of at most maxBytes. It reads the whole stream under lim, so a
// decompression bomb is refused as Extract would refuse it, but writes
// nothing. An entry name Extract would refuse is refused here too.
func RootFiles(ctx context.Context, r io.Reader, names []string, maxBytes int64, lim Limits) (map[string]RootFile, error) {
	want := make(map[string]bool, len(names))
	for _, n := range names {
		want[n] = true
	}
	e := &extractor{lim: lim.withDefaults(), compressed: &countingReader{r: r}}
	zr, err := gzip.NewReader(e.compressed)
	if err != nil {
		return nil, api.Errorf(api.EInvalid, "archive is not gzip-compressed: %v — send a .tar.gz", err)
	}
	defer zr.Close()
	e.plain = &countingReader{r: zr}
	tr := tar.NewReader(boundedReader{e})
	found := map[string]RootFile{}
	for {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return found, nil
		}
		if err != nil {
			return nil, corrupt(err)
		}
		if e.files++; e.files > e.lim.MaxFiles {
			return nil, api.Errorf(api.EInvalid, "archive refused: more than %d entries — remove files or add them to .stratignore", e.lim.MaxFiles)
		}
		if hdr.Typeflag == tar.TypeXGlobalHeader {
			continue
		}
		name, err := cleanName(hdr.Name)
		if err != nil {
			return nil, err
		}
		if !want[name] {
			continue
		}
		if _, dup := found[name]; dup {
			return nil, refuse(hdr.Name, "duplicate entry")
		}
		f := RootFile{Name: name, Regular: hdr.Typeflag == tar.TypeReg}
		if f.Regular {
			f.Size = hdr.Size
		}
		if f.Regular && f.Size <= maxBytes {
			if f.Data, err = io.ReadAll(io.LimitReader(tr, maxBytes+1)); err != nil {
				return nil, corrupt(err)
			}
		}
		found[name] = f
	}
}

// boundedReader reads the tar stream of RootFiles, refusing it once it is
// larger or compresses better than the limits allow — while skipping entry
// data too, so one huge entry is refused before it is read to the end.
type boundedReader struct{ e *extractor }

func (b boundedReader) Read(p []byte) (int, error) {
	n, err := b.e.plain.Read(p)
	if b.e.plain.n > b.e.lim.MaxBytes {
		return n, api.Errorf(api.EInvalid, "archive refused: more than %d bytes uncompressed — add files to .stratignore", b.e.lim.MaxBytes)
	}
	if rerr := b.e.checkRatio(); rerr != nil {
		return n, rerr
	}
	return n, err
}

// corrupt keeps a limit's own error and names any other read error.
func corrupt(err error) error {
	var ae *api.Error
	if errors.As(err, &ae) {
		return ae
	}
	return api.Errorf(api.EInvalid, "archive is corrupt: %v", err)
}
