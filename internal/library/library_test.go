//go:build unix

package library

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"mustserv/internal/config"
	"mustserv/internal/media"
)

// mkTree lays out spec under dir: "a/b/" is a folder, "a -> b" a symlink
// whose target is written as given, anything else a file whose content is
// "content of " followed by its path (so every file has a known size).
func mkTree(t testing.TB, dir string, spec ...string) {
	t.Helper()
	for _, s := range spec {
		switch name, target, isLink := strings.Cut(s, " -> "); {
		case isLink:
			p := filepath.Join(dir, name)
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink(target, p); err != nil {
				t.Fatal(err)
			}
		case strings.HasSuffix(s, "/"):
			if err := os.MkdirAll(filepath.Join(dir, s), 0o755); err != nil {
				t.Fatal(err)
			}
		default:
			p := filepath.Join(dir, s)
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(p, []byte(content(s)), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
}

func content(path string) string { return "content of " + path }

// fixture is a library "Lib" over base/lib, the same folder as "Dots" with
// dotfiles shown, and a sibling folder base/outside that no library may
// reach.
type fixture struct {
	base, root, outside string
	tree                *Tree
}

func newFixture(t testing.TB) *fixture {
	t.Helper()
	base := t.TempDir()
	fx := &fixture{base: base, root: filepath.Join(base, "lib"), outside: filepath.Join(base, "outside")}
	mkTree(t, fx.outside, "secret.mp3", "sub/inner.mp3")
	mkTree(t, fx.root,
		"a.mp3", "B.flac", "c.txt", "cover.jpg", "é.mp3",
		".hidden.mp3", ".dots/x.mp3",
		"alpha/beta.mp3", "alpha/gamma/delta.ogg",
		"Zed/z.mp3", "Zed/film.mkv",
		"empty/",
		"link.mp3 -> a.mp3",
		"linkdir -> alpha",
		"cycle -> .",
		"abs.mp3 -> "+filepath.Join(fx.root, "a.mp3"),
		"absdir -> "+filepath.Join(fx.root, "alpha"),
		"escape.mp3 -> ../outside/secret.mp3",
		"escapeabs.mp3 -> "+filepath.Join(fx.outside, "secret.mp3"),
		"outdir -> ../outside",
		"outabs -> "+fx.outside,
		"broken.mp3 -> missing.mp3",
		"loop.mp3 -> loop.mp3",
		"ping.mp3 -> pong.mp3",
		"pong.mp3 -> ping.mp3",
		"alpha/up -> ..",
		"alpha/upup.mp3 -> ../../outside/secret.mp3",
	)
	tree, err := Open([]config.Library{
		{Name: "Lib", Path: fx.root},
		{Name: "Dots", Path: fx.root, Dotfiles: true},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tree.Close() })
	fx.tree = tree
	return fx
}

func TestOpenLibraries(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	mkTree(t, dir, "music/", "films/", "file.mp3")
	music, films := filepath.Join(dir, "music"), filepath.Join(dir, "films")
	tests := []struct {
		name    string
		libs    []config.Library
		wantErr string // substring of the error; "" means success
	}{
		{name: "none", libs: nil},
		{name: "two in order", libs: []config.Library{{Name: "Music", Path: music}, {Name: "Films", Path: films}}},
		{name: "unicode and spaces", libs: []config.Library{{Name: "Música antigua", Path: music}}},
		{name: "same folder twice under two names", libs: []config.Library{{Name: "A", Path: music}, {Name: "B", Path: music}}},
		{name: "empty name", libs: []config.Library{{Name: "", Path: music}}, wantErr: "empty name"},
		{name: "dot name", libs: []config.Library{{Name: ".hidden", Path: music}}, wantErr: `".hidden"`},
		{name: "dotdot name", libs: []config.Library{{Name: "..", Path: music}}, wantErr: `".."`},
		{name: "slash in name", libs: []config.Library{{Name: "a/b", Path: music}}, wantErr: `"a/b"`},
		{name: "backslash in name", libs: []config.Library{{Name: `a\b`, Path: music}}, wantErr: `a\\b`},
		{name: "NUL in name", libs: []config.Library{{Name: "a\x00b", Path: music}}, wantErr: "control character"},
		{name: "newline in name", libs: []config.Library{{Name: "a\nb", Path: music}}, wantErr: "control character"},
		{name: "duplicate", libs: []config.Library{{Name: "Music", Path: music}, {Name: "Music", Path: films}}, wantErr: `"Music" is configured twice`},
		{name: "missing folder", libs: []config.Library{{Name: "Music", Path: music}, {Name: "Gone", Path: filepath.Join(dir, "gone")}}, wantErr: `library "Gone"`},
		{name: "file instead of folder", libs: []config.Library{{Name: "File", Path: filepath.Join(dir, "file.mp3")}}, wantErr: `library "File"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tree, err := Open(tt.libs)
			if tt.wantErr != "" {
				if err == nil {
					tree.Close()
					t.Fatalf("Open succeeded; want an error containing %q", tt.wantErr)
				}
				if !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Open error = %q; want it to contain %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			defer tree.Close()
			var want []string
			for _, l := range tt.libs {
				want = append(want, l.Name)
			}
			if diff := cmp.Diff(want, tree.Names(), cmpEmpty); diff != "" {
				t.Errorf("Names() mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

// cmpEmpty treats nil and empty slices alike.
var cmpEmpty = cmp.Comparer(func(a, b []string) bool { return len(a) == 0 && len(b) == 0 || cmp.Equal(a, b) })

func TestOpenFile(t *testing.T) {
	t.Parallel()
	fx := newFixture(t)
	tests := []struct {
		name    string
		vpath   string
		want    string // file content when wantErr is nil
		wantErr error
	}{
		{name: "regular file", vpath: "Lib/a.mp3", want: content("a.mp3")},
		{name: "nested file", vpath: "Lib/alpha/gamma/delta.ogg", want: content("alpha/gamma/delta.ogg")},
		{name: "unicode name", vpath: "Lib/é.mp3", want: content("é.mp3")},
		{name: "second library same folder", vpath: "Dots/a.mp3", want: content("a.mp3")},
		{name: "symlink to a file inside", vpath: "Lib/link.mp3", want: content("a.mp3")},
		{name: "through a symlinked folder inside", vpath: "Lib/linkdir/beta.mp3", want: content("alpha/beta.mp3")},
		{name: "through a symlink cycle folder", vpath: "Lib/cycle/cycle/cycle/a.mp3", want: content("a.mp3")},
		{name: "through a symlink to the parent", vpath: "Lib/alpha/up/a.mp3", want: content("a.mp3")},

		{name: "library root", vpath: "Lib", wantErr: fs.ErrNotExist},
		{name: "library root slash", vpath: "Lib/", wantErr: fs.ErrNotExist},
		{name: "folder", vpath: "Lib/alpha", wantErr: fs.ErrNotExist},
		{name: "empty folder", vpath: "Lib/empty", wantErr: fs.ErrNotExist},
		{name: "missing file", vpath: "Lib/nope.mp3", wantErr: fs.ErrNotExist},
		{name: "missing library", vpath: "Nope/a.mp3", wantErr: fs.ErrNotExist},
		{name: "library names are case sensitive", vpath: "lib/a.mp3", wantErr: fs.ErrNotExist},
		{name: "dotfile hidden", vpath: "Lib/.hidden.mp3", wantErr: fs.ErrNotExist},
		{name: "file in dot folder hidden", vpath: "Lib/.dots/x.mp3", wantErr: fs.ErrNotExist},
		{name: "dotfile shown with Dotfiles", vpath: "Dots/.hidden.mp3", want: content(".hidden.mp3")},
		{name: "dot folder shown with Dotfiles", vpath: "Dots/.dots/x.mp3", want: content(".dots/x.mp3")},
		{name: "path through a file", vpath: "Lib/a.mp3/x", wantErr: fs.ErrNotExist},
		{name: "file with a trailing slash", vpath: "Lib/a.mp3/", wantErr: fs.ErrNotExist},
		{name: "symlinked file with a trailing slash", vpath: "Lib/link.mp3/", wantErr: fs.ErrNotExist},
		{name: "path through a symlinked file", vpath: "Lib/link.mp3/x", wantErr: fs.ErrNotExist},

		{name: "symlink to a file outside", vpath: "Lib/escape.mp3", wantErr: fs.ErrNotExist},
		{name: "absolute symlink to a file outside", vpath: "Lib/escapeabs.mp3", wantErr: fs.ErrNotExist},
		{name: "symlink to a folder outside", vpath: "Lib/outdir/secret.mp3", wantErr: fs.ErrNotExist},
		{name: "symlink to a folder outside nested", vpath: "Lib/outdir/sub/inner.mp3", wantErr: fs.ErrNotExist},
		{name: "absolute symlink to a folder outside", vpath: "Lib/outabs/secret.mp3", wantErr: fs.ErrNotExist},
		{name: "escaping symlink in a subfolder", vpath: "Lib/alpha/upup.mp3", wantErr: fs.ErrNotExist},
		{name: "up-link then out", vpath: "Lib/alpha/up/outdir/secret.mp3", wantErr: fs.ErrNotExist},
		// os.Root refuses absolute symlinks even when they point inside.
		{name: "absolute symlink to a file inside", vpath: "Lib/abs.mp3", wantErr: fs.ErrNotExist},
		{name: "absolute symlink to a folder inside", vpath: "Lib/absdir/beta.mp3", wantErr: fs.ErrNotExist},
		{name: "broken symlink", vpath: "Lib/broken.mp3", wantErr: fs.ErrNotExist},
		{name: "symlink to itself", vpath: "Lib/loop.mp3", wantErr: fs.ErrNotExist},
		{name: "symlink loop of two", vpath: "Lib/ping.mp3", wantErr: fs.ErrNotExist},
		{name: "too long a name", vpath: "Lib/" + strings.Repeat("n", 300) + ".mp3", wantErr: fs.ErrNotExist},
		{name: "too long a path", vpath: "Lib/" + strings.Repeat("alpha/up/", 600) + "a.mp3", wantErr: fs.ErrNotExist},

		{name: "empty", vpath: "", wantErr: ErrBadPath},
		{name: "leading slash", vpath: "/Lib/a.mp3", wantErr: ErrBadPath},
		{name: "dotdot library", vpath: "../etc/passwd", wantErr: ErrBadPath},
		{name: "dot library", vpath: "./Lib/a.mp3", wantErr: ErrBadPath},
		{name: "dotdot", vpath: "Lib/..", wantErr: ErrBadPath},
		{name: "dotdot out", vpath: "Lib/../outside/secret.mp3", wantErr: ErrBadPath},
		{name: "dotdot inside", vpath: "Lib/alpha/../a.mp3", wantErr: ErrBadPath},
		{name: "dot", vpath: "Lib/./a.mp3", wantErr: ErrBadPath},
		{name: "trailing dot", vpath: "Lib/alpha/.", wantErr: ErrBadPath},
		{name: "empty segment", vpath: "Lib//a.mp3", wantErr: ErrBadPath},
		{name: "two trailing slashes", vpath: "Lib/alpha//", wantErr: ErrBadPath},
		{name: "backslash", vpath: `Lib/alpha\beta.mp3`, wantErr: ErrBadPath},
		{name: "backslash dotdot", vpath: `Lib/..\outside\secret.mp3`, wantErr: ErrBadPath},
		{name: "backslash in library name", vpath: `Lib\a.mp3`, wantErr: ErrBadPath},
		{name: "NUL", vpath: "Lib/a.mp3\x00.txt", wantErr: ErrBadPath},
		{name: "NUL in library name", vpath: "Lib\x00/a.mp3", wantErr: ErrBadPath},
		{name: "newline", vpath: "Lib/a\n.mp3", wantErr: ErrBadPath},
		{name: "tab", vpath: "Lib/a\t.mp3", wantErr: ErrBadPath},
		{name: "escape character", vpath: "Lib/\x1b[31m.mp3", wantErr: ErrBadPath},
		{name: "DEL", vpath: "Lib/a\x7f.mp3", wantErr: ErrBadPath},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f, fi, err := fx.tree.Open(context.Background(), tt.vpath)
			if tt.wantErr != nil {
				if err == nil {
					f.Close()
					t.Fatalf("Open(%q) succeeded; want %v", tt.vpath, tt.wantErr)
				}
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("Open(%q) error = %v; want errors.Is %v", tt.vpath, err, tt.wantErr)
				}
				if tt.wantErr != ErrBadPath && errors.Is(err, ErrBadPath) {
					t.Errorf("Open(%q) error = %v; want only %v", tt.vpath, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Open(%q): %v", tt.vpath, err)
			}
			defer f.Close()
			got, err := io.ReadAll(f)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tt.want {
				t.Errorf("Open(%q) content = %q; want %q", tt.vpath, got, tt.want)
			}
			if !fi.Mode().IsRegular() || fi.Size() != int64(len(tt.want)) {
				t.Errorf("Open(%q) info: mode %v size %d; want a regular file of %d bytes", tt.vpath, fi.Mode(), fi.Size(), len(tt.want))
			}
			assertInside(t, f.(*os.File), fx.root)
			assertBlocking(t, f.(*os.File))
		})
	}
}

// assertInside fails unless the file open as f is at or below root on disk,
// asking the kernel (not our path arithmetic) where the descriptor points.
func assertInside(t testing.TB, f *os.File, root string) {
	t.Helper()
	real, err := os.Readlink("/proc/self/fd/" + strconv.FormatUint(uint64(f.Fd()), 10))
	if err != nil {
		t.Skipf("cannot read /proc/self/fd: %v", err)
	}
	rootReal, err := filepath.EvalSymlinks(root)
	if err != nil {
		t.Fatal(err)
	}
	if real != rootReal && !strings.HasPrefix(real, rootReal+"/") {
		t.Fatalf("opened %s, which is outside the library root %s", real, rootReal)
	}
}

// assertBlocking fails if f was left in non-blocking mode: Open uses
// O_NONBLOCK only to get past FIFOs.
func assertBlocking(t testing.TB, f *os.File) {
	t.Helper()
	rc, err := f.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var flags uintptr
	var errno syscall.Errno
	if err := rc.Control(func(fd uintptr) {
		flags, _, errno = syscall.Syscall(syscall.SYS_FCNTL, fd, syscall.F_GETFL, 0)
	}); err != nil || errno != 0 {
		t.Fatalf("fcntl: %v %v", err, errno)
	}
	if flags&syscall.O_NONBLOCK != 0 {
		t.Errorf("opened file is in non-blocking mode (flags %#o)", flags)
	}
}

func TestOpenPermissionDenied(t *testing.T) {
	t.Parallel()
	if os.Geteuid() == 0 {
		t.Skip("running as root: permission bits do not stop root, so EACCES cannot be provoked")
	}
	dir := t.TempDir()
	mkTree(t, dir, "locked.mp3", "shut/x.mp3")
	if err := os.Chmod(filepath.Join(dir, "locked.mp3"), 0); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(filepath.Join(dir, "shut"), 0); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Chmod(filepath.Join(dir, "shut"), 0o755) })
	tree, err := Open([]config.Library{{Name: "Lib", Path: dir}})
	if err != nil {
		t.Fatal(err)
	}
	defer tree.Close()
	if _, _, err := tree.Open(context.Background(), "Lib/locked.mp3"); !errors.Is(err, fs.ErrPermission) {
		t.Errorf("Open(locked file) error = %v; want fs.ErrPermission", err)
	}
	if _, err := tree.ReadDir(context.Background(), "Lib/shut"); !errors.Is(err, fs.ErrPermission) {
		t.Errorf("ReadDir(locked folder) error = %v; want fs.ErrPermission", err)
	}
}

// TestOpenFIFO checks that a named pipe in a library is refused at once: a
// plain open(2) of a FIFO blocks until a writer comes, which would hang the
// request (and a goroutine) forever.
func TestOpenFIFO(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	fifo := filepath.Join(dir, "pipe.mp3")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Skipf("mkfifo: %v", err)
	}
	tree, err := Open([]config.Library{{Name: "Lib", Path: dir}})
	if err != nil {
		t.Fatal(err)
	}
	defer tree.Close()
	done := make(chan error, 1)
	go func() {
		f, _, err := tree.Open(context.Background(), "Lib/pipe.mp3")
		if err == nil {
			f.Close()
		}
		done <- err
	}()
	select {
	case err := <-done:
		if !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("Open(FIFO) error = %v; want fs.ErrNotExist", err)
		}
	case <-time.After(10 * time.Second):
		// Release the blocked open so the goroutine ends, then fail.
		if w, err := os.OpenFile(fifo, os.O_WRONLY, 0); err == nil {
			w.Close()
		}
		<-done
		t.Fatal("Open(FIFO) blocked waiting for a writer")
	}
	var got []string
	err = tree.Walk(t.Context(), "Lib/pipe.mp3", WalkLimits{}, func(e Entry) error {
		got = append(got, e.Path)
		return nil
	})
	if !errors.Is(err, fs.ErrNotExist) || len(got) != 0 {
		t.Errorf("Walk(FIFO) = %v, %v; want no items and fs.ErrNotExist", got, err)
	}
	entries, err := tree.ReadDir(context.Background(), "Lib")
	if err != nil || len(entries) != 0 {
		t.Errorf("ReadDir = %v, %v; want the FIFO left out", entries, err)
	}
}

func TestStat(t *testing.T) {
	t.Parallel()
	fx := newFixture(t)
	tests := []struct {
		name    string
		vpath   string
		wantDir bool
		wantErr error
	}{
		{name: "library root", vpath: "Lib", wantDir: true},
		{name: "library root slash", vpath: "Lib/", wantDir: true},
		{name: "folder", vpath: "Lib/alpha", wantDir: true},
		{name: "file", vpath: "Lib/a.mp3"},
		{name: "symlinked folder inside", vpath: "Lib/linkdir", wantDir: true},
		{name: "symlinked folder outside", vpath: "Lib/outdir", wantErr: fs.ErrNotExist},
		{name: "symlinked file outside", vpath: "Lib/escape.mp3", wantErr: fs.ErrNotExist},
		{name: "hidden", vpath: "Lib/.dots", wantErr: fs.ErrNotExist},
		{name: "hidden shown", vpath: "Dots/.dots", wantDir: true},
		{name: "loop", vpath: "Lib/ping.mp3", wantErr: fs.ErrNotExist},
		{name: "through a file", vpath: "Lib/a.mp3/b", wantErr: fs.ErrNotExist},
		{name: "dotdot", vpath: "Lib/alpha/..", wantErr: ErrBadPath},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			fi, err := fx.tree.Stat(context.Background(), tt.vpath)
			if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil) != (err == nil) {
				t.Fatalf("Stat(%q) error = %v; want %v", tt.vpath, err, tt.wantErr)
			}
			if err == nil && fi.IsDir() != tt.wantDir {
				t.Errorf("Stat(%q).IsDir() = %v; want %v", tt.vpath, fi.IsDir(), tt.wantDir)
			}
		})
	}
}

// listed is the part of an Entry that does not depend on the clock.
type listed struct {
	Name, Path string
	IsDir      bool
	Size       int64 // files only
	Kind       media.Kind
}

func summarize(es []Entry) []listed {
	out := make([]listed, 0, len(es))
	for _, e := range es {
		l := listed{Name: e.Name, Path: e.Path, IsDir: e.IsDir, Kind: e.Kind}
		if !e.IsDir {
			l.Size = e.Size
		}
		out = append(out, l)
	}
	return out
}

func file(vpath, disk string) listed {
	name := vpath[strings.LastIndexByte(vpath, '/')+1:]
	return listed{Name: name, Path: vpath, Size: int64(len(content(disk))), Kind: media.KindOf(name)}
}

func dir(vpath string) listed {
	name := vpath[strings.LastIndexByte(vpath, '/')+1:]
	return listed{Name: name, Path: vpath, IsDir: true, Kind: media.KindOf(name)}
}

func TestReadDir(t *testing.T) {
	t.Parallel()
	fx := newFixture(t)
	sorting := filepath.Join(fx.base, "sorting")
	mkTree(t, sorting, "b.mp3", "B.mp3", "a.MP3", "C.ogg", "_x.mp3", "10.mp3", "9.mp3", "Éb.mp3", "éa.mp3",
		"d/", "A-dir/", "c dir/", "Zdir/")
	sortTree, err := Open([]config.Library{{Name: "S", Path: sorting}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sortTree.Close() })

	tests := []struct {
		name    string
		tree    *Tree
		vpath   string
		want    []listed
		wantErr error
	}{
		{
			name: "library root: folders first, hidden and escaping left out", vpath: "Lib",
			want: []listed{
				dir("Lib/alpha"), dir("Lib/cycle"), dir("Lib/empty"), dir("Lib/linkdir"), dir("Lib/Zed"),
				file("Lib/a.mp3", "a.mp3"), file("Lib/B.flac", "B.flac"), file("Lib/c.txt", "c.txt"),
				file("Lib/cover.jpg", "cover.jpg"), file("Lib/link.mp3", "a.mp3"), file("Lib/é.mp3", "é.mp3"),
			},
		},
		{
			name: "subfolder paths", vpath: "Lib/alpha",
			want: []listed{dir("Lib/alpha/gamma"), dir("Lib/alpha/up"), file("Lib/alpha/beta.mp3", "alpha/beta.mp3")},
		},
		{
			name: "trailing slash", vpath: "Lib/alpha/gamma/",
			want: []listed{file("Lib/alpha/gamma/delta.ogg", "alpha/gamma/delta.ogg")},
		},
		{
			name: "through a symlinked folder", vpath: "Lib/linkdir/gamma",
			want: []listed{file("Lib/linkdir/gamma/delta.ogg", "alpha/gamma/delta.ogg")},
		},
		{name: "empty folder", vpath: "Lib/empty", want: []listed{}},
		{
			name: "dotfiles shown", vpath: "Dots",
			want: []listed{
				dir("Dots/.dots"), dir("Dots/alpha"), dir("Dots/cycle"), dir("Dots/empty"), dir("Dots/linkdir"), dir("Dots/Zed"),
				file("Dots/.hidden.mp3", ".hidden.mp3"),
				file("Dots/a.mp3", "a.mp3"), file("Dots/B.flac", "B.flac"), file("Dots/c.txt", "c.txt"),
				file("Dots/cover.jpg", "cover.jpg"), file("Dots/link.mp3", "a.mp3"), file("Dots/é.mp3", "é.mp3"),
			},
		},
		{
			name: "case-insensitive with a stable tie-break", tree: sortTree, vpath: "S",
			want: []listed{
				dir("S/A-dir"), dir("S/c dir"), dir("S/d"), dir("S/Zdir"),
				file("S/10.mp3", "10.mp3"), file("S/9.mp3", "9.mp3"), file("S/_x.mp3", "_x.mp3"),
				file("S/a.MP3", "a.MP3"), file("S/B.mp3", "B.mp3"), file("S/b.mp3", "b.mp3"), file("S/C.ogg", "C.ogg"),
				file("S/éa.mp3", "éa.mp3"), file("S/Éb.mp3", "Éb.mp3"),
			},
		},
		{name: "file", vpath: "Lib/a.mp3", wantErr: fs.ErrNotExist},
		{name: "missing", vpath: "Lib/nope", wantErr: fs.ErrNotExist},
		{name: "hidden folder", vpath: "Lib/.dots", wantErr: fs.ErrNotExist},
		{name: "symlinked folder outside", vpath: "Lib/outdir", wantErr: fs.ErrNotExist},
		{name: "absolute symlinked folder outside", vpath: "Lib/outabs", wantErr: fs.ErrNotExist},
		{name: "dotdot", vpath: "Lib/..", wantErr: ErrBadPath},
		{name: "missing library", vpath: "Nope", wantErr: fs.ErrNotExist},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tree := tt.tree
			if tree == nil {
				tree = fx.tree
			}
			got, err := tree.ReadDir(context.Background(), tt.vpath)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("ReadDir(%q) error = %v; want %v", tt.vpath, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("ReadDir(%q): %v", tt.vpath, err)
			}
			if diff := cmp.Diff(tt.want, summarize(got)); diff != "" {
				t.Errorf("ReadDir(%q) mismatch (-want +got):\n%s", tt.vpath, diff)
			}
			// Every listed path must itself be reachable.
			for _, e := range got {
				if _, err := tree.Stat(context.Background(), e.Path); err != nil {
					t.Errorf("listed %q but Stat fails: %v", e.Path, err)
				}
			}
		})
	}
}

func TestWalk(t *testing.T) {
	t.Parallel()
	fx := newFixture(t)
	deep := filepath.Join(fx.base, "deep")
	mkTree(t, deep, "0.mp3", "1/1.mp3", "1/2/2.mp3", "1/2/3/3.mp3", "1/2/3/4/4.mp3")
	deepTree, err := Open([]config.Library{{Name: "D", Path: deep}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { deepTree.Close() })

	all := []string{
		"Lib/alpha/gamma/delta.ogg", "Lib/alpha/beta.mp3",
		"Lib/Zed/film.mkv", "Lib/Zed/z.mp3",
		"Lib/a.mp3", "Lib/B.flac", "Lib/link.mp3", "Lib/é.mp3",
	}
	tests := []struct {
		name    string
		tree    *Tree
		vpath   string
		lim     WalkLimits
		want    []string
		wantErr error
	}{
		{name: "library recursively, audio and video only, symlinked folders not entered", vpath: "Lib", want: all},
		{name: "trailing slash", vpath: "Lib/", want: all},
		{name: "subfolder", vpath: "Lib/alpha", want: []string{"Lib/alpha/gamma/delta.ogg", "Lib/alpha/beta.mp3"}},
		{name: "a symlinked folder given as the start is walked", vpath: "Lib/linkdir", want: []string{"Lib/linkdir/gamma/delta.ogg", "Lib/linkdir/beta.mp3"}},
		{name: "a symlink cycle terminates", vpath: "Lib/cycle", want: []string{
			"Lib/cycle/alpha/gamma/delta.ogg", "Lib/cycle/alpha/beta.mp3",
			"Lib/cycle/Zed/film.mkv", "Lib/cycle/Zed/z.mp3",
			"Lib/cycle/a.mp3", "Lib/cycle/B.flac", "Lib/cycle/link.mp3", "Lib/cycle/é.mp3",
		}},
		{name: "single file", vpath: "Lib/a.mp3", want: []string{"Lib/a.mp3"}},
		{name: "single symlinked file", vpath: "Lib/link.mp3", want: []string{"Lib/link.mp3"}},
		{name: "single video", vpath: "Lib/Zed/film.mkv", want: []string{"Lib/Zed/film.mkv"}},
		{name: "single non-media file", vpath: "Lib/c.txt", want: nil},
		{name: "single file with a trailing slash", vpath: "Lib/a.mp3/", wantErr: fs.ErrNotExist},
		{name: "empty folder", vpath: "Lib/empty", want: nil},
		{name: "hidden shown with Dotfiles", vpath: "Dots/.dots", want: []string{"Dots/.dots/x.mp3"}},
		{name: "MaxItems stops after exactly that many", vpath: "Lib", lim: WalkLimits{MaxItems: 3}, want: all[:3], wantErr: ErrTooMany},
		{name: "MaxItems one", vpath: "Lib", lim: WalkLimits{MaxItems: 1}, want: all[:1], wantErr: ErrTooMany},
		{name: "MaxItems equal to the count is no error", vpath: "Lib", lim: WalkLimits{MaxItems: len(all)}, want: all},
		{name: "MaxDepth 1", tree: deepTree, vpath: "D", lim: WalkLimits{MaxDepth: 1}, want: []string{"D/1/1.mp3", "D/0.mp3"}},
		{name: "MaxDepth 2", tree: deepTree, vpath: "D", lim: WalkLimits{MaxDepth: 2}, want: []string{"D/1/2/2.mp3", "D/1/1.mp3", "D/0.mp3"}},
		{name: "MaxDepth counts from the start", tree: deepTree, vpath: "D/1/2", lim: WalkLimits{MaxDepth: 1}, want: []string{"D/1/2/3/3.mp3", "D/1/2/2.mp3"}},
		{name: "default MaxDepth", tree: deepTree, vpath: "D", want: []string{"D/1/2/3/4/4.mp3", "D/1/2/3/3.mp3", "D/1/2/2.mp3", "D/1/1.mp3", "D/0.mp3"}},
		{name: "missing", vpath: "Lib/nope", wantErr: fs.ErrNotExist},
		{name: "hidden", vpath: "Lib/.dots", wantErr: fs.ErrNotExist},
		{name: "escaping folder", vpath: "Lib/outdir", wantErr: fs.ErrNotExist},
		{name: "escaping file", vpath: "Lib/escape.mp3", wantErr: fs.ErrNotExist},
		{name: "dotdot", vpath: "Lib/alpha/../..", wantErr: ErrBadPath},
		{name: "empty", vpath: "", wantErr: ErrBadPath},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tree := tt.tree
			if tree == nil {
				tree = fx.tree
			}
			var got []string
			err := tree.Walk(t.Context(), tt.vpath, tt.lim, func(e Entry) error {
				if e.IsDir || !media.Playable(e.Name) || !strings.HasSuffix(e.Path, "/"+e.Name) {
					t.Errorf("Walk reported %+v; want a playable file whose Path ends in its Name", e)
				}
				got = append(got, e.Path)
				return nil
			})
			if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil) != (err == nil) {
				t.Fatalf("Walk(%q) error = %v; want %v", tt.vpath, err, tt.wantErr)
			}
			if diff := cmp.Diff(tt.want, got, cmpEmpty); diff != "" {
				t.Errorf("Walk(%q) mismatch (-want +got):\n%s", tt.vpath, diff)
			}
		})
	}
}

func TestWalkStops(t *testing.T) {
	t.Parallel()
	fx := newFixture(t)
	errStop := errors.New("stop")
	tests := []struct {
		name      string
		cancel    bool // cancel the context before walking
		fn        func(cancel context.CancelFunc) error
		wantCalls int
		wantErr   error
	}{
		{name: "cancelled before", cancel: true, fn: func(context.CancelFunc) error { return nil }, wantCalls: 0, wantErr: context.Canceled},
		{name: "cancelled during", fn: func(cancel context.CancelFunc) error { cancel(); return nil }, wantCalls: 1, wantErr: context.Canceled},
		{name: "callback error", fn: func(context.CancelFunc) error { return errStop }, wantCalls: 1, wantErr: errStop},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			for _, vpath := range []string{"Lib", "Lib/Zed"} {
				ctx, cancel := context.WithCancel(t.Context())
				if tt.cancel {
					cancel()
				}
				calls := 0
				err := fx.tree.Walk(ctx, vpath, WalkLimits{}, func(Entry) error {
					calls++
					return tt.fn(cancel)
				})
				cancel()
				if !errors.Is(err, tt.wantErr) {
					t.Errorf("Walk(%q) error = %v; want %v", vpath, err, tt.wantErr)
				}
				if calls != tt.wantCalls {
					t.Errorf("Walk(%q) made %d callbacks; want %d", vpath, calls, tt.wantCalls)
				}
			}
		})
	}
}

// TestReopen: a library folder replaced on disk (a disk mounted on the
// mount point after start, a folder made again) is opened again, so that
// the library shows the new folder; an unchanged one is left alone.
func TestReopen(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "lib")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "old.mp3"), []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	tree, err := Open([]config.Library{{Name: "M", Path: dir}})
	if err != nil {
		t.Fatal(err)
	}
	defer tree.Close()
	if changed, err := tree.Reopen("M"); changed || err != nil {
		t.Fatalf("Reopen of an unchanged folder = %v, %v", changed, err)
	}
	if err := os.Rename(dir, dir+".before"); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "new.mp3"), []byte("new"), 0o644); err != nil {
		t.Fatal(err)
	}
	// Until reopened, the library is the folder it opened.
	if es, _ := tree.ReadDir(context.Background(), "M"); len(es) != 1 || es[0].Name != "old.mp3" {
		t.Fatalf("before Reopen: %v", es)
	}
	if changed, err := tree.Reopen("M"); !changed || err != nil {
		t.Fatalf("Reopen of a replaced folder = %v, %v", changed, err)
	}
	es, err := tree.ReadDir(context.Background(), "M")
	if err != nil || len(es) != 1 || es[0].Name != "new.mp3" {
		t.Errorf("after Reopen: %v, %v", es, err)
	}
	if f, _, err := tree.Open(context.Background(), "M/new.mp3"); err != nil {
		t.Errorf("open after Reopen: %v", err)
	} else {
		f.Close()
	}
	if changed, err := tree.Reopen("M"); changed || err != nil {
		t.Errorf("second Reopen = %v, %v", changed, err)
	}
	if _, err := tree.Reopen("nope"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Reopen of an unknown library: %v", err)
	}
}
