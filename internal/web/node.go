package web

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"mustserv/internal/auth"
	"mustserv/internal/cluster"
)

// Node is this server as one of several behind a load balancer: its
// readiness, drain switch and peers (package cluster).
type Node interface {
	// Name names the node on the admin page.
	Name() string
	// Ready is nil while the node takes new streams, else why not.
	Ready() error
	// Serving is nil once the node serves pages (its index is built),
	// draining or not.
	Serving() error
	Draining() bool
	SetDraining(on bool)
	// Peers are the other nodes as last read; nil without peers.
	Peers() []cluster.Peer
}

// handleReadyz answers 200 while the node takes new streams and 503 with
// the reason while it starts, builds its index, drains or has no uplink
// left, so that a load balancer sends new streams elsewhere. With
// ?for=pages it answers for pages, the API and playlists: 200 once the
// index is built, draining or not.
func handleReadyz(n Node) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		if n != nil {
			ready := n.Ready
			if r.URL.RawQuery != "" && r.URL.Query().Get("for") == "pages" {
				ready = n.Serving
			}
			if err := ready(); err != nil {
				w.WriteHeader(http.StatusServiceUnavailable)
				w.Write([]byte("not ready: " + err.Error() + "\n"))
				return
			}
		}
		w.Write([]byte("ready\n"))
	})
}

// hopParam marks a stream request another node placed here: it is not
// placed again (the other node's view of this one may be a poll old).
const hopParam = "hop"

// placedLinkTTL is how long the link of a placed stream works when the
// request had no link of its own (a session or an API key, which do not
// follow the client to another host): long enough for a film's seeks.
const placedLinkTTL = 6 * time.Hour

// elsewhere returns, for a stream request, what stream.Who.Elsewhere asks
// when the uplink budget cannot take the stream: the same request's URL at
// the peer Place picks, carrying a signed link (the peer shares the
// signing key) and the hop mark. nil: no placement for this request.
func (s *Server) elsewhere(r *http.Request) func(need int64) string {
	if s.opts.Place == nil || r.Method != http.MethodGet {
		return nil
	}
	// Asked only when the budget is full: the query is parsed then, not
	// on every stream.
	return func(need int64) string {
		q := r.URL.Query()
		if q.Has(hopParam) {
			return ""
		}
		q.Set(hopParam, "1")
		rest, ok := s.sendOn(r, q)
		if !ok {
			return ""
		}
		// Only a peer that keeps an HTTPS stream (and its link) on HTTPS.
		base, ok := s.opts.Place(need, func(base string) bool { return s.sameScheme(r, base) })
		if !ok {
			return ""
		}
		return base + rest
	}
}

// direct returns where a stream request that came through the balancer
// (a trusted proxy) goes so that its bytes skip the balancer: this node's
// own URL (Options.Direct) with a signed link; "" serves it here. A
// request made to the node directly is never sent on again, so nothing
// loops; if this node is full then, placement may still move it.
func (s *Server) direct(r *http.Request) string {
	if s.opts.Direct == "" || r.Method != http.MethodGet || r.Header.Get("X-Forwarded-For") == "" ||
		!s.proxies.trusted(remoteAddr(r)) || !s.sameScheme(r, s.opts.Direct) {
		return ""
	}
	if strings.EqualFold(hostOf(s.proxies.base(r)), hostOf(s.opts.Direct)) {
		// Already at the node's own address (through a proxy of its
		// own): sending it there again would loop.
		return ""
	}
	v := viewerOf(r)
	switch {
	case s.opts.Node != nil && s.opts.Node.Draining():
		// A player re-requests the URL it was sent to: not one about
		// to close. Served here, placed, or refused through the balancer.
		return ""
	case v.via == "key":
		// A program with an API key (another MuStServ using this one
		// as a library) may refuse redirects to another host.
		return ""
	case v.via == "link" && time.Until(v.link.Expires) < directMinLeft:
		// Its link would expire before the player arrived.
		return ""
	}
	rest, ok := s.sendOn(r, r.URL.Query())
	if !ok {
		return ""
	}
	return s.opts.Direct + rest
}

// directMinLeft is the least lifetime a link must have left to be sent
// on to the node's own address.
const directMinLeft = 10 * time.Second

