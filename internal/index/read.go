package index

import (
	"context"
	"errors"
)

// errTODO marks the read side until it is written (helper in progress).
var errTODO = errors.New("index: not implemented yet")

// Libraries lists the libraries the index holds, sorted by name.
func (x *Index) Libraries(ctx context.Context) ([]Library, error) { return nil, errTODO }

// Browse lists one folder: path "" is the library's root. An unknown
// library or folder is ErrNotFound.
func (x *Index) Browse(ctx context.Context, library, path string) (Listing, error) {
	return Listing{}, errTODO
}

// Item returns the item with a public ID.
func (x *Index) Item(ctx context.Context, id string) (Item, error) { return Item{}, errTODO }

// ItemAt returns the item at a path inside a library.
func (x *Index) ItemAt(ctx context.Context, library, path string) (Item, error) {
	return Item{}, errTODO
}

// Albums lists albums sorted by name, then artist; total counts them all.
func (x *Index) Albums(ctx context.Context, p Page) (albums []Album, total int, err error) {
	return nil, 0, errTODO
}

// Album returns an album and its items (by disc, track, then name).
func (x *Index) Album(ctx context.Context, id string) (Album, []Item, error) {
	return Album{}, nil, errTODO
}

// Artists lists artists sorted by name; total counts them all.
func (x *Index) Artists(ctx context.Context, p Page) (artists []Artist, total int, err error) {
	return nil, 0, errTODO
}

// Artist returns an artist with the albums it appears on (sorted by year,
// then name) and its items that belong to no album.
func (x *Index) Artist(ctx context.Context, id string) (Artist, []Album, []Item, error) {
	return Artist{}, nil, nil, errTODO
}

// CoverOf says where the cover of an item or an album (by public ID) is:
// the embedded picture, else the folder image. ErrNotFound if none.
func (x *Index) CoverOf(ctx context.Context, id string) (Cover, error) { return Cover{}, errTODO }

// Search runs a user's query (see ParseQuery). A malformed query is a
// *QueryError, which the web layer answers with 400.
func (x *Index) Search(ctx context.Context, q string, p Page) (SearchResult, error) {
	return SearchResult{}, errTODO
}

// QueryError is a search query that cannot be run, with a message fit for
// the user.
type QueryError struct {
	Query string
	Msg   string
}

func (e *QueryError) Error() string { return "bad query: " + e.Msg }
