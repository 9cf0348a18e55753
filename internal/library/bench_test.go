//go:build unix

package library

import (
	"context"
	"testing"

	"mustserv/internal/config"
)

// BenchmarkOpen measures the hot path of a stream: resolving a virtual
// path and opening the file (openat2 on Linux), then closing it.
func BenchmarkOpen(b *testing.B) {
	dir := b.TempDir()
	mkTree(b, dir, "Artist/Album/01 Track.mp3")
	tree, err := Open([]config.Library{{Name: "Other", Path: b.TempDir()}, {Name: "Music", Path: dir}})
	if err != nil {
		b.Fatal(err)
	}
	defer tree.Close()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			f, _, err := tree.Open(context.Background(), "Music/Artist/Album/01 Track.mp3")
			if err != nil {
				b.Error(err)
				return
			}
			f.Close()
		}
	})
}

// BenchmarkResolve measures what Configure can cost every request: the
// lookup of a library and the check of the path, without system calls.
func BenchmarkResolve(b *testing.B) {
	tree, err := Open([]config.Library{{Name: "Other", Path: b.TempDir()}, {Name: "Music", Path: b.TempDir()}})
	if err != nil {
		b.Fatal(err)
	}
	defer tree.Close()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, _, err := tree.resolve("Music/Artist/Album/01 Track.mp3"); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
