package guest_test

import (
	"bytes"
	"testing"

	"github.com/strata-paas/strata/deploy/driver/microvm/guest"
)

func TestFramesRoundTrip(t *testing.T) {
	var b bytes.Buffer
	w := guest.NewWriter(&b)
	big := bytes.Repeat([]byte("x"), guest.MaxPayload+10)
	for _, f := range []guest.Frame{{guest.KindStarted, nil}, {guest.KindStdout, []byte("hello\n")}, {guest.KindStderr, big}, {guest.KindExit, guest.EncodeExit(guest.Exit{Code: 3})}} {
		if err := w.WriteFrame(f.Kind, f.Payload); err != nil {
			t.Fatal(err)
		}
	}
	all := b.Bytes()
	// Fed a byte at a time, the frames come out whole and in order.
	var got []guest.Frame
	var pending []byte
	for _, c := range all {
		pending = append(pending, c)
		fs, used, err := guest.Parse(pending)
		if err != nil {
			t.Fatalf("Parse: %v", err)
		}
		got = append(got, fs...)
		pending = pending[used:]
	}
	if len(pending) != 0 || len(got) != 5 {
		t.Fatalf("got %d frames and %d bytes left, want 5 frames (the big one split in two) and none", len(got), len(pending))
	}
	var stderr []byte
	for _, f := range got[2:4] {
		stderr = append(stderr, f.Payload...)
	}
	if string(got[1].Payload) != "hello\n" || !bytes.Equal(stderr, big) || got[4].Kind != guest.KindExit {
		t.Fatalf("frames do not round-trip: %+v", got)
	}
	if e, err := guest.DecodeExit(got[4].Payload); err != nil || e.Code != 3 {
		t.Fatalf("exit = %+v, %v; want code 3", e, err)
	}
}

func TestExitRecords(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want guest.Exit
		ok   bool
	}{
		{"code 0", guest.Exit{Code: 0}, true},
		{"code 137", guest.Exit{Code: 137}, true},
		{"signal killed", guest.Exit{Code: -1, Signal: "killed"}, true},
		{"code 137 oom", guest.Exit{Code: 137, OOM: true}, true},
		{"signal killed oom", guest.Exit{Code: -1, Signal: "killed", OOM: true}, true},
		{"signal  oom", guest.Exit{}, false},
		{"oom", guest.Exit{}, false},
		{"signal ", guest.Exit{}, false},
		{"code x", guest.Exit{}, false},
		{"", guest.Exit{}, false},
	} {
		got, err := guest.DecodeExit([]byte(tt.in))
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("DecodeExit(%q) = %+v, %v; want %+v (ok %v)", tt.in, got, err, tt.want, tt.ok)
		}
	}
}

// FuzzDecodeExit: an exit record the guest wrote either fails to decode or
// encodes back to itself.
func FuzzDecodeExit(f *testing.F) {
	for _, s := range []string{"code 0", "signal killed", "code 137 oom", "signal  oom", "code -1"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := guest.DecodeExit(b)
		if err != nil {
			return
		}
		if again, err := guest.DecodeExit(guest.EncodeExit(e)); err != nil || again != e {
			t.Fatalf("%q decodes to %+v, which round-trips to %+v, %v", b, e, again, err)
		}
	})
}

// FuzzParse: whatever the guest writes, Parse neither panics nor claims
// more bytes than it was given, and frames it returns are well formed.
func FuzzParse(f *testing.F) {
	f.Add([]byte("1\x00\x00\x00\x02hiX\x00\x00\x00\x06code 0"))
	f.Add([]byte("Z\xff\xff\xff\xff"))
	f.Fuzz(func(t *testing.T, b []byte) {
		fs, used, _ := guest.Parse(b)
		if used < 0 || used > len(b) {
			t.Fatalf("used %d of %d bytes", used, len(b))
		}
		n := 0
		for _, fr := range fs {
			if len(fr.Payload) > guest.MaxPayload {
				t.Fatalf("payload of %d bytes", len(fr.Payload))
			}
			n += 5 + len(fr.Payload)
		}
		if n != used {
			t.Fatalf("frames take %d bytes, Parse says %d", n, used)
		}
	})
}
