// Package storagetest is the conformance suite of storage.Backend, as
// testing/fstest.TestFS is fs.FS's: a backend's tests put the fixture
// tree Files at its root and call Run. It checks what every caller relies
// on — names, sizes and times that agree between Stat, ReadDir and Open,
// the bytes of Read, ReadAt and Seek as *os.File gives them, the errors
// of missing and invalid names, concurrent use — and not what a backend
// adds (speed, caching, redirects).
package storagetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"path"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"

	"mustserv/internal/storage"
)

// fixture lists the files of Files, in order, with their sizes. Every
// name has a media extension (one backend under test is another MuStServ,
// which lists media files only) and none starts with a dot (a backend may
// hide those). The names hold what URLs and S3 keys escape: space, #, ?,
// %, +, &, and letters outside ASCII.
func fixture() []struct {
	name string
	size int
} {
	return []struct {
		name string
		size int
	}{
		{"one.mp3", 1000},
		{"empty.flac", 0},
		{"big.mkv", 3<<20 + 4321},
		{"with space.ogg", 2048},
		{"hash#tag.m4a", 777},
		{"what?.opus", 100},
		{"100%.wav", 65537},
		{"a+b&c.mp4", 300},
		{"café über.mp3", 1234},
		{"日本/曲.flac", 5000},
		{"dir/one.m4a", 33000},
		{"dir/sub dir/two.mp3", 10},
		{"dir/sub dir/deep/three.ogg", 40000},
		{"only/folders/here/leaf.opus", 50},
	}
}

// Files returns the fixture tree every backend under test must hold at
// its root: name → content. The contents are the same on every call.
func Files() map[string][]byte {
	r := rand.New(rand.NewPCG(2024, 7))
	files := make(map[string][]byte, len(fixture()))
	for _, f := range fixture() {
		b := make([]byte, f.size)
		for i := 0; i < len(b); i += 8 {
			v := r.Uint64()
			for j := i; j < min(i+8, len(b)); j++ {
				b[j] = byte(v >> (8 * (j - i)))
			}
		}
		files[f.name] = b
	}
	return files
}

// Run checks b, whose root holds exactly Files() (and nothing else),
// against the storage.Backend contract. A backend for which
// storage.Remote is true must also end its reads with the context.
func Run(t *testing.T, b storage.Backend) {
	t.Helper()
	tree := newTree(Files())
	for _, c := range checks(storage.Remote(b)) {
		t.Run(c.name, func(t *testing.T) {
			if err := c.run(t.Context(), b, tree); err != nil {
				t.Error(err)
			}
		})
	}
}

// check is one part of the suite: an error lists what b got wrong.
type check struct {
	name string
	run  func(ctx context.Context, b storage.Backend, tr *tree) error
}

// checks returns the suite's checks; remote adds those only remote
// backends must pass.
func checks(remote bool) []check {
	cs := []check{
		{"StatRoot", checkStatRoot},
		{"StatFiles", checkStatFiles},
		{"StatFolders", checkStatFolders},
		{"StatStable", checkStatStable},
		{"ReadDir", checkReadDir},
		{"ReadAll", checkReadAll},
		{"ReadAt", checkReadAt},
		{"Seek", checkSeek},
		{"SequentialFromMiddle", checkSequential},
		{"ReadAtEOF", checkReadEOF},
		{"NotExist", checkNotExist},
		{"OpenFolder", checkOpenFolder},
		{"ReadDirOfFile", checkReadDirOfFile},
		{"InvalidNames", checkInvalidNames},
		{"Concurrent", checkConcurrent},
		{"CloseTwice", checkCloseTwice},
	}
	if remote {
		cs = append(cs, check{"CancelledContext", checkCancelled})
	}
	return cs
}

// tree is the fixture as the checks use it.
type tree struct {
	files   map[string][]byte
	names   []string           // the files, sorted
	folders map[string][]entry // folder → its children, sorted
}

// entry is what a listing tells of one child.
type entry struct {
	Name  string
	IsDir bool
	Size  int64 // files only
}

