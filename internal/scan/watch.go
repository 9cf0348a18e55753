package scan

import (
	"cmp"
	"context"
	"errors"
	"io/fs"
	"maps"
	"path/filepath"
	"runtime/debug"
	"slices"
	"sync"
	"syscall"
	"time"
)

// Serve keeps the index current until ctx is done: a full scan at once,
// then the folders that change (when watching), a full scan every
// Interval, one whenever Start asks, and a scan of the libraries
// SetLibraries adds or moves.
func (s *Scanner) Serve(ctx context.Context) error {
	var dirty <-chan map[dirKey]bool
	if s.opts.Watch {
		w, err := newWatcher(s)
		if err != nil {
			s.report("cannot watch folders, changes show at the next rescan", "err", err)
		} else {
			s.watch.Store(w)
			ch := make(chan map[dirKey]bool)
			dirty = ch
			go w.run(ctx, ch)
			defer func() {
				s.watch.Store(nil)
				w.close()
			}()
		}
	}
	var tick <-chan time.Time
	if s.opts.Interval > 0 {
		t := time.NewTicker(s.opts.Interval)
		defer t.Stop()
		tick = t.C
	}
	// Mounting a disk on a library's folder raises no event: the roots
	// are checked every rootCheck (two stats per library).
	roots := time.NewTicker(rootCheck)
	defer roots.Stop()
	// Remote libraries whose storage could not be reached are scanned
	// again with backoff (retries), not only at the next full rescan.
	retry := time.NewTimer(time.Hour)
	defer retry.Stop()
	s.runLogged(ctx, nil)
	for {
		s.armRetry(retry)
		select {
		case <-ctx.Done():
			return nil
		case <-retry.C:
			if due := s.retry.take(time.Now()); len(due) > 0 {
				s.runLogged(ctx, due)
			}
		case <-s.start:
			s.runLogged(ctx, nil)
		case <-tick:
			s.runLogged(ctx, nil)
		case <-s.wake:
			s.runPending(ctx)
		case <-roots.C:
			for _, name := range s.opts.Tree.Names() {
				if changed, _ := s.opts.Tree.Reopen(name); changed {
					s.log.Info("library folder replaced (mounted?), scanning it", "library", name)
					s.runLogged(ctx, nil)
					break
				}
			}
		case dirs := <-dirty:
			s.rescan(ctx, dirs)
		}
	}
}

// Start asks Serve for a full scan; false if one is running or asked for.
func (s *Scanner) Start() bool {
	if s.Progress().Running {
		return false
	}
	select {
	case s.start <- struct{}{}:
		return true
	default:
		return false
	}
}

// rootCheck is how often Serve checks whether a library's folder was
// replaced (a disk mounted on it).
const rootCheck = 30 * time.Second

// progressEvery is how often a running scan logs its progress.
const progressEvery = 10 * time.Second

// runLogged runs a scan of the libraries in only (a full scan when nil)
// and logs its progress and outcome.
func (s *Scanner) runLogged(ctx context.Context, only map[string]bool) {
	kind := "full"
	var libs []any
	if only != nil {
		kind = "libraries"
		libs = []any{"libraries", slices.Sorted(maps.Keys(only))}
	}
	s.log.Info("scan started", libs...)
	done := make(chan struct{})
	go func() {
		t := time.NewTicker(progressEvery)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				p := s.Progress()
				s.log.Info("scan progress", "library", p.Library, "files", p.Files, "probed", p.Probed,
					"failed", p.Failed, "queued", p.Queued, "rate", int(p.Rate), "eta", p.ETA.Round(time.Second))
			}
		}
	}()
	err := s.run(ctx, only)
	close(done)
	// A scan leaves megabytes of garbage (reports, batches, SQLite's
	// statements); give it back now rather than over minutes, so that an
	// idle server is small.
	debug.FreeOSMemory()
	if s.hookDone != nil {
		s.hookDone(kind)
	}
	p := s.Progress()
	attrs := []any{"files", p.Files, "probed", p.Probed, "unchanged", p.Unchanged, "failed", p.Failed,
		"removed", p.Removed, "dur", p.Finished.Sub(p.Started).Round(time.Millisecond)}
	switch {
	case err == nil:
		s.log.Info("scan done", attrs...)
	case ctx.Err() != nil:
		s.log.Info("scan stopped", attrs...)
	default:
		s.log.Error("scan failed", append(attrs, "err", err)...)
	}
}

