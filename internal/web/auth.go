package web

import (
	"context"
	"fmt"
	"io/fs"
	"net/http"
	"net/url"
	"path"
	"slices"
	"strings"
	"time"

	"mustserv/internal/auth"
	"mustserv/internal/config"
	"mustserv/internal/index"
)

// access is who may use a route.
type access int

const (
	// public routes answer anyone: health, login, setup, static files.
	public access = iota
	// member routes need a signed-in user (a session or an API key).
	member
	// linked routes take a member, or a signed link made for exactly
	// this URL path (players that cannot log in: VLC, TVs).
	linked
	// admin routes need a user with the admin role.
	admin
)

func (a access) String() string {
	return [...]string{"public", "member", "linked", "admin"}[a]
}

// route is one entry of the route table (routes.go): the matrix test of
// authorization walks this list.
type route struct {
	Pattern string
	Access  access
	// Library: the route's {path...} starts with a library's name, which
	// the viewer must be allowed (404 otherwise, as for a missing one).
	Library bool
}

// sessionCookie names the session cookie.
const sessionCookie = "mustserv_session"

// linkParam is the query parameter of a signed link's token.
const linkParam = "t"

// viewer is who makes a request.
type viewer struct {
	// Account is the user; its zero value is nobody (a public route) or,
	// with open, everybody.
	Account auth.Account
	// open: authentication is off (auth mode "none"), anyone is an admin.
	open bool
	// via says how the viewer was recognised: "session", "key", "link".
	via string
	// session is the session's claims (for logout).
	session auth.Claims
	// rate caps a signed link's streams (bit/s); 0: no cap.
	rate int64
	// link is a signed link's claims: the links a playlist fetched by it
	// signs keep its expiry and client.
	link auth.Claims
}

func (v *viewer) signedIn() bool { return v.open || v.Account.ID != "" }

func (v *viewer) isAdmin() bool { return v.open || v.Account.Role == auth.Admin }

// libraries are those the viewer may see: nil for all.
func (v *viewer) libraries() []string {
	if v.isAdmin() {
		return nil
	}
	if v.Account.Libraries == nil {
		return []string{}
	}
	return v.Account.Libraries
}

// may reports whether the viewer may see library lib.
func (v *viewer) may(lib string) bool {
	libs := v.libraries()
	return libs == nil || slices.Contains(libs, lib)
}

type viewerKey struct{}

// viewerOf returns the viewer of a request that went through guard; a
// request that did not (a test calling a handler) is nobody.
func viewerOf(r *http.Request) *viewer {
	if v, ok := r.Context().Value(viewerKey{}).(*viewer); ok {
		return v
	}
	return &viewer{}
}

// nodeViewer is another node of the cluster, with a node token: it may
// read /metrics and nothing else.
var nodeViewer = &viewer{Account: auth.Account{Name: "(node)", Role: auth.Admin}, via: "node"}

// metricsRoute is the one route a node token opens.
const metricsRoute = "GET /metrics"

// openViewer is everyone when authentication is off.
var openViewer = &viewer{open: true, Account: auth.Account{Name: "", Role: auth.Admin}}

// guard lets a request through to h if its viewer may use a route of
// access a; lib, if true, also checks the library the path starts with.
func (s *Server) guard(rt route, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r, ok := s.admit(w, r, rt, r.PathValue("path")); ok {
			h.ServeHTTP(w, r)
		}
	})
}