func newTree(files map[string][]byte) *tree {
	tr := &tree{files: files, folders: map[string][]entry{".": nil}}
	for name := range files {
		tr.names = append(tr.names, name)
	}
	sort.Strings(tr.names)
	seen := map[string]bool{}
	for _, name := range tr.names {
		child := entry{Name: path.Base(name), Size: int64(len(files[name]))}
		for dir := path.Dir(name); ; dir = path.Dir(dir) {
			if !seen[dir+"/"+child.Name] {
				seen[dir+"/"+child.Name] = true
				tr.folders[dir] = append(tr.folders[dir], child)
			}
			if dir == "." {
				break
			}
			child = entry{Name: path.Base(dir), IsDir: true}
		}
	}
	for _, es := range tr.folders {
		sortEntries(es)
	}
	return tr
}

func sortEntries(es []entry) {
	slices.SortFunc(es, func(a, b entry) int { return strings.Compare(a.Name, b.Name) })
}

// folderNames returns the folders, sorted, "." first.
func (tr *tree) folderNames() []string {
	var names []string
	for name := range tr.folders {
		names = append(names, name)
	}
	sort.Strings(names)
	return names
}

func checkStatRoot(ctx context.Context, b storage.Backend, tr *tree) error {
	info, err := b.Stat(ctx, ".")
	if err != nil {
		return fmt.Errorf("Stat(.): %w", err)
	}
	if !info.IsDir() {
		return errors.New("Stat(.) is not a folder")
	}
	return nil
}

func checkStatFiles(ctx context.Context, b storage.Backend, tr *tree) error {
	var errs []error
	for _, name := range tr.names {
		info, err := b.Stat(ctx, name)
		if err != nil {
			errs = append(errs, fmt.Errorf("Stat(%q): %w", name, err))
			continue
		}
		errs = append(errs, checkFileInfo(name, info, int64(len(tr.files[name]))))
	}
	return errors.Join(errs...)
}

// checkFileInfo checks the description of the file name of size bytes.
func checkFileInfo(name string, info fs.FileInfo, size int64) error {
	var errs []error
	if info.IsDir() {
		errs = append(errs, fmt.Errorf("%q: a folder", name))
	}
	if info.Size() != size {
		errs = append(errs, fmt.Errorf("%q: size %d, want %d", name, info.Size(), size))
	}
	if info.ModTime().IsZero() {
		errs = append(errs, fmt.Errorf("%q: no modification time", name))
	}
	if info.Name() != path.Base(name) {
		errs = append(errs, fmt.Errorf("%q: Name() = %q, want %q", name, info.Name(), path.Base(name)))
	}
	return errors.Join(errs...)
}

func checkStatFolders(ctx context.Context, b storage.Backend, tr *tree) error {
	var errs []error
	for _, name := range tr.folderNames() {
		info, err := b.Stat(ctx, name)
		switch {
		case err != nil:
			errs = append(errs, fmt.Errorf("Stat(%q): %w", name, err))
		case !info.IsDir():
			errs = append(errs, fmt.Errorf("Stat(%q): not a folder", name))
		case name != "." && info.Name() != path.Base(name):
			errs = append(errs, fmt.Errorf("Stat(%q): Name() = %q", name, info.Name()))
		}
	}
	return errors.Join(errs...)
}

func checkStatStable(ctx context.Context, b storage.Backend, tr *tree) error {
	var errs []error
	for _, name := range tr.names {
		a, err1 := b.Stat(ctx, name)
		c, err2 := b.Stat(ctx, name)
		if err := errors.Join(err1, err2); err != nil {
			errs = append(errs, fmt.Errorf("Stat(%q): %w", name, err))
			continue
		}
		if !a.ModTime().Equal(c.ModTime()) || a.Size() != c.Size() {
			errs = append(errs, fmt.Errorf("Stat(%q) twice: %v, %d then %v, %d", name, a.ModTime(), a.Size(), c.ModTime(), c.Size()))
		}
	}
	return errors.Join(errs...)
}

