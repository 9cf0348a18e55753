package index

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"path"
	"strconv"
	"strings"
	"time"

	"mustserv/internal/probe"
)

// Stamp is what the index remembers of a file to decide whether it must be
// probed again: a file whose size and modification time are unchanged is
// not.
type Stamp struct {
	ID      int64 // internal row ID (not the public one)
	Size    int64
	ModTime int64 // Unix nanoseconds
}

// Known is what the index holds of one folder.
type Known struct {
	Items   map[string]Stamp // by file name
	Folders []string         // subfolders' names
}

// Known returns the files and subfolders the index holds for a folder
// (library root: path ""). An unknown folder gives empty maps.
func (x *Index) Known(ctx context.Context, library, folder string) (Known, error) {
	k := Known{Items: map[string]Stamp{}}
	var fid int64
	err := x.r.QueryRowContext(ctx, `SELECT f.id FROM folders f JOIN libraries l ON l.id = f.library_id
		WHERE l.name = ? AND f.path = ?`, library, folder).Scan(&fid)
	if errors.Is(err, sql.ErrNoRows) {
		return k, nil
	}
	if err != nil {
		return k, fmt.Errorf("index: known %s/%s: %w", library, folder, err)
	}
	rows, err := x.r.QueryContext(ctx, `SELECT id, name, size, mtime FROM items WHERE folder_id = ?`, fid)
	if err != nil {
		return k, fmt.Errorf("index: known %s/%s: %w", library, folder, err)
	}
	for rows.Next() {
		var s Stamp
		var name string
		if err := rows.Scan(&s.ID, &name, &s.Size, &s.ModTime); err != nil {
			rows.Close()
			return k, err
		}
		k.Items[name] = s
	}
	if err := rows.Close(); err != nil {
		return k, err
	}
	rows, err = x.r.QueryContext(ctx, `SELECT name FROM folders WHERE parent_id = ?`, fid)
	if err != nil {
		return k, fmt.Errorf("index: known %s/%s: %w", library, folder, err)
	}
	defer rows.Close()
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			return k, err
		}
		k.Folders = append(k.Folders, name)
	}
	return k, rows.Err()
}

// Moved is an indexed file with the same size and content hash as a new
// one: if its own path no longer exists, the new file is it, renamed.
type Moved struct {
	ID      int64
	Library string
	Path    string
}

// SameContent lists items whose size and hash are these, at most limit.
func (x *Index) SameContent(ctx context.Context, size int64, hash []byte, limit int) ([]Moved, error) {
	if len(hash) == 0 {
		return nil, nil
	}
	rows, err := x.r.QueryContext(ctx, `SELECT i.id, l.name, f.path, i.name FROM items i
		JOIN folders f ON f.id = i.folder_id JOIN libraries l ON l.id = f.library_id
		WHERE i.size = ? AND i.hash = ? ORDER BY i.id LIMIT ?`, size, hash, limit)
	if err != nil {
		return nil, fmt.Errorf("index: same content: %w", err)
	}
	defer rows.Close()
	var ms []Moved
	for rows.Next() {
		var m Moved
		var dir, name string
		if err := rows.Scan(&m.ID, &m.Library, &dir, &name); err != nil {
			return nil, err
		}
		m.Path = joinPath(dir, name)
		ms = append(ms, m)
	}
	return ms, rows.Err()
}

// Record is what a scan found of one file.
type Record struct {
	Library string
	Path    string // inside the library
	Kind    string // "audio" or "video"
	Size    int64
	ModTime time.Time
	Hash    []byte
	// Report is what probing found; with Err set it may be partial or nil.
	Report *probe.Report
	Err    string
	// Replaces, if not 0, is the row of the same file under its old path:
	// the item keeps its ID and moves here.
	Replaces int64
}

// FolderRecord is a folder a scan listed.
type FolderRecord struct {
	Library string
	Path    string // "" for the root
	Cover   string // name of its cover image, or ""
}

