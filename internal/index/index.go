// Package index is MuStServ's library index: one SQLite database (WAL, in
// the data directory) of every media file of every library — where it is,
// its size and modification time, a stable random ID, what probing found
// (container, duration, bitrates, codecs, tags, cover) — with the folder
// tree, the albums and artists derived from the tags, and full-text search
// (FTS5, diacritic-insensitive, prefix matching, field filters, bm25).
//
// It stores and answers; it does not walk folders, probe files or watch
// anything (package scan does) and it never opens a media file.
package index

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"mustserv/internal/probe"

	_ "modernc.org/sqlite" // registers the "sqlite" driver
)

// Index is an open index database. It is safe for concurrent use: writes
// go through one connection (SQLite has one writer), reads through a small
// pool that never blocks on the writer (WAL).
type Index struct {
	w *sql.DB // the one writing connection
	r *sql.DB // read-only connections

	setAside string // where Open moved a damaged file, if it did
}

// schemaVersion changes when the schema does; an index of another version
// is rebuilt from scratch by the next scan (it is a cache of the disks).
const schemaVersion = "4"

// schema is the whole database. Paths are stored as they are on disk
// (bytes, not necessarily UTF-8); times as Unix nanoseconds.
//
// items_fts is contentless (its content option is empty): the text lives in items, the FTS
// table keeps only the inverted index, and contentless_delete lets a row be
// replaced or deleted by rowid (= items.id).
const schema = `
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;

CREATE TABLE libraries (
	id         INTEGER PRIMARY KEY,
	name       TEXT NOT NULL UNIQUE,
	online     INTEGER NOT NULL DEFAULT 1,
	error      TEXT NOT NULL DEFAULT '',   -- why it is offline
	scanned_at INTEGER NOT NULL DEFAULT 0  -- end of the last complete scan
);

CREATE TABLE folders (
	id         INTEGER PRIMARY KEY,
	library_id INTEGER NOT NULL REFERENCES libraries(id),
	parent_id  INTEGER REFERENCES folders(id), -- NULL for a library's root
	path       TEXT NOT NULL,                  -- '' for the root, else 'a/b'
	name       TEXT NOT NULL,                  -- last segment ('' for the root)
	cover      TEXT NOT NULL DEFAULT '',       -- name of folder.jpg, cover.png, ... if any
	UNIQUE (library_id, path)
);
CREATE INDEX folders_parent ON folders (parent_id);

CREATE TABLE items (
	id            INTEGER PRIMARY KEY,
	uid           TEXT NOT NULL UNIQUE,   -- public: hash of library and path when first indexed, kept across rescans and renames
	folder_id     INTEGER NOT NULL REFERENCES folders(id),
	name          TEXT NOT NULL,
	kind          TEXT NOT NULL,          -- 'audio' or 'video'
	size          INTEGER NOT NULL,
	mtime         INTEGER NOT NULL,
	hash          BLOB,                   -- of size and the first and last blocks: finds renames
	container     TEXT NOT NULL DEFAULT '',
	duration      REAL NOT NULL DEFAULT 0,
	bitrate_avg   INTEGER NOT NULL DEFAULT 0,
	bitrate_peak  INTEGER NOT NULL DEFAULT 0,
	peak_method   TEXT NOT NULL DEFAULT '',
	streams       TEXT NOT NULL DEFAULT '[]', -- JSON []probe.Stream
	title         TEXT NOT NULL DEFAULT '',
	artists       TEXT NOT NULL DEFAULT '[]', -- JSON []string
	album         TEXT NOT NULL DEFAULT '',
	album_artists TEXT NOT NULL DEFAULT '[]', -- JSON []string
	genres        TEXT NOT NULL DEFAULT '[]', -- JSON []string
	track         INTEGER NOT NULL DEFAULT 0,
	disc          INTEGER NOT NULL DEFAULT 0,
	year          INTEGER NOT NULL DEFAULT 0,
	album_key     TEXT NOT NULL DEFAULT '',   -- albums.key; '' when the file has no album tag
	cover_mime    TEXT NOT NULL DEFAULT '',   -- embedded picture, if any
	cover_off     INTEGER NOT NULL DEFAULT 0,
	cover_size    INTEGER NOT NULL DEFAULT 0,
	error         TEXT NOT NULL DEFAULT '',   -- why probing failed ('' when it did not)
	UNIQUE (folder_id, name)
);
CREATE INDEX items_hash ON items (size, hash);
CREATE INDEX items_album ON items (album_key) WHERE album_key != '';
CREATE INDEX items_year ON items (year, title); -- a search of years alone

-- Derived from items by Index.Refresh after every batch of changes.
CREATE TABLE albums (
	id         INTEGER PRIMARY KEY,
	uid        TEXT NOT NULL UNIQUE,  -- hash of key: the same on every node
	key        TEXT NOT NULL UNIQUE,
	name       TEXT NOT NULL,
	artist     TEXT NOT NULL,         -- album artist(s), or the track artist(s) all tracks share, or ''
	year       INTEGER NOT NULL,
	tracks     INTEGER NOT NULL,
	duration   REAL NOT NULL,
	cover_item INTEGER                -- an item whose cover stands for the album
);
CREATE INDEX albums_name ON albums (name COLLATE NOCASE, artist COLLATE NOCASE);

CREATE TABLE artists (
	id     INTEGER PRIMARY KEY,
	uid    TEXT NOT NULL UNIQUE,      -- hash of key
	key    TEXT NOT NULL UNIQUE,      -- folded name
	name   TEXT NOT NULL,
	albums INTEGER NOT NULL DEFAULT 0,
	tracks INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX artists_name ON artists (name COLLATE NOCASE);

-- role 0: track artist, 1: album artist.
CREATE TABLE item_artists (
	artist_id INTEGER NOT NULL,
	item_id   INTEGER NOT NULL,
	role      INTEGER NOT NULL,
	PRIMARY KEY (artist_id, role, item_id)
) WITHOUT ROWID;
CREATE INDEX item_artists_item ON item_artists (item_id);

CREATE VIRTUAL TABLE items_fts USING fts5 (
	title, artists, album, album_artists, genres, year, path,
	content = '', contentless_delete = 1,
	tokenize = 'unicode61 remove_diacritics 2',
	prefix = '1 2 3 4'
);

-- Album and artist names for search: external content (the text stays in
-- albums and artists), rebuilt by Refresh after it derives them.
CREATE VIRTUAL TABLE albums_fts USING fts5 (
	name, artist, content = 'albums', content_rowid = 'id',
	tokenize = 'unicode61 remove_diacritics 2', prefix = '1 2 3 4'
);
CREATE VIRTUAL TABLE artists_fts USING fts5 (
	name, content = 'artists', content_rowid = 'id',
	tokenize = 'unicode61 remove_diacritics 2', prefix = '1 2 3 4'
);
`

