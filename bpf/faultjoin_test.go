package bpf

import (
	"slices"
	"testing"
)

// TestFaultJoin: block requests issued in a fault wait for it and take its
// user stack; the rest pass through in order.
func TestFaultJoin(t *testing.T) {
	bio := func(tid uint32, ts uint64) Event {
		return Event{Kind: BlockIO, TID: tid, TsNs: ts, InFault: true, KernelStack: []uint64{0xffff0001}}
	}
	fault := func(tid uint32, ts, dur uint64, stack ...uint64) Event {
		return Event{Kind: PageFault, TID: tid, TsNs: ts, DurNs: dur, Major: true, UserStack: stack}
	}
	var j faultJoin
	var out []Event
	out = j.add(Event{Kind: OffCPU, TID: 1, TsNs: 5}, out)
	out = j.add(bio(1, 110), out)                                                     // in fault A of tid 1
	out = j.add(bio(2, 120), out)                                                     // in fault B of tid 2
	out = j.add(Event{Kind: BlockIO, TID: 1, TsNs: 130, UserStack: []uint64{7}}, out) // not in a fault: passes
	out = j.add(bio(1, 50), out)                                                      // in a fault whose event never came
	if len(out) != 2 || j.n != 3 {
		t.Fatalf("held %d, out %d: %+v", j.n, len(out), out)
	}
	out = j.add(fault(1, 100, 40, 0x401000, 0x402000), out) // fault A [100, 140]
	// Released, in arrival order, before the fault: the request of fault A
	// with the fault's stack, then the orphan (ts 50, before the fault)
	// without one.
	if len(out) != 5 || out[2].TsNs != 110 || !slices.Equal(out[2].UserStack, []uint64{0x401000, 0x402000}) || out[2].UserStackErr != 0 {
		t.Fatalf("joined: %+v", out)
	}
	if out[3].TsNs != 50 || out[3].UserStackErr != ErrStackFaultNotSeen || len(out[3].UserStack) != 0 || out[4].Kind != PageFault {
		t.Fatalf("orphan: %+v", out[3:])
	}
	// A fault without a start (NoStart) cannot vouch for a request.
	nostart := fault(2, 200, 0, 0x500000)
	nostart.NoStart = true
	out = j.add(nostart, out[:0])
	if len(out) != 2 || out[0].TsNs != 120 || out[0].UserStackErr != ErrStackFaultNotSeen {
		t.Fatalf("no-start fault: %+v", out)
	}
	// A request issued after the fault ended stays held; flush releases it.
	out = j.add(bio(3, 300), out[:0])
	out = j.add(fault(3, 100, 50, 0x600000), out)
	if len(out) != 1 || j.n != 1 {
		t.Fatalf("later request released by an earlier fault: %+v", out)
	}
	out = j.add(bio(4, 250), out[:0])
	out = j.flush(out)
	if len(out) != 2 || out[0].TsNs != 250 || out[1].TsNs != 300 || out[1].UserStackErr != ErrStackFaultNotSeen || j.n != 0 || len(j.pending) != 0 {
		t.Fatalf("flush: %+v (held %d)", out, j.n)
	}
	// Past maxPendingBIO everything held goes out.
	out = out[:0]
	for i := 0; i <= maxPendingBIO; i++ {
		out = j.add(bio(uint32(i%7), uint64(i)), out)
	}
	if len(out) != maxPendingBIO+1 || j.n != 0 {
		t.Fatalf("cap: released %d, held %d", len(out), j.n)
	}
}

func TestDecodeBlockIOInFault(t *testing.T) {
	raw := make([]byte, EventSize)
	raw[0] = byte(BlockIO)
	raw[60], raw[61] = 0x0a, 0x01 // flags: in fault | status 10
	e, err := DecodeEvent(raw)
	if err != nil {
		t.Fatal(err)
	}
	if !e.InFault || e.Status != 10 {
		t.Fatalf("in fault %v, status %d", e.InFault, e.Status)
	}
}
