package web

import (
	"embed"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"mustserv/internal/index"
	"mustserv/internal/library"
	"mustserv/internal/media"
	"mustserv/internal/probe"
	"mustserv/internal/stream"
)

func handleHealthz() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		w.Write([]byte("ok\n"))
	})
}

// streamHandler serves a file's bytes. HEAD is served by the GET route.
//
// With a cache, a small file opened less than the cache's TTL ago is
// served from memory without touching the library; otherwise it is opened
// (which checks containment) and the cache keeps it if it is small.
type streamHandler struct {
	tree  *library.Tree
	st    *stream.Server
	cache *stream.Cache
	log   *slog.Logger
	// pace gives a library's pacing policy; nil: streams are not paced.
	pace        func(library string) stream.Policy
	proxies     proxies
	mayDownload func(*http.Request) bool
	// index, if not nil, knows files' peak bitrates (indexRate).
	index *index.Index
	// elsewhere, if not nil, says where a stream the uplink budget cannot
	// take goes instead (Server.elsewhere).
	elsewhere func(*http.Request) func(need int64) string
	// direct, if not nil, says where a stream that came through the
	// balancer goes so that its bytes skip it (Server.direct); "" here.
	direct func(*http.Request) string
}

func (h *streamHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h.serve(w, r, r.PathValue("path"))
}

// serve serves the file at vpath, the route's {path...} value.
func (h *streamHandler) serve(w http.ResponseWriter, r *http.Request, vpath string) {
	if vpath == "" || strings.HasSuffix(vpath, "/") || !strings.Contains(vpath, "/") {
		// A folder (a library is one): its listing, for another server
		// using this one as a library.
		if !strings.HasSuffix(vpath, "/") {
			vpath += "/"
		}
		if vpath == "/" {
			writeError(w, r, h.log, fs.ErrNotExist)
			return
		}
		h.serveFolder(w, r, vpath)
		return
	}
	if h.redirect(w, r, vpath) {
		return
	}
	if h.direct != nil {
		if loc := h.direct(r); loc != "" {
			w.Header().Set("Cache-Control", "private, no-store")
			http.Redirect(w, r, loc, http.StatusTemporaryRedirect)
			return
		}
	}
	if h.cache != nil {
		if e := h.cache.Get(vpath); e != nil {
			h.st.ServeCached(w, r, e)
			return
		}
	}
	f, fi, err := h.tree.Open(r.Context(), vpath)
	if err != nil {
		if h.cache != nil {
			h.cache.Forget(vpath)
		}
		if h.folderRedirect(w, r, vpath, err) {
			return
		}
		writeError(w, r, h.log, err)
		return
	}
	defer f.Close()
	if err := stream.FirstBytes(r, f, fi); err != nil {
		writeError(w, r, h.log, err)
		return
	}
	if h.cache != nil {
		if e := h.cache.Put(vpath, f, fi); e != nil {
			h.st.ServeCached(w, r, e)
			return
		}
	}
	if h.pace == nil {
		h.st.Serve(w, r, f, fi)
		return
	}
	lib, rel, _ := strings.Cut(vpath, "/")
	v := viewerOf(r)
	who := stream.Who{Client: h.proxies.clientString(r), Policy: h.pace(lib), User: v.Account.Name, Path: vpath}
	if h.elsewhere != nil {
		who.Elsewhere = h.elsewhere(r)
	}
	if r.URL.RawQuery != "" && h.mayDownload != nil && r.URL.Query().Has("download") {
		who.Download = h.mayDownload(r)
	}
	if who.Policy.Enabled && r.Method == http.MethodGet {
		who.Rate = h.indexRate(r, lib, rel, fi)
		// A signed link may carry a lower rate for its streams.
		if c := v.rate; c > 0 && (who.Rate == 0 || who.Rate > c) {
			who.Rate = c
		}
	}
	h.st.ServePaced(w, r, f, fi, who)
}