func checkReadDir(ctx context.Context, b storage.Backend, tr *tree) error {
	var errs []error
	for _, name := range tr.folderNames() {
		infos, err := b.ReadDir(ctx, name)
		if err != nil {
			errs = append(errs, fmt.Errorf("ReadDir(%q): %w", name, err))
			continue
		}
		got := make([]entry, 0, len(infos))
		for _, info := range infos {
			e := entry{Name: info.Name(), IsDir: info.IsDir()}
			if !e.IsDir {
				e.Size = info.Size()
				if info.ModTime().IsZero() {
					errs = append(errs, fmt.Errorf("ReadDir(%q): %q has no modification time", name, e.Name))
				}
			}
			got = append(got, e)
		}
		sortEntries(got)
		if diff := cmp.Diff(tr.folders[name], got); diff != "" {
			errs = append(errs, fmt.Errorf("ReadDir(%q) (-want +got):\n%s", name, diff))
		}
	}
	return errors.Join(errs...)
}

func checkReadAll(ctx context.Context, b storage.Backend, tr *tree) error {
	var errs []error
	for _, name := range tr.names {
		errs = append(errs, withFile(ctx, b, name, func(f storage.File) error {
			got, err := readAll(f, 32<<10)
			if err != nil {
				return err
			}
			if !bytes.Equal(got, tr.files[name]) {
				return fmt.Errorf("read %d bytes, not the file's %d", len(got), len(tr.files[name]))
			}
			return checkFileStat(ctx, b, name, f)
		}))
	}
	return errors.Join(errs...)
}

// checkFileStat checks that the open file f describes itself as the
// backend describes name.
func checkFileStat(ctx context.Context, b storage.Backend, name string, f storage.File) error {
	fi, err := f.Stat()
	if err != nil {
		return fmt.Errorf("File.Stat: %w", err)
	}
	bi, err := b.Stat(ctx, name)
	if err != nil {
		return fmt.Errorf("Stat: %w", err)
	}
	if fi.Size() != bi.Size() || !fi.ModTime().Equal(bi.ModTime()) {
		return fmt.Errorf("File.Stat says %d bytes, %v; Stat %d, %v", fi.Size(), fi.ModTime(), bi.Size(), bi.ModTime())
	}
	return nil
}

// withFile opens name, calls fn, and closes it; errors name the file.
func withFile(ctx context.Context, b storage.Backend, name string, fn func(storage.File) error) error {
	f, err := b.Open(ctx, name)
	if err != nil {
		return fmt.Errorf("Open(%q): %w", name, err)
	}
	err = fn(f)
	if cerr := f.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("Close: %w", cerr)
	}
	if err != nil {
		return fmt.Errorf("%q: %w", name, err)
	}
	return nil
}

// readAll reads r to io.EOF in reads of chunk bytes. Unlike io.ReadAll it
// gives up on a reader that keeps returning nothing.
func readAll(r io.Reader, chunk int) ([]byte, error) {
	var out []byte
	buf := make([]byte, chunk)
	for empty := 0; empty < 100; {
		n, err := r.Read(buf)
		out = append(out, buf[:n]...)
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return out, fmt.Errorf("read after %d bytes: %w", len(out), err)
		}
		if n == 0 {
			empty++
		}
	}
	return out, fmt.Errorf("100 reads gave nothing and no error after %d bytes", len(out))
}

func checkReadAt(ctx context.Context, b storage.Backend, tr *tree) error {
	var errs []error
	r := rand.New(rand.NewPCG(1, 2))
	for _, name := range tr.names {
		data := tr.files[name]
		size := int64(len(data))
		errs = append(errs, withFile(ctx, b, name, func(f storage.File) error {
			var errs []error
			try := func(off int64, n int) {
				p := make([]byte, n)
				got, err := f.ReadAt(p, off)
				want := min(int64(n), max(size-off, 0))
				switch {
				case int64(got) != want:
					errs = append(errs, fmt.Errorf("ReadAt(%d bytes, %d) read %d, want %d (%v)", n, off, got, want, err))
				case want < int64(n) && err != io.EOF:
					errs = append(errs, fmt.Errorf("ReadAt(%d bytes, %d) across the end: %v, want io.EOF", n, off, err))
				case want == int64(n) && err != nil && err != io.EOF: // io.ReaderAt allows io.EOF at the end
					errs = append(errs, fmt.Errorf("ReadAt(%d bytes, %d): %w", n, off, err))
				case !bytes.Equal(p[:got], data[min(off, size):min(off, size)+want]):
					errs = append(errs, fmt.Errorf("ReadAt(%d bytes, %d): wrong bytes", n, off))
				}
			}
			for range 8 {
				off := r.Int64N(size + 1)
				try(off, r.IntN(int(min(size-off, 64<<10))+1))
			}
			if size > 0 {
				try(size-1, 1)
				try(max(size-100, 0), 200) // across the end
			}
			try(size, 10) // at the end
			return errors.Join(errs...)
		}))
	}
	return errors.Join(errs...)
}

