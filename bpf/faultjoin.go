package bpf

import "sort"

// bioInFault is the BlockIO flag bit the BPF program sets for a request
// issued inside a page fault (BIO_IN_FAULT in collectors.bpf.c).
const bioInFault = 0x100

// maxPendingBIO bounds the BlockIO events faultJoin holds back; past it
// they are all released without a user stack.
const maxPendingBIO = 4096

// faultJoin gives a BlockIO event issued inside a page fault the user
// stack of that fault. The BPF program leaves the stack out (taking it
// twice, for the fault and for each of its requests, was the costliest
// part of the collectors under page-out storms); the request completes,
// and is emitted, before the fault it serves, so such events wait here,
// per thread, for the thread's next PageFault event. If that fault covers
// the request's issue time, the request gets its user stack; otherwise
// (and at the end) it goes out with UserStackErr = ErrStackFaultNotSeen.
// Events keep their order except that held-back requests come out just
// before the fault that releases them.
type faultJoin struct {
	pending map[uint32][]Event // by TID
	n       int
}

// add takes the next event and appends what is ready to out.
func (j *faultJoin) add(e Event, out []Event) []Event {
	switch {
	case e.Kind == BlockIO && e.InFault && len(e.UserStack) == 0 && e.UserStackErr == 0:
		if j.pending == nil {
			j.pending = map[uint32][]Event{}
		}
		j.pending[e.TID] = append(j.pending[e.TID], e)
		j.n++
		if j.n > maxPendingBIO {
			out = j.flush(out)
		}
		return out
	case e.Kind == PageFault && len(j.pending[e.TID]) > 0:
		end := e.TsNs + e.DurNs
		held := j.pending[e.TID]
		keep := held[:0]
		for _, b := range held {
			switch {
			case b.TsNs > end:
				keep = append(keep, b) // issued after this fault: not its own
				continue
			case !e.NoStart && b.TsNs >= e.TsNs:
				b.UserStack, b.UserStackErr = e.UserStack, e.UserStackErr
			default:
				b.UserStackErr = ErrStackFaultNotSeen
			}
			out = append(out, b)
			j.n--
		}
		if len(keep) == 0 {
			delete(j.pending, e.TID)
		} else {
			j.pending[e.TID] = keep
		}
		return append(out, e)
	}
	return append(out, e)
}

// flush releases every held-back event, without a user stack, in issue
// order.
func (j *faultJoin) flush(out []Event) []Event {
	from := len(out)
	for tid, held := range j.pending {
		for _, b := range held {
			b.UserStackErr = ErrStackFaultNotSeen
			out = append(out, b)
		}
		delete(j.pending, tid)
	}
	j.n = 0
	rel := out[from:]
	sort.SliceStable(rel, func(a, b int) bool { return rel[a].TsNs < rel[b].TsNs })
	return out
}
