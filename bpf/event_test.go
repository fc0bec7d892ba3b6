package bpf

import (
	"encoding/binary"
	"reflect"
	"strings"
	"testing"
)

// rawEvent builds a little-endian struct event record.
func rawEvent(kind uint32, args [4]uint64, flags uint32, ulen, klen int32, ustack, kstack []uint64) []byte {
	b := make([]byte, EventSize)
	le := binary.LittleEndian
	le.PutUint32(b[0:], kind)
	le.PutUint32(b[4:], 100)
	le.PutUint32(b[8:], 101)
	le.PutUint32(b[12:], 1)
	le.PutUint64(b[16:], 5000)
	le.PutUint64(b[24:], 700)
	le.PutUint64(b[32:], args[0])
	le.PutUint64(b[40:], args[1])
	le.PutUint64(b[48:], args[2])
	le.PutUint32(b[56:], uint32(args[3]))
	le.PutUint32(b[60:], flags)
	le.PutUint32(b[64:], uint32(ulen))
	le.PutUint32(b[68:], uint32(klen))
	copy(b[72:88], "bidder\x00")
	for i, pc := range ustack {
		le.PutUint64(b[offUStack+8*i:], pc)
	}
	for i, pc := range kstack {
		le.PutUint64(b[offKStack+8*i:], pc)
	}
	return b
}

func TestDecodeEvent(t *testing.T) {
	tests := []struct {
		name  string
		raw   []byte
		check func(t *testing.T, e Event)
	}{
		{"offcpu", rawEvent(1, [4]uint64{1, 1}, 0, 2, 1, []uint64{0x10, 0x20}, []uint64{0xffff0}), func(t *testing.T, e Event) {
			if e.Kind != OffCPU || e.State != 1 || !e.Preempted || !reflect.DeepEqual(e.UserStack, []uint64{0x10, 0x20}) ||
				!reflect.DeepEqual(e.KernelStack, []uint64{0xffff0}) || e.Comm != "bidder" || e.PID != 100 || e.TID != 101 {
				t.Fatalf("%+v", e)
			}
		}},
		{"runq", rawEvent(2, [4]uint64{0, 77}, 0, 0, 0, nil, nil), func(t *testing.T, e Event) {
			if e.Kind != RunQueue || e.Preempted || e.PrevTID != 77 || e.Duration() != 700 {
				t.Fatalf("%+v", e)
			}
		}},
		{"futex", rawEvent(3, [4]uint64{0xc0000100, 137, 1<<64 - 110}, 0, 0, 0, nil, nil), func(t *testing.T, e Event) {
			if e.Kind != Futex || e.UAddr != 0xc0000100 || e.FutexOp != 137 || e.FutexRet != -110 {
				t.Fatalf("%+v", e)
			}
		}},
		{"major fault", rawEvent(4, [4]uint64{0x7f0000001000, 4}, 1, 0, 0, nil, nil), func(t *testing.T, e Event) {
			if e.Kind != PageFault || !e.Major || e.NoStart || e.Addr != 0x7f0000001000 || e.ErrorCode != 4 {
				t.Fatalf("%+v", e)
			}
		}},
		{"minor fault without start", rawEvent(4, [4]uint64{0x1000}, 4, 0, 0, nil, nil), func(t *testing.T, e Event) {
			if e.Major || !e.NoStart {
				t.Fatalf("%+v", e)
			}
		}},
		{"numa", rawEvent(5, [4]uint64{0, 3, 0, 1}, 2, 0, 0, nil, nil), func(t *testing.T, e Event) {
			if e.FromCPU != 0 || e.ToCPU != 3 || e.FromNode != 0 || e.ToNode != 1 || e.NUMAHow != 2 || !e.CrossNode() {
				t.Fatalf("%+v", e)
			}
		}},
		{"blockio", rawEvent(6, [4]uint64{2048, 4096, 253 << 20, 0}, 10, 0, 0, nil, nil), func(t *testing.T, e Event) {
			if e.Sector != 2048 || e.Bytes != 4096 || e.Dev != 253<<20 || e.Op != 0 || e.Status != 10 {
				t.Fatalf("%+v", e)
			}
		}},
		{"stack error and zero-terminated stack", rawEvent(7, [4]uint64{}, 0, -14, 3, nil, []uint64{0xa, 0}), func(t *testing.T, e Event) {
			if e.UserStack != nil || e.UserStackErr != -14 || !reflect.DeepEqual(e.KernelStack, []uint64{0xa}) {
				t.Fatalf("%+v", e)
			}
		}},
		{"oversized stack length is clamped", rawEvent(7, [4]uint64{}, 0, 1000, 0, []uint64{1, 2, 3}, nil), func(t *testing.T, e Event) {
			if len(e.UserStack) != 3 {
				t.Fatalf("%+v", e)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, err := DecodeEvent(tt.raw)
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, e)
		})
	}
}

func TestDecodeEventErrors(t *testing.T) {
	if _, err := DecodeEvent(make([]byte, EventSize-1)); err == nil || !strings.Contains(err.Error(), "short record") {
		t.Fatalf("short record: %v", err)
	}
	if _, err := DecodeEvent(rawEvent(42, [4]uint64{}, 0, 0, 0, nil, nil)); err == nil || !strings.Contains(err.Error(), "unknown kind 42") {
		t.Fatalf("unknown kind: %v", err)
	}
}

func TestParseCollectors(t *testing.T) {
	tests := []struct {
		in      string
		want    []Kind
		wantErr string
	}{
		{"", AllKinds, ""},
		{"all", AllKinds, ""},
		{"offcpu", []Kind{OffCPU}, ""},
		{" OnCPU , futex,oncpu", []Kind{OnCPU, Futex}, ""},
		{"offcpu,gc", nil, `unknown collector "gc"`},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseCollectors(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("got %v, %v; want %v", got, err, tt.want)
			}
		})
	}
	for _, k := range AllKinds {
		if got, err := ParseKind(k.String()); err != nil || got != k {
			t.Errorf("ParseKind(%q) = %v, %v", k.String(), got, err)
		}
	}
}

func TestParseCPUList(t *testing.T) {
	tests := []struct {
		in      string
		want    []int
		wantErr bool
	}{
		{"0", []int{0}, false},
		{"0-3", []int{0, 1, 2, 3}, false},
		{"0-1,4,6-7\n", []int{0, 1, 4, 6, 7}, false},
		{"", nil, false},
		{"3-1", nil, true},
		{"a", nil, true},
		{"1,-2", nil, true},
	}
	for _, tt := range tests {
		got, err := ParseCPUList(tt.in)
		if (err != nil) != tt.wantErr || !reflect.DeepEqual(got, tt.want) {
			t.Errorf("ParseCPUList(%q) = %v, %v", tt.in, got, err)
		}
	}
}

// A synthetic two-node sysfs tree: this host has one node, production
// runners have two.
func TestReadCPUNodesTwoNodes(t *testing.T) {
	got, err := ReadCPUNodes("testdata/node2")
	if err != nil {
		t.Fatal(err)
	}
	want := map[int]int{0: 0, 1: 0, 4: 0, 2: 1, 3: 1, 5: 1}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	if got, err := ReadCPUNodes("testdata/missing"); err != nil || len(got) != 0 {
		t.Fatalf("missing dir: %v, %v", got, err)
	}
}
