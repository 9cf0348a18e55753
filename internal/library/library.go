// Package library maps MuStServ's virtual tree, "<library name>/<path
// inside it>", onto folders on disk, and guarantees that nothing outside a
// library's root is ever opened: every path is checked segment by segment
// and then opened through an os.Root, which also refuses symlinks that leave
// the root.
//
// The set of libraries can change while requests use it (Tree.Configure).
// It does not index, probe or watch anything (package scan does);
// it lists folders and walks them for playlists on demand.
package library

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"mustserv/internal/config"
	"mustserv/internal/media"
)

// ErrBadPath is returned for a virtual path that is malformed or tries to
// leave its library: "..", backslashes, NUL or other control characters,
// empty segments.
var ErrBadPath = errors.New("bad path")

// Tree is the set of libraries, in configuration order. Configure may
// change the set while requests use it.
type Tree struct {
	// set is read by every request without a lock; Configure replaces
	// it whole, so a request sees the old set or the new, never a mix.
	set atomic.Pointer[set]

	cfg sync.Mutex // one Configure at a time (it opens folders: slow)

	mu       sync.Mutex // guards the fields below and every change of set or of a handle
	retiring map[*handle]*time.Timer
	closed   bool
}

// set is the libraries served at one time. It is never modified once
// stored in Tree.set.
type set struct {
	libs   []*lib
	byName map[string]*lib
}

type lib struct {
	name     string
	path     string // the folder on disk, as configured
	dotfiles bool
	h        atomic.Pointer[handle] // replaced by Reopen
}

// handle is a library's open folder.
type handle struct {
	root *os.Root
	fast fastOpener // openRegular's fast path, where the OS has one
}

func (l *lib) handle() *handle { return l.h.Load() }

func openHandle(dir string) (*handle, error) {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, err
	}
	return &handle{root: root, fast: newFastOpener(dir)}, nil
}

func (h *handle) close() error { return errors.Join(h.root.Close(), h.fast.close()) }

// Entry is one item of a folder listing.
type Entry struct {
	Name    string
	Path    string // virtual path, "<library>/<...>/<name>"
	IsDir   bool
	Size    int64
	ModTime time.Time
	Kind    media.Kind
}

// Open opens the root of every library. A library whose folder cannot be
// opened is an error naming it.
func Open(libs []config.Library) (*Tree, error) {
	t := &Tree{retiring: map[*handle]*time.Timer{}}
	t.set.Store(&set{byName: map[string]*lib{}})
	if err := t.Configure(libs); err != nil {
		return nil, err
	}
	return t, nil
}

// ErrClosed is returned by Configure once the tree is closed.
var ErrClosed = errors.New("library tree closed")

// Configure makes the tree serve exactly libs from now on, in their order.
// A library whose name, folder and dotfiles are unchanged keeps its open
// folder; a new one, or one whose folder or dotfiles changed, is opened;
// a removed one is at once unknown, as a name never configured. Requests
// that found a library just before keep its old folder for reopenGrace,
// then it is closed.
//
// If a name is invalid or given twice, or a folder cannot be opened, the
// error names the library and the tree is unchanged.
func (t *Tree) Configure(libs []config.Library) error {
	t.cfg.Lock()
	defer t.cfg.Unlock()
	old := t.set.Load()
	next := &set{libs: make([]*lib, 0, len(libs)), byName: make(map[string]*lib, len(libs))}
	var opened []*lib
	fail := func(err error) error {
		for _, l := range opened {
			l.handle().close()
		}
		return err
	}
	for _, c := range libs {
		if err := config.ValidName(c.Name); err != nil {
			return fail(fmt.Errorf("library %q: %w", c.Name, err))
		}
		if _, dup := next.byName[c.Name]; dup {
			return fail(fmt.Errorf("library %q is configured twice", c.Name))
		}
		l, ok := old.byName[c.Name]
		if !ok || l.path != c.Path || l.dotfiles != c.Dotfiles {
			// A changed library is a new lib, not an edited one:
			// requests read path and dotfiles without a lock.
			h, err := openHandle(c.Path)
			if err != nil {
				return fail(fmt.Errorf("library %q: %w", c.Name, err))
			}
			l = &lib{name: c.Name, path: c.Path, dotfiles: c.Dotfiles}
			l.h.Store(h)
			opened = append(opened, l)
		}
		next.libs = append(next.libs, l)
		next.byName[c.Name] = l
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return fail(ErrClosed)
	}
	t.set.Store(next)
	for _, l := range old.libs {
		if next.byName[l.name] != l {
			t.retire(l.handle())
		}
	}
	return nil
}

