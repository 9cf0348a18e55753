package web

import (
	"net/http"
	"strings"
)

// routes registers every route of the server with who may use it. Keep
// these paths stable: players, playlists and other tools hold links to
// them (docs/api.md). TestAuthorizationMatrix checks every route here
// against its table of expected statuses.
func (s *Server) routes(mux *http.ServeMux) {
	x, log, tree, l := s.opts.Index, s.opts.Logger, s.opts.Tree, s.links
	handle := func(pattern string, a access, h http.Handler) {
		rt := route{Pattern: pattern, Access: a, Library: strings.HasSuffix(pattern, "{path...}")}
		s.routeList = append(s.routeList, rt)
		mux.Handle(pattern, s.guard(rt, h))
	}
	handle("GET /healthz", public, handleHealthz())
	handle("GET /readyz", public, handleReadyz(s.opts.Node))
	handle("GET /static/", public, handleStatic())

	// Signing in.
	handle("GET /login", public, s.handleLoginPage())
	handle("POST /login", public, s.handleLogin())
	handle("POST /logout", public, s.handleLogout())
	handle("GET /setup", public, s.handleSetupPage())
	handle("POST /setup", public, s.handleSetup())
	handle("GET /api/me", member, s.handleMe())

	// Pages.
	handle("GET /{$}", member, handleBrowse(tree, s.pages))
	handle("GET /browse/{path...}", member, handleBrowse(tree, s.pages))
	handle("GET /watch/{path...}", member, handleWatch(tree, s.pages))
	handle("GET /albums", member, handleAlbumsPage(s.pages))
	handle("GET /albums/{id}", member, handleAlbumPage(s.pages))
	handle("GET /artists", member, handleArtistsPage(s.pages))
	handle("GET /artists/{id}", member, handleArtistPage(s.pages))
	handle("GET /search", member, handleSearchPage(s.pages))
	handle("GET /items/{id}", member, handleItemPage(s.pages))
	handle("POST /scan", admin, handleScanForm(s.opts.Scanner, log))

	// Files and folder playlists.
	handle("GET /stream/{path...}", linked, s.stream)
	handle("GET /playlist/{path...}", linked, s.handlePlaylist())

	// The JSON API.
	handle("GET /api/libraries", member, handleAPILibraries(x, l, log))
	handle("GET /api/browse/{path...}", member, handleAPIBrowse(x, l, log))
	handle("GET /api/items/{id}", member, handleAPIItem(x, l, log))
	handle("GET /api/search", member, handleAPISearch(x, l, log))
	handle("GET /api/search/{file}", linked, s.handleSetPlaylist(searchSet))
	handle("GET /api/albums", member, handleAPIAlbums(x, l, log))
	handle("GET /api/albums/{id}", member, handleAPIAlbum(x, l, log))
	handle("GET /api/albums/{id}/{file}", linked, s.handleSetPlaylist(albumSet))
	handle("GET /api/artists", member, handleAPIArtists(x, log))
	handle("GET /api/artists/{id}", member, handleAPIArtist(x, l, log))
	handle("GET /api/artists/{id}/{file}", linked, s.handleSetPlaylist(artistSet))
	handle("GET /api/covers/{id}", member, handleCover(s.opts.Covers, log))
	// The scan's progress names libraries and files: admins only.
	handle("GET /api/scan", admin, handleScanProgress(s.opts.Scanner, log))
	handle("POST /api/scan", admin, handleScanStart(s.opts.Scanner, log))

	// Administration (admin.go) and the user's own account (account.go).
	ad := newAdminPages(s)
	handle("GET /admin", admin, ad.handleOverview())
	handle("GET /admin/users", admin, ad.handleUsers())
	handle("POST /admin/users", admin, ad.handleCreateUser())
	handle("GET /admin/users/{id}", admin, ad.handleUser())
	handle("POST /admin/users/{id}", admin, ad.handleSetAccess())
	handle("POST /admin/users/{id}/password", admin, ad.handleSetPassword())
	handle("POST /admin/users/{id}/revoke", admin, ad.handleRevoke())
	handle("POST /admin/users/{id}/delete", admin, ad.handleDeleteUser())
	handle("POST /admin/users/{id}/keys", admin, ad.handleCreateKey())
	handle("POST /admin/users/{id}/keys/{key}/delete", admin, ad.handleDeleteKey())
	handle("GET /admin/libraries", admin, ad.handleLibraries())
	handle("POST /admin/libraries", admin, ad.handleAddLibrary())
	handle("POST /admin/libraries/{name}/delete", admin, ad.handleRemoveLibrary())
	handle("POST /admin/rescan", admin, ad.handleRescan())
	handle("POST /admin/drain", admin, ad.handleDrain())
	handle("GET /admin/pacing", admin, ad.handlePacing())
	handle("POST /admin/pacing", admin, ad.handleSetPacing())
	handle("GET /admin/security", admin, ad.handleSecurity())
	handle("POST /admin/security/rotate", admin, ad.handleRotate())
	handle("GET /admin/streams", admin, ad.handleStreams())
	handle("POST /admin/streams/{id}/stop", admin, ad.handleStopStream())
	handle("GET /api/admin/streams", admin, ad.handleAPIStreams())
	handle("GET /account", member, ad.handleAccount())
	handle("POST /account/password", member, ad.handleOwnPassword())
	handle("POST /account/keys", member, ad.handleOwnKey())
	handle("POST /account/keys/{key}/delete", member, ad.handleOwnKeyDelete())

	if s.opts.Metrics != nil {
		handle(metricsRoute, admin, s.opts.Metrics)
	}
}

// streamRoute is the stream's entry in the route table, for the
// shortcut, which bypasses the mux.
var streamRoute = route{Pattern: "GET /stream/{path...}", Access: linked, Library: true}

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
			if r, ok := s.admit(w, r, streamRoute, rest); ok {
				s.stream.serve(w, r, rest)
			}
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
