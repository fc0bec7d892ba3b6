// Package bpf owns tailgate's kernel tail collectors: the BPF C sources
// (collectors.bpf.c), vmlinux.h, the committed bpf2go output
// (collectors_x86_bpfel.go and .o) and the Go loader that starts a
// profiling session for a set of processes and streams typed events.
//
// # Collectors and hooks
//
// Every program filters in the kernel to the target tgids (a hash map; a
// target's forked child processes are added by tp_btf/sched_process_fork
// unless Options.NoFollowChildren). Every event carries CLOCK_MONOTONIC
// start and duration, pid, tid, cpu, thread name and user + kernel stacks
// taken with bpf_get_stack into the event (never stack-id maps).
//
//	OffCPU      tp_btf/sched_switch: blocking switches only (a preempted thread
//	            is in RunQueue); user stack at switch-out into task
//	            storage, kernel stack (bpf_get_task_stack) and emission at
//	            switch-in, only when off CPU for >= Options.MinOffCPU
//	RunQueue    tp_btf/sched_wakeup, sched_wakeup_new, sched_switch (preempted
//	            while runnable): enqueue → switch-in; the task that ran
//	            instead; kernel stack of the woken task via
//	            bpf_get_task_stack for waits >= Options.MinRunQueueStack
//	            (500 µs; shorter ones ErrStackNotTaken), no user stack;
//	            waits shorter than Options.MinRunQueue (50 µs) are dropped
//	Futex       tracepoint syscalls/sys_enter_futex + sys_exit_futex (wait ops
//	            only: WAIT, WAIT_BITSET, LOCK_PI, LOCK_PI2, WAIT_REQUEUE_PI),
//	            with uaddr, op and return value; waits shorter than
//	            Options.MinFutex (10 µs) are dropped before any stack walk;
//	            tracefs is mounted if needed
//	PageFault   tp_btf/page_fault_user (+ page_fault_kernel) for the start,
//	            PERF_COUNT_SW_PAGE_FAULTS_MAJ/_MIN perf events for the end
//	BlockIO     tp_btf/block_rq_issue → block_rq_complete, attributed at issue;
//	            a request issued inside a page fault of the thread (a fault
//	            start pending, the PageFault collector on) skips its user
//	            stack, which the session copies from that fault's event
//	            (Event.InFault; see Block I/O in a fault)
//	NUMAMigrate tp_btf/sched_migrate_task with a cpu→node array map filled
//	            from sysfs; sched_move_numa / sched_swap_numa when present;
//	            a load-balancing move between CPUs of one node is not a
//	            NUMA move: counted (Stats.SameNodeMigrations), not sent
//	OnCPU       perf_event PERF_COUNT_SW_CPU_CLOCK per CPU at Options.SampleHz
//	            (499 Hz), linked with link.AttachRawLink(AttachPerfEvent)
//
// # Page faults without fentry
//
// The issue asks for fentry/fexit on handle_mm_fault; on these kernels
// loading any fentry/fexit program fails with EPERM (and kprobes are
// compiled out), so the end of a fault comes from the kernel's own
// accounting instead: mm_account_fault raises the MAJ/MIN software perf
// event once per completed fault, not per VM_FAULT_RETRY attempt, in the
// faulting thread, with the fault address — the same decision that
// increments maj_flt/min_flt in /proc/PID/stat. Faults taken inside
// get_user_pages have no registers and raise no perf event; they are
// counted in majflt but not seen here. Minor faults faster than
// Options.MinMinorFault are dropped in the kernel.
//
// # Block I/O in a fault
//
// Under page-out storms nearly every block request is a major fault's
// read, and taking the same user stack twice (for the fault and for its
// request) was the costliest part of the collectors after sched_switch.
// block_rq_issue now leaves the user stack out when the thread has a fault
// start pending (younger than 10 s, else it is a stale start) and sets
// the in-fault flag; the request completes, and is emitted, before the
// fault it serves, so the session holds such events per thread until the
// thread's next PageFault event and copies its user stack over when the
// fault's interval covers the issue time (faultJoin). A request whose
// fault never shows (a minor fault under MinMinorFault that issued
// readahead, a stale start) goes out without a user stack and
// UserStackErr = ErrStackFaultNotSeen (-2). Measured on the bidder with
// its page-out neighbour at 1000 req/s (the default rules; `tailgate run`
// in the background, `tailgate profile --pid <bidder> --duration 20s`,
// kernel run-time statistics), four interleaved runs, 2026-12-03
// 08:17–08:21 UTC: block_rq_issue 6.5 and 6.0 µs per run before, 4.0 and
// 5.3 µs after; as a multiple of the major-fault program's cost in the
// same run, which cancels most of the host's noise, 1.6–1.7× after
// against 2.4–2.6× before (five runs in all). 76,416 of 76,437 requests
// got their fault's user stack, 21 none.
//
// # Idle Go runtime threads
//
// In a Go service most blocking switches and futex waits are the
// runtime's own threads with nothing to run: an M parked in stopm's futex
// sleep, the netpoller's epoll_wait, sysmon's usleep. No request waits on
// them, yet each cost a user-stack walk at switch-out, a ring-buffer
// record and decoding. For a target that is a Go binary whose runtime
// offsets are known (internal/goprobe: DWARF or the per-release table),
// the loader fills go_procs with where the current g sits relative to the
// thread pointer and the offsets of g.m and m.curg; sched_switch (off-CPU)
// and sys_enter_futex then read the thread's m.curg and record nothing
// when it is nil, counting the interval in Stats.GoIdle instead. A
// goroutine blocked in a syscall, or taking a runtime lock on the system
// stack, keeps its M's curg, so its waits are kept. Followed children are
// checked on their first event. Options.KeepGoIdle turns the filter off.
// On a Go helper whose goroutines sleep on timers (TestGoIdleThreadsFiltered),
// 883 of 890 off-CPU and futex events were idle runtime threads; with the
// filter only the goroutine's own five sleeps remained.
//
// # Loss accounting
//
// One ring buffer (Options.RingBytes) carries every event. A failed
// reserve/output is counted per kind in a per-CPU array (Stats.Lost); a
// full start map (an interval whose start could not be remembered) in
// Stats.MapFull. Nothing is dropped silently.
//
// # Overhead
//
// Latest, 2026-12-04: `tailgate profile` reads its events under
// SCHED_IDLE while recording (--consumer-priority idle, the default;
// raised back to the process's policy if it falls a second behind the
// events, and summary.json's "consumer" says when). It woke every 50 ms
// poll (or at the ring's wake-up mark) and, having slept, ran ahead of the
// target on its CPU for a whole batch of decoding and writing; an
// idle-policy task never preempts a normal one and runs in the gaps.
//
// The benchmark's estimate changed too. A block's p99 rests on the ~50
// slowest of its ~4,800 requests per arm, so its p99 ratio is very noisy (sd of its log
// ~0.6), and the mean of per-block percent changes, judged until now, is
// biased upwards by that noise alone (E[Y/X] > 1 when X and Y are alike;
// TestPairedSummary). It now prints the geometric mean of the per-block
// ratios with a t interval on their logs, and the pooled change (all
// blocks' requests per arm) with a bootstrap interval over blocks.
// Recomputed from the logged per-block changes, the runs of 2026-12-03/04
// below: stats off p99 geometric +19.8 % [−15.9, +70.6] (arithmetic
// +291 %); one-P consumer p50 +1.5 % [−1.6, +4.7], p99 +14.1 % [−8.6,
// +42.5] (arithmetic +36.0 %).
//
// Two 30-block runs of the same command as below, with the consumer idle:
//
//	03:28–03:39 UTC (64 of 120 rounds over the lag rule):
//	  p50 617 → 631 µs: pooled +2.3 %; geometric +2.4 % [−0.7, +5.6]
//	  p99 7.57 → 7.79 ms: pooled +2.9 %; geometric +3.2 % [−18.1, +30.1]
//	  bidder CPU per request 681 → 700 µs: +3.2 % [−5.9, +13.1]
//	04:36–04:47 UTC (69 of 120 over the lag rule; the new output):
//	  p50 583 → 593 µs: pooled +1.7 % [−1.5, +5.5]; geometric +2.1 %
//	      [−1.4, +5.7]
//	  p99 7.42 → 9.49 ms: pooled +27.9 % [−10.0, +92.4]; geometric
//	      +15.7 % [−12.7, +53.2]
//	  bidder CPU per request 643 → 680 µs: +5.2 % [−2.8, +13.9]
//	both: rate +0.00 %, none lost, consumer 8.3–8.6 % of a CPU over the
//	rounds (its start and end included), programs 1.32–1.41 % of a CPU
//	(sched_switch ~23,500 runs/s at ~250 ns)
//
// Against the budget: p50 met (both runs' estimates under 3 %);
// throughput met; p99 NOT shown: the two runs' estimates are +3 % and
// +16–28 %, and every interval spans from below 0 to well above 5 %. On
// this shared 2-vCPU host a 12-minute run cannot resolve a 5 % change of
// the p99.
//
// Turning the statistics on and off appears to stall the target. Of 13
// `tailgate profile --go --collectors oncpu --program-stats` sessions of
// 12–15 s against the bidder at 600 req/s (/tmp/gohits.sh, 2026-12-04
// 03:23 and 05:09–05:21 UTC), 5 held the bidder's requests for 0.1–1.1 s
// (up to every request of a 250 ms stretch over 30 ms), each starting
// within about 2 s after the session ended, when the statistics go off;
// one session also had a 166 ms hold 2 s after its start. Keeping the
// consumer idle through its final writing did not help (2 of those 5
// sessions). The same sessions without --program-stats, 5 in a row: no
// hold, worst request 44 ms. Toggling kernel.bpf_stats_enabled by sysctl
// every 2 s (12 times, /tmp/toggle.sh) gave no hold over 72 ms with
// nothing attached, and one of 170 ms, 1.5 s after an "off", with the Go
// probes and on-CPU sampling attached. The mechanism is not found (the
// statistics are a static branch the kernel patches on every toggle) and
// the samples are small, but the statistics are for measuring the
// collectors (the
// benchmark's extra cost round, which no arm counts) and never run beside
// a gate. Before 2026-12-03 late they were on in every session, and some
// of the p99 deltas measured then (below) may have been these holds.
//
// Before, 2026-12-03 late: the kernel's BPF run-time statistics are off
// unless asked for (Options.ProgramStats, `tailgate profile
// --program-stats`). They had been on in every session so that the
// programs' cost could be reported, and they were a large part of it:
// BPF_ENABLE_STATS makes every BPF program run on the host take two
// sched_clock reads and a per-CPU counter update. Measured with a
// futex(FUTEX_WAKE) loop of an untraced process while the collectors were
// attached to another pid and kernel.bpf_stats_enabled was toggled every
// 2 s (23:41 UTC; 250 ms windows, medians):
//
//	no collectors                          0.16 µs a futex call
//	collectors attached, statistics off    0.31 µs (the two futex
//	                                        tracepoint programs and the
//	                                        syscall tracepoint path)
//	statistics on                          0.49 µs: ~90 ns a program run
//
// Against the bidder the programs run ~66,000 times a second (~110 a
// request at 600 req/s), so the statistics alone were ~10 µs a request.
// Two other figures from the same kind of loop: with only the futex
// collector attached every syscall of every process takes the syscall
// tracepoint path (getppid 98 → 118 ns; with only off-CPU attached 95
// ns); and scanning a short list of target tgids instead of the targets
// hash lookup gained nothing measurable (futex loop 0.280 vs 0.290 µs),
// so the hash map stayed.
//
// The overhead benchmark's "on" arm now runs as a gate does, without the
// statistics; one more round with them, counted in neither arm, reports
// each program's cost. 30 ABBA blocks of 4 s rounds after 1 s lead-ins,
// 23:45–23:56 UTC (76 of 120 rounds over the lag rule):
//
//	TAILGATE_OVERHEAD=1 TAILGATE_OVERHEAD_ROUNDS=30 TAILGATE_OVERHEAD_ROUND=4s \
//	  TAILGATE_OVERHEAD_WARMUP=1s go test ./cmd/tailgate -run ProfileOverhead -v -timeout 40m
//
//	p50  pooled 666 → 683 µs, +2.6 %; per block mean +3.3 %,
//	     95 % CI [−0.0 %, +6.7 %] (per-block sd 9 %)
//	p99  pooled 7.95 → 10.14 ms, +27.5 %; per block unresolvable (one
//	     block +8,223 %: a host stall)
//	bidder CPU per request: pooled +4.1 %; per block mean +6.8 %,
//	     95 % CI [−2.8 %, +16.5 %]
//	achieved rate +0.00 %; events/s runq 928, oncpu 208, pagefault 39,
//	     offcpu 4; none lost. Programs, with the statistics on (the extra
//	     round): 1.90 % of a CPU — sched_switch 24,716 runs/s at 343 ns,
//	     sched_wakeup 15,150 at 236, futex enter 10,763 at 233 and exit
//	     at 149, cpu-clock 667 at 2,718 (~8.5 µs a target sample: two
//	     stack walks), sched_migrate_task 3,743 at 200.
//
// Against the budget: throughput met; p50 at the edge — the pooled
// change is under 3 %, the per-block mean over it, and the interval
// (0 to 6.7 %) decides neither; p99 not resolvable on this host.
//
// Then `tailgate profile` records on one P (GOMAXPROCS=1 while recording):
// its steady CPU beside the loaded bidder 1.2 → 0.75 % of a CPU and its
// context switches ~480 → ~200 a second (with --go: ~2.9 → ~1.5 %,
// ~1,260 → ~390), measured by /tmp/conscmp.sh over 12 s windows. The
// same 30-block benchmark, 00:33–00:45 UTC 2026-12-04 (60 of 120 rounds
// over the lag rule):
//
//	p50  pooled 585 → 593 µs, +1.4 %; per block mean +1.9 %,
//	     95 % CI [−1.3 %, +5.1 %]
//	p99  pooled 6.60 → 7.96 ms, +20.5 %; per block mean +36.0 %,
//	     95 % CI [+3.1 %, +68.9 %]
//	bidder CPU per request: pooled +3.6 %; per block +6.3 % [−3.5, +16.2]
//	rate +0.00 %; consumer 8.1 % of a CPU over the rounds (start and end
//	included); programs 1.34 % of a CPU (extra round, statistics on)
//
// Against the budget: p50 met by both estimates (the interval holds 3 %
// too); throughput met; **p99 NOT met** (+20–36 %).
//
// Before, 2026-12-03 evening, after run-queue waits under 500 µs stopped
// taking the waiting task's kernel stack (Options.MinRunQueueStack).
// That unwind (bpf_get_task_stack of a task that is not running) was
// most of what the programs cost: kernel run-time statistics of 15 s
// `tailgate profile` sessions against the bidder at 600 req/s without
// neighbours (`tailgate run --rules` with the neighbours removed beside
// them), old and new programs alternated A B B A A B, 20:13–20:15 UTC
// (/tmp/ab.sh):
//
//	all programs  33.8 23.6 24.9 → 18.0 18.7 17.2 ms per second
//	sched_switch  762 605 657 → 316 343 313 ns a run (~25,000 runs/s)
//	runq events   ~1,700/s either way; of them 4.8 % wait >= 500 µs and
//	              keep their stack (18.8 % of the wait time, measured on
//	              the old programs' events)
//
// An earlier A/B the same way, without any runq stack, put its cost
// at ~6 µs a wait. The overhead benchmark with the new programs, 8 ABBA
// blocks of 15 s rounds (20:17–20:27 UTC; 31 of 32 rounds over the 1 ms
// lag rule, a noisy host):
//
//	TAILGATE_OVERHEAD=1 TAILGATE_OVERHEAD_ROUNDS=8 \
//	  go test ./cmd/tailgate -run ProfileOverhead -v -timeout 40m
//
//	p50  per block +13.0 +15.8 +4.5 +14.7 +7.2 −14.6 +2.8 −5.5 %:
//	     mean +4.7 %, 95 % CI [−4.1 %, +13.6 %]
//	p99  mean +5.6 %, 95 % CI [−36.2 %, +47.3 %]
//	bidder CPU per request: mean +1.6 %, 95 % CI [−7.0 %, +10.1 %]
//	     (was +7.5 % and +7.9 % in the two runs below)
//	achieved rate +0.00 %; consumer 4.2 % of a CPU; BPF programs 1.75 %
//	of one CPU (was 2.95–3.30 %): sched_switch 278 ns a run (was 654)
//
// and with rounds four times shorter, so that the arms of a block are
// seconds apart (30 ABBA blocks of 4 s rounds after 1 s lead-ins,
// 20:28–20:39 UTC; 89 of 120 rounds over the lag rule):
//
//	TAILGATE_OVERHEAD=1 TAILGATE_OVERHEAD_ROUNDS=30 TAILGATE_OVERHEAD_ROUND=4s \
//	  TAILGATE_OVERHEAD_WARMUP=1s go test ./cmd/tailgate -run ProfileOverhead -v -timeout 40m
//
//	p50  mean +4.4 %, 95 % CI [+0.7 %, +8.1 %] (per-block sd 9.6 %: the
//	     host's mood moves the bidder's p50 by ±10 % from one 5 s round
//	     to the next, e.g. 602 → 837 µs)
//	p99  mean +18.8 %, 95 % CI [−3.8 %, +41.5 %]
//	bidder CPU per request: mean +9.1 %, 95 % CI [+1.1 %, +17.2 %] (4 s
//	     rounds are few scheduler ticks: coarse)
//	achieved rate +0.00 %; BPF programs 2.03 % of one CPU: sched_switch
//	0.86 % (29,778 runs/s at 289 ns), sched_wakeup 0.33 %, futex enter +
//	exit 0.42 % (12,900 runs/s each for 0–1 events/s: the syscall
//	tracepoint's own cost, on every futex call on the host), cpu-clock
//	0.22 %, sched_migrate_task 0.16 %; events/s: numa 1,502, runq 1,141,
//	oncpu 208, offcpu 9; none lost.
//
// Then migrations within a node stopped being sent as NUMA events (they
// are counted, Stats.SameNodeMigrations: half of all events here) and the
// same short-round benchmark ran again (20:53–21:04 UTC; 83 of 120 rounds
// over the lag rule):
//
//	p50  mean +3.7 %, 95 % CI [+1.0 %, +6.5 %] (per-block sd 7.6 %)
//	p99  mean +12.7 %, 95 % CI [−5.1 %, +30.5 %]
//	bidder CPU per request: mean +8.4 %, 95 % CI [−0.0 %, +16.8 %]
//	achieved rate +0.00 %; BPF programs 2.13 % of one CPU (sched_migrate_task
//	180 ns a run, was 348); events/s: runq 1,229, oncpu 221, offcpu 9,
//	numa 0 (4,397 migrations a second counted); none lost.
//
// Against the budget: throughput met; **p50 NOT met**: +3.7 % (+4.4 %
// before the NUMA change), the interval excludes 0 and holds 3 %. The programs' time is now ~34 µs per
// request (2.03 % of a CPU over 600 req/s), about 4 % of a p50 of
// 690–840 µs were it all on a request's path, which the p50 change
// matches; the budget needs it near 25 µs. p99 not resolvable here.
//
// Before, 15:45–15:55 UTC 2026-12-03, at 600 req/s, after the load
// generator's witness child was made cheaper (internal/load/BENCHMARKS.md,
// "What the measuring apparatus costs the service"), before the run-queue
// and futex starts moved to task storage (below); 8 ABBA blocks of 15 s
// rounds, every kernel collector, no Go uprobes, a noisy host (every round
// broke the 1 ms lag rule, up to 2,563 of 9,000 sends late):
//
//	TAILGATE_OVERHEAD=1 TAILGATE_OVERHEAD_ROUNDS=8 \
//	  go test ./cmd/tailgate -run ProfileOverhead -v -timeout 40m
//
//	p50  per block −1.4 +8.8 +0.6 +10.5 +18.8 +0.3 −9.2 +9.7 %:
//	     mean +4.8 %, 95 % CI [−2.6 %, +12.1 %]
//	p99  mean +3.0 %, 95 % CI [−21.1 %, +27.1 %]
//	bidder CPU per request: mean +7.5 %, 95 % CI [−3.1 %, +18.1 %]
//	achieved rate +0.00 %; consumer 4.6 % of a CPU; BPF programs 3.30 % of
//	one CPU (sched_switch 1.99 %: 26,297 runs/s at 758 ns; sched_wakeup
//	0.44 %; futex enter+exit 0.48 %; cpu-clock 0.23 %); events/s: runq
//	1,317, numa 1,036, oncpu 230, offcpu 6; none lost.
//
// Against the budget: p50 NOT shown (point estimate +4.8 %, the interval
// holds 0 and 3 % alike), p99 not resolvable, throughput met.
//
// Run-queue and futex starts in task storage instead of hash maps, and
// the clock read in sched_switch only once a target is involved: kernel
// run-time statistics of `tailgate profile --duration 15s` sessions
// against the baseline bidder at 600 req/s with its page-out neighbour
// (`tailgate run --rate 600 --rounds 5 --duration 20s` beside them),
// old and new programs in ABBA order, 16:06–16:08 UTC (/tmp/bpfab.sh),
// ns per run old → new, three sessions each:
//
//	sched_switch  987 1047 847 → 1082 994 767   (no change: the target's
//	              own switches, with their stack walks, dominate)
//	sched_wakeup  177 192 173 → 153 147 140     (−18 %)
//	futex exit    201 191 149 → 168 162 125     (−15 %)
//	all programs  1100 1048 866 → 1050 963 864 ms per 15 s (−5 %)
//
// and against a process that never switches (every switch on the host
// takes the non-target path; the same A/B, 16:04 UTC): sched_switch 168
// 165 173 → 114 103 117 ns per run (−34 %).
//
// The overhead benchmark again with these programs (the same command,
// 16:09–16:19 UTC, every round again over the 1 ms lag rule):
//
//	p50  812 → 877 µs; per block +4.6 +11.1 +6.2 +2.9 +8.5 +9.1 +10.0 +18.5 %:
//	     mean +8.9 %, 95 % CI [+4.9 %, +12.9 %]
//	p99  mean +1.5 %, 95 % CI [−30.3 %, +33.4 %]
//	bidder CPU per request: mean +7.9 %, 95 % CI [−1.9 %, +17.6 %]
//	achieved rate +0.00 %; consumer 4.6 % of a CPU; BPF programs 2.95 % of
//	one CPU (was 3.30 %): sched_switch 654 ns a run (was 758), sched_wakeup
//	216 (271), futex exit 162 (207)
//
// The programs cost 11 % less, but the p50 budget is NOT met: this run's
// interval lies above 3 % (the one before held it; the two intervals
// overlap, so they do not show the change either way). The bidder's CPU
// per request rose 7.5–7.9 % in both runs; the programs' 2.95–3.30 % of
// a CPU, were all of it run in the bidder's threads, would be 6–7 % of
// its ≈ 47 %: most of the rise is likely their own time (an inference:
// the statistics do not say whose context a run was in).
//
// Earlier, at the rules' new peak of 600 req/s, 13:34–13:43 UTC 2026-12-03
// (8 ABBA blocks of 15 s rounds, every kernel collector, no Go uprobes; a
// noisy hour on the shared host — a demo minutes before had 34 of 50
// rounds invalid — and one block overlapped a `go test ./internal/gate`
// run of mine):
//
//	TAILGATE_OVERHEAD=1 TAILGATE_OVERHEAD_ROUNDS=8 \
//	  go test ./cmd/tailgate -run ProfileOverhead -v -timeout 40m
//
//	p50  per block +21.0 +8.9 +23.9 +2.4 +0.1 +9.1 −3.4 +55.9 %:
//	     mean +14.7 %, 95 % CI [−1.3 %, +30.8 %]
//	p99  per block mean +32.2 %, 95 % CI [−47 %, +112 %]
//	bidder CPU per request: mean +9.9 %, 95 % CI [−4.0 %, +23.9 %]
//	achieved rate +0.00 %; BPF programs 3.77 % of one CPU (sched_switch
//	2.33 %: 31,900 runs/s at 731 ns; sched_wakeup 0.47 %; futex 0.54 %;
//	cpu-clock 0.26 %); events/s: runq 1,650, numa 755, oncpu 253,
//	offcpu 4, pagefault 4, futex 1; none lost.
//
// Not a resolution of the budget either way: the intervals are 3× wider
// than at 10:42 below, and the two blocks at +21 % and +56 % carry the
// mean.
//
// Before, 10:42–10:52 UTC 2026-12-03, after the idle-Go-thread filter,
// with the per-block paired comparison (8 ABBA blocks of 15 s rounds,
// bidder baseline at the rules' 1000 req/s, every kernel collector in a
// `tailgate profile` child, no Go uprobes):
//
//	TAILGATE_OVERHEAD=1 TAILGATE_OVERHEAD_ROUNDS=8 \
//	  go test ./cmd/tailgate -run ProfileOverhead -v -timeout 40m
//
//	p50  826 → 866 µs; per block +4.4 +14.0 −1.5 +2.6 −0.1 +10.4 +10.2 +1.3 %:
//	     mean +5.2 %, 95 % CI [+0.4 %, +9.9 %]
//	p99  18.98 → 17.44 ms; per block mean −1.0 %, 95 % CI [−36 %, +34 %]
//	bidder CPU per request 724 → 779 µs; mean +7.5 %, 95 % CI [+3.5 %, +11.6 %]
//	achieved rate +0.00 %; consumer (tailgate profile) 5.1 % of a CPU
//
// The filter took off-CPU events from ≈ 4,400/s to 6/s and futex waits
// from ≈ 3,000/s to 1/s; BPF programs 7.6 → 5.2 % of one CPU (all
// processes), of which sched_switch 3.0 % (43,800 runs/s at 685 ns: every
// switch on the host), sched_wakeup 0.6 %, sched_migrate_task 0.5 % (1.7
// µs a run, a task stack per migration — since cut for moves within a node,
// ErrStackNotTaken), futex enter/exit 0.7 %, cpu-clock 0.3 %. Remaining
// events: runq 2,500/s, numa 900/s, oncpu 380/s; none lost. Against the
// budget: throughput met; **p50 not met** (+5.2 %, the interval excludes
// 0 but not 3 %); p99 not resolvable on this host (per-block changes from
// −91 % to +49 %). All 32 rounds were invalid by the 1 ms lag rule (own
// lag 3–9 ms, before the load generator's GC was quieted); as interleaved
// arms on one host they still compare.
//
// Earlier:
//
// Measured 11:07–11:26 UTC 2026-11-26 on the shared 2-core VM (load average
// ≈ 0.5 before), cmd/tailgate TestProfileOverheadBidder: the bidder
// baseline (2 M users, 256 MiB index, no neighbours) at the rules' 1000
// req/s, 3 ABBA blocks of 15 s rounds, every kernel collector on (a
// `tailgate profile` child process, the way the gate runs them) or off,
// no Go uprobes; three runs, the first before the consumer's JSON encoding
// was made cheap (11.0 → 3.9 µs per event, BenchmarkProfileConsume):
//
//	TAILGATE_OVERHEAD=1 TAILGATE_OVERHEAD_ROUNDS=3 \
//	  go test ./cmd/tailgate -run ProfileOverhead -v -timeout 30m
//
//	run  p50 off → on         p99 off → on          rate   bidder CPU/req  consumer CPU
//	1    409 → 420 µs +2.7 %  6.34 → 7.44 ms +17 %  +0 %   465 → 509 µs    7.7 % of a CPU
//	2    551 → 552 µs +0.2 %  8.91 → 8.84 ms −1 %   +0 %   624 → 638 µs    5.0 %
//	3    518 → 566 µs +9.3 %  7.86 → 9.14 ms +16 %  +0 %   591 → 651 µs    5.2 %
//
// Against the budget (≤ 3 % p50, ≤ 5 % p99, ≤ 2 % throughput): throughput
// is met (the achieved rate never moved); p50 and p99 are NOT shown to be
// met — one run of three is inside, and in run 3 every ABBA block put the
// "on" rounds' median 7–13 % above the "off" rounds'. Per-round p99 spans
// ±30 % on this host, so three blocks cannot resolve a 5 % p99 effect
// either way. Events per second with collectors on: offcpu ≈ 4,400, futex
// ≈ 3,000, numa ≈ 1,800, runq ≈ 700, oncpu ≈ 300, pagefault and blockio ≈ 0
// (no neighbours); none lost. BPF program cost (kernel run-time
// statistics, all processes) ≈ 7.6 % of one CPU, of which sched_switch
// 4.0 % (38,500 runs/s, 1.0 µs each: every context switch on the host),
// sys_exit_futex 1.6 % (16,300 runs/s), sched_migrate_task 0.6 %
// (1.4 µs each: a stack of a task that is not running), sched_wakeup 0.6 %,
// page_fault_kernel 0.4 %, cpu-clock samples 0.2 % (2.3 µs each). Where
// to cut next: stacks of off-CPU and futex waits of idle Go worker threads
// (runtime.notesleep/stopm), which no request ever waits on, and stacks of
// same-node migrations.
//
// Every round broke the 1 ms max-lag rule (max send lag 3.8–20 ms; the
// host's own floor, internal/load/BENCHMARKS.md), so these rounds would be
// invalid in a gate; as arms interleaved on one host they still compare.
//
// # Regenerating
//
//	go generate ./bpf/...
//
// runs bpf2go v0.22.0 with clang-14 and llvm-strip-14 (Debian 12) for
// target amd64; the output does not depend on the checkout path and is
// byte-for-byte reproducible. vmlinux.h was dumped from the CI kernel with
// `bpftool btf dump file /sys/kernel/btf/vmlinux format c`.
package bpf
