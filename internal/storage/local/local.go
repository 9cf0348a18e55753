// Package local is the storage backend of a folder on this machine (or a
// network share mounted on it: SMB, NFS). Every name is opened through an
// os.Root, which refuses paths and symlinks that leave the folder; on
// Linux a file opens with one openat2(2) confined the same way by the
// kernel (RESOLVE_BENEATH), and is an *os.File, so that the streaming path
// can hand it to sendfile.
package local

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"syscall"

	"mustserv/internal/storage"
)

// Backend is one folder. Its methods ignore their contexts: local calls
// do not wait on a network (a hung network share blocks them, as it
// blocks every program).
type Backend struct {
	dir  string
	root *os.Root
	fast fastOpener
}

var _ storage.Backend = (*Backend)(nil)

// Open opens the folder dir.
func Open(dir string) (*Backend, error) {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, err
	}
	return &Backend{dir: dir, root: root, fast: newFastOpener(dir)}, nil
}

// Dir is the folder as given to Open.
func (b *Backend) Dir() string { return b.dir }

// String names the backend in logs.
func (b *Backend) String() string { return b.dir }

// Close releases the folder.
func (b *Backend) Close() error { return errors.Join(b.root.Close(), b.fast.close()) }

// Moved reports whether the folder's path now names another folder than
// the one opened: a disk mounted on the mount point after the server
// started, a folder deleted and created again. The caller opens it again.
func (b *Backend) Moved() (bool, error) {
	now, err := os.Stat(b.dir)
	if err != nil {
		return false, err
	}
	was, err := b.root.Stat(".")
	return err != nil || !os.SameFile(now, was), nil
}

// Open opens the regular file name as an *os.File.
func (b *Backend) Open(_ context.Context, name string) (storage.File, error) {
	f, _, err := b.OpenFile(name)
	if err != nil {
		return nil, err
	}
	return f, nil
}

// OpenFile opens the regular file name and describes it, with one
// fstat(2) where the OS allows.
func (b *Backend) OpenFile(name string) (*os.File, fs.FileInfo, error) {
	if err := storage.ValidName("open", name); err != nil {
		return nil, nil, err
	}
	if name == "." {
		return nil, nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
	}
	return b.openRegular(name)
}

// openRoot opens a regular file through the os.Root: the portable way,
// used where openRegular has no faster one.
func (b *Backend) openRoot(name string) (*os.File, fs.FileInfo, error) {
	// O_NONBLOCK: a plain open(2) of a FIFO blocks until a writer comes,
	// which would hang the request; O_NOCTTY: never adopt a terminal.
	f, err := b.root.OpenFile(name, os.O_RDONLY|syscall.O_NONBLOCK|syscall.O_NOCTTY, 0)
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
		return nil, nil, fmt.Errorf("%s: not a regular file: %w", name, fs.ErrNotExist)
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

// Stat describes the file or folder name, following a symlink inside the
// folder.
func (b *Backend) Stat(_ context.Context, name string) (fs.FileInfo, error) {
	if err := storage.ValidName("stat", name); err != nil {
		return nil, err
	}
	fi, err := b.root.Stat(name)
	return fi, classify(err)
}

// Lstat describes name without following a symlink: Walk does not enter
// symlinked folders.
func (b *Backend) Lstat(name string) (fs.FileInfo, error) {
	if err := storage.ValidName("lstat", name); err != nil {
		return nil, err
	}
	fi, err := b.root.Lstat(name)
	return fi, classify(err)
}

// ReadDir lists the folder name. Symlinks are followed inside the folder;
// broken or escaping ones, and what is neither a folder nor a regular
// file (FIFOs, devices, sockets), are left out.
func (b *Backend) ReadDir(_ context.Context, name string) ([]fs.FileInfo, error) {
	if err := storage.ValidName("readdir", name); err != nil {
		return nil, err
	}
	f, err := b.root.Open(name)
	if err != nil {
		return nil, classify(err)
	}
	defer f.Close()
	des, err := f.ReadDir(-1)
	if err != nil {
		return nil, classify(err)
	}
	out := make([]fs.FileInfo, 0, len(des))
	for _, de := range des {
		var fi fs.FileInfo
		if de.Type()&fs.ModeSymlink != 0 {
			fi, err = b.root.Stat(path.Join(name, de.Name()))
			if err == nil {
				fi = renamed{fi, de.Name()}
			}
		} else {
			fi, err = de.Info()
		}
		if err != nil {
			continue // vanished, broken or escaping: not listable
		}
		if !fi.IsDir() && !fi.Mode().IsRegular() {
			continue
		}
		out = append(out, fi)
	}
	return out, nil
}

// renamed is a symlink's target described under the link's name.
type renamed struct {
	fs.FileInfo
	name string
}

func (r renamed) Name() string { return r.name }

// classify maps the errors of an os.Root to the ones callers act on.
// os.Root reports a path that escapes the root (a symlink pointing outside)
// with an error that is not an errno; to a client that is "not found", as
// is a path through a file (ENOTDIR) or a symlink loop.
func classify(err error) error {
	if err == nil || errors.Is(err, fs.ErrNotExist) || errors.Is(err, fs.ErrPermission) || errors.Is(err, fs.ErrClosed) {
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
