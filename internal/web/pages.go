package web

import (
	"bytes"
	"context"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"math"
	"net/http"
	"net/url"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"

	"mustserv/internal/index"
	"mustserv/internal/library"
	"mustserv/internal/media"
	"mustserv/internal/scan"
)

//go:embed ui/*.html
var templates embed.FS

// views are the page templates; each is parsed with the layout and the
// shared parts, and defines "main".
var views = []string{"home", "browse", "albums", "album", "artists", "artist", "search", "item", "watch", "login"}

// Page sizes. Every list of the index is paginated, so a page costs the
// same with 50 items or 50,000 in the library; a folder is listed from the
// disk, so a huge flat folder is cut into pages too.
const (
	albumsPerPage  = 60
	artistsPerPage = 100
	resultsPerPage = 50
	folderPerPage  = 200
	// artistPageTracks caps the tracks listed (and played by "Play all")
	// on an artist's page; its playlists hold up to maxPlaylistItems.
	artistPageTracks = 500
)

// pages renders the server-side HTML, with what every page needs.
type pages struct {
	tmpl    map[string]*template.Template
	x       *index.Index // nil: no index pages, folders from the disk alone
	scanner Scanner
	links   links
	log     *slog.Logger
	// media is " origin..." for the CSP's media-src (securityHeaders).
	media string
}

func newPages(x *index.Index, scanner Scanner, l links, log *slog.Logger) *pages {
	funcs := template.FuncMap{
		"size":   humanSize,
		"dur":    formatDuration,
		"kbps":   formatBitrate,
		"count":  formatCount,
		"plural": plural,
		"join":   func(s []string) string { return strings.Join(s, ", ") },
		"date":   func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04 UTC") },
		"sized":  func(u string, n int) string { return u + "?size=" + strconv.Itoa(n) },
		"hasPfx": strings.HasPrefix,
	}
	p := &pages{tmpl: map[string]*template.Template{}, x: x, scanner: scanner, links: l, log: log}
	for _, v := range views {
		p.tmpl[v] = template.Must(template.New(v).Funcs(funcs).ParseFS(templates,
			"ui/layout.html", "ui/player.html", "ui/parts.html", "ui/"+v+".html"))
	}
	return p
}

// page is what the layout shows around a view.
type page struct {
	Title    string
	Section  string // the nav entry to mark current
	HasIndex bool
	Query    string // the search box's value
	Crumbs   []crumb
	View     any
	// Bare pages (sign in, setup) have no navigation and no player.
	Bare   bool
	User   userView
	status int // 0: 200
}

// userView is who the layout shows as signed in.
type userView struct {
	Name  string
	Admin bool
	Open  bool // authentication is off
}

// crumb is one link of the breadcrumb trail.
type crumb struct {
	Name, Href string
}

// plink is a playlist download of a set.
type plink struct {
	Name, ID, Href string
}

// setActions are the buttons and downloads of a set of tracks.
type setActions struct {
	Label     string
	Playlists []plink
}

// playlistLinks are the three downloads at base+".m3u8" etc.; query, if
// not empty, follows each (search playlists).
func playlistLinks(base, query string) []plink {
	return []plink{
		{"M3U8", "m3u8", base + ".m3u8" + query},
		{"PLS", "pls", base + ".pls" + query},
		{"XSPF", "xspf", base + ".xspf" + query},
	}
}

// trackRow is one playable (or listed) file on a page.
type trackRow struct {
	ID        string
	Name      string // file name
	Title     string // title tag, else the name
	Artist    string
	Album     string
	AlbumHref string
	Track     int
	Duration  float64
	Kind      string // audio, video, image, playlist, other
	Size      int64
	Stream    string
	Cover     string // /api/covers/ URL without size, or ""
	Details   string // the item page, or "" outside the index
	Watch     string // the video page (videos)
	Playlist  string // the file's own M3U8 (folder pages)
	Href      string // folder pages: the browse link (folders), else the item page or stream
	TestID    string // data-testid of the row, if it has one
}

