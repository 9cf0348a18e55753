//go:build unix

package library

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"

	"mustserv/internal/config"
)

// readAll opens a virtual path and returns its content.
func readAll(tree *Tree, vpath string) (string, error) {
	f, _, err := tree.Open(context.Background(), vpath)
	if err != nil {
		return "", err
	}
	defer f.Close()
	b, err := io.ReadAll(f)
	return string(b), err
}

// libOf returns the lib a tree serves under name, or nil.
func libOf(tree *Tree, name string) *lib { return tree.set.Load().byName[name] }

// TestConfigure adds, removes and changes libraries one Configure at a
// time, and checks what the tree serves after each.
func TestConfigure(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	mkTree(t, dir, "a/x.mp3", "b/y.mp3", "b/.hidden.mp3", "c/z.mp3", "c2/z2.mp3")
	a, b, c, c2 := filepath.Join(dir, "a"), filepath.Join(dir, "b"), filepath.Join(dir, "c"), filepath.Join(dir, "c2")
	tree, err := Open([]config.Library{{Name: "A", Path: a}, {Name: "B", Path: b}})
	if err != nil {
		t.Fatal(err)
	}
	defer tree.Close()
	keptB, keptBHandle := libOf(tree, "B"), libOf(tree, "B").handle()

	// A removed, C added, B unchanged (and now listed after C).
	if err := tree.Configure([]config.Library{{Name: "C", Path: c}, {Name: "B", Path: b}}); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"C", "B"}, tree.Names()); diff != "" {
		t.Errorf("Names() after add and remove (-want +got):\n%s", diff)
	}
	if tree.Has("A") || !tree.Has("B") || !tree.Has("C") {
		t.Errorf("Has A, B, C = %v, %v, %v; want false, true, true", tree.Has("A"), tree.Has("B"), tree.Has("C"))
	}
	for _, op := range []struct {
		name string
		err  func() error
	}{
		{"Open", func() error { _, _, err := tree.Open(context.Background(), "A/x.mp3"); return err }},
		{"Stat", func() error { _, err := tree.Stat(context.Background(), "A"); return err }},
		{"ReadDir", func() error { _, err := tree.ReadDir(context.Background(), "A"); return err }},
		{"Walk", func() error { return tree.Walk(t.Context(), "A", WalkLimits{}, func(Entry) error { return nil }) }},
		{"Reopen", func() error { _, err := tree.Reopen("A"); return err }},
	} {
		if err := op.err(); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("%s of a removed library: %v, want fs.ErrNotExist", op.name, err)
		}
	}
	if got, err := readAll(tree, "C/z.mp3"); err != nil || got != content("c/z.mp3") {
		t.Errorf("added library: %q, %v", got, err)
	}
	if libOf(tree, "B") != keptB || keptB.handle() != keptBHandle {
		t.Error("an unchanged library was opened again")
	}
	if _, _, err := tree.Open(context.Background(), "B/.hidden.mp3"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("hidden file without dotfiles: %v", err)
	}

	// B gets dotfiles, C another folder: both are opened again.
	if err := tree.Configure([]config.Library{{Name: "C", Path: c2}, {Name: "B", Path: b, Dotfiles: true}}); err != nil {
		t.Fatal(err)
	}
	if libOf(tree, "B") == keptB {
		t.Error("a library whose dotfiles changed kept its old settings")
	}
	if got, err := readAll(tree, "B/.hidden.mp3"); err != nil || got != content("b/.hidden.mp3") {
		t.Errorf("hidden file with dotfiles: %q, %v", got, err)
	}
	if got, err := readAll(tree, "C/z2.mp3"); err != nil || got != content("c2/z2.mp3") {
		t.Errorf("library moved to another folder: %q, %v", got, err)
	}
	if _, _, err := tree.Open(context.Background(), "C/z.mp3"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("library moved to another folder still serves the old one: %v", err)
	}

	// Everything removed, then A back.
	if err := tree.Configure(nil); err != nil {
		t.Fatal(err)
	}
	if n := tree.Names(); len(n) != 0 {
		t.Errorf("Names() after removing all: %q", n)
	}
	if err := tree.Configure([]config.Library{{Name: "A", Path: a}}); err != nil {
		t.Fatal(err)
	}
	if got, err := readAll(tree, "A/x.mp3"); err != nil || got != content("a/x.mp3") {
		t.Errorf("library added again: %q, %v", got, err)
	}
}