// admit identifies the viewer and decides; on refusal it has answered and
// returns false. vpath is the route's {path...} value.
func (s *Server) admit(w http.ResponseWriter, r *http.Request, rt route, vpath string) (*http.Request, bool) {
	v, err := s.identify(w, r, rt)
	if err != nil {
		s.refuse(w, r, rt, err)
		return r, false
	}
	if rt.Access == admin && !v.isAdmin() {
		s.refuse(w, r, rt, errForbidden)
		return r, false
	}
	if rt.Library {
		if strings.HasPrefix(rt.Pattern, "GET /playlist/") {
			vpath = strings.TrimSuffix(vpath, path.Ext(vpath)) // "Music.m3u8"
		}
		lib, _, _ := strings.Cut(vpath, "/")
		if lib != "" && !v.may(lib) {
			s.refuse(w, r, rt, errNoLibrary)
			return r, false
		}
	}
	if s.opts.Auth != nil && rt.Access != public {
		// What a user may see is not for shared caches (a proxy or CDN
		// caching media by extension); handlers may say more.
		w.Header().Set("Cache-Control", "private")
	}
	ctx := context.WithValue(r.Context(), viewerKey{}, v)
	if libs := v.libraries(); libs != nil {
		ctx = index.WithLibraries(ctx, libs)
	}
	return r.WithContext(ctx), true
}

// authError is a refusal of the guard, with its status and a message
// fit for the client.
type authError struct {
	code int
	msg  string
}

func (e *authError) Error() string { return e.msg }

var (
	errSignIn    = &authError{http.StatusUnauthorized, "sign in first"}
	errForbidden = &authError{http.StatusForbidden, "not allowed for this user"}
	errBadLink   = &authError{http.StatusForbidden, "the link is not valid: expired, revoked or changed"}
	// errNoLibrary is a library the viewer may not see: as if missing.
	errNoLibrary = fmt.Errorf("no such library: %w", fs.ErrNotExist)
)

// identify finds the viewer: authentication off, a session cookie, an
// API key (Authorization: Bearer), or on a linked route a signed link. A
// public route lets nobody through as the zero viewer.
func (s *Server) identify(w http.ResponseWriter, r *http.Request, rt route) (*viewer, error) {
	a := s.opts.Auth
	if a == nil {
		return openViewer, nil
	}
	now := time.Now()
	if c, err := r.Cookie(sessionCookie); err == nil && c.Value != "" {
		acct, claims, renew, err := a.Session(c.Value, now)
		if err == nil {
			if renew != "" {
				s.setSession(w, r, renew)
			}
			return &viewer{Account: acct, via: "session", session: claims}, nil
		}
		if rt.Access != public {
			// A stale cookie goes, so that the login page is not looped to.
			s.clearSession(w, r)
		}
	}
	// An API key; other schemes (Basic from a proxy's own login) are not
	// ours and are ignored, and a public route never refuses.
	if scheme, key, ok := strings.Cut(r.Header.Get("Authorization"), " "); ok && strings.EqualFold(scheme, "Bearer") && rt.Access != public {
		key = strings.TrimSpace(key)
		if rt.Pattern == metricsRoute && strings.HasPrefix(key, "v1.") {
			// Another node reading this one's free uplink (placement).
			if a.CheckNode(key, now) != nil {
				return nil, errSignIn
			}
			return nodeViewer, nil
		}
		acct, err := a.APIKey(r.Context(), key)
		if err != nil {
			return nil, errSignIn
		}
		return &viewer{Account: acct, via: "key"}, nil
	}
	if rt.Access == linked && r.URL.RawQuery != "" {
		q := r.URL.Query()
		if q.Has(linkParam) {
			client := s.proxies.clientString(r)
			acct, claims, err := a.CheckLink(q.Get(linkParam), linkScope(r.URL.Path, q), client, now)
			if err != nil || len(q[linkParam]) != 1 {
				return nil, errBadLink
			}
			return &viewer{Account: acct, via: "link", rate: claims.Rate, link: claims}, nil
		}
	}
	if rt.Access == public {
		return &viewer{}, nil
	}
	return nil, errSignIn
}