func (p *pages) row(it index.Item) trackRow {
	l := p.links
	tr := trackRow{
		ID: it.ID, Name: it.Name, Title: itemTitle(it), Artist: strings.Join(it.Artists, ", "),
		Album: it.Album, Track: it.Track, Duration: it.Duration, Kind: it.Kind, Size: it.Size,
		Stream: l.stream(it.Library, it.Path), Cover: l.cover(it.ID, it.HasCover),
		Details: "/items/" + url.PathEscape(it.ID),
	}
	if it.AlbumID != "" {
		tr.AlbumHref = "/albums/" + url.PathEscape(it.AlbumID)
	}
	if it.Kind == "video" {
		tr.Watch = l.watch(it.Library, it.Path)
	}
	return tr
}

func (p *pages) rows(its []index.Item, testID string) []trackRow {
	out := make([]trackRow, len(its))
	for i, it := range its {
		out[i] = p.row(it)
		out[i].TestID = testID
	}
	return out
}

// albumCard is one album of a grid.
type albumCard struct {
	Name, Artist, Href, Cover, TestID string
	Year, Tracks                      int
}

func (p *pages) cards(as []index.Album, testID string) []albumCard {
	out := make([]albumCard, len(as))
	for i, a := range as {
		out[i] = albumCard{Name: a.Name, Artist: a.Artist, Year: a.Year, Tracks: a.Tracks,
			Href: "/albums/" + url.PathEscape(a.ID), Cover: p.links.cover(a.CoverID, a.CoverID != ""), TestID: testID}
	}
	return out
}

// pager links the pages of a long list.
type pager struct {
	Page, Pages, Total int
	Prev, Next         string
}

// pageParam reads ?page= (1-based).
func pageParam(q url.Values) (int, error) {
	s := q.Get("page")
	if s == "" {
		return 1, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > maxOffset {
		return 0, badParam("page must be a whole number from 1")
	}
	return n, nil
}

// newPager makes the links of page n of total entries, per to a page;
// link gives a page's URL.
func newPager(n, per, total int, link func(int) string) pager {
	pg := pager{Page: n, Pages: max(1, (total+per-1)/per), Total: total}
	if n > 1 {
		pg.Prev = link(min(n-1, pg.Pages))
	}
	if n < pg.Pages {
		pg.Next = link(n + 1)
	}
	return pg
}

// securityHeaders are set on every page: no inline script, no framing.
// media names the origins besides this one that the page's player may
// stream from: the nodes a stream is redirected to (placement, direct).
func securityHeaders(h http.Header, media string) {
	h.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; media-src 'self'"+media+"; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "same-origin")
}

// render writes a page, buffered so that a template error is a clean 500.
func (p *pages) render(w http.ResponseWriter, r *http.Request, view string, pg page) {
	pg.HasIndex = p.x != nil
	v := viewerOf(r)
	pg.User = userView{Name: v.Account.Name, Admin: v.isAdmin() && !v.open, Open: v.open}
	var buf bytes.Buffer
	if err := p.tmpl[view].ExecuteTemplate(&buf, "layout", pg); err != nil {
		writeError(w, r, p.log, fmt.Errorf("render %s: %w", view, err))
		return
	}
	h := w.Header()
	securityHeaders(h, p.media)
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-cache")
	h.Set("Content-Length", strconv.Itoa(buf.Len()))
	if pg.status != 0 {
		w.WriteHeader(pg.status)
	}
	w.Write(buf.Bytes())
}

// handleIndexPage is the frame of the pages that need the index: 503
// without one; fn renders or returns an error.
func handleIndexPage(p *pages, fn func(w http.ResponseWriter, r *http.Request) error) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if p.x == nil {
			writeError(w, r, p.log, errNoIndex)
			return
		}
		if err := fn(w, r); err != nil {
			writeError(w, r, p.log, err)
		}
	})
}

// libraryRow is one library on the home page.
type libraryRow struct {
	Name, Href, Playlist string
	Indexed, Online      bool
	Error                string
	Items                int
}

type homeView struct {
	Libraries []libraryRow
	Scan      *scanView
}

// scanView is the scanner's state as the home page shows it; app.js
// updates it from /api/scan while a scan runs.
type scanView struct {
	Running bool
	Text    string
}

