// Package storage is the contract between MuStServ and the places its
// files live: a local folder (package local), another HTTP server
// (httporigin) or an S3 bucket (s3). A library is one Backend; the rest of
// the server names files by slash-separated paths relative to its root and
// never learns where the bytes come from.
//
// A Backend is safe for concurrent use. Its errors wrap fs.ErrNotExist for
// a name that is not there (or may not be shown), fs.ErrPermission for one
// it may not read, ErrUnavailable when the storage cannot be reached or
// answers nonsense, and ErrTimeout when it answers too slowly, so that
// callers can tell "404" from "502" from "504" without knowing the backend.
// Package storagetest holds the conformance suite every backend passes.
package storage

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"strings"
)

// Backend is one tree of folders and files.
//
// Names are as fs.ValidPath accepts them: slash-separated, relative, no
// "." or ".." segments, no empty segment, and "." for the root; but they
// need not be valid UTF-8 (a name on a Linux disk is bytes). Any other
// name is an error wrapping fs.ErrInvalid (ValidName).
type Backend interface {
	// Open opens the regular file name for reading. A folder is
	// fs.ErrNotExist: folders are listed, not read. The file's reads
	// end when ctx ends (a remote backend's reads use it), so a caller
	// opens with the context of the work that reads.
	Open(ctx context.Context, name string) (File, error)
	// Stat describes the file or folder name. Size and ModTime of a
	// file are those Open's File reports, and stay the same while the
	// file is unchanged, on every node that reads the same storage.
	Stat(ctx context.Context, name string) (fs.FileInfo, error)
	// ReadDir lists the folder name: its folders and regular files, in
	// no particular order, each described as Stat would. Entries that
	// cannot be described (a broken symlink, a name the storage cannot
	// hold) are left out.
	ReadDir(ctx context.Context, name string) ([]fs.FileInfo, error)
	// Close releases the backend. Files open from it may fail after.
	Close() error
}

// File is an open regular file. *os.File is one.
type File interface {
	io.Reader
	io.ReaderAt
	io.Seeker
	io.Closer
	Stat() (fs.FileInfo, error)
}

// ErrUnavailable is wrapped by the errors of a backend whose storage
// cannot be reached, refuses, or answers what it cannot have meant (a
// wrong length, a garbled listing): the caller answers 502.
var ErrUnavailable = errors.New("storage unavailable")

// ErrTimeout is wrapped by the errors of a backend whose storage did not
// answer in time: the caller answers 504.
var ErrTimeout = errors.New("storage timed out")

// ErrChanged is wrapped (with ErrUnavailable) by the reads of a File whose
// object changed on the storage since it was opened: another ETag, size
// or modification time. The reader gets an error, never bytes of two
// versions.
var ErrChanged = errors.New("file changed on the storage")

// Redirector is a backend that can send a client straight to the
// storage for a file's bytes (a presigned S3 URL): the URL is valid for
// about ttl seconds and needs nothing but itself.
type Redirector interface {
	RedirectURL(ctx context.Context, name string, ttlSeconds int) (string, error)
}

// Remote reports whether b fetches its bytes over the network: the tree
// then reads ahead and may cache ranges on disk.
func Remote(b Backend) bool {
	r, ok := b.(interface{ Remote() bool })
	return ok && r.Remote()
}

// ValidName reports an error wrapping fs.ErrInvalid for a name a Backend
// must refuse: what fs.ValidPath refuses, invalid UTF-8 aside.
func ValidName(op, name string) error {
	if name == "." {
		return nil
	}
	for seg := range strings.SplitSeq(name, "/") {
		if seg == "" || seg == "." || seg == ".." {
			return &fs.PathError{Op: op, Path: name, Err: fs.ErrInvalid}
		}
	}
	return nil
}