// Batch is a set of changes written in one transaction.
type Batch struct {
	Folders []FolderRecord
	Puts    []Record
	// Removes are items (row IDs) whose files are gone.
	Removes []int64
	// RemoveFolders are folders (and everything below) that are gone.
	RemoveFolders []FolderRecord
}

// Len is the number of changes in b.
func (b *Batch) Len() int {
	return len(b.Folders) + len(b.Puts) + len(b.Removes) + len(b.RemoveFolders)
}

// Apply writes a batch in one transaction.
func (x *Index) Apply(ctx context.Context, b *Batch) error {
	if b.Len() == 0 {
		return nil
	}
	tx, err := x.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("index: apply: %w", err)
	}
	defer tx.Rollback()
	a := applier{ctx: ctx, tx: tx, libs: map[string]int64{}, folders: map[string]int64{}, stmts: map[string]*sql.Stmt{}}
	stale := len(b.Puts)+len(b.Removes)+len(b.RemoveFolders) > 0
	for _, f := range b.Folders {
		id, err := a.folder(f.Library, f.Path)
		if err != nil {
			return err
		}
		st, err := a.stmt(`UPDATE folders SET cover = ? WHERE id = ? AND cover != ?`)
		if err != nil {
			return fmt.Errorf("index: folder cover: %w", err)
		}
		res, err := st.ExecContext(ctx, f.Cover, id, f.Cover)
		if err != nil {
			return fmt.Errorf("index: folder cover: %w", err)
		}
		// A new or changed folder image may be an album's cover now.
		if n, _ := res.RowsAffected(); n > 0 {
			stale = true
		}
	}
	for i := range b.Puts {
		if err := a.put(&b.Puts[i]); err != nil {
			return fmt.Errorf("index: put %s/%s: %w", b.Puts[i].Library, b.Puts[i].Path, err)
		}
	}
	for _, id := range b.Removes {
		if err := a.remove(id); err != nil {
			return err
		}
	}
	for _, f := range b.RemoveFolders {
		if err := a.removeFolder(f.Library, f.Path); err != nil {
			return err
		}
	}
	if stale {
		// Albums and artists are now stale until Refresh; recorded in
		// the same transaction, so that a crash before Refresh is
		// repaired by the next one.
		if err := a.exec(`INSERT OR REPLACE INTO meta (key, value) VALUES ('stale', '1')`); err != nil {
			return fmt.Errorf("index: apply: %w", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("index: apply: %w", err)
	}
	return nil
}

// applier carries one transaction's caches.
type applier struct {
	ctx     context.Context
	tx      *sql.Tx
	libs    map[string]int64
	folders map[string]int64 // "library\x00path" → id
	stmts   map[string]*sql.Stmt
}

// stmt returns query prepared once per transaction: parsing SQL costs
// more than running these small statements.
func (a *applier) stmt(query string) (*sql.Stmt, error) {
	if st, ok := a.stmts[query]; ok {
		return st, nil
	}
	st, err := a.tx.PrepareContext(a.ctx, query)
	if err != nil {
		return nil, err
	}
	a.stmts[query] = st
	return st, nil
}

func (a *applier) exec(query string, args ...any) error {
	st, err := a.stmt(query)
	if err != nil {
		return err
	}
	_, err = st.ExecContext(a.ctx, args...)
	return err
}

func (a *applier) queryRow(query string, args ...any) *sql.Row {
	st, err := a.stmt(query)
	if err != nil {
		// A Row with the error: prepare a statement that cannot work
		// would hide it, so run the query unprepared to get it.
		return a.queryRow(query, args...)
	}
	return st.QueryRowContext(a.ctx, args...)
}

func (a *applier) library(name string) (int64, error) {
	if id, ok := a.libs[name]; ok {
		return id, nil
	}
	var id int64
	err := a.queryRow(`INSERT INTO libraries (name) VALUES (?)
		ON CONFLICT (name) DO UPDATE SET name = excluded.name RETURNING id`, name).Scan(&id)
	if err != nil {
		return 0, fmt.Errorf("index: library %s: %w", name, err)
	}
	a.libs[name] = id
	return id, nil
}

// folder returns the folder's row, creating it and its parents as needed.
func (a *applier) folder(library, p string) (int64, error) {
	key := library + "\x00" + p
	if id, ok := a.folders[key]; ok {
		return id, nil
	}
	lib, err := a.library(library)
	if err != nil {
		return 0, err
	}
	var parent sql.NullInt64
	name := ""
	if p != "" {
		dir, base := splitPath(p)
		pid, err := a.folder(library, dir)
		if err != nil {
			return 0, err
		}
		parent = sql.NullInt64{Int64: pid, Valid: true}
		name = base
	}
	var id int64
	err = a.queryRow(`INSERT INTO folders (library_id, parent_id, path, name) VALUES (?, ?, ?, ?)
		ON CONFLICT (library_id, path) DO UPDATE SET parent_id = excluded.parent_id RETURNING id`,
		lib, parent, p, name).Scan(&id)
	if err != nil {
		return 0, fmt.Errorf("index: folder %s/%s: %w", library, p, err)
	}
	a.folders[key] = id
	return id, nil
}

func (a *applier) put(r *Record) error {
	dir, name := splitPath(r.Path)
	fid, err := a.folder(r.Library, dir)
	if err != nil {
		return err
	}
	rep := r.Report
	if rep == nil {
		rep = &probe.Report{}
	}
	t := &rep.Tags
	streams, _ := json.Marshal(nonNil(rep.Streams))
	artists, _ := json.Marshal(nonNil(t.Artists))
	albumArtists, _ := json.Marshal(nonNil(t.AlbumArtists))
	genres, _ := json.Marshal(nonNil(t.Genres))
	cmime, coff, csize := coverOf(rep.Cover)
	akey := albumKey(r.Library, dir, t)
	args := []any{fid, name, r.Kind, r.Size, r.ModTime.UnixNano(), r.Hash,
		rep.Container, rep.Duration, rep.BitrateAvg, rep.BitratePeak, string(rep.PeakMethod), string(streams),
		t.Title, string(artists), t.Album, string(albumArtists), string(genres),
		t.Track, t.Disc, t.Year, akey, cmime, coff, csize, r.Err}
	var id int64
	if r.Replaces != 0 {
		// A moved file keeps its row and public ID. Another row may hold
		// the new path already (a file replaced by a rename onto it).
		var old int64
		err := a.queryRow(`SELECT id FROM items WHERE folder_id = ? AND name = ?`, fid, name).Scan(&old)
		if err == nil && old != r.Replaces {
			if err := a.remove(old); err != nil {
				return err
			}
		} else if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		id = r.Replaces
		err = a.exec(`UPDATE items SET folder_id = ?, name = ?, kind = ?, size = ?, mtime = ?, hash = ?,
			container = ?, duration = ?, bitrate_avg = ?, bitrate_peak = ?, peak_method = ?, streams = ?,
			title = ?, artists = ?, album = ?, album_artists = ?, genres = ?, track = ?, disc = ?, year = ?,
			album_key = ?, cover_mime = ?, cover_off = ?, cover_size = ?, error = ? WHERE id = ?`, append(args, id)...)
		if err != nil {
			return err
		}
	} else {
		err := a.queryRow(`INSERT INTO items (uid, folder_id, name, kind, size, mtime, hash,
			container, duration, bitrate_avg, bitrate_peak, peak_method, streams,
			title, artists, album, album_artists, genres, track, disc, year,
			album_key, cover_mime, cover_off, cover_size, error)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT (folder_id, name) DO UPDATE SET kind = excluded.kind, size = excluded.size,
			mtime = excluded.mtime, hash = excluded.hash, container = excluded.container,
			duration = excluded.duration, bitrate_avg = excluded.bitrate_avg, bitrate_peak = excluded.bitrate_peak,
			peak_method = excluded.peak_method, streams = excluded.streams, title = excluded.title,
			artists = excluded.artists, album = excluded.album, album_artists = excluded.album_artists,
			genres = excluded.genres, track = excluded.track, disc = excluded.disc, year = excluded.year,
			album_key = excluded.album_key, cover_mime = excluded.cover_mime, cover_off = excluded.cover_off,
			cover_size = excluded.cover_size, error = excluded.error
			RETURNING id`, append([]any{a.itemUID(r.Library, r.Path)}, args...)...).Scan(&id)
		if err != nil {
			return err
		}
	}
	year := ""
	if t.Year > 0 {
		year = strconv.Itoa(t.Year)
	}
	title := t.Title
	if title == "" {
		title = strings.TrimSuffix(name, path.Ext(name))
	}
	if err := a.exec(`INSERT OR REPLACE INTO items_fts
		(rowid, title, artists, album, album_artists, genres, year, path) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
		id, title, strings.Join(t.Artists, " ; "), t.Album, strings.Join(t.AlbumArtists, " ; "),
		strings.Join(t.Genres, " ; "), year, pathWords(r.Path)); err != nil {
		return fmt.Errorf("fts: %w", err)
	}
	if err := a.exec(`DELETE FROM item_artists WHERE item_id = ?`, id); err != nil {
		return err
	}
	for role, names := range [][]string{t.Artists, t.AlbumArtists} {
		for _, n := range names {
			key := fold(n)
			if key == "" {
				continue
			}
			var aid int64
			err := a.queryRow(`INSERT INTO artists (uid, key, name) VALUES (?, ?, ?)
				ON CONFLICT (key) DO UPDATE SET key = excluded.key RETURNING id`, hashID(key), key, strings.TrimSpace(n)).Scan(&aid)
			if err != nil {
				return fmt.Errorf("artist %q: %w", n, err)
			}
			if err := a.exec(`INSERT OR IGNORE INTO item_artists (artist_id, item_id, role) VALUES (?, ?, ?)`,
				aid, id, role); err != nil {
				return err
			}
		}
	}
	return nil
}

func (a *applier) remove(id int64) error {
	for _, q := range []string{
		`DELETE FROM items_fts WHERE rowid = ?`,
		`DELETE FROM item_artists WHERE item_id = ?`,
		`DELETE FROM items WHERE id = ?`,
	} {
		if err := a.exec(q, id); err != nil {
			return fmt.Errorf("index: remove item %d: %w", id, err)
		}
	}
	return nil
}

// removeFolder removes a folder, everything below it and its items. The
// root of a library is never removed this way.
func (a *applier) removeFolder(library, p string) error {
	if p == "" {
		return nil
	}
	lib, err := a.library(library)
	if err != nil {
		return err
	}
	const below = `library_id = ?1 AND (path = ?2 OR substr(path, 1, length(?2) + 1) = ?2 || '/')`
	rows, err := a.tx.QueryContext(a.ctx, `SELECT i.id FROM items i WHERE i.folder_id IN (SELECT id FROM folders WHERE `+below+`)`, lib, p)
	if err != nil {
		return fmt.Errorf("index: remove folder %s/%s: %w", library, p, err)
	}
	var ids []int64
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return err
		}
		ids = append(ids, id)
	}
	if err := rows.Close(); err != nil {
		return err
	}
	for _, id := range ids {
		if err := a.remove(id); err != nil {
			return err
		}
	}
	// Children before parents: parent_id references them.
	if err := a.exec(`DELETE FROM folders WHERE `+below, lib, p); err != nil {
		return fmt.Errorf("index: remove folder %s/%s: %w", library, p, err)
	}
	for k := range a.folders {
		if k == library+"\x00"+p || strings.HasPrefix(k, library+"\x00"+p+"/") {
			delete(a.folders, k)
		}
	}
	return nil
}

// SetOnline records whether a library's root is reachable, and why not.
func (x *Index) SetOnline(ctx context.Context, library string, online bool, reason string) error {
	_, err := x.w.ExecContext(ctx, `INSERT INTO libraries (name, online, error) VALUES (?1, ?2, ?3)
		ON CONFLICT (name) DO UPDATE SET online = ?2, error = ?3`, library, online, reason)
	if err != nil {
		return fmt.Errorf("index: library %s: %w", library, err)
	}
	return nil
}

// Scanned records the end of a complete scan of a library.
func (x *Index) Scanned(ctx context.Context, library string, at time.Time) error {
	_, err := x.w.ExecContext(ctx, `UPDATE libraries SET scanned_at = ? WHERE name = ?`, at.UnixNano(), library)
	if err != nil {
		return fmt.Errorf("index: library %s: %w", library, err)
	}
	return nil
}

// Count returns the number of items of a library (all libraries for "").
func (x *Index) Count(ctx context.Context, library string) (int, error) {
	var n int
	err := x.r.QueryRowContext(ctx, `SELECT count(*) FROM items i JOIN folders f ON f.id = i.folder_id
		JOIN libraries l ON l.id = f.library_id WHERE ?1 = '' OR l.name = ?1`, library).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("index: count: %w", err)
	}
	return n, nil
}

// Refresh derives the albums and artists from the items again; call it
// after a batch of changes (a scan, a burst of watcher events).
func (x *Index) Refresh(ctx context.Context) error {
	tx, err := x.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("index: refresh: %w", err)
	}
	defer tx.Rollback()
	// Nothing changed since the last Refresh (a rescan that found
	// nothing new): nothing to derive.
	var stale string
	err = tx.QueryRowContext(ctx, `SELECT value FROM meta WHERE key = 'stale'`).Scan(&stale)
	if errors.Is(err, sql.ErrNoRows) || (err == nil && stale != "1") {
		return nil
	}
	if err != nil {
		return fmt.Errorf("index: refresh: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `UPDATE meta SET value = '0' WHERE key = 'stale'`); err != nil {
		return fmt.Errorf("index: refresh: %w", err)
	}
	if err := refreshAlbums(ctx, tx); err != nil {
		return fmt.Errorf("index: refresh albums: %w", err)
	}
	for _, q := range []string{
		`DELETE FROM artists WHERE NOT EXISTS (SELECT 1 FROM item_artists ia WHERE ia.artist_id = artists.id)`,
		`UPDATE artists SET
			tracks = (SELECT count(DISTINCT item_id) FROM item_artists ia WHERE ia.artist_id = artists.id),
			albums = (SELECT count(DISTINCT i.album_key) FROM item_artists ia JOIN items i ON i.id = ia.item_id
				WHERE ia.artist_id = artists.id AND i.album_key != '')`,
	} {
		if _, err := tx.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("index: refresh artists: %w", err)
		}
	}
	if err := refreshNames(ctx, tx); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("index: refresh: %w", err)
	}
	return nil
}

func refreshAlbums(ctx context.Context, tx *sql.Tx) error {
	// One row per album key: the artist is the album artists if any track
	// has them, else the track artists when every track has the same.
	rows, err := tx.QueryContext(ctx, `SELECT i.album_key, min(i.album), max(i.album_artists),
		min(i.artists), max(i.artists), max(i.year), count(*), sum(i.duration),
		coalesce(min(CASE WHEN i.cover_size > 0 THEN i.id END), min(CASE WHEN f.cover != '' THEN i.id END))
		FROM items i JOIN folders f ON f.id = i.folder_id
		WHERE i.album_key != '' GROUP BY i.album_key`)
	if err != nil {
		return err
	}
	type album struct {
		key, name, artist string
		year, tracks      int
		dur               float64
		cover             sql.NullInt64
	}
	var albums []album
	for rows.Next() {
		var al album
		var albumArtists, minArtists, maxArtists string
		if err := rows.Scan(&al.key, &al.name, &albumArtists, &minArtists, &maxArtists, &al.year, &al.tracks, &al.dur, &al.cover); err != nil {
			rows.Close()
			return err
		}
		switch {
		case albumArtists != "[]":
			al.artist = joinJSON(albumArtists)
		case minArtists == maxArtists:
			al.artist = joinJSON(minArtists)
		}
		albums = append(albums, al)
	}
	if err := rows.Close(); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM albums`); err != nil {
		return err
	}
	st, err := tx.PrepareContext(ctx, `INSERT INTO albums (uid, key, name, artist, year, tracks, duration, cover_item)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?)`)
	if err != nil {
		return err
	}
	defer st.Close()
	for _, al := range albums {
		if _, err := st.ExecContext(ctx, hashID(al.key), al.key, al.name, al.artist, al.year, al.tracks, al.dur, al.cover); err != nil {
			return err
		}
	}
	return nil
}

// pathWords is what search sees of a file's path: its folders and its name
// without the extension. The library's name and the extension would make
// "m" or "f" match every file of "Music" or every FLAC.
func pathWords(p string) string {
	return strings.TrimSuffix(p, path.Ext(p))
}

// albumKey groups files into albums: the folded album name with the folded
// album artists, or, for files without album artists, with their folder
// (so that two "Greatest Hits" of different artists stay apart).
func albumKey(library, dir string, t *probe.Tags) string {
	name := fold(t.Album)
	if name == "" {
		return ""
	}
	var artists []string
	for _, a := range t.AlbumArtists {
		if k := fold(a); k != "" {
			artists = append(artists, k)
		}
	}
	if len(artists) > 0 {
		return name + "\x1f" + strings.Join(artists, "\x1e")
	}
	return name + "\x1f\x1d" + library + "/" + dir
}

// fold is the comparison form of a name: case-folded, spaces collapsed.
func fold(s string) string {
	return strings.Join(strings.Fields(strings.ToLower(s)), " ")
}

// joinJSON turns a JSON array of names into "A, B".
func joinJSON(s string) string {
	var names []string
	if json.Unmarshal([]byte(s), &names) != nil {
		return ""
	}
	return strings.Join(names, ", ")
}

// itemUID is the public ID of a new item at path in library: derived from
// both, so that every node behind one balancer gives a file the same ID
// (a link to /items/<id> made on one works on all). A moved file keeps
// its ID (Apply): a node that indexed it only after the move derives
// another one; a new file at a path whose ID a moved one kept gets a
// random ID.
func (a *applier) itemUID(library, p string) string {
	id := hashID("item\x00" + library + "\x00" + p)
	var one int
	if err := a.queryRow(`SELECT 1 FROM items WHERE uid = ?`, id).Scan(&one); errors.Is(err, sql.ErrNoRows) {
		return id
	}
	// Taken: by a file moved away from p, or by the row at p itself, whose
	// uid the upsert keeps (it never sets uid) whatever is passed.
	return newUID()
}

// newUID returns a random public item ID: 16 hex digits.
func newUID() string {
	var b [8]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// hashID derives a public ID from a key, the same on every node.
func hashID(key string) string {
	h := sha256.Sum256([]byte(key))
	return hex.EncodeToString(h[:8])
}

// splitPath splits "a/b/c" into "a/b" and "c", and "c" into "" and "c".
func splitPath(p string) (dir, name string) {
	i := strings.LastIndexByte(p, '/')
	if i < 0 {
		return "", p
	}
	return p[:i], p[i+1:]
}

// joinPath is the inverse of splitPath.
func joinPath(dir, name string) string {
	if dir == "" {
		return name
	}
	return dir + "/" + name
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}