// scanText says what the scanner does, in one line for people.
func scanText(pr scan.Progress) string {
	switch {
	case pr.Running:
		s := "Scanning"
		if pr.Library != "" {
			s += " " + pr.Library
		}
		s += fmt.Sprintf(": %s files, %s probed, %s unchanged", formatCount(int(pr.Files)), formatCount(int(pr.Probed)), formatCount(int(pr.Unchanged)))
		if pr.Queued > 0 {
			s += fmt.Sprintf(", %s queued", formatCount(int(pr.Queued)))
		}
		if pr.ETA > 0 {
			s += ", about " + formatDuration(pr.ETA.Seconds()) + " left"
		}
		return s + "."
	case !pr.Finished.IsZero():
		return fmt.Sprintf("Last scan finished %s: %s files, %s probed, %s failed, %s removed.",
			pr.Finished.UTC().Format("2006-01-02 15:04 UTC"), formatCount(int(pr.Files)), formatCount(int(pr.Probed)),
			formatCount(int(pr.Failed)), formatCount(int(pr.Removed)))
	}
	return "No scan yet."
}

// home lists the libraries: those configured, in configuration order,
// with what the index knows of each.
func (p *pages) home(w http.ResponseWriter, r *http.Request, tree *library.Tree) {
	var known map[string]index.Library
	if p.x != nil {
		libs, err := p.x.Libraries(r.Context())
		if err != nil && !errors.Is(err, context.Canceled) {
			// The page is still useful without the counts.
			p.log.Warn("home: index libraries", "err", err)
		}
		known = make(map[string]index.Library, len(libs))
		for _, l := range libs {
			known[l.Name] = l
		}
	}
	var v homeView
	who := viewerOf(r)
	for _, name := range tree.Names() {
		if !who.may(name) {
			continue
		}
		lr := libraryRow{Name: name, Href: "/browse/" + escapePath(name) + "/", Playlist: "/playlist/" + escapePath(name) + ".m3u8"}
		if l, ok := known[name]; ok {
			lr.Indexed, lr.Online, lr.Error, lr.Items = true, l.Online, l.Error, l.Items
		}
		v.Libraries = append(v.Libraries, lr)
	}
	// The scan names libraries and files: admins only.
	if p.scanner != nil && who.isAdmin() {
		pr := p.scanner.Progress()
		v.Scan = &scanView{Running: pr.Running, Text: scanText(pr)}
	}
	p.render(w, r, "home", page{Title: "Libraries", Section: "home", Crumbs: []crumb{{"Libraries", "/browse/"}}, View: v})
}

// folderCrumbs is the trail from the libraries to a folder (a virtual
// path: library, then the folders inside it).
func folderCrumbs(vpath string) []crumb {
	c := []crumb{{"Libraries", "/browse/"}}
	segs := strings.Split(vpath, "/")
	for i := range segs {
		c = append(c, crumb{segs[i], "/browse/" + escapePath(strings.Join(segs[:i+1], "/")) + "/"})
	}
	return c
}

type folderView struct {
	// Rows are a folder's entries, with Kind "folder" for its folders.
	// They are flat (no embedded struct): html/template looks up a field
	// promoted from an embedded one slowly, and a page has 200 rows.
	Rows    []trackRow
	Cover   string
	Actions setActions
	Pager   pager
}

