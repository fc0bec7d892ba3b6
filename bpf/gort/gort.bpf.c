//go:build ignore

// SPDX-License-Identifier: GPL-2.0
//
// Go runtime collectors for tailgate: GC cycles, stop-the-world pauses,
// mark assists, goroutine park/ready/resume with wait reasons and parked
// stacks, scheduling of goroutines onto threads, and net/http request
// goroutines.
//
// Every program is a uprobe on a Go function of the target binary, placed
// at the function's entry or at one of its RET instructions; never a
// uretprobe (the return-address trampoline breaks when the goroutine stack
// moves). In Go's ABIInternal on amd64, r14 holds the current g and the
// integer arguments are in rax, rbx, rcx, rdi, ... (the loader checks the
// binary's DWARF agrees with the registers read here when it can).
//
// Layout contract with bpf/gort/event.go: keep the two in sync.

#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "GPL";

#define MAX_STACK 64

#define KIND_GC 1      // gcStart entry -> RET, when it started a cycle
#define KIND_STW 2     // stopTheWorldWithSema entry -> startTheWorldWithSema RET
#define KIND_ASSIST 3  // gcAssistAlloc entry -> RET, on the assisting goroutine
#define KIND_BLOCK 4   // gopark entry -> runtime.execute of the goroutine (it runs again)
#define KIND_REQUEST 5 // net/http.serverHandler.ServeHTTP entry -> RET
#define KIND_RUN 6     // runtime.execute(gp): gp starts running on this thread
#define NR_KINDS 8

#define STW_GC_SWEEP_TERM 2 // runtime.stwGCSweepTerm, Go 1.22-1.26

// gevent.flags
#define FLAG_RUN 1 // BLOCK: stands for the RUN event of the same runtime.execute too

// Set by the loader.
volatile const __u32 target_tgid = 0;
volatile const __s64 goid_off = 0;   // runtime.g.goid
volatile const __s64 sched_bp_off = 0; // runtime.g.sched.bp
volatile const __u64 min_block_ns = 0;
volatile const __u8 emit_run = 1;     // send a RUN event from every runtime.execute
volatile const __u64 wakeup_bytes = 0; // wake the reader once this much is waiting

struct gevent {
	__u32 kind;
	__u32 pid;
	__u32 tid;     // thread at the start
	__u32 end_tid; // thread at the end
	__u64 start_ns;
	__u64 end_ns;
	__u64 goid;
	__u64 ready_ns; // BLOCK: runtime.ready of this goroutine, 0 if not seen
	__u64 arg;      // BLOCK: waitReason; STW: stwReason; RUN: 0
	__s32 stack_len; // BLOCK: frames in stack; negative: bpf_get_stack error
	__u32 flags;
	__u64 stack[MAX_STACK];
};

// The header is what every kind but BLOCK sends.
#define HDR_SIZE (__builtin_offsetof(struct gevent, stack))

const struct gevent *unused_gevent __attribute__((unused));

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 16 << 20);
} events SEC(".maps");

// drops[kind]: ring buffer full; drops[NR_KINDS + kind]: start map full.
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 2 * NR_KINDS);
	__type(key, __u32);
	__type(value, __u64);
} drops SEC(".maps");

// A parked goroutine: what gopark saw. The stack is not taken here but
// when the goroutine runs again, and only if the park was long enough
// (see execute_entry): a small value keeps the map's memory, and the
// cache lines every park and resume touch, few.
struct park {
	__u64 start_ns;
	__u64 ready_ns; // runtime.ready of this goroutine, 0 if not seen
	__u64 ip;       // the probed instruction in gopark
	__u64 ret;      // gopark's return address, in its caller
	__u32 tid;
	__u32 reason;   // waitReason
};

// Parked goroutines, keyed by goid.
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, __u64);
	__type(value, struct park);
} parked SEC(".maps");

struct span {
	__u64 ts;
	__u32 tid;
	__u32 pad;
	__u64 arg;
};