// Close releases the libraries' roots, and those replaced or removed
// less than reopenGrace ago. The tree serves nothing afterwards.
func (t *Tree) Close() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return nil
	}
	t.closed = true
	var errs []error
	for _, l := range t.set.Load().libs {
		errs = append(errs, l.handle().close())
	}
	for h, tm := range t.retiring {
		tm.Stop()
		errs = append(errs, h.close())
	}
	clear(t.retiring)
	return errors.Join(errs...)
}

// reopenGrace is how long a replaced folder handle stays open for the
// requests that took it just before (they use it for microseconds).
const reopenGrace = time.Minute

// retire closes h after reopenGrace. t.mu must be held.
func (t *Tree) retire(h *handle) {
	t.retiring[h] = time.AfterFunc(reopenGrace, func() {
		t.mu.Lock()
		_, ok := t.retiring[h]
		delete(t.retiring, h)
		t.mu.Unlock()
		if ok { // else Close closed it
			h.close()
		}
	})
}

// Reopen opens a library's folder again if its path now names another
// folder than the one opened — a disk mounted on the mount point after
// the server started, a folder deleted and created again — and reports
// whether it did. Without it, the library would show the old folder (an
// empty mount point) until a restart.
func (t *Tree) Reopen(name string) (bool, error) {
	l, ok := t.set.Load().byName[name]
	if !ok {
		return false, fmt.Errorf("library %q: %w", name, fs.ErrNotExist)
	}
	now, err := os.Stat(l.path)
	if err != nil {
		return false, fmt.Errorf("library %q: %w", name, err)
	}
	old := l.handle()
	if was, err := old.root.Stat("."); err == nil && os.SameFile(now, was) {
		return false, nil
	}
	h, err := openHandle(l.path)
	if err != nil {
		return false, fmt.Errorf("library %q: %w", name, err)
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	// Another Reopen won, or Configure removed or replaced the library
	// meanwhile (its handle is retired already: this one would leak).
	if t.closed || t.set.Load().byName[name] != l || !l.h.CompareAndSwap(old, h) {
		h.close()
		return false, nil
	}
	t.retire(old)
	return true, nil
}

// Has reports whether the tree serves a library of that name now.
func (t *Tree) Has(name string) bool {
	_, ok := t.set.Load().byName[name]
	return ok
}

// Names returns the libraries' names in configuration order.
func (t *Tree) Names() []string {
	libs := t.set.Load().libs
	names := make([]string, len(libs))
	for i, l := range libs {
		names[i] = l.name
	}
	return names
}

// resolve splits a virtual path into its library and the path inside it
// ("." for the library's root), after checking every segment.
func (t *Tree) resolve(vpath string) (*lib, string, error) {
	name, rel, _ := strings.Cut(vpath, "/")
	if err := checkSegment(name, false); err != nil {
		return nil, "", err
	}
	l, ok := t.set.Load().byName[name]
	if !ok {
		return nil, "", fmt.Errorf("library %q: %w", name, fs.ErrNotExist)
	}
	rel = strings.TrimSuffix(rel, "/")
	if rel == "" {
		return l, ".", nil
	}
	for seg := range strings.SplitSeq(rel, "/") {
		if err := checkSegment(seg, l.dotfiles); err != nil {
			return nil, "", err
		}
	}
	return l, rel, nil
}

// checkSegment accepts one path segment. Hidden names are reported as not
// existing, so that they cannot be probed for.
func checkSegment(seg string, dotfiles bool) error {
	switch {
	case seg == "", seg == ".", seg == "..":
		return fmt.Errorf("%w: segment %q", ErrBadPath, seg)
	case strings.ContainsRune(seg, '\\'):
		return fmt.Errorf("%w: backslash", ErrBadPath)
	}
	for i := 0; i < len(seg); i++ {
		if c := seg[i]; c < 0x20 || c == 0x7f {
			return fmt.Errorf("%w: control character", ErrBadPath)
		}
	}
	if seg[0] == '.' && !dotfiles {
		return fs.ErrNotExist
	}
	return nil
}

// Open opens the regular file at a virtual path. Folders are
// fs.ErrNotExist here: they are browsed, not streamed.
func (t *Tree) Open(vpath string) (*os.File, fs.FileInfo, error) {
	l, rel, err := t.resolve(vpath)
	if err != nil {
		return nil, nil, err
	}
	// A trailing slash names a folder (open(2) says ENOTDIR for a file):
	// "a.mp3/" must not be a second URL of a.mp3.
	if strings.HasSuffix(vpath, "/") {
		return nil, nil, fmt.Errorf("%s: %w", vpath, fs.ErrNotExist)
	}
	f, fi, err := l.openRegular(rel)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", vpath, err)
	}
	return f, fi, nil
}