// hostOf is the host (and port) of a base URL "scheme://host" (config
// has checked Direct's form; a trailing slash was trimmed).
func hostOf(base string) string {
	_, h, _ := strings.Cut(base, "://")
	h, _, _ = strings.Cut(h, "/")
	return h
}

// sameScheme reports whether sending r to base keeps it on HTTPS if it
// came by HTTPS.
func (s *Server) sameScheme(r *http.Request, base string) bool {
	return !strings.HasPrefix(s.proxies.base(r), "https:") || strings.HasPrefix(base, "https:")
}

// sendOn returns r's path and query q for another host: with a fresh
// signed link for exactly that URL (the request's cookie or API key does
// not follow it), never wider, longer or faster than what the request
// came with — a link's own limits, a session's end, the client's
// address. ok is false when the link cannot be signed.
func (s *Server) sendOn(r *http.Request, q url.Values) (rest string, ok bool) {
	q.Del(linkParam)
	if a, v := s.opts.Auth, viewerOf(r); a != nil && !v.open {
		exp := time.Now().Add(placedLinkTTL)
		if v.via == "session" && v.session.Expires.Before(exp) {
			exp = v.session.Expires
		}
		o := auth.LinkOptions{Client: s.proxies.clientString(r), Expires: exp, Session: v.session.ID}
		if v.via == "link" {
			o = auth.LinkOptions{Client: v.link.Client, Rate: v.link.Rate, Expires: v.link.Expires, Session: v.link.ID}
		}
		tok, err := a.Link(v.Account, linkScope(r.URL.Path, q), o)
		if err != nil {
			s.opts.Logger.Warn("cannot sign the link of a stream sent to another node", "err", err)
			return "", false
		}
		q.Set(linkParam, tok)
	}
	rest = r.URL.EscapedPath()
	if len(q) > 0 {
		rest += "?" + q.Encode()
	}
	return rest, true
}

// nodeView is the admin overview's node section.
type nodeView struct {
	Name     string
	Ready    string // "ready" or why not
	Draining bool
	Peers    []peerView
}

type peerView struct {
	URL, State, Free string
	Streams          int
}

func nodeViewOf(n Node) *nodeView {
	if n == nil {
		return nil
	}
	v := &nodeView{Name: n.Name(), Ready: "ready", Draining: n.Draining()}
	if err := n.Ready(); err != nil {
		v.Ready = "not ready: " + err.Error()
	}
	for _, p := range n.Peers() {
		pv := peerView{URL: p.URL, State: "ready", Streams: p.Uplink.Active, Free: "unlimited"}
		switch {
		case p.Err != "":
			pv.State = "unreachable: " + p.Err
		case !p.Ready:
			pv.State = "not ready"
		}
		if f := p.Uplink.Free(); f >= 0 {
			pv.Free = formatBitrate(f)
		}
		v.Peers = append(v.Peers, pv)
	}
	return v
}

// handleDrain turns draining on (drain=on) or off (drain=off) on this
// node: a balancer checking /readyz then sends its new streams elsewhere
// while running ones finish.
func (a *adminPages) handleDrain() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := a.s.opts.Node
		if n == nil {
			writeError(w, r, a.s.opts.Logger, errNoAdmin)
			return
		}
		if name := r.PostFormValue("node"); name != "" && name != n.Name() {
			// Behind a balancer the form may reach another node than the
			// page came from: drain none rather than the wrong one.
			writeError(w, r, a.s.opts.Logger, &authError{http.StatusConflict,
				fmt.Sprintf("this request reached node %q, not %q: open the node's own address to drain it", n.Name(), name)})
			return
		}
		var on bool
		switch r.PostFormValue("drain") {
		case "on":
			on = true
		case "off":
		default:
			writeError(w, r, a.s.opts.Logger, &authError{http.StatusBadRequest, `drain: want "on" or "off"`})
			return
		}
		n.SetDraining(on)
		a.s.opts.Logger.Warn("drain set by an admin", "draining", on, "user", viewerOf(r).Account.Name)
		code := "drain-off"
		if on {
			code = "drain-on"
		}
		done(w, r, "/admin", code, "")
	})
}
