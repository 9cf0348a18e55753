package index

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// All reads go through x.r, the read-only pool: under WAL they see the
// last committed write and never wait for the writer.

// Libraries lists the libraries the index holds (those ctx may read),
// sorted by name.
func (x *Index) Libraries(ctx context.Context) ([]Library, error) {
	q := `SELECT l.name, l.online, l.error, l.scanned_at,
		(SELECT count(*) FROM folders f JOIN items i ON i.folder_id = f.id WHERE f.library_id = l.id),
		(SELECT count(*) FROM folders f WHERE f.library_id = l.id AND f.path != '')
		FROM libraries l`
	in, args := scopeCond(ctx, "l.id")
	if in != "" {
		q += ` WHERE ` + in
	}
	rows, err := x.r.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("index: libraries: %w", err)
	}
	defer rows.Close()
	libs := []Library{}
	for rows.Next() {
		var l Library
		var scanned int64
		if err := rows.Scan(&l.Name, &l.Online, &l.Error, &scanned, &l.Items, &l.Folders); err != nil {
			return nil, fmt.Errorf("index: libraries: %w", err)
		}
		if scanned != 0 {
			l.ScannedAt = time.Unix(0, scanned).UTC()
		}
		libs = append(libs, l)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("index: libraries: %w", err)
	}
	slices.SortFunc(libs, func(a, b Library) int { return compareNames(a.Name, b.Name) })
	return libs, nil
}

// Browse lists one folder: path "" is the library's root. An unknown
// library or folder, or a library ctx may not read, is ErrNotFound.
func (x *Index) Browse(ctx context.Context, library, path string) (Listing, error) {
	ls := Listing{Folder: Folder{Library: library, Path: path}, Folders: []Folder{}, Items: []Item{}}
	var fid sql.NullInt64
	q := `SELECT f.id, coalesce(f.name, '') FROM libraries l
		LEFT JOIN folders f ON f.library_id = l.id AND f.path = ?2 WHERE l.name = ?1`
	args := []any{library, path}
	if in, names := scopeCond(ctx, "l.id"); in != "" {
		// Its placeholders follow ?2: they are ?3, ?4, ...
		q += ` AND ` + in
		args = append(args, names...)
	}
	err := x.r.QueryRowContext(ctx, q, args...).Scan(&fid, &ls.Name)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return Listing{}, fmt.Errorf("index: browse %s: library: %w", library, ErrNotFound)
	case err != nil:
		return Listing{}, fmt.Errorf("index: browse %s/%s: %w", library, path, err)
	case !fid.Valid && path == "":
		// A library known (SetOnline) before any of its folders was.
		return ls, nil
	case !fid.Valid:
		return Listing{}, fmt.Errorf("index: browse %s/%s: %w", library, path, ErrNotFound)
	}
	rows, err := x.r.QueryContext(ctx, `SELECT path, name FROM folders WHERE parent_id = ?`, fid.Int64)
	if err != nil {
		return Listing{}, fmt.Errorf("index: browse %s/%s: %w", library, path, err)
	}
	defer rows.Close()
	for rows.Next() {
		f := Folder{Library: library}
		if err := rows.Scan(&f.Path, &f.Name); err != nil {
			return Listing{}, fmt.Errorf("index: browse %s/%s: %w", library, path, err)
		}
		ls.Folders = append(ls.Folders, f)
	}
	if err := rows.Err(); err != nil {
		return Listing{}, fmt.Errorf("index: browse %s/%s: %w", library, path, err)
	}
	if ls.Items, err = x.items(ctx, `WHERE i.folder_id = ?`, fid.Int64); err != nil {
		return Listing{}, fmt.Errorf("index: browse %s/%s: %w", library, path, err)
	}
	slices.SortFunc(ls.Folders, func(a, b Folder) int { return compareNames(a.Name, b.Name) })
	slices.SortFunc(ls.Items, func(a, b Item) int { return compareNames(a.Name, b.Name) })
	return ls, nil
}

// compareNames orders names case-insensitively, then bytewise so that the
// order is total: "a" < "B" < "b" < "c".
func compareNames(a, b string) int {
	if c := strings.Compare(strings.ToLower(a), strings.ToLower(b)); c != 0 {
		return c
	}
	return strings.Compare(a, b)
}

