package load

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"time"
)

// Window is one measured request as the client saw it. All times are
// CLOCK_MONOTONIC nanoseconds, the clock bpf_ktime_get_ns reads, so kernel
// and runtime events join to windows without translation.
type Window struct {
	Seq      uint64 // vegeta's Result.Seq: 0-based hit number of the attack
	Intended int64  // when the constant-rate schedule meant to send it
	Sent     int64  // when vegeta actually started the hit
	Received int64  // when the response was read, or the error/timeout happened
	Status   uint16 // HTTP status; 0 on a transport error or timeout
}

// Latency is the coordinated-omission-corrected latency: from the intended
// send time (or the actual one, if a hit ever went early) to the response.
func (w Window) Latency() time.Duration {
	from := w.Intended
	if w.Sent < from {
		from = w.Sent
	}
	return time.Duration(w.Received - from)
}

// ServiceTime is the uncorrected latency, from actual send to response.
func (w Window) ServiceTime() time.Duration { return time.Duration(w.Received - w.Sent) }

// Lag is how late the attacker sent the request.
func (w Window) Lag() time.Duration { return time.Duration(w.Sent - w.Intended) }

// Windows file layout (little-endian), version 1:
//
//	header, 40 bytes:
//	  [0:8]   magic "TGWINDOW"
//	  [8:12]  version (uint32) = 1
//	  [12:16] record size in bytes (uint32) = 34
//	  [16:20] clock id (uint32) = 1, CLOCK_MONOTONIC
//	  [20:24] reserved, 0
//	  [24:32] interval between intended sends, ns (int64)
//	  [32:40] start of the measurement window, CLOCK_MONOTONIC ns (int64)
//	records, 34 bytes each, in completion order (not seq order):
//	  seq uint64, intended int64, sent int64, received int64, status uint16
//
// Readers must check the version and use the record size from the header,
// so later versions can append fields to a record.
const (
	windowMagic      = "TGWINDOW"
	WindowsVersion   = 1
	windowHeaderSize = 40
	windowRecordSize = 34
	clockMonotonicID = 1
)

// WindowHeader is the metadata at the head of a windows file.
type WindowHeader struct {
	Version   uint32
	ClockID   uint32        // 1: CLOCK_MONOTONIC
	Interval  time.Duration // between intended sends
	StartMono int64         // start of the measurement window (after warm-up)
}

// WindowWriter streams windows to a file in the compact binary format; it
// buffers, so Close (or Flush) must be called.
type WindowWriter struct {
	bw  *bufio.Writer
	c   io.Closer
	n   int64
	rec [windowRecordSize]byte
}

// NewWindowWriter writes the header to w and returns a writer for the
// records. If w is an io.Closer, Close closes it.
func NewWindowWriter(w io.Writer, h WindowHeader) (*WindowWriter, error) {
	ww := &WindowWriter{bw: bufio.NewWriterSize(w, 32<<10)}
	if c, ok := w.(io.Closer); ok {
		ww.c = c
	}
	var hdr [windowHeaderSize]byte
	copy(hdr[0:8], windowMagic)
	binary.LittleEndian.PutUint32(hdr[8:], WindowsVersion)
	binary.LittleEndian.PutUint32(hdr[12:], windowRecordSize)
	binary.LittleEndian.PutUint32(hdr[16:], clockMonotonicID)
	binary.LittleEndian.PutUint64(hdr[24:], uint64(h.Interval))
	binary.LittleEndian.PutUint64(hdr[32:], uint64(h.StartMono))
	if _, err := ww.bw.Write(hdr[:]); err != nil {
		return nil, fmt.Errorf("write windows header: %w", err)
	}
	return ww, nil
}

// CreateWindowFile creates (truncates) path and writes the header.
func CreateWindowFile(path string, h WindowHeader) (*WindowWriter, error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("create windows file: %w", err)
	}
	ww, err := NewWindowWriter(f, h)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return ww, nil
}

// Write appends one window.
func (ww *WindowWriter) Write(w Window) error {
	b := ww.rec[:]
	binary.LittleEndian.PutUint64(b[0:], w.Seq)
	binary.LittleEndian.PutUint64(b[8:], uint64(w.Intended))
	binary.LittleEndian.PutUint64(b[16:], uint64(w.Sent))
	binary.LittleEndian.PutUint64(b[24:], uint64(w.Received))
	binary.LittleEndian.PutUint16(b[32:], w.Status)
	if _, err := ww.bw.Write(b); err != nil {
		return fmt.Errorf("write window %d: %w", ww.n, err)
	}
	ww.n++
	return nil
}

