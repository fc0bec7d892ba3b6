package main

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"strconv"
	"testing"

	"github.com/tailgate-ci/tailgate/bpf"
	"github.com/tailgate-ci/tailgate/internal/symbol"
)

// sampleEvents is a deterministic mix of every kind, with stacks of
// realistic depth and the odd comm that JSON must escape.
func sampleEvents(n int) []bpf.Event {
	rng := rand.New(rand.NewPCG(7, 11))
	comms := []string{"bidder", "http-srv", `we"ird\name`, "<tag>&", "caf\xc3\xa9", "bad\xffutf8", "tab\there", ""}
	stack := func(depth int, base uint64) []uint64 {
		if depth == 0 {
			return []uint64{}
		}
		s := make([]uint64, depth)
		for i := range s {
			s[i] = base + rng.Uint64N(1<<20)
		}
		return s
	}
	out := make([]bpf.Event, n)
	for i := range out {
		e := bpf.Event{
			Kind: bpf.AllKinds[i%len(bpf.AllKinds)], TsNs: rng.Uint64(), DurNs: rng.Uint64N(1e9),
			PID: rng.Uint32(), TID: rng.Uint32(), CPU: rng.Uint32N(128), Comm: comms[i%len(comms)],
			UserStack: stack(rng.IntN(40), 0x400000), KernelStack: stack(rng.IntN(20), 0xffffffff81000000),
			State: rng.Uint32N(4), Preempted: rng.IntN(2) == 0, PrevTID: rng.Uint32(),
			UAddr: rng.Uint64(), FutexOp: rng.Uint32N(400), FutexRet: rng.Int64N(5) - 2,
			Addr: rng.Uint64(), ErrorCode: rng.Uint64N(32), Major: rng.IntN(2) == 0, NoStart: rng.IntN(3) == 0,
			FromCPU: rng.Uint32N(8), ToCPU: rng.Uint32N(8), FromNode: rng.Uint32N(2), ToNode: rng.Uint32N(2), NUMAHow: rng.Uint32N(3),
			Sector: rng.Uint64(), Bytes: rng.Uint32(), Dev: rng.Uint32(), Op: rng.Uint32(), Status: rng.Uint32N(3), InFault: rng.IntN(2) == 0,
		}
		if i%7 == 0 {
			e.UserStack, e.UserStackErr = []uint64{}, -14
		}
		if i%11 == 0 {
			e.KernelStackErr = -2
		}
		out[i] = e
	}
	return out
}

// BenchmarkProfileConsume is the event consumer of `tailgate profile`
// (JSON lines per kind plus folding), per event:
//
//	go test -run XXX -bench ProfileConsume -benchmem ./cmd/tailgate
func BenchmarkProfileConsume(b *testing.B) {
	evs := sampleEvents(4096)
	for i := range evs {
		evs[i].PID = 1 + uint32(i%4) // a few processes, as in a real session
	}
	w := newProfileWriter(b.TempDir(), symbol.NewResolver())
	for pid := uint32(1); pid <= 4; pid++ {
		w.primed[pid] = true
	}
	ch := make(chan bpf.Event, 1024)
	done := make(chan error, 1)
	go func() { done <- w.consume(ch) }()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		ch <- evs[i%len(evs)]
	}
	close(ch)
	if err := <-done; err != nil {
		b.Fatal(err)
	}
	b.StopTimer()
	for _, f := range w.files {
		f.Close()
	}
}

// toJSONEvent is the schema's reading of an event, through jsonEvent: the
// oracle appendJSONEvent must match byte for byte.
func toJSONEvent(e *bpf.Event) jsonEvent {
	j := jsonEvent{
		Kind: e.Kind.String(), TsNs: e.TsNs, DurNs: e.DurNs, PID: e.PID, TID: e.TID, CPU: e.CPU, Comm: e.Comm,
		UStack: hexStack(e.UserStack), KStack: hexStack(e.KernelStack),
		UStackErr: e.UserStackErr, KStackErr: e.KernelStackErr,
	}
	switch e.Kind {
	case bpf.OffCPU:
		j.State, j.Preempted = &e.State, &e.Preempted
	case bpf.RunQueue:
		j.Preempted, j.PrevTID = &e.Preempted, &e.PrevTID
	case bpf.Futex:
		j.UAddr, j.FutexOp, j.FutexRet = "0x"+strconv.FormatUint(e.UAddr, 16), &e.FutexOp, &e.FutexRet
	case bpf.PageFault:
		j.Addr, j.ErrorCode, j.Major, j.NoStart = "0x"+strconv.FormatUint(e.Addr, 16), &e.ErrorCode, &e.Major, e.NoStart
	case bpf.NUMAMigrate:
		j.FromCPU, j.ToCPU, j.FromNode, j.ToNode, j.How = &e.FromCPU, &e.ToCPU, &e.FromNode, &e.ToNode, &e.NUMAHow
	case bpf.BlockIO:
		j.Sector, j.Bytes, j.Dev, j.Op, j.Status, j.InFault = &e.Sector, &e.Bytes, &e.Dev, &e.Op, &e.Status, e.InFault
	}
	return j
}

func TestAppendJSONEventMatchesMarshal(t *testing.T) {
	for n, e := range sampleEvents(2000) {
		want, err := json.Marshal(toJSONEvent(&e))
		if err != nil {
			t.Fatal(err)
		}
		if got := appendJSONEvent(nil, &e); !bytes.Equal(got, want) {
			t.Fatalf("event %d (%s):\n got %s\nwant %s", n, e.Kind, got, want)
		}
	}
}

func hexStack(pcs []uint64) []string {
	out := make([]string, len(pcs))
	for i, pc := range pcs {
		out[i] = "0x" + strconv.FormatUint(pc, 16)
	}
	return out
}
