//go:build !linux

package library

import (
	"io/fs"
	"os"
)

// fastOpener has no fast path outside Linux: files open through os.Root.
type fastOpener struct{}

func newFastOpener(string) fastOpener { return fastOpener{} }

func (fastOpener) close() error { return nil }

func (l *lib) openRegular(rel string) (*os.File, fs.FileInfo, error) {
	return l.openRoot(rel)
}
