// Package scan fills the library index: it walks every library's folders,
// probes new and changed media files with bounded parallelism, records
// files that cannot be probed with their error, detects renames (same size
// and content hash), and keeps the index current afterwards by watching the
// folders (inotify) and rescanning periodically.
//
// A scan never deletes what it cannot see: an unreadable folder keeps its
// items, and a library whose root is missing, emptied or vanishes during the
// scan is marked offline with its items kept until it returns. Only a
// library removed from the configuration (SetLibraries) loses its items.
// It does not serve anything (package web does) nor decide how files are
// named (package library does).
package scan

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"mustserv/internal/index"
	"mustserv/internal/library"
	"mustserv/internal/media"
	"mustserv/internal/probe"
)

// Options configure a Scanner.
type Options struct {
	Index *index.Index
	Tree  *library.Tree
	// Roots maps each library's name to its folder on disk: to check that
	// a root is still there before removing anything, and to watch it.
	// They are the libraries the scanner keeps in the index (those of
	// Tree that are also here), until SetLibraries gives others.
	Roots map[string]string
	// Workers probe files in parallel; 0 means GOMAXPROCS (at least 2).
	Workers int
	// Probe are the options of every probe (peak window, byte budget).
	Probe probe.Options
	// Interval between full rescans by Serve; 0 means none.
	Interval time.Duration
	// Watch makes Serve follow changes (inotify; Linux only).
	Watch bool
	// Settle is how long watcher events must be quiet before the changed
	// folders are scanned; 0 means 250 ms.
	Settle time.Duration
	Logger *slog.Logger
}

// Scanner scans libraries into the index. One scan runs at a time.
type Scanner struct {
	opts  Options
	log   *slog.Logger
	start chan struct{} // Start's requests to Serve
	wake  chan struct{} // SetLibraries' requests to Serve: scan pending

	mu       sync.Mutex // guards the fields below and the scan itself
	running  bool
	library  string
	started  time.Time
	finished time.Time
	errs     []string
	pending  map[string]bool // libraries added or moved, to scan

	c atomic.Pointer[counters] // of the running or last full scan

	// libs is read without a lock by passes (per folder and file);
	// SetLibraries replaces it while holding gate.
	libs atomic.Pointer[libSet]
	// gate is held by every index write about a library, around the
	// check that the library is still the one the pass began with, and
	// by SetLibraries while it replaces libs and empties the removed
	// libraries: so that no result of a pass lands after the removal.
	gate      sync.Mutex
	removedAt map[string]uint64 // library → libSet.gen that removed it (under gate)
	unremoved map[string]bool   // removed libraries RemoveLibrary failed for (under gate)

	watch atomic.Pointer[watcher] // nil unless Serve watches

	retry retries // remote libraries whose storage could not be reached

	// Test hooks: hookProbed runs after each probe of a file, before its
	// size and time are checked again; hookDone after each scan ("full",
	// or "libraries" of those SetLibraries added or moved) or watcher
	// update ("watch") is written; hookRescan before a watcher update,
	// with the folders events named.
	hookProbed func(vpath string)
	hookDone   func(kind string)
	hookRescan func(dirs []dirKey)
}