// handleBrowse lists the libraries (at / and /browse/) or a folder: the
// disk says what is there, the index (when it has the folder) adds titles,
// artists, durations and covers.
func handleBrowse(tree *library.Tree, p *pages) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		vpath := strings.TrimSuffix(r.PathValue("path"), "/")
		if vpath == "" {
			p.home(w, r, tree)
			return
		}
		fi, err := tree.Stat(r.Context(), vpath)
		if err != nil {
			writeError(w, r, p.log, err)
			return
		}
		if !fi.IsDir() {
			http.Redirect(w, r, "/stream/"+escapePath(vpath), http.StatusFound)
			return
		}
		n, err := pageParam(r.URL.Query())
		if err != nil {
			writeError(w, r, p.log, err)
			return
		}
		entries, err := tree.ReadDir(r.Context(), vpath)
		if err != nil {
			writeError(w, r, p.log, err)
			return
		}
		segs := strings.Split(vpath, "/")
		pg := page{Title: segs[len(segs)-1], Section: "home", Crumbs: folderCrumbs(vpath)}
		esc := escapePath(vpath)
		v := folderView{Actions: setActions{Label: "This folder", Playlists: playlistLinks("/playlist/"+esc, "")}}
		v.Pager = newPager(n, folderPerPage, len(entries), func(i int) string {
			return "/browse/" + esc + "/?page=" + strconv.Itoa(i)
		})
		from := min((n-1)*folderPerPage, len(entries))
		entries = entries[from:min(from+folderPerPage, len(entries))]
		var indexed map[string]index.Item
		if slices.ContainsFunc(entries, isMedia) {
			// A folder of folders (a library's root, an artist's) has
			// nothing for the index to add.
			indexed = p.indexed(r.Context(), segs[0], strings.Join(segs[1:], "/"))
		}
		for _, e := range entries {
			ep := escapePath(e.Path)
			fr := trackRow{Name: e.Name, Title: e.Name, Kind: e.Kind.String(), Size: e.Size, Playlist: "/playlist/" + ep + ".m3u8"}
			switch {
			case e.IsDir:
				fr.Href = "/browse/" + ep + "/"
				fr.Kind = "folder"
			default:
				fr.Href = "/stream/" + ep
				fr.Stream = fr.Href
				if !isMedia(e) {
					fr.Playlist = ""
					break
				}
				if e.Kind == media.Video {
					fr.Watch = "/watch/" + ep
				}
				if it, ok := indexed[e.Name]; ok {
					// The disk's name, size and kind stay: the index may be
					// a scan behind.
					ir := p.row(it)
					fr.ID, fr.Title, fr.Artist, fr.Album, fr.AlbumHref = ir.ID, ir.Title, ir.Artist, ir.Album, ir.AlbumHref
					fr.Duration, fr.Cover, fr.Details, fr.Track = ir.Duration, ir.Cover, ir.Details, ir.Track
					fr.Href = ir.Details
					if v.Cover == "" {
						v.Cover = ir.Cover
					}
				}
			}
			v.Rows = append(v.Rows, fr)
		}
		pg.View = v
		p.render(w, r, "browse", pg)
	})
}

// isMedia reports whether a folder entry is an audio or video file.
func isMedia(e library.Entry) bool {
	return !e.IsDir && (e.Kind == media.Audio || e.Kind == media.Video)
}

// indexed returns the index's items of a folder by file name; nothing when
// there is no index or it does not have the folder yet.
func (p *pages) indexed(ctx context.Context, lib, rel string) map[string]index.Item {
	if p.x == nil {
		return nil
	}
	ls, err := p.x.Browse(ctx, lib, rel)
	if err != nil {
		if !errors.Is(err, fs.ErrNotExist) && !errors.Is(err, context.Canceled) {
			p.log.Warn("browse: index", "library", lib, "path", rel, "err", err)
		}
		return nil
	}
	m := make(map[string]index.Item, len(ls.Items))
	for _, it := range ls.Items {
		m[it.Name] = it
	}
	return m
}

type albumsView struct {
	Albums []albumCard
	Pager  pager
}

func handleAlbumsPage(p *pages) http.Handler {
	return handleIndexPage(p, func(w http.ResponseWriter, r *http.Request) error {
		n, err := pageParam(r.URL.Query())
		if err != nil {
			return err
		}
		as, total, err := p.x.Albums(r.Context(), index.Page{Limit: albumsPerPage, Offset: (n - 1) * albumsPerPage})
		if err != nil {
			return err
		}
		v := albumsView{Albums: p.cards(as, ""), Pager: newPager(n, albumsPerPage, total, func(i int) string { return "/albums?page=" + strconv.Itoa(i) })}
		p.render(w, r, "albums", page{Title: "Albums", Section: "albums", View: v})
		return nil
	})
}

type albumView struct {
	index.Album
	Cover   string
	Tracks  []trackRow
	Actions setActions
}

func handleAlbumPage(p *pages) http.Handler {
	return handleIndexPage(p, func(w http.ResponseWriter, r *http.Request) error {
		a, its, err := p.x.Album(r.Context(), r.PathValue("id"))
		if err != nil {
			return err
		}
		id := url.PathEscape(a.ID)
		v := albumView{Album: a, Cover: p.links.cover(a.CoverID, a.CoverID != ""), Tracks: p.rows(its, ""),
			Actions: setActions{Label: "This album", Playlists: playlistLinks("/api/albums/"+id+"/playlist", "")}}
		p.render(w, r, "album", page{Title: a.Name, Section: "albums",
			Crumbs: []crumb{{"Albums", "/albums"}, {a.Name, "/albums/" + id}}, View: v})
		return nil
	})
}

