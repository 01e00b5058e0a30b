package executor_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/strata-paas/strata/api"
	"github.com/strata-paas/strata/deploy/executor"
)

// trickle serves a blob a chunk at a time with a pause between chunks, and
// then, if hang is set, never ends (until the fetch's context does).
type trickle struct {
	chunks []string
	pause  time.Duration
	hang   bool
}

func (tr trickle) GetBlob(ctx context.Context, _ api.BlobRef) (io.ReadCloser, error) {
	pr, pw := io.Pipe()
	go func() {
		for _, c := range tr.chunks {
			select {
			case <-ctx.Done():
				pw.CloseWithError(ctx.Err())
				return
			case <-time.After(tr.pause):
			}
			if _, err := pw.Write([]byte(c)); err != nil {
				return
			}
		}
		if tr.hang {
			<-ctx.Done()
			pw.CloseWithError(ctx.Err())
			return
		}
		pw.Close()
	}()
	return pr, nil
}

func refOf(s string) api.BlobRef {
	sum := sha256.Sum256([]byte(s))
	return api.BlobRef("sha256:" + hex.EncodeToString(sum[:]))
}

// A droplet fetch that stops receiving ends after the stall time with an
// unavailable error (the start is retried) instead of hanging; one that
// keeps receiving, however slowly, is not cut.
func TestDropletFetchStall(t *testing.T) {
	chunks := []string{"aaaa", "bbbb", "cccc", "dddd"}
	ref := refOf(strings.Join(chunks, ""))
	stall := 200 * time.Millisecond

	err := executor.FetchDroplet(context.Background(), t.TempDir(), trickle{chunks: chunks[:2], pause: 10 * time.Millisecond, hang: true}, stall, ref)
	if api.ErrorCode(err) != api.EUnavailable || !strings.Contains(err.Error(), "nothing arrived") {
		t.Fatalf("stalled fetch: %v, want unavailable naming the stall", err)
	}
	// Each pause is under the stall time, the whole fetch well over it.
	if err := executor.FetchDroplet(context.Background(), t.TempDir(), trickle{chunks: chunks, pause: stall / 2}, stall, ref); err != nil {
		t.Fatalf("slow but steady fetch: %v", err)
	}
	// The caller's own cancellation is reported as such.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := executor.FetchDroplet(ctx, t.TempDir(), trickle{chunks: chunks, pause: time.Millisecond}, stall, ref); err == nil || strings.Contains(err.Error(), "nothing arrived") {
		t.Fatalf("cancelled fetch: %v, want the cancellation", err)
	}
}
