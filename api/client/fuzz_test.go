package client_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/strata-paas/strata/api"
	"github.com/strata-paas/strata/api/client"
)

// bodyServer answers every request with the current body and type.
type bodyServer struct {
	mu    sync.Mutex
	body  []byte
	ctype string
}

func (b *bodyServer) set(body []byte, ctype string) {
	b.mu.Lock()
	b.body, b.ctype = body, ctype
	b.mu.Unlock()
}

func (b *bodyServer) ServeHTTP(w http.ResponseWriter, _ *http.Request) {
	b.mu.Lock()
	body, ctype := b.body, b.ctype
	b.mu.Unlock()
	w.Header().Set("Content-Type", ctype)
	w.Write(body)
}

// FuzzPushStream feeds arbitrary NDJSON to Push: it must return a result or
// an *api.Error, never panic.
func FuzzPushStream(f *testing.F) {
	f.Add([]byte(`{"type":"log","line":"x"}` + "\n" + `{"type":"result","result":{"running":1}}` + "\n"))
	f.Add([]byte(`{"type":"error","error":{"code":"build_failed","message":"m"}}`))
	f.Add([]byte(`{"type":"result"}`))
	f.Add([]byte("{\n"))
	bs := &bodyServer{}
	srv := httptest.NewServer(bs)
	defer srv.Close()
	c := client.New(srv.URL, "t")
	f.Fuzz(func(t *testing.T, body []byte) {
		bs.set(body, "application/x-ndjson")
		res, err := c.Push(context.Background(), "a", strings.NewReader(""), client.PushOptions{OnEvent: func(api.DeployEvent) {}})
		if (res == nil) == (err == nil) {
			t.Fatalf("Push returned %v and %v: want exactly one", res, err)
		}
		if err != nil && api.ErrorCode(err) == "" {
			t.Fatalf("error without code: %v", err)
		}
	})
}

// FuzzLogStream feeds an arbitrary event stream to a followed Logs.
func FuzzLogStream(f *testing.F) {
	f.Add([]byte(": keepalive\n\ndata: {\"line\":\"x\"}\n\n"))
	f.Add([]byte("event: error\ndata: {\"error\":{\"code\":\"internal\",\"message\":\"m\"}}\n\n"))
	f.Add([]byte("data: {\ndata: }\n\n"))
	bs := &bodyServer{}
	srv := httptest.NewServer(bs)
	defer srv.Close()
	c := client.New(srv.URL, "t")
	f.Fuzz(func(t *testing.T, body []byte) {
		bs.set(body, "text/event-stream")
		err := c.Logs(context.Background(), "a", client.LogOptions{Follow: true}, func(api.LogEnvelope) error { return nil })
		if err != nil {
			if _, ok := err.(*api.Error); !ok {
				t.Fatalf("error %T %v, want *api.Error", err, err)
			}
		}
	})
}
