// Command fakesvc is a tiny HTTP service for the `tailgate run` tests. Its
// behaviour is chosen by FAKE_MODE: healthy (default), exit-at-start,
// never-healthy, or crash-after (exits 2 after FAKE_CRASH_AFTER requests).
package main

import (
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"sync/atomic"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:8080", "listen address")
	flag.Parse()
	mode := os.Getenv("FAKE_MODE")
	fmt.Printf("fakesvc: mode %q, uid %d, greeting %q\n", mode, os.Getuid(), os.Getenv("FAKE_GREETING"))
	if mode == "exit-at-start" {
		fmt.Println("fakesvc: open index: no such file or directory")
		os.Exit(3)
	}
	crashAfter, _ := strconv.ParseInt(os.Getenv("FAKE_CRASH_AFTER"), 10, 64)
	var n atomic.Int64
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) {
		if mode == "never-healthy" {
			http.Error(w, "still loading", http.StatusServiceUnavailable)
			return
		}
		io.WriteString(w, "ok\n")
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		if k := n.Add(1); mode == "crash-after" && k >= crashAfter {
			fmt.Printf("fakesvc: panic: simulated crash after %d requests\n", k)
			os.Exit(2)
		}
		io.WriteString(w, `{"id":"1"}`)
	})
	if err := http.ListenAndServe(*addr, mux); err != nil {
		fmt.Println("fakesvc:", err)
		os.Exit(1)
	}
}
