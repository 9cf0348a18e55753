package index

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"mustserv/internal/probe"
)

// openScoped is an index of three libraries:
//
//	Alpha  Shared/01 Dawn.mp3            album Shared (album artist Both), artist Both; folder image
//	       Loose/Walk.mp3                artist Wanderer, no album
//	Beta   Shared/02 Dusk.mp3            album Shared (album artist Both), artist Wanderer; embedded
//	                                     cover, so Shared's cover_item
//	       Zanzibar/Zanzibar Nights.mp3  album Zanzibar, artist Betaonly
//	Gamma  Other/Dawn Again.mp3          artist Gammaman
//
// Shared spans Alpha and Beta, Wanderer is in both, Betaonly and the word
// "zanzibar" in Beta only.
func openScoped(t *testing.T) *Index {
	t.Helper()
	x := openTest(t)
	both := func(t *probe.Tags) { t.AlbumArtists = []string{"Both"} }
	dusk := withTags(song("Beta", "Shared/02 Dusk.mp3", "Dusk", "Shared", 2, 2001, "Wanderer"), both)
	dusk.Report.Cover = &probe.Cover{MIME: "image/jpeg", Offset: 10, Size: 500}
	fill(t, x, &Batch{
		Folders: []FolderRecord{{Library: "Alpha", Path: "Shared", Cover: "folder.jpg"}},
		Puts: []Record{
			dusk,
			withTags(song("Alpha", "Shared/01 Dawn.mp3", "Dawn", "Shared", 1, 2001, "Both"), both),
			song("Alpha", "Loose/Walk.mp3", "Walk", "", 0, 2002, "Wanderer"),
			song("Beta", "Zanzibar/Zanzibar Nights.mp3", "Zanzibar Nights", "Zanzibar", 1, 1990, "Betaonly"),
			song("Gamma", "Other/Dawn Again.mp3", "Dawn Again", "", 0, 2003, "Gammaman"),
		},
	})
	return x
}

// sight is what a scope case sees of openScoped's index.
type sight int

const (
	seesAll sight = iota
	seesAlpha
	seesNothing
)

type scopeCase struct {
	name string
	ctx  context.Context
	sees sight
}

// scopeCases are the contexts every read is checked under.
func scopeCases(ctx context.Context) []scopeCase {
	return []scopeCase{
		{"unscoped", ctx, seesAll},
		{"nil", WithLibraries(ctx, nil), seesAll},
		{"every library", WithLibraries(ctx, []string{"Gamma", "Beta", "Alpha"}), seesAll},
		{"Alpha", WithLibraries(ctx, []string{"Alpha"}), seesAlpha},
		{"Alpha and unknown names", WithLibraries(ctx, []string{"Nope", "Alpha", "alpha", ""}), seesAlpha},
		{"narrowed", WithLibraries(WithLibraries(ctx, []string{"Alpha", "Beta"}), []string{"Alpha", "Gamma"}), seesAlpha},
		{"nil keeps the outer scope", WithLibraries(WithLibraries(ctx, []string{"Alpha"}), nil), seesAlpha},
		{"empty", WithLibraries(ctx, []string{}), seesNothing},
		{"disjoint narrowing", WithLibraries(WithLibraries(ctx, []string{"Beta"}), []string{"Alpha"}), seesNothing},
		// Names are bound arguments: SQL in them is a name like any.
		{"SQL in names", WithLibraries(ctx, []string{`x') OR 1=1 --`, `Alpha' OR '1'='1`, `") OR ("1"="1`, `%`, `*`}), seesNothing},
	}
}

// pick returns the want of a case's sight.
func pick[T any](s sight, all, alpha, nothing T) T {
	return [...]T{seesAll: all, seesAlpha: alpha, seesNothing: nothing}[s]
}