// New returns a Scanner; nothing runs until Run or Serve.
func New(opts Options) *Scanner {
	if opts.Workers <= 0 {
		opts.Workers = max(2, runtime.GOMAXPROCS(0))
	}
	if opts.Settle <= 0 {
		opts.Settle = 250 * time.Millisecond
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	s := &Scanner{opts: opts, log: opts.Logger, start: make(chan struct{}, 1), wake: make(chan struct{}, 1),
		pending: map[string]bool{}, removedAt: map[string]uint64{}, unremoved: map[string]bool{}}
	s.c.Store(&counters{})
	libs := &libSet{roots: make(map[string]*libRoot, len(opts.Roots))}
	for name, dir := range opts.Roots {
		libs.roots[name] = &libRoot{path: dir}
	}
	s.libs.Store(libs)
	return s
}

// libSet is the libraries the scanner keeps in the index. It is never
// modified once stored in Scanner.libs.
type libSet struct {
	gen   uint64 // SetLibraries calls before this set
	roots map[string]*libRoot
}

// libRoot is a library's folder on disk. A library added, or moved to
// another folder, gets a new one, so that a pass can tell by comparing
// pointers whether what it found still belongs in the index.
type libRoot struct{ path string }

// counters count a pass's work.
type counters struct {
	files, probed, unchanged, failed, removed, queued atomic.Int64
}

// maxErrors is how many recent problems Progress keeps.
const maxErrors = 20

// Progress returns a snapshot of the running or last scan.
func (s *Scanner) Progress() Progress {
	s.mu.Lock()
	p := Progress{Running: s.running, Library: s.library, Started: s.started, Finished: s.finished,
		Errors: append([]string(nil), s.errs...)}
	s.mu.Unlock()
	c := s.c.Load()
	p.Files, p.Probed, p.Unchanged = c.files.Load(), c.probed.Load(), c.unchanged.Load()
	p.Failed, p.Removed, p.Queued = c.failed.Load(), c.removed.Load(), c.queued.Load()
	end := time.Now()
	if !p.Running && !p.Finished.IsZero() {
		end = p.Finished
	}
	if el := end.Sub(p.Started).Seconds(); !p.Started.IsZero() && el > 0 {
		p.Rate = float64(p.Probed) / el
		if p.Running && p.Rate > 0 {
			p.ETA = time.Duration(float64(p.Queued) / p.Rate * float64(time.Second))
		}
	}
	return p
}

// report records a problem for Progress and logs it.
func (s *Scanner) report(msg string, args ...any) {
	s.log.Warn(msg, args...)
	line := msg
	for i := 0; i+1 < len(args); i += 2 {
		line += fmt.Sprintf(" %v=%v", args[i], args[i+1])
	}
	s.mu.Lock()
	s.errs = append(s.errs, line)
	if len(s.errs) > maxErrors {
		s.errs = s.errs[len(s.errs)-maxErrors:]
	}
	s.mu.Unlock()
}

// ErrRunning is returned by Run while another scan runs.
var ErrRunning = errors.New("a scan is already running")

// Run scans every library once and returns when done (or ctx is
// cancelled: what was probed so far is kept).
func (s *Scanner) Run(ctx context.Context) error { return s.run(ctx, nil) }

// run scans the libraries in only (every library when nil) that both the
// tree and the scanner have, in the tree's order: the index holds what
// the server would serve.
func (s *Scanner) run(ctx context.Context, only map[string]bool) error {
	if !s.begin() {
		return ErrRunning
	}
	defer s.end()
	var errs []error
	if err := s.retryRemovals(ctx); err != nil {
		errs = append(errs, err)
	}
	libs := s.libs.Load()
	var names []string
	for _, name := range s.opts.Tree.Names() {
		if libs.roots[name] != nil && (only == nil || only[name]) {
			names = append(names, name)
		}
	}
	// Asked for by SetLibraries before this scan saw the change: done.
	s.mu.Lock()
	for _, name := range names {
		delete(s.pending, name)
	}
	s.mu.Unlock()
	for _, name := range names {
		s.setLibrary(name)
		if err := s.scanLibrary(ctx, name); err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			errs = append(errs, err)
		}
	}
	s.setLibrary("")
	if err := s.opts.Index.Refresh(ctx); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

func (s *Scanner) begin() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.running {
		return false
	}
	s.running = true
	s.started = time.Now()
	s.errs = nil
	s.c.Store(&counters{})
	return true
}

func (s *Scanner) end() {
	s.mu.Lock()
	s.running = false
	s.finished = time.Now()
	s.mu.Unlock()
}

func (s *Scanner) setLibrary(name string) {
	s.mu.Lock()
	s.library = name
	s.mu.Unlock()
}

