package main

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestHandler(t *testing.T) {
	dir := t.TempDir()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.WriteFile(filepath.Join(dir, "index.html"), []byte("<h1>home</h1>"), 0o644))
	must(os.MkdirAll(filepath.Join(dir, "css"), 0o755))
	must(os.WriteFile(filepath.Join(dir, "css", "site.css"), []byte("body{}"), 0o644))
	must(os.MkdirAll(filepath.Join(dir, "docs"), 0o755))
	must(os.WriteFile(filepath.Join(dir, "docs", "index.html"), []byte("docs"), 0o644))
	must(os.WriteFile(filepath.Join(dir, ".env"), []byte("SECRET=1"), 0o644))
	must(os.MkdirAll(filepath.Join(dir, ".well-known"), 0o755))
	must(os.WriteFile(filepath.Join(dir, ".well-known", "security.txt"), []byte("contact"), 0o644))
	outside := filepath.Join(t.TempDir(), "secret")
	must(os.WriteFile(outside, []byte("outside"), 0o644))
	must(os.Symlink(outside, filepath.Join(dir, "escape")))

	r, err := os.OpenRoot(dir)
	must(err)
	defer r.Close()
	srv := httptest.NewServer(Handler(r.FS()))
	defer srv.Close()

	tests := []struct {
		path       string
		wantStatus int
		wantBody   string
		wantCache  string
	}{
		{"/", 200, "<h1>home</h1>", "no-cache"},
		{"/css/site.css", 200, "body{}", "public, max-age=3600"},
		{"/css/", 404, "", ""},
		{"/docs/", 200, "docs", "no-cache"},
		{"/.env", 404, "", ""},
		{"/css/../.env", 404, "", ""},
		{"/.well-known/security.txt", 200, "contact", "public, max-age=3600"},
		{"/escape", 404, "", ""},
		{"/missing", 404, "", ""},
	}
	for _, tt := range tests {
		resp, err := http.Get(srv.URL + tt.path)
		must(err)
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tt.wantStatus {
			t.Errorf("GET %s: status %d, want %d", tt.path, resp.StatusCode, tt.wantStatus)
			continue
		}
		if tt.wantStatus == 200 {
			if string(body) != tt.wantBody {
				t.Errorf("GET %s: body %q, want %q", tt.path, body, tt.wantBody)
			}
			if got := resp.Header.Get("Cache-Control"); got != tt.wantCache {
				t.Errorf("GET %s: Cache-Control %q, want %q", tt.path, got, tt.wantCache)
			}
		}
	}
	req, _ := http.NewRequest(http.MethodPost, srv.URL+"/", nil)
	resp, err := http.DefaultClient.Do(req)
	must(err)
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST /: status %d, want 405", resp.StatusCode)
	}
}

func TestRunServesOnPortAndShutsDown(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "index.html"), []byte("hi"), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	addrc := make(chan string, 1)
	m := &Main{Stderr: io.Discard, Getenv: func(k string) string {
		if k == "PORT" {
			return "0"
		}
		return ""
	}, Ready: func(a string) { addrc <- a }}
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx, []string{"-root", dir}) }()
	var addr string
	select {
	case addr = <-addrc:
	case err := <-done:
		t.Fatalf("Run ended early: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("server did not start")
	}
	resp, err := http.Get("http://" + addr + "/")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(body) != "hi" {
		t.Fatalf("body %q, want hi", body)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run returned %v after shutdown", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("server did not shut down")
	}
}
