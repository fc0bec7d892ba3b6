package gort

import (
	"encoding/binary"
	"errors"
	"reflect"
	"strings"
	"testing"
)

func rawEvent(kind uint32, stack []uint64, stackLen int32) []byte {
	size := HeaderSize
	if kind == uint32(Block) {
		size = EventSize
	}
	b := make([]byte, size)
	le := binary.LittleEndian
	le.PutUint32(b[0:], kind)
	le.PutUint32(b[4:], 100)
	le.PutUint32(b[8:], 101)
	le.PutUint32(b[12:], 102)
	le.PutUint64(b[16:], 1000)
	le.PutUint64(b[24:], 2000)
	le.PutUint64(b[32:], 42)
	le.PutUint64(b[40:], 1500)
	le.PutUint64(b[48:], 21)
	le.PutUint32(b[56:], uint32(stackLen))
	for i, pc := range stack {
		le.PutUint64(b[HeaderSize+8*i:], pc)
	}
	return b
}

func TestDecodeEvent(t *testing.T) {
	tests := []struct {
		name    string
		raw     []byte
		want    Event
		wantErr error
	}{
		{
			name: "request header only",
			raw:  rawEvent(uint32(Request), nil, 0),
			want: Event{Kind: Request, PID: 100, TID: 101, EndTID: 102, StartNs: 1000, EndNs: 2000, Goid: 42, ReadyNs: 1500, Reason: 21},
		},
		{
			name: "block with stack, unreadable return address skipped",
			raw:  rawEvent(uint32(Block), []uint64{0x401000, 0, 0x402000, 0x403000}, 4),
			want: Event{Kind: Block, PID: 100, TID: 101, EndTID: 102, StartNs: 1000, EndNs: 2000, Goid: 42, ReadyNs: 1500, Reason: 21,
				Stack: []uint64{0x401000, 0x402000, 0x403000}},
		},
		{
			name: "block stack stops at zero",
			raw:  rawEvent(uint32(Block), []uint64{0x401000, 0x402000, 0, 0x403000}, 4),
			want: Event{Kind: Block, PID: 100, TID: 101, EndTID: 102, StartNs: 1000, EndNs: 2000, Goid: 42, ReadyNs: 1500, Reason: 21,
				Stack: []uint64{0x401000, 0x402000}},
		},
		{
			name: "block stack error",
			raw:  rawEvent(uint32(Block), nil, -14),
			want: Event{Kind: Block, PID: 100, TID: 101, EndTID: 102, StartNs: 1000, EndNs: 2000, Goid: 42, ReadyNs: 1500, Reason: 21, StackErr: -14},
		},
		{
			name: "stw: the accounted end travels in ready_ns",
			raw:  rawEvent(uint32(STW), nil, 0),
			want: Event{Kind: STW, PID: 100, TID: 101, EndTID: 102, StartNs: 1000, EndNs: 2000, Goid: 42, AccountedEndNs: 1500, Reason: 21},
		},
		{name: "short", raw: make([]byte, 10), wantErr: errShortRecord},
		{name: "short block", raw: rawEvent(uint32(Block), nil, 0)[:HeaderSize], wantErr: errShortRecord},
		{name: "unknown kind", raw: rawEvent(77, nil, 0)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := DecodeEvent(tc.raw)
			if tc.name == "unknown kind" {
				if err == nil {
					t.Fatal("want an error for an unknown kind")
				}
				return
			}
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("err = %v, want %v", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

func TestIsGCSTW(t *testing.T) {
	for _, tc := range []struct {
		e    Event
		want bool
	}{
		{Event{Kind: STW, Reason: STWGCMarkTerm}, true},
		{Event{Kind: STW, Reason: STWGCSweepTerm}, true},
		{Event{Kind: STW, Reason: 0}, false},
		{Event{Kind: STW, Reason: 5}, false},
		{Event{Kind: Block, Reason: STWGCMarkTerm}, false},
	} {
		if got := tc.e.IsGCSTW(); got != tc.want {
			t.Errorf("%+v: IsGCSTW = %v, want %v", tc.e, got, tc.want)
		}
	}
}

// A Block record flagged FLAG_RUN stands for the Run of the execute that
// ended the park: the Session delivers it from impliedRun.
func TestImpliedRun(t *testing.T) {
	raw := rawEvent(uint32(Block), []uint64{0x401000, 0x402000}, 2)
	ev, err := DecodeEvent(raw)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := impliedRun(ev); ok {
		t.Fatal("run implied by a block without FLAG_RUN")
	}
	binary.LittleEndian.PutUint32(raw[60:], flagRun)
	if ev, err = DecodeEvent(raw); err != nil {
		t.Fatal(err)
	}
	run, ok := impliedRun(ev)
	want := Event{Kind: Run, PID: 100, TID: 102, EndTID: 102, StartNs: 2000, EndNs: 2000, Goid: 42}
	if !ok || !reflect.DeepEqual(run, want) {
		t.Fatalf("implied run %+v %v, want %+v", run, ok, want)
	}
	req := rawEvent(uint32(Request), nil, 0)
	if ev, err = DecodeEvent(req); err != nil {
		t.Fatal(err)
	}
	if _, ok := impliedRun(ev); ok {
		t.Fatal("run implied by a request")
	}
}

func TestParseKinds(t *testing.T) {
	for _, in := range []string{"", "all", " all "} {
		ks, err := ParseKinds(in)
		if err != nil || len(ks) != len(AllKinds) {
			t.Errorf("ParseKinds(%q) = %v, %v; want all kinds", in, ks, err)
		}
	}
	ks, err := ParseKinds("request, Block,request")
	if err != nil || len(ks) != 2 || ks[0] != Request || ks[1] != Block {
		t.Errorf("ParseKinds = %v, %v; want [request block]", ks, err)
	}
	if _, err := ParseKinds("request,oncpu"); err == nil || !strings.Contains(err.Error(), `"oncpu"`) {
		t.Errorf("want an error naming oncpu, got %v", err)
	}
}
