package router_test

import (
	"bufio"
	"crypto/sha1"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/strata-paas/strata/api"
	"github.com/strata-paas/strata/router"
	"github.com/strata-paas/strata/router/registry"
)

// holdBackend answers its name at once, except /hold which blocks until
// release is closed (arrival is signalled on held).
func holdBackend(t *testing.T, name string, held chan<- string, release <-chan struct{}) *httptest.Server {
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/hold" {
			held <- name
			<-release
		}
		_, _ = io.WriteString(w, name)
	}))
	t.Cleanup(s.Close)
	return s
}

func TestLeastConnections(t *testing.T) {
	tests := []struct {
		algo string
		// wantOther is how many of 10 quick requests go to the endpoint that
		// is not busy with the held request.
		wantOther int
	}{
		{registry.LBLeastConn, 10},
		{"", 5}, // round-robin ignores load
		{registry.LBRoundRobin, 5},
	}
	for _, tt := range tests {
		t.Run("algo="+tt.algo, func(t *testing.T) {
			h := newHarness(t, router.Config{})
			held := make(chan string, 1)
			release := make(chan struct{})
			for _, n := range []string{"a", "b"} {
				s := holdBackend(t, n, held, release)
				ip, port, _ := net.SplitHostPort(strings.TrimPrefix(s.URL, "http://"))
				p, _ := strconv.Atoi(port)
				tags := map[string]string{"app_name": "lc"}
				if tt.algo != "" {
					tags[registry.TagLBAlgo] = tt.algo
				}
				if err := h.reg.Register(api.RouterRegistration{Host: ip, Port: p, URIs: []string{"lc.localhost"}, PrivateInstanceID: n, Tags: tags}); err != nil {
					t.Fatal(err)
				}
			}
			done := make(chan struct{})
			go func() {
				defer close(done)
				h.do("GET", "lc.localhost", "/hold", nil)
			}()
			busy := <-held
			counts := map[string]int{}
			for range 10 {
				_, body := h.do("GET", "lc.localhost", "/quick", nil)
				counts[body]++
			}
			close(release)
			<-done
			if other := 10 - counts[busy]; other != tt.wantOther {
				t.Errorf("%d of 10 requests went to the idle endpoint while %s was busy, want %d (%v)", other, busy, tt.wantOther, counts)
			}
		})
	}
}

// TestNoRetryAfterBodySent: a backend that reads the whole request and then
// drops the connection gets the request once; it is not replayed on another
// endpoint (the client gets 502).
func TestNoRetryAfterBodySent(t *testing.T) {
	h := newHarness(t, router.Config{})
	var dropped atomic.Int32
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				req, err := http.ReadRequest(bufio.NewReader(c))
				if err != nil {
					return
				}
				if b, _ := io.ReadAll(req.Body); string(b) == "payload" {
					dropped.Add(1)
				}
			}()
		}
	}()
	good := newRecorder(t)
	h.register("once.localhost", "http://"+ln.Addr().String(), "drop-0", "once")
	h.register("once.localhost", good.srv.URL, "good-0", "once")

	var ok, bad int
	for range 10 {
		req, _ := http.NewRequest("POST", h.url+"/", strings.NewReader("payload"))
		req.Host = "once.localhost"
		resp, err := h.client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		switch resp.StatusCode {
		case 200:
			ok++
		case 502:
			bad++
		default:
			t.Fatalf("status %d", resp.StatusCode)
		}
	}
	if bad == 0 || int(dropped.Load()) != bad {
		t.Errorf("%d requests got 502, the dropping backend read %d bodies; want equal and > 0", bad, dropped.Load())
	}
	if n := len(good.requests()); n != ok {
		t.Errorf("healthy backend saw %d requests for %d successes: a request was replayed after its body was sent", n, ok)
	}
}

// wsEcho is a minimal RFC 6455 server: handshake, then echo each frame.
func wsEcho(t *testing.T) *httptest.Server {
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.EqualFold(r.Header.Get("Upgrade"), "websocket") || r.Header.Get("Sec-WebSocket-Version") != "13" {
			http.Error(w, "websocket only", http.StatusBadRequest)
			return
		}
		accept := wsAccept(r.Header.Get("Sec-WebSocket-Key"))
		conn, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		defer conn.Close()
		_, _ = brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: " + accept + "\r\n\r\n")
		_ = brw.Flush()
		for {
			op, payload, err := wsRead(brw.Reader)
			if err != nil {
				return
			}
			if err := wsWrite(conn, op, payload, false); err != nil || op == 8 {
				return
			}
		}
	}))
	t.Cleanup(s.Close)
	return s
}