func TestScopeLibraries(t *testing.T) {
	t.Parallel()
	x := openScoped(t)
	for _, sc := range scopeCases(t.Context()) {
		t.Run(sc.name, func(t *testing.T) {
			t.Parallel()
			libs, err := x.Libraries(sc.ctx)
			if err != nil {
				t.Fatal(err)
			}
			var names []string
			for _, l := range libs {
				names = append(names, l.Name)
			}
			want := pick(sc.sees, []string{"Alpha", "Beta", "Gamma"}, []string{"Alpha"}, nil)
			if diff := cmp.Diff(want, names); diff != "" || libs == nil {
				t.Errorf("Libraries (-want +got):\n%s(nil: %v)", diff, libs == nil)
			}
		})
	}
}

func TestScopeBrowse(t *testing.T) {
	t.Parallel()
	x := openScoped(t)
	for _, sc := range scopeCases(t.Context()) {
		t.Run(sc.name, func(t *testing.T) {
			t.Parallel()
			for _, tc := range []struct {
				library, path string
				visible       bool
				folders       []string
				items         []string
			}{
				{"Alpha", "", sc.sees != seesNothing, []string{"Loose", "Shared"}, nil},
				{"Alpha", "Shared", sc.sees != seesNothing, nil, []string{"Shared/01 Dawn.mp3"}},
				{"Beta", "", sc.sees == seesAll, []string{"Shared", "Zanzibar"}, nil},
				{"Beta", "Shared", sc.sees == seesAll, nil, []string{"Shared/02 Dusk.mp3"}},
				{"Gamma", "Other", sc.sees == seesAll, nil, []string{"Other/Dawn Again.mp3"}},
			} {
				ls, err := x.Browse(sc.ctx, tc.library, tc.path)
				if !tc.visible {
					if !errors.Is(err, ErrNotFound) {
						t.Errorf("Browse(%s, %q) = %+v, %v; want ErrNotFound", tc.library, tc.path, ls, err)
					}
					continue
				}
				if err != nil {
					t.Errorf("Browse(%s, %q): %v", tc.library, tc.path, err)
					continue
				}
				var folders, items []string
				for _, f := range ls.Folders {
					folders = append(folders, f.Path)
				}
				for _, it := range ls.Items {
					items = append(items, it.Path)
				}
				if diff := cmp.Diff(tc.folders, folders); diff != "" {
					t.Errorf("Browse(%s, %q) folders (-want +got):\n%s", tc.library, tc.path, diff)
				}
				if diff := cmp.Diff(tc.items, items); diff != "" {
					t.Errorf("Browse(%s, %q) items (-want +got):\n%s", tc.library, tc.path, diff)
				}
			}
		})
	}
}

// TestScopeItems checks Item, ItemAt, RatesAt and CoverOf of one item of
// each library: outside the scope, each is ErrNotFound as for an item the
// index does not hold.
func TestScopeItems(t *testing.T) {
	t.Parallel()
	x := openScoped(t)
	ctx := t.Context()
	type file struct {
		library, path string
		cover         Cover
	}
	files := []file{
		{"Alpha", "Shared/01 Dawn.mp3", Cover{Library: "Alpha", Path: "Shared/folder.jpg"}},
		{"Beta", "Shared/02 Dusk.mp3", Cover{Library: "Beta", Path: "Shared/02 Dusk.mp3", MIME: "image/jpeg", Offset: 10, Size: 500}},
		{"Gamma", "Other/Dawn Again.mp3", Cover{}}, // none
	}
	ids := map[string]string{}
	for _, f := range files {
		it, err := x.ItemAt(ctx, f.library, f.path)
		if err != nil {
			t.Fatal(err)
		}
		ids[f.library] = it.ID
	}
	for _, sc := range scopeCases(ctx) {
		t.Run(sc.name, func(t *testing.T) {
			t.Parallel()
			for _, f := range files {
				visible := sc.sees == seesAll || (sc.sees == seesAlpha && f.library == "Alpha")
				check := func(what string, err error, ok func() bool) {
					t.Helper()
					switch {
					case visible && err != nil:
						t.Errorf("%s of %s/%s: %v", what, f.library, f.path, err)
					case visible && !ok():
						t.Errorf("%s of %s/%s: wrong answer", what, f.library, f.path)
					case !visible && !errors.Is(err, ErrNotFound):
						t.Errorf("%s of %s/%s = %v, want ErrNotFound", what, f.library, f.path, err)
					}
				}
				it, err := x.Item(sc.ctx, ids[f.library])
				check("Item", err, func() bool { return it.Path == f.path && it.Library == f.library })
				it, err = x.ItemAt(sc.ctx, f.library, f.path)
				check("ItemAt", err, func() bool { return it.ID == ids[f.library] })
				r, err := x.RatesAt(sc.ctx, f.library, f.path)
				check("RatesAt", err, func() bool { return r.Size == 1000 && r.Duration == 100 })
				c, err := x.CoverOf(sc.ctx, ids[f.library])
				if f.cover == (Cover{}) {
					if !errors.Is(err, ErrNotFound) {
						t.Errorf("CoverOf %s/%s = %+v, %v; want ErrNotFound (it has none)", f.library, f.path, c, err)
					}
					continue
				}
				check("CoverOf", err, func() bool { return c == f.cover })
			}
		})
	}
}

