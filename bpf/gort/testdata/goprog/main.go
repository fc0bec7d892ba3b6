// Command goprog is the target of package gort's live tests, built with the
// repo toolchain and with an older Go release (its own go.mod says go 1.22).
// Its handler reports its goroutine id in X-Goid, contends on a sync.Mutex
// held for a while by every request, and allocates; GET /gc runs a full
// garbage collection (two stop-the-world pauses).
package main

import (
	"bytes"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"runtime"
	"strconv"
	"sync"
	"time"
)

var (
	mu   sync.Mutex
	sink [][]byte
)

// goid parses this goroutine's id from runtime.Stack ("goroutine 42 [...").
func goid() uint64 {
	var buf [64]byte
	b := buf[:runtime.Stack(buf[:], false)]
	b = bytes.TrimPrefix(b, []byte("goroutine "))
	if i := bytes.IndexByte(b, ' '); i > 0 {
		b = b[:i]
	}
	n, _ := strconv.ParseUint(string(b), 10, 64)
	return n
}

//go:noinline
func holdLock(d time.Duration) {
	mu.Lock()
	for start := time.Now(); time.Since(start) < d; {
	}
	mu.Unlock()
}

func work(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("X-Goid", strconv.FormatUint(goid(), 10))
	holdLock(300 * time.Microsecond)
	for i := 0; i < 16; i++ {
		b := make([]byte, 32<<10)
		b[0] = byte(i)
		if i%4 == 0 {
			mu.Lock()
			sink = append(sink, b)
			if len(sink) > 256 {
				sink = sink[:0]
			}
			mu.Unlock()
		}
	}
	fmt.Fprintln(w, "ok")
}

func main() {
	addr := flag.String("addr", "127.0.0.1:0", "listen address")
	flag.Parse()
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatal(err)
	}
	http.HandleFunc("/work", work)
	http.HandleFunc("/gc", func(w http.ResponseWriter, r *http.Request) {
		runtime.GC()
		fmt.Fprintln(w, "ok")
	})
	fmt.Fprintf(os.Stdout, "listening %s\n", ln.Addr())
	log.Fatal(http.Serve(ln, nil))
}