// Open opens (creating if needed) the index database at path.
func Open(ctx context.Context, path string) (*Index, error) { return OpenDriver(ctx, "sqlite", path) }

// OpenDriver is Open through the database/sql driver registered as
// driver, which must be modernc.org/sqlite's or wrap it: tests wrap it to
// see every statement's text (that no user input ever reaches SQL text).
func OpenDriver(ctx context.Context, driver, path string) (*Index, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return nil, fmt.Errorf("open index: %w", err)
	}
	// cache_size is per connection, in KiB when negative: small, because
	// an idle server should be small; the OS page cache holds the rest.
	dsn := func(extra string) string {
		return "file:" + (&url.URL{Path: path}).EscapedPath() + "?_pragma=busy_timeout(10000)" +
			"&_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)&_pragma=cache_size(-512)" +
			"&_pragma=temp_store(MEMORY)" + extra
	}
	w, err := sql.Open(driver, dsn("&_txlock=immediate"))
	if err != nil {
		return nil, fmt.Errorf("open index: %w", err)
	}
	w.SetMaxOpenConns(1)
	w.SetConnMaxIdleTime(time.Minute)
	x := &Index{w: w}
	if err := x.migrate(ctx); err != nil {
		w.Close()
		if !isDamaged(err) {
			return nil, fmt.Errorf("open index %s: %w", path, err)
		}
		// The index is a cache of the disks: a damaged file is kept
		// aside for whoever wants to look at it, and the next scan
		// fills a new one.
		aside := path + ".damaged-" + time.Now().UTC().Format("20060102T150405")
		if rerr := os.Rename(path, aside); rerr != nil {
			return nil, fmt.Errorf("open index %s: %w (and setting it aside: %v)", path, err, rerr)
		}
		os.Remove(path + "-wal")
		os.Remove(path + "-shm")
		x, err := Open(ctx, path)
		if err != nil {
			return nil, err
		}
		x.setAside = aside
		return x, nil
	}
	r, err := sql.Open(driver, dsn("&_pragma=query_only(1)"))
	if err != nil {
		w.Close()
		return nil, fmt.Errorf("open index: %w", err)
	}
	r.SetMaxOpenConns(max(2, runtime.GOMAXPROCS(0)))
	// Idle connections are closed, and their page caches freed, after a
	// minute: an idle server should not hold megabytes of cached pages.
	r.SetMaxIdleConns(2)
	r.SetConnMaxIdleTime(time.Minute)
	x.r = r
	return x, nil
}

