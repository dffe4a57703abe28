// Test app of the `go` image: a static (CGO_ENABLED=0) HTTP server on port 8080 (or os.Args[1])
// in an image without libc. Each request resolves `localhost` with the pure-Go resolver and
// answers 200 "go ok"; a failed lookup is logged but still answers 200, since the image has no
// /etc/hosts on purpose.
package main

import (
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
)

func main() {
	port := "8080"
	if len(os.Args) > 1 {
		port = os.Args[1]
	}
	http.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if _, err := net.LookupHost("localhost"); err != nil {
			log.Printf("lookup localhost: %v", err)
		}
		w.Header().Set("Content-Type", "text/plain")
		fmt.Fprint(w, "go ok")
	})
	log.Printf("go server listening on 0.0.0.0:%s", port)
	log.Fatal(http.ListenAndServe("0.0.0.0:"+port, nil))
}
