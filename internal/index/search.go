package index

import (
	"cmp"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
)

// itemRank is bm25 over items_fts with a weight per column (title,
// artists, album, album_artists, genres, year, path): a word in a title
// counts ten times one in a path.
const itemRank = `bm25(items_fts, 10, 6, 5, 4, 2, 1, 1)`

// itemOrder breaks the rank's ties so that results (and pages) are
// always in the same order.
const itemOrder = `i.title, l.name, f.path, i.name`

// Bounds on the work of one search. bm25 costs 2 to 7 µs a row here
// (modernc's SQLite), plus a scan of each phrase's whole doclist (for its
// IDF): ranking the 100,000 items "m" matches would take 150 ms, a search
// should take under 20.
const (
	// rankedMax is the most rows bm25 ranks in one search; a larger
	// result is ranked in tiers (see searchItems).
	rankedMax = 500
	// titleRankedMax is the most rows bm25 ranks in the first tier.
	titleRankedMax = 300
)

// TotalMax is where SearchResult.Total stops counting: a Total of
// TotalMax means that many or more (pages past it are still served).
// Counting all 100,000 items a letter matches would take 7 ms of a
// search's 20.
const TotalMax = 10_000

// namesShown is how many albums and artists a search returns.
const namesShown = 6

// Search runs a user's query (see ParseQuery). A malformed query is a
// *QueryError, which the web layer answers with 400. Under a scope, items,
// albums and artists are those ctx may see (see WithLibraries), and Total
// counts only them.
func (x *Index) Search(ctx context.Context, s string, p Page) (SearchResult, error) {
	q, err := ParseQuery(s)
	if err != nil {
		return SearchResult{}, err
	}
	res := SearchResult{Query: s}
	// Names and items at once: two of the read pool's connections, and
	// the two cores of a small server.
	var namesErr error
	done := make(chan struct{})
	go func() {
		defer close(done)
		if res.Albums, namesErr = x.searchAlbums(ctx, q); namesErr == nil {
			res.Artists, namesErr = x.searchArtists(ctx, q)
		}
	}()
	res.Items, res.Total, err = x.searchItems(ctx, q, p.normal())
	<-done
	if err = cmp.Or(err, namesErr); err != nil {
		return SearchResult{}, queryError(s, err)
	}
	return res, nil
}

// queryError makes an FTS5 syntax error a *QueryError. ParseQuery quotes
// every word so that none should happen; if one still does, it is still
// the query's fault, not the server's.
func queryError(s string, err error) error {
	if strings.Contains(err.Error(), "fts5: syntax error") {
		return &QueryError{Query: s, Msg: "the query cannot be read"}
	}
	return fmt.Errorf("index: search %q: %w", s, err)
}