// Count is the number of windows written.
func (ww *WindowWriter) Count() int64 { return ww.n }

// Flush writes buffered windows out.
func (ww *WindowWriter) Flush() error {
	if err := ww.bw.Flush(); err != nil {
		return fmt.Errorf("flush windows: %w", err)
	}
	return nil
}

// Close flushes and closes the underlying writer if it is a Closer.
func (ww *WindowWriter) Close() error {
	err := ww.Flush()
	if ww.c != nil {
		if cerr := ww.c.Close(); err == nil && cerr != nil {
			err = fmt.Errorf("close windows: %w", cerr)
		}
	}
	return err
}

// WindowReader reads a windows file record by record.
type WindowReader struct {
	Header  WindowHeader
	r       *bufio.Reader
	recSize int
	buf     []byte
	n       int64
}

// NewWindowReader reads and checks the header of a windows stream.
func NewWindowReader(r io.Reader) (*WindowReader, error) {
	br := bufio.NewReaderSize(r, 32<<10)
	var hdr [windowHeaderSize]byte
	if _, err := io.ReadFull(br, hdr[:]); err != nil {
		return nil, fmt.Errorf("read windows header: %w", err)
	}
	if string(hdr[0:8]) != windowMagic {
		return nil, fmt.Errorf("read windows header: bad magic %q, not a tailgate windows file", hdr[0:8])
	}
	h := WindowHeader{
		Version:   binary.LittleEndian.Uint32(hdr[8:]),
		ClockID:   binary.LittleEndian.Uint32(hdr[16:]),
		Interval:  time.Duration(binary.LittleEndian.Uint64(hdr[24:])),
		StartMono: int64(binary.LittleEndian.Uint64(hdr[32:])),
	}
	rs := int(binary.LittleEndian.Uint32(hdr[12:]))
	if h.Version < 1 || h.Version > WindowsVersion {
		return nil, fmt.Errorf("read windows header: version %d not supported (this build reads 1..%d)", h.Version, WindowsVersion)
	}
	if rs < windowRecordSize || rs > 1<<16 {
		return nil, fmt.Errorf("read windows header: record size %d invalid (want >= %d)", rs, windowRecordSize)
	}
	if h.ClockID != clockMonotonicID {
		return nil, fmt.Errorf("read windows header: clock id %d, want %d (CLOCK_MONOTONIC)", h.ClockID, clockMonotonicID)
	}
	return &WindowReader{Header: h, r: br, recSize: rs, buf: make([]byte, rs)}, nil
}

// Next returns the next window, or io.EOF after the last one.
func (wr *WindowReader) Next() (Window, error) {
	_, err := io.ReadFull(wr.r, wr.buf)
	switch {
	case errors.Is(err, io.EOF):
		return Window{}, io.EOF
	case errors.Is(err, io.ErrUnexpectedEOF):
		return Window{}, fmt.Errorf("window %d: truncated record", wr.n)
	case err != nil:
		return Window{}, fmt.Errorf("window %d: %w", wr.n, err)
	}
	b := wr.buf
	wr.n++
	return Window{
		Seq:      binary.LittleEndian.Uint64(b[0:]),
		Intended: int64(binary.LittleEndian.Uint64(b[8:])),
		Sent:     int64(binary.LittleEndian.Uint64(b[16:])),
		Received: int64(binary.LittleEndian.Uint64(b[24:])),
		Status:   binary.LittleEndian.Uint16(b[32:]),
	}, nil
}

// ReadWindows reads a whole windows file. Errors name the file and record.
func ReadWindows(path string) ([]Window, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read windows: %w", err)
	}
	defer f.Close()
	wr, err := NewWindowReader(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	var out []Window
	if st, err := f.Stat(); err == nil && st.Size() > windowHeaderSize {
		out = make([]Window, 0, (st.Size()-windowHeaderSize)/int64(wr.recSize))
	}
	for {
		w, err := wr.Next()
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		out = append(out, w)
	}
}
