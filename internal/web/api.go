package web

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"mustserv/internal/index"
)

// The JSON API (docs/api.md). Every answer is an object, every error
// {"error": "..."}; items carry the URLs a client needs, escaped here so
// that names which are not valid UTF-8 (which JSON cannot carry) still
// reach the right file.

// links builds the URLs that the API and the pages hand out.
type links struct {
	covers bool // whether /api/covers/ serves anything
}

// stream is the /stream/ URL of a file, escaped segment by segment.
func (links) stream(library, p string) string {
	return "/stream/" + escapePath(joinVirtual(library, p))
}

// browseAPI is the /api/browse/ URL of a folder.
func (links) browseAPI(library, p string) string {
	return "/api/browse/" + escapePath(joinVirtual(library, p))
}

// browse is the folder page of a folder.
func (links) browse(library, p string) string {
	return "/browse/" + escapePath(joinVirtual(library, p)) + "/"
}

// watch is the video player page of a file.
func (links) watch(library, p string) string {
	return "/watch/" + escapePath(joinVirtual(library, p))
}

// cover is the /api/covers/ URL of an item or album with a picture, or ""
// when it has none or nothing serves covers.
func (l links) cover(id string, has bool) string {
	if !l.covers || !has || id == "" {
		return ""
	}
	return "/api/covers/" + url.PathEscape(id)
}

func joinVirtual(library, p string) string {
	if p == "" {
		return library
	}
	return library + "/" + p
}

// apiItem is an item as the API shows it.
type apiItem struct {
	index.Item
	Stream string `json:"stream"`
	Cover  string `json:"cover,omitempty"`
}

type apiAlbum struct {
	index.Album
	Cover string `json:"cover,omitempty"`
}

type apiFolder struct {
	index.Folder
	Browse string `json:"browse"`
}

type apiLibrary struct {
	index.Library
	Browse string `json:"browse"`
}

func (l links) item(it index.Item) apiItem {
	return apiItem{Item: it, Stream: l.stream(it.Library, it.Path), Cover: l.cover(it.ID, it.HasCover)}
}

// items, albums and libraries never return nil: an empty list is [] in
// JSON, not null.
func (l links) items(its []index.Item) []apiItem {
	out := make([]apiItem, len(its))
	for i, it := range its {
		out[i] = l.item(it)
	}
	return out
}

func (l links) album(a index.Album) apiAlbum {
	return apiAlbum{Album: a, Cover: l.cover(a.CoverID, a.CoverID != "")}
}

func (l links) albums(as []index.Album) []apiAlbum {
	out := make([]apiAlbum, len(as))
	for i, a := range as {
		out[i] = l.album(a)
	}
	return out
}

func (l links) libraries(ls []index.Library) []apiLibrary {
	out := make([]apiLibrary, len(ls))
	for i, lb := range ls {
		out[i] = apiLibrary{Library: lb, Browse: l.browseAPI(lb.Name, "")}
	}
	return out
}

// nonNil makes an empty list [] in JSON rather than null.
func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

// handleAPI is the frame of every index-backed JSON route: 503 without an
// index, then fn's answer as JSON, or its error as a JSON error.
func handleAPI(x *index.Index, log *slog.Logger, fn func(r *http.Request, x *index.Index) (any, error)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if x == nil {
			writeJSONError(w, r, log, errNoIndex)
			return
		}
		v, err := fn(r, x)
		if err != nil {
			writeJSONError(w, r, log, err)
			return
		}
		writeJSON(w, r, log, http.StatusOK, v)
	})
}

// writeJSON writes v as the response, indented: people read this API with
// curl, and the bytes it adds are few next to a page's.
func writeJSON(w http.ResponseWriter, r *http.Request, log *slog.Logger, code int, v any) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		writeJSONError(w, r, log, fmt.Errorf("encode: %w", err))
		return
	}
	h := w.Header()
	h.Set("Content-Type", "application/json; charset=utf-8")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Content-Length", strconv.Itoa(buf.Len()))
	w.WriteHeader(code)
	w.Write(buf.Bytes())
}

// writeJSONError is writeError for the API: the same status, with a
// message fit for the client in {"error": ...}.
func writeJSONError(w http.ResponseWriter, r *http.Request, log *slog.Logger, err error) {
	code := statusOf(err)
	logFailure(r, log, code, err)
	b, _ := json.Marshal(struct {
		Error string `json:"error"`
	}{clientMessage(err, code)})
	h := w.Header()
	h.Set("Content-Type", "application/json; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	w.Write(append(b, '\n'))
}

// Page bounds. The index caps a page at 500 itself; checking here lets a
// client learn of its mistake rather than get a shorter page.
const (
	defaultLimit = 50
	maxLimit     = 500
	maxOffset    = 10_000_000
	maxQuery     = 500 // bytes of a search query
)

// pageOf reads ?limit= and ?offset=.
func pageOf(q url.Values, def int) (index.Page, error) {
	p := index.Page{Limit: def}
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > maxLimit {
			return p, badParam(fmt.Sprintf("limit must be a whole number from 1 to %d", maxLimit))
		}
		p.Limit = n
	}
	if s := q.Get("offset"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 || n > maxOffset {
			return p, badParam(fmt.Sprintf("offset must be a whole number from 0 to %d", maxOffset))
		}
		p.Offset = n
	}
	return p, nil
}