// rescan scans the folders the watcher saw change (not their subfolders,
// except new ones).
func (s *Scanner) rescan(ctx context.Context, dirs map[dirKey]bool) {
	keys := make([]dirKey, 0, len(dirs))
	for k := range dirs {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b dirKey) int { return cmp.Or(cmp.Compare(a.library, b.library), cmp.Compare(a.dir, b.dir)) })
	if s.hookRescan != nil {
		s.hookRescan(keys)
	}
	c := &counters{}
	p := s.newPass(ctx, c, s.libs.Load())
	for _, k := range keys {
		vpath := k.library
		if k.dir != "" {
			vpath += "/" + k.dir
		}
		// A folder removed since is handled by its parent's listing.
		if _, err := s.opts.Tree.Stat(ctx, vpath); errors.Is(err, fs.ErrNotExist) {
			continue
		}
		p.walk(k.library, k.dir, nil, false)
	}
	err := p.finish()
	if err == nil {
		err = s.opts.Index.Refresh(ctx)
	}
	if s.hookDone != nil {
		s.hookDone("watch")
	}
	if err != nil {
		if ctx.Err() == nil {
			s.log.Error("watch: update failed", "err", err)
		}
		return
	}
	s.log.Info("watch: updated", "folders", len(keys), "probed", c.probed.Load(), "failed", c.failed.Load(),
		"removed", c.removed.Load())
}

// dirKey names a folder of a library.
type dirKey struct{ library, dir string }

// maxSettle bounds how long a steady stream of events can delay a rescan.
const maxSettle = time.Second

// watcher follows changes below the libraries' roots with one inotify
// watch per folder, added as scans list folders (notifier).
type watcher struct {
	s *Scanner
	n *notifier

	mu   sync.Mutex
	full bool // the kernel's watch limit was reached (reported once)
}

func newWatcher(s *Scanner) (*watcher, error) {
	n, err := newNotifier()
	if err != nil {
		return nil, err
	}
	return &watcher{s: s, n: n}, nil
}

func (w *watcher) close() { w.n.close() }

// add watches a folder of a library whose folder on disk is r. Adding a
// folder that is watched already changes nothing (one system call per
// folder and scan). A library removed or moved since r was taken is not
// watched: checked under w.mu, which drop takes after SetLibraries
// changed the libraries, so a pass cannot add back what drop removed.
func (w *watcher) add(r *libRoot, library, dir string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.full || r == nil || w.s.libs.Load().roots[library] != r {
		return
	}
	p := filepath.Join(r.path, filepath.FromSlash(dir))
	if err := w.n.add(p, dirKey{library, dir}); errors.Is(err, syscall.ENOSPC) {
		w.full = true
		w.s.report("too many folders to watch (raise fs.inotify.max_user_watches); the rest show changes at the next rescan",
			"watched", w.n.len())
	}
}

// drop stops watching a library's folders.
func (w *watcher) drop(library string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.n.dropLibrary(library)
}

// run collects the folders events touch and hands them to out once events
// have been quiet for Settle (at most maxSettle after the first).
func (w *watcher) run(ctx context.Context, out chan<- map[dirKey]bool) {
	events := make(chan event, 256)
	errs := make(chan error, 1)
	go w.n.read(func(ev event) {
		select {
		case events <- ev:
		case <-ctx.Done():
		}
	}, func(err error) {
		select {
		case errs <- err:
		default: // one is pending: a full scan is coming anyway
		}
	})
	pending := map[dirKey]bool{}
	var first time.Time
	ready := false // settled: waiting for Serve to take pending
	settle := time.NewTimer(time.Hour)
	settle.Stop()
	for {
		var send chan<- map[dirKey]bool
		var settled <-chan time.Time
		if ready {
			send = out
		} else if len(pending) > 0 {
			settled = settle.C
		}
		select {
		case <-ctx.Done():
			return
		case ev := <-events:
			// The folder holding the entry changed.
			k := ev.dir
			if len(pending) == 0 {
				first = time.Now()
			}
			pending[k] = true
			if !ready {
				settle.Reset(min(w.s.opts.Settle, max(0, maxSettle-time.Since(first))))
			}
		case err := <-errs:
			if errors.Is(err, errOverflow) {
				// Events were lost: only a full scan knows what changed.
				w.s.Start()
				continue
			}
			w.s.report("watch", "err", err)
		case <-settled:
			ready = true
		case send <- pending:
			pending = map[dirKey]bool{}
			ready = false
		}
	}
}

// armRetry sets t to fire when the next retry of an unreachable remote
// library is due (stopped when none is).
func (s *Scanner) armRetry(t *time.Timer) {
	t.Stop()
	if at, ok := s.retry.next(); ok {
		t.Reset(max(time.Until(at), 0))
	}
}
