package bidder

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"syscall"
	"time"

	"github.com/prebid/openrtb/v20/openrtb2"
	"golang.org/x/sys/unix"
)

// Handler returns the bidder's HTTP API: POST /openrtb2/bid, GET /healthz,
// GET /metrics. A panic anywhere becomes a 500, never a crash.
func (b *Bidder) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/openrtb2/bid", b.serveBid)
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintf(w, "ok fixes=%s\n", b.cfg.Fixes)
	})
	mux.HandleFunc("/metrics", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
		b.WriteMetrics(w)
	})
	return b.recoverer(mux)
}

func (b *Bidder) recoverer(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				b.metrics.panics.Add(1)
				b.cfg.Logf("panic serving %s %s: %v", r.Method, r.URL.Path, v)
				http.Error(w, "internal error", http.StatusInternalServerError)
			}
		}()
		next.ServeHTTP(w, r)
	})
}

func (b *Bidder) serveBid(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	code := http.StatusOK
	defer func() { b.metrics.observe(code, time.Since(start)) }()
	fail := func(c int, msg string) {
		code = c
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		w.WriteHeader(c)
		io.WriteString(w, msg+"\n")
	}
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		fail(http.StatusMethodNotAllowed, "method "+r.Method+" not allowed: POST an OpenRTB BidRequest")
		return
	}
	if r.ContentLength > b.cfg.MaxBody {
		fail(http.StatusRequestEntityTooLarge, fmt.Sprintf("request body is %d bytes, over the %d-byte limit", r.ContentLength, b.cfg.MaxBody))
		return
	}

	var sc *scratch
	var body []byte
	var err error
	req := new(openrtb2.BidRequest)
	limited := http.MaxBytesReader(w, r.Body, b.cfg.MaxBody)
	if b.cfg.Fixes.GC {
		sc = b.scratch.Get().(*scratch)
		defer b.putScratch(sc)
		buf := bytes.NewBuffer(sc.body[:0])
		_, err = buf.ReadFrom(limited)
		body = buf.Bytes()
		sc.body = body
		sc.req = openrtb2.BidRequest{}
		req = &sc.req
	} else {
		body, err = io.ReadAll(limited)
	}
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			fail(http.StatusRequestEntityTooLarge, fmt.Sprintf("request body over the %d-byte limit", b.cfg.MaxBody))
			return
		}
		fail(http.StatusBadRequest, "read body: "+err.Error())
		return
	}
	if sc == nil {
		if err := SchemaCheck(body); err != nil {
			// The typed decoder's message names the field more precisely.
			if derr := DecodeRequest(body, req); derr != nil {
				err = derr
			}
			fail(http.StatusBadRequest, err.Error())
			return
		}
	}
	if err := DecodeRequest(body, req); err != nil {
		fail(http.StatusBadRequest, err.Error())
		return
	}

	tmax := b.cfg.DefaultTmax
	if req.TMax > 0 {
		tmax = min(time.Duration(req.TMax)*time.Millisecond, b.cfg.MaxTmax)
	}
	ctx, cancel := context.WithDeadline(r.Context(), start.Add(tmax))
	defer cancel()
	resp, reason := b.auction(ctx, req, sc)
	if resp == nil {
		b.metrics.nobid[reason].Add(1)
		code = http.StatusNoContent
		w.Header().Set("X-Nobid-Reason", reason)
		w.WriteHeader(code)
		return
	}
	b.metrics.bids.Add(1)
	var out []byte
	if sc != nil {
		buf := bytes.NewBuffer(sc.out[:0])
		err = json.NewEncoder(buf).Encode(resp)
		out = buf.Bytes()
		sc.out = out
	} else {
		out, err = json.Marshal(resp)
	}
	if err != nil {
		fail(http.StatusInternalServerError, "encode response: "+err.Error())
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Openrtb-Version", "2.6")
	w.Write(out)
}

// Listen opens a TCP listener on addr; with reusePort it sets SO_REUSEPORT
// so several bidders (one per NUMA node, started by `bidder launch`) can
// share the port.
func Listen(ctx context.Context, addr string, reusePort bool) (net.Listener, error) {
	lc := net.ListenConfig{}
	if reusePort {
		lc.Control = func(network, address string, c syscall.RawConn) error {
			var serr error
			if err := c.Control(func(fd uintptr) {
				serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEPORT, 1)
			}); err != nil {
				return err
			}
			return serr
		}
	}
	ln, err := lc.Listen(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen %s: %w", addr, err)
	}
	return ln, nil
}
