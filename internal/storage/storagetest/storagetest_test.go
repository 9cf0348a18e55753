package storagetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"mustserv/internal/storage"
)

// dirBackend is a storage.Backend over a folder, as small as the
// contract allows: the suite's own subject.
type dirBackend struct{ root *os.Root }

// newDirBackend returns a dirBackend over a new folder holding Files.
func newDirBackend(t *testing.T) *dirBackend {
	t.Helper()
	dir := t.TempDir()
	for name, data := range Files() {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { root.Close() })
	return &dirBackend{root: root}
}

func (d *dirBackend) Open(ctx context.Context, name string) (storage.File, error) {
	if err := storage.ValidName("open", name); err != nil {
		return nil, err
	}
	f, err := d.root.Open(name)
	if err != nil {
		return nil, err
	}
	if info, err := f.Stat(); err != nil || !info.Mode().IsRegular() {
		f.Close()
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
	}
	return f, nil
}

func (d *dirBackend) Stat(ctx context.Context, name string) (fs.FileInfo, error) {
	if err := storage.ValidName("stat", name); err != nil {
		return nil, err
	}
	return d.root.Stat(name)
}

func (d *dirBackend) ReadDir(ctx context.Context, name string) ([]fs.FileInfo, error) {
	if err := storage.ValidName("readdir", name); err != nil {
		return nil, err
	}
	f, err := d.root.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	entries, err := f.ReadDir(-1)
	if err != nil {
		return nil, err
	}
	infos := make([]fs.FileInfo, 0, len(entries))
	for _, e := range entries {
		if info, err := e.Info(); err == nil {
			infos = append(infos, info)
		}
	}
	return infos, nil
}

func (d *dirBackend) Close() error { return nil }

// remoteBackend serves a dirBackend's files through storage.OpenRemote,
// so that the suite checks the remote file too.
type remoteBackend struct {
	*dirBackend
	opt storage.RemoteOptions
}

func (r *remoteBackend) Remote() bool { return true }

func (r *remoteBackend) Open(ctx context.Context, name string) (storage.File, error) {
	f, err := r.dirBackend.Open(ctx, name)
	if err != nil {
		return nil, err
	}
	info, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	fetch := func(ctx context.Context, off, n int64) (io.ReadCloser, error) {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		return io.NopCloser(io.NewSectionReader(f, off, n)), nil
	}
	key := fmt.Sprintf("%s %d %d", name, info.Size(), info.ModTime().UnixNano())
	return &closeBoth{File: storage.OpenRemote(ctx, storage.Object{Info: info, Key: key, Fetch: fetch}, r.opt), also: f}, nil
}

// closeBoth is a File that closes another file with itself.
type closeBoth struct {
	storage.File
	also io.Closer
}

func (c *closeBoth) Close() error {
	if err := c.File.Close(); err != nil {
		return err
	}
	return c.also.Close()
}

func TestDirBackend(t *testing.T) {
	t.Parallel()
	Run(t, newDirBackend(t))
}

func TestRemoteBackend(t *testing.T) {
	t.Parallel()
	cache, err := storage.NewCache(t.TempDir(), 2<<20)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		opt  storage.RemoteOptions
	}{
		{"plain", storage.RemoteOptions{}},
		{"small read-ahead", storage.RemoteOptions{ReadAhead: 100 << 10}},
		{"cache", storage.RemoteOptions{Cache: cache}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			Run(t, &remoteBackend{dirBackend: newDirBackend(t), opt: tt.opt})
		})
	}
}

// TestFiles checks that the fixture holds what the suite promises.
func TestFiles(t *testing.T) {
	t.Parallel()
	files := Files()
	again := Files()
	if len(again) != len(files) {
		t.Errorf("Files gave %d files, then %d", len(files), len(again))
	}
	for name, data := range files {
		if !bytes.Equal(data, again[name]) {
			t.Errorf("%q differs between calls", name)
		}
	}
	media := map[string]bool{".mp3": true, ".flac": true, ".ogg": true, ".m4a": true, ".mkv": true, ".mp4": true, ".opus": true, ".wav": true}
	var all strings.Builder
	var empty, big, deep bool
	for name, data := range files {
		all.WriteString(name)
		if !media[path.Ext(name)] {
			t.Errorf("%q has no media extension", name)
		}
		for _, seg := range strings.Split(name, "/") {
			if strings.HasPrefix(seg, ".") {
				t.Errorf("%q has a dot-name", name)
			}
		}
		empty = empty || len(data) == 0
		big = big || len(data) >= 3<<20
		deep = deep || strings.Count(name, "/") >= 3
	}
	for _, c := range []string{" ", "#", "?", "%", "+", "&", "é", "ü", "日本"} {
		if !strings.Contains(all.String(), c) {
			t.Errorf("no name holds %q", c)
		}
	}
	if !empty || !big || !deep {
		t.Errorf("empty file %v, 3 MiB file %v, 3 folders deep %v; want all", empty, big, deep)
	}
}

