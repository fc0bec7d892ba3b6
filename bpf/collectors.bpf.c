//go:build ignore

// SPDX-License-Identifier: GPL-2.0
//
// Kernel tail collectors for tailgate: off-CPU, run-queue latency, futex
// waits, page faults (major, and minor above a threshold), NUMA migrations, block I/O and on-CPU samples.
//
// Every program filters in the kernel to the target process set (the
// `targets` hash map of tgids, grown by sched_process_fork when
// follow_children is set) and emits one fixed-layout `struct event` into a
// single ring buffer. Stacks are taken with bpf_get_stack (or
// bpf_get_task_stack for a task that is not current) straight into the
// event, never through stack-id maps. Reserve failures and full start maps
// are counted per kind in the per-CPU `drops` array so that the user-space
// side can report them.
//
// Layout contract with bpf/event.go: keep the two in sync.

#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>

char LICENSE[] SEC("license") = "GPL";

#define MAX_USTACK 127
#define MAX_KSTACK 64

#define KIND_OFFCPU 1
#define KIND_RUNQ 2
#define KIND_FUTEX 3
#define KIND_PAGEFAULT 4
#define KIND_NUMA 5
#define KIND_BLOCKIO 6
#define KIND_ONCPU 7
#define NR_KINDS 8

// drops index: [kind] ring-buffer reserve failures, [NR_KINDS + kind] start
// map full (the start of an interval could not be remembered),
// [2 * NR_KINDS + kind] intervals of idle Go runtime threads not recorded
// (go_idle: not a loss, counted so that the filter is visible);
// [3 * NR_KINDS] see SKIP_SAME_NODE.
#define DROP_MAPFULL NR_KINDS
#define SKIP_GO_IDLE (2 * NR_KINDS)
// [3 * NR_KINDS]: load-balancing migrations within one node, counted and
// not sent (not a NUMA move; on a one-node host every migration is one).
#define SKIP_SAME_NODE (3 * NR_KINDS)
#define NR_DROPS (3 * NR_KINDS + 1)

// ustack_len/kstack_len of an event whose stacks were deliberately not
// taken (ErrStackNotTaken in event.go).
#define STACK_NOT_TAKEN -3

#define TASK_RUNNING_STATE 0
#define TASK_DEAD_STATE 0x80

#define FUTEX_CMD_MASK 127
#define FUTEX_WAIT_CMD 0
#define FUTEX_LOCK_PI_CMD 6
#define FUTEX_WAIT_BITSET_CMD 9
#define FUTEX_WAIT_REQUEUE_PI_CMD 11
#define FUTEX_LOCK_PI2_CMD 13

// enabled_mask bits, one per kind (1 << kind).
#define ENABLED(kind) (enabled_mask & (1u << (kind)))

volatile const __u32 enabled_mask = 0;
volatile const __u64 min_offcpu_ns = 0;
volatile const __u64 min_futex_ns = 0;
volatile const __u64 min_runq_ns = 0;
volatile const __u64 min_runq_stack_ns = 0;
volatile const __u64 min_minor_fault_ns = 0;
volatile const __u64 sample_period_ns = 0;
volatile const __u8 follow_children = 1;
volatile const __u64 wakeup_bytes = 0;

struct event {
	__u32 kind;
	__u32 pid;  // tgid
	__u32 tid;
	__u32 cpu;
	__u64 ts_ns;  // start of the interval, CLOCK_MONOTONIC
	__u64 dur_ns; // length of the interval (0 for point events)
	__u64 arg0;
	__u64 arg1;
	__u64 arg2;
	__u32 arg3;
	__u32 flags;
	__s32 ustack_len; // frames in ustack; negative: bpf_get_stack error
	__s32 kstack_len; // frames in kstack; negative: bpf_get_stack error
	char comm[16];
	__u64 ustack[MAX_USTACK];
	__u64 kstack[MAX_KSTACK];
};