// Open intervals keyed by goid: assists, requests, gcStart calls.
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, __u64);
	__type(value, struct span);
} assist_start SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, __u64);
	__type(value, struct span);
} request_start SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 4096);
	__type(key, __u64);
	__type(value, struct span);
} gc_start SEC(".maps");

// The world is stopped at most once at a time: [0] is the open STW,
// [1].ts counts GC sweep-termination STWs (cycles started).
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, struct span);
} stw SEC(".maps");

static __always_inline void count_drop(__u32 idx)
{
	__u64 *c = bpf_map_lookup_elem(&drops, &idx);
	if (c)
		*c += 1;
}

// wake_flags batches reader wake-ups: one per wakeup_bytes of events
// instead of one per event (the reader also polls on a short deadline).
// Each wake-up is a context switch, and at thousands of scheduler events a
// second they would cost the traced service more than the probes.
static __always_inline __u64 wake_flags(void)
{
	if (bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA) >= wakeup_bytes)
		return BPF_RB_FORCE_WAKEUP;
	return BPF_RB_NO_WAKEUP;
}

static __always_inline bool is_target(void)
{
	return (bpf_get_current_pid_tgid() >> 32) == target_tgid;
}

static __always_inline __u32 cur_tid(void)
{
	return (__u32)bpf_get_current_pid_tgid();
}

// goid_of reads g.goid; 0 when g is not readable.
static __always_inline __u64 goid_of(__u64 g)
{
	__u64 goid = 0;
	if (g == 0)
		return 0;
	bpf_probe_read_user(&goid, sizeof(goid), (void *)(g + goid_off));
	return goid;
}

static __always_inline void emit_hdr(__u32 kind, __u32 tid, __u32 end_tid, __u64 start, __u64 end, __u64 goid, __u64 arg, __u64 ready)
{
	struct gevent *e = bpf_ringbuf_reserve(&events, HDR_SIZE, 0);
	if (!e) {
		count_drop(kind);
		return;
	}
	e->kind = kind;
	e->pid = target_tgid;
	e->tid = tid;
	e->end_tid = end_tid;
	e->start_ns = start;
	e->end_ns = end;
	e->goid = goid;
	e->ready_ns = ready;
	e->arg = arg;
	e->stack_len = 0;
	e->flags = 0;
	bpf_ringbuf_submit(e, wake_flags());
}

static __always_inline void span_begin(void *map, __u32 kind, __u64 goid, __u64 arg)
{
	struct span s = {.ts = bpf_ktime_get_ns(), .tid = cur_tid(), .arg = arg};
	if (goid == 0)
		return;
	if (bpf_map_update_elem(map, &goid, &s, BPF_ANY))
		count_drop(NR_KINDS + kind);
}

static __always_inline void span_end(void *map, __u32 kind, __u64 goid)
{
	struct span *s = bpf_map_lookup_elem(map, &goid);
	if (!s)
		return;
	__u64 start = s->ts;
	__u32 tid = s->tid;
	bpf_map_delete_elem(map, &goid);
	emit_hdr(kind, tid, cur_tid(), start, bpf_ktime_get_ns(), goid, 0, 0);
}

// ---- request goroutines: net/http.serverHandler.ServeHTTP ----

SEC("uprobe/serve_http")
int serve_http_entry(struct pt_regs *ctx)
{
	if (!is_target())
		return 0;
	span_begin(&request_start, KIND_REQUEST, goid_of(ctx->r14), 0);
	return 0;
}

SEC("uprobe/serve_http_ret")
int serve_http_ret(struct pt_regs *ctx)
{
	if (!is_target())
		return 0;
	span_end(&request_start, KIND_REQUEST, goid_of(ctx->r14));
	return 0;
}

// ---- mark assists: runtime.gcAssistAlloc(gp *g), gp == current g ----

SEC("uprobe/gc_assist")
int gc_assist_entry(struct pt_regs *ctx)
{
	if (!is_target())
		return 0;
	span_begin(&assist_start, KIND_ASSIST, goid_of(ctx->ax), 0);
	return 0;
}

