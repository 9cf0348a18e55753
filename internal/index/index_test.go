package index

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
	"time"

	"mustserv/internal/probe"
)

// openTest opens a fresh index in a temporary folder.
func openTest(t *testing.T) *Index {
	t.Helper()
	x, err := Open(t.Context(), filepath.Join(t.TempDir(), "index.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { x.Close() })
	return x
}

func TestOpenTwice(t *testing.T) {
	t.Parallel()
	p := filepath.Join(t.TempDir(), "index.db")
	for range 2 {
		x, err := Open(t.Context(), p)
		if err != nil {
			t.Fatal(err)
		}
		var n int
		if err := x.r.QueryRowContext(t.Context(), `SELECT count(*) FROM items`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if err := x.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

func TestApplyAndRefresh(t *testing.T) {
	t.Parallel()
	x := openTest(t)
	ctx := t.Context()
	rec := func(p, title, album string, artists ...string) Record {
		return Record{Library: "Music", Path: p, Kind: "audio", Size: 100, ModTime: time.Unix(1, 0),
			Hash: []byte(p), Report: &probe.Report{Container: "mp3", Duration: 10,
				Tags: probe.Tags{Title: title, Album: album, Artists: artists}}}
	}
	b := &Batch{
		Folders: []FolderRecord{{Library: "Music", Path: "Björk/Homogenic", Cover: "folder.jpg"}},
		Puts: []Record{
			rec("Björk/Homogenic/01.mp3", "Hunter", "Homogenic", "Björk"),
			rec("Björk/Homogenic/02.mp3", "Jóga", "Homogenic", "Björk"),
			rec("Various/x.mp3", "Song", "", "A", "B"),
		},
	}
	if err := x.Apply(ctx, b); err != nil {
		t.Fatal(err)
	}
	if err := x.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	var albums, artists int
	x.w.QueryRow(`SELECT count(*) FROM albums`).Scan(&albums)
	x.w.QueryRow(`SELECT count(*) FROM artists`).Scan(&artists)
	if albums != 1 || artists != 3 {
		t.Errorf("albums %d artists %d, want 1 and 3", albums, artists)
	}
	k, err := x.Known(ctx, "Music", "Björk/Homogenic")
	if err != nil || len(k.Items) != 2 {
		t.Fatalf("known %v %v", k, err)
	}
	var n int
	if err := x.w.QueryRow(`SELECT count(*) FROM items_fts WHERE items_fts MATCH 'bjork'`).Scan(&n); err != nil || n != 2 {
		t.Errorf("fts bjork: %d %v", n, err)
	}
	// A move keeps the row; removing the folder removes its items.
	mv := rec("Moved/01.mp3", "Hunter", "Homogenic", "Björk")
	mv.Replaces = k.Items["01.mp3"].ID
	if err := x.Apply(ctx, &Batch{Puts: []Record{mv}, RemoveFolders: []FolderRecord{{Library: "Music", Path: "Björk"}}}); err != nil {
		t.Fatal(err)
	}
	if c, _ := x.Count(ctx, ""); c != 2 {
		t.Errorf("count after move+remove = %d, want 2", c)
	}
	if err := x.w.QueryRow(`SELECT count(*) FROM items_fts WHERE items_fts MATCH 'bjork'`).Scan(&n); err != nil || n != 1 {
		t.Errorf("fts bjork after: %d %v", n, err)
	}
}

// TestRefreshOnlyWhenStale: Refresh derives albums and artists again only
// after Apply changed items (a rescan that found nothing costs nothing).
func TestRefreshOnlyWhenStale(t *testing.T) {
	t.Parallel()
	x := openTest(t)
	ctx := t.Context()
	put := &Batch{Puts: []Record{{Library: "M", Path: "a.mp3", Kind: "audio", Size: 1, ModTime: time.Unix(1, 0),
		Report: &probe.Report{Tags: probe.Tags{Album: "A", Artists: []string{"X"}}}}}}
	albums := func() int {
		var n int
		if err := x.w.QueryRow(`SELECT count(*) FROM albums`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	if err := x.Apply(ctx, put); err != nil {
		t.Fatal(err)
	}
	if err := x.Refresh(ctx); err != nil || albums() != 1 {
		t.Fatalf("after the first refresh: %d albums, %v", albums(), err)
	}
	// A row Refresh would remove shows whether it ran.
	if _, err := x.w.Exec(`INSERT INTO albums (uid, key, name, artist, year, tracks, duration) VALUES ('u', 'k', 'n', '', 0, 0, 0)`); err != nil {
		t.Fatal(err)
	}
	if err := x.Apply(ctx, &Batch{Folders: []FolderRecord{{Library: "M", Path: ""}}}); err != nil {
		t.Fatal(err)
	}
	if err := x.Refresh(ctx); err != nil || albums() != 2 {
		t.Errorf("refresh with nothing changed: %d albums (%v), want the 2 left alone", albums(), err)
	}
	if err := x.Apply(ctx, put); err != nil {
		t.Fatal(err)
	}
	if err := x.Refresh(ctx); err != nil || albums() != 1 {
		t.Errorf("refresh after a change: %d albums (%v), want 1", albums(), err)
	}
}

// TestOpenDamaged: a file that is not a database is set aside and a new
// index made (the index is a cache of the disks); the old bytes are kept.
func TestOpenDamaged(t *testing.T) {
	t.Parallel()
	p := filepath.Join(t.TempDir(), "index.db")
	junk := bytes.Repeat([]byte("not a database "), 1000)
	if err := os.WriteFile(p, junk, 0o600); err != nil {
		t.Fatal(err)
	}
	x, err := Open(t.Context(), p)
	if err != nil {
		t.Fatal(err)
	}
	defer x.Close()
	aside := x.SetAside()
	if got, err := os.ReadFile(aside); err != nil || !bytes.Equal(got, junk) {
		t.Errorf("set aside at %q: %v (same bytes: %v)", aside, err, bytes.Equal(got, junk))
	}
	if n, err := x.Count(t.Context(), ""); err != nil || n != 0 {
		t.Errorf("new index: %d items, %v", n, err)
	}
}

// TestItemIDsAcrossNodes: two indexes of the same files (two nodes) give
// each file the same public ID; a moved file keeps its ID, and a new file
// at the path it left gets another one.
func TestItemIDsAcrossNodes(t *testing.T) {
	t.Parallel()
	a, b := openTest(t), openTest(t)
	ctx := t.Context()
	files := []Record{song("Music", "A/01.mp3", "One", "A", 1, 2000, "X"), song("Music", "A/02.mp3", "Two", "A", 2, 2000, "X"),
		song("Films", "A/01.mp3", "Film", "", 0, 0)}
	fill(t, a, &Batch{Puts: files})
	fill(t, b, &Batch{Puts: []Record{files[2], files[1], files[0]}}) // another order
	id := func(x *Index, lib, p string) string {
		t.Helper()
		it, err := x.ItemAt(ctx, lib, p)
		if err != nil {
			t.Fatal(err)
		}
		return it.ID
	}
	seen := map[string]bool{}
	for _, f := range files {
		ia, ib := id(a, f.Library, f.Path), id(b, f.Library, f.Path)
		if ia != ib || seen[ia] {
			t.Errorf("%s/%s: IDs %s and %s on two nodes (or used twice)", f.Library, f.Path, ia, ib)
		}
		seen[ia] = true
	}
	old := id(a, "Music", "A/01.mp3")
	k, err := a.Known(ctx, "Music", "A")
	if err != nil {
		t.Fatal(err)
	}
	mv := song("Music", "B/01.mp3", "One", "A", 1, 2000, "X")
	mv.Replaces = k.Items["01.mp3"].ID
	fill(t, a, &Batch{Puts: []Record{mv}})
	if got := id(a, "Music", "B/01.mp3"); got != old {
		t.Errorf("the moved file's ID %s, want %s", got, old)
	}
	fill(t, a, &Batch{Puts: []Record{song("Music", "A/01.mp3", "New", "A", 1, 2000, "X")}})
	if got := id(a, "Music", "A/01.mp3"); got == old {
		t.Errorf("a new file at the moved one's path took its ID %s", got)
	}
}
