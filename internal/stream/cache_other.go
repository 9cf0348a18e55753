//go:build !linux

package stream

import (
	"errors"
	"io/fs"
	"syscall"
)

// idOf says no file has an identity here: without the change time a
// rewrite within the same second could go unseen, so nothing is cached.
// (Linux is the platform this server is built and tested for.)
func idOf(fs.FileInfo) (fileID, bool) { return fileID{}, false }

// setCork does nothing here: bodies go out as the connection writes them.
func setCork(syscall.RawConn, bool) error { return errors.ErrUnsupported }
