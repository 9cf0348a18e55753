package index

import (
	"errors"
	"io/fs"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"mustserv/internal/probe"
)

// song is a tagged audio file for fixtures.
func song(library, path, title, album string, track, year int, artists ...string) Record {
	return Record{Library: library, Path: path, Kind: "audio", Size: 1000, ModTime: time.Unix(1_700_000_000, 5),
		Hash: []byte(path), Report: &probe.Report{Container: "mp3", Duration: 100, BitrateAvg: 128_000,
			BitratePeak: 160_000, PeakMethod: probe.Exact,
			Streams: []probe.Stream{{Type: "audio", Codec: "mp3", SampleRate: 44100, Channels: 2}},
			Tags:    probe.Tags{Title: title, Album: album, Artists: artists, Track: track, Year: year}}}
}

// withTags changes a record's tags.
func withTags(r Record, f func(t *probe.Tags)) Record {
	f(&r.Report.Tags)
	return r
}

// fill applies a batch and refreshes, as a scan does.
func fill(t *testing.T, x *Index, b *Batch) {
	t.Helper()
	if err := x.Apply(t.Context(), b); err != nil {
		t.Fatal(err)
	}
	if err := x.Refresh(t.Context()); err != nil {
		t.Fatal(err)
	}
}

// openLibrary is a small index of two libraries: albums with and
// without album artists, covers embedded and in folders, a file with no
// tags, names differing only in case.
func openLibrary(t *testing.T) *Index {
	t.Helper()
	x := openTest(t)
	jóga := song("Music", "Björk/Homogenic/02 Jóga.mp3", "Jóga", "Homogenic", 2, 1997, "Björk")
	jóga.Report.Cover = &probe.Cover{MIME: "image/jpeg", Offset: 100, Size: 2000}
	albumArtist := func(t *probe.Tags) { t.AlbumArtists = []string{"Björk"}; t.Genres = []string{"Electronic"} }
	fill(t, x, &Batch{
		Folders: []FolderRecord{
			{Library: "Music", Path: "Björk/Homogenic", Cover: "folder.jpg"},
			{Library: "Music", Path: "Zed/alpha"}, {Library: "Music", Path: "Zed/Beta"}, {Library: "Music", Path: "Zed/beta"},
		},
		Puts: []Record{
			withTags(song("Music", "Björk/Homogenic/01 Hunter.mp3", "Hunter", "Homogenic", 1, 1997, "Björk"), albumArtist),
			withTags(jóga, albumArtist),
			song("Music", "Björk/Debut/01 Human Behaviour.mp3", "Human Behaviour", "Debut", 1, 1993, "Björk"),
			song("Music", "Björk/Singles/Army of Me.mp3", "Army of Me", "", 0, 1995, "Björk"),
			withTags(song("Music", "Sigur Rós/Ágætis byrjun/1-02 Svefn-g-englar.flac", "Svefn-g-englar", "Ágætis byrjun", 2, 1999, "Sigur Rós"),
				func(t *probe.Tags) { t.Disc = 1; t.Genres = []string{"Post-rock"} }),
			withTags(song("Music", "Sigur Rós/Ágætis byrjun/1-01 Intro.flac", "Intro", "Ágætis byrjun", 1, 1999, "Sigur Rós"),
				func(t *probe.Tags) { t.Disc = 1 }),
			withTags(song("Music", "Sigur Rós/Ágætis byrjun/2-01 Starálfur.flac", "Starálfur", "Ágætis byrjun", 1, 1999, "Sigur Rós"),
				func(t *probe.Tags) { t.Disc = 2 }),
			{Library: "Music", Path: "Various/loose.mp3", Kind: "audio", Size: 10, ModTime: time.Unix(1, 0), Err: "no frames"},
			song("Music", "Zed/c.mp3", "c", "", 0, 0),
			song("Music", "Zed/B.mp3", "B", "", 0, 0),
			song("Music", "Zed/a.mp3", "a", "", 0, 0),
			song("Music", "Zed/b.mp3", "b", "", 0, 0),
			{Library: "Films", Path: "Nature.mkv", Kind: "video", Size: 5000, ModTime: time.Unix(2, 0)},
		},
	})
	return x
}

