package web

import (
	"net/http"
	"strings"
)

// routes registers every route of the server. Keep these paths stable:
// players, playlists and other tools hold links to them (docs/api.md).
func (s *Server) routes(mux *http.ServeMux) {
	x, log, tree, l := s.opts.Index, s.opts.Logger, s.opts.Tree, s.links
	mux.Handle("GET /healthz", handleHealthz())
	mux.Handle("GET /readyz", handleReadyz(s.opts.Ready))

	// Pages.
	mux.Handle("GET /{$}", handleBrowse(tree, s.pages))
	mux.Handle("GET /browse/{path...}", handleBrowse(tree, s.pages))
	mux.Handle("GET /watch/{path...}", handleWatch(tree, s.pages))
	mux.Handle("GET /albums", handleAlbumsPage(s.pages))
	mux.Handle("GET /albums/{id}", handleAlbumPage(s.pages))
	mux.Handle("GET /artists", handleArtistsPage(s.pages))
	mux.Handle("GET /artists/{id}", handleArtistPage(s.pages))
	mux.Handle("GET /search", handleSearchPage(s.pages))
	mux.Handle("GET /items/{id}", handleItemPage(s.pages))
	mux.Handle("POST /scan", handleScanForm(s.opts.Scanner, log))
	mux.Handle("GET /static/", handleStatic())

	// Files and folder playlists.
	mux.Handle("GET /stream/{path...}", s.stream)
	mux.Handle("GET /playlist/{path...}", handlePlaylist(tree, s.proxies, log))

	// The JSON API.
	mux.Handle("GET /api/libraries", handleAPILibraries(x, l, log))
	mux.Handle("GET /api/browse/{path...}", handleAPIBrowse(x, l, log))
	mux.Handle("GET /api/items/{id}", handleAPIItem(x, l, log))
	mux.Handle("GET /api/search", handleAPISearch(x, l, log))
	mux.Handle("GET /api/search/{file}", handleSetPlaylist(x, s.proxies, l, log, searchSet))
	mux.Handle("GET /api/albums", handleAPIAlbums(x, l, log))
	mux.Handle("GET /api/albums/{id}", handleAPIAlbum(x, l, log))
	mux.Handle("GET /api/albums/{id}/{file}", handleSetPlaylist(x, s.proxies, l, log, albumSet))
	mux.Handle("GET /api/artists", handleAPIArtists(x, log))
	mux.Handle("GET /api/artists/{id}", handleAPIArtist(x, l, log))
	mux.Handle("GET /api/artists/{id}/{file}", handleSetPlaylist(x, s.proxies, l, log, artistSet))
	mux.Handle("GET /api/covers/{id}", handleCover(s.opts.Covers, log))
	mux.Handle("GET /api/scan", handleScanProgress(s.opts.Scanner, log))
	mux.Handle("POST /api/scan", handleScanStart(s.opts.Scanner, log))

	if s.opts.Metrics != nil {
		mux.Handle("GET /metrics", s.opts.Metrics)
	}
}

// shortcut sends a GET or HEAD of a clean /stream/ path straight to the
// stream handler, with the path value the mux would give it, and every
// other request to mux. Streams are most of a server's requests, and the
// mux's matching allocates (TestShortcutMatchesMux and FuzzShortcut check
// that both routes give the same handler the same path). A path the mux
// would redirect (not clean) or that has escapes net/http keeps in RawPath
// (an encoded slash) always goes through the mux.
func (s *Server) shortcut(mux *http.ServeMux) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if rest, ok := streamPath(r); ok {
			s.stream.serve(w, r, rest)
			return
		}
		mux.ServeHTTP(w, r)
	})
}

// streamPath returns the {path...} value of "GET /stream/{path...}" for r
// when the mux would route r there without a redirect, and can be sure of
// it by looking at r.URL.Path alone.
func streamPath(r *http.Request) (string, bool) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		return "", false
	}
	p := r.URL.Path
	rest, ok := strings.CutPrefix(p, "/stream/")
	if !ok || r.URL.RawPath != "" || !isClean(p) {
		return "", false
	}
	return rest, true
}

// isClean reports whether p (starting with "/") has no empty, "." or ".."
// segment except a trailing empty one: path.Clean would leave it as it
// is, trailing slash aside, so the mux does not redirect.
func isClean(p string) bool {
	for i := 1; i <= len(p); {
		j := strings.IndexByte(p[i:], '/')
		if j < 0 {
			j = len(p) - i
		}
		seg := p[i : i+j]
		last := i+j >= len(p)
		if (seg == "" && !last) || seg == "." || seg == ".." {
			return false
		}
		i += j + 1
	}
	return true
}