// searchItems returns a page of the items matching q, best first, and
// how many match (at most TotalMax).
//
// Up to rankedMax matches, best first is bm25's order (then itemOrder).
// Beyond, ranking them all is too slow, and bm25 says little anyway (a
// word that most rows match weighs next to nothing), so they come in two
// tiers: first the items with every word (of no field) in their title,
// ranked by bm25 if there are at most titleRankedMax of them, else in the
// index's order (that of the scan); then the others, in the index's
// order. Either way the order is total: pages neither repeat nor skip.
func (x *Index) searchItems(ctx context.Context, q Query, p Page) ([]Item, int, error) {
	s := itemSearch{x: x}
	s.scope, s.scopeArgs = scopeCond(ctx, itemLibrary)
	words, exclude := fts{columns: itemColumns("")}.expr(q)
	inFTS := q.yearsFit()
	if words == "" && (exclude == "" || !inFTS) {
		s.years, s.args = q.years("i.year")
		return s.byYear(ctx, exclude, p)
	}
	if !inFTS {
		s.years, s.args = q.years("i.year")
	}
	pos, neg := fts{columns: itemColumns(""), years: inFTS}.expr(q)
	all := butNot(pos, neg)
	total, err := s.count(ctx, hits{match: all}, TotalMax)
	if err != nil {
		return nil, 0, err
	}
	if total < TotalMax && p.Offset >= total {
		return []Item{}, total, nil // nothing matches, or the page is past the end
	}
	if total <= rankedMax {
		items, err := s.page(ctx, hits{match: all}, true, p.Offset, p.Limit)
		return items, total, err
	}
	inTitle, _ := fts{columns: itemColumns("title"), years: inFTS}.expr(q)
	if inTitle == pos {
		// No word without a field: one tier.
		items, err := s.page(ctx, hits{match: all}, false, p.Offset, p.Limit)
		return items, total, err
	}
	first, err := s.ids(ctx, hits{match: butNot(inTitle, neg)}, titleRankedMax+1)
	if err != nil {
		return nil, 0, err
	}
	// The tiers: each a selection, whether it is ranked, and its size
	// (-1: unknown, as it is only counted if a page lies beyond it).
	type tier struct {
		hits
		ranked bool
		n      int
	}
	tiers := []tier{
		// bm25 of the whole query (not of its title part): the ranking
		// is the one smaller results have.
		{hits{match: all, only: first}, true, len(first)},
		{hits{match: all, except: first}, false, -1},
	}
	if len(first) > titleRankedMax {
		tiers = []tier{
			{hits{match: butNot(inTitle, neg)}, false, -1},
			{hits{match: butNot(butNot(pos, inTitle), neg)}, false, -1},
		}
	}
	items := []Item{}
	skip := p.Offset
	for _, t := range tiers {
		if t.n >= 0 && skip >= t.n {
			skip -= t.n
			continue
		}
		got, err := s.page(ctx, t.hits, t.ranked, skip, p.Limit-len(items))
		if err != nil {
			return nil, 0, err
		}
		items = append(items, got...)
		if len(items) == p.Limit {
			break
		}
		switch {
		case len(got) > 0:
			skip = 0 // the page began in this tier and ran past its end
		case t.n < 0:
			if t.n, err = s.count(ctx, t.hits, skip); err != nil {
				return nil, 0, err
			}
			skip -= t.n
		}
	}
	return items, total, nil
}

// itemSearch runs the parts of one search on items.
type itemSearch struct {
	x         *Index
	years     string // SQL condition on i.year, or ""
	args      []any  // of years
	scope     string // SQL condition on items i from scopeCond, or ""
	scopeArgs []any  // of scope
}

// joinsItems says whether where joins items i to items_fts.
func (s itemSearch) joinsItems() bool { return s.years != "" || s.scope != "" }

// hits selects items: those matching an FTS5 expression, perhaps only
// among some rows, or except some (item IDs, as from itemSearch.ids).
type hits struct {
	match        string
	only, except []int64
}

// where returns the FROM and WHERE clauses selecting h, and their
// arguments.
func (s itemSearch) where(h hits) (from, where string, args []any) {
	conds := []string{`items_fts MATCH ?`}
	args = []any{h.match}
	// The IDs are not a constraint of items_fts's ("+"): FTS5 would run
	// the whole query once per ID.
	for _, c := range []struct {
		op  string
		ids []int64
	}{{"IN", h.only}, {"NOT IN", h.except}} {
		if c.ids != nil {
			js, _ := json.Marshal(c.ids)
			conds = append(conds, `+items_fts.rowid `+c.op+` (SELECT value FROM json_each(?))`)
			args = append(args, string(js))
		}
	}
	from = `FROM items_fts`
	if s.joinsItems() {
		from = `FROM items_fts JOIN items i ON i.id = items_fts.rowid`
	}
	if s.years != "" {
		conds = append(conds, s.years)
		args = append(args, s.args...)
	}
	if s.scope != "" {
		// No index has the item's library: items_fts still drives, and
		// each match's item and folder are read to check it. That is
		// most of a scoped search's cost (p50 16 ms, p99 44 at 100,000
		// items against 3.4 and 12 unscoped; 52 and 310 for a small
		// library, whose words are found in the others too and checked
		// one by one). A library column in items_fts would make it a
		// part of the MATCH (a new schema, so a full rescan).
		conds = append(conds, s.scope)
		args = append(args, s.scopeArgs...)
	}
	return from, ` WHERE ` + strings.Join(conds, " AND "), args
}

// count counts the items h selects, stopping at limit.
func (s itemSearch) count(ctx context.Context, h hits, limit int) (int, error) {
	from, where, args := s.where(h)
	var n int
	err := s.x.r.QueryRowContext(ctx, `SELECT count(*) FROM (SELECT 1 `+from+where+` LIMIT ?)`, append(args, limit)...).Scan(&n)
	return n, err
}

