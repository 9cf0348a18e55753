package scan

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// serve runs Serve with a watcher and returns the channel of finished
// passes ("full" or "watch").
func (e *env) serve(t *testing.T) <-chan string {
	t.Helper()
	done := make(chan string, 16)
	e.s.hookDone = func(kind string) { done <- kind }
	ctx, cancel := context.WithCancel(t.Context())
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		e.s.Serve(ctx)
	}()
	t.Cleanup(func() { cancel(); <-stopped })
	return done
}

// next waits for the next finished pass.
func next(t *testing.T, done <-chan string) string {
	t.Helper()
	select {
	case k := <-done:
		return k
	case <-time.After(20 * time.Second):
		t.Fatal("no scan finished within 20 s")
		return ""
	}
}

func TestWatchFollowsChanges(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	put(t, root, "a/1.mp3", mp3File)
	e := newEnv(t, root, Options{Watch: true, Settle: 50 * time.Millisecond})
	done := e.serve(t)
	if k := next(t, done); k != "full" || e.count(t) != 1 {
		t.Fatalf("first pass %q with %d items", k, e.count(t))
	}
	// A new file in a known folder, and a new folder with a file.
	put(t, root, "a/2.flac", flacFile)
	put(t, root, "new/deeper/3.mp3", mp3File)
	for e.count(t) < 3 {
		if k := next(t, done); k != "watch" {
			t.Fatalf("pass %q, want watch", k)
		}
	}
	// A rename across folders keeps the ID; a deletion removes.
	id := e.known(t, "a").Items["1.mp3"].ID
	if err := os.Rename(filepath.Join(root, "a/1.mp3"), filepath.Join(root, "new/1-moved.mp3")); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(root, "a/2.flac")); err != nil {
		t.Fatal(err)
	}
	for {
		next(t, done)
		k := e.known(t, "new")
		if st, ok := k.Items["1-moved.mp3"]; ok && len(e.known(t, "a").Items) == 0 {
			if st.ID != id {
				t.Errorf("moved file's row %d, want %d", st.ID, id)
			}
			break
		}
	}
	if n := e.count(t); n != 2 {
		t.Errorf("%d items, want 2", n)
	}
	// A removed folder goes; one created again at the same path is
	// watched again.
	if err := os.RemoveAll(filepath.Join(root, "new")); err != nil {
		t.Fatal(err)
	}
	for e.count(t) != 0 {
		next(t, done)
	}
	put(t, root, "new/again.mp3", mp3File)
	for e.count(t) != 1 {
		next(t, done)
	}
	put(t, root, "new/again2.mp3", mp3File)
	for e.count(t) != 2 {
		next(t, done)
	}
}

func TestStart(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	put(t, root, "1.mp3", mp3File)
	e := newEnv(t, root, Options{})
	done := e.serve(t)
	next(t, done)
	put(t, root, "2.mp3", flacFile)
	if !e.s.Start() {
		t.Fatal("Start refused while idle")
	}
	if k := next(t, done); k != "full" || e.count(t) != 2 {
		t.Errorf("pass %q, %d items; want a full scan finding 2", k, e.count(t))
	}
}

// TestWatchRenamedFolder: a folder renamed with a subfolder keeps its
// items' IDs under the new path, and changes below it are seen there.
func TestWatchRenamedFolder(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	put(t, root, "old/sub/1.mp3", mp3File)
	e := newEnv(t, root, Options{Watch: true, Settle: 50 * time.Millisecond})
	done := e.serve(t)
	next(t, done)
	id := e.known(t, "old/sub").Items["1.mp3"].ID
	if err := os.Rename(filepath.Join(root, "old"), filepath.Join(root, "new")); err != nil {
		t.Fatal(err)
	}
	for len(e.known(t, "new/sub").Items) == 0 || len(e.known(t, "old/sub").Items) != 0 {
		next(t, done)
	}
	if got := e.known(t, "new/sub").Items["1.mp3"].ID; got != id {
		t.Errorf("row %d after the folder's rename, want %d", got, id)
	}
	put(t, root, "new/sub/2.mp3", flacFile)
	for len(e.known(t, "new/sub").Items) != 2 {
		next(t, done)
	}
	if n := e.count(t); n != 2 {
		t.Errorf("%d items, want 2", n)
	}
}
