package web

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"time"
)

// proxies is the list of trusted reverse proxies.
type proxies []netip.Prefix

func (p proxies) trusted(a netip.Addr) bool {
	for _, pr := range p {
		if pr.Contains(a) {
			return true
		}
	}
	return false
}

// remoteAddr returns the address of the TCP peer.
func remoteAddr(r *http.Request) netip.Addr {
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return netip.Addr{}
	}
	return ap.Addr().Unmap()
}

// client returns the address of the client: the TCP peer, or, when the peer
// is a trusted proxy, the right-most address in X-Forwarded-For that is not
// a trusted proxy itself (addresses to its left are the client's word).
func (p proxies) client(r *http.Request) netip.Addr {
	a := remoteAddr(r)
	if len(p) == 0 || !p.trusted(a) {
		return a
	}
	xff := r.Header.Values("X-Forwarded-For")
	for i := len(xff) - 1; i >= 0; i-- {
		parts := strings.Split(xff[i], ",")
		for j := len(parts) - 1; j >= 0; j-- {
			b, err := netip.ParseAddr(strings.TrimSpace(parts[j]))
			if err != nil {
				return a
			}
			a = b.Unmap()
			if !p.trusted(a) {
				return a
			}
		}
	}
	return a
}

// clientString is p.client(r).String(), without parsing the address
// twice or allocating when the peer is the client and speaks IPv4: then
// RemoteAddr's host is already the canonical form (netip accepts no other
// form of an IPv4 address, so a check by netip.ParseAddr is exact).
func (p proxies) clientString(r *http.Request) string {
	if len(p) == 0 {
		if host, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
			if a, err := netip.ParseAddr(host); err == nil && a.Is4() {
				return host
			}
		}
	}
	return p.client(r).String()
}

// base returns "scheme://host" as the client sees this server: from the
// request, or from X-Forwarded-Proto/-Host when a trusted proxy sent them.
func (p proxies) base(r *http.Request) string {
	scheme, host := "http", r.Host
	if r.TLS != nil {
		scheme = "https"
	}
	if len(p) > 0 && p.trusted(remoteAddr(r)) {
		if v := firstToken(r.Header.Get("X-Forwarded-Proto")); v == "http" || v == "https" {
			scheme = v
		}
		if v := firstToken(r.Header.Get("X-Forwarded-Host")); v != "" && validHost(v) {
			host = v
		}
	}
	return scheme + "://" + host
}

func firstToken(s string) string {
	s, _, _ = strings.Cut(s, ",")
	return strings.TrimSpace(s)
}

// validHost accepts host or host:port made of the characters a URL's
// authority may hold, so a forwarded header cannot inject into playlists.
func validHost(h string) bool {
	if h == "" || len(h) > 255 {
		return false
	}
	for i := 0; i < len(h); i++ {
		c := h[i]
		ok := 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
			strings.IndexByte("-._:[]", c) >= 0
		if !ok {
			return false
		}
	}
	return true
}

// logWriter records the status and the body bytes of a response. It keeps
// io.ReaderFrom so that sendfile still reaches the connection.
type logWriter struct {
	http.ResponseWriter
	status int
	bytes  int64
	err    error // the first write error: the client got a cut response
	// handoff is set when the body was handed to the pacer.
	handoff *handoff
}

func (w *logWriter) note(n int64, err error) {
	w.bytes += n
	if w.err == nil {
		w.err = err
	}
}