// TestConfigureFailsWhole: a Configure that cannot open one folder, or
// names a library wrongly, leaves the tree exactly as it was.
func TestConfigureFailsWhole(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	mkTree(t, dir, "a/x.mp3", "b/y.mp3", "new/n.mp3")
	a, b := filepath.Join(dir, "a"), filepath.Join(dir, "b")
	tree, err := Open([]config.Library{{Name: "A", Path: a}, {Name: "B", Path: b}})
	if err != nil {
		t.Fatal(err)
	}
	defer tree.Close()
	before := tree.set.Load()
	handles := map[string]*handle{"A": libOf(tree, "A").handle(), "B": libOf(tree, "B").handle()}
	tests := []struct {
		name    string
		libs    []config.Library
		wantErr string
	}{
		{"missing folder", []config.Library{{Name: "New", Path: filepath.Join(dir, "new")}, {Name: "Gone", Path: filepath.Join(dir, "gone")}}, `library "Gone"`},
		{"changed to a missing folder", []config.Library{{Name: "A", Path: filepath.Join(dir, "gone")}, {Name: "B", Path: b}}, `library "A"`},
		{"duplicate", []config.Library{{Name: "New", Path: filepath.Join(dir, "new")}, {Name: "New", Path: a}}, `"New" is configured twice`},
		{"bad name", []config.Library{{Name: "New", Path: filepath.Join(dir, "new")}, {Name: "x/y", Path: a}}, `"x/y"`},
	}
	for _, tt := range tests {
		err := tree.Configure(tt.libs)
		if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
			t.Errorf("%s: Configure error %v, want one containing %q", tt.name, err, tt.wantErr)
		}
		if tree.set.Load() != before {
			t.Errorf("%s: the tree changed", tt.name)
		}
		if diff := cmp.Diff([]string{"A", "B"}, tree.Names()); diff != "" {
			t.Errorf("%s: Names() (-want +got):\n%s", tt.name, diff)
		}
		for name, h := range handles {
			if libOf(tree, name).handle() != h {
				t.Errorf("%s: library %s was opened again", tt.name, name)
			}
			if _, err := h.b.Stat(context.Background(), "."); err != nil {
				t.Errorf("%s: library %s's folder: %v", tt.name, name, err)
			}
		}
		if _, _, err := tree.Open(context.Background(), "New/n.mp3"); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("%s: the new library is served: %v", tt.name, err)
		}
	}
	if got, err := readAll(tree, "A/x.mp3"); err != nil || got != content("a/x.mp3") {
		t.Errorf("after failed Configures: %q, %v", got, err)
	}
}

