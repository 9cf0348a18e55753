package scan

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"mustserv/internal/config"
	"mustserv/internal/index"
	"mustserv/internal/library"
)

// media are real files: the project's test media and the prober's
// fixtures (one of them random bytes with an .mp3 name).
var (
	mp3File  = "../../testdata/media/Music/Sine Band/First Album/01 Sine Ä.mp3"
	oggFile  = "../../testdata/media/Music/Sine Band/First Album/02 Tone.ogg"
	flacFile = "../../testdata/media/Music/Lossless/tone.flac"
	mp4File  = "../../testdata/media/Videos/clip.mp4"
	badFile  = "../../internal/probe/testdata/mp3/random.mp3"
	tagged   = "../../internal/probe/testdata/mp3/id3v24-multi.mp3"
)

// put copies src to root/rel, creating folders.
func put(t *testing.T, root, rel, src string) {
	t.Helper()
	dst := filepath.Join(root, filepath.FromSlash(rel))
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		t.Fatal(err)
	}
	in, err := os.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.Create(dst)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
}

// env is a library "Music" at root (or the libraries given), an index
// and a scanner over them.
type env struct {
	root string
	tree *library.Tree
	idx  *index.Index
	s    *Scanner
}

func newEnv(t *testing.T, root string, opts Options) *env {
	t.Helper()
	return newEnvLibs(t, opts, config.Library{Name: "Music", Path: root})
}

