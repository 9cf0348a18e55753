package auth

import (
	"sync/atomic"
	"time"
)

// throttle lets a check (has another process changed a file?) run at most
// once per interval. Every request asks it, so the answer "not yet" takes
// one atomic load and no lock.
type throttle struct {
	last atomic.Int64 // UnixNano of the last check
}

// due reports whether a check may run at now, at least every after the
// last one; true claims it (another caller asking at once gets false).
func (t *throttle) due(now time.Time, every time.Duration) bool {
	last := t.last.Load()
	if now.UnixNano()-last < int64(every) {
		return false
	}
	return t.last.CompareAndSwap(last, now.UnixNano())
}

// done records a check made at now by other means (a load).
func (t *throttle) done(now time.Time) { t.last.Store(now.UnixNano()) }