SEC("uprobe/gc_assist_ret")
int gc_assist_ret(struct pt_regs *ctx)
{
	if (!is_target())
		return 0;
	span_end(&assist_start, KIND_ASSIST, goid_of(ctx->r14));
	return 0;
}

// ---- GC cycles: runtime.gcStart, reported when it stopped the world for
// sweep termination (most calls return early: a cycle is already running).

SEC("uprobe/gc_start")
int gc_start_entry(struct pt_regs *ctx)
{
	if (!is_target())
		return 0;
	__u32 one = 1;
	struct span *cyc = bpf_map_lookup_elem(&stw, &one);
	span_begin(&gc_start, KIND_GC, goid_of(ctx->r14), cyc ? cyc->ts : 0);
	return 0;
}

SEC("uprobe/gc_start_ret")
int gc_start_ret(struct pt_regs *ctx)
{
	if (!is_target())
		return 0;
	__u64 goid = goid_of(ctx->r14);
	struct span *s = bpf_map_lookup_elem(&gc_start, &goid);
	if (!s)
		return 0;
	__u64 start = s->ts, before = s->arg;
	__u32 tid = s->tid;
	bpf_map_delete_elem(&gc_start, &goid);
	__u32 one = 1;
	struct span *cyc = bpf_map_lookup_elem(&stw, &one);
	if (!cyc || cyc->ts == before)
		return 0;
	emit_hdr(KIND_GC, tid, cur_tid(), start, bpf_ktime_get_ns(), goid, cyc->ts, 0);
	return 0;
}

// ---- stop-the-world: stopTheWorldWithSema(reason) .. startTheWorldWithSema ----

SEC("uprobe/stop_the_world")
int stop_the_world_entry(struct pt_regs *ctx)
{
	if (!is_target())
		return 0;
	__u32 zero = 0, one = 1;
	struct span *s = bpf_map_lookup_elem(&stw, &zero);
	if (!s)
		return 0;
	s->ts = bpf_ktime_get_ns();
	s->tid = cur_tid();
	s->arg = ctx->ax;
	if (ctx->ax == STW_GC_SWEEP_TERM) {
		struct span *cyc = bpf_map_lookup_elem(&stw, &one);
		if (cyc)
			__sync_fetch_and_add(&cyc->ts, 1);
	}
	return 0;
}

// startTheWorldWithSema(now int64, w worldStop) int64 returns: the world
// has restarted. The runtime accounts the pause (runtime/metrics
// /sched/pauses/total/*) up to the `now` it returns in rax: the caller's
// (mark termination takes it before its last bookkeeping) or a nanotime()
// of its own taken after restarting the Ps. ready_ns carries it. This is a
// RET probe, single-stepped by the kernel, but it fires twice per GC cycle.
SEC("uprobe/start_the_world_ret")
int start_the_world_ret(struct pt_regs *ctx)
{
	if (!is_target())
		return 0;
	__u32 zero = 0;
	struct span *s = bpf_map_lookup_elem(&stw, &zero);
	if (!s || s->ts == 0)
		return 0;
	__u64 start = s->ts, reason = s->arg, now = bpf_ktime_get_ns();
	__u32 tid = s->tid;
	__u64 acct = ctx->ax;
	if (acct < start || acct > now)
		acct = now;
	s->ts = 0;
	emit_hdr(KIND_STW, tid, cur_tid(), start, now, 0, reason, acct);
	return 0;
}

// ---- goroutine blocking: gopark(unlockf, lock, reason, ...) ----

SEC("uprobe/gopark")
int gopark_entry(struct pt_regs *ctx)
{
	if (!is_target())
		return 0;
	__u64 goid = goid_of(ctx->r14);
	if (goid == 0)
		return 0;
	struct park p = {
		.start_ns = bpf_ktime_get_ns(),
		.ip = ctx->ip,
		.tid = cur_tid(),
		.reason = ctx->cx & 0xff, // waitReason is a uint8
	};
	// At the entry the frame pointer still is the caller's: the return
	// address at [rsp] is the caller's frame, which the walk from the
	// saved frame pointer would miss.
	bpf_probe_read_user(&p.ret, sizeof(p.ret), (void *)ctx->sp);
	if (bpf_map_update_elem(&parked, &goid, &p, BPF_ANY))
		count_drop(NR_KINDS + KIND_BLOCK);
	return 0;
}

