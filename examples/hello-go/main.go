// Command hello is Strata's example app: it answers every request with a
// greeting on the port given in $PORT.
package main

import (
	"fmt"
	"log"
	"net/http"
	"os"
)

const greeting = "Hello from Strata!"

func main() {
	port := os.Getenv("PORT")
	if port == "" {
		port = "8080"
	}
	http.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "%s (instance %s, release %s)\n", greeting,
			os.Getenv("STRATA_INSTANCE_INDEX"), os.Getenv("STRATA_RELEASE"))
	})
	http.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, "ok")
	})
	log.Printf("hello listening on :%s", port)
	log.Fatal(http.ListenAndServe(":"+port, nil))
}
