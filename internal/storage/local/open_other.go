//go:build !linux

package local

import (
	"io/fs"
	"os"
)

// fastOpener has no fast path outside Linux: files open through os.Root.
type fastOpener struct{}

func newFastOpener(string) fastOpener { return fastOpener{} }

func (fastOpener) close() error { return nil }

func (b *Backend) openRegular(rel string) (*os.File, fs.FileInfo, error) {
	return b.openRoot(rel)
}