// Force the type into BTF so bpf2go can emit it (-type event).
const struct event *unused_event __attribute__((unused));

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 16 << 20);
} events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, __u32);
	__type(value, __u32);
} targets SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, NR_DROPS);
	__type(key, __u32);
	__type(value, __u64);
} drops SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct event);
} scratch SEC(".maps");

// Go runtime layout of a target process (tgid), filled by the loader for
// Go binaries: where the current g sits relative to the thread pointer,
// and the offsets of g.m and m.curg. See go_idle.
struct go_rt {
	__s64 tls_g;
	__s64 g_m;
	__s64 m_curg;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, __u32);
	__type(value, struct go_rt);
} go_procs SEC(".maps");

// cpu -> NUMA node, filled from sysfs by the loader.
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1024);
	__type(key, __u32);
	__type(value, __u32);
} cpu_node SEC(".maps");

// Off-CPU: the event as it was at switch-out, in the task's own storage:
// the stacks are written in place (no 1.6 KB copy into a hash map), and
// the storage dies with the thread. ts_ns == 0 means nothing pending.
struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct event);
} offcpu_start SEC(".maps");

struct runq_val {
	__u64 ts;
	__u32 preempted;
	__u32 pad;
};

// Run-queue and futex starts live in the task's own storage too: a lookup
// is a walk of the task's (short) storage list, and a task the programs
// never stored to costs one NULL check, where the hash maps these were
// cost a hashed lookup on every switch-in and futex exit on the host and
// an update and a delete under a bucket lock per target event. ts == 0
// means nothing pending.
struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct runq_val);
} runq_start SEC(".maps");

struct futex_val {
	__u64 ts;
	__u64 uaddr;
	__u64 op;
};

struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct futex_val);
} futex_start SEC(".maps");

struct fault_val {
	__u64 ts;
	__u64 addr;
	__u64 error_code;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 8192);
	__type(key, __u32);
	__type(value, struct fault_val);
} fault_start SEC(".maps");

// Block I/O in flight, keyed by struct request pointer, attributed at issue.
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 2048);
	__type(key, __u64);
	__type(value, struct event);
} bio_start SEC(".maps");

static __always_inline void count_drop(__u32 idx)
{
	__u64 *v = bpf_map_lookup_elem(&drops, &idx);
	if (v)
		*v += 1;
}

static __always_inline bool is_target(__u32 tgid)
{
	return bpf_map_lookup_elem(&targets, &tgid) != NULL;
}

static __always_inline bool current_is_target(void)
{
	return is_target(bpf_get_current_pid_tgid() >> 32);
}

static __always_inline void fill_current(struct event *e, __u32 kind)
{
	__u64 id = bpf_get_current_pid_tgid();

	e->kind = kind;
	e->pid = id >> 32;
	e->tid = (__u32)id;
	e->cpu = bpf_get_smp_processor_id();
	e->ts_ns = bpf_ktime_get_ns();
	e->dur_ns = 0;
	e->arg0 = 0;
	e->arg1 = 0;
	e->arg2 = 0;
	e->arg3 = 0;
	e->flags = 0;
	bpf_get_current_comm(e->comm, sizeof(e->comm));
}

static __always_inline void fill_task(struct event *e, __u32 kind, struct task_struct *t)
{
	e->kind = kind;
	e->pid = t->tgid;
	e->tid = t->pid;
	e->cpu = bpf_get_smp_processor_id();
	e->ts_ns = bpf_ktime_get_ns();
	e->dur_ns = 0;
	e->arg0 = 0;
	e->arg1 = 0;
	e->arg2 = 0;
	e->arg3 = 0;
	e->flags = 0;
	bpf_probe_read_kernel_str(e->comm, sizeof(e->comm), t->comm);
}

// Kernel frames to skip in a tp_btf program: the program itself and
// bpf_trace_runN. Tracepoint and perf_event programs start at the traced
// code already.
#define SKIP_TP_BTF 2
#define SKIP_NONE 0