type artistsView struct {
	Artists []artistRow
	Pager   pager
}

// artistRow is one artist of a list; flat, as trackRow is.
type artistRow struct {
	Name, Href, TestID string
	Albums, Tracks     int
}

func artistRows(as []index.Artist, testID string) []artistRow {
	out := make([]artistRow, len(as))
	for i, a := range as {
		out[i] = artistRow{Name: a.Name, Albums: a.Albums, Tracks: a.Tracks, Href: "/artists/" + url.PathEscape(a.ID), TestID: testID}
	}
	return out
}

func handleArtistsPage(p *pages) http.Handler {
	return handleIndexPage(p, func(w http.ResponseWriter, r *http.Request) error {
		n, err := pageParam(r.URL.Query())
		if err != nil {
			return err
		}
		as, total, err := p.x.Artists(r.Context(), index.Page{Limit: artistsPerPage, Offset: (n - 1) * artistsPerPage})
		if err != nil {
			return err
		}
		v := artistsView{Artists: artistRows(as, ""), Pager: newPager(n, artistsPerPage, total, func(i int) string { return "/artists?page=" + strconv.Itoa(i) })}
		p.render(w, r, "artists", page{Title: "Artists", Section: "artists", View: v})
		return nil
	})
}

type artistView struct {
	index.Artist
	Albums  []albumCard
	Tracks  []trackRow
	Actions setActions
}

func handleArtistPage(p *pages) http.Handler {
	return handleIndexPage(p, func(w http.ResponseWriter, r *http.Request) error {
		a, albums, its, err := artistTracks(r.Context(), p.x, r.PathValue("id"), artistPageTracks)
		if err != nil {
			return err
		}
		id := url.PathEscape(a.ID)
		v := artistView{Artist: a, Albums: p.cards(albums, ""), Tracks: p.rows(its, ""),
			Actions: setActions{Label: "This artist", Playlists: playlistLinks("/api/artists/"+id+"/playlist", "")}}
		p.render(w, r, "artist", page{Title: a.Name, Section: "artists",
			Crumbs: []crumb{{"Artists", "/artists"}, {a.Name, "/artists/" + id}}, View: v})
		return nil
	})
}

type searchView struct {
	Query   string
	Total   int
	Items   []trackRow
	Albums  []albumCard
	Artists []artistRow
	Actions setActions
	Pager   pager
	Error   string // the query's mistake, shown on the page
}

// handleSearchPage is the search page: what app.js renders as you type,
// and the answer to the search form without script.
func handleSearchPage(p *pages) http.Handler {
	return handleIndexPage(p, func(w http.ResponseWriter, r *http.Request) error {
		qv := r.URL.Query()
		q := strings.TrimSpace(qv.Get("q"))
		pg := page{Title: "Search", Section: "search", Query: q}
		v := searchView{Query: q}
		if q == "" {
			pg.View = v
			p.render(w, r, "search", pg)
			return nil
		}
		pg.Title = q + " – Search"
		if _, err := queryOf(qv); err != nil {
			return err
		}
		n, err := pageParam(qv)
		if err != nil {
			return err
		}
		res, err := p.x.Search(r.Context(), q, index.Page{Limit: resultsPerPage, Offset: (n - 1) * resultsPerPage})
		var qe *index.QueryError
		if errors.As(err, &qe) {
			// A mistake in the query is shown with the form, to correct.
			pg.status = http.StatusBadRequest
			v.Error = qe.Msg
			pg.View = v
			p.render(w, r, "search", pg)
			return nil
		}
		if err != nil {
			return err
		}
		qs := "?q=" + url.QueryEscape(q)
		v.Total, v.Items = res.Total, p.rows(res.Items, "result")
		if n == 1 {
			v.Albums, v.Artists = p.cards(res.Albums, "result-album"), artistRows(res.Artists, "result-artist")
		}
		v.Actions = setActions{Label: "These results", Playlists: playlistLinks("/api/search/playlist", qs)}
		v.Pager = newPager(n, resultsPerPage, res.Total, func(i int) string { return "/search" + qs + "&page=" + strconv.Itoa(i) })
		pg.View = v
		p.render(w, r, "search", pg)
		return nil
	})
}