func wsAccept(key string) string {
	h := sha1.Sum([]byte(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"))
	return base64.StdEncoding.EncodeToString(h[:])
}

// wsWrite writes one final frame; clients mask.
func wsWrite(w io.Writer, op byte, payload []byte, mask bool) error {
	hdr := []byte{0x80 | op}
	m := byte(0)
	if mask {
		m = 0x80
	}
	switch n := len(payload); {
	case n < 126:
		hdr = append(hdr, m|byte(n))
	case n < 1<<16:
		hdr = append(hdr, m|126, byte(n>>8), byte(n))
	default:
		hdr = append(hdr, m|127)
		hdr = binary.BigEndian.AppendUint64(hdr, uint64(n))
	}
	body := payload
	if mask {
		key := [4]byte{0x12, 0x34, 0x56, 0x78}
		hdr = append(hdr, key[:]...)
		body = make([]byte, len(payload))
		for i, c := range payload {
			body[i] = c ^ key[i%4]
		}
	}
	_, err := w.Write(append(hdr, body...))
	return err
}

// wsRead reads one frame (no fragmentation) and unmasks it.
func wsRead(r *bufio.Reader) (op byte, payload []byte, err error) {
	var h [2]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return 0, nil, err
	}
	if h[0]&0x80 == 0 {
		return 0, nil, errors.New("fragmented frame")
	}
	op = h[0] & 0x0f
	n := uint64(h[1] & 0x7f)
	switch n {
	case 126:
		var b [2]byte
		if _, err := io.ReadFull(r, b[:]); err != nil {
			return 0, nil, err
		}
		n = uint64(binary.BigEndian.Uint16(b[:]))
	case 127:
		var b [8]byte
		if _, err := io.ReadFull(r, b[:]); err != nil {
			return 0, nil, err
		}
		n = binary.BigEndian.Uint64(b[:])
	}
	if n > 1<<20 {
		return 0, nil, errors.New("frame too large")
	}
	var key [4]byte
	masked := h[1]&0x80 != 0
	if masked {
		if _, err := io.ReadFull(r, key[:]); err != nil {
			return 0, nil, err
		}
	}
	payload = make([]byte, n)
	if _, err := io.ReadFull(r, payload); err != nil {
		return 0, nil, err
	}
	if masked {
		for i := range payload {
			payload[i] ^= key[i%4]
		}
	}
	return op, payload, nil
}

func TestWebSocketEcho(t *testing.T) {
	h := newHarness(t, router.Config{})
	h.register("ws.localhost", wsEcho(t).URL, "ws-0", "ws")

	const clients = 5
	var wg sync.WaitGroup
	for c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			conn, err := net.Dial("tcp", strings.TrimPrefix(h.url, "http://"))
			if err != nil {
				t.Error(err)
				return
			}
			defer conn.Close()
			_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
			key := base64.StdEncoding.EncodeToString([]byte("0123456789abcde" + strconv.Itoa(c)))
			_, _ = io.WriteString(conn, "GET /chat HTTP/1.1\r\nHost: ws.localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
				"Sec-WebSocket-Key: "+key+"\r\nSec-WebSocket-Version: 13\r\n\r\n")
			br := bufio.NewReader(conn)
			resp, err := http.ReadResponse(br, nil)
			if err != nil {
				t.Error(err)
				return
			}
			if resp.StatusCode != 101 || resp.Header.Get("Sec-WebSocket-Accept") != wsAccept(key) {
				t.Errorf("handshake: %d accept %q", resp.StatusCode, resp.Header.Get("Sec-WebSocket-Accept"))
				return
			}
			for i, msg := range []string{"hello " + strconv.Itoa(c), strings.Repeat("x", 300), strings.Repeat("y", 70000)} {
				if err := wsWrite(conn, 1, []byte(msg), true); err != nil {
					t.Error(err)
					return
				}
				op, got, err := wsRead(br)
				if err != nil || op != 1 || string(got) != msg {
					t.Errorf("client %d message %d: op %d, %d bytes, err %v; want the echo of %d bytes", c, i, op, len(got), err, len(msg))
					return
				}
			}
			if err := wsWrite(conn, 8, []byte{0x03, 0xe8}, true); err != nil {
				t.Error(err)
				return
			}
			if op, _, err := wsRead(br); err != nil || op != 8 {
				t.Errorf("close: op %d err %v", op, err)
			}
		}()
	}
	wg.Wait()
	// Each session is logged once, when the proxy's side of it ends.
	deadline := time.Now().Add(10 * time.Second)
	for {
		h.mu.Lock()
		n := 0
		for _, e := range h.logs {
			if strings.Contains(e.Line, "GET /chat 101 ") {
				n++
			}
		}
		h.mu.Unlock()
		if n == clients {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("access log has %d lines for the %d websocket sessions", n, clients)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