static __always_inline void current_stacks(void *ctx, struct event *e, __u64 kskip)
{
	long n = bpf_get_stack(ctx, e->ustack, sizeof(e->ustack), BPF_F_USER_STACK);
	e->ustack_len = n >= 0 ? (__s32)((__u64)n / 8) : (__s32)n;
	n = bpf_get_stack(ctx, e->kstack, sizeof(e->kstack), kskip & BPF_F_SKIP_FIELD_MASK);
	e->kstack_len = n >= 0 ? (__s32)((__u64)n / 8) : (__s32)n;
}

// task_stacks takes the kernel stack of a task that is not running; its user
// stack cannot be walked from here, so it is left empty.
static __always_inline void task_stacks(struct task_struct *t, struct event *e)
{
	e->ustack_len = 0;
	long n = bpf_get_task_stack(t, e->kstack, sizeof(e->kstack), 0);
	e->kstack_len = n >= 0 ? (__s32)((__u64)n / 8) : (__s32)n;
}

// go_idle reports whether the current thread is a Go runtime thread with
// no goroutine: its M's curg is nil. Such a thread blocks only to wait
// for work (stopm's futex sleep, the netpoller's epoll_wait, sysmon's
// usleep), which no request ever waits on, yet at a thousand requests a
// second those waits are most of a Go service's off-CPU intervals and
// futex waits, each with a user stack walked at switch-out. A goroutine
// in a blocking syscall, or on the system stack taking a runtime lock,
// keeps its M's curg, so its waits are recorded. Not a Go process, or g
// not readable (a thread that has not run Go code): not idle.
static __always_inline bool go_idle(__u32 tgid)
{
	struct go_rt *rt = bpf_map_lookup_elem(&go_procs, &tgid);
	if (!rt)
		return false;
	struct task_struct *t = bpf_get_current_task_btf();
	__u64 fsbase = t->thread.fsbase;
	__u64 g = 0, m = 0, curg = 0;
	if (!fsbase || bpf_probe_read_user(&g, sizeof(g), (void *)(fsbase + rt->tls_g)) || !g)
		return false;
	if (bpf_probe_read_user(&m, sizeof(m), (void *)(g + rt->g_m)) || !m)
		return false;
	if (bpf_probe_read_user(&curg, sizeof(curg), (void *)(m + rt->m_curg)))
		return false;
	return curg == 0;
}

static __always_inline struct event *scratch_event(void)
{
	__u32 zero = 0;
	return bpf_map_lookup_elem(&scratch, &zero);
}

// wake_flags batches consumer wake-ups: the reader is woken only once
// wakeup_bytes are waiting (it also polls on a short deadline), instead of
// once per event, which at thousands of events a second costs the traced
// service context switches and IPIs.
static __always_inline __u64 wake_flags(void)
{
	if (bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA) >= wakeup_bytes)
		return BPF_RB_FORCE_WAKEUP;
	return BPF_RB_NO_WAKEUP;
}

static __always_inline void emit_copy(struct event *e)
{
	if (bpf_ringbuf_output(&events, e, sizeof(*e), wake_flags()))
		count_drop(e->kind);
}

static __always_inline __u32 node_of(__u32 cpu)
{
	__u32 *n = bpf_map_lookup_elem(&cpu_node, &cpu);
	return n ? *n : 0;
}

SEC("tp_btf/sched_process_fork")
int BPF_PROG(handle_fork, struct task_struct *parent, struct task_struct *child)
{
	if (!follow_children)
		return 0;
	__u32 ptgid = parent->tgid;
	__u32 ctgid = child->tgid;
	if (ptgid == ctgid || !is_target(ptgid))
		return 0;
	__u32 one = 1;
	if (bpf_map_update_elem(&targets, &ctgid, &one, BPF_ANY))
		count_drop(DROP_MAPFULL);
	return 0;
}

