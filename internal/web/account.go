package web

import (
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"mustserv/internal/auth"
)

// The signed-in user's own account page: their password and their API
// keys (app passwords for players and scripts that cannot sign in).
// Changes need a browser session: an API key cannot make itself
// permanent by minting more keys, nor change the password it stands in
// for.

type accountView struct {
	Flash, Error     string
	Name, Role, Libs string
	ViaKey           bool
	Keys             []keyRow
	// NewKey is the API key just made, shown this once.
	NewKey, NewKeyName string
}

func (a *adminPages) renderAccount(w http.ResponseWriter, r *http.Request, code int, msg string, v accountView) {
	who := viewerOf(r)
	keys, err := a.auth.APIKeys(r.Context(), who.Account.ID)
	if err != nil {
		writeError(w, r, a.s.opts.Logger, err)
		return
	}
	u := who.Account
	v.Name, v.Role, v.ViaKey, v.Error = u.Name, string(u.Role), who.via == "key", msg
	v.Libs = a.userRow(u, "").Libraries
	v.Keys = keyRows(keys, "/account/keys")
	if code == 0 {
		v.Flash = flashOf(r)
	}
	a.render(w, r, "account", "Your account", []crumb{{"Your account", "/account"}}, v, code)
}

func (a *adminPages) handleAccount() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if a.accounts(w, r) {
			a.renderAccount(w, r, 0, "", accountView{})
		}
	})
}

// accountChange lets a change of the viewer's own account through: not
// with accounts off, not by API key. False if it has answered.
func (a *adminPages) accountChange(w http.ResponseWriter, r *http.Request) bool {
	if !a.accounts(w, r) {
		return false
	}
	switch v := viewerOf(r); {
	case v.Account.ID == "":
		// Not reached through the guard (member access), but an empty
		// ID means "any user's" to DeleteAPIKey.
		writeError(w, r, a.s.opts.Logger, errSignIn)
		return false
	case v.via == "key":
		writeError(w, r, a.s.opts.Logger, errKeyAccount)
		return false
	}
	return a.s.readForm(w, r)
}

// handleOwnPassword changes the viewer's password, given the current one
// (checked as a login is, so it counts against the login limits: a
// session left open is not a way to guess it). The new password ends
// every session of the user's, this one too, so the answer carries a new
// session: the user stays signed in here.
func (a *adminPages) handleOwnPassword() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !a.accountChange(w, r) {
			return
		}
		f := r.PostForm
		again := func(code int, msg string) { a.renderAccount(w, r, code, msg, accountView{}) }
		pw := f.Get("password")
		switch {
		case pw != f.Get("password2"):
			again(http.StatusBadRequest, "The two new passwords differ.")
			return
		case len(pw) < 8:
			// Before the current password is checked: a login attempt
			// is not spent on a form that cannot succeed.
			a.fail(w, r, auth.ErrShortPass, again)
			return
		}
		ctx, u, client := r.Context(), viewerOf(r).Account, a.s.loginClient(r)
		_, _, err := a.auth.Login(ctx, u.Name, f.Get("current"), client)
		var le *auth.LimitedError
		switch {
		case errors.As(err, &le):
			w.Header().Set("Retry-After", strconv.Itoa(int(le.RetryAfter.Seconds())+1))
			again(http.StatusTooManyRequests, le.Error())
			return
		case errors.Is(err, auth.ErrBadLogin):
			again(http.StatusBadRequest, "The current password is wrong.")
			return
		case err != nil:
			writeError(w, r, a.s.opts.Logger, err)
			return
		}
		if err := a.auth.SetPassword(ctx, u.ID, pw); err != nil {
			a.fail(w, r, err, again)
			return
		}
		a.s.opts.Logger.Info("password changed", "user", u.Name)
		tok, _, err := a.auth.Login(ctx, u.Name, pw, client)
		if err != nil {
			// The password is changed; only the new session failed (a
			// login limit reached meanwhile): sign in again.
			a.s.clearSession(w, r)
			http.Redirect(w, r, "/login?next="+url.QueryEscape("/account"), http.StatusSeeOther)
			return
		}
		a.s.setSession(w, r, tok)
		done(w, r, "/account", "own-password", "")
	})
}

// handleOwnKey makes an API key for the viewer and shows it this once.
func (a *adminPages) handleOwnKey() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !a.accountChange(w, r) {
			return
		}
		if viewerOf(r).Account.Role == auth.Guest {
			// Guests use the browser only.
			writeError(w, r, a.s.opts.Logger, errGuestKey)
			return
		}
		again := func(code int, msg string) { a.renderAccount(w, r, code, msg, accountView{}) }
		name, err := keyName(r.PostForm.Get("name"))
		if err != nil {
			a.fail(w, r, err, again)
			return
		}
		u := viewerOf(r).Account
		key, k, err := a.auth.AddAPIKey(r.Context(), u.ID, name)
		if err != nil {
			a.fail(w, r, err, again)
			return
		}
		a.s.opts.Logger.Info("API key created", "user", u.Name, "key", k.Name)
		a.renderAccount(&noStore{ResponseWriter: w}, r, 0, "", accountView{NewKey: key, NewKeyName: k.Name})
	})
}

// handleOwnKeyDelete revokes one of the viewer's own keys; another
// user's key is as unknown (404).
func (a *adminPages) handleOwnKeyDelete() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !a.accountChange(w, r) {
			return
		}
		u := viewerOf(r).Account
		if err := a.auth.DeleteAPIKey(r.Context(), u.ID, strings.TrimSpace(r.PathValue("key"))); err != nil {
			writeError(w, r, a.s.opts.Logger, err)
			return
		}
		a.s.opts.Logger.Info("API key deleted", "user", u.Name)
		done(w, r, "/account", "key-deleted", "")
	})
}