// ids returns the IDs of the items h selects, in the index's order, at
// most limit.
func (s itemSearch) ids(ctx context.Context, h hits, limit int) ([]int64, error) {
	from, where, args := s.where(h)
	rows, err := s.x.r.QueryContext(ctx, `SELECT items_fts.rowid `+from+where+` ORDER BY items_fts.rowid LIMIT ?`, append(args, limit)...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	ids := []int64{}
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		ids = append(ids, id)
	}
	return ids, rows.Err()
}

// page returns a page of the items h selects, ranked (bm25, then
// itemOrder) or in the index's order (items_fts gives its rows in rowid
// order without sorting them). The page's rows are found first, with as
// few columns as ordering needs, and read whole afterwards.
func (s itemSearch) page(ctx context.Context, h hits, ranked bool, offset, limit int) ([]Item, error) {
	from, where, args := s.where(h)
	var q string
	if ranked {
		if !s.joinsItems() {
			from += ` JOIN items i ON i.id = items_fts.rowid`
		}
		q = `WITH page AS (SELECT i.id, ` + itemRank + ` AS score ` + from + itemJoins + where + `
			ORDER BY score, ` + itemOrder + ` LIMIT ? OFFSET ?)
			` + itemSelect + ` FROM page p JOIN items i ON i.id = p.id` + itemJoins + `ORDER BY p.score, ` + itemOrder
	} else {
		q = `WITH page AS (SELECT items_fts.rowid AS id ` + from + where + ` ORDER BY items_fts.rowid LIMIT ? OFFSET ?)
			` + itemSelect + ` FROM page p JOIN items i ON i.id = p.id` + itemJoins + `ORDER BY i.id`
	}
	rows, err := s.x.r.QueryContext(ctx, q, append(args, limit, offset)...)
	if err != nil {
		return nil, err
	}
	return scanItems(rows)
}

// byYear answers a query of years alone: the items of those years by
// year and title, which the index items_year gives in that order (bm25
// would have no word to rank by). It also answers years with exclusions
// when the years are too many for items_fts (Query.yearsFit).
func (s itemSearch) byYear(ctx context.Context, exclude string, p Page) ([]Item, int, error) {
	where := ` WHERE ` + s.years
	args := slices.Clone(s.args)
	if exclude != "" {
		where += ` AND i.id NOT IN (SELECT rowid FROM items_fts WHERE items_fts MATCH ?)`
		args = append(args, exclude)
	}
	var total int
	count, countArgs := where, args
	if s.scope != "" {
		// items applies the scope itself.
		count, countArgs = where+` AND `+s.scope, slices.Concat(args, s.scopeArgs)
	}
	err := s.x.r.QueryRowContext(ctx, `SELECT count(*) FROM (SELECT 1 FROM items i`+count+` LIMIT ?)`,
		append(countArgs, TotalMax)...).Scan(&total)
	if err != nil {
		return nil, 0, err
	}
	items, err := s.x.items(ctx, where+` ORDER BY i.year, `+itemOrder+` LIMIT ? OFFSET ?`, append(args, p.Limit, p.Offset)...)
	return items, total, err
}

// albumColumns are albums_fts's columns for each field; titles, genres
// and paths are not the names of albums.
func albumColumns(field string) (string, bool) {
	switch field {
	case "":
		return "", true
	case "album":
		return "name", true
	case "artist", "albumartist":
		return "artist", true
	}
	return "", false
}

// artistColumns are artists_fts's columns for each field.
func artistColumns(field string) (string, bool) {
	switch field {
	case "", "artist", "albumartist":
		return "", true
	}
	return "", false
}

// namesRankedMax bounds the names bm25 ranks in one tier of a search.
const namesRankedMax = 200

