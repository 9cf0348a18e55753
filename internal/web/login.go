package web

import (
	"errors"
	"net/http"
	"strconv"
	"strings"

	"mustserv/internal/auth"
)

// maxFormBytes bounds a login or setup form.
const maxFormBytes = 16 << 10

// loginView is the login and setup form.
type loginView struct {
	Next, Token, Name string
	Error             string
	Setup             bool
}

// safeNext is where to go after signing in: a path on this server only
// ("//evil.example" and "/\evil" are other hosts to a browser).
func safeNext(next string) string {
	if !strings.HasPrefix(next, "/") || strings.HasPrefix(next, "//") || strings.HasPrefix(next, "/\\") ||
		strings.ContainsAny(next, "\r\n\t") || len(next) > 2048 {
		return "/"
	}
	return next
}

func (s *Server) renderLogin(w http.ResponseWriter, r *http.Request, code int, v loginView) {
	title := "Sign in"
	if v.Setup {
		title = "Set up MuStServ"
	}
	w.Header().Set("Cache-Control", "no-store")
	s.pages.render(w, r, "login", page{Title: title, Section: "login", Bare: true, View: v, status: code})
}

// loginClient is who the login limits count a request against: its
// address, or for IPv6 its /64, which one host usually has whole.
func (s *Server) loginClient(r *http.Request) string {
	a := s.proxies.client(r)
	if a.Is6() && !a.Is4In6() {
		p, _ := a.Prefix(64)
		return p.String()
	}
	return a.String()
}

// handleLoginPage shows the sign-in form (or, with authentication off,
// sends the browser home).
func (s *Server) handleLoginPage() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		next := safeNext(r.URL.Query().Get("next"))
		if s.opts.Auth == nil || viewerOf(r).signedIn() {
			http.Redirect(w, r, next, http.StatusSeeOther)
			return
		}
		s.renderLogin(w, r, 0, loginView{Next: next})
	})
}

// readForm parses a small urlencoded form; false if it has answered.
func (s *Server) readForm(w http.ResponseWriter, r *http.Request) bool {
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	if err := r.ParseForm(); err != nil {
		code := http.StatusBadRequest
		if mbe := (*http.MaxBytesError)(nil); errors.As(err, &mbe) {
			code = http.StatusRequestEntityTooLarge
		}
		http.Error(w, http.StatusText(code), code)
		return false
	}
	return true
}

// handleLogin checks a user's name and password and starts a session.
// Unknown users and wrong passwords get the same answer after the same
// work; too many attempts from a client or on an account get 429.
func (s *Server) handleLogin() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.opts.Auth == nil {
			http.Redirect(w, r, "/", http.StatusSeeOther)
			return
		}
		if !s.readForm(w, r) {
			return
		}
		name, next := r.PostForm.Get("name"), safeNext(r.PostForm.Get("next"))
		tok, _, err := s.opts.Auth.Login(r.Context(), name, r.PostForm.Get("password"), s.loginClient(r))
		var le *auth.LimitedError
		switch {
		case err == nil:
			s.setSession(w, r, tok)
			http.Redirect(w, r, next, http.StatusSeeOther)
		case errors.As(err, &le):
			w.Header().Set("Retry-After", strconv.Itoa(int(le.RetryAfter.Seconds())+1))
			s.renderLogin(w, r, http.StatusTooManyRequests, loginView{Next: next, Name: name, Error: le.Error()})
		case errors.Is(err, auth.ErrBadLogin):
			s.renderLogin(w, r, http.StatusUnauthorized, loginView{Next: next, Name: name, Error: "Wrong user name or password."})
		default:
			writeError(w, r, s.opts.Logger, err)
		}
	})
}

// handleLogout ends the session and forgets the cookie.
func (s *Server) handleLogout() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if v := viewerOf(r); v.via == "session" {
			if err := s.opts.Auth.Logout(r.Context(), v.session); err != nil {
				// The browser forgets the cookie all the same; the
				// error says the session could not be ended for the
				// other nodes (their accounts store is out of reach).
				s.clearSession(w, r)
				writeError(w, r, s.opts.Logger, err)
				return
			}
		}
		s.clearSession(w, r)
		http.Redirect(w, r, "/login", http.StatusSeeOther)
	})
}

// handleSetupPage shows the first-run form to whoever has the setup link
// the server logged; anyone else, and everyone once a user exists, gets
// 404.
func (s *Server) handleSetupPage() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tok := r.URL.Query().Get("token")
		if s.opts.Auth == nil || !s.opts.Auth.ValidSetupToken(tok) {
			writeError(w, r, s.opts.Logger, errNoSetup)
			return
		}
		s.renderLogin(w, r, 0, loginView{Setup: true, Token: tok})
	})
}

var errNoSetup = &authError{http.StatusNotFound, "no setup pending: sign in instead"}

// handleSetup creates the first admin and signs them in.
func (s *Server) handleSetup() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.opts.Auth == nil {
			writeError(w, r, s.opts.Logger, errNoSetup)
			return
		}
		if !s.readForm(w, r) {
			return
		}
		f := r.PostForm
		tok, name, pw := f.Get("token"), f.Get("name"), f.Get("password")
		if !s.opts.Auth.ValidSetupToken(tok) {
			writeError(w, r, s.opts.Logger, errNoSetup)
			return
		}
		v := loginView{Setup: true, Token: tok, Name: name}
		if pw != f.Get("password2") {
			v.Error = "The two passwords differ."
			s.renderLogin(w, r, http.StatusBadRequest, v)
			return
		}
		if _, err := s.opts.Auth.Setup(r.Context(), tok, name, pw); err != nil {
			switch {
			case errors.Is(err, auth.ErrBadSetup):
				writeError(w, r, s.opts.Logger, errNoSetup)
			case errors.Is(err, auth.ErrShortPass), errors.Is(err, auth.ErrBadName):
				v.Error = userMessage(err)
				s.renderLogin(w, r, http.StatusBadRequest, v)
			default:
				writeError(w, r, s.opts.Logger, err)
			}
			return
		}
		s.opts.Logger.Info("first admin created", "user", name)
		sess, _, err := s.opts.Auth.Login(r.Context(), name, pw, s.loginClient(r))
		if err != nil {
			http.Redirect(w, r, "/login", http.StatusSeeOther)
			return
		}
		s.setSession(w, r, sess)
		http.Redirect(w, r, "/", http.StatusSeeOther)
	})
}

// userMessage is an auth error's text without its package prefix.
func userMessage(err error) string {
	msg := strings.TrimPrefix(err.Error(), "auth: ")
	return strings.ToUpper(msg[:1]) + msg[1:] + "."
}

// meView is who the viewer is, for scripts and the UI.
type meView struct {
	Name      string   `json:"name"`
	Role      string   `json:"role"`
	Libraries []string `json:"libraries"` // null: all
	Via       string   `json:"via"`       // session, key, link; "" with auth off
	AuthOff   bool     `json:"auth_off,omitempty"`
}

func (s *Server) handleMe() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		v := viewerOf(r)
		writeJSON(w, r, s.opts.Logger, http.StatusOK, meView{Name: v.Account.Name, Role: string(v.Account.Role),
			Libraries: v.libraries(), Via: v.via, AuthOff: v.open})
	})
}