// redirectTTL is how long a presigned URL a player is redirected to
// works: long enough for a film watched with pauses and seeks (players
// seek on the URL they were redirected to).
const redirectTTL = 4 * time.Hour

// redirect sends the player of a file in a library configured with
// redirect = true to a presigned URL of its storage, and reports whether
// it did. The file must exist (a missing one is 404 here, as elsewhere);
// the storage then serves the bytes, unpaced, to whoever holds the URL
// until it expires. A signed link's limits hold: the URL expires with the
// link, and a link bound to a client or a rate is served here instead
// (the storage could enforce neither).
func (h *streamHandler) redirect(w http.ResponseWriter, r *http.Request, vpath string) bool {
	lib, rel, _ := strings.Cut(vpath, "/")
	rd := h.tree.Redirector(lib)
	if rd == nil {
		return false
	}
	v := viewerOf(r)
	if v.via == "link" && (v.link.Client != "" || v.link.Rate > 0 || v.rate > 0) {
		return false
	}
	fi, err := h.tree.Stat(r.Context(), vpath)
	if err == nil && !fi.Mode().IsRegular() {
		err = fs.ErrNotExist
	}
	var u string
	if err == nil {
		// After the Stat, which may be slow: the URL must not outlive
		// the link by that time.
		ttl := redirectTTL
		if v.via == "link" {
			ttl = min(ttl, time.Until(v.link.Expires))
		}
		if ttl < time.Second {
			return false // the link is about to expire: served here
		}
		u, err = rd.RedirectURL(r.Context(), rel, int(ttl/time.Second))
	}
	if err != nil {
		writeError(w, r, h.log, err)
		return true
	}
	w.Header().Set("Cache-Control", "private, no-store")
	http.Redirect(w, r, u, http.StatusFound)
	return true
}

// indexRate is the pace rate of a media file from the index, when the
// index holds the file as it is now (same size and time): then the first
// play of a file does not wait for a probe. 0 otherwise.
func (h *streamHandler) indexRate(r *http.Request, lib, rel string, fi fs.FileInfo) int64 {
	if h.index == nil {
		return 0
	}
	if k := media.KindOf(fi.Name()); k != media.Audio && k != media.Video {
		return 0
	}
	rt, err := h.index.RatesAt(r.Context(), lib, rel)
	if err != nil || rt.Size != fi.Size() || !rt.ModTime.Equal(fi.ModTime()) || rt.Peak <= 0 {
		return 0
	}
	rep := &probe.Report{BitratePeak: rt.Peak, BitrateAvg: rt.Avg, Duration: rt.Duration}
	if rt.CoverBytes > 0 {
		rep.Cover = &probe.Cover{Size: rt.CoverBytes}
	}
	return stream.PeakRate(rep, fi.Size())
}

//go:embed ui/static
var static embed.FS

func handleStatic() http.Handler {
	sub, err := fs.Sub(static, "ui/static")
	if err != nil {
		panic(err) // the embedded tree is fixed at build time
	}
	files := http.StripPrefix("/static", http.FileServerFS(assets{sub}))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "public, max-age=300")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		files.ServeHTTP(w, r)
	})
}

// assets serves files only: no folder listings, and a name fs.FS cannot
// hold (invalid UTF-8, "..") is "not found", not the 500 that
// http.FileServer makes of fs.ErrInvalid.
type assets struct{ fs.FS }

func (a assets) Open(name string) (fs.File, error) {
	if !fs.ValidPath(name) {
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
	}
	f, err := a.FS.Open(name)
	if err != nil {
		return nil, err
	}
	if fi, err := f.Stat(); err != nil || fi.IsDir() {
		f.Close()
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
	}
	return f, nil
}

// escapePath escapes each segment of a virtual path for use in a URL.
func escapePath(vpath string) string {
	segs := strings.Split(vpath, "/")
	for i, s := range segs {
		segs[i] = url.PathEscape(s)
	}
	return strings.Join(segs, "/")
}