func checkSeek(ctx context.Context, b storage.Backend, tr *tree) error {
	var errs []error
	for _, name := range tr.names {
		data := tr.files[name]
		size := int64(len(data))
		if size < 100 {
			continue
		}
		errs = append(errs, withFile(ctx, b, name, func(f storage.File) error {
			steps := []struct {
				offset int64
				whence int
				want   int64
			}{
				{-50, io.SeekEnd, size - 50},
				{10, io.SeekStart, 10},
				{15, io.SeekCurrent, 10 + 10 + 15}, // after the read of 10 below
				{0, io.SeekEnd, size},
				{size / 2, io.SeekStart, size / 2},
			}
			for _, s := range steps {
				off, err := f.Seek(s.offset, s.whence)
				if err != nil || off != s.want {
					return fmt.Errorf("Seek(%d, %d) = %d, %v; want %d", s.offset, s.whence, off, err, s.want)
				}
				p := make([]byte, 10)
				n, err := io.ReadFull(f, p)
				want := min(10, size-off)
				if int64(n) != want || !bytes.Equal(p[:n], data[off:off+want]) {
					return fmt.Errorf("after Seek(%d, %d): read %d bytes (%v), want %d of the file's", s.offset, s.whence, n, err, want)
				}
			}
			return nil
		}))
	}
	return errors.Join(errs...)
}

// checkSequential reads the big file as net/http's ServeContent serves a
// range: a Seek, then 32 KiB reads.
func checkSequential(ctx context.Context, b storage.Backend, tr *tree) error {
	name := "big.mkv"
	data := tr.files[name]
	mid := int64(len(data))/2 + 1
	return withFile(ctx, b, name, func(f storage.File) error {
		if _, err := f.Seek(mid, io.SeekStart); err != nil {
			return err
		}
		got, err := readAll(f, 32<<10)
		if err != nil {
			return err
		}
		if !bytes.Equal(got, data[mid:]) {
			return fmt.Errorf("read %d bytes from %d, not the file's %d", len(got), mid, len(data)-int(mid))
		}
		return nil
	})
}

func checkReadEOF(ctx context.Context, b storage.Backend, tr *tree) error {
	var errs []error
	for _, name := range []string{"empty.flac", "one.mp3"} {
		errs = append(errs, withFile(ctx, b, name, func(f storage.File) error {
			if _, err := f.Seek(0, io.SeekEnd); err != nil {
				return err
			}
			for range 2 {
				if n, err := f.Read(make([]byte, 10)); n != 0 || err != io.EOF {
					return fmt.Errorf("Read at the end = %d, %v; want 0, io.EOF", n, err)
				}
			}
			return nil
		}))
	}
	return errors.Join(errs...)
}

func checkNotExist(ctx context.Context, b storage.Backend, tr *tree) error {
	var errs []error
	for _, name := range []string{"missing.mp3", "dir/missing.ogg", "missing/deeper.mp3", "dir/sub dir/nope"} {
		_, err := b.Stat(ctx, name)
		errs = append(errs, wantErr("Stat", name, err, fs.ErrNotExist))
		f, err := b.Open(ctx, name)
		closeIf(f)
		errs = append(errs, wantErr("Open", name, err, fs.ErrNotExist))
		_, err = b.ReadDir(ctx, name)
		errs = append(errs, wantErr("ReadDir", name, err, fs.ErrNotExist))
	}
	return errors.Join(errs...)
}

