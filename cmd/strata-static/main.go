package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path"
	"strings"
	"syscall"
	"time"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	m := &Main{Stderr: os.Stderr, Getenv: os.Getenv}
	if err := m.Run(ctx, os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "strata-static:", err)
		os.Exit(1)
	}
}

// Main is the program, runnable from tests.
type Main struct {
	Stderr io.Writer
	Getenv func(string) string
	// Ready, if set, receives the listening address once serving.
	Ready func(addr string)
}

// Run parses args, serves until ctx ends, then shuts down gracefully.
func (m *Main) Run(ctx context.Context, args []string) error {
	fl := flag.NewFlagSet("strata-static", flag.ContinueOnError)
	fl.SetOutput(m.Stderr)
	root := fl.String("root", "public", "directory to serve")
	addr := fl.String("addr", "", "listen address (default :$PORT, or :8080)")
	grace := fl.Duration("grace", 10*time.Second, "how long to let requests finish on shutdown")
	if err := fl.Parse(args); err != nil {
		return err
	}
	if *addr == "" {
		port := m.Getenv("PORT")
		if port == "" {
			port = "8080"
		}
		*addr = ":" + port
	}
	r, err := os.OpenRoot(*root)
	if err != nil {
		return fmt.Errorf("open root: %w", err)
	}
	defer r.Close()
	log := slog.New(slog.NewTextHandler(m.Stderr, nil))
	srv := &http.Server{
		Handler:           Handler(r.FS()),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	log.Info("static.listening", "addr", ln.Addr().String(), "root", *root)
	if m.Ready != nil {
		m.Ready(ln.Addr().String())
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	log.Info("static.shutdown")
	sctx, cancel := context.WithTimeout(context.Background(), *grace)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return err
	}
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// Handler serves fsys without directory listings or dotfiles.
func Handler(fsys fs.FS) http.Handler {
	files := http.FileServerFS(fsys)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		name := strings.TrimPrefix(path.Clean("/"+r.URL.Path), "/")
		if name == "" {
			name = "."
		}
		for _, part := range strings.Split(name, "/") {
			if strings.HasPrefix(part, ".") && part != "." && part != ".well-known" {
				http.NotFound(w, r)
				return
			}
		}
		fi, err := fs.Stat(fsys, name)
		if err != nil {
			http.NotFound(w, r)
			return
		}
		served := name
		if fi.IsDir() {
			served = path.Join(name, "index.html")
			if _, err := fs.Stat(fsys, served); err != nil {
				http.NotFound(w, r) // no listings
				return
			}
		}
		if path.Ext(served) == ".html" {
			w.Header().Set("Cache-Control", "no-cache")
		} else {
			w.Header().Set("Cache-Control", "public, max-age=3600")
		}
		w.Header().Set("X-Content-Type-Options", "nosniff")
		files.ServeHTTP(w, r)
	})
}