// Item returns the item with a public ID (ErrNotFound outside ctx's
// libraries).
func (x *Index) Item(ctx context.Context, id string) (Item, error) {
	items, err := x.items(ctx, `WHERE i.uid = ?`, id)
	if err != nil {
		return Item{}, fmt.Errorf("index: item %s: %w", id, err)
	}
	if len(items) == 0 {
		return Item{}, fmt.Errorf("index: item %s: %w", id, ErrNotFound)
	}
	return items[0], nil
}

// ItemAt returns the item at a path inside a library (ErrNotFound outside
// ctx's libraries).
func (x *Index) ItemAt(ctx context.Context, library, path string) (Item, error) {
	dir, name := splitPath(path)
	items, err := x.items(ctx, `WHERE l.name = ? AND f.path = ? AND i.name = ?`, library, dir, name)
	if err != nil {
		return Item{}, fmt.Errorf("index: item %s/%s: %w", library, path, err)
	}
	if len(items) == 0 {
		return Item{}, fmt.Errorf("index: item %s/%s: %w", library, path, ErrNotFound)
	}
	return items[0], nil
}

// itemSelect reads everything an Item holds. The album is found by key
// (albums.key is unique); a file has a cover if it embeds one or its
// folder has an image.
const itemSelect = `SELECT i.uid, l.name, f.path, i.name, i.kind, i.size, i.mtime, i.container,
	i.duration, i.bitrate_avg, i.bitrate_peak, i.peak_method, i.streams, i.title, i.artists, i.album,
	coalesce(a.uid, ''), i.album_artists, i.genres, i.track, i.disc, i.year,
	i.cover_size > 0 OR f.cover != '', i.error`

// itemJoins follow items i in a FROM clause of itemSelect.
const itemJoins = ` JOIN folders f ON f.id = i.folder_id JOIN libraries l ON l.id = f.library_id
	LEFT JOIN albums a ON a.key = i.album_key `

// items runs itemSelect with a WHERE (and ORDER BY) clause, on the items
// of the libraries ctx may read.
func (x *Index) items(ctx context.Context, where string, args ...any) ([]Item, error) {
	joins := itemJoins
	if in, names := scopeCond(ctx, "l.id"); in != "" {
		// In the join, which comes before where and its arguments, and
		// which no OR in where can undo.
		joins = ` JOIN folders f ON f.id = i.folder_id JOIN libraries l ON l.id = f.library_id AND ` + in + `
			LEFT JOIN albums a ON a.key = i.album_key `
		args = append(names, args...)
	}
	rows, err := x.r.QueryContext(ctx, itemSelect+` FROM items i`+joins+where, args...)
	if err != nil {
		return nil, err
	}
	return scanItems(rows)
}

// scanItems reads rows of itemSelect (and closes them).
func scanItems(rows *sql.Rows) ([]Item, error) {
	defer rows.Close()
	items := []Item{}
	for rows.Next() {
		var it Item
		var dir, streams, artists, albumArtists, genres string
		var mtime int64
		if err := rows.Scan(&it.ID, &it.Library, &dir, &it.Name, &it.Kind, &it.Size, &mtime, &it.Container,
			&it.Duration, &it.BitrateAvg, &it.BitratePeak, &it.PeakMethod, &streams, &it.Title, &artists, &it.Album,
			&it.AlbumID, &albumArtists, &genres, &it.Track, &it.Disc, &it.Year, &it.HasCover, &it.Error); err != nil {
			return nil, err
		}
		it.Path = joinPath(dir, it.Name)
		it.ModTime = time.Unix(0, mtime).UTC()
		for _, c := range []struct {
			json string
			to   any
		}{{streams, &it.Streams}, {artists, &it.Artists}, {albumArtists, &it.AlbumArtists}, {genres, &it.Genres}} {
			// The write side stores "[]" for none: keep nil then, so
			// that an item without tags compares equal to its zero value.
			if c.json == "[]" || c.json == "" {
				continue
			}
			if err := json.Unmarshal([]byte(c.json), c.to); err != nil {
				return nil, fmt.Errorf("item %s: %w", it.ID, err)
			}
		}
		items = append(items, it)
	}
	return items, rows.Err()
}

