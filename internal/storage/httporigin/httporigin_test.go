package httporigin

import (
	"bytes"
	"errors"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"mustserv/internal/storage"
	"mustserv/internal/testenv/origins"
)

// fixture is a tree with the names that break naive escaping.
var fixture = map[string][]byte{
	"a b#?%+&é.mp3":               []byte("hello, world\n"),
	"empty.flac":                  {},
	"a:b;c,d=e@f.ogg":             []byte("colon"),
	"sub dir #1/c 100%.mkv":       bytes.Repeat([]byte("0123456789"), 1000),
	"sub dir #1/deeper/日本語.m4a":   []byte("x"),
	"sub dir #1/deeper/q?a=1.mp4": []byte("query"),
}

// summary is what a test compares of a FileInfo.
type summary struct {
	Dir     bool
	Size    int64
	ModTime time.Time
}

func summarize(fi fs.FileInfo) summary {
	return summary{Dir: fi.IsDir(), Size: fi.Size(), ModTime: fi.ModTime()}
}

// newBackend is New for a URL string, failing the test on error.
func newBackend(t *testing.T, raw string, opt Options) *Backend {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	b, err := New(u, opt)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

// walk lists the whole tree of b by ReadDir, and checks that Stat
// describes every entry as its listing did.
func walk(t *testing.T, b *Backend) map[string]summary {
	t.Helper()
	got := make(map[string]summary)
	var list func(dir string)
	list = func(dir string) {
		infos, err := b.ReadDir(t.Context(), dir)
		if err != nil {
			t.Fatalf("ReadDir(%q): %v", dir, err)
		}
		for _, fi := range infos {
			name := path.Join(dir, fi.Name())
			got[name] = summarize(fi)
			st, err := b.Stat(t.Context(), name)
			if err != nil {
				t.Errorf("Stat(%q): %v", name, err)
			} else if diff := cmp.Diff(summarize(fi), summarize(st)); diff != "" || st.Name() != fi.Name() {
				t.Errorf("Stat(%q) = %q, listing %q (-listing +stat):\n%s", name, st.Name(), fi.Name(), diff)
			}
			if fi.IsDir() {
				list(name)
			}
		}
	}
	list(".")
	return got
}

// onDisk describes the tree below root as nginx should: times in UTC
// seconds, and folder times only where dirTimes.
func onDisk(t *testing.T, root string, dirTimes bool) map[string]summary {
	t.Helper()
	want := make(map[string]summary)
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == root {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		s := summary{Dir: fi.IsDir(), ModTime: fi.ModTime().Truncate(time.Second).UTC()}
		if fi.IsDir() && !dirTimes {
			s.ModTime = time.Time{}
		}
		if !fi.IsDir() {
			s.Size = fi.Size()
		}
		want[filepath.ToSlash(rel)] = s
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return want
}

// Both nginx indexes list the fixture as it is on disk, with the names,
// sizes and times Stat gives, and files read back byte for byte.
func TestNginx(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	origins.WriteTree(t, root, fixture)
	base := origins.StartNginx(t, root)
	for _, tc := range []struct {
		index    string
		dirTimes bool // HTML gives no folder times
	}{
		{"json", true},
		{"html", false},
	} {
		t.Run(tc.index, func(t *testing.T) {
			t.Parallel()
			b := newBackend(t, base+"/"+tc.index, Options{})
			if diff := cmp.Diff(onDisk(t, root, tc.dirTimes), walk(t, b)); diff != "" {
				t.Errorf("tree (-disk +backend):\n%s", diff)
			}
			for name, data := range fixture {
				checkRead(t, b, name, data)
			}
		})
	}
}

// checkRead reads name from b whole and in the middle.
func checkRead(t *testing.T, b *Backend, name string, want []byte) {
	t.Helper()
	f, err := b.Open(t.Context(), name)
	if err != nil {
		t.Errorf("Open(%q): %v", name, err)
		return
	}
	defer f.Close()
	got, err := io.ReadAll(f)
	if err != nil || !bytes.Equal(got, want) {
		t.Errorf("Open(%q) read %q, %v; want %q", name, got, err, want)
	}
	if len(want) < 3 {
		return
	}
	mid := make([]byte, len(want)-2)
	if n, err := f.ReadAt(mid, 1); err != nil || !bytes.Equal(mid[:n], want[1:len(want)-1]) {
		t.Errorf("%q ReadAt(1) = %q, %v; want %q", name, mid[:n], err, want[1:len(want)-1])
	}
}

// Names that are not there, folders opened and files listed are
// fs.ErrNotExist; names no backend accepts are fs.ErrInvalid.
func TestNginxNotExist(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	origins.WriteTree(t, root, fixture)
	b := newBackend(t, origins.StartNginx(t, root)+"/json/", Options{})
	ctx := t.Context()
	errs := map[string]error{}
	_, errs["stat missing"] = b.Stat(ctx, "missing.mp3")
	_, errs["stat below a file"] = b.Stat(ctx, "sub dir #1/c 100%.mkv/x")
	_, errs["open missing"] = b.Open(ctx, "sub dir #1/missing.mp3")
	_, errs["open folder"] = b.Open(ctx, "sub dir #1")
	_, errs["open root"] = b.Open(ctx, ".")
	_, errs["readdir file"] = b.ReadDir(ctx, "a b#?%+&é.mp3")
	_, errs["readdir missing"] = b.ReadDir(ctx, "nope")
	for what, err := range errs {
		if !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("%s: %v, want fs.ErrNotExist", what, err)
		}
	}
	for _, name := range []string{"../x", "/a", "a//b", "a/./b", ""} {
		if _, err := b.Stat(ctx, name); !errors.Is(err, fs.ErrInvalid) {
			t.Errorf("Stat(%q): %v, want fs.ErrInvalid", name, err)
		}
	}
}

// A file rewritten after Open is not read as a mix of two versions.
func TestNginxChanged(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	origins.WriteTree(t, root, fixture)
	b := newBackend(t, origins.StartNginx(t, root)+"/json/", Options{})
	const name = "sub dir #1/c 100%.mkv"
	f, err := b.Open(t.Context(), name)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	p := filepath.Join(root, filepath.FromSlash(name))
	if err := os.WriteFile(p, bytes.Repeat([]byte("9876543210"), 1000), 0o644); err != nil {
		t.Fatal(err)
	}
	// nginx's ETag is mtime-size: another second is another version.
	later := time.Now().Add(time.Hour)
	if err := os.Chtimes(p, later, later); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 10)
	n, err := f.ReadAt(buf, 100)
	if !errors.Is(err, storage.ErrChanged) || !errors.Is(err, storage.ErrUnavailable) || n != 0 {
		t.Errorf("ReadAt after a change = %d, %v; want 0 bytes, ErrChanged and ErrUnavailable", n, err)
	}
}

// Go's http.FileServer is a third kind of origin: an HTML index of its
// own escaping ("./a:b"), relative redirects that it does not escape, and
// "file/" redirected to "file" (unparsable for a name with "%": then
// ReadDir of that file is ErrUnavailable, not fs.ErrNotExist).
func TestFileServer(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	origins.WriteTree(t, root, fixture)
	ts := httptest.NewServer(http.StripPrefix("/media", http.FileServer(http.Dir(root))))
	t.Cleanup(ts.Close)
	b := newBackend(t, ts.URL+"/media/", Options{})
	if diff := cmp.Diff(onDisk(t, root, false), walk(t, b)); diff != "" {
		t.Errorf("tree (-disk +backend):\n%s", diff)
	}
	for name, data := range fixture {
		checkRead(t, b, name, data)
	}
	if _, err := b.ReadDir(t.Context(), "empty.flac"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("ReadDir(a file): %v, want fs.ErrNotExist", err)
	}
}
