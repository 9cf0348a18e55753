package index

import (
	"context"
	"slices"
	"strings"
)

// A read scope limits what the index's reads answer to some libraries, for
// users given access to some only. It travels in the context, which the web
// layer sets once per request, so that no read can forget to take it.

// scopeKey is the context key of a scope.
type scopeKey struct{}

// scope is the libraries a scoped context may read; present in a context
// even when names is empty (which sees nothing).
type scope struct {
	names []string // sorted, without duplicates
}

// WithLibraries returns ctx scoped to the named libraries: every read of
// the index through it sees only their items, folders, albums and artists,
// as if the other libraries did not exist.
//
//   - names == nil adds no restriction: ctx reads what it read before.
//   - An empty, non-nil names sees nothing: a user given no library.
//   - Names are matched exactly, as library names are everywhere in the
//     index; a name the index does not hold matches nothing.
//   - A scope only narrows: within a scoped ctx, the result reads the
//     libraries in both lists. Code handed a user's context cannot widen
//     it, even by passing another user's nil.
//
// A context never scoped reads every library: the scanner and admins use
// one. Reads honour the scope (Libraries, Browse, Item, ItemAt, RatesAt,
// CoverOf, Albums, Album, Artists, Artist, ArtistItems, Search); the
// scanner's calls do not (Known, SameContent, Count, Apply, Refresh,
// SetOnline, Scanned), as they must see the whole index to keep it.
func WithLibraries(ctx context.Context, names []string) context.Context {
	if names == nil {
		return ctx
	}
	s := scope{names: slices.Clone(names)}
	if outer, ok := ctx.Value(scopeKey{}).(scope); ok {
		s.names = slices.DeleteFunc(s.names, func(n string) bool {
			_, found := slices.BinarySearch(outer.names, n)
			return !found
		})
	}
	slices.Sort(s.names)
	s.names = slices.Compact(s.names)
	return context.WithValue(ctx, scopeKey{}, s)
}

// itemLibrary is the library ID of an item i, for scopeCond.
const itemLibrary = `(SELECT library_id FROM folders WHERE id = i.folder_id)`

// scopeCond returns an SQL condition that holds when lib, an SQL
// expression of a library's ID, is a library ctx may read, and the
// arguments it binds: one placeholder per name, so that no name is ever
// part of the SQL text. Every scoped read gets its condition here.
//
// An unscoped ctx gives "" and no arguments: callers then run exactly the
// SQL they ran before scopes existed. Test the condition, not the
// arguments: the empty scope has a condition (always false) and none.
func scopeCond(ctx context.Context, lib string) (string, []any) {
	s, ok := ctx.Value(scopeKey{}).(scope)
	if !ok {
		return "", nil
	}
	args := make([]any, len(s.names))
	for i, n := range s.names {
		args[i] = n
	}
	// SQLite takes an empty list: "IN ()" is false. The unary + makes
	// the condition a filter that never leads the plan: on l.id, SQLite
	// would otherwise read the scope's libraries, all their folders and
	// all their items, then sort, where an index on items (items_year,
	// items_album) finds the few wanted (90 ms instead of 1 for the
	// items of a year at 100,000 items).
	marks := strings.TrimSuffix(strings.Repeat("?, ", len(args)), ", ")
	return `+` + lib + ` IN (SELECT id FROM libraries WHERE name IN (` + marks + `))`, args
}

// seenAlbums returns, for a FROM clause, the albums ctx may see (alias a):
// those with at least one item in its libraries, and the arguments; ""
// when ctx is unscoped. SQLite flattens the subquery into the outer query,
// which keeps using the albums' indexes.
//
// Each album's items are looked up (by items_album) until one is in
// scope: counting them all costs, at 100,000 items and 10,000 albums, 45
// to 80 ms for a scope holding every album and 210 to 550 for a small
// library (the items of every other album are all read, to find none;
// BenchmarkScoped). Making that
// one lookup per album takes a table of each album's libraries derived
// by Refresh (a new schema, so a full rescan): left for when it matters.
func seenAlbums(ctx context.Context) (string, []any) {
	in, args := scopeCond(ctx, itemLibrary)
	if in == "" {
		return "", nil
	}
	return `(SELECT * FROM albums a WHERE EXISTS (SELECT 1 FROM items i
		WHERE i.album_key = a.key AND i.album_key != '' AND ` + in + `)) a`, args
}

// seenArtists is seenAlbums for artists: those with at least one item (as
// track or album artist) in ctx's libraries.
func seenArtists(ctx context.Context) (string, []any) {
	in, args := scopeCond(ctx, itemLibrary)
	if in == "" {
		return "", nil
	}
	return `(SELECT * FROM artists a WHERE EXISTS (SELECT 1 FROM item_artists ia JOIN items i ON i.id = ia.item_id
		WHERE ia.artist_id = a.id AND ` + in + `)) a`, args
}

// albumCover selects, for an album a, the ID of the item whose cover
// stands for it among the items that in (a condition on items i from
// scopeCond) lets through: the rule of Refresh's cover_item, the first
// item with an embedded picture, else the first in a folder with an
// image, applied to the visible items only.
func albumCover(in string) string {
	return `(SELECT i.id FROM items i JOIN folders f ON f.id = i.folder_id
		WHERE i.album_key = a.key AND i.album_key != '' AND (i.cover_size > 0 OR f.cover != '') AND ` + in + `
		ORDER BY i.cover_size = 0, i.id LIMIT 1)`
}
