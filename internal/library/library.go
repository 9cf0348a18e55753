// Package library maps MuStServ's virtual tree, "<library name>/<path
// inside it>", onto the libraries' storage backends (a folder on disk, an
// HTTP origin, an S3 bucket: package storage), and guarantees that nothing
// outside a library's root is ever opened: every path is checked segment
// by segment before its backend sees it, and a local folder is opened
// through an os.Root, which also refuses symlinks that leave the root.
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
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"mustserv/internal/config"
	"mustserv/internal/media"
	"mustserv/internal/storage"
	"mustserv/internal/storage/httporigin"
	"mustserv/internal/storage/local"
	"mustserv/internal/storage/s3"
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

	opts Options
}

// set is the libraries served at one time. It is never modified once
// stored in Tree.set.
type set struct {
	libs   []*lib
	byName map[string]*lib
}

type lib struct {
	cfg      config.Library // as configured (Pace aside, what opened it)
	name     string
	dotfiles bool
	h        atomic.Pointer[handle] // replaced by Reopen
}

// handle is a library's open storage.
type handle struct {
	b     storage.Backend
	local *local.Backend // b, when it is a folder on this machine
}

func (l *lib) handle() *handle { return l.h.Load() }

func (h *handle) close() error { return h.b.Close() }

// Options are what a Tree needs to open libraries beyond their
// configuration.
type Options struct {
	// Remote tunes files read from remote libraries (read-ahead, range
	// cache, counters).
	Remote storage.RemoteOptions
	// Timeout bounds each listing or metadata request to a remote
	// library; 0: the backend's default.
	Timeout time.Duration
}

// openHandle opens the storage of c with the tree's options.
func (t *Tree) openHandle(c config.Library) (*handle, error) { return openStorage(c, t.opts) }

// openStorage opens the storage of c.
func openStorage(c config.Library, opts Options) (*handle, error) {
	if c.URL == "" {
		b, err := local.Open(c.Path)
		if err != nil {
			return nil, err
		}
		return &handle{b: b, local: b}, nil
	}
	u, err := url.Parse(c.URL)
	if err != nil {
		return nil, errors.New("url does not parse") // it may hold a password
	}
	var b storage.Backend
	switch u.Scheme {
	case "http", "https":
		b, err = httporigin.New(u, httporigin.Options{Token: c.Token, Remote: opts.Remote, Timeout: opts.Timeout})
	case "s3":
		b, err = s3.New(u, s3.Options{AccessKey: c.AccessKey, SecretKey: c.SecretKey, Remote: opts.Remote, Timeout: opts.Timeout})
	default:
		err = fmt.Errorf("url scheme %q: want http, https or s3", u.Scheme)
	}
	if err != nil {
		return nil, err
	}
	return &handle{b: b}, nil
}

// Check reports whether a library on another server can be opened as
// configured (its URL's form, its credentials present: nothing is asked
// of the server), so that a configuration is refused before it is
// saved rather than at the next start. A folder is not checked here.
func Check(c config.Library, opts Options) error {
	if c.URL == "" {
		return nil
	}
	h, err := openStorage(c, opts)
	if err != nil {
		return fmt.Errorf("library %q: %w", c.Name, err)
	}
	return h.close()
}

// sameStorage reports whether two configurations of a library open the
// same storage the same way.
func sameStorage(a, b config.Library) bool {
	a.Pace, b.Pace = nil, nil
	return a == b
}

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
	return OpenWith(libs, Options{})
}

