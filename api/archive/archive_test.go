package archive_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/strata-paas/strata/api"
	"github.com/strata-paas/strata/api/archive"
)

// entry is one tar entry of a test archive.
type entry struct {
	name     string
	typ      byte
	body     string
	link     string
	mode     int64
	size     int64 // overrides len(body) when > 0 (for streaming zeros)
	zeroFill bool  // body is size zero bytes
}

func file(name, body string) entry {
	return entry{name: name, typ: tar.TypeReg, body: body, mode: 0o644}
}
func dir(name string) entry { return entry{name: name, typ: tar.TypeDir, mode: 0o755} }
func symlink(name, target string) entry {
	return entry{name: name, typ: tar.TypeSymlink, link: target, mode: 0o777}
}
func hardlink(name, target string) entry {
	return entry{name: name, typ: tar.TypeLink, link: target, mode: 0o644}
}

// makeTarGz builds a gzip-compressed tar of entries without any checks.
func makeTarGz(t testing.TB, entries ...entry) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	tw := tar.NewWriter(zw)
	for _, e := range entries {
		size := int64(len(e.body))
		if e.zeroFill {
			size = e.size
		}
		if e.typ != tar.TypeReg {
			size = 0
		}
		hdr := &tar.Header{Name: e.name, Typeflag: e.typ, Linkname: e.link, Mode: e.mode, Size: size, Format: tar.FormatPAX}
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatalf("write header %q: %v", e.name, err)
		}
		if e.typ == tar.TypeReg {
			if e.zeroFill {
				zeros := make([]byte, 64<<10)
				for left := size; left > 0; {
					n := min(left, int64(len(zeros)))
					tw.Write(zeros[:n])
					left -= n
				}
			} else {
				tw.Write([]byte(e.body))
			}
		}
	}
	tw.Close()
	zw.Close()
	return buf.Bytes()
}

// extractIsolated extracts data into <tmp>/dest and fails the test if
// anything appears in <tmp> besides dest.
func extractIsolated(t testing.TB, data []byte, lim archive.Limits) (string, error) {
	t.Helper()
	parent := t.TempDir()
	dest := filepath.Join(parent, "dest")
	if err := os.Mkdir(dest, 0o755); err != nil {
		t.Fatal(err)
	}
	err := archive.Extract(context.Background(), bytes.NewReader(data), dest, lim)
	ents, rerr := os.ReadDir(parent)
	if rerr != nil {
		t.Fatal(rerr)
	}
	if len(ents) != 1 || ents[0].Name() != "dest" {
		var names []string
		for _, e := range ents {
			names = append(names, e.Name())
		}
		t.Fatalf("extract wrote outside dest: parent holds %v", names)
	}
	return dest, err
}

func TestExtractRefusesHostileArchives(t *testing.T) {
	small := archive.Limits{MaxBytes: 1 << 20, MaxFiles: 5, MaxDepth: 4, MaxRatio: 200}
	tests := []struct {
		name    string
		entries []entry
		lim     archive.Limits
		mention string // the refused entry (or limit) the message must name
	}{
		{"dotdot", []entry{file("../evil", "x")}, archive.DefaultLimits(), "../evil"},
		{"nested dotdot", []entry{file("a/../../evil", "x")}, archive.DefaultLimits(), "a/../../evil"},
		{"dotdot even if it stays inside", []entry{file("a/../b", "x")}, archive.DefaultLimits(), "a/../b"},
		{"absolute", []entry{file("/tmp/evil", "x")}, archive.DefaultLimits(), "/tmp/evil"},
		{"backslash", []entry{file(`..\evil`, "x")}, archive.DefaultLimits(), `..\\evil`},
		{"symlink absolute", []entry{symlink("l", "/etc")}, archive.DefaultLimits(), `"l"`},
		{"symlink dotdot", []entry{symlink("l", "../outside")}, archive.DefaultLimits(), `"l"`},
		{"symlink deep dotdot", []entry{dir("a/"), symlink("a/l", "../../outside")}, archive.DefaultLimits(), `"a/l"`},
		{"symlink chain escape", []entry{symlink("a", "."), symlink("b", "a/..")}, archive.DefaultLimits(), `"b"`},
		{"symlink chain via dir", []entry{dir("d/"), symlink("d/up", "."), symlink("x", "d/up/../..")}, archive.DefaultLimits(), `"x"`},
		{"write through escaping symlink", []entry{symlink("l", ".."), file("l/evil", "x")}, archive.DefaultLimits(), `"l"`},
		{"hardlink absolute", []entry{hardlink("h", "/etc/passwd")}, archive.DefaultLimits(), `"h"`},
		{"hardlink dotdot", []entry{hardlink("h", "../outside")}, archive.DefaultLimits(), `"h"`},
		{"hardlink to missing", []entry{hardlink("h", "nothere")}, archive.DefaultLimits(), `"h"`},
		{"hardlink to symlink", []entry{symlink("s", "f"), hardlink("h", "s")}, archive.DefaultLimits(), `"h"`},
		{"char device", []entry{{name: "dev", typ: tar.TypeChar, mode: 0o644}}, archive.DefaultLimits(), `"dev"`},
		{"block device", []entry{{name: "blk", typ: tar.TypeBlock, mode: 0o644}}, archive.DefaultLimits(), `"blk"`},
		{"fifo", []entry{{name: "pipe", typ: tar.TypeFifo, mode: 0o644}}, archive.DefaultLimits(), `"pipe"`},
		{"duplicate file", []entry{file("a", "1"), file("a", "2")}, archive.DefaultLimits(), `"a"`},
		{"duplicate after cleaning", []entry{file("a", "1"), file("./a", "2")}, archive.DefaultLimits(), `"./a"`},
		{"duplicate dir", []entry{dir("d/"), dir("d/")}, archive.DefaultLimits(), `"d/"`},
		{"file then symlink same name", []entry{file("a", "1"), symlink("a", "b")}, archive.DefaultLimits(), `"a"`},
		{"too many files", []entry{file("1", ""), file("2", ""), file("3", ""), file("4", ""), file("5", ""), file("6", "")}, small, "more than 5 entries"},
		{"too deep", []entry{file("a/b/c/d/e", "x")}, small, "depth 5"},
		{"too big", []entry{{name: "big", typ: tar.TypeReg, mode: 0o644, size: 2 << 20, zeroFill: true}}, small, "more than 1048576 bytes"},
		{"ratio bomb", []entry{{name: "bomb", typ: tar.TypeReg, mode: 0o644, size: 64 << 20, zeroFill: true}}, archive.DefaultLimits(), "compression ratio"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			data := makeTarGz(t, tt.entries...)
			_, err := extractIsolated(t, data, tt.lim)
			if err == nil {
				t.Fatal("got nil error, want refusal")
			}
			if code := api.ErrorCode(err); code != api.EInvalid {
				t.Fatalf("got code %q (%v), want %q", code, err, api.EInvalid)
			}
			if !strings.Contains(err.Error(), tt.mention) {
				t.Fatalf("error %q does not mention %s", err, tt.mention)
			}
		})
	}
}