// searchAlbums returns the albums whose name or artist match q's words,
// in the order of nameTiers (the name counting twice the artist).
func (x *Index) searchAlbums(ctx context.Context, q Query) ([]Album, error) {
	years, args := q.years("a.year")
	if years != "" {
		years = " AND " + years
	}
	// Those ctx may see are counted for nameOrder; albums then applies
	// the scope itself.
	seen, seenArgs := seenAlbums(ctx)
	if seen == "" {
		seen = `albums a`
	}
	albums := []Album{}
	for _, match := range nameTiers(q, albumColumns) {
		args := append([]any{match}, args...)
		from := ` FROM albums_fts JOIN ` + seen + ` ON a.id = albums_fts.rowid WHERE albums_fts MATCH ?`
		order, err := nameOrder(ctx, x.r, `SELECT 1`+from+years, slices.Concat(seenArgs, args), "bm25(albums_fts, 2, 1)", "albums_fts.rowid")
		if err != nil || order == "" {
			if err != nil {
				return nil, err
			}
			continue
		}
		got, err := x.albums(ctx, `JOIN albums_fts ON albums_fts.rowid = a.id WHERE albums_fts MATCH ?`+years+
			` ORDER BY `+order+` LIMIT ?`, append(args, namesShown-len(albums))...)
		if err != nil {
			return nil, err
		}
		if albums = append(albums, got...); len(albums) == namesShown {
			break
		}
	}
	return albums, nil
}

// searchArtists returns the artists whose name matches q's words, in the
// order of nameTiers.
func (x *Index) searchArtists(ctx context.Context, q Query) ([]Artist, error) {
	from := ` FROM artists_fts WHERE artists_fts MATCH ?`
	seen, seenArgs := seenArtists(ctx)
	if seen != "" {
		// As in searchAlbums: artists applies the scope itself.
		from = ` FROM artists_fts JOIN ` + seen + ` ON a.id = artists_fts.rowid WHERE artists_fts MATCH ?`
	}
	artists := []Artist{}
	for _, match := range nameTiers(q, artistColumns) {
		order, err := nameOrder(ctx, x.r, `SELECT 1`+from, append(slices.Clone(seenArgs), match), "bm25(artists_fts)", "artists_fts.rowid")
		if err != nil || order == "" {
			if err != nil {
				return nil, err
			}
			continue
		}
		got, err := x.artists(ctx, `JOIN artists_fts ON artists_fts.rowid = a.id WHERE artists_fts MATCH ?
			ORDER BY `+order+` LIMIT ?`, match, namesShown-len(artists))
		if err != nil {
			return nil, err
		}
		if artists = append(artists, got...); len(artists) == namesShown {
			break
		}
	}
	return artists, nil
}

// nameOrder counts the rows a query of names selects (up to
// namesRankedMax+1) and returns how to order them: "" when there are
// none, rank (then name) when they are few enough to rank, else in the
// index's order (alphabetical for albums, which Refresh inserts by key).
func nameOrder(ctx context.Context, db *sql.DB, sel string, args []any, rank, index string) (string, error) {
	var n int
	err := db.QueryRowContext(ctx, `SELECT count(*) FROM (`+sel+` LIMIT ?)`, append(args, namesRankedMax+1)...).Scan(&n)
	switch {
	case err != nil || n == 0:
		return "", err
	case n > namesRankedMax:
		return index, nil
	}
	return rank + `, a.name COLLATE NOCASE, a.uid`, nil
}

// nameTiers returns the FTS5 expressions that find albums or artists by
// name, in order: those matching every word of q (of a field the name
// holds), then those matching only some. Within a tier, the names are
// ranked by bm25, unless there are more than namesRankedMax (a letter or
// two): then they are in the index's order.
func nameTiers(q Query, columns func(string) (string, bool)) []string {
	every, neg := fts{columns: columns}.expr(q)
	some, _ := fts{columns: columns, some: true}.expr(q)
	if every == "" {
		return nil
	}
	tiers := []string{butNot(every, neg)}
	if some != every {
		tiers = append(tiers, butNot(butNot(some, every), neg))
	}
	return tiers
}

// refreshNames rebuilds the album and artist name indexes from their
// tables (Refresh calls it once it has derived them again).
func refreshNames(ctx context.Context, tx *sql.Tx) error {
	for _, q := range []string{
		`INSERT INTO albums_fts (albums_fts) VALUES ('rebuild')`,
		`INSERT INTO artists_fts (artists_fts) VALUES ('rebuild')`,
	} {
		if _, err := tx.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("index: refresh names: %w", err)
		}
	}
	return nil
}