// queryOf reads ?q=, which must be there.
func queryOf(q url.Values) (string, error) {
	s := strings.TrimSpace(q.Get("q"))
	switch {
	case s == "":
		return "", badParam("q is required")
	case len(s) > maxQuery:
		return "", badParam(fmt.Sprintf("q is longer than %d bytes", maxQuery))
	case !utf8.ValidString(s):
		return "", badParam("q is not valid UTF-8")
	}
	return s, nil
}

type apiLibraries struct {
	Libraries []apiLibrary `json:"libraries"`
}

func libraries(r *http.Request, x *index.Index, l links) (any, error) {
	libs, err := x.Libraries(r.Context())
	if err != nil {
		return nil, err
	}
	return apiLibraries{Libraries: l.libraries(libs)}, nil
}

func handleAPILibraries(x *index.Index, l links, log *slog.Logger) http.Handler {
	return handleAPI(x, log, func(r *http.Request, x *index.Index) (any, error) { return libraries(r, x, l) })
}

type apiListing struct {
	index.Folder
	Folders []apiFolder `json:"folders"`
	Items   []apiItem   `json:"items"`
}

// handleAPIBrowse lists a folder of the index; the empty path lists the
// libraries, as /api/libraries does.
func handleAPIBrowse(x *index.Index, l links, log *slog.Logger) http.Handler {
	return handleAPI(x, log, func(r *http.Request, x *index.Index) (any, error) {
		vpath := strings.Trim(r.PathValue("path"), "/")
		if vpath == "" {
			return libraries(r, x, l)
		}
		lib, p, _ := strings.Cut(vpath, "/")
		ls, err := x.Browse(r.Context(), lib, p)
		if err != nil {
			return nil, err
		}
		out := apiListing{Folder: ls.Folder, Folders: make([]apiFolder, len(ls.Folders)), Items: l.items(ls.Items)}
		for i, f := range ls.Folders {
			out.Folders[i] = apiFolder{Folder: f, Browse: l.browseAPI(f.Library, f.Path)}
		}
		return out, nil
	})
}

func handleAPIItem(x *index.Index, l links, log *slog.Logger) http.Handler {
	return handleAPI(x, log, func(r *http.Request, x *index.Index) (any, error) {
		it, err := x.Item(r.Context(), r.PathValue("id"))
		if err != nil {
			return nil, err
		}
		return l.item(it), nil
	})
}

type apiSearch struct {
	Query   string         `json:"query"`
	Total   int            `json:"total"`
	Limit   int            `json:"limit"`
	Offset  int            `json:"offset"`
	Items   []apiItem      `json:"items"`
	Albums  []apiAlbum     `json:"albums"`
	Artists []index.Artist `json:"artists"`
}

func handleAPISearch(x *index.Index, l links, log *slog.Logger) http.Handler {
	return handleAPI(x, log, func(r *http.Request, x *index.Index) (any, error) {
		qv := r.URL.Query()
		q, err := queryOf(qv)
		if err != nil {
			return nil, err
		}
		p, err := pageOf(qv, defaultLimit)
		if err != nil {
			return nil, err
		}
		res, err := x.Search(r.Context(), q, p)
		if err != nil {
			return nil, err
		}
		return apiSearch{Query: res.Query, Total: res.Total, Limit: p.Limit, Offset: p.Offset,
			Items: l.items(res.Items), Albums: l.albums(res.Albums), Artists: nonNil(res.Artists)}, nil
	})
}

type apiAlbums struct {
	Total  int        `json:"total"`
	Limit  int        `json:"limit"`
	Offset int        `json:"offset"`
	Albums []apiAlbum `json:"albums"`
}

func handleAPIAlbums(x *index.Index, l links, log *slog.Logger) http.Handler {
	return handleAPI(x, log, func(r *http.Request, x *index.Index) (any, error) {
		p, err := pageOf(r.URL.Query(), defaultLimit)
		if err != nil {
			return nil, err
		}
		as, total, err := x.Albums(r.Context(), p)
		if err != nil {
			return nil, err
		}
		return apiAlbums{Total: total, Limit: p.Limit, Offset: p.Offset, Albums: l.albums(as)}, nil
	})
}

