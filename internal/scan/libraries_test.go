package scan

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"mustserv/internal/config"
	"mustserv/internal/index"
)

// configure changes the libraries as the server does when an admin saves
// them: the tree first, then the scanner.
func (e *env) configure(t *testing.T, libs ...config.Library) {
	t.Helper()
	if err := e.tree.Configure(libs); err != nil {
		t.Fatal(err)
	}
	roots := map[string]string{}
	for _, l := range libs {
		roots[l.Name] = l.Path
	}
	e.s.SetLibraries(roots)
}

func (e *env) countOf(t *testing.T, library string) int {
	t.Helper()
	n, err := e.idx.Count(t.Context(), library)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// waitFor takes finished passes until cond holds, and returns their kinds.
func waitFor(t *testing.T, done <-chan string, cond func() bool) []string {
	t.Helper()
	var kinds []string
	for range 50 {
		if cond() {
			return kinds
		}
		kinds = append(kinds, next(t, done))
	}
	t.Fatalf("not so after 50 passes (%q)", kinds)
	return nil
}

// waitKind takes finished passes until one of kind, and returns them all.
func waitKind(t *testing.T, done <-chan string, kind string) []string {
	t.Helper()
	var kinds []string
	for range 50 {
		kinds = append(kinds, next(t, done))
		if kinds[len(kinds)-1] == kind {
			return kinds
		}
	}
	t.Fatalf("no %s pass in 50 (%q)", kind, kinds)
	return nil
}

// rescans records the folders of every watcher update.
type rescans struct {
	mu   sync.Mutex
	dirs []dirKey
}

func (r *rescans) hook(dirs []dirKey) {
	r.mu.Lock()
	r.dirs = append(r.dirs, dirs...)
	r.mu.Unlock()
}

func (r *rescans) take() []dirKey {
	r.mu.Lock()
	defer r.mu.Unlock()
	d := r.dirs
	r.dirs = nil
	return d
}

func names[T any](items []T, name func(T) string) []string {
	var out []string
	for _, it := range items {
		out = append(out, name(it))
	}
	slices.Sort(out)
	return out
}

func (e *env) albumsAndArtists(t *testing.T) (albums, artists []string) {
	t.Helper()
	al, _, err := e.idx.Albums(t.Context(), index.Page{})
	if err != nil {
		t.Fatal(err)
	}
	ar, _, err := e.idx.Artists(t.Context(), index.Page{})
	if err != nil {
		t.Fatal(err)
	}
	return names(al, func(a index.Album) string { return a.Name }), names(ar, func(a index.Artist) string { return a.Name })
}

// TestSetLibrariesAddAndRemove: a library added while Serve runs is
// scanned and watched; one removed is gone from the index when
// SetLibraries returns, with the albums and artists only it had, and
// changes in its folder are no longer followed.
func TestSetLibrariesAddAndRemove(t *testing.T) {
	t.Parallel()
	music, films := t.TempDir(), t.TempDir()
	put(t, music, "Duets/7.mp3", tagged) // album Duets; Alice, Bob, Various Artists
	put(t, music, "a/1.mp3", mp3File)
	put(t, films, "clip.mp4", mp4File)
	Music, Films := config.Library{Name: "Music", Path: music}, config.Library{Name: "Films", Path: films}
	e := newEnvLibs(t, Options{Watch: true, Settle: 50 * time.Millisecond}, Music)
	var r rescans
	e.s.hookRescan = r.hook
	done := e.serve(t)
	if k := next(t, done); k != "full" || e.countOf(t, "Music") != 2 {
		t.Fatalf("first pass %q with %d items", k, e.countOf(t, "Music"))
	}
	if al, ar := e.albumsAndArtists(t); !slices.Contains(al, "Duets") || !slices.Contains(ar, "Alice") {
		t.Fatalf("before: albums %q, artists %q", al, ar)
	}

	// Added: scanned (that library only), then watched.
	e.configure(t, Music, Films)
	if kinds := waitKind(t, done, "libraries"); slices.Contains(kinds, "full") {
		t.Errorf("passes %q, want a scan of the libraries added, not a full one", kinds)
	}
	if n := e.countOf(t, "Films"); n != 1 {
		t.Errorf("the library added has %d items, want 1", n)
	}
	put(t, films, "new/2.mp3", mp3File)
	waitFor(t, done, func() bool { return e.countOf(t, "Films") == 2 })
	// The same set again changes nothing, and asks for no scan.
	e.configure(t, Music, Films)
	e.s.mu.Lock()
	pending := len(e.s.pending)
	e.s.mu.Unlock()
	if pending != 0 {
		t.Errorf("%d libraries to scan after SetLibraries of the same set", pending)
	}

	// Removed: gone at once, not after a scan.
	e.configure(t, Films)
	if n := e.countOf(t, "Music"); n != 0 {
		t.Errorf("removed library still has %d items", n)
	}
	libs, err := e.idx.Libraries(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if got := names(libs, func(l index.Library) string { return l.Name }); !slices.Equal(got, []string{"Films"}) {
		t.Errorf("index libraries %q, want Films alone", got)
	}
	if al, ar := e.albumsAndArtists(t); slices.Contains(al, "Duets") || slices.Contains(ar, "Alice") {
		t.Errorf("after the removal: albums %q, artists %q; want Duets and its artists gone", al, ar)
	}
	if e.countOf(t, "Films") != 2 {
		t.Errorf("Films has %d items, want its 2 kept", e.countOf(t, "Films"))
	}
	// Its folder is no longer watched: inotify reports in order, so once
	// the change in Films is indexed, one in Music made before it would
	// have been seen.
	r.take()
	put(t, music, "a/3.mp3", mp3File)
	put(t, films, "new/4.mp3", mp3File)
	waitFor(t, done, func() bool { return e.countOf(t, "Films") == 3 })
	for _, k := range r.take() {
		if k.library == "Music" {
			t.Errorf("watcher update of the removed library's folder %q", k.dir)
		}
	}
	if n := e.countOf(t, "Music"); n != 0 {
		t.Errorf("removed library has %d items again", n)
	}
}

// TestSetLibrariesMoved: a library given another folder is scanned there,
// keeps the items it finds there with their IDs, loses the others, and is
// watched there and no longer in the old folder.
func TestSetLibrariesMoved(t *testing.T) {
	t.Parallel()
	parent := t.TempDir()
	old, moved := filepath.Join(parent, "old"), filepath.Join(parent, "new")
	put(t, old, "a/1.mp3", mp3File)
	put(t, old, "a/2.flac", flacFile)
	put(t, old, "only-old/x.mp3", mp3File)
	put(t, moved, "a/1.mp3", mp3File)
	put(t, moved, "b/3.mp3", tagged)
	e := newEnvLibs(t, Options{Watch: true, Settle: 50 * time.Millisecond}, config.Library{Name: "Music", Path: old})
	var r rescans
	e.s.hookRescan = r.hook
	done := e.serve(t)
	if k := next(t, done); k != "full" || e.count(t) != 3 {
		t.Fatalf("first pass %q with %d items", k, e.count(t))
	}
	id := e.known(t, "a").Items["1.mp3"].ID

	e.configure(t, config.Library{Name: "Music", Path: moved})
	waitKind(t, done, "libraries")
	if _, ok := e.known(t, "b").Items["3.mp3"]; !ok {
		t.Error("b/3.mp3 of the new folder not indexed")
	}
	if a := e.known(t, "a").Items; len(a) != 1 || a["1.mp3"].ID != id {
		t.Errorf("a/ after the move: %v, want 1.mp3 alone with row %d", a, id)
	}
	if k := e.known(t, ""); slices.Contains(k.Folders, "only-old") || e.count(t) != 2 {
		t.Errorf("root folders %q and %d items, want only-old gone and 2 items", k.Folders, e.count(t))
	}

	r.take()
	put(t, old, "only-old/y.mp3", mp3File)
	put(t, moved, "b/4.mp3", mp3File)
	waitFor(t, done, func() bool { return e.count(t) == 3 })
	for _, k := range r.take() {
		if k.dir == "only-old" {
			t.Error("watcher update of a folder of the library's old folder")
		}
	}
}

// TestSetLibrariesDuringScan removes a library while a scan probes it: the
// scan stops probing it, writes nothing of it, and goes on with the
// others; the library is not reported offline. The scanner stops on its
// own, not only because the tree no longer serves the library.
func TestSetLibrariesDuringScan(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		tree bool // the tree stops serving the library first
	}{{"tree and scanner", true}, {"scanner only", false}} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			a, b := t.TempDir(), t.TempDir()
			for i := range 10 {
				put(t, a, fmt.Sprintf("f%02d/1.mp3", i), mp3File)
			}
			put(t, b, "1.mp3", mp3File)
			A, B := config.Library{Name: "A", Path: a}, config.Library{Name: "B", Path: b}
			e := newEnvLibs(t, Options{Workers: 1}, A, B)
			var probedA atomic.Int32
			blocked, release := make(chan struct{}), make(chan struct{})
			unblock := sync.OnceFunc(func() { close(release) })
			t.Cleanup(unblock)
			e.s.hookProbed = func(vpath string) {
				if strings.HasPrefix(vpath, "A/") && probedA.Add(1) == 1 {
					close(blocked)
					<-release
				}
			}
			ran := make(chan error, 1)
			go func() { ran <- e.s.Run(t.Context()) }()
			select {
			case <-blocked:
			case <-time.After(20 * time.Second):
				t.Fatal("the scan did not probe A within 20 s")
			}
			// Returns while the scan is held in A.
			if tc.tree {
				e.configure(t, B)
			} else {
				e.s.SetLibraries(map[string]string{"B": b})
			}
			if n := e.countOf(t, "A"); n != 0 {
				t.Errorf("A has %d items when SetLibraries returns", n)
			}
			unblock()
			select {
			case err := <-ran:
				if err != nil {
					t.Fatalf("scan: %v", err)
				}
			case <-time.After(20 * time.Second):
				t.Fatal("the scan did not finish within 20 s")
			}
			if n := e.countOf(t, "A"); n != 0 {
				t.Errorf("A has %d items after the scan, want none", n)
			}
			if n := probedA.Load(); n != 1 {
				t.Errorf("%d files of A probed, want 1 (the scan stops probing it)", n)
			}
			if n := e.countOf(t, "B"); n != 1 {
				t.Errorf("B has %d items, want 1 (the scan went on)", n)
			}
			libs, err := e.idx.Libraries(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			if got := names(libs, func(l index.Library) string { return l.Name }); !slices.Equal(got, []string{"B"}) {
				t.Errorf("index libraries %q, want B alone", got)
			}
			p := e.s.Progress()
			if len(p.Errors) != 0 {
				t.Errorf("errors %q, want none (a removed library is not offline)", p.Errors)
			}
			// A's 10 folders were not all listed (B's file is one).
			if p.Files >= 11 {
				t.Errorf("%d files seen, want the scan to stop listing A's folders", p.Files)
			}
			// A later scan does not bring it back either.
			e.s.hookProbed = nil
			if err := e.s.Run(t.Context()); err != nil || e.countOf(t, "A") != 0 {
				t.Errorf("next scan: %v, A has %d items", err, e.countOf(t, "A"))
			}
		})
	}
}

