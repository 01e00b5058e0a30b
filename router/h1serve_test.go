package router

import (
	"bufio"
	"bytes"
	"io"
	"net/http"
	"reflect"
	"testing"
)

// FuzzSimpleRequest: the serving loop's parser never panics, and every
// request it accepts is one net/http reads the same way (method, target,
// Host, headers, Close); everything else goes to net/http.
func FuzzSimpleRequest(f *testing.F) {
	f.Add("GET / HTTP/1.1\r\nHost: a.localhost\r\n\r\n")
	f.Add("GET /p?q=1 HTTP/1.1\r\nhost: a\r\nx-a:  b \r\nX-A: c\r\nConnection: close\r\n\r\n")
	f.Add("HEAD /%41 HTTP/1.1\r\nHost: a\r\nUser-Agent: \t\r\n\r\n")
	f.Add("GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n")
	f.Add("GET / HTTP/1.1\r\nHost: a\r\n folded\r\n\r\n")
	f.Add("GET / HTTP/1.1\nHost: a\n\n")
	f.Add("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n")
	f.Add("GET //x HTTP/1.1\r\nHost: a\r\nA b: c\r\n\r\n")
	f.Fuzz(func(t *testing.T, raw string) {
		head, err := peekHead(bufio.NewReaderSize(bytes.NewReader([]byte(raw)), h1BufSize))
		if err != nil || head == nil {
			return
		}
		got, ok := parseSimpleRequest(head)
		if !ok {
			return
		}
		want, err := http.ReadRequest(bufio.NewReader(bytes.NewReader(head)))
		if err != nil {
			t.Fatalf("the loop accepts %q, net/http refuses it: %v", head, err)
		}
		if got.Method != want.Method || got.RequestURI != want.RequestURI || got.URL.String() != want.URL.String() ||
			got.Host != want.Host || got.Close != want.Close || got.ContentLength != 0 || want.ContentLength != 0 {
			t.Fatalf("%q: loop %s %s host %q close %v, net/http %s %s host %q close %v", head, got.Method, got.URL,
				got.Host, got.Close, want.Method, want.URL, want.Host, want.Close)
		}
		wh := want.Header.Clone()
		delete(wh, "Host")
		if len(got.Header) == 0 && len(wh) == 0 {
			return
		}
		if !reflect.DeepEqual(got.Header, wh) {
			t.Fatalf("%q: loop headers %v, net/http %v", head, got.Header, wh)
		}
	})
}

// The writer sends a held-back body with a Content-Length, a flushed one
// chunked with its trailers, and nothing for HEAD.
func TestH1WriterFraming(t *testing.T) {
	cases := []struct {
		name, method string
		handler      func(w http.ResponseWriter)
		want         string
	}{
		{"small", "GET", func(w http.ResponseWriter) {
			w.Header().Set("Date", "d")
			w.Header().Set("Content-Type", "text/plain")
			_, _ = w.Write([]byte("hello"))
		}, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Type: text/plain\r\nDate: d\r\n\r\nhello"},
		{"flushed with trailer", "GET", func(w http.ResponseWriter) {
			w.Header().Set("Date", "d")
			w.Header().Set("Trailer", "X-T")
			w.WriteHeader(201)
			_, _ = w.Write([]byte("ab"))
			w.(http.Flusher).Flush()
			w.Header().Set("X-T", "v")
		}, "HTTP/1.1 201 Created\r\nContent-Type: text/plain; charset=utf-8\r\nDate: d\r\nTrailer: X-T\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nab\r\n0\r\nX-T: v\r\n\r\n"},
		{"head", "HEAD", func(w http.ResponseWriter) {
			w.Header().Set("Date", "d")
			w.Header().Set("Content-Length", "7")
			_, _ = w.Write([]byte("ignored"))
		}, "HTTP/1.1 200 OK\r\nContent-Length: 7\r\nDate: d\r\n\r\n"},
		{"close", "GET", func(w http.ResponseWriter) {
			w.Header().Set("Date", "d")
			w.Header().Set("Connection", "close")
			w.WriteHeader(204)
		}, "HTTP/1.1 204 No Content\r\nDate: d\r\nConnection: close\r\n\r\n"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var out bytes.Buffer
			hc := &h1Conn{bw: bufio.NewWriter(&out)}
			req, _ := http.NewRequest(c.method, "http://a/", nil)
			hc.w.reset(hc, req)
			c.handler(&hc.w)
			if err := hc.w.finish(); err != nil {
				t.Fatal(err)
			}
			if out.String() != c.want {
				t.Fatalf("got  %q\nwant %q", out.String(), c.want)
			}
			if got := hc.w.closeAfter; got != (c.name == "close") {
				t.Fatalf("closeAfter %v", got)
			}
		})
	}
}

// FuzzSimpleResponse: every backend response head the lean path's parser
// accepts is read as http.ReadResponse reads it (status, headers, length,
// Close, body).
func FuzzSimpleResponse(f *testing.F) {
	f.Add("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Type: text/plain\r\n\r\nhello", false)
	f.Add("HTTP/1.1 204 No Content\r\nDate: x\r\n\r\n", false)
	f.Add("HTTP/1.1 304 Not Modified\r\nContent-Length: 9\r\n\r\n", false)
	f.Add("HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\n", true)
	f.Add("HTTP/1.1 404\r\ncontent-length: 0\r\nconnection: close\r\n\r\n", false)
	f.Add("HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\nab", false)
	f.Add("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", false)
	f.Fuzz(func(t *testing.T, raw string, head bool) {
		method := "GET"
		if head {
			method = "HEAD"
		}
		req, _ := http.NewRequest(method, "http://a/", nil)
		br := bufio.NewReaderSize(bytes.NewReader([]byte(raw)), 16<<10)
		_, _ = br.Peek(1)
		got, ok := readSimpleResponse(br, req)
		if !ok {
			if br.Buffered() != len(raw) && len(raw) <= 16<<10 {
				t.Fatalf("%q refused but consumed", raw)
			}
			return
		}
		want, err := http.ReadResponse(bufio.NewReader(bytes.NewReader([]byte(raw))), req)
		if err != nil {
			t.Fatalf("the parser accepts %q, net/http refuses it: %v", raw, err)
		}
		if got.StatusCode != want.StatusCode || got.Status != want.Status || got.ContentLength != want.ContentLength ||
			got.Close != want.Close || got.ProtoMajor != want.ProtoMajor || got.ProtoMinor != want.ProtoMinor {
			t.Fatalf("%q: parser %d %q len %d close %v, net/http %d %q len %d close %v", raw, got.StatusCode, got.Status,
				got.ContentLength, got.Close, want.StatusCode, want.Status, want.ContentLength, want.Close)
		}
		if !(len(got.Header) == 0 && len(want.Header) == 0) && !reflect.DeepEqual(got.Header, want.Header) {
			t.Fatalf("%q: parser headers %v, net/http %v", raw, got.Header, want.Header)
		}
		gb, gerr := io.ReadAll(got.Body)
		wb, werr := io.ReadAll(want.Body)
		if !bytes.Equal(gb, wb) || (gerr == nil) != (werr == nil) {
			t.Fatalf("%q: parser body %q (%v), net/http %q (%v)", raw, gb, gerr, wb, werr)
		}
		if (got.Body == http.NoBody) != (want.Body == http.NoBody) {
			t.Fatalf("%q: parser NoBody %v, net/http %v", raw, got.Body == http.NoBody, want.Body == http.NoBody)
		}
	})
}
