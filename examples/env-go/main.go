// Command envgo is Strata's config-var example: its web process answers with
// the value of $GREETING, and `envgo worker` (the Procfile's worker process)
// logs a line every second without listening on any port.
package main

import (
	"fmt"
	"log"
	"net/http"
	"os"
	"time"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "worker" {
		for i := 0; ; i++ {
			log.Printf("worker tick %d (release %s)", i, os.Getenv("STRATA_RELEASE"))
			time.Sleep(time.Second)
		}
	}
	port := os.Getenv("PORT")
	if port == "" {
		port = "8080"
	}
	http.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		greeting := os.Getenv("GREETING")
		if greeting == "" {
			greeting = "(GREETING is not set)"
		}
		fmt.Fprintf(w, "%s (instance %s, release %s)\n", greeting, os.Getenv("STRATA_INSTANCE_INDEX"), os.Getenv("STRATA_RELEASE"))
	})
	log.Printf("envgo listening on :%s", port)
	log.Fatal(http.ListenAndServe(":"+port, nil))
}