func TestScopeAlbums(t *testing.T) {
	t.Parallel()
	x := openScoped(t)
	ctx := t.Context()
	albums, _, err := x.Albums(ctx, Page{})
	if err != nil || len(albums) != 2 {
		t.Fatalf("Albums = %+v, %v", albums, err)
	}
	shared, zanzibar := albums[0].ID, albums[1].ID
	dawn, err := x.ItemAt(ctx, "Alpha", "Shared/01 Dawn.mp3")
	if err != nil {
		t.Fatal(err)
	}
	dusk, err := x.ItemAt(ctx, "Beta", "Shared/02 Dusk.mp3")
	if err != nil {
		t.Fatal(err)
	}
	all := []Album{
		{ID: shared, Name: "Shared", Artist: "Both", Year: 2001, Tracks: 2, Duration: 200, CoverID: dusk.ID},
		{ID: zanzibar, Name: "Zanzibar", Artist: "Betaonly", Year: 1990, Tracks: 1, Duration: 100},
	}
	// In Alpha, Shared is its one track there, whose cover is the
	// folder image (the album's cover_item, Dusk, is in Beta).
	alpha := []Album{{ID: shared, Name: "Shared", Artist: "Both", Year: 2001, Tracks: 1, Duration: 100, CoverID: dawn.ID}}
	for _, sc := range scopeCases(ctx) {
		t.Run(sc.name, func(t *testing.T) {
			t.Parallel()
			want := pick(sc.sees, all, alpha, []Album{})
			got, total, err := x.Albums(sc.ctx, Page{})
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(want, got); diff != "" || total != len(want) {
				t.Errorf("Albums: total %d, want %d (-want +got):\n%s", total, len(want), diff)
			}
			// The second page of one: past the end but for the unscoped.
			got, total, err = x.Albums(sc.ctx, Page{Limit: 1, Offset: 1})
			if err != nil || total != len(want) || len(got) != len(want[min(1, len(want)):]) {
				t.Errorf("Albums(1, 1) = %+v, %d, %v", got, total, err)
			}

			for _, tc := range []struct {
				id    string
				want  []Album // the album, or none for ErrNotFound
				items []string
			}{
				{shared, pick(sc.sees, all[:1], alpha, nil),
					pick(sc.sees, []string{"Dawn", "Dusk"}, []string{"Dawn"}, nil)},
				{zanzibar, pick(sc.sees, all[1:], nil, nil), pick(sc.sees, []string{"Zanzibar Nights"}, nil, nil)},
			} {
				a, items, err := x.Album(sc.ctx, tc.id)
				if len(tc.want) == 0 {
					if !errors.Is(err, ErrNotFound) {
						t.Errorf("Album(%s) = %+v, %v; want ErrNotFound", tc.id, a, err)
					}
					if _, err := x.CoverOf(sc.ctx, tc.id); !errors.Is(err, ErrNotFound) {
						t.Errorf("CoverOf(album %s) = %v, want ErrNotFound", tc.id, err)
					}
					continue
				}
				if err != nil {
					t.Fatal(err)
				}
				if diff := cmp.Diff(tc.want[0], a); diff != "" {
					t.Errorf("Album(%s) (-want +got):\n%s", tc.id, diff)
				}
				if diff := cmp.Diff(tc.items, titles(items)); diff != "" {
					t.Errorf("Album(%s) items (-want +got):\n%s", tc.id, diff)
				}
			}

			// The album's cover is its visible cover item's.
			c, err := x.CoverOf(sc.ctx, shared)
			switch sc.sees {
			case seesAll:
				want := Cover{Library: "Beta", Path: "Shared/02 Dusk.mp3", MIME: "image/jpeg", Offset: 10, Size: 500}
				if err != nil || c != want {
					t.Errorf("CoverOf(Shared) = %+v, %v; want %+v", c, err, want)
				}
			case seesAlpha:
				if want := (Cover{Library: "Alpha", Path: "Shared/folder.jpg"}); err != nil || c != want {
					t.Errorf("CoverOf(Shared) = %+v, %v; want %+v", c, err, want)
				}
			}
		})
	}
}

