package load

import (
	"bytes"
	"encoding/binary"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestWindowRoundTrip(t *testing.T) {
	path := filepath.Join(t.TempDir(), "w.bin")
	hdr := WindowHeader{Interval: 2 * time.Millisecond, StartMono: 123_456_789}
	ww, err := CreateWindowFile(path, hdr)
	if err != nil {
		t.Fatal(err)
	}
	want := []Window{
		{Seq: 0, Intended: 1_000, Sent: 1_100, Received: 5_000, Status: 200},
		{Seq: 7, Intended: -5, Sent: 1 << 62, Received: 1<<62 + 1, Status: 0},
		{Seq: 1<<64 - 1, Intended: 9, Sent: 8, Received: 20, Status: 65535},
	}
	for _, w := range want {
		if err := ww.Write(w); err != nil {
			t.Fatal(err)
		}
	}
	if err := ww.Close(); err != nil {
		t.Fatal(err)
	}
	st, _ := os.Stat(path)
	if st.Size() != windowHeaderSize+int64(len(want))*windowRecordSize {
		t.Errorf("file size %d, want %d", st.Size(), windowHeaderSize+len(want)*windowRecordSize)
	}
	got, err := ReadWindows(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) {
		t.Fatalf("read %d windows, want %d", len(got), len(want))
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("window %d = %+v, want %+v", i, got[i], want[i])
		}
	}
	f, _ := os.Open(path)
	defer f.Close()
	wr, err := NewWindowReader(f)
	if err != nil {
		t.Fatal(err)
	}
	if wr.Header != (WindowHeader{Version: 1, ClockID: 1, Interval: hdr.Interval, StartMono: hdr.StartMono}) {
		t.Errorf("header %+v", wr.Header)
	}
}

func TestWindowMethods(t *testing.T) {
	tests := []struct {
		w                 Window
		lat, service, lag time.Duration
	}{
		{Window{Intended: 100, Sent: 150, Received: 400}, 300, 250, 50},
		// A hit can start a hair before the estimated schedule: the
		// corrected latency is then never below the service time.
		{Window{Intended: 100, Sent: 90, Received: 400}, 310, 310, -10},
	}
	for _, tt := range tests {
		if tt.w.Latency() != tt.lat || tt.w.ServiceTime() != tt.service || tt.w.Lag() != tt.lag {
			t.Errorf("%+v: latency %v service %v lag %v, want %v %v %v", tt.w,
				tt.w.Latency(), tt.w.ServiceTime(), tt.w.Lag(), tt.lat, tt.service, tt.lag)
		}
	}
}

func TestWindowReaderRejectsBadFiles(t *testing.T) {
	var good bytes.Buffer
	ww, _ := NewWindowWriter(&good, WindowHeader{Interval: time.Millisecond})
	_ = ww.Write(Window{Seq: 1, Status: 200})
	_ = ww.Write(Window{Seq: 2, Status: 200})
	_ = ww.Flush()
	g := good.Bytes()
	patch := func(off int, v uint32) []byte {
		b := append([]byte(nil), g...)
		binary.LittleEndian.PutUint32(b[off:], v)
		return b
	}
	tests := []struct {
		name string
		data []byte
		want string
	}{
		{"empty", nil, "read windows header"},
		{"short header", g[:20], "read windows header"},
		{"bad magic", append([]byte("NOTWINDO"), g[8:]...), "bad magic"},
		{"future version", patch(8, 99), "version 99 not supported"},
		{"small record", patch(12, 8), "record size 8"},
		{"other clock", patch(16, 0), "clock id 0"},
		{"truncated record", g[:len(g)-3], "window 1: truncated record"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "w.bin")
			if err := os.WriteFile(path, tt.data, 0o644); err != nil {
				t.Fatal(err)
			}
			_, err := ReadWindows(path)
			if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), path) {
				t.Errorf("err = %v, want it to name the file and contain %q", err, tt.want)
			}
		})
	}

	// A larger record size from a later minor version is skipped over.
	b := patch(12, windowRecordSize+6)
	b = b[:windowHeaderSize]
	for i := 0; i < 2; i++ {
		rec := make([]byte, windowRecordSize+6)
		binary.LittleEndian.PutUint64(rec, uint64(10+i))
		b = append(b, rec...)
	}
	wr, err := NewWindowReader(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 2; i++ {
		w, err := wr.Next()
		if err != nil || w.Seq != uint64(10+i) {
			t.Fatalf("record %d: %+v, %v", i, w, err)
		}
	}
	if _, err := wr.Next(); err != io.EOF {
		t.Errorf("after the last record: %v, want io.EOF", err)
	}
}