// openRoot opens a regular file through the library's os.Root: the
// portable way, used where openRegular has no faster one.
func (l *lib) openRoot(rel string) (*os.File, fs.FileInfo, error) {
	// O_NONBLOCK: a plain open(2) of a FIFO blocks until a writer comes,
	// which would hang the request; O_NOCTTY: never adopt a terminal.
	f, err := l.handle().root.OpenFile(rel, os.O_RDONLY|syscall.O_NONBLOCK|syscall.O_NOCTTY, 0)
	if err != nil {
		return nil, nil, classify(err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, nil, classify(err)
	}
	if !fi.Mode().IsRegular() {
		f.Close()
		return nil, nil, fmt.Errorf("not a regular file: %w", fs.ErrNotExist)
	}
	// Local filesystems ignore O_NONBLOCK on regular files, but FUSE and
	// some network filesystems pass it on; reads must block.
	if err := setBlocking(f); err != nil {
		f.Close()
		return nil, nil, err
	}
	return f, fi, nil
}

func setBlocking(f *os.File) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	if err := rc.Control(func(fd uintptr) { serr = clearNonblock(syscall.SetNonblock, fd) }); err != nil {
		return err
	}
	return serr
}

// clearNonblock calls syscall.SetNonblock, whose descriptor is an int on
// Unix and a Handle on Windows, without a file per platform.
func clearNonblock[FD ~int | ~uintptr](set func(FD, bool) error, fd uintptr) error {
	return set(FD(fd), false)
}

// Stat describes the file or folder at a virtual path.
func (t *Tree) Stat(vpath string) (fs.FileInfo, error) {
	l, rel, err := t.resolve(vpath)
	if err != nil {
		return nil, err
	}
	fi, err := l.handle().root.Stat(rel)
	return fi, classify(err)
}

// ReadDir lists the folder at a virtual path: folders first, then files,
// each group sorted by name (case-insensitively). Hidden names are left out
// unless the library shows dotfiles; symlinks are followed only inside the
// root, and broken or escaping ones are left out.
func (t *Tree) ReadDir(vpath string) ([]Entry, error) {
	l, rel, err := t.resolve(vpath)
	if err != nil {
		return nil, err
	}
	root := l.handle().root
	f, err := root.Open(rel)
	if err != nil {
		return nil, classify(err)
	}
	defer f.Close()
	des, err := f.ReadDir(-1)
	if err != nil {
		return nil, classify(err)
	}
	prefix := l.name + "/"
	if rel != "." {
		prefix += rel + "/"
	}
	entries := make([]Entry, 0, len(des))
	for _, de := range des {
		name := de.Name()
		if checkSegment(name, l.dotfiles) != nil {
			continue
		}
		var fi fs.FileInfo
		if de.Type()&fs.ModeSymlink != 0 {
			fi, err = root.Stat(path.Join(rel, name))
		} else {
			fi, err = de.Info()
		}
		if err != nil {
			continue // vanished, broken or escaping: not listable
		}
		if !fi.IsDir() && !fi.Mode().IsRegular() {
			continue
		}
		entries = append(entries, Entry{
			Name:    name,
			Path:    prefix + name,
			IsDir:   fi.IsDir(),
			Size:    fi.Size(),
			ModTime: fi.ModTime(),
			Kind:    media.KindOf(name),
		})
	}
	slices.SortFunc(entries, compareEntries)
	return entries, nil
}