// migrate creates the schema, or recreates it when the file holds another
// version (the index is a cache: the next scan fills it again).
func (x *Index) migrate(ctx context.Context) error {
	var v string
	err := x.w.QueryRowContext(ctx, `SELECT value FROM meta WHERE key = 'schema'`).Scan(&v)
	if err == nil && v == schemaVersion {
		return nil
	}
	if err != nil && !errors.Is(err, sql.ErrNoRows) && !isNoSuchTable(err) {
		return err
	}
	tx, err := x.w.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	rows, err := tx.QueryContext(ctx, `SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite_%' AND name NOT LIKE 'items_fts_%'`)
	if err != nil {
		return err
	}
	var old []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			rows.Close()
			return err
		}
		old = append(old, n)
	}
	rows.Close()
	for _, n := range old {
		if _, err := tx.ExecContext(ctx, `DROP TABLE IF EXISTS "`+n+`"`); err != nil {
			return err
		}
	}
	if _, err := tx.ExecContext(ctx, schema); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO meta (key, value) VALUES ('schema', ?)`, schemaVersion); err != nil {
		return err
	}
	return tx.Commit()
}

// isDamaged reports whether err says the file is not an SQLite database
// or a damaged one (SQLITE_NOTADB, SQLITE_CORRUPT).
func isDamaged(err error) bool {
	var se interface{ Code() int }
	if !errors.As(err, &se) {
		return false
	}
	switch se.Code() & 0xff {
	case 11, 26: // SQLITE_CORRUPT, SQLITE_NOTADB
		return true
	}
	return false
}

// SetAside returns where Open moved a damaged index file before making a
// new one, or "" if it did not.
func (x *Index) SetAside() string { return x.setAside }

func isNoSuchTable(err error) bool {
	return err != nil && strings.Contains(err.Error(), "no such table")
}

// Close closes the database.
func (x *Index) Close() error {
	return errors.Join(x.r.Close(), x.w.Close())
}

// ErrNotFound is returned (wrapping fs.ErrNotExist) for an ID or path the
// index does not hold.
var ErrNotFound = fmt.Errorf("not in the index: %w", fs.ErrNotExist)

// Library is one library as the index knows it.
type Library struct {
	Name      string    `json:"name"`
	Online    bool      `json:"online"`
	Error     string    `json:"error,omitempty"` // why it is offline
	Items     int       `json:"items"`
	Folders   int       `json:"folders"`
	ScannedAt time.Time `json:"scanned_at,omitzero"` // zero (left out) before the first complete scan
}

// Item is one indexed media file.
type Item struct {
	ID           string         `json:"id"`
	Library      string         `json:"library"`
	Path         string         `json:"path"` // inside the library, slash-separated
	Name         string         `json:"name"`
	Kind         string         `json:"kind"` // "audio" or "video"
	Size         int64          `json:"size"`
	ModTime      time.Time      `json:"mtime"`
	Container    string         `json:"container,omitempty"`
	Duration     float64        `json:"duration_seconds,omitempty"`
	BitrateAvg   int64          `json:"bitrate_avg_bps,omitempty"`
	BitratePeak  int64          `json:"bitrate_peak_bps,omitempty"`
	PeakMethod   string         `json:"peak_method,omitempty"`
	Streams      []probe.Stream `json:"streams,omitempty"`
	Title        string         `json:"title,omitempty"`
	Artists      []string       `json:"artists,omitempty"`
	Album        string         `json:"album,omitempty"`
	AlbumID      string         `json:"album_id,omitempty"`
	AlbumArtists []string       `json:"album_artists,omitempty"`
	Genres       []string       `json:"genres,omitempty"`
	Track        int            `json:"track,omitempty"`
	Disc         int            `json:"disc,omitempty"`
	Year         int            `json:"year,omitempty"`
	HasCover     bool           `json:"has_cover"`       // embedded or a folder image
	Error        string         `json:"error,omitempty"` // why probing failed
}

// Folder is one folder of a library.
type Folder struct {
	Library string `json:"library"`
	Path    string `json:"path"` // "" for the library's root
	Name    string `json:"name"`
}

// Listing is the content of one folder: subfolders, then items, each
// sorted by name (case-insensitively, then bytewise).
type Listing struct {
	Folder
	Folders []Folder `json:"folders"`
	Items   []Item   `json:"items"`
}

// Album is an album derived from the tags: the files sharing an album
// name and album artist (or, without an album artist, a folder).
type Album struct {
	ID       string  `json:"id"`
	Name     string  `json:"name"`
	Artist   string  `json:"artist,omitempty"`
	Year     int     `json:"year,omitempty"`
	Tracks   int     `json:"tracks"`
	Duration float64 `json:"duration_seconds"`
	CoverID  string  `json:"cover_id,omitempty"` // an item whose cover stands for the album
}

// Artist is a name found in the artist or album artist tags (each value of
// a multi-valued tag is an artist of its own).
type Artist struct {
	ID     string `json:"id"`
	Name   string `json:"name"`
	Albums int    `json:"albums"`
	Tracks int    `json:"tracks"`
}

// Page selects a slice of a long answer. Limit 0 means the default (50);
// it is capped at 500.
type Page struct {
	Limit  int
	Offset int
}

// SearchResult is a page of items matching a query, best first, with the
// albums and artists that match it best.
type SearchResult struct {
	Query   string   `json:"query"`
	Total   int      `json:"total"` // items matching, over all pages
	Items   []Item   `json:"items"`
	Albums  []Album  `json:"albums"`
	Artists []Artist `json:"artists"`
}

// Cover says where the picture of an item (or album) is: a range of a file
// (an embedded picture) or a whole image file next to the media.
type Cover struct {
	Library string // the file's library
	Path    string // the file holding the picture, inside the library
	MIME    string // "" for a folder image (decided by its name)
	Offset  int64
	Size    int64 // 0 for a whole folder image
}

// coverOf converts the probe's cover to the stored columns.
func coverOf(c *probe.Cover) (mime string, off, size int64) {
	if c == nil {
		return "", 0, 0
	}
	return c.MIME, c.Offset, c.Size
}