// refuse answers a request the guard turned down: a browser asking for a
// page goes to the login page; anything else gets 401 or 403.
func (s *Server) refuse(w http.ResponseWriter, r *http.Request, rt route, err error) {
	switch {
	case err == errSignIn && r.Method == http.MethodGet && isPage(r.URL.Path):
		http.Redirect(w, r, "/login?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
		return
	case err == errSignIn:
		w.Header().Set("WWW-Authenticate", `Bearer realm="mustserv"`)
	}
	if strings.HasPrefix(r.URL.Path, "/api/") {
		writeJSONError(w, r, s.opts.Logger, err)
	} else {
		writeError(w, r, s.opts.Logger, err)
	}
}

// isPage reports whether path is one of the HTML pages (not the API, a
// stream, a playlist or metrics).
func isPage(p string) bool {
	for _, pre := range []string{"/api/", "/stream/", "/playlist/", "/metrics", "/static/"} {
		if strings.HasPrefix(p, pre) {
			return false
		}
	}
	return true
}

// setSession sends the session cookie: not readable by scripts, not sent
// on cross-site subrequests, Secure when the client reached us by HTTPS.
func (s *Server) setSession(w http.ResponseWriter, r *http.Request, tok string) {
	http.SetCookie(w, &http.Cookie{
		Name: sessionCookie, Value: tok, Path: "/",
		MaxAge:   int(s.opts.SessionTTL / time.Second),
		HttpOnly: true, SameSite: http.SameSiteLaxMode,
		Secure: strings.HasPrefix(s.proxies.base(r), "https:"),
	})
}

func (s *Server) clearSession(w http.ResponseWriter, r *http.Request) {
	http.SetCookie(w, &http.Cookie{
		Name: sessionCookie, Value: "", Path: "/", MaxAge: -1,
		HttpOnly: true, SameSite: http.SameSiteLaxMode,
		Secure: strings.HasPrefix(s.proxies.base(r), "https:"),
	})
}

// linkScope is what a signed link is good for: the URL's path, and its
// query but for the token itself (a search playlist's q), in one
// spelling: the path escaped (claims are JSON, which would turn a name
// that is not valid UTF-8 into another), the query sorted.
func linkScope(path string, q url.Values) string {
	p := (&url.URL{Path: path}).EscapedPath()
	if len(q) == 0 || (len(q) == 1 && q.Has(linkParam)) {
		return p
	}
	rest := url.Values{}
	for k, v := range q {
		if k != linkParam {
			rest[k] = v
		}
	}
	return p + "?" + rest.Encode()
}

// signTracks gives every track of a playlist a signed link when the
// viewer is a user, so that a player without the user's cookie can play
// it. Links are signed for the user; a playlist fetched by a signed link
// signs its tracks with that link's expiry, client and rate, never
// longer or wider. The playlist's query may narrow them further:
// bind=1 makes the links work from the requesting address only, rate=R
// (a bitrate such as "2Mbit") caps their streams.
func (s *Server) signTracks(r *http.Request, tracks []track) error {
	v := viewerOf(r)
	if s.opts.Auth == nil || v.open || v.Account.ID == "" {
		return nil
	}
	o := auth.LinkOptions{Rate: v.rate, Client: v.link.Client, Expires: v.link.Expires, Session: v.link.ID}
	if r.URL.RawQuery != "" {
		q := r.URL.Query()
		if q.Get("bind") == "1" {
			o.Client = s.proxies.clientString(r)
		}
		if rs := q.Get("rate"); rs != "" {
			b, err := config.ParseBitrate(rs)
			if err != nil || b <= 0 {
				return badParam("rate must be a bitrate such as 2Mbit")
			}
			if o.Rate == 0 || int64(b) < o.Rate {
				o.Rate = int64(b)
			}
		}
	}
	for i := range tracks {
		u, err := url.Parse(tracks[i].URL)
		if err != nil {
			return err
		}
		q := u.Query()
		tok, err := s.opts.Auth.Link(v.Account, linkScope(u.Path, q), o)
		if err != nil {
			return err
		}
		q.Set(linkParam, tok)
		u.RawQuery = q.Encode()
		tracks[i].URL = u.String()
	}
	return nil
}
