// Command httpprog is a tiny net/http server whose handler takes a
// sync.Mutex: the binary goprobe's tests analyse, built with several Go
// toolchains. With -check it verifies runtime offsets against itself. It has its own go.mod (go 1.22) so old
// toolchains can build it.
package main

import (
	"flag"
	"fmt"
	"log"
	"net/http"
	"sync"
)

var (
	mu    sync.Mutex
	count int
)

func handle(w http.ResponseWriter, r *http.Request) {
	mu.Lock()
	count++
	n := count
	mu.Unlock()
	fmt.Fprintf(w, "%d\n", n)
}

func main() {
	addr := flag.String("addr", "127.0.0.1:0", "listen address")
	check := flag.String("check", "", "check runtime offsets `tls,goid,m,curg,procid` against this process and exit")
	flag.Parse()
	if *check != "" {
		var o [5]int64
		if _, err := fmt.Sscanf(*check, "%d,%d,%d,%d,%d", &o[0], &o[1], &o[2], &o[3], &o[4]); err != nil {
			log.Fatalf("-check: %v", err)
		}
		// Check on a goroutine with a large id, so a wrong offset that
		// happens to hold a small number does not pass.
		for i := 0; i < 1000; i++ {
			done := make(chan struct{})
			go func() { close(done) }()
			<-done
		}
		errc := make(chan error)
		go func() { errc <- checkOffsets(o[0], o[1], o[2], o[3], o[4]) }()
		if err := <-errc; err != nil {
			log.Fatalf("check: %v", err)
		}
		fmt.Println("ok")
		return
	}
	http.HandleFunc("/", handle)
	log.Fatal(http.ListenAndServe(*addr, nil))
}
