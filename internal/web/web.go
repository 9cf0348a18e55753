// Package web is MuStServ's HTTP front end: the routes (all in routes.go),
// the server-rendered pages for browsing and playing (with their embedded
// scripts and styles), the JSON API over the index, playlists, health
// endpoints, the access log, and the mapping of errors to status codes.
//
// It decides nothing about bytes on the wire for media (package stream
// does), does not scan, index or decode pictures (packages scan, index and
// the cover package behind Covers do), and holds no global state: New
// receives everything it uses.
package web

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/netip"
	"slices"
	"time"

	"mustserv/internal/auth"
	"mustserv/internal/index"
	"mustserv/internal/library"
	"mustserv/internal/scan"
	"mustserv/internal/stream"
)

// Options are the collaborators of the web front end.
type Options struct {
	Tree   *library.Tree
	Stream *stream.Server
	// Cache, if not nil, holds small files in memory (stream.Cache).
	Cache  *stream.Cache
	Logger *slog.Logger
	// Node, if not nil, is this server as a node behind a load balancer:
	// /readyz reports its Ready, the admin page its peers and drain
	// switch. nil: always ready.
	Node Node
	// Place, if not nil, picks the peer (its base URL) a stream of need
	// bit/s goes to when this node's uplink budget cannot take it, among
	// those accept takes: the stream is answered 307 there instead of
	// 503 (cluster.Cluster.Pick).
	Place func(need int64, accept func(base string) bool) (string, bool)
	// Direct, if not empty, is this node's own URL: every stream request
	// that came through a trusted proxy is answered 307 there (with a
	// signed link), so that its bytes skip the balancer.
	Direct string
	// MediaOrigins are other origins ("http://10.0.0.2:8000") that the
	// pages' player may stream from: the nodes Place and Direct send
	// streams to. The pages' Content-Security-Policy allows them.
	MediaOrigins []string
	// TrustedProxies may set X-Forwarded-For, -Proto and -Host.
	TrustedProxies []netip.Prefix
	// AccessLog logs one line per request at level info.
	AccessLog bool
	// AccessLogTo, if set, receives the access log's lines directly, in
	// slog.TextHandler's format (faster than through Logger, which still
	// decides the level). It should batch its writes (package logbuf).
	AccessLogTo io.Writer
	// WriteStall bounds how long any response may wait on a client that
	// reads nothing; 0 means no bound. Streams renew it per chunk.
	WriteStall time.Duration
	// Pace, if not nil, gives the pacing policy of a library's files;
	// nil serves every stream unpaced.
	Pace func(library string) stream.Policy
	// MayDownload reports whether r may have a file at full speed
	// (?download=1 on a stream URL); nil: nobody may, the flag is ignored.
	MayDownload func(r *http.Request) bool
	// Metrics, if not nil, serves GET /metrics.
	Metrics http.Handler
	// Index, if not nil, answers the JSON API, the album, artist, search
	// and item pages, and enriches folder pages; nil: those answer 503
	// "index not ready" and the folder pages list the disk alone.
	Index *index.Index
	// Scanner, if not nil, serves GET and POST /api/scan.
	Scanner Scanner
	// Covers, if not nil, serves /api/covers/; nil: items carry no cover
	// URL and the route answers 503.
	Covers Covers
	// Auth, if not nil, requires a user (a session, an API key or a signed
	// link) on every route but the public ones; nil: authentication is
	// off (auth mode "none") and everyone may do everything.
	Auth *auth.Service
	// SessionTTL is the session cookie's lifetime.
	SessionTTL time.Duration
	// HSTS sends Strict-Transport-Security on responses over HTTPS.
	HSTS bool
	// Admin, if not nil, runs the server's settings for the admin pages;
	// nil: those pages answer 503.
	Admin Admin
	// BodyTimeout bounds how long a request's body may take to arrive;
	// 0: no bound.
	BodyTimeout time.Duration
	// LocalHosts answers only requests for localhost or an IP address
	// (421 otherwise): set for a server without accounts on a loopback
	// address, against DNS rebinding.
	LocalHosts bool
}

// Scanner is what the web front end needs of the library scanner.
type Scanner interface {
	Progress() scan.Progress
	// Start starts a scan in the background; false if one is running.
	Start() bool
}

// Covers gives the picture of an item or album: size is the largest
// width or height wanted in pixels, 0 the original. An item without one is
// an error wrapping index.ErrNotFound.
type Covers interface {
	Cover(ctx context.Context, id string, size int) (data []byte, mime string, err error)
}

// Server is the HTTP handler of MuStServ.
type Server struct {
	opts    Options
	stream  *streamHandler
	proxies proxies
	pages   *pages
	links   links
	handler http.Handler
	// routeList is every route with its access (routes.go).
	routeList []route
}

// Routes lists the routes the server registered, with who may use each.
func (s *Server) Routes() []route { return slices.Clone(s.routeList) }

// New builds the handler.
func New(opts Options) *Server {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	s := &Server{opts: opts, proxies: proxies(opts.TrustedProxies), links: links{covers: opts.Covers != nil}}
	s.pages = newPages(opts.Index, opts.Scanner, s.links, opts.Logger)
	for _, o := range opts.MediaOrigins {
		s.pages.media += " " + o
	}
	s.stream = &streamHandler{tree: opts.Tree, st: opts.Stream, cache: opts.Cache, log: opts.Logger, index: opts.Index,
		pace: opts.Pace, proxies: s.proxies, mayDownload: opts.MayDownload, elsewhere: s.elsewhere, direct: s.direct}
	mux := http.NewServeMux()
	s.routes(mux)
	var h http.Handler = s.shortcut(mux)
	// Every state-changing request (POST) made by another site's page in
	// a visitor's browser is refused: CSRF protection for the whole server.
	h = http.NewCrossOriginProtection().Handler(h)
	h = s.headers(h)
	h = requestBodies(h, opts.BodyTimeout)
	if opts.LocalHosts {
		h = localHosts(h)
	}
	h = recoverPanics(h, opts.Logger)
	if opts.AccessLog {
		h = accessLog(h, opts.Logger, s.proxies, opts.AccessLogTo)
	}
	// Outermost, so that it reaches net/http's writer directly.
	if opts.WriteStall > 0 {
		h = writeDeadline(h, opts.WriteStall)
	}
	s.handler = h
	return s
}

// ServeHTTP serves one request.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.handler.ServeHTTP(w, r)
}