// TestScopeAlbumCoverElsewhere: an album whose only cover is in a library
// out of scope has none (no CoverID, CoverOf ErrNotFound), not that one.
func TestScopeAlbumCoverElsewhere(t *testing.T) {
	t.Parallel()
	x := openTest(t)
	both := func(t *probe.Tags) { t.AlbumArtists = []string{"Pair"} }
	covered := withTags(song("Beta", "P/1.mp3", "One", "Pair", 1, 0, "Pair"), both)
	covered.Report.Cover = &probe.Cover{MIME: "image/png", Offset: 1, Size: 2}
	fill(t, x, &Batch{Puts: []Record{covered, withTags(song("Gamma", "P/2.mp3", "Two", "Pair", 2, 0, "Pair"), both)}})
	ctx := WithLibraries(t.Context(), []string{"Gamma"})
	albums, total, err := x.Albums(ctx, Page{})
	if err != nil || total != 1 || len(albums) != 1 {
		t.Fatalf("Albums = %+v, %d, %v", albums, total, err)
	}
	if albums[0].CoverID != "" || albums[0].Tracks != 1 {
		t.Errorf("Albums in Gamma = %+v, want 1 track and no cover", albums[0])
	}
	if c, err := x.CoverOf(ctx, albums[0].ID); !errors.Is(err, ErrNotFound) {
		t.Errorf("CoverOf(album) in Gamma = %+v, %v; want ErrNotFound", c, err)
	}
	if c, err := x.CoverOf(t.Context(), albums[0].ID); err != nil || c.Library != "Beta" {
		t.Errorf("CoverOf(album) unscoped = %+v, %v; want Beta's", c, err)
	}
}