SEC("tp_btf/sched_switch")
int BPF_PROG(handle_sched_switch, bool preempt, struct task_struct *prev,
	     struct task_struct *next, unsigned int prev_state)
{
	__u64 now = 0; // read once a target is involved: most switches are not
	__u32 prev_tid = prev->pid;
	__u32 next_tid = next->pid;

	if (prev_tid != 0 && is_target(prev->tgid)) {
		now = bpf_ktime_get_ns();
		// Off-CPU is blocked time: a thread preempted while runnable
		// (preempt, or prev_state == TASK_RUNNING) is waiting for a CPU,
		// which the run-queue collector measures.
		bool runnable = preempt || prev_state == TASK_RUNNING_STATE;
		bool offcpu = ENABLED(KIND_OFFCPU) && !runnable && !(prev_state & TASK_DEAD_STATE);
		if (offcpu && go_idle(prev->tgid)) {
			count_drop(SKIP_GO_IDLE + KIND_OFFCPU);
			offcpu = false;
		}
		if (offcpu) {
			struct event *e = bpf_task_storage_get(&offcpu_start, prev, 0,
							       BPF_LOCAL_STORAGE_GET_F_CREATE);
			if (e) {
				fill_current(e, KIND_OFFCPU);
				e->ts_ns = now;
				e->arg0 = prev_state;
				e->arg1 = preempt;
				// Only the user stack now: it cannot be read once the
				// thread is not current. The kernel stack of a
				// sleeping thread stays put, so it is taken at
				// switch-in, and only for intervals that are kept.
				long n = bpf_get_stack(ctx, e->ustack, sizeof(e->ustack),
						       BPF_F_USER_STACK);
				e->ustack_len = n >= 0 ? (__s32)((__u64)n / 8) : (__s32)n;
			} else {
				count_drop(DROP_MAPFULL + KIND_OFFCPU);
			}
		}
		if (ENABLED(KIND_RUNQ) && runnable) {
			struct runq_val *v = bpf_task_storage_get(&runq_start, prev, 0,
								  BPF_LOCAL_STORAGE_GET_F_CREATE);
			if (v) {
				v->ts = now;
				v->preempted = 1;
			} else {
				count_drop(DROP_MAPFULL + KIND_RUNQ);
			}
		}
	}

	if (next_tid == 0 || !is_target(next->tgid))
		return 0;
	if (!now)
		now = bpf_ktime_get_ns();

	if (ENABLED(KIND_OFFCPU)) {
		struct event *e = bpf_task_storage_get(&offcpu_start, next, 0, 0);
		if (e && e->ts_ns) {
			__u64 d = now - e->ts_ns;
			if (d >= min_offcpu_ns) {
				e->dur_ns = d;
				long n = bpf_get_task_stack(next, e->kstack, sizeof(e->kstack), 0);
				e->kstack_len = n >= 0 ? (__s32)((__u64)n / 8) : (__s32)n;
				emit_copy(e);
			}
			e->ts_ns = 0;
		}
	}
	if (ENABLED(KIND_RUNQ)) {
		struct runq_val *v = bpf_task_storage_get(&runq_start, next, 0, 0);
		if (v && v->ts && now - v->ts >= min_runq_ns) {
			struct event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
			if (e) {
				fill_task(e, KIND_RUNQ, next);
				e->ts_ns = v->ts;
				e->dur_ns = now - v->ts;
				e->arg0 = v->preempted;
				e->arg1 = prev_tid;
				// The kernel stack of a task that is not running is an
				// unwind of its saved frames, ~6 µs a wait on the
				// reference VM, paid here on the CPU the task is about
				// to run on; a wait too short to matter to a tail
				// request goes without (ErrStackNotTaken).
				if (e->dur_ns >= min_runq_stack_ns) {
					task_stacks(next, e);
				} else {
					e->ustack_len = STACK_NOT_TAKEN;
					e->kstack_len = STACK_NOT_TAKEN;
				}
				bpf_ringbuf_submit(e, wake_flags());
			} else {
				count_drop(KIND_RUNQ);
			}
		}
		if (v)
			v->ts = 0;
	}
	return 0;
}