func TestLibraries(t *testing.T) {
	t.Parallel()
	x := openLibrary(t)
	ctx := t.Context()
	at := time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC)
	if err := x.Scanned(ctx, "Music", at); err != nil {
		t.Fatal(err)
	}
	if err := x.SetOnline(ctx, "Offline", false, "disk gone"); err != nil {
		t.Fatal(err)
	}
	libs, err := x.Libraries(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := []Library{
		{Name: "Films", Online: true, Items: 1, Folders: 0},
		{Name: "Music", Online: true, Items: 12, Folders: 11, ScannedAt: at},
		{Name: "Offline", Online: false, Error: "disk gone"},
	}
	if diff := cmp.Diff(want, libs); diff != "" {
		t.Errorf("libraries (-want +got):\n%s", diff)
	}
}

func TestBrowse(t *testing.T) {
	t.Parallel()
	x := openLibrary(t)
	ctx := t.Context()
	names := func(ls Listing) (folders, items []string) {
		for _, f := range ls.Folders {
			folders = append(folders, f.Path)
		}
		for _, it := range ls.Items {
			items = append(items, it.Path)
		}
		return folders, items
	}
	for _, tc := range []struct {
		name, library, path string
		folder              Folder
		folders, items      []string
	}{
		{"root", "Music", "", Folder{Library: "Music"},
			[]string{"Björk", "Sigur Rós", "Various", "Zed"}, nil},
		{"case-insensitive then bytewise", "Music", "Zed", Folder{Library: "Music", Path: "Zed", Name: "Zed"},
			[]string{"Zed/alpha", "Zed/Beta", "Zed/beta"}, []string{"Zed/a.mp3", "Zed/B.mp3", "Zed/b.mp3", "Zed/c.mp3"}},
		{"items at the root", "Films", "", Folder{Library: "Films"}, nil, []string{"Nature.mkv"}},
		{"empty folder", "Music", "Zed/alpha", Folder{Library: "Music", Path: "Zed/alpha", Name: "alpha"}, nil, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ls, err := x.Browse(ctx, tc.library, tc.path)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.folder, ls.Folder); diff != "" {
				t.Errorf("folder (-want +got):\n%s", diff)
			}
			folders, items := names(ls)
			if diff := cmp.Diff(tc.folders, folders); diff != "" {
				t.Errorf("folders (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.items, items); diff != "" {
				t.Errorf("items (-want +got):\n%s", diff)
			}
		})
	}
	// A library known before any scan listed it has an empty root.
	if err := x.SetOnline(ctx, "New", true, ""); err != nil {
		t.Fatal(err)
	}
	if ls, err := x.Browse(ctx, "New", ""); err != nil || len(ls.Items)+len(ls.Folders) != 0 {
		t.Errorf("Browse(New) = %+v, %v; want an empty listing", ls, err)
	}
	for _, bad := range [][2]string{{"Nope", ""}, {"Music", "Nope"}, {"Music", "Zed/a.mp3"}, {"New", "x"}} {
		_, err := x.Browse(ctx, bad[0], bad[1])
		if !errors.Is(err, ErrNotFound) || !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("Browse(%q, %q) = %v, want ErrNotFound", bad[0], bad[1], err)
		}
	}
}