// parked_stack unwinds the stack of g, which is not running (it is about to
// run again), by its frame pointers from g.sched.bp, where mcall (which
// gopark calls to switch to the scheduler) saved a frame pointer. The
// innermost two frames (gopark, its caller) come from the park; a first
// return address from the walk equal to the caller's is skipped (the
// saved frame pointer is gopark's own in the releases tested: 1.22, 1.26).
// Returns the number of frames written.
static __always_inline __s32 parked_stack(struct gevent *e, __u64 g, struct park *p)
{
	e->stack[0] = p->ip;
	e->stack[1] = p->ret;
	__u64 bp = 0;
	if (bpf_probe_read_user(&bp, sizeof(bp), (void *)(g + sched_bp_off)))
		return 2;
	__s32 n = 2;
	for (int i = 0; i < MAX_STACK; i++) {
		__u64 frame[2]; // saved frame pointer, return address
		if (n >= MAX_STACK || bp == 0 || bpf_probe_read_user(frame, sizeof(frame), (void *)bp) || frame[1] == 0)
			break;
		if (!(i == 0 && frame[1] == p->ret)) {
			e->stack[n & (MAX_STACK - 1)] = frame[1];
			n++;
		}
		if (frame[0] <= bp) // callers' frames are at higher addresses
			break;
		bp = frame[0];
	}
	return n;
}

// runtime.ready(gp, traceskip, next): gp becomes runnable.
SEC("uprobe/ready")
int ready_entry(struct pt_regs *ctx)
{
	if (!is_target())
		return 0;
	__u64 goid = goid_of(ctx->ax);
	struct park *p = bpf_map_lookup_elem(&parked, &goid);
	if (p && p->ready_ns == 0)
		p->ready_ns = bpf_ktime_get_ns();
	return 0;
}

// ---- scheduling: runtime.execute(gp, inheritTime) ----
//
// execute runs gp on this thread: for a parked goroutine that is the end of
// its park. (gopark's RETs would say the same, but the kernel cannot emulate
// a RET and executes it out of line with a single-step trap, which costs
// tens of microseconds per hit on virtual machines; execute's entry probe
// sits on its stack-check JBE, which the kernel emulates.)

SEC("uprobe/execute")
int execute_entry(struct pt_regs *ctx)
{
	if (!is_target())
		return 0;
	__u64 now = bpf_ktime_get_ns();
	__u32 tid = cur_tid();
	__u64 g = ctx->ax;
	__u64 goid = goid_of(g);
	if (goid == 0)
		return 0;
	struct park *p = bpf_map_lookup_elem(&parked, &goid);
	if (p) {
		if (now - p->start_ns >= min_block_ns) {
			struct gevent *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
			if (e) {
				e->kind = KIND_BLOCK;
				e->pid = target_tgid;
				e->tid = p->tid;
				e->end_tid = tid;
				e->start_ns = p->start_ns;
				e->end_ns = now;
				e->goid = goid;
				e->ready_ns = p->ready_ns;
				e->arg = p->reason;
				e->flags = emit_run ? FLAG_RUN : 0;
				e->stack_len = parked_stack(e, g, p);
				bpf_ringbuf_submit(e, wake_flags());
				bpf_map_delete_elem(&parked, &goid);
				return 0; // the reader derives the RUN from the BLOCK's end
			}
			count_drop(KIND_BLOCK);
		}
		bpf_map_delete_elem(&parked, &goid);
	}
	if (emit_run)
		emit_hdr(KIND_RUN, tid, tid, now, now, goid, 0, 0);
	return 0;
}