type itemView struct {
	index.Item
	Row      trackRow
	Folder   string // the folder page
	Playlist string
}

func handleItemPage(p *pages) http.Handler {
	return handleIndexPage(p, func(w http.ResponseWriter, r *http.Request) error {
		it, err := p.x.Item(r.Context(), r.PathValue("id"))
		if err != nil {
			return err
		}
		dir := path.Dir(it.Path)
		if dir == "." {
			dir = ""
		}
		v := itemView{Item: it, Row: p.row(it), Folder: p.links.browse(it.Library, dir),
			Playlist: "/playlist/" + escapePath(joinVirtual(it.Library, it.Path)) + ".m3u8"}
		p.render(w, r, "item", page{Title: v.Row.Title, Section: "home", Crumbs: folderCrumbs(joinVirtual(it.Library, dir)), View: v})
		return nil
	})
}

type watchView struct {
	trackRow
	Folder string
	Poster string
}

// handleWatch is the video player page of a file: it works from the disk
// (the index, when it has the file, adds the title).
func handleWatch(tree *library.Tree, p *pages) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		vpath := r.PathValue("path")
		fi, err := tree.Stat(r.Context(), vpath)
		if err == nil && (fi.IsDir() || !media.Playable(fi.Name())) {
			err = fmt.Errorf("watch %s: not a media file: %w", vpath, fs.ErrNotExist)
		}
		if err != nil {
			writeError(w, r, p.log, err)
			return
		}
		lib, rel, _ := strings.Cut(vpath, "/")
		ep := escapePath(vpath)
		v := watchView{trackRow: trackRow{Name: fi.Name(), Title: fi.Name(), Kind: media.KindOf(fi.Name()).String(),
			Size: fi.Size(), Stream: "/stream/" + ep, Playlist: "/playlist/" + ep + ".m3u8"}}
		if p.x != nil {
			it, err := p.x.ItemAt(r.Context(), lib, rel)
			switch {
			case err == nil:
				ir := p.row(it)
				v.ID, v.Title, v.Artist, v.Duration, v.Details, v.Cover = ir.ID, ir.Title, ir.Artist, ir.Duration, ir.Details, ir.Cover
			case !errors.Is(err, index.ErrNotFound):
				// The page plays without the tags, as folder pages do.
				p.log.Warn("watch: index", "library", lib, "path", rel, "err", err)
			}
		}
		if v.Cover != "" {
			v.Poster = v.Cover + "?size=512"
		}
		dir := path.Dir(rel)
		if dir == "." {
			dir = ""
		}
		v.Folder = p.links.browse(lib, dir)
		p.render(w, r, "watch", page{Title: v.Title, Section: "home", Crumbs: folderCrumbs(joinVirtual(lib, dir)), View: v})
	})
}

// humanSize formats a byte count for people: 1.5 MB.
func humanSize(n int64) string {
	const unit = 1000
	if n < unit {
		return strconv.FormatInt(n, 10) + " B"
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return strconv.FormatFloat(float64(n)/float64(div), 'f', 1, 64) + " " + string("kMGTPE"[exp]) + "B"
}

// formatDuration formats seconds as m:ss or h:mm:ss; "" when unknown.
func formatDuration(s float64) string {
	if s <= 0 || math.IsNaN(s) || math.IsInf(s, 0) {
		return ""
	}
	t := int64(math.Round(s))
	h, m, sec := t/3600, t/60%60, t%60
	if h > 0 {
		return fmt.Sprintf("%d:%02d:%02d", h, m, sec)
	}
	return fmt.Sprintf("%d:%02d", m, sec)
}

// formatBitrate formats bits per second as kbit/s or Mbit/s.
func formatBitrate(bps int64) string {
	switch {
	case bps <= 0:
		return ""
	case bps >= 10_000_000:
		return strconv.FormatFloat(float64(bps)/1e6, 'f', 1, 64) + " Mbit/s"
	}
	return strconv.FormatInt((bps+500)/1000, 10) + " kbit/s"
}

// plural writes a count with its noun: "1 track", "12,345 tracks".
func plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return formatCount(n) + " " + many
}

// formatCount writes a count with thousands separators: 12,345.
func formatCount(n int) string {
	s := strconv.Itoa(n)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}
