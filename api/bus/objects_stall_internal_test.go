package bus

import (
	"io"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/strata-paas/strata/api"
)

// stuckResult is an object whose chunks stop coming after the first read.
type stuckResult struct {
	jetstream.ObjectResult
	pr *io.PipeReader
}

func (s stuckResult) Read(p []byte) (int, error) { return s.pr.Read(p) }
func (s stuckResult) Close() error               { return s.pr.Close() }

// A Read that waits longer than the stall time for the next chunk fails
// with unavailable instead of hanging.
func TestObjectReaderStall(t *testing.T) {
	pr, pw := io.Pipe()
	go func() { _, _ = pw.Write([]byte("first")) }() // then nothing more
	r := &objectReader{res: stuckResult{pr: pr}, ref: "sha256:" + api.BlobRef(strings.Repeat("0", 64)), cancel: func() {}, stall: 100 * time.Millisecond}
	buf := make([]byte, 16)
	if n, err := r.Read(buf); err != nil || string(buf[:n]) != "first" {
		t.Fatalf("first read: %q, %v", buf[:n], err)
	}
	done := make(chan error, 1)
	go func() { _, err := r.Read(buf); done <- err }()
	select {
	case err := <-done:
		if api.ErrorCode(err) != api.EUnavailable || !strings.Contains(err.Error(), "nothing arrived") {
			t.Fatalf("stalled read: %v, want unavailable naming the stall", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a stalled read did not end")
	}
	_ = r.Close()
}