// TestBrokenBackendsFail checks that each check catches the fault it is
// there for.
func TestBrokenBackendsFail(t *testing.T) {
	t.Parallel()
	tests := []struct {
		check   string
		backend func(d *dirBackend) storage.Backend
	}{
		{"ReadDir", func(d *dirBackend) storage.Backend { return extraEntry{d} }},
		{"StatFiles", func(d *dirBackend) storage.Backend { return wrongSize{d} }},
		{"StatStable", func(d *dirBackend) storage.Backend { return &movingTime{dirBackend: d} }},
		{"NotExist", func(d *dirBackend) storage.Backend { return plainNotFound{d} }},
		{"InvalidNames", func(d *dirBackend) storage.Backend { return lenientNames{d} }},
		{"OpenFolder", func(d *dirBackend) storage.Backend { return opensFolders{d} }},
		{"ReadAt", func(d *dirBackend) storage.Backend {
			return wrapFiles{d, func(f storage.File) storage.File { return badReadAt{f} }}
		}},
		{"ReadAll", func(d *dirBackend) storage.Backend {
			return wrapFiles{d, func(f storage.File) storage.File { return eofNil{File: f} }}
		}},
		{"ReadAtEOF", func(d *dirBackend) storage.Backend {
			return wrapFiles{d, func(f storage.File) storage.File { return eofNil{File: f} }}
		}},
		{"Seek", func(d *dirBackend) storage.Backend {
			return wrapFiles{d, func(f storage.File) storage.File { return badSeek{f} }}
		}},
		{"CloseTwice", func(d *dirBackend) storage.Backend {
			return wrapFiles{d, func(f storage.File) storage.File { return &quietClose{File: f} }}
		}},
		{"CancelledContext", func(d *dirBackend) storage.Backend { return ignoresContext{d} }},
	}
	for _, tt := range tests {
		t.Run(tt.check, func(t *testing.T) {
			t.Parallel()
			b := tt.backend(newDirBackend(t))
			for _, c := range checks(storage.Remote(b)) {
				if c.name != tt.check {
					continue
				}
				err := c.run(t.Context(), b, newTree(Files()))
				if err == nil {
					t.Fatalf("%s passed a backend it should fail", c.name)
				}
				t.Logf("failed as it should: %.200s", err)
				return
			}
			t.Fatalf("no check %s", tt.check)
		})
	}
}

// extraEntry lists one file too many at the root.
type extraEntry struct{ *dirBackend }

func (e extraEntry) ReadDir(ctx context.Context, name string) ([]fs.FileInfo, error) {
	infos, err := e.dirBackend.ReadDir(ctx, name)
	if name == "." && err == nil {
		extra, _ := e.dirBackend.Stat(ctx, "one.mp3")
		infos = append(infos, renamed{extra, "ghost.mp3"})
	}
	return infos, err
}

type renamed struct {
	fs.FileInfo
	name string
}

func (r renamed) Name() string { return r.name }

// wrongSize describes files one byte longer than they are.
type wrongSize struct{ *dirBackend }

func (w wrongSize) Stat(ctx context.Context, name string) (fs.FileInfo, error) {
	info, err := w.dirBackend.Stat(ctx, name)
	if err != nil || info.IsDir() {
		return info, err
	}
	return longer{info}, nil
}

type longer struct{ fs.FileInfo }

func (l longer) Size() int64 { return l.FileInfo.Size() + 1 }

// movingTime describes files with a time that changes on every Stat.
type movingTime struct {
	*dirBackend
	n int
}

func (m *movingTime) Stat(ctx context.Context, name string) (fs.FileInfo, error) {
	info, err := m.dirBackend.Stat(ctx, name)
	if err != nil {
		return info, err
	}
	m.n++
	return timed{info, info.ModTime().Add(time.Duration(m.n) * time.Second)}, nil
}

type timed struct {
	fs.FileInfo
	t time.Time
}

func (t timed) ModTime() time.Time { return t.t }

// plainNotFound hides fs.ErrNotExist from Stat.
type plainNotFound struct{ *dirBackend }

func (p plainNotFound) Stat(ctx context.Context, name string) (fs.FileInfo, error) {
	info, err := p.dirBackend.Stat(ctx, name)
	if errors.Is(err, fs.ErrNotExist) {
		err = errors.New("no such thing")
	}
	return info, err
}

// lenientNames cleans the names it should refuse.
type lenientNames struct{ *dirBackend }

func (l lenientNames) Stat(ctx context.Context, name string) (fs.FileInfo, error) {
	return l.dirBackend.Stat(ctx, strings.TrimPrefix(path.Clean(name), "/"))
}

// opensFolders opens folders as files.
type opensFolders struct{ *dirBackend }

func (o opensFolders) Open(ctx context.Context, name string) (storage.File, error) {
	if err := storage.ValidName("open", name); err != nil {
		return nil, err
	}
	return o.root.Open(name)
}

// ignoresContext says it is remote but reads with no regard to the
// context.
type ignoresContext struct{ *dirBackend }

func (ignoresContext) Remote() bool { return true }

// wrapFiles wraps the files it opens.
type wrapFiles struct {
	*dirBackend
	wrap func(storage.File) storage.File
}

func (w wrapFiles) Open(ctx context.Context, name string) (storage.File, error) {
	f, err := w.dirBackend.Open(ctx, name)
	if err != nil {
		return nil, err
	}
	return w.wrap(f), nil
}

// badReadAt gets the last byte of each ReadAt wrong.
type badReadAt struct{ storage.File }

func (b badReadAt) ReadAt(p []byte, off int64) (int, error) {
	n, err := b.File.ReadAt(p, off)
	if n > 0 {
		p[n-1]++
	}
	return n, err
}

// eofNil reads nothing and no error at the end.
type eofNil struct{ storage.File }

func (e eofNil) Read(p []byte) (int, error) {
	n, err := e.File.Read(p)
	if err == io.EOF {
		err = nil
	}
	return n, err
}

// badSeek seeks from the start whatever whence says.
type badSeek struct{ storage.File }

func (b badSeek) Seek(offset int64, whence int) (int64, error) {
	return b.File.Seek(max(offset, 0), io.SeekStart)
}

// quietClose does not mind being closed twice.
type quietClose struct {
	storage.File
	closed bool
}

func (q *quietClose) Close() error {
	if q.closed {
		return nil
	}
	q.closed = true
	return q.File.Close()
}