// scanLibrary scans one library from its root.
func (s *Scanner) scanLibrary(ctx context.Context, name string) error {
	libs := s.libs.Load()
	r := libs.roots[name]
	if r == nil {
		return nil // removed since the scan began
	}
	// A disk mounted on the library's folder since it was opened is
	// what this scan must see. An error here is the offline check's.
	if changed, _ := s.opts.Tree.Reopen(name); changed {
		s.log.Info("library folder replaced (mounted?), opened again", "library", name)
	}
	known, err := s.opts.Index.Count(ctx, name)
	if err != nil {
		return err
	}
	if reason := s.offline(ctx, r, name, known); reason != "" {
		if !s.opts.Tree.Has(name) || s.libs.Load().roots[name] != r {
			return nil // removed or moved meanwhile, not offline
		}
		s.report("library offline, its items are kept", "library", name, "reason", reason)
		return s.setOnline(ctx, libs, name, false, reason)
	}
	if err := s.setOnline(ctx, libs, name, true, ""); err != nil {
		return err
	}
	p := s.newPass(ctx, s.c.Load(), libs)
	p.walk(name, "", nil, true)
	if err := p.finish(); err != nil {
		return err
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return s.gated(libs, func(v view) error {
		if !v.keep(name) {
			s.log.Info("library removed or moved during its scan, what the scan found is dropped", "library", name)
			return nil
		}
		return s.opts.Index.Scanned(ctx, name, time.Now())
	})
}

// view is what an index write under the gate may rely on.
type view struct {
	s          *Scanner
	begun, now *libSet // the libraries when the pass began, and now
}

// keep says whether what a pass found of a library still belongs in the
// index: the library was neither removed nor moved to another folder
// since the pass began.
func (v view) keep(library string) bool {
	r := v.begun.roots[library]
	return r != nil && v.now.roots[library] == r
}

// emptied says whether SetLibraries deleted a library's items since the
// pass began.
func (v view) emptied(library string) bool { return v.s.removedAt[library] > v.begun.gen }

// gated runs fn, a write to the index of what a pass that began with libs
// found, under the gate.
func (s *Scanner) gated(libs *libSet, fn func(view) error) error {
	s.gate.Lock()
	defer s.gate.Unlock()
	return fn(view{s: s, begun: libs, now: s.libs.Load()})
}

func (s *Scanner) setOnline(ctx context.Context, libs *libSet, name string, online bool, reason string) error {
	return s.gated(libs, func(v view) error {
		if !v.keep(name) {
			return nil
		}
		return s.opts.Index.SetOnline(ctx, name, online, reason)
	})
}

// offline says why a library cannot be scanned now, or "" if it can: its
// folder is missing, or empty while the index holds items of it (an
// unmounted disk often leaves an empty mount point).
//
// The reason is shown to clients (the home page, /api/libraries), so it
// names no path on disk; the log has the error itself.
func (s *Scanner) offline(ctx context.Context, r *libRoot, name string, known int) string {
	entries, err := s.opts.Tree.ReadDir(ctx, name)
	remote := s.opts.Tree.Remote(name)
	if err == nil && r != nil && !remote {
		_, err = os.Stat(r.path)
	}
	if ctx.Err() != nil {
		return "" // the scan is cancelled, not the library offline
	}
	if remote {
		s.retry.note(name, err, time.Now())
	} else {
		s.retry.note(name, nil, time.Now()) // once remote, now a folder
	}
	switch {
	case remote && unreachable(err):
		s.log.Warn("library storage unreachable, trying again later", "library", name, "err", err)
		return "its storage cannot be reached"
	case errors.Is(err, fs.ErrNotExist):
		s.log.Warn("library folder missing", "library", name, "err", err)
		return "its folder is missing"
	case err != nil:
		s.log.Warn("library folder unreadable", "library", name, "err", err)
		return "its folder cannot be read"
	case len(entries) == 0 && known > 0:
		return "its folder is empty but the index holds items of it (unmounted?)"
	}
	return ""
}

// pass is one scan of a set of folders: a walk that lists folders and
// compares them with the index, workers that probe what changed, and one
// writer that batches the results into the index. Removals wait for the
// end of the pass, so that a file moved to a folder listed later keeps
// its ID, and are dropped if the library went away meanwhile. What it
// found of a library that SetLibraries removed or moved since it began is
// not written (the library's folder would not be the one it listed).
type pass struct {
	s    *Scanner
	ctx  context.Context
	c    *counters
	libs *libSet // when the pass began

	jobs    chan job
	results chan result
	workers sync.WaitGroup
	writer  chan error // the writer's final error

	mu            sync.Mutex
	removes       map[int64]string // items whose files are gone → their library
	claimed       map[int64]string // items taken over by a renamed file → their library
	removeFolders map[string][]index.FolderRecord
	libraries     map[string]bool // libraries touched by the pass
}

type job struct {
	library, path string // path inside the library
	kind          media.Kind
	isNew         bool // not in the index under this path
}

// result is a record or a folder to write.
type result struct {
	rec    *index.Record
	folder *index.FolderRecord
}

func (s *Scanner) newPass(ctx context.Context, c *counters, libs *libSet) *pass {
	p := &pass{s: s, ctx: ctx, c: c, libs: libs,
		jobs:          make(chan job, 4*s.opts.Workers),
		results:       make(chan result, 256),
		writer:        make(chan error, 1),
		removes:       map[int64]string{},
		claimed:       map[int64]string{},
		removeFolders: map[string][]index.FolderRecord{},
		libraries:     map[string]bool{},
	}
	for range s.opts.Workers {
		p.workers.Add(1)
		go p.work()
	}
	go p.write()
	return p
}

// current says whether the pass still scans for library: SetLibraries has
// not removed it or moved it to another folder since the pass began, and
// the tree still serves it (the server changes the tree first: a library
// it no longer serves is about to be removed here too). A pass stops
// listing and probing the files of a library that is not, quietly, and
// removes none of its items.
func (p *pass) current(library string) bool {
	r := p.libs.roots[library]
	return r != nil && p.s.libs.Load().roots[library] == r && p.s.opts.Tree.Has(library)
}

// gated is Scanner.gated for the pass.
func (p *pass) gated(fn func(view) error) error { return p.s.gated(p.libs, fn) }

// maxDepth bounds folder nesting: deeper folders are reported, not
// entered (a path that long is near the kernel's limit anyway).
const maxDepth = 1000

// walk lists one folder, queues its new and changed files, and walks its
// subfolders when recursive (always for folders the index does not know).
// ancestors are the folders above it (device and inode), to stop at a
// symlink loop.
func (p *pass) walk(library, dir string, ancestors []fileID, recursive bool) {
	if p.ctx.Err() != nil || !p.current(library) {
		return
	}
	s := p.s
	vpath := library
	if dir != "" {
		vpath += "/" + dir
	}
	p.mu.Lock()
	p.libraries[library] = true
	p.mu.Unlock()
	if len(ancestors) >= maxDepth {
		s.report("folder too deep, not entered", "library", library, "path", dir)
		return
	}
	// The loop check needs a folder's device and inode: local folders
	// only (remote storage has no symlinks, and a Stat there costs
	// requests on the walk's critical path).
	if fi, err := s.localStat(p.ctx, library, vpath); err == nil && idOf(fi) != (fileID{}) {
		id := idOf(fi)
		for _, a := range ancestors {
			if a == id {
				s.report("symlink loop, not entered", "library", library, "path", dir)
				return
			}
		}
		ancestors = append(ancestors, id)
	}
	entries, err := s.opts.Tree.ReadDir(p.ctx, vpath)
	if err != nil && !p.current(library) {
		return // removed meanwhile: not an unreadable folder
	}
	if err != nil {
		// Unreadable (permissions, I/O error, gone meanwhile): keep
		// whatever the index holds below it.
		s.report("cannot list folder, its items are kept", "library", library, "path", dir, "err", err)
		return
	}
	known, err := s.opts.Index.Known(p.ctx, library, dir)
	if err != nil {
		s.report("index", "err", err)
		return
	}
	if w := s.watch.Load(); w != nil && !s.opts.Tree.Remote(library) {
		w.add(p.libs.roots[library], library, dir)
	}
	p.send(result{folder: &index.FolderRecord{Library: library, Path: dir, Cover: coverName(entries)}})
	var subdirs []string
	c := p.c
	for _, e := range entries {
		rel := e.Name
		if dir != "" {
			rel = dir + "/" + e.Name
		}
		if e.IsDir {
			subdirs = append(subdirs, e.Name)
			continue
		}
		if e.Kind != media.Audio && e.Kind != media.Video {
			continue
		}
		c.files.Add(1)
		st, ok := known.Items[e.Name]
		delete(known.Items, e.Name)
		if ok && st.Size == e.Size && st.ModTime == e.ModTime.UnixNano() {
			c.unchanged.Add(1)
			continue
		}
		c.queued.Add(1)
		select {
		case p.jobs <- job{library: library, path: rel, kind: e.Kind, isNew: !ok}:
		case <-p.ctx.Done():
			c.queued.Add(-1)
			return
		}
	}
	knownDirs := make(map[string]bool, len(known.Folders))
	for _, name := range known.Folders {
		knownDirs[name] = true
	}
	p.mu.Lock()
	for _, st := range known.Items {
		p.removes[st.ID] = library
	}
	listed := make(map[string]bool, len(subdirs))
	for _, name := range subdirs {
		listed[name] = true
	}
	for name := range knownDirs {
		if !listed[name] {
			p.removeFolders[library] = append(p.removeFolders[library],
				index.FolderRecord{Library: library, Path: joinPath(dir, name)})
		}
	}
	p.mu.Unlock()
	for _, name := range subdirs {
		if recursive || !knownDirs[name] {
			p.walk(library, joinPath(dir, name), ancestors, true)
		}
	}
}

func (p *pass) send(r result) {
	select {
	case p.results <- r:
	case <-p.ctx.Done():
	}
}

// finish waits for the workers and the writer, then removes what is gone
// from every library that is still there.
func (p *pass) finish() error {
	close(p.jobs)
	p.workers.Wait()
	close(p.results)
	err := <-p.writer
	if err != nil || p.ctx.Err() != nil {
		return errors.Join(err, p.ctx.Err())
	}
	s := p.s
	gone := map[string]bool{}
	for library := range p.libraries {
		if !p.current(library) {
			// Removed or moved: not offline, and its listings may be
			// partial.
			gone[library] = true
			continue
		}
		// A library whose folder went away during the pass (unmounted,
		// deleted, emptied) keeps everything: its listings may have been
		// partial.
		known, err := s.opts.Index.Count(p.ctx, library)
		if err != nil {
			return err
		}
		if reason := s.offline(p.ctx, p.libs.roots[library], library, known); reason != "" {
			s.report("library went offline during the scan, its items are kept", "library", library, "reason", reason)
			if err := s.setOnline(p.ctx, p.libs, library, false, reason); err != nil {
				return err
			}
			gone[library] = true
		}
	}
	return p.gated(func(v view) error {
		b := &index.Batch{}
		for library := range p.libraries {
			if v.keep(library) && !gone[library] {
				b.RemoveFolders = append(b.RemoveFolders, p.removeFolders[library]...)
			}
		}
		for id, library := range p.removes {
			if _, claimed := p.claimed[id]; !claimed && !gone[library] && v.keep(library) {
				b.Removes = append(b.Removes, id)
			}
		}
		slices.Sort(b.Removes)
		p.c.removed.Add(int64(len(b.Removes)))
		return s.opts.Index.Apply(p.ctx, b)
	})
}

// kept returns what of b still belongs in the index (see view); the
// writer calls it under the gate.
func (p *pass) kept(b *index.Batch, v view) *index.Batch {
	out := &index.Batch{}
	for _, f := range b.Folders {
		if v.keep(f.Library) {
			out.Folders = append(out.Folders, f)
		}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, r := range b.Puts {
		if !v.keep(r.Library) {
			continue
		}
		// The file moved from a library whose items were deleted
		// since: that row is gone, the file is a new item.
		if r.Replaces != 0 && v.emptied(p.claimed[r.Replaces]) {
			r.Replaces = 0
		}
		out.Puts = append(out.Puts, r)
	}
	return out
}

// work probes queued files.
func (p *pass) work() {
	defer p.workers.Done()
	for j := range p.jobs {
		var rec *index.Record
		if p.current(j.library) {
			rec = p.probe(j)
		}
		p.c.queued.Add(-1)
		if rec != nil {
			p.send(result{rec: rec})
		}
	}
}

// maxRetries is how often a file that changes while it is probed is
// probed again before it is recorded as it was (the next scan, or the
// watcher, sees it changed again).
const maxRetries = 2

func (p *pass) probe(j job) *index.Record {
	s := p.s
	vpath := j.library + "/" + j.path
	var rec *index.Record
	for try := 0; ; try++ {
		r, changed, err := p.probeOnce(vpath, j)
		if err != nil {
			if p.ctx.Err() == nil && !errors.Is(err, fs.ErrNotExist) {
				s.report("cannot read file", "library", j.library, "path", j.path, "err", err)
			}
			return nil // gone or unreadable: the next listing decides
		}
		rec = r
		if !changed || try >= maxRetries {
			break
		}
	}
	p.c.probed.Add(1)
	if rec.Err != "" {
		p.c.failed.Add(1)
		s.report("cannot probe file, indexed with the error", "library", j.library, "path", j.path, "err", rec.Err)
	}
	if j.isNew {
		p.findMove(rec)
	}
	return rec
}

// probeOnce probes a file and reports whether it changed meanwhile (its
// size or modification time after the probe differ from before).
func (p *pass) probeOnce(vpath string, j job) (*index.Record, bool, error) {
	f, fi, err := p.s.opts.Tree.Open(p.ctx, vpath)
	if err != nil {
		return nil, false, err
	}
	defer f.Close()
	rec := &index.Record{Library: j.library, Path: j.path, Kind: j.kind.String(),
		Size: fi.Size(), ModTime: fi.ModTime()}
	rec.Hash, err = contentHash(f, fi.Size())
	if err != nil {
		return nil, false, err
	}
	rep, err := probe.Probe(p.ctx, f, fi.Size(), path.Base(j.path), p.s.opts.Probe)
	if h := p.s.hookProbed; h != nil {
		h(vpath)
	}
	if err != nil {
		if p.ctx.Err() != nil {
			return nil, false, p.ctx.Err()
		}
		if unreachable(err) {
			// The storage failed, not the file: not a probe's verdict.
			return nil, false, err
		}
		rec.Err = err.Error()
	}
	rec.Report = rep
	after, err := f.Stat()
	if err != nil {
		return nil, false, err
	}
	changed := after.Size() != fi.Size() || !after.ModTime().Equal(fi.ModTime())
	return rec, changed, nil
}

// findMove looks for an indexed file with the same size and content whose
// path no longer exists: the new file is that one, renamed or moved, and
// keeps its ID. Copies (both paths exist) are separate items.
func (p *pass) findMove(rec *index.Record) {
	s := p.s
	// Many identical files (a library of copies) must not cost a stat
	// each for every new one.
	const maxCandidates = 8
	cands, err := s.opts.Index.SameContent(p.ctx, rec.Size, rec.Hash, maxCandidates)
	if err != nil {
		s.report("index", "err", err)
		return
	}
	for _, c := range cands {
		if c.Library == rec.Library && c.Path == rec.Path {
			continue
		}
		if _, err := s.opts.Tree.Stat(p.ctx, c.Library+"/"+c.Path); !errors.Is(err, fs.ErrNotExist) {
			continue
		}
		p.mu.Lock()
		_, taken := p.claimed[c.ID]
		if !taken {
			p.claimed[c.ID] = c.Library
		}
		p.mu.Unlock()
		if !taken {
			rec.Replaces = c.ID
			return
		}
	}
}

// Batching of the writer: a transaction per batchSize records, or per
// batchWait when files come slowly.
const (
	batchSize = 512
	batchWait = 500 * time.Millisecond
)

// write batches results into the index.
func (p *pass) write() {
	b := &index.Batch{}
	var firstErr error
	flush := func() {
		if b.Len() == 0 {
			return
		}
		// Written even when ctx is cancelled, so that a cancelled scan
		// keeps what it probed.
		err := p.gated(func(v view) error { return p.s.opts.Index.Apply(context.WithoutCancel(p.ctx), p.kept(b, v)) })
		if err != nil && firstErr == nil {
			firstErr = err
		}
		b = &index.Batch{}
	}
	t := time.NewTimer(batchWait)
	defer t.Stop()
	for {
		select {
		case r, ok := <-p.results:
			if !ok {
				flush()
				p.writer <- firstErr
				return
			}
			if b.Len() == 0 {
				t.Reset(batchWait)
			}
			if r.rec != nil {
				b.Puts = append(b.Puts, *r.rec)
			} else {
				b.Folders = append(b.Folders, *r.folder)
			}
			if b.Len() >= batchSize {
				flush()
			}
		case <-t.C:
			flush()
		}
	}
}

// hashBlock is how much of each end of a file the content hash reads.
const hashBlock = 64 << 10

// castagnoli is CRC-32C, which CPUs compute in hardware (≈ 20 GB/s here
// against SHA-256's 1.5: hashing was a seventh of a first scan's time).
var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// contentHash identifies a file's content cheaply: its size and the CRC-32C
// of its first and of its last 64 KiB. It is not a defence against anyone
// (a rename also needs the old path gone); renames keep it, and an edit of
// the tags usually changes the first block.
func contentHash(r io.ReaderAt, size int64) ([]byte, error) {
	buf := make([]byte, hashBlock)
	sum := func(off int64) (uint32, error) {
		l := min(int64(hashBlock), size-off)
		if l <= 0 {
			return 0, nil
		}
		m, err := r.ReadAt(buf[:l], off)
		if err != nil && !(errors.Is(err, io.EOF) && int64(m) == l) {
			return 0, fmt.Errorf("hash: %w", err)
		}
		return crc32.Checksum(buf[:m], castagnoli), nil
	}
	head, err := sum(0)
	if err != nil {
		return nil, err
	}
	var tail uint32
	if size > hashBlock {
		if tail, err = sum(max(hashBlock, size-hashBlock)); err != nil {
			return nil, err
		}
	}
	h := make([]byte, 16)
	binary.LittleEndian.PutUint64(h, uint64(size))
	binary.LittleEndian.PutUint32(h[8:], head)
	binary.LittleEndian.PutUint32(h[12:], tail)
	return h, nil
}

// coverNames are the folder images used as covers, best first (compared
// case-insensitively).
var coverNames = []string{"cover.jpg", "cover.jpeg", "cover.png", "folder.jpg", "folder.jpeg", "folder.png",
	"front.jpg", "front.jpeg", "front.png", "albumart.jpg", "albumartsmall.jpg"}

// coverName returns the name of a folder's cover image, or "".
func coverName(entries []library.Entry) string {
	best, bestRank := "", len(coverNames)
	for _, e := range entries {
		if e.IsDir {
			continue
		}
		lower := strings.ToLower(e.Name)
		for i, n := range coverNames[:bestRank] {
			if lower == n {
				best, bestRank = e.Name, i
				break
			}
		}
	}
	return best
}

// fileID identifies a folder on disk.
type fileID struct{ dev, ino uint64 }

func idOf(fi fs.FileInfo) fileID {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return fileID{uint64(st.Dev), uint64(st.Ino)}
	}
	return fileID{}
}

func joinPath(dir, name string) string {
	if dir == "" {
		return name
	}
	return dir + "/" + name
}