static __always_inline void runq_wakeup(struct task_struct *p)
{
	if (!ENABLED(KIND_RUNQ) || !is_target(p->tgid))
		return;
	struct runq_val *v = bpf_task_storage_get(&runq_start, p, 0, BPF_LOCAL_STORAGE_GET_F_CREATE);
	if (!v) {
		count_drop(DROP_MAPFULL + KIND_RUNQ);
		return;
	}
	v->ts = bpf_ktime_get_ns();
	v->preempted = 0;
}

SEC("tp_btf/sched_wakeup")
int BPF_PROG(handle_sched_wakeup, struct task_struct *p)
{
	runq_wakeup(p);
	return 0;
}

SEC("tp_btf/sched_wakeup_new")
int BPF_PROG(handle_sched_wakeup_new, struct task_struct *p)
{
	runq_wakeup(p);
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_futex")
int handle_futex_enter(struct trace_event_raw_sys_enter *ctx)
{
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	if (!is_target(tgid))
		return 0;
	__u64 op = ctx->args[1];
	__u32 cmd = op & FUTEX_CMD_MASK;
	if (cmd != FUTEX_WAIT_CMD && cmd != FUTEX_LOCK_PI_CMD && cmd != FUTEX_WAIT_BITSET_CMD &&
	    cmd != FUTEX_WAIT_REQUEUE_PI_CMD && cmd != FUTEX_LOCK_PI2_CMD)
		return 0;
	if (go_idle(tgid)) {
		count_drop(SKIP_GO_IDLE + KIND_FUTEX);
		return 0;
	}
	struct futex_val *v = bpf_task_storage_get(&futex_start, bpf_get_current_task_btf(), 0,
						   BPF_LOCAL_STORAGE_GET_F_CREATE);
	if (!v) {
		count_drop(DROP_MAPFULL + KIND_FUTEX);
		return 0;
	}
	v->ts = bpf_ktime_get_ns();
	v->uaddr = ctx->args[0];
	v->op = op;
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_futex")
int handle_futex_exit(struct trace_event_raw_sys_exit *ctx)
{
	struct futex_val *v = bpf_task_storage_get(&futex_start, bpf_get_current_task_btf(), 0, 0);
	if (!v || !v->ts)
		return 0;
	__u64 now = bpf_ktime_get_ns();
	__u64 d = now - v->ts;
	if (d >= min_futex_ns) {
		struct event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
		if (e) {
			fill_current(e, KIND_FUTEX);
			e->ts_ns = v->ts;
			e->dur_ns = d;
			e->arg0 = v->uaddr;
			e->arg1 = v->op;
			e->arg2 = (__u64)ctx->ret;
			current_stacks(ctx, e, SKIP_NONE);
			bpf_ringbuf_submit(e, wake_flags());
		} else {
			count_drop(KIND_FUTEX);
		}
	}
	v->ts = 0;
	return 0;
}

// Page faults. fentry/fexit (and kprobes) are not available on these
// kernels, so the end of a fault is taken from the kernel's own accounting:
// mm_account_fault raises the PERF_COUNT_SW_PAGE_FAULTS_MAJ/_MIN software
// event once per completed fault (not per VM_FAULT_RETRY attempt), in the
// faulting thread, with the fault's registers and address. That is the
// same decision that bumps maj_flt/min_flt in /proc/PID/stat, for every
// fault with registers (all but get_user_pages faults). The start comes
// from the page_fault_user/page_fault_kernel tracepoints at the top of
// the x86 fault handler.
static __always_inline void fault_begin(unsigned long address, unsigned long error_code,
					__u64 map_flags)
{
	if (!current_is_target())
		return;
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	struct fault_val v = {
		.ts = bpf_ktime_get_ns(),
		.addr = address,
		.error_code = error_code,
	};
	long err = bpf_map_update_elem(&fault_start, &tid, &v, map_flags);
	if (err && err != -17 /* EEXIST */)
		count_drop(DROP_MAPFULL + KIND_PAGEFAULT);
}

SEC("tp_btf/page_fault_user")
int BPF_PROG(handle_page_fault_user, unsigned long address, struct pt_regs *regs,
	     unsigned long error_code)
{
	fault_begin(address, error_code, BPF_ANY);
	return 0;
}

// A kernel-mode fault never replaces a pending user fault: the user stack
// walk of bpf_get_stack, run by these very programs while a user fault is
// being handled (block_rq_issue), faults on the frame-pointer chain and
// would otherwise clobber the start of the outer fault.
SEC("tp_btf/page_fault_kernel")
int BPF_PROG(handle_page_fault_kernel, unsigned long address, struct pt_regs *regs,
	     unsigned long error_code)
{
	fault_begin(address, error_code, BPF_NOEXIST);
	return 0;
}

static __always_inline void fault_end(struct bpf_perf_event_data *ctx, bool major)
{
	if (!current_is_target())
		return;
	__u64 now = bpf_ktime_get_ns();
	__u64 addr = ctx->addr;
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	struct fault_val *p = bpf_map_lookup_elem(&fault_start, &tid);
	// A start for another page is stale (a fault that ended in an error
	// and was never accounted).
	if (p && (p->addr >> 12) != (addr >> 12))
		p = NULL;
	__u64 start = p ? p->ts : now;
	if (!major && now - start < min_minor_fault_ns)
		goto out;
	struct event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (e) {
		fill_current(e, KIND_PAGEFAULT);
		e->ts_ns = start;
		e->dur_ns = now - start;
		e->arg0 = addr;
		e->arg1 = p ? p->error_code : 0;
		e->flags = major ? 1 : 0;
		if (!p)
			e->flags |= 4; // start not seen: duration unknown (0)
		current_stacks(ctx, e, SKIP_NONE);
		bpf_ringbuf_submit(e, wake_flags());
	} else {
		count_drop(KIND_PAGEFAULT);
	}
out:
	if (p)
		bpf_map_delete_elem(&fault_start, &tid);
}

SEC("perf_event")
int handle_fault_major(struct bpf_perf_event_data *ctx)
{
	fault_end(ctx, true);
	return 0;
}

SEC("perf_event")
int handle_fault_minor(struct bpf_perf_event_data *ctx)
{
	fault_end(ctx, false);
	return 0;
}

static __always_inline void numa_event(void *ctx, struct task_struct *p, __u32 from, __u32 to,
				       __u32 how)
{
	__u32 from_node = node_of(from), to_node = node_of(to);
	if (how == 0 && from_node == to_node) {
		// A load-balancing move within a node is not a NUMA move: it is
		// counted (Stats.SameNodeMigrations), not sent. On a one-node
		// host that is every migration, about two a request of a Go
		// service, each a ring-buffer record for the reader.
		count_drop(SKIP_SAME_NODE);
		return;
	}
	struct event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e) {
		count_drop(KIND_NUMA);
		return;
	}
	fill_task(e, KIND_NUMA, p);
	e->arg0 = from;
	e->arg1 = to;
	e->arg2 = from_node;
	e->arg3 = to_node;
	e->flags = how;
	if ((void *)p == (void *)bpf_get_current_task_btf()) {
		current_stacks(ctx, e, SKIP_TP_BTF);
	} else {
		task_stacks(p, e);
	}
	bpf_ringbuf_submit(e, wake_flags());
}

SEC("tp_btf/sched_migrate_task")
int BPF_PROG(handle_migrate_task, struct task_struct *p, int dest_cpu)
{
	if (!is_target(p->tgid))
		return 0;
	numa_event(ctx, p, p->thread_info.cpu, dest_cpu, 0);
	return 0;
}

SEC("tp_btf/sched_move_numa")
int BPF_PROG(handle_move_numa, struct task_struct *p, int src_cpu, int dst_cpu)
{
	if (!is_target(p->tgid))
		return 0;
	numa_event(ctx, p, src_cpu, dst_cpu, 1);
	return 0;
}

SEC("tp_btf/sched_swap_numa")
int BPF_PROG(handle_swap_numa, struct task_struct *src, int src_cpu, struct task_struct *dst,
	     int dst_cpu)
{
	if (src && is_target(src->tgid))
		numa_event(ctx, src, src_cpu, dst_cpu, 2);
	if (dst && is_target(dst->tgid))
		numa_event(ctx, dst, dst_cpu, src_cpu, 2);
	return 0;
}

// BIO_IN_FAULT marks a block request issued inside a page fault of the
// same thread (a fault start is pending for it): its user stack is left
// out, because the fault's own event carries the same one and the reader
// (bpf.Session) copies it over. That halves what a major fault costs.
#define BIO_IN_FAULT 0x100
// A fault start older than this is stale (a fault that ended in an error
// and was never accounted), not the fault that issued the request.
#define FAULT_STALE_NS 10000000000ULL

SEC("tp_btf/block_rq_issue")
int BPF_PROG(handle_block_rq_issue, struct request *rq)
{
	if (!current_is_target())
		return 0;
	struct event *e = scratch_event();
	if (!e)
		return 0;
	fill_current(e, KIND_BLOCKIO);
	e->arg0 = rq->__sector;
	e->arg1 = rq->__data_len;
	struct gendisk *disk = BPF_CORE_READ(rq, q, disk);
	if (disk)
		e->arg2 = ((__u64)BPF_CORE_READ(disk, major) << 20) | BPF_CORE_READ(disk, first_minor);
	e->arg3 = rq->cmd_flags;
	struct fault_val *f = NULL;
	if (ENABLED(KIND_PAGEFAULT)) {
		__u32 tid = e->tid;
		f = bpf_map_lookup_elem(&fault_start, &tid);
	}
	if (f && e->ts_ns - f->ts < FAULT_STALE_NS) {
		e->flags = BIO_IN_FAULT;
		e->ustack_len = 0;
		long n = bpf_get_stack(ctx, e->kstack, sizeof(e->kstack), SKIP_TP_BTF);
		e->kstack_len = n >= 0 ? (__s32)((__u64)n / 8) : (__s32)n;
	} else {
		current_stacks(ctx, e, SKIP_TP_BTF);
	}
	__u64 key = (__u64)rq;
	if (bpf_map_update_elem(&bio_start, &key, e, BPF_ANY))
		count_drop(DROP_MAPFULL + KIND_BLOCKIO);
	return 0;
}

SEC("tp_btf/block_rq_complete")
int BPF_PROG(handle_block_rq_complete, struct request *rq, blk_status_t error,
	     unsigned int nr_bytes)
{
	__u64 key = (__u64)rq;
	struct event *e = bpf_map_lookup_elem(&bio_start, &key);
	if (!e)
		return 0;
	e->dur_ns = bpf_ktime_get_ns() - e->ts_ns;
	e->flags |= error;
	emit_copy(e);
	bpf_map_delete_elem(&bio_start, &key);
	return 0;
}

SEC("perf_event")
int handle_cpu_sample(struct bpf_perf_event_data *ctx)
{
	if (!current_is_target())
		return 0;
	struct event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e) {
		count_drop(KIND_ONCPU);
		return 0;
	}
	fill_current(e, KIND_ONCPU);
	e->dur_ns = sample_period_ns;
	current_stacks(ctx, e, SKIP_NONE);
	bpf_ringbuf_submit(e, wake_flags());
	return 0;
}