func TestItem(t *testing.T) {
	t.Parallel()
	x := openLibrary(t)
	ctx := t.Context()
	it, err := x.ItemAt(ctx, "Music", "Björk/Homogenic/01 Hunter.mp3")
	if err != nil {
		t.Fatal(err)
	}
	albums, _, err := x.Albums(ctx, Page{})
	if err != nil {
		t.Fatal(err)
	}
	var homogenic string
	for _, a := range albums {
		if a.Name == "Homogenic" {
			homogenic = a.ID
		}
	}
	want := Item{ID: it.ID, Library: "Music", Path: "Björk/Homogenic/01 Hunter.mp3", Name: "01 Hunter.mp3",
		Kind: "audio", Size: 1000, ModTime: time.Unix(1_700_000_000, 5).UTC(), Container: "mp3", Duration: 100,
		BitrateAvg: 128_000, BitratePeak: 160_000, PeakMethod: "exact",
		Streams: []probe.Stream{{Type: "audio", Codec: "mp3", SampleRate: 44100, Channels: 2}},
		Title:   "Hunter", Artists: []string{"Björk"}, Album: "Homogenic", AlbumID: homogenic,
		AlbumArtists: []string{"Björk"}, Genres: []string{"Electronic"}, Track: 1, Year: 1997, HasCover: true}
	if diff := cmp.Diff(want, it); diff != "" {
		t.Errorf("ItemAt (-want +got):\n%s", diff)
	}
	if len(it.ID) != 16 || homogenic == "" {
		t.Errorf("item ID %q, album ID %q", it.ID, homogenic)
	}
	byID, err := x.Item(ctx, it.ID)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(it, byID); diff != "" {
		t.Errorf("Item(id) differs from ItemAt (-at +id):\n%s", diff)
	}

	// No tags, no album, no cover, probing failed; at a library's root.
	loose, err := x.ItemAt(ctx, "Music", "Various/loose.mp3")
	if err != nil {
		t.Fatal(err)
	}
	want = Item{ID: loose.ID, Library: "Music", Path: "Various/loose.mp3", Name: "loose.mp3", Kind: "audio",
		Size: 10, ModTime: time.Unix(1, 0).UTC(), Error: "no frames"}
	if diff := cmp.Diff(want, loose); diff != "" {
		t.Errorf("untagged item (-want +got):\n%s", diff)
	}
	if it, err := x.ItemAt(ctx, "Films", "Nature.mkv"); err != nil || it.Path != "Nature.mkv" || it.Kind != "video" {
		t.Errorf("ItemAt(Films, Nature.mkv) = %+v, %v", it, err)
	}

	for _, bad := range []string{"", "0000000000000000", homogenic} {
		if _, err := x.Item(ctx, bad); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("Item(%q) = %v, want ErrNotFound", bad, err)
		}
	}
	for _, bad := range [][2]string{{"Music", "Björk"}, {"Music", "nope.mp3"}, {"Films", "Music/Zed/a.mp3"}, {"Nope", "Nature.mkv"}} {
		if _, err := x.ItemAt(ctx, bad[0], bad[1]); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("ItemAt(%q, %q) = %v, want ErrNotFound", bad[0], bad[1], err)
		}
	}
}

func TestAlbums(t *testing.T) {
	t.Parallel()
	x := openLibrary(t)
	ctx := t.Context()
	albums, total, err := x.Albums(ctx, Page{})
	if err != nil {
		t.Fatal(err)
	}
	ignore := cmpopts.IgnoreFields(Album{}, "ID", "CoverID")
	want := []Album{
		{Name: "Debut", Artist: "Björk", Year: 1993, Tracks: 1, Duration: 100},
		{Name: "Homogenic", Artist: "Björk", Year: 1997, Tracks: 2, Duration: 200},
		{Name: "Ágætis byrjun", Artist: "Sigur Rós", Year: 1999, Tracks: 3, Duration: 300},
	}
	if diff := cmp.Diff(want, albums, ignore); diff != "" || total != 3 {
		t.Errorf("Albums: total %d (-want +got):\n%s", total, diff)
	}
	page, total, err := x.Albums(ctx, Page{Limit: 1, Offset: 1})
	if err != nil || total != 3 || len(page) != 1 || page[0] != albums[1] {
		t.Errorf("Albums(1, 1) = %+v, %d, %v; want [%+v], 3", page, total, err, albums[1])
	}

	album, items, err := x.Album(ctx, albums[2].ID)
	if err != nil {
		t.Fatal(err)
	}
	if album != albums[2] {
		t.Errorf("Album = %+v, want %+v", album, albums[2])
	}
	var paths []string
	for _, it := range items {
		paths = append(paths, it.Path)
		if it.AlbumID != album.ID {
			t.Errorf("%s: album ID %q, want %q", it.Path, it.AlbumID, album.ID)
		}
	}
	wantPaths := []string{ // by disc, then track
		"Sigur Rós/Ágætis byrjun/1-01 Intro.flac",
		"Sigur Rós/Ágætis byrjun/1-02 Svefn-g-englar.flac",
		"Sigur Rós/Ágætis byrjun/2-01 Starálfur.flac",
	}
	if diff := cmp.Diff(wantPaths, paths); diff != "" {
		t.Errorf("album items (-want +got):\n%s", diff)
	}
	if _, _, err := x.Album(ctx, "nope"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Album(nope) = %v, want ErrNotFound", err)
	}
}