func TestScopeArtists(t *testing.T) {
	t.Parallel()
	x := openScoped(t)
	ctx := t.Context()
	artists, _, err := x.Artists(ctx, Page{})
	if err != nil {
		t.Fatal(err)
	}
	id := map[string]string{}
	for _, a := range artists {
		id[a.Name] = a.ID
	}
	all := []Artist{
		{Name: "Betaonly", Albums: 1, Tracks: 1},
		{Name: "Both", Albums: 1, Tracks: 2},
		{Name: "Gammaman", Albums: 0, Tracks: 1},
		{Name: "Wanderer", Albums: 1, Tracks: 2},
	}
	alpha := []Artist{{Name: "Both", Albums: 1, Tracks: 1}, {Name: "Wanderer", Albums: 0, Tracks: 1}}
	ignoreID := cmpopts.IgnoreFields(Artist{}, "ID")
	for _, sc := range scopeCases(ctx) {
		t.Run(sc.name, func(t *testing.T) {
			t.Parallel()
			want := pick(sc.sees, all, alpha, []Artist{})
			got, total, err := x.Artists(sc.ctx, Page{})
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(want, got, ignoreID); diff != "" || total != len(want) {
				t.Errorf("Artists: total %d, want %d (-want +got):\n%s", total, len(want), diff)
			}
			got, total, err = x.Artists(sc.ctx, Page{Limit: 1, Offset: 1})
			if err != nil || total != len(want) || len(got) != min(1, max(0, len(want)-1)) {
				t.Errorf("Artists(1, 1) = %+v, %d, %v", got, total, err)
			}

			for _, tc := range []struct {
				name    string
				visible bool
				albums  []string // of Artist
				loose   []string // Artist's items on no album
				items   []string // ArtistItems
			}{
				{"Wanderer", sc.sees != seesNothing,
					pick(sc.sees, []string{"Shared"}, nil, nil), []string{"Walk"},
					pick(sc.sees, []string{"Dusk", "Walk"}, []string{"Walk"}, nil)},
				{"Both", sc.sees != seesNothing, []string{"Shared"}, nil,
					pick(sc.sees, []string{"Dawn", "Dusk"}, []string{"Dawn"}, nil)},
				{"Betaonly", sc.sees == seesAll, []string{"Zanzibar"}, nil, pick(sc.sees, []string{"Zanzibar Nights"}, nil, nil)},
				{"Gammaman", sc.sees == seesAll, nil, []string{"Dawn Again"}, pick(sc.sees, []string{"Dawn Again"}, nil, nil)},
			} {
				items, err := x.ArtistItems(sc.ctx, id[tc.name], 10)
				if err != nil {
					t.Fatal(err)
				}
				if diff := cmp.Diff(tc.items, titles(items)); diff != "" {
					t.Errorf("ArtistItems(%s) (-want +got):\n%s", tc.name, diff)
				}
				a, albums, loose, err := x.Artist(sc.ctx, id[tc.name])
				if !tc.visible {
					if !errors.Is(err, ErrNotFound) {
						t.Errorf("Artist(%s) = %+v, %v; want ErrNotFound", tc.name, a, err)
					}
					continue
				}
				if err != nil {
					t.Fatal(err)
				}
				if i := slices.IndexFunc(want, func(w Artist) bool { return w.Name == tc.name }); i < 0 || a.ID != id[tc.name] ||
					!cmp.Equal(want[i], a, ignoreID) {
					t.Errorf("Artist(%s) = %+v, not as Artists gives it", tc.name, a)
				}
				var names []string
				for _, al := range albums {
					names = append(names, al.Name)
				}
				if diff := cmp.Diff(tc.albums, names); diff != "" {
					t.Errorf("Artist(%s) albums (-want +got):\n%s", tc.name, diff)
				}
				if diff := cmp.Diff(tc.loose, titles(loose)); diff != "" {
					t.Errorf("Artist(%s) items (-want +got):\n%s", tc.name, diff)
				}
			}
		})
	}
}