// Albums lists albums sorted by name, then artist; total counts them all
// (those ctx may see: see albums).
func (x *Index) Albums(ctx context.Context, p Page) (albums []Album, total int, err error) {
	p = p.normal()
	count := `SELECT count(*) FROM albums`
	from, args := seenAlbums(ctx)
	if from != "" {
		count = `SELECT count(*) FROM ` + from
	}
	if err := x.r.QueryRowContext(ctx, count, args...).Scan(&total); err != nil {
		return nil, 0, fmt.Errorf("index: albums: %w", err)
	}
	const order = `ORDER BY a.name COLLATE NOCASE, a.artist COLLATE NOCASE, a.uid`
	page, pageArgs := order+` LIMIT ? OFFSET ?`, []any{p.Limit, p.Offset}
	if from != "" {
		// The page's albums are picked first, so that albums counts the
		// visible tracks of these alone, not also of every album before
		// them (SQLite computes a row's columns before sorting it): 30
		// ms instead of 220 at offset 5,000 of 10,000 albums.
		page = `WHERE a.id IN (SELECT a.id FROM ` + from + ` ` + order + ` LIMIT ? OFFSET ?) ` + order
		pageArgs = append(args, pageArgs...)
	}
	albums, err = x.albums(ctx, page, pageArgs...)
	if err != nil {
		return nil, 0, fmt.Errorf("index: albums: %w", err)
	}
	return albums, total, nil
}

// Album returns an album and its items (by disc, track, then name): under
// a scope, only its items in ctx's libraries, and ErrNotFound if none is.
func (x *Index) Album(ctx context.Context, id string) (Album, []Item, error) {
	albums, err := x.albums(ctx, `WHERE a.uid = ?`, id)
	if err != nil {
		return Album{}, nil, fmt.Errorf("index: album %s: %w", id, err)
	}
	if len(albums) == 0 {
		return Album{}, nil, fmt.Errorf("index: album %s: %w", id, ErrNotFound)
	}
	// album_key != '' lets SQLite use the partial index items_album (a
	// subquery's value could be '' as far as the planner knows): without
	// it, every item is read, 17 ms at 50,000 items instead of 1.
	items, err := x.items(ctx, `WHERE i.album_key = (SELECT key FROM albums WHERE uid = ?) AND i.album_key != ''
		ORDER BY i.disc, i.track, i.name COLLATE NOCASE, i.name, i.uid`, id)
	if err != nil {
		return Album{}, nil, fmt.Errorf("index: album %s: %w", id, err)
	}
	return albums[0], items, nil
}

