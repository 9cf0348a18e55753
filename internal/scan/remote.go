package scan

import (
	"context"
	"errors"
	"io/fs"
	"sync"
	"time"

	"mustserv/internal/storage"
)

// unreachable reports whether err says a remote library's storage could
// not be reached or answered nonsense: the library is offline with its
// items kept, and tried again with backoff.
func unreachable(err error) bool {
	return errors.Is(err, storage.ErrUnavailable) || errors.Is(err, storage.ErrTimeout)
}

// Backoff of the scans of unreachable remote libraries: the first retry
// after retryFirst, then twice as long each time, at most retryMax.
const (
	retryFirst = 30 * time.Second
	retryMax   = 30 * time.Minute
)

// retries tracks the remote libraries whose storage could not be reached
// and when to try each again.
type retries struct {
	mu    sync.Mutex
	fails map[string]int       // consecutive failures
	due   map[string]time.Time // next try
}

// note records the outcome of reaching a library's storage: err nil or
// not unreachable clears it.
func (r *retries) note(name string, err error, now time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.fails == nil {
		r.fails, r.due = map[string]int{}, map[string]time.Time{}
	}
	if !unreachable(err) {
		delete(r.fails, name)
		delete(r.due, name)
		return
	}
	n := r.fails[name]
	r.fails[name] = n + 1
	r.due[name] = now.Add(backoff(n))
}

// backoff is the wait after n earlier consecutive failures.
func backoff(n int) time.Duration {
	d := retryFirst
	for range n {
		if d >= retryMax/2 {
			return retryMax
		}
		d *= 2
	}
	return d
}

// forget drops a library that is no longer configured.
func (r *retries) forget(keep func(string) bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for name := range r.fails {
		if !keep(name) {
			delete(r.fails, name)
			delete(r.due, name)
		}
	}
}

// take removes and returns the libraries whose retry is due at now: the
// scan that retries them notes its outcome again (a scan that stops
// before that, or a library that is no longer remote, must not leave a
// retry due in the past, which would rescan it without pause).
func (r *retries) take(now time.Time) map[string]bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	names := map[string]bool{}
	for name, t := range r.due {
		if !t.After(now) {
			names[name] = true
			delete(r.due, name)
		}
	}
	return names
}

// next returns when the earliest retry is due; ok false when none waits.
func (r *retries) next() (at time.Time, ok bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, t := range r.due {
		if !ok || t.Before(at) {
			at, ok = t, true
		}
	}
	return at, ok
}

// errRemote is localStat's answer for a remote library.
var errRemote = errors.New("remote library: no device and inode")

// localStat is Tree.Stat for a folder of a local library; for a remote
// one it makes no request and returns errRemote.
func (s *Scanner) localStat(ctx context.Context, library, vpath string) (fs.FileInfo, error) {
	if s.opts.Tree.Remote(library) {
		return nil, errRemote
	}
	return s.opts.Tree.Stat(ctx, vpath)
}