func TestScopeSearch(t *testing.T) {
	t.Parallel()
	x := openScoped(t)
	type result struct{ items, albums, artists []string }
	for _, sc := range scopeCases(t.Context()) {
		t.Run(sc.name, func(t *testing.T) {
			t.Parallel()
			for _, tc := range []struct {
				q          string
				all, alpha result
			}{
				{"zanzibar", result{[]string{"Zanzibar Nights"}, []string{"Zanzibar"}, nil}, result{}},
				{"path:zanzibar", result{items: []string{"Zanzibar Nights"}}, result{}},
				{"betaonly", result{[]string{"Zanzibar Nights"}, []string{"Zanzibar"}, []string{"Betaonly"}}, result{}},
				{"dawn", result{items: []string{"Dawn", "Dawn Again"}}, result{items: []string{"Dawn"}}},
				{"shared", result{[]string{"Dawn", "Dusk"}, []string{"Shared"}, nil}, result{[]string{"Dawn"}, []string{"Shared"}, nil}},
				{"wanderer", result{[]string{"Dusk", "Walk"}, nil, []string{"Wanderer"}}, result{[]string{"Walk"}, nil, []string{"Wanderer"}}},
				{"dawn year:2001", result{items: []string{"Dawn"}}, result{items: []string{"Dawn"}}},
				// Years alone, and years too many for items_fts: byYear.
				{"year:1990", result{items: []string{"Zanzibar Nights"}}, result{}},
				{"year:-2002 -dusk", result{items: []string{"Dawn", "Walk", "Zanzibar Nights"}}, result{items: []string{"Dawn", "Walk"}}},
			} {
				r, err := x.Search(sc.ctx, tc.q, Page{})
				if err != nil {
					t.Fatal(err)
				}
				if r.Items == nil || r.Albums == nil || r.Artists == nil {
					t.Errorf("%q: nil slices: %+v", tc.q, r)
				}
				got := result{items: titles(r.Items)}
				slices.Sort(got.items)
				for _, a := range r.Albums {
					got.albums = append(got.albums, a.Name)
				}
				for _, a := range r.Artists {
					got.artists = append(got.artists, a.Name)
				}
				want := pick(sc.sees, tc.all, tc.alpha, result{})
				if diff := cmp.Diff(want, got, cmp.AllowUnexported(result{})); diff != "" {
					t.Errorf("Search(%q) (-want +got):\n%s", tc.q, diff)
				}
				if r.Total != len(want.items) {
					t.Errorf("Search(%q): total %d, want %d", tc.q, r.Total, len(want.items))
				}
			}
		})
	}
}

// TestScopeSearchTiers: a result too large to rank whole, ranked in tiers
// (see searchItems), holds only the scope's items, on pages that neither
// repeat nor skip one, with a Total of them alone.
func TestScopeSearchTiers(t *testing.T) {
	t.Parallel()
	x := openTest(t)
	const inAlpha, inBeta = rankedMax + 50, 100
	b := &Batch{}
	for i := range inAlpha + inBeta {
		lib, title := "Alpha", fmt.Sprintf("t%03d", i)
		switch {
		case i >= inAlpha:
			lib, title = "Beta", "few many "+title
		case i < 100:
			title = "few many " + title
		case i < 400:
			title = "many " + title
		}
		b.Puts = append(b.Puts, song(lib, fmt.Sprintf("few many/%03d.mp3", i), title, "", 0, 0))
	}
	fill(t, x, b)
	ctx := WithLibraries(t.Context(), []string{"Alpha"})
	for _, q := range []string{"few", "many"} {
		seen := map[string]bool{}
		for off := 0; ; off += 47 {
			r, err := x.Search(ctx, q, Page{Limit: 47, Offset: off})
			if err != nil {
				t.Fatal(err)
			}
			if r.Total != inAlpha {
				t.Errorf("%s: total %d, want %d", q, r.Total, inAlpha)
			}
			if len(r.Items) == 0 {
				break
			}
			for _, it := range r.Items {
				if it.Library != "Alpha" || seen[it.ID] {
					t.Errorf("%s: %s/%s (seen before: %v)", q, it.Library, it.Path, seen[it.ID])
				}
				seen[it.ID] = true
			}
		}
		if len(seen) != inAlpha {
			t.Errorf("%s: %d items over all pages, want %d", q, len(seen), inAlpha)
		}
	}
}

