package local

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"mustserv/internal/storage/storagetest"
)

func TestConformance(t *testing.T) {
	dir := t.TempDir()
	for name, data := range storagetest.Files() {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	b, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	storagetest.Run(t, b)
}

// TestConfined: nothing outside the folder is reachable, through "..",
// an absolute name or a symlink, and what is not a folder or a regular
// file is not listed.
func TestConfined(t *testing.T) {
	outside := t.TempDir()
	if err := os.WriteFile(filepath.Join(outside, "secret.mp3"), []byte("secret"), 0o644); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "in.mp3"), []byte("in"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, l := range [][2]string{
		{filepath.Join(outside, "secret.mp3"), "abs.mp3"},
		{"../" + filepath.Base(outside) + "/secret.mp3", "rel.mp3"},
		{outside, "outdir"},
		{"in.mp3", "inside.mp3"},
		{"missing.mp3", "broken.mp3"},
	} {
		if err := os.Symlink(l[0], filepath.Join(dir, l[1])); err != nil {
			t.Fatal(err)
		}
	}
	b, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	ctx := context.Background()
	for _, name := range []string{"abs.mp3", "rel.mp3", "outdir/secret.mp3", "broken.mp3"} {
		if _, err := b.Open(ctx, name); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("Open(%q) = %v, want fs.ErrNotExist", name, err)
		}
		if _, err := b.Stat(ctx, name); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("Stat(%q) = %v, want fs.ErrNotExist", name, err)
		}
	}
	for _, name := range []string{"../" + filepath.Base(outside) + "/secret.mp3", outside + "/secret.mp3"} {
		if _, err := b.Open(ctx, name); !errors.Is(err, fs.ErrInvalid) {
			t.Errorf("Open(%q) = %v, want fs.ErrInvalid", name, err)
		}
	}
	f, err := b.Open(ctx, "inside.mp3")
	if err != nil {
		t.Fatalf("a symlink inside the folder: %v", err)
	}
	f.Close()
	fis, err := b.ReadDir(ctx, ".")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, fi := range fis {
		got = append(got, fi.Name())
	}
	want := map[string]bool{"in.mp3": true, "inside.mp3": true}
	if len(got) != len(want) || !want[got[0]] || !want[got[1]] {
		t.Errorf("ReadDir = %q, want in.mp3 and inside.mp3 only", got)
	}
}