func newEnvLibs(t *testing.T, opts Options, libs ...config.Library) *env {
	t.Helper()
	tree, err := library.Open(libs)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tree.Close() })
	idx, err := index.Open(t.Context(), filepath.Join(t.TempDir(), "index.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { idx.Close() })
	opts.Index, opts.Tree = idx, tree
	opts.Roots = map[string]string{}
	for _, l := range libs {
		opts.Roots[l.Name] = l.Path
	}
	return &env{root: libs[0].Path, tree: tree, idx: idx, s: New(opts)}
}

func (e *env) run(t *testing.T) Progress {
	t.Helper()
	if err := e.s.Run(t.Context()); err != nil {
		t.Fatalf("scan: %v", err)
	}
	return e.s.Progress()
}

func (e *env) known(t *testing.T, dir string) index.Known {
	t.Helper()
	k, err := e.idx.Known(t.Context(), "Music", dir)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func (e *env) count(t *testing.T) int {
	t.Helper()
	n, err := e.idx.Count(t.Context(), "Music")
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func TestScanAndRescan(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	put(t, root, "A/Album/01.mp3", mp3File)
	put(t, root, "A/Album/02.ogg", oggFile)
	put(t, root, "A/Album/cover.jpg", mp3File) // not media: only the folder's cover
	put(t, root, "B/tone.flac", flacFile)
	put(t, root, "clip.mp4", mp4File)
	put(t, root, "notes.txt", mp3File)
	e := newEnv(t, root, Options{})
	p := e.run(t)
	if p.Files != 4 || p.Probed != 4 || p.Failed != 0 || p.Unchanged != 0 || p.Running {
		t.Errorf("first scan %+v, want 4 files probed", p)
	}
	if n := e.count(t); n != 4 {
		t.Errorf("indexed %d items, want 4", n)
	}
	if k := e.known(t, "A/Album"); len(k.Items) != 2 {
		t.Errorf("A/Album holds %v", k.Items)
	}
	if k := e.known(t, ""); len(k.Items) != 1 || len(k.Folders) != 2 {
		t.Errorf("root holds %v and folders %v", k.Items, k.Folders)
	}
	// Nothing changed: nothing probed.
	p = e.run(t)
	if p.Files != 4 || p.Probed != 0 || p.Unchanged != 4 {
		t.Errorf("rescan %+v, want 4 unchanged", p)
	}
	// A changed file is probed again and keeps its ID; a removed folder
	// goes with its items.
	before := e.known(t, "A/Album").Items["01.mp3"].ID
	f, err := os.OpenFile(filepath.Join(root, "A/Album/01.mp3"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.Write(make([]byte, 100))
	f.Close()
	if err := os.RemoveAll(filepath.Join(root, "B")); err != nil {
		t.Fatal(err)
	}
	p = e.run(t)
	if p.Probed != 1 || p.Removed != 0 {
		t.Errorf("after a change %+v, want 1 probed", p)
	}
	if got := e.known(t, "A/Album").Items["01.mp3"].ID; got != before {
		t.Errorf("changed file's row %d, want %d", got, before)
	}
	if n := e.count(t); n != 3 {
		t.Errorf("indexed %d items after removing B, want 3", n)
	}
	if k := e.known(t, ""); len(k.Folders) != 1 {
		t.Errorf("root folders %v after removing B", k.Folders)
	}
}

func TestRenameKeepsID(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	put(t, root, "Old/song.mp3", tagged)
	put(t, root, "Old/other.mp3", mp3File)
	e := newEnv(t, root, Options{})
	e.run(t)
	id := e.known(t, "Old").Items["song.mp3"].ID
	if err := os.MkdirAll(filepath.Join(root, "New"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(filepath.Join(root, "Old/song.mp3"), filepath.Join(root, "New/renamed.mp3")); err != nil {
		t.Fatal(err)
	}
	// A copy is a new item, not a move.
	put(t, root, "Copy/other.mp3", mp3File)
	p := e.run(t)
	if got := e.known(t, "New").Items["renamed.mp3"].ID; got != id {
		t.Errorf("moved file's row %d, want %d (kept)", got, id)
	}
	if _, ok := e.known(t, "Old").Items["song.mp3"]; ok {
		t.Error("old path still indexed")
	}
	if a, b := e.known(t, "Old").Items["other.mp3"].ID, e.known(t, "Copy").Items["other.mp3"].ID; a == b || a == 0 || b == 0 {
		t.Errorf("original %d and copy %d should be two items", a, b)
	}
	if p.Removed != 0 || e.count(t) != 3 {
		t.Errorf("removed %d, count %d; want 0 and 3", p.Removed, e.count(t))
	}
}

func TestCorruptFileIsRecordedAndScanContinues(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	put(t, root, "a/1.mp3", mp3File)
	put(t, root, "b/broken.mp3", badFile)
	put(t, root, "c/3.flac", flacFile)
	e := newEnv(t, root, Options{Workers: 1})
	p := e.run(t)
	if p.Files != 3 || p.Probed != 3 || p.Failed != 1 {
		t.Errorf("scan %+v, want 3 probed with 1 failure", p)
	}
	if n := e.count(t); n != 3 {
		t.Errorf("indexed %d, want 3 (the broken one with its error)", n)
	}
	if len(p.Errors) != 1 || !strings.Contains(p.Errors[0], "broken.mp3") {
		t.Errorf("errors %q, want the broken file named", p.Errors)
	}
	// Recorded: not probed again while it does not change.
	if p := e.run(t); p.Probed != 0 {
		t.Errorf("rescan probed %d, want 0", p.Probed)
	}
}

func TestMissingRootKeepsItems(t *testing.T) {
	t.Parallel()
	parent := t.TempDir()
	root := filepath.Join(parent, "lib")
	put(t, root, "x/1.mp3", mp3File)
	put(t, root, "x/2.flac", flacFile)
	e := newEnv(t, root, Options{})
	e.run(t)
	for _, tc := range []struct {
		name        string
		away, bring func() error
	}{
		{"moved away", func() error { return os.Rename(root, root+".gone") }, func() error { return os.Rename(root+".gone", root) }},
		{"emptied (an unmounted mount point)", func() error { return os.Rename(filepath.Join(root, "x"), filepath.Join(parent, "x")) },
			func() error { return os.Rename(filepath.Join(parent, "x"), filepath.Join(root, "x")) }},
	} {
		if err := tc.away(); err != nil {
			t.Fatal(err)
		}
		p := e.run(t)
		if n := e.count(t); n != 2 || p.Removed != 0 {
			t.Errorf("%s: %d items (removed %d), want 2 kept", tc.name, n, p.Removed)
		}
		if len(p.Errors) == 0 || !strings.Contains(p.Errors[0], "offline") {
			t.Errorf("%s: errors %q, want the library reported offline", tc.name, p.Errors)
		}
		// Clients see these: no path on disk.
		if strings.Contains(strings.Join(p.Errors, " "), parent) {
			t.Errorf("%s: errors %q name the folder on disk", tc.name, p.Errors)
		}
		if err := tc.bring(); err != nil {
			t.Fatal(err)
		}
		if p := e.run(t); p.Unchanged != 2 || len(p.Errors) != 0 {
			t.Errorf("%s, back: %+v, want 2 unchanged and no errors", tc.name, p)
		}
	}
}

func TestRootVanishesDuringScan(t *testing.T) {
	t.Parallel()
	parent := t.TempDir()
	root := filepath.Join(parent, "lib")
	for _, d := range []string{"a", "b", "c", "d"} {
		put(t, root, d+"/1.mp3", mp3File)
		put(t, root, d+"/2.flac", flacFile)
	}
	e := newEnv(t, root, Options{Workers: 1})
	e.run(t)
	// Touch every file so that the next scan probes them, and take the
	// whole library away (files first, as rm -r does) after the first.
	for _, d := range []string{"a", "b", "c", "d"} {
		f, _ := os.OpenFile(filepath.Join(root, d, "1.mp3"), os.O_APPEND|os.O_WRONLY, 0)
		f.Write([]byte{0})
		f.Close()
	}
	var once sync.Once
	e.s.hookProbed = func(string) {
		once.Do(func() {
			for _, d := range []string{"a", "b", "c", "d"} {
				os.Remove(filepath.Join(root, d, "2.flac"))
			}
			if err := os.Rename(root, root+".gone"); err != nil {
				t.Error(err)
			}
		})
	}
	p := e.run(t)
	if n := e.count(t); n != 8 || p.Removed != 0 {
		t.Errorf("%d items (removed %d), want all 8 kept", n, p.Removed)
	}
}

func TestFileModifiedDuringProbe(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	put(t, root, "grow.mp3", mp3File)
	e := newEnv(t, root, Options{})
	var probes atomic.Int32
	e.s.hookProbed = func(string) {
		if probes.Add(1) == 1 {
			f, _ := os.OpenFile(filepath.Join(root, "grow.mp3"), os.O_APPEND|os.O_WRONLY, 0)
			f.Write(make([]byte, 4096))
			f.Close()
		}
	}
	e.run(t)
	fi, err := os.Stat(filepath.Join(root, "grow.mp3"))
	if err != nil {
		t.Fatal(err)
	}
	st := e.known(t, "").Items["grow.mp3"]
	if probes.Load() != 2 || st.Size != fi.Size() || st.ModTime != fi.ModTime().UnixNano() {
		t.Errorf("probed %d times, indexed size %d mtime %d; want 2 probes and the final %d %d",
			probes.Load(), st.Size, st.ModTime, fi.Size(), fi.ModTime().UnixNano())
	}
}

func TestDeepTreeSymlinkLoopAndAwkwardNames(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	deep := strings.Repeat("d/", 200) + "deep.mp3"
	put(t, root, deep, mp3File)
	awkward := []string{"a b #1 ?%20 & 100%.mp3", "emoji 🎵 ünï.mp3", "bad \xff\xfe utf8.mp3", "semi;colon's \"quote\".mp3", "+plus=eq[1].mp3"}
	for _, n := range awkward {
		put(t, root, "odd/"+n, mp3File)
	}
	if err := os.Symlink("..", filepath.Join(root, "odd", "loop")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(".", filepath.Join(root, "self")); err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, root, Options{})
	p := e.run(t)
	if p.Files != int64(1+len(awkward)) {
		t.Errorf("files %d, want %d (each once, loops not followed)", p.Files, 1+len(awkward))
	}
	if k := e.known(t, strings.TrimSuffix(strings.Repeat("d/", 200), "/")); len(k.Items) != 1 {
		t.Errorf("200 levels down: %v", k.Items)
	}
	k := e.known(t, "odd")
	for _, n := range awkward {
		if _, ok := k.Items[n]; !ok {
			t.Errorf("%q not indexed (have %v)", n, k.Items)
		}
	}
	loops := 0
	for _, m := range p.Errors {
		if strings.Contains(m, "symlink loop") {
			loops++
		}
	}
	if loops != 2 {
		t.Errorf("errors %q, want two symlink loops reported", p.Errors)
	}
}

func TestCancelledScanKeepsWhatItProbed(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	for i := range 20 {
		put(t, root, "f/"+string(rune('a'+i))+".mp3", mp3File)
	}
	e := newEnv(t, root, Options{Workers: 1})
	ctx, cancel := context.WithCancel(t.Context())
	var n atomic.Int32
	e.s.hookProbed = func(string) {
		if n.Add(1) == 5 {
			cancel()
		}
	}
	if err := e.s.Run(ctx); err == nil {
		t.Fatal("cancelled scan returned nil")
	}
	if c := e.count(t); c == 0 || c >= 20 {
		t.Errorf("indexed %d after cancelling, want some but not all", c)
	}
	e.s.hookProbed = nil
	if p := e.run(t); e.count(t) != 20 || p.Removed != 0 {
		t.Errorf("after a full scan: %d items, %+v", e.count(t), p)
	}
}

// TestReplacedRootIsReopened plays a disk unmounted and mounted again on
// the library's folder: the scan follows the path, not the folder it first
// opened; the empty mount point makes the library offline with its items
// kept, and the disk's return brings them back unchanged.
func TestReplacedRootIsReopened(t *testing.T) {
	t.Parallel()
	parent := t.TempDir()
	root := filepath.Join(parent, "mnt")
	put(t, root, "a/1.mp3", mp3File)
	put(t, root, "a/2.flac", flacFile)
	e := newEnv(t, root, Options{})
	e.run(t)
	// Unmount: the disk's folder goes, an empty mount point stays.
	if err := os.Rename(root, filepath.Join(parent, "disk")); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(root, 0o755); err != nil {
		t.Fatal(err)
	}
	p := e.run(t)
	if len(p.Errors) == 0 || !strings.Contains(p.Errors[0], "offline") || e.count(t) != 2 {
		t.Errorf("empty mount point: errors %q, %d items; want offline with 2 kept", p.Errors, e.count(t))
	}
	// Mount again.
	if err := os.Remove(root); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(filepath.Join(parent, "disk"), root); err != nil {
		t.Fatal(err)
	}
	if p := e.run(t); p.Unchanged != 2 || len(p.Errors) != 0 {
		t.Errorf("mounted again: %+v, want 2 unchanged and no errors", p)
	}
	// And a new file on it is found: the library is the mounted folder.
	put(t, root, "a/3.mp3", mp3File)
	if p := e.run(t); p.Probed != 1 || e.count(t) != 3 {
		t.Errorf("new file: %+v, %d items; want it probed, 3 items", p, e.count(t))
	}
}