// TestSetLibrariesMoveFromRemoved: a new file the scan takes for an item
// of another library, moved (same content, old path gone from the tree),
// whose library is removed before the scan writes it, is indexed as a new
// item: the row it would have taken over was deleted.
func TestSetLibrariesMoveFromRemoved(t *testing.T) {
	t.Parallel()
	x, y := t.TempDir(), t.TempDir()
	put(t, x, "f.mp3", tagged)
	put(t, y, "h.mp3", mp3File)
	X, Y := config.Library{Name: "X", Path: x}, config.Library{Name: "Y", Path: y}
	e := newEnvLibs(t, Options{Workers: 1}, X, Y)
	e.run(t)
	// The same content in Y, and h changed so that it is probed after g.
	put(t, y, "g.mp3", tagged)
	f, err := os.OpenFile(filepath.Join(y, "h.mp3"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.Write(make([]byte, 100))
	f.Close()
	blocked, release := make(chan struct{}), make(chan struct{})
	unblock := sync.OnceFunc(func() { close(release) })
	t.Cleanup(unblock)
	e.s.hookProbed = func(vpath string) {
		switch vpath {
		case "Y/g.mp3":
			// X leaves the tree: its f.mp3 is not there any more, so g
			// is taken for it, moved.
			if err := e.tree.Configure([]config.Library{Y}); err != nil {
				t.Error(err)
			}
		case "Y/h.mp3":
			close(blocked)
			<-release
		}
	}
	ran := make(chan error, 1)
	go func() { ran <- e.s.Run(t.Context()) }()
	select {
	case <-blocked:
	case <-time.After(20 * time.Second):
		t.Fatal("the scan did not probe h within 20 s")
	}
	e.s.SetLibraries(map[string]string{"Y": y})
	unblock()
	if err := <-ran; err != nil {
		t.Fatalf("scan: %v", err)
	}
	if n := e.countOf(t, "X"); n != 0 {
		t.Errorf("X has %d items, want none", n)
	}
	if _, err := e.idx.ItemAt(t.Context(), "Y", "g.mp3"); err != nil || e.countOf(t, "Y") != 2 {
		t.Errorf("Y/g.mp3: %v; Y has %d items, want 2", err, e.countOf(t, "Y"))
	}
}
