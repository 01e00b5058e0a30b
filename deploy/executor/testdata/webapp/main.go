// Command webapp is the test app the executor tests put in droplets: it
// listens on $PORT, logs, and exits on request.
package main

import (
	"fmt"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"sync/atomic"
	"syscall"
)

func main() {
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM)
	go func() {
		<-sig
		fmt.Println("got SIGTERM, bye")
		os.Exit(0)
	}()
	http.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		fmt.Printf("request %s\n", r.URL.Path)
		ns, _ := os.Readlink("/proc/self/ns/pid") // the pid is one of this PID namespace
		fmt.Fprintf(w, "hello from %s/%s pid=%d pidns=%s greeting=%s", os.Getenv("STRATA_APP"), os.Getenv("STRATA_INSTANCE_INDEX"), os.Getpid(), ns, os.Getenv("GREETING"))
	})
	var sick atomic.Bool
	http.HandleFunc("/sick", func(w http.ResponseWriter, r *http.Request) { sick.Store(true) })
	http.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) {
		if sick.Load() {
			w.WriteHeader(http.StatusInternalServerError)
		}
	})
	http.HandleFunc("/crash", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(os.Stderr, "crashing on request")
		os.Exit(3)
	})
	port, _ := strconv.Atoi(os.Getenv("PORT"))
	fmt.Printf("listening on %d\n", port)
	// Every address unless WEBAPP_HOST says: an isolated process instance
	// and a container have networks of their own, reached at their address.
	host := os.Getenv("WEBAPP_HOST")
	if err := http.ListenAndServe(fmt.Sprintf("%s:%d", host, port), nil); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
