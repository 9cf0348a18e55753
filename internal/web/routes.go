package web

import "net/http"

// routes registers every route of the server. Keep these paths stable:
// players, playlists and other tools hold links to them.
func (s *Server) routes(mux *http.ServeMux) {
	mux.Handle("GET /healthz", handleHealthz())
	mux.Handle("GET /readyz", handleReadyz(s.opts.Ready))

	mux.Handle("GET /{$}", handleBrowse(s.opts.Tree, s.pages, s.opts.Logger))
	mux.Handle("GET /browse/{path...}", handleBrowse(s.opts.Tree, s.pages, s.opts.Logger))
	mux.Handle("GET /stream/{path...}", handleStream(s.opts.Tree, s.opts.Stream, s.opts.Cache, s.opts.Logger))
	mux.Handle("GET /playlist/{path...}", handlePlaylist(s.opts.Tree, s.proxies, s.opts.Logger))
	mux.Handle("GET /static/", handleStatic())
}