type apiAlbumDetail struct {
	apiAlbum
	Items []apiItem `json:"items"`
}

func handleAPIAlbum(x *index.Index, l links, log *slog.Logger) http.Handler {
	return handleAPI(x, log, func(r *http.Request, x *index.Index) (any, error) {
		a, its, err := x.Album(r.Context(), r.PathValue("id"))
		if err != nil {
			return nil, err
		}
		return apiAlbumDetail{apiAlbum: l.album(a), Items: l.items(its)}, nil
	})
}

type apiArtists struct {
	Total   int            `json:"total"`
	Limit   int            `json:"limit"`
	Offset  int            `json:"offset"`
	Artists []index.Artist `json:"artists"`
}

func handleAPIArtists(x *index.Index, log *slog.Logger) http.Handler {
	return handleAPI(x, log, func(r *http.Request, x *index.Index) (any, error) {
		p, err := pageOf(r.URL.Query(), defaultLimit)
		if err != nil {
			return nil, err
		}
		as, total, err := x.Artists(r.Context(), p)
		if err != nil {
			return nil, err
		}
		return apiArtists{Total: total, Limit: p.Limit, Offset: p.Offset, Artists: nonNil(as)}, nil
	})
}

type apiArtistDetail struct {
	index.Artist
	Albums []apiAlbum `json:"albums"`
	Items  []apiItem  `json:"items"` // tracks on no album
}

func handleAPIArtist(x *index.Index, l links, log *slog.Logger) http.Handler {
	return handleAPI(x, log, func(r *http.Request, x *index.Index) (any, error) {
		a, albums, its, err := x.Artist(r.Context(), r.PathValue("id"))
		if err != nil {
			return nil, err
		}
		return apiArtistDetail{Artist: a, Albums: l.albums(albums), Items: l.items(its)}, nil
	})
}

// coverSizes are the sizes /api/covers/ makes: few, so that the cover
// package can cache each, and browsers share them between pages.
var coverSizes = map[string]int{"": 256, "0": 0, "64": 64, "128": 128, "256": 256, "512": 512}

// coverTypes are the picture types served as themselves. Anything else is
// sent as bytes: a cover comes from a file in a library, and an embedded
// "image/svg+xml" or "text/html" served as such would run its script on
// this origin.
var coverTypes = map[string]string{
	"image/jpeg": "image/jpeg", "image/jpg": "image/jpeg", "image/pjpeg": "image/jpeg",
	"image/png": "image/png", "image/gif": "image/gif", "image/webp": "image/webp",
	"image/avif": "image/avif", "image/bmp": "image/bmp",
}

// handleCover serves the picture of an item or album with a strong ETag
// from its bytes: the same picture keeps its validator across rescans and
// nodes, and a browser revalidating gets 304. Range and conditional
// requests follow http.ServeContent.
func handleCover(c Covers, log *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if c == nil {
			writeJSONError(w, r, log, errNoCovers)
			return
		}
		size, ok := coverSizes[r.URL.Query().Get("size")]
		if !ok {
			writeJSONError(w, r, log, badParam("size must be 64, 128, 256, 512, or 0 for the original"))
			return
		}
		data, mime, err := c.Cover(r.Context(), r.PathValue("id"), size)
		if err != nil {
			writeJSONError(w, r, log, err)
			return
		}
		ctype, ok := coverTypes[strings.ToLower(strings.TrimSpace(mime))]
		if !ok {
			ctype = "application/octet-stream"
		}
		sum := sha256.Sum256(data)
		h := w.Header()
		h.Set("Content-Type", ctype)
		h.Set("ETag", `"`+base64.RawURLEncoding.EncodeToString(sum[:18])+`"`)
		h.Set("Cache-Control", "private, max-age=86400")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Content-Security-Policy", "default-src 'none'; sandbox")
		http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(data))
	})
}

func handleScanProgress(s Scanner, log *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s == nil {
			writeJSONError(w, r, log, errNoScanner)
			return
		}
		writeJSON(w, r, log, http.StatusOK, s.Progress())
	})
}

// handleScanStart starts a scan: 202 with the progress, or 409 with it
// when one is running already. (Cross-origin POSTs are refused for the
// whole server, in New.)
func handleScanStart(s Scanner, log *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s == nil {
			writeJSONError(w, r, log, errNoScanner)
			return
		}
		code := http.StatusAccepted
		if !s.Start() {
			code = http.StatusConflict
		}
		writeJSON(w, r, log, code, s.Progress())
	})
}

// handleScanForm is the Rescan button of the home page without script: it
// starts a scan and sends the browser back home (303: see other).
func handleScanForm(s Scanner, log *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s == nil {
			writeError(w, r, log, errNoScanner)
			return
		}
		s.Start()
		http.Redirect(w, r, "/", http.StatusSeeOther)
	})
}
