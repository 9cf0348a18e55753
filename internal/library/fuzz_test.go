//go:build linux

package library

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// FuzzResolve feeds arbitrary virtual paths to Open, Stat, ReadDir and
// Walk over a library full of hostile symlinks (escaping, absolute, looping,
// up-links) and checks that none of them panics, that every error is one
// the web layer maps to 4xx, and that whatever they return lies inside the
// library root on disk: an opened file is checked through
// /proc/self/fd/N, everything else by device and inode against the set of
// inodes found under the root.
func FuzzResolve(f *testing.F) {
	fx := newFixture(f)
	rootReal, err := filepath.EvalSymlinks(fx.root)
	if err != nil {
		f.Fatal(err)
	}
	inside := inodesUnder(f, fx.root)

	for _, s := range []string{
		"", "Lib", "Lib/", "Dots/", "Lib/a.mp3", "Lib/alpha/gamma/delta.ogg", "Lib/é.mp3",
		"Lib/..", "Lib/../outside/secret.mp3", "../outside", "Lib/./a.mp3", "Lib//a.mp3",
		`Lib\..\outside`, "Lib/a.mp3\x00", "Lib/\x7f", "Lib/.hidden.mp3", "Dots/.dots/x.mp3",
		"Lib/escape.mp3", "Lib/escapeabs.mp3", "Lib/outdir/secret.mp3", "Lib/outabs/sub/inner.mp3",
		"Lib/abs.mp3", "Lib/absdir/beta.mp3", "Lib/alpha/up/outdir", "Lib/alpha/upup.mp3",
		"Lib/cycle/cycle/alpha/up/outdir/sub", "Lib/loop.mp3", "Lib/ping.mp3", "Lib/a.mp3/x",
		"Lib/linkdir/up/outabs", "Dots/outdir/", "/Lib", "Lib/%2e%2e", "Lib/\u2025/outside",
		"Lib/" + strings.Repeat("alpha/up/", 500),
	} {
		f.Add(s)
	}

	f.Fuzz(func(t *testing.T, vpath string) {
		checkErr := func(op string, err error) {
			if err != nil && !errors.Is(err, fs.ErrNotExist) && !errors.Is(err, ErrBadPath) && !errors.Is(err, fs.ErrPermission) {
				t.Errorf("%s(%q) error %v is none of ErrNotExist, ErrBadPath, ErrPermission (it would be a 500)", op, vpath, err)
			}
		}
		checkInode := func(op, what string, fi fs.FileInfo) {
			if _, ok := inside[inodeOf(fi)]; !ok {
				t.Errorf("%s(%q) reached %s, which is not under the library root", op, vpath, what)
			}
		}

		file, fi, err := fx.tree.Open(context.Background(), vpath)
		checkErr("Open", err)
		if err == nil {
			real, rerr := os.Readlink("/proc/self/fd/" + strconv.FormatUint(uint64(file.(*os.File).Fd()), 10))
			if rerr != nil {
				t.Fatalf("readlink: %v", rerr)
			}
			if !strings.HasPrefix(real, rootReal+"/") {
				t.Errorf("Open(%q) opened %s, outside the library root %s", vpath, real, rootReal)
			}
			if !fi.Mode().IsRegular() {
				t.Errorf("Open(%q) returned a %v, not a regular file", vpath, fi.Mode())
			}
			checkInode("Open", real, fi)
			file.Close()
		}

		fi, err = fx.tree.Stat(context.Background(), vpath)
		checkErr("Stat", err)
		if err == nil {
			checkInode("Stat", vpath, fi)
		}

		entries, err := fx.tree.ReadDir(context.Background(), vpath)
		checkErr("ReadDir", err)
		for _, e := range entries {
			if !strings.HasPrefix(e.Path, "Lib/") && !strings.HasPrefix(e.Path, "Dots/") || strings.Contains(e.Path, "//") {
				t.Errorf("ReadDir(%q) listed a malformed path %q", vpath, e.Path)
			}
			efi, err := fx.tree.Stat(context.Background(), e.Path)
			if err != nil {
				t.Errorf("ReadDir(%q) listed %q, which Stat refuses: %v", vpath, e.Path, err)
				continue
			}
			checkInode("ReadDir", e.Path, efi)
		}

		err = fx.tree.Walk(t.Context(), vpath, WalkLimits{MaxItems: 20, MaxDepth: 4}, func(e Entry) error {
			efi, err := fx.tree.Stat(context.Background(), e.Path)
			if err != nil {
				t.Errorf("Walk(%q) reported %q, which Stat refuses: %v", vpath, e.Path, err)
				return nil
			}
			checkInode("Walk", e.Path, efi)
			return nil
		})
		if !errors.Is(err, ErrTooMany) {
			checkErr("Walk", err)
		}
	})
}

type inode struct{ dev, ino uint64 }

func inodeOf(fi fs.FileInfo) inode {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return inode{}
	}
	return inode{uint64(st.Dev), st.Ino}
}

// inodesUnder returns the inodes of root and of everything below it,
// symlinks not followed (their targets inside are found on their own).
func inodesUnder(t testing.TB, root string) map[inode]struct{} {
	t.Helper()
	set := map[inode]struct{}{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		if fi.Mode()&fs.ModeSymlink == 0 {
			set[inodeOf(fi)] = struct{}{}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return set
}