// OpenWith is Open with options for remote libraries.
func OpenWith(libs []config.Library, opts Options) (*Tree, error) {
	t := &Tree{retiring: map[*handle]*time.Timer{}, opts: opts}
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
		if !ok || !sameStorage(l.cfg, c) {
			// A changed library is a new lib, not an edited one:
			// requests read its settings without a lock.
			h, err := t.openHandle(c)
			if err != nil {
				return fail(fmt.Errorf("library %q: %w", c.Name, err))
			}
			l = &lib{cfg: c, name: c.Name, dotfiles: c.Dotfiles}
			l.cfg.Pace = nil
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
	old := l.handle()
	if old.local == nil {
		return false, nil // only folders are mounted on
	}
	moved, err := old.local.Moved()
	if err != nil {
		return false, fmt.Errorf("library %q: %w", name, err)
	}
	if !moved {
		return false, nil
	}
	h, err := t.openHandle(l.cfg)
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

// Open opens the regular file at a virtual path, with ctx the work that
// reads it (a remote file's reads end with it). Folders are
// fs.ErrNotExist here: they are browsed, not streamed. A local file is an
// *os.File, which the streaming path sends with sendfile.
func (t *Tree) Open(ctx context.Context, vpath string) (storage.File, fs.FileInfo, error) {
	l, rel, err := t.resolve(vpath)
	if err != nil {
		return nil, nil, err
	}
	// A trailing slash names a folder (open(2) says ENOTDIR for a file):
	// "a.mp3/" must not be a second URL of a.mp3.
	if strings.HasSuffix(vpath, "/") || rel == "." {
		return nil, nil, fmt.Errorf("%s: %w", vpath, fs.ErrNotExist)
	}
	h := l.handle()
	if h.local != nil {
		f, fi, err := h.local.OpenFile(rel)
		if err != nil {
			return nil, nil, fmt.Errorf("%s: %w", vpath, err)
		}
		return f, fi, nil
	}
	f, err := h.b.Open(ctx, rel)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", vpath, err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, nil, fmt.Errorf("%s: %w", vpath, err)
	}
	return f, fi, nil
}

// Remote reports whether a library's files come over the network.
func (t *Tree) Remote(name string) bool {
	l, ok := t.set.Load().byName[name]
	return ok && l.handle().local == nil
}

// Redirector returns the library's storage.Redirector when the library is
// configured to send players to its storage (redirect = true); else nil.
func (t *Tree) Redirector(name string) storage.Redirector {
	l, ok := t.set.Load().byName[name]
	if !ok || !l.cfg.Redirect {
		return nil
	}
	rd, _ := l.handle().b.(storage.Redirector)
	return rd
}

// Stat describes the file or folder at a virtual path.
func (t *Tree) Stat(ctx context.Context, vpath string) (fs.FileInfo, error) {
	l, rel, err := t.resolve(vpath)
	if err != nil {
		return nil, err
	}
	return l.handle().b.Stat(ctx, rel)
}

// ReadDir lists the folder at a virtual path: folders first, then files,
// each group sorted by name (case-insensitively). Hidden names are left out
// unless the library shows dotfiles; symlinks are followed only inside the
// root, and broken or escaping ones are left out.
func (t *Tree) ReadDir(ctx context.Context, vpath string) ([]Entry, error) {
	l, rel, err := t.resolve(vpath)
	if err != nil {
		return nil, err
	}
	fis, err := l.handle().b.ReadDir(ctx, rel)
	if err != nil {
		return nil, err
	}
	prefix := l.name + "/"
	if rel != "." {
		prefix += rel + "/"
	}
	entries := make([]Entry, 0, len(fis))
	for _, fi := range fis {
		name := fi.Name()
		if checkSegment(name, l.dotfiles) != nil {
			continue
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
	fi, err := t.Stat(ctx, vpath)
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
		entries, err := t.ReadDir(ctx, dir)
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

// isSymlink reports whether a local folder is a symlink (Walk does not
// enter those, so a link cycle cannot loop; remote storage has none).
func (t *Tree) isSymlink(vpath string) bool {
	l, rel, err := t.resolve(vpath)
	if err != nil {
		return true
	}
	b := l.handle().local
	if b == nil {
		return false
	}
	fi, err := b.Lstat(rel)
	return err != nil || fi.Mode()&fs.ModeSymlink != 0
}