func TestArtists(t *testing.T) {
	t.Parallel()
	x := openLibrary(t)
	ctx := t.Context()
	artists, total, err := x.Artists(ctx, Page{})
	if err != nil {
		t.Fatal(err)
	}
	want := []Artist{
		{Name: "Björk", Albums: 2, Tracks: 4},
		{Name: "Sigur Rós", Albums: 1, Tracks: 3},
	}
	if diff := cmp.Diff(want, artists, cmpopts.IgnoreFields(Artist{}, "ID")); diff != "" || total != 2 {
		t.Errorf("Artists: total %d (-want +got):\n%s", total, diff)
	}
	artist, albums, items, err := x.Artist(ctx, artists[0].ID)
	if err != nil {
		t.Fatal(err)
	}
	if artist != artists[0] {
		t.Errorf("Artist = %+v, want %+v", artist, artists[0])
	}
	var names []string
	for _, a := range albums {
		names = append(names, a.Name)
	}
	if diff := cmp.Diff([]string{"Debut", "Homogenic"}, names); diff != "" {
		t.Errorf("albums by year (-want +got):\n%s", diff)
	}
	if len(items) != 1 || items[0].Title != "Army of Me" {
		t.Errorf("items without album = %+v, want Army of Me", items)
	}
	if _, _, _, err := x.Artist(ctx, "nope"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Artist(nope) = %v, want ErrNotFound", err)
	}
}

func TestCoverOf(t *testing.T) {
	t.Parallel()
	x := openLibrary(t)
	ctx := t.Context()
	id := func(path string) string {
		it, err := x.ItemAt(ctx, "Music", path)
		if err != nil {
			t.Fatal(err)
		}
		return it.ID
	}
	albums, _, err := x.Albums(ctx, Page{})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, id string
		want     Cover
	}{
		{"embedded", id("Björk/Homogenic/02 Jóga.mp3"),
			Cover{Library: "Music", Path: "Björk/Homogenic/02 Jóga.mp3", MIME: "image/jpeg", Offset: 100, Size: 2000}},
		{"folder image", id("Björk/Homogenic/01 Hunter.mp3"), Cover{Library: "Music", Path: "Björk/Homogenic/folder.jpg"}},
		{"album: its cover item's", albums[1].ID,
			Cover{Library: "Music", Path: "Björk/Homogenic/02 Jóga.mp3", MIME: "image/jpeg", Offset: 100, Size: 2000}},
	} {
		got, err := x.CoverOf(ctx, tc.id)
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		if diff := cmp.Diff(tc.want, got); diff != "" {
			t.Errorf("%s (-want +got):\n%s", tc.name, diff)
		}
	}
	for _, none := range []string{id("Zed/a.mp3"), albums[0].ID, "nope"} {
		if c, err := x.CoverOf(ctx, none); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("CoverOf(%s) = %+v, %v; want ErrNotFound", none, c, err)
		}
	}
}

func TestPageNormal(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ in, want Page }{
		{Page{}, Page{Limit: 50}},
		{Page{Limit: 10, Offset: 20}, Page{Limit: 10, Offset: 20}},
		{Page{Limit: 501}, Page{Limit: 500}},
		{Page{Limit: -1, Offset: -5}, Page{Limit: 50}},
	} {
		if got := tc.in.normal(); got != tc.want {
			t.Errorf("%+v.normal() = %+v, want %+v", tc.in, got, tc.want)
		}
	}
}
