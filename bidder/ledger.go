package bidder

import (
	"sync"
	"sync/atomic"
	"time"
)

// Ledger is the per-campaign spend ledger that budget pacing checks on the
// request path. Spend is in micro-USD.
type Ledger interface {
	// TrySpend debits amount from the campaign's pacing credit if the credit
	// and the remaining daily budget allow it, and reports whether it did.
	TrySpend(campaign uint32, amount int64) bool
	// Reconcile closes one pacing interval for every campaign: it records the
	// interval's spend in the campaign's history, derives a catch-up factor
	// from that history and refills the pacing credit.
	Reconcile()
	// Spent returns the campaign's total spend.
	Spent(campaign uint32) int64
	// ReconcileStats returns the number of reconciliations and their total
	// duration.
	ReconcileStats() (n int64, total time.Duration)
}

// DefaultReconcileInterval is how often the pacing ledger is reconciled.
const DefaultReconcileInterval = time.Second

// historyLen is the number of past intervals a campaign's pace is judged on.
const historyLen = 64

// pacingPeriod is the time over which a daily budget is spread.
const pacingPeriod = 24 * time.Hour

// campaignState is one campaign's pacing state.
type campaignState struct {
	budget        int64 // daily budget
	spent         int64
	intervalSpent int64
	credit        int64 // spend allowed before the next refill
	refill        int64 // base refill per interval
	hist          [historyLen]int64
	pos           int
}

func newCampaignState(c Campaign, interval time.Duration) campaignState {
	intervals := int64(pacingPeriod / interval)
	refill := int64(c.DailyBudgetUSDm) / max(intervals, 1)
	// Bursts of a few impressions are allowed; pacing holds on average.
	return campaignState{budget: int64(c.DailyBudgetUSDm), refill: refill, credit: refill * historyLen}
}

func (s *campaignState) trySpend(amount int64) bool {
	if amount <= 0 {
		return true
	}
	if s.credit < amount || s.spent+amount > s.budget {
		return false
	}
	s.credit -= amount
	s.spent += amount
	s.intervalSpent += amount
	return true
}

// reconcile walks the campaign's history: under-delivering campaigns get up
// to 4× their base refill so they catch up, over-delivering ones 1×.
func (s *campaignState) reconcile() {
	s.hist[s.pos] = s.intervalSpent
	s.pos = (s.pos + 1) % historyLen
	s.intervalSpent = 0
	var delivered int64
	for _, h := range s.hist {
		delivered += h
	}
	want := s.refill * historyLen
	factor := int64(1)
	switch {
	case delivered == 0:
		factor = 4
	case delivered < want:
		factor = min(4, want/delivered)
	}
	s.credit = min(s.credit+s.refill*factor, s.refill*historyLen*4, s.budget-s.spent)
}

// GlobalLedger is the baseline ledger: one mutex over all campaigns, held by
// every TrySpend and for the whole walk of every Reconcile.
type GlobalLedger struct {
	mu      sync.Mutex
	camps   []campaignState
	nRec    atomic.Int64
	recNano atomic.Int64
}

// NewGlobalLedger returns the baseline ledger for the campaigns.
func NewGlobalLedger(camps []Campaign, interval time.Duration) *GlobalLedger {
	l := &GlobalLedger{camps: make([]campaignState, len(camps))}
	for i, c := range camps {
		l.camps[i] = newCampaignState(c, interval)
	}
	return l
}

// TrySpend implements Ledger.
func (l *GlobalLedger) TrySpend(campaign uint32, amount int64) bool {
	if int(campaign) >= len(l.camps) {
		return false
	}
	l.mu.Lock()
	ok := l.camps[campaign].trySpend(amount)
	l.mu.Unlock()
	return ok
}

// Reconcile implements Ledger, holding the global mutex for the whole walk.
func (l *GlobalLedger) Reconcile() {
	start := time.Now()
	l.mu.Lock()
	for i := range l.camps {
		l.camps[i].reconcile()
	}
	l.mu.Unlock()
	l.nRec.Add(1)
	l.recNano.Add(int64(time.Since(start)))
}

// Spent implements Ledger.
func (l *GlobalLedger) Spent(campaign uint32) int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.camps[campaign].spent
}

// ReconcileStats implements Ledger.
func (l *GlobalLedger) ReconcileStats() (int64, time.Duration) {
	return l.nRec.Load(), time.Duration(l.recNano.Load())
}

// LedgerShards is the number of stripes of the sharded ledger.
const LedgerShards = 256

// ShardedLedger is the locks fix: campaigns are striped over LedgerShards
// mutexes (campaign c lives in shard c % LedgerShards), and Reconcile locks
// one shard at a time, so a request waits at most for one shard's walk.
type ShardedLedger struct {
	shards  [LedgerShards]ledgerShard
	nRec    atomic.Int64
	recNano atomic.Int64
}

type ledgerShard struct {
	mu    sync.Mutex
	camps []campaignState
	_     [32]byte // keep shard headers on separate cache lines
}

// NewShardedLedger returns the striped ledger for the campaigns.
func NewShardedLedger(camps []Campaign, interval time.Duration) *ShardedLedger {
	l := &ShardedLedger{}
	for i := range l.shards {
		l.shards[i].camps = make([]campaignState, 0, len(camps)/LedgerShards+1)
	}
	for _, c := range camps {
		sh := &l.shards[c.ID%LedgerShards]
		sh.camps = append(sh.camps, newCampaignState(c, interval))
	}
	return l
}

func (l *ShardedLedger) locate(campaign uint32) (*ledgerShard, int) {
	sh := &l.shards[campaign%LedgerShards]
	i := int(campaign / LedgerShards)
	if i >= len(sh.camps) {
		return nil, 0
	}
	return sh, i
}

// TrySpend implements Ledger.
func (l *ShardedLedger) TrySpend(campaign uint32, amount int64) bool {
	sh, i := l.locate(campaign)
	if sh == nil {
		return false
	}
	sh.mu.Lock()
	ok := sh.camps[i].trySpend(amount)
	sh.mu.Unlock()
	return ok
}

// Reconcile implements Ledger, one shard at a time.
func (l *ShardedLedger) Reconcile() {
	start := time.Now()
	for s := range l.shards {
		sh := &l.shards[s]
		sh.mu.Lock()
		for i := range sh.camps {
			sh.camps[i].reconcile()
		}
		sh.mu.Unlock()
	}
	l.nRec.Add(1)
	l.recNano.Add(int64(time.Since(start)))
}

// Spent implements Ledger.
func (l *ShardedLedger) Spent(campaign uint32) int64 {
	sh, i := l.locate(campaign)
	if sh == nil {
		return 0
	}
	sh.mu.Lock()
	defer sh.mu.Unlock()
	return sh.camps[i].spent
}

// ReconcileStats implements Ledger.
func (l *ShardedLedger) ReconcileStats() (int64, time.Duration) {
	return l.nRec.Load(), time.Duration(l.recNano.Load())
}