func (w *logWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// Handed notes a body handed to the pacer (stream.Handoff): its bytes go
// out after the handler returns, never through this writer, so the
// request's line is written when the pacer says the body is done, with
// what it really sent and how long it took.
func (w *logWriter) Handed(n int64) func(sent int64, err error) {
	w.handoff = &handoff{}
	return w.handoff.sent
}

// handoff joins the two ends of a handed-over body's access line: the
// handler's return and the pacer's end of the body, in either order;
// whichever comes second writes the line.
type handoff struct {
	mu    sync.Mutex
	line  *accessLine // set when the handler returned
	write func(*accessLine)
	done  bool
	n     int64
	err   error
	end   time.Time
}

func (h *handoff) sent(n int64, err error) {
	h.mu.Lock()
	h.done, h.n, h.err, h.end = true, n, err, time.Now()
	l := h.line
	h.mu.Unlock()
	if l != nil {
		h.finish(l)
	}
}

// returned is called when the handler returned, with its line: written
// now if the body is done, else when it is.
func (h *handoff) returned(l *accessLine, write func(*accessLine)) {
	h.mu.Lock()
	h.write = write
	if !h.done {
		h.line = l
		h.mu.Unlock()
		return
	}
	h.mu.Unlock()
	h.finish(l)
}

func (h *handoff) finish(l *accessLine) {
	l.bytes += h.n
	l.dur = h.end.Sub(l.time.Add(-l.dur))
	l.time = h.end
	if h.err != nil && !l.hasErr {
		l.err, l.hasErr = h.err.Error(), true
	}
	h.write(l)
}

func (w *logWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *logWriter) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	n, err := w.ResponseWriter.Write(p)
	w.note(int64(n), err)
	return n, err
}

func (w *logWriter) ReadFrom(src io.Reader) (int64, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	rf, ok := w.ResponseWriter.(io.ReaderFrom)
	if !ok {
		n, err := io.Copy(struct{ io.Writer }{w.ResponseWriter}, src)
		w.note(n, err)
		return n, err
	}
	n, err := rf.ReadFrom(src)
	w.note(n, err)
	return n, err
}

// accessLog logs one line per request once its response is done.
//
// With out set, the line is formatted here in slog.TextHandler's format
// and written to out (which should batch, see package logbuf); otherwise
// it goes to the logger's handler as a record built with no caller PC
// (Logger.LogAttrs would call runtime.Callers on every request for a
// source location that is never printed). The logger's level decides in
// both cases.
func accessLog(next http.Handler, log *slog.Logger, p proxies, out io.Writer) http.Handler {
	h := log.Handler()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := r.Context()
		if !h.Enabled(ctx, slog.LevelInfo) {
			next.ServeHTTP(w, r)
			return
		}
		start := time.Now()
		lw := &logWriter{ResponseWriter: w}
		next.ServeHTTP(lw, r)
		if lw.status == 0 {
			lw.status = http.StatusOK
		}
		if lw.status == http.StatusOK && (r.URL.Path == "/healthz" || r.URL.Path == "/readyz") {
			// A balancer's health checks, every second or two per node
			// and backend: only their failures are news.
			return
		}
		if r.Method == http.MethodHead {
			lw.bytes = 0 // net/http drops a HEAD response's body
		}
		end := time.Now()
		l := accessLine{
			time:   end,
			method: r.Method,
			path:   r.URL.Path,
			status: lw.status,
			bytes:  lw.bytes,
			dur:    end.Sub(start),
			client: p.clientString(r),
			rng:    r.Header.Get("Range"),
		}
		if lw.err != nil {
			// A cut stream (stalled client, client gone) must not look
			// like a complete one.
			l.err, l.hasErr = lw.err.Error(), true
		}
		if lw.handoff != nil {
			// The body is still being sent: the pacer writes the line.
			lc := l
			lw.handoff.returned(&lc, func(l *accessLine) { writeAccess(l, out, h, ctx) })
			return
		}
		writeAccess(&l, out, h, ctx)
	})
}

// writeAccess writes l to out, or to h when out is nil. As Logger.LogAttrs
// does, a write error is dropped: there is nowhere better to report that
// the log cannot be written.
func writeAccess(l *accessLine, out io.Writer, h slog.Handler, ctx context.Context) {
	if out != nil {
		bp := lineBufs.Get().(*[]byte)
		*bp = l.appendTo((*bp)[:0])
		_, _ = out.Write(*bp)
		lineBufs.Put(bp)
		return
	}
	_ = h.Handle(context.WithoutCancel(ctx), l.record())
}

