//go:build !linux

package stream

import "io/fs"

// idOf says no file has an identity here: without the change time a
// rewrite within the same second could go unseen, so nothing is cached.
// (Linux is the platform this server is built and tested for.)
func idOf(fs.FileInfo) (fileID, bool) { return fileID{}, false }