// albums reads albums with a WHERE or ORDER BY clause (alias a).
//
// Under a scope, an album is the part of it ctx may see: one without an
// item in ctx's libraries is not there, and its tracks, duration and
// cover are those of its visible items, counted for each album read (a
// few indexed lookups per album: the stored counts are of every library).
// Its name, artist and year stay the album's, as Refresh derived them
// from all its items: they name the album, the same for every user.
func (x *Index) albums(ctx context.Context, clause string, args ...any) ([]Album, error) {
	q := `SELECT a.uid, a.name, a.artist, a.year, a.tracks, a.duration, coalesce(c.uid, '')
		FROM albums a LEFT JOIN items c ON c.id = a.cover_item `
	if from, seen := seenAlbums(ctx); from != "" {
		in, names := scopeCond(ctx, itemLibrary)
		mine := ` FROM items i WHERE i.album_key = a.key AND i.album_key != '' AND ` + in
		q = `SELECT a.uid, a.name, a.artist, a.year, (SELECT count(*)` + mine + `), (SELECT total(i.duration)` + mine + `),
			coalesce((SELECT uid FROM items WHERE id = ` + albumCover(in) + `), '')
			FROM ` + from + ` `
		args = slices.Concat(names, names, names, seen, args)
	}
	rows, err := x.r.QueryContext(ctx, q+clause, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	albums := []Album{}
	for rows.Next() {
		var a Album
		if err := rows.Scan(&a.ID, &a.Name, &a.Artist, &a.Year, &a.Tracks, &a.Duration, &a.CoverID); err != nil {
			return nil, err
		}
		albums = append(albums, a)
	}
	return albums, rows.Err()
}

// Artists lists artists sorted by name; total counts them all (those ctx
// may see: see artists).
func (x *Index) Artists(ctx context.Context, p Page) (artists []Artist, total int, err error) {
	p = p.normal()
	count := `SELECT count(*) FROM artists`
	from, args := seenArtists(ctx)
	if from != "" {
		count = `SELECT count(*) FROM ` + from
	}
	if err := x.r.QueryRowContext(ctx, count, args...).Scan(&total); err != nil {
		return nil, 0, fmt.Errorf("index: artists: %w", err)
	}
	const order = `ORDER BY a.name COLLATE NOCASE, a.uid`
	page, pageArgs := order+` LIMIT ? OFFSET ?`, []any{p.Limit, p.Offset}
	if from != "" {
		// As in Albums: the page's artists first, then their counts.
		page = `WHERE a.id IN (SELECT a.id FROM ` + from + ` ` + order + ` LIMIT ? OFFSET ?) ` + order
		pageArgs = append(args, pageArgs...)
	}
	artists, err = x.artists(ctx, page, pageArgs...)
	if err != nil {
		return nil, 0, fmt.Errorf("index: artists: %w", err)
	}
	return artists, total, nil
}

// Artist returns an artist with the albums it appears on (sorted by year,
// then name) and its items that belong to no album. Under a scope, the
// albums are those it appears on in ctx's libraries.
func (x *Index) Artist(ctx context.Context, id string) (Artist, []Album, []Item, error) {
	wrap := func(err error) error { return fmt.Errorf("index: artist %s: %w", id, err) }
	artists, err := x.artists(ctx, `WHERE a.uid = ?`, id)
	if err != nil {
		return Artist{}, nil, nil, wrap(err)
	}
	if len(artists) == 0 {
		return Artist{}, nil, nil, wrap(ErrNotFound)
	}
	// As a track artist or an album artist (item_artists' role), which
	// its key (artist_id, role, item_id) finds either way.
	const mine = `(SELECT ia.item_id FROM artists ar JOIN item_artists ia ON ia.artist_id = ar.id WHERE ar.uid = ?)`
	onAlbum, args := `i.id IN `+mine+` AND i.album_key != ''`, []any{id}
	if in, names := scopeCond(ctx, itemLibrary); in != "" {
		// Not every visible album of the artist's: those of its
		// visible items (an album it has a track on in another
		// library only, with others' tracks here, is not its album here).
		onAlbum += ` AND ` + in
		args = append(args, names...)
	}
	albums, err := x.albums(ctx, `WHERE a.key IN (SELECT i.album_key FROM items i WHERE `+onAlbum+`)
		ORDER BY a.year, a.name COLLATE NOCASE, a.name, a.uid`, args...)
	if err != nil {
		return Artist{}, nil, nil, wrap(err)
	}
	items, err := x.items(ctx, `WHERE i.id IN `+mine+` AND i.album_key = ''
		ORDER BY CASE WHEN i.title != '' THEN i.title ELSE i.name END COLLATE NOCASE, i.name, i.uid`, id)
	if err != nil {
		return Artist{}, nil, nil, wrap(err)
	}
	return artists[0], albums, items, nil
}

// ArtistItems returns at most limit of an artist's items (as track or
// album artist) in one query: those on albums by the albums' year and
// name, each album's as Album orders them (disc, track, file name); then
// those on no album, by title. Under a scope, only those in ctx's
// libraries.
func (x *Index) ArtistItems(ctx context.Context, id string, limit int) ([]Item, error) {
	items, err := x.items(ctx, `WHERE i.id IN (SELECT ia.item_id FROM artists ar
		JOIN item_artists ia ON ia.artist_id = ar.id WHERE ar.uid = ?)
		ORDER BY i.album_key = '', a.year, a.name COLLATE NOCASE, a.name, a.uid, i.disc, i.track,
		CASE WHEN i.album_key != '' OR i.title = '' THEN i.name ELSE i.title END COLLATE NOCASE, i.name, i.uid
		LIMIT ?`, id, limit)
	if err != nil {
		return nil, fmt.Errorf("index: items of artist %s: %w", id, err)
	}
	return items, nil
}

// artists reads artists with a WHERE or ORDER BY clause (alias a).
//
// Under a scope, as for albums: an artist without an item in ctx's
// libraries is not there, and its albums and tracks are counted among its
// visible items, for each artist read.
func (x *Index) artists(ctx context.Context, clause string, args ...any) ([]Artist, error) {
	q := `SELECT a.uid, a.name, a.albums, a.tracks FROM artists a `
	if from, seen := seenArtists(ctx); from != "" {
		in, names := scopeCond(ctx, itemLibrary)
		mine := ` FROM item_artists ia JOIN items i ON i.id = ia.item_id WHERE ia.artist_id = a.id AND ` + in
		q = `SELECT a.uid, a.name, (SELECT count(DISTINCT i.album_key)` + mine + ` AND i.album_key != ''),
			(SELECT count(DISTINCT ia.item_id)` + mine + `) FROM ` + from + ` `
		args = slices.Concat(names, names, seen, args)
	}
	rows, err := x.r.QueryContext(ctx, q+clause, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	artists := []Artist{}
	for rows.Next() {
		var a Artist
		if err := rows.Scan(&a.ID, &a.Name, &a.Albums, &a.Tracks); err != nil {
			return nil, err
		}
		artists = append(artists, a)
	}
	return artists, rows.Err()
}

// CoverOf says where the cover of an item or an album (by public ID) is:
// the embedded picture, else the folder image. ErrNotFound if none, and
// for an item or album ctx may not see.
func (x *Index) CoverOf(ctx context.Context, id string) (Cover, error) {
	// An album stands for the cover of its cover_item. Item and album IDs
	// are both 16 hex digits: an item's is looked for first.
	var c Cover
	var dir, name, folderCover string
	const sel = `SELECT l.name, f.path, i.name, i.cover_mime, i.cover_off, i.cover_size, f.cover
		FROM items i JOIN folders f ON f.id = i.folder_id JOIN libraries l ON l.id = f.library_id `
	q := sel + `WHERE i.id = coalesce((SELECT id FROM items WHERE uid = ?1), (SELECT cover_item FROM albums WHERE uid = ?1))`
	args := []any{id}
	if in, names := scopeCond(ctx, "l.id"); in != "" {
		// The album's cover_item may be in another library: its cover is
		// then that of a visible item, as albums gives it (CoverID).
		inItem, _ := scopeCond(ctx, itemLibrary)
		q = sel + `WHERE i.id = coalesce((SELECT id FROM items WHERE uid = ?1),
			(SELECT ` + albumCover(inItem) + ` FROM albums a WHERE a.uid = ?1)) AND ` + in
		args = slices.Concat(args, names, names)
	}
	err := x.r.QueryRowContext(ctx, q, args...).Scan(&c.Library, &dir, &name, &c.MIME, &c.Offset, &c.Size, &folderCover)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return Cover{}, fmt.Errorf("index: cover of %s: %w", id, ErrNotFound)
	case err != nil:
		return Cover{}, fmt.Errorf("index: cover of %s: %w", id, err)
	case c.Size > 0:
		c.Path = joinPath(dir, name)
		return c, nil
	case folderCover != "":
		return Cover{Library: c.Library, Path: joinPath(dir, folderCover)}, nil
	}
	return Cover{}, fmt.Errorf("index: cover of %s: %w", id, ErrNotFound)
}

// normal is p with its defaults and bounds applied. Negative values are
// the web layer's to reject; here they are the defaults.
func (p Page) normal() Page {
	if p.Limit <= 0 {
		p.Limit = 50
	}
	p.Limit = min(p.Limit, 500)
	p.Offset = max(p.Offset, 0)
	return p
}

// QueryError is a search query that cannot be run, with a message fit for
// the user.
type QueryError struct {
	Query string
	Msg   string
}

func (e *QueryError) Error() string { return "bad query: " + e.Msg }

// Rates is what the pacer needs of a file, as the index saw it: the probe's
// bitrates and duration, the embedded cover's size, and the file's size
// and time (to tell whether the file is still the one probed).
type Rates struct {
	Size       int64
	ModTime    time.Time
	Peak, Avg  int64 // bit/s; 0 when unknown
	Duration   float64
	CoverBytes int64
}

// RatesAt returns the Rates of the file at a path inside a library, or
// ErrNotFound (also outside ctx's libraries). It is one small indexed
// query, cheap enough for every stream request.
func (x *Index) RatesAt(ctx context.Context, library, path string) (Rates, error) {
	dir, name := splitPath(path)
	var r Rates
	var mtime int64
	q := `SELECT i.size, i.mtime, i.bitrate_peak, i.bitrate_avg, i.duration, i.cover_size
		FROM items i JOIN folders f ON f.id = i.folder_id JOIN libraries l ON l.id = f.library_id
		WHERE l.name = ? AND f.path = ? AND i.name = ?`
	args := []any{library, dir, name}
	if in, names := scopeCond(ctx, "l.id"); in != "" {
		q += ` AND ` + in
		args = append(args, names...)
	}
	err := x.r.QueryRowContext(ctx, q, args...).Scan(&r.Size, &mtime, &r.Peak, &r.Avg, &r.Duration, &r.CoverBytes)
	if errors.Is(err, sql.ErrNoRows) {
		return Rates{}, fmt.Errorf("index: rates of %s/%s: %w", library, path, ErrNotFound)
	}
	if err != nil {
		return Rates{}, fmt.Errorf("index: rates of %s/%s: %w", library, path, err)
	}
	r.ModTime = time.Unix(0, mtime)
	return r, nil
}