// TestWithLibraries checks the scope itself: its names are copied, bound
// as arguments (never in the SQL text), and the scanner's calls ignore it.
func TestWithLibraries(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	if in, args := scopeCond(ctx, "l.id"); in != "" || args != nil {
		t.Errorf("unscoped: %q %v, want nothing", in, args)
	}
	if in, args := scopeCond(WithLibraries(ctx, []string{}), "l.id"); in == "" || len(args) != 0 {
		t.Errorf("empty scope: %q %v, want a condition with no argument", in, args)
	}
	names := []string{`x') OR 1=1 --`, "Alpha", `"Beta"`, "Alpha", "?"}
	scoped := WithLibraries(ctx, names)
	names[1] = "Beta" // the caller's slice is its own
	in, args := scopeCond(scoped, "l.id")
	want := []any{`"Beta"`, "?", "Alpha", `x') OR 1=1 --`}
	if diff := cmp.Diff(want, args); diff != "" {
		t.Errorf("args (-want +got):\n%s", diff)
	}
	if strings.Count(in, "?") != len(want) || strings.ContainsAny(in, `'"`) || strings.Contains(in, "Alpha") {
		t.Errorf("condition %q holds more than placeholders", in)
	}

	x := openScoped(t)
	none := WithLibraries(ctx, []string{})
	if n, err := x.Count(none, ""); err != nil || n != 5 {
		t.Errorf("Count under the empty scope = %d, %v; want all 5 (the scanner's)", n, err)
	}
	if k, err := x.Known(none, "Beta", "Shared"); err != nil || len(k.Items) != 1 {
		t.Errorf("Known under the empty scope = %+v, %v; want Beta's file", k, err)
	}
}

// BenchmarkScoped measures reads under a scope next to the same reads
// without one, on BenchmarkSearch's library of 100,000 items ("Music")
// and a small second one ("Small", 200 items). Scoped to Music, every row
// passes the filter: the most the filter itself costs. Scoped to Small,
// nearly every album and artist is looked at and dropped. Run it with
//
//	go test -run '^$' -bench Scoped -benchtime 3x ./internal/index/
func BenchmarkScoped(b *testing.B) {
	x, err := Open(b.Context(), filepath.Join(b.TempDir(), "index.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer x.Close()
	g := newLibraryGen(1)
	if err := g.fill(b, x, 100_000); err != nil {
		b.Fatal(err)
	}
	small := &Batch{}
	for i := range 200 {
		small.Puts = append(small.Puts, song("Small", fmt.Sprintf("%02d/%02d.mp3", i/10, i%10), g.phrase(2),
			fmt.Sprintf("Small %02d", i/10), i%10+1, 2000, g.phrase(1)))
	}
	if err := x.Apply(b.Context(), small); err != nil {
		b.Fatal(err)
	}
	if err := x.Refresh(b.Context()); err != nil {
		b.Fatal(err)
	}
	queries := g.queries(200)
	for _, sc := range []struct {
		name string
		ctx  context.Context
	}{
		{"unscoped", b.Context()},
		{"Music", WithLibraries(b.Context(), []string{"Music"})},
		{"Small", WithLibraries(b.Context(), []string{"Small"})},
	} {
		b.Run(sc.name+"/albums", func(b *testing.B) {
			for b.Loop() {
				if _, _, err := x.Albums(sc.ctx, Page{}); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(sc.name+"/artists", func(b *testing.B) {
			for b.Loop() {
				if _, _, err := x.Artists(sc.ctx, Page{}); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(sc.name+"/search", func(b *testing.B) {
			var durs []time.Duration
			for b.Loop() {
				for _, q := range queries {
					t := time.Now()
					if _, err := x.Search(sc.ctx, q, Page{}); err != nil {
						b.Fatalf("%q: %v", q, err)
					}
					durs = append(durs, time.Since(t))
				}
			}
			slices.Sort(durs)
			b.ReportMetric(float64(durs[len(durs)/2])/float64(time.Millisecond), "p50-ms")
			b.ReportMetric(float64(durs[len(durs)*99/100])/float64(time.Millisecond), "p99-ms")
		})
	}
}