// TestConfigureGrace: requests under way when a library is removed keep
// working: a file opened before reads to its end, and a request that
// found the library just before keeps its folder for reopenGrace, which
// is closed then (or at Close, whichever comes first).
func TestConfigureGrace(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		dir := t.TempDir()
		mkTree(t, dir, "a/x.mp3", "b/y.mp3")
		tree, err := Open([]config.Library{{Name: "A", Path: filepath.Join(dir, "a")}, {Name: "B", Path: filepath.Join(dir, "b")}})
		if err != nil {
			t.Fatal(err)
		}
		f, _, err := tree.Open(context.Background(), "A/x.mp3")
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		inFlight := libOf(tree, "A") // resolved, not yet opened
		removedB := libOf(tree, "B").handle()
		if err := tree.Configure(nil); err != nil {
			t.Fatal(err)
		}
		if _, _, err := tree.Open(context.Background(), "A/x.mp3"); !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("removed library: %v", err)
		}
		if b, err := io.ReadAll(f); err != nil || string(b) != content("a/x.mp3") {
			t.Errorf("file opened before the removal: %q, %v", b, err)
		}
		time.Sleep(reopenGrace - time.Second)
		synctest.Wait()
		g, _, err := inFlight.handle().local.OpenFile("x.mp3")
		if err != nil {
			t.Fatalf("a second before the grace ends: %v", err)
		}
		g.Close()
		time.Sleep(2 * time.Second)
		synctest.Wait()
		if _, err := inFlight.handle().b.Stat(context.Background(), "."); !errors.Is(err, os.ErrClosed) {
			t.Errorf("after the grace, the removed folder: %v, want closed", err)
		}
		// Close does not wait for a grace to end, nor closes twice.
		if err := tree.Configure([]config.Library{{Name: "B", Path: filepath.Join(dir, "b")}}); err != nil {
			t.Fatal(err)
		}
		if libOf(tree, "B").handle() == removedB {
			t.Fatal("a library added again reused the closed folder")
		}
		retired := libOf(tree, "B").handle()
		if err := tree.Configure(nil); err != nil {
			t.Fatal(err)
		}
		if err := tree.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
		if _, err := retired.b.Stat(context.Background(), "."); !errors.Is(err, os.ErrClosed) {
			t.Errorf("after Close, a folder in its grace: %v, want closed", err)
		}
		time.Sleep(reopenGrace)
		synctest.Wait()
		if err := tree.Configure([]config.Library{{Name: "B", Path: filepath.Join(dir, "b")}}); !errors.Is(err, ErrClosed) {
			t.Errorf("Configure after Close: %v, want ErrClosed", err)
		}
	})
}

// TestConfigureConcurrent changes the libraries while other goroutines
// open, stat, list and walk them (run it with -race): a library that
// stays is always served; one that comes and goes is served from one of
// its folders or not found, never half-configured.
func TestConfigureConcurrent(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	mkTree(t, dir, "keep/k.mp3", "one/f.mp3", "two/f.mp3")
	keep := config.Library{Name: "Keep", Path: filepath.Join(dir, "keep")}
	states := [][]config.Library{
		{keep, {Name: "Flip", Path: filepath.Join(dir, "one")}},
		{keep},
		{{Name: "Flip", Path: filepath.Join(dir, "two")}, keep},
		{keep, {Name: "Flip", Path: filepath.Join(dir, "one"), Dotfiles: true}},
	}
	tree, err := Open(states[0])
	if err != nil {
		t.Fatal(err)
	}
	defer tree.Close()
	ctx, stop := context.WithCancel(t.Context())
	var wg sync.WaitGroup
	var started sync.WaitGroup
	const readers, maxIterations = 4, 1_000_000
	errs := make(chan error, readers)
	for range readers {
		wg.Add(1)
		started.Add(1)
		go func() {
			defer wg.Done()
			started.Done()
			for i := 0; i < maxIterations && ctx.Err() == nil; i++ {
				if got, err := readAll(tree, "Keep/k.mp3"); err != nil || got != content("keep/k.mp3") {
					errs <- errors.Join(errors.New("kept library"), err)
					return
				}
				got, err := readAll(tree, "Flip/f.mp3")
				if err != nil && !errors.Is(err, fs.ErrNotExist) || err == nil && got != content("one/f.mp3") && got != content("two/f.mp3") {
					errs <- errors.Join(errors.New("changing library: "+got), err)
					return
				}
				if _, err := tree.ReadDir(context.Background(), "Flip"); err != nil && !errors.Is(err, fs.ErrNotExist) {
					errs <- err
					return
				}
				err = tree.Walk(ctx, "Flip", WalkLimits{}, func(Entry) error { return nil })
				if err != nil && !errors.Is(err, fs.ErrNotExist) && ctx.Err() == nil {
					errs <- err
					return
				}
				if n := tree.Names(); len(n) == 0 || len(n) > 2 {
					errs <- errors.New("names " + strings.Join(n, ","))
					return
				}
			}
		}()
	}
	started.Wait()
	for i := range 200 {
		want := states[(i+1)%len(states)]
		if err := tree.Configure(want); err != nil {
			t.Fatal(err)
		}
		_, _, err := tree.Open(context.Background(), "Flip/f.mp3")
		if has := len(want) == 2; has != (err == nil) {
			t.Fatalf("after Configure %d (%d libraries), Flip: %v", i, len(want), err)
		}
	}
	stop()
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}