func TestExtractRefusesNonGzipAndTruncated(t *testing.T) {
	good := makeTarGz(t, file("a", strings.Repeat("hello ", 10000)))
	for name, data := range map[string][]byte{
		"not gzip":  []byte("plain text, not an archive"),
		"truncated": good[:len(good)/2],
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := extractIsolated(t, data, archive.DefaultLimits()); api.ErrorCode(err) != api.EInvalid {
				t.Fatalf("got %v, want an EInvalid error", err)
			}
		})
	}
}

func TestExtractGoodArchive(t *testing.T) {
	data := makeTarGz(t,
		dir("./"),
		dir("src/"),
		file("src/main.go", "package main"),
		entry{name: "bin/run", typ: tar.TypeReg, body: "#!/bin/sh\n", mode: 0o4755}, // setuid stripped, parent implied
		entry{name: "shared", typ: tar.TypeDir, mode: 0o1777},                       // sticky stripped
		symlink("link", "src/main.go"),
		symlink("src/up", "../bin"),
		symlink("dangling", "nowhere/inside"),
		hardlink("hard", "src/main.go"),
	)
	dest, err := extractIsolated(t, data, archive.DefaultLimits())
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(filepath.Join(dest, "link")); string(got) != "package main" {
		t.Errorf("link reads %q, want %q", got, "package main")
	}
	if got, _ := os.ReadFile(filepath.Join(dest, "hard")); string(got) != "package main" {
		t.Errorf("hard reads %q, want %q", got, "package main")
	}
	fi, err := os.Stat(filepath.Join(dest, "bin/run"))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode()&(os.ModeSetuid|os.ModeSetgid) != 0 || fi.Mode().Perm() != 0o755 {
		t.Errorf("bin/run mode %v, want -rwxr-xr-x without setuid", fi.Mode())
	}
	fi, err = os.Stat(filepath.Join(dest, "shared"))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode()&os.ModeSticky != 0 {
		t.Errorf("shared mode %v, want no sticky bit", fi.Mode())
	}
	if target, _ := os.Readlink(filepath.Join(dest, "src/up")); target != "../bin" {
		t.Errorf("src/up → %q, want ../bin", target)
	}
}

func TestExtractHonoursContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	data := makeTarGz(t, file("a", "x"))
	if err := archive.Extract(ctx, bytes.NewReader(data), t.TempDir(), archive.DefaultLimits()); err == nil {
		t.Fatal("got nil error with a cancelled context")
	}
}

func FuzzExtract(f *testing.F) {
	f.Add(makeTarGz(f, dir("d/"), file("d/a", "hello"), symlink("l", "d/a"), hardlink("h", "d/a")))
	f.Add(makeTarGz(f, file("../escape", "x")))
	f.Add(makeTarGz(f, file("/abs", "x")))
	f.Add(makeTarGz(f, symlink("l", ".."), file("l/x", "x")))
	f.Add(makeTarGz(f, symlink("a", "."), symlink("b", "a/..")))
	f.Add(makeTarGz(f, hardlink("h", "/etc/passwd")))
	f.Add(makeTarGz(f, entry{name: "dev", typ: tar.TypeChar, mode: 0o644}))
	f.Add(makeTarGz(f, entry{name: "bomb", typ: tar.TypeReg, mode: 0o644, size: 4 << 20, zeroFill: true}))
	lim := archive.Limits{MaxBytes: 8 << 20, MaxFiles: 200, MaxDepth: 16, MaxRatio: 200}
	f.Fuzz(func(t *testing.T, data []byte) {
		dest, err := extractIsolated(t, data, lim)
		if err != nil {
			return
		}
		// Every symlink left behind must resolve inside dest.
		filepath.WalkDir(dest, func(p string, d os.DirEntry, err error) error {
			if err != nil || d.Type()&os.ModeSymlink == 0 {
				return nil
			}
			resolved, err := filepath.EvalSymlinks(p)
			if err != nil {
				return nil // dangling inside dest is allowed
			}
			if rel, err := filepath.Rel(dest, resolved); err != nil || !filepath.IsLocal(rel) && rel != "." {
				t.Fatalf("symlink %s resolves outside dest to %s", p, resolved)
			}
			return nil
		})
	})
}
