package auth

import (
	"slices"
	"sync"
	"time"
)

// Limiter bounds attempts per key (a client address, an account name):
// Burst at once, then one per Every (GCRA: one time per key, no timer).
// Login uses one per client and one per account, so that neither one
// client trying many accounts nor many clients trying one account get
// far. It is safe for concurrent use, and its memory is bounded: keys
// whose allowance is whole again are forgotten, and past MaxKeys the
// least limited are dropped first.
type Limiter struct {
	every time.Duration
	burst int
	max   int

	mu  sync.Mutex
	tat map[string]time.Time // theoretical arrival time of each key's next attempt
}

// NewLimiter returns a Limiter of burst attempts, one more per every, for
// at most maxKeys keys at once (0: 100,000).
func NewLimiter(burst int, every time.Duration, maxKeys int) *Limiter {
	if burst < 1 {
		burst = 1
	}
	if maxKeys <= 0 {
		maxKeys = 100_000
	}
	return &Limiter{every: every, burst: burst, max: maxKeys, tat: map[string]time.Time{}}
}

// Allow takes an attempt for key if it has one left; if not, it says when
// the next one comes (for Retry-After).
func (l *Limiter) Allow(key string) (ok bool, retryAfter time.Duration) {
	now := time.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	tat, seen := l.tat[key]
	if !seen || tat.Before(now) {
		tat = now
	}
	// Allowed while the debt stays within the burst.
	if wait := tat.Sub(now) - time.Duration(l.burst-1)*l.every; wait > 0 {
		return false, wait
	}
	if !seen && len(l.tat) >= l.max {
		l.prune(now)
	}
	l.tat[key] = tat.Add(l.every)
	return true, 0
}

// prune forgets the keys whose allowance is whole again, and if that is
// not enough, the least limited (earliest) ones, down to 90 % of max.
func (l *Limiter) prune(now time.Time) {
	for k, t := range l.tat {
		if !t.After(now) {
			delete(l.tat, k)
		}
	}
	keep := l.max * 9 / 10
	if len(l.tat) < keep {
		return
	}
	// One sort per prune, and a prune per tenth of max new keys.
	type entry struct {
		key string
		tat time.Time
	}
	all := make([]entry, 0, len(l.tat))
	for k, t := range l.tat {
		all = append(all, entry{k, t})
	}
	slices.SortFunc(all, func(a, b entry) int { return a.tat.Compare(b.tat) })
	for _, e := range all[:len(all)-keep+1] {
		delete(l.tat, e.key)
	}
}