// writeDeadline gives every response a write deadline of now+d: a client
// that pipelines requests and reads no answers is cut after d instead of
// holding a connection and a goroutine for ever (there is no overall
// WriteTimeout, which would cut long streams). Pages and playlists are
// small; package stream renews the deadline before every chunk of a body,
// so a stream lasts as long as its client keeps reading. net/http clears
// the deadline after each response.
func writeDeadline(next http.Handler, d time.Duration) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// net/http's own writer has the method (what ResponseController
		// looks for, without allocating one); an error means the writer
		// takes no deadlines (a test recorder).
		if dw, ok := w.(interface{ SetWriteDeadline(time.Time) error }); ok {
			dw.SetWriteDeadline(time.Now().Add(d))
		} else {
			http.NewResponseController(w).SetWriteDeadline(time.Now().Add(d))
		}
		next.ServeHTTP(w, r)
	})
}

// recoverPanics turns a panic in a handler into a logged 500, so no panic
// reaches a client as a dropped connection with a stack trace in the log
// only. http.ErrAbortHandler is re-raised: it means "drop the connection".
func recoverPanics(next http.Handler, log *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			v := recover()
			if v == nil {
				return
			}
			if v == http.ErrAbortHandler {
				panic(v)
			}
			log.Error("handler panic", "method", r.Method, "path", r.URL.Path, "panic", v)
			http.Error(w, http.StatusText(http.StatusInternalServerError), http.StatusInternalServerError)
		}()
		next.ServeHTTP(w, r)
	})
}

// headers sets what every response carries: HSTS over HTTPS when
// configured (over plain HTTP browsers ignore it, and it must not be
// sent before HTTPS works).
func (s *Server) headers(next http.Handler) http.Handler {
	if !s.opts.HSTS {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.TLS != nil || strings.HasPrefix(s.proxies.base(r), "https:") {
			w.Header().Set("Strict-Transport-Security", "max-age=31536000")
		}
		next.ServeHTTP(w, r)
	})
}

// requestBodies bounds what a request's body may cost. A body (forms are
// the only ones this server takes) must arrive within d, or the
// connection is dropped: otherwise a POST whose body never comes holds a
// connection and a goroutine for as long as its client likes, since
// net/http reads an unread body before answering and read_header_timeout
// ends with the headers ("R-U-Dead-Yet"). Requests without a body get no
// read deadline: a stream's background read would hit it and cancel the
// stream. A chunked request also closes its connection after the answer:
// RFC 9112 §6.1 requires it when the request had a Content-Length too,
// which net/http drops before a handler could see it.
func requestBodies(next http.Handler, d time.Duration) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ContentLength != 0 && d > 0 {
			http.NewResponseController(w).SetReadDeadline(time.Now().Add(d))
		}
		if len(r.TransferEncoding) > 0 {
			w.Header().Set("Connection", "close")
		}
		next.ServeHTTP(w, r)
	})
}

// localHosts refuses (421) a request whose Host is a name other than
// localhost: for a server without accounts on the loopback address, where
// anyone who reaches it is an admin. A web page of another site whose
// name the attacker points at 127.0.0.1 (DNS rebinding) would otherwise
// be "same origin" to the browser and could drive it.
func localHosts(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host := r.Host
		if h, _, err := net.SplitHostPort(host); err == nil {
			host = h
		}
		host = strings.TrimSuffix(strings.ToLower(host), ".")
		// No Host (HTTP/1.0) is no rebinding: a browser always sends one.
		if _, err := netip.ParseAddr(strings.Trim(host, "[]")); err != nil && host != "" &&
			host != "localhost" && !strings.HasSuffix(host, ".localhost") {
			http.Error(w, "this server answers to localhost and IP addresses only", http.StatusMisdirectedRequest)
			return
		}
		next.ServeHTTP(w, r)
	})
}