// wantErr reports an error unless err wraps target.
func wantErr(op, name string, err, target error) error {
	if !errors.Is(err, target) {
		return fmt.Errorf("%s(%q): %v, want an error wrapping %v", op, name, err, target)
	}
	return nil
}

// closeIf closes f if an Open that should have failed returned it.
func closeIf(f storage.File) {
	if f != nil {
		f.Close()
	}
}

func checkOpenFolder(ctx context.Context, b storage.Backend, tr *tree) error {
	var errs []error
	for _, name := range tr.folderNames() {
		f, err := b.Open(ctx, name)
		closeIf(f)
		errs = append(errs, wantErr("Open", name, err, fs.ErrNotExist))
	}
	return errors.Join(errs...)
}

func checkReadDirOfFile(ctx context.Context, b storage.Backend, tr *tree) error {
	var errs []error
	for _, name := range []string{"one.mp3", "dir/sub dir/two.mp3"} {
		if _, err := b.ReadDir(ctx, name); err == nil {
			errs = append(errs, fmt.Errorf("ReadDir(%q) of a file did not fail", name))
		}
	}
	return errors.Join(errs...)
}

func checkInvalidNames(ctx context.Context, b storage.Backend, tr *tree) error {
	var errs []error
	for _, name := range []string{"../one.mp3", "/one.mp3", "dir//one.m4a", "dir/./one.m4a", "", "dir/", "./one.mp3", "dir/.."} {
		_, err := b.Stat(ctx, name)
		errs = append(errs, wantErr("Stat", name, err, fs.ErrInvalid))
		f, err := b.Open(ctx, name)
		closeIf(f)
		errs = append(errs, wantErr("Open", name, err, fs.ErrInvalid))
		_, err = b.ReadDir(ctx, name)
		errs = append(errs, wantErr("ReadDir", name, err, fs.ErrInvalid))
	}
	return errors.Join(errs...)
}

// checkConcurrent opens and reads files from 8 goroutines at once; the
// big file is read at eight places of one open file too.
func checkConcurrent(ctx context.Context, b storage.Backend, tr *tree) error {
	big := tr.files["big.mkv"]
	shared, err := b.Open(ctx, "big.mkv")
	if err != nil {
		return fmt.Errorf("Open: %w", err)
	}
	defer shared.Close()
	var wg sync.WaitGroup
	errs := make([]error, 8)
	for g := range 8 {
		wg.Go(func() {
			var gerrs []error
			for i, name := range tr.names {
				if (i+g)%2 == 0 {
					continue
				}
				gerrs = append(gerrs, withFile(ctx, b, name, func(f storage.File) error {
					got, err := readAll(f, 32<<10)
					if err == nil && !bytes.Equal(got, tr.files[name]) {
						err = errors.New("wrong bytes")
					}
					return err
				}))
			}
			off := int64(g) * int64(len(big)) / 8
			p := make([]byte, 100<<10)
			if n, err := shared.ReadAt(p, off); err != nil && err != io.EOF || !bytes.Equal(p[:n], big[off:off+int64(n)]) {
				gerrs = append(gerrs, fmt.Errorf("ReadAt(%d) of a shared file: %d bytes, %v or wrong bytes", off, n, err))
			}
			errs[g] = errors.Join(gerrs...)
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

func checkCloseTwice(ctx context.Context, b storage.Backend, tr *tree) error {
	f, err := b.Open(ctx, "one.mp3")
	if err != nil {
		return fmt.Errorf("Open: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("first Close: %w", err)
	}
	if err := f.Close(); err == nil {
		return errors.New("a second Close did not fail")
	}
	return nil
}

// checkCancelled opens and reads with a context that has ended: the
// Open or the first Read fails.
func checkCancelled(ctx context.Context, b storage.Backend, tr *tree) error {
	ctx, cancel := context.WithCancel(ctx)
	cancel()
	f, err := b.Open(ctx, "big.mkv")
	if err != nil {
		return nil
	}
	defer f.Close()
	if _, err := f.Read(make([]byte, 32<<10)); err == nil {
		return errors.New("Open and Read with a cancelled context both succeeded")
	}
	return nil
}