func compareEntries(a, b Entry) int {
	if a.IsDir != b.IsDir {
		if a.IsDir {
			return -1
		}
		return 1
	}
	return cmp.Or(
		cmp.Compare(strings.ToLower(a.Name), strings.ToLower(b.Name)),
		cmp.Compare(a.Name, b.Name),
	)
}

// WalkLimits bound a walk so that a huge or looping tree cannot exhaust the
// server.
type WalkLimits struct {
	MaxDepth int // folders below the start; 0 means 32
	MaxItems int // entries reported; 0 means 10000
}

// ErrTooMany is returned by Walk when it stopped at WalkLimits.MaxItems.
var ErrTooMany = errors.New("too many items")

// Walk reports every playable file at or below a virtual path, in listing
// order, depth first. A file path reports just that file. Symlinked folders
// are not entered, so a link cycle cannot loop.
func (t *Tree) Walk(ctx context.Context, vpath string, lim WalkLimits, fn func(Entry) error) error {
	if lim.MaxDepth <= 0 {
		lim.MaxDepth = 32
	}
	if lim.MaxItems <= 0 {
		lim.MaxItems = 10000
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	fi, err := t.Stat(vpath)
	if err != nil {
		return err
	}
	if !fi.IsDir() {
		// A trailing slash names a folder; and, as for Open and ReadDir,
		// a FIFO or device is not there at all.
		if strings.HasSuffix(vpath, "/") || !fi.Mode().IsRegular() {
			return fmt.Errorf("%s: %w", vpath, fs.ErrNotExist)
		}
		if !media.Playable(fi.Name()) {
			return nil
		}
		return fn(Entry{Name: fi.Name(), Path: strings.TrimSuffix(vpath, "/"), Size: fi.Size(), ModTime: fi.ModTime(), Kind: media.KindOf(fi.Name())})
	}
	n := 0
	var walk func(dir string, depth int) error
	walk = func(dir string, depth int) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		entries, err := t.ReadDir(dir)
		if err != nil {
			return err
		}
		for _, e := range entries {
			// Checked per entry, not per folder, so that a client that
			// goes away stops a walk of one huge flat folder too.
			if err := ctx.Err(); err != nil {
				return err
			}
			if e.IsDir {
				if depth >= lim.MaxDepth || t.isSymlink(e.Path) {
					continue
				}
				if err := walk(e.Path, depth+1); err != nil {
					return err
				}
				continue
			}
			if e.Kind != media.Audio && e.Kind != media.Video {
				continue
			}
			if n >= lim.MaxItems {
				return ErrTooMany
			}
			n++
			if err := fn(e); err != nil {
				return err
			}
		}
		return nil
	}
	return walk(strings.TrimSuffix(vpath, "/"), 0)
}

func (t *Tree) isSymlink(vpath string) bool {
	l, rel, err := t.resolve(vpath)
	if err != nil {
		return true
	}
	fi, err := l.handle().root.Lstat(rel)
	return err != nil || fi.Mode()&fs.ModeSymlink != 0
}

// classify maps the errors of an os.Root to the ones callers act on.
// os.Root reports a path that escapes the root (a symlink pointing outside)
// with an error that is not an errno; to a client that is "not found", as
// is a path through a file (ENOTDIR) or a symlink loop.
func classify(err error) error {
	if err == nil || errors.Is(err, fs.ErrNotExist) || errors.Is(err, fs.ErrPermission) {
		return err
	}
	var pe *fs.PathError
	if errors.As(err, &pe) {
		var errno syscall.Errno
		if !errors.As(pe.Err, &errno) {
			return fmt.Errorf("%w (%v)", fs.ErrNotExist, err)
		}
		switch errno {
		case syscall.ENOTDIR, syscall.ELOOP, syscall.ENAMETOOLONG, syscall.EINVAL, syscall.EXDEV:
			return fmt.Errorf("%w (%v)", fs.ErrNotExist, err)
		}
	}
	return err
}
