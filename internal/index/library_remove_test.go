package index

import (
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"mustserv/internal/probe"
)

// TestRemoveLibrary removes one of two libraries: every row of it goes
// (items, search entries, artist links, folders, the library), the albums
// and artists are derived again from what is left, and the other library
// is untouched.
func TestRemoveLibrary(t *testing.T) {
	t.Parallel()
	x := openTest(t)
	ctx := t.Context()
	rec := func(lib, p, title, album string, albumArtists []string, artists ...string) Record {
		return Record{Library: lib, Path: p, Kind: "audio", Size: 100, ModTime: time.Unix(1, 0), Hash: []byte(lib + p),
			Report: &probe.Report{Container: "mp3", Duration: 10,
				Tags: probe.Tags{Title: title, Album: album, AlbumArtists: albumArtists, Artists: artists}}}
	}
	b := &Batch{
		Folders: []FolderRecord{{Library: "Music", Path: "Björk/Homogenic", Cover: "cover.jpg"}},
		Puts: []Record{
			rec("Music", "Björk/Homogenic/01.mp3", "Hunter", "Homogenic", nil, "Björk"),
			rec("Music", "Björk/Homogenic/02.mp3", "Jóga", "Homogenic", nil, "Björk"),
			rec("Music", "Loose/x.mp3", "Lonely", "", nil, "Only Here"),
			rec("Music", "Shared/1.mp3", "One", "Shared", []string{"Both"}, "Both"),
			rec("Other", "Post/01.mp3", "Army of Me", "Post", nil, "Björk"),
			rec("Other", "Shared/2.mp3", "Two", "Shared", []string{"Both"}, "Both"),
		},
	}
	if err := x.Apply(ctx, b); err != nil {
		t.Fatal(err)
	}
	if err := x.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	if err := x.RemoveLibrary(ctx, "Music"); err != nil {
		t.Fatal(err)
	}

	if n, err := x.Count(ctx, "Music"); err != nil || n != 0 {
		t.Errorf("Music holds %d items (%v), want 0", n, err)
	}
	if n, err := x.Count(ctx, ""); err != nil || n != 2 {
		t.Errorf("index holds %d items (%v), want Other's 2", n, err)
	}
	libs, err := x.Libraries(ctx)
	if err != nil || len(libs) != 1 || libs[0].Name != "Other" || libs[0].Items != 2 {
		t.Errorf("Libraries() = %+v, %v; want Other alone with its 2 items", libs, err)
	}
	if _, err := x.Browse(ctx, "Music", ""); !errors.Is(err, ErrNotFound) {
		t.Errorf("Browse of the removed library: %v, want ErrNotFound", err)
	}
	// Nothing of Music is left in any table, and nothing points at it.
	for q, want := range map[string]int{
		`SELECT count(*) FROM folders f WHERE NOT EXISTS (SELECT 1 FROM libraries l WHERE l.id = f.library_id)`: 0,
		`SELECT count(*) FROM items i WHERE NOT EXISTS (SELECT 1 FROM folders f WHERE f.id = i.folder_id)`:      0,
		`SELECT count(*) FROM item_artists ia WHERE NOT EXISTS (SELECT 1 FROM items i WHERE i.id = ia.item_id)`: 0,
		`SELECT count(*) FROM items_fts`: 2,
		`SELECT count(*) FROM items_fts WHERE items_fts MATCH 'hunter OR joga OR lonely OR one'`: 0,
		`SELECT count(*) FROM items_fts WHERE items_fts MATCH 'army'`:                            1,
		`SELECT count(*) FROM folders`:                                                           3, // Other's root, Post, Shared
		`SELECT count(*) FROM meta WHERE key = 'stale' AND value = '1'`:                          0, // refreshed
	} {
		var n int
		if err := x.w.QueryRowContext(ctx, q).Scan(&n); err != nil || n != want {
			t.Errorf("%s = %d (%v), want %d", q, n, err, want)
		}
	}
	albums, _, err := x.Albums(ctx, Page{})
	if err != nil {
		t.Fatal(err)
	}
	gotAlbums := map[string]int{}
	for _, a := range albums {
		gotAlbums[a.Name] = a.Tracks
	}
	if diff := cmp.Diff(map[string]int{"Post": 1, "Shared": 1}, gotAlbums); diff != "" {
		t.Errorf("albums (name → tracks) after the removal (-want +got):\n%s", diff)
	}
	artists, _, err := x.Artists(ctx, Page{})
	if err != nil {
		t.Fatal(err)
	}
	gotArtists := map[string]int{}
	for _, a := range artists {
		gotArtists[a.Name] = a.Tracks
	}
	if diff := cmp.Diff(map[string]int{"Björk": 1, "Both": 1}, gotArtists); diff != "" {
		t.Errorf("artists (name → tracks) after the removal (-want +got):\n%s", diff)
	}
	res, err := x.Search(ctx, "homogenic", Page{})
	if err != nil || res.Total != 0 || len(res.Albums) != 0 {
		t.Errorf("search of a removed album: %+v, %v", res, err)
	}

	// Removing it again, or a library never indexed, is nothing.
	for _, name := range []string{"Music", "Never"} {
		if err := x.RemoveLibrary(ctx, name); err != nil {
			t.Errorf("RemoveLibrary(%q): %v", name, err)
		}
	}
	// The name can be used again: a new library, new IDs.
	if err := x.Apply(ctx, &Batch{Puts: []Record{rec("Music", "Björk/Homogenic/01.mp3", "Hunter", "Homogenic", nil, "Björk")}}); err != nil {
		t.Fatal(err)
	}
	if n, err := x.Count(ctx, "Music"); err != nil || n != 1 {
		t.Errorf("Music added again holds %d items (%v), want 1", n, err)
	}
}
