package storage

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"sync"
)

// FetchFunc returns a reader of the bytes [off, off+n) of one object, n > 0,
// off+n <= its size. The backend checks that the answer is exactly that
// range of the object as it was when opened (Content-Range, ETag or
// Last-Modified, size) and reports otherwise with an error wrapping
// ErrChanged and ErrUnavailable; other failures wrap ErrUnavailable,
// ErrTimeout or fs.ErrNotExist. The reader must yield exactly n bytes or
// an error (io.ErrUnexpectedEOF when the answer is cut short).
type FetchFunc func(ctx context.Context, off, n int64) (io.ReadCloser, error)

// Object is a remote file as its backend found it when opening it.
type Object struct {
	Info fs.FileInfo // name, size and modification time
	// Key identifies this version of the object across processes (the
	// backend, the name, and its ETag, size and time), for the range
	// cache; "" means its ranges are never cached.
	Key   string
	Fetch FetchFunc
}

// RemoteOptions tune the files OpenRemote returns.
type RemoteOptions struct {
	// ReadAhead is the most bytes fetched ahead of sequential reads; 0
	// means 4 MiB.
	ReadAhead int64
	// Cache, if not nil, keeps fetched ranges on disk.
	Cache *Cache
	// Counters, if not nil, count what the files fetch.
	Counters *Counters
}

// Cache is an on-disk cache of remote files' ranges, bounded in size.
type Cache struct{}

// Counters count remote reads. Safe for concurrent use.
type Counters struct{}

// OpenRemote returns a File reading o through o.Fetch, whose reads end
// when ctx ends.
func OpenRemote(ctx context.Context, o Object, opt RemoteOptions) File {
	return &remoteFile{ctx: ctx, o: o}
}

// remoteFile is the plain version: one fetch per read.
type remoteFile struct {
	ctx    context.Context
	o      Object
	mu     sync.Mutex
	off    int64
	closed bool
}

var errClosed = errors.New("file already closed")

func (f *remoteFile) Stat() (fs.FileInfo, error) { return f.o.Info, nil }

func (f *remoteFile) Close() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return &fs.PathError{Op: "close", Path: f.o.Info.Name(), Err: fs.ErrClosed}
	}
	f.closed = true
	return nil
}

func (f *remoteFile) Read(p []byte) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	n, err := f.readAt(p, f.off)
	f.off += int64(n)
	return n, err
}

func (f *remoteFile) ReadAt(p []byte, off int64) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.readAt(p, off)
}

func (f *remoteFile) readAt(p []byte, off int64) (int, error) {
	if f.closed {
		return 0, errClosed
	}
	if off < 0 {
		return 0, fmt.Errorf("read at %d: negative offset", off)
	}
	size := f.o.Info.Size()
	if off >= size {
		return 0, io.EOF
	}
	n := min(int64(len(p)), size-off)
	if n == 0 {
		return 0, nil
	}
	rc, err := f.o.Fetch(f.ctx, off, n)
	if err != nil {
		return 0, err
	}
	defer rc.Close()
	m, err := io.ReadFull(rc, p[:n])
	if err == nil && n < int64(len(p)) {
		err = io.EOF
	}
	return m, err
}

func (f *remoteFile) Seek(offset int64, whence int) (int64, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	switch whence {
	case io.SeekStart:
	case io.SeekCurrent:
		offset += f.off
	case io.SeekEnd:
		offset += f.o.Info.Size()
	default:
		return f.off, fmt.Errorf("seek: bad whence %d", whence)
	}
	if offset < 0 {
		return f.off, fmt.Errorf("seek to %d: negative offset", offset)
	}
	f.off = offset
	return offset, nil
}
