package web

import (
	"context"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"mustserv/internal/auth"
	"mustserv/internal/config"
	"mustserv/internal/pace"
)

// Admin is what the admin pages change besides accounts (which are Auth's).
type Admin interface {
	// Config is the running configuration.
	Config() config.Config
	// Apply validates change applied to the configuration file's settings,
	// writes the file back and applies the result to the running server.
	// A refused change (*config.RefusedError, or an error wrapping it)
	// changes nothing; its message is for the admin.
	Apply(ctx context.Context, change func(*config.Config) error) (config.Config, error)
	// Streams lists the running paced streams; StopStream ends one.
	Streams() []pace.StreamInfo
	StopStream(id string) bool
	// Rescan starts a scan of every library; false if one runs.
	Rescan() bool
}

// The refusals of the admin and account pages that are not a form's
// mistake. They are authError values (as errNoSetup is): a status with a
// message written for the client, which writeError and statusOf know.
var (
	errAccountsOff = &authError{http.StatusNotFound, `accounts are off (auth mode "none"): there are no users to manage`}
	errNoAdmin     = &authError{http.StatusServiceUnavailable, "server settings not available"}
	errKeyAccount  = &authError{http.StatusForbidden, "an API key cannot change accounts or keys: sign in with your password"}
	errGuestKey    = &authError{http.StatusForbidden, "guests cannot make API keys"}
)

// conflict is a change refused because of the state it would leave (the
// last admin gone): 409 with the reason.
func conflict(msg string) error { return &authError{http.StatusConflict, msg} }

// adminViews are the templates of the admin and account pages; each is
// parsed with admin_parts.html.
var adminViews = []string{"admin", "admin_users", "admin_user", "admin_libraries", "admin_pacing",
	"admin_security", "admin_streams", "account"}

// addAdminViews adds the admin and account pages to p. A clone of a page's
// template set has the layout, the shared parts and their functions; the
// view's "main" replaces the clone's.
func (p *pages) addAdminViews() {
	for _, v := range adminViews {
		base := template.Must(p.tmpl["login"].Clone())
		p.tmpl[v] = template.Must(base.ParseFS(templates, "ui/admin_parts.html", "ui/"+v+".html"))
	}
}

// adminPages serve the admin pages (admin access) and the signed-in user's
// account page (account.go).
type adminPages struct {
	s    *Server
	auth *auth.Service // nil: accounts are off
	adm  Admin         // nil: no settings pages (503)
	// mu serialises role changes and deletions of users, so that two
	// admins demoting or deleting each other at once cannot leave none.
	// (Another process, `mustserv user`, is not covered: it is the
	// server's operator.)
	mu sync.Mutex
}

func newAdminPages(s *Server) *adminPages {
	s.pages.addAdminViews()
	return &adminPages{s: s, auth: s.opts.Auth, adm: s.opts.Admin}
}

// render writes an admin or account page; code 0 is 200.
func (a *adminPages) render(w http.ResponseWriter, r *http.Request, view, title string, crumbs []crumb, v any, code int) {
	section := "admin"
	if view == "account" {
		section = "account"
	}
	a.s.pages.render(w, r, view, page{Title: title, Section: section, Crumbs: crumbs, View: v, status: code})
}

// noStore keeps a response out of every cache (a page showing a new API
// key once): it sets Cache-Control as the header goes out, over the
// no-cache that render sets.
type noStore struct {
	http.ResponseWriter
	set bool
}

func (n *noStore) header() {
	if !n.set {
		n.set = true
		n.Header().Set("Cache-Control", "no-store")
	}
}

func (n *noStore) WriteHeader(code int) { n.header(); n.ResponseWriter.WriteHeader(code) }

func (n *noStore) Write(b []byte) (int, error) { n.header(); return n.ResponseWriter.Write(b) }

func (n *noStore) Unwrap() http.ResponseWriter { return n.ResponseWriter }

// refusal turns what a change was refused for into an error statusOf maps
// to the answer: a refused config (its reason), an account's bad name,
// password or role → 400, a name in use → 409. Other errors stay.
func refusal(err error) error {
	var re *config.RefusedError
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return err
	case errors.As(err, &re):
		return badParam(re.Error())
	case errors.Is(err, auth.ErrShortPass), errors.Is(err, auth.ErrBadName), errors.Is(err, auth.ErrBadRole):
		return badParam(userMessage(err))
	case errors.Is(err, auth.ErrUserExists):
		return conflict(userMessage(err))
	}
	return err
}

// fail answers a refused or failed form: a mistake to correct (400) or a
// conflict (409) shows the form again with the reason, through again;
// anything else (403, 404, a failure) is writeError's.
func (a *adminPages) fail(w http.ResponseWriter, r *http.Request, err error, again func(code int, msg string)) {
	err = refusal(err)
	switch code := statusOf(err); code {
	case http.StatusBadRequest, http.StatusConflict:
		again(code, clientMessage(err, code))
	default:
		writeError(w, r, a.s.opts.Logger, err)
	}
}

// done sends the browser back to target with a flash message (303, so
// that reloading the page does not post again). what names the thing
// changed.
func done(w http.ResponseWriter, r *http.Request, target, code, what string) {
	q := url.Values{"done": {code}}
	if what != "" {
		q.Set("name", what)
	}
	http.Redirect(w, r, target+"?"+q.Encode(), http.StatusSeeOther)
}

// flashes are the messages of done's codes. Codes, not text, travel in
// the URL, so that a link cannot make the page say anything else.
var flashes = map[string]string{
	"created":         "User %s created.",
	"saved":           "Access of %s saved.",
	"password":        "Password of %s set: their sessions have ended.",
	"revoked":         "%s is signed out everywhere.",
	"deleted":         "User %s deleted, with their API keys.",
	"key-deleted":     "API key deleted: it no longer works.",
	"library-added":   "Library %s added. Scan it to fill the index.",
	"library-removed": "Library %s removed.",
	"scan-started":    "A scan of every library started.",
	"scan-running":    "A scan is running already.",
	"drain-on":        "This node drains: /readyz answers 503, running streams go on.",
	"drain-off":       "This node takes new streams again.",
	"pacing-saved":    "Pacing settings saved and in effect (a new peak window applies after a restart).",
	"rotated":         "A new signing key is in use.",
	"stopped":         "Stream stopped.",
	"stream-gone":     "That stream had ended already.",
	"own-password":    "Your password is changed. Your other sessions have ended.",
}

// flashOf is the message of a page's ?done=, or "".
func flashOf(r *http.Request) string {
	q := r.URL.Query()
	msg, ok := flashes[q.Get("done")]
	if !ok {
		return ""
	}
	if strings.Contains(msg, "%s") {
		// The name comes from the link: short, and quoted as a name.
		name := []rune(q.Get("name"))
		return fmt.Sprintf(msg, strconv.Quote(string(name[:min(len(name), 64)])))
	}
	return msg
}

// accounts answers 404 when accounts are off; false if it did.
//
// A change of accounts or keys (any POST here) needs an admin signed in
// with a password: an API key, which a script holds and may leak, must
// not make more keys or admins, which would outlive its own deletion.
func (a *adminPages) accounts(w http.ResponseWriter, r *http.Request) bool {
	if a.auth == nil {
		writeError(w, r, a.s.opts.Logger, errAccountsOff)
		return false
	}
	if r.Method == http.MethodPost && viewerOf(r).via == "key" {
		writeError(w, r, a.s.opts.Logger, errKeyAccount)
		return false
	}
	return true
}

// settings answers 503 without an Admin; false if it did.
func (a *adminPages) settings(w http.ResponseWriter, r *http.Request) bool {
	if a.adm == nil {
		writeError(w, r, a.s.opts.Logger, errNoAdmin)
		return false
	}
	return true
}

// logChange records an admin's change (who did what) at level info.
func (a *adminPages) logChange(r *http.Request, msg string, args ...any) {
	a.s.opts.Logger.Info(msg, append([]any{"admin", viewerOf(r).Account.Name}, args...)...)
}

var adminCrumb = crumb{"Admin", "/admin"}

// The overview.

type overviewView struct {
	Flash    string
	Error    string
	Accounts bool // auth is on
	Users    int
	Admins   int
	Keys     int
	Settings bool // an Admin runs the settings
	Libs     int
	Streams  int
	Pacing   string
	Node     *nodeView // nil: not a node of several
}

func (a *adminPages) handleOverview() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		v := overviewView{Flash: flashOf(r), Accounts: a.auth != nil, Settings: a.adm != nil, Node: nodeViewOf(a.s.opts.Node)}
		if a.auth != nil {
			users, err := a.auth.Users(r.Context())
			if err != nil {
				writeError(w, r, a.s.opts.Logger, err)
				return
			}
			keys, err := a.auth.APIKeys(r.Context(), "")
			if err != nil {
				writeError(w, r, a.s.opts.Logger, err)
				return
			}
			v.Users, v.Keys = len(users), len(keys)
			for _, u := range users {
				if u.Role == auth.Admin {
					v.Admins++
				}
			}
		}
		if a.adm != nil {
			c := a.adm.Config()
			v.Libs, v.Streams, v.Pacing = len(c.Libraries), len(a.adm.Streams()), paceSummary(c.Pace)
		}
		a.render(w, r, "admin", "Admin", []crumb{adminCrumb}, v, 0)
	})
}

// paceSummary says in one line how streams are paced.
func paceSummary(p config.Pace) string {
	if !p.Enabled {
		return "off: every stream goes as fast as its client reads"
	}
	s := fmt.Sprintf("on, at %s× each file's peak bitrate after a %s burst", strconv.FormatFloat(p.Factor, 'g', -1, 64), p.Burst)
	if p.Uplink > 0 {
		s += ", within an uplink of " + formatBitrate(int64(p.Uplink))
	}
	return s
}

// Users.

// userRow is one user in the list, and the head of a user's page.
type userRow struct {
	ID, Name, Role, Libraries, Created, Href string
	Keys                                     int
	Self                                     bool // the viewer
}

func (a *adminPages) userRow(u auth.Account, self string) userRow {
	libs := strings.Join(u.Libraries, ", ")
	switch {
	case u.Role == auth.Admin:
		libs = "all"
	case libs == "":
		libs = "none"
	}
	return userRow{ID: u.ID, Name: u.Name, Role: string(u.Role), Libraries: libs,
		Created: u.Created.UTC().Format("2006-01-02"), Href: "/admin/users/" + url.PathEscape(u.ID), Self: u.ID == self}
}

// choice is a checkbox or an option of a form.
type choice struct {
	Value, Label string
	Checked      bool
}

// roleChoices are the roles, role selected.
func roleChoices(role string) []choice {
	return []choice{
		{"user", "user: browse and play the libraries given, in the browser and in apps (API keys)", role == "user"},
		{"guest", "guest: browse and play the libraries given, in the browser only (no API keys)", role == "guest"},
		{"admin", "admin: everything, every library, administration", role == "admin"},
	}
}

// libraryNames are the configured libraries: the Admin's configuration,
// else the libraries the server opened.
func (a *adminPages) libraryNames() []string {
	if a.adm != nil {
		c := a.adm.Config()
		names := make([]string, len(c.Libraries))
		for i, l := range c.Libraries {
			names[i] = l.Name
		}
		return names
	}
	if a.s.opts.Tree != nil {
		return a.s.opts.Tree.Names()
	}
	return nil
}

// libraryChoices are the checkboxes of the configured libraries, and of
// any a user has that are no longer configured (so that saving the form
// does not drop them unseen); those in checked are ticked.
func (a *adminPages) libraryChoices(checked []string) []choice {
	names := a.libraryNames()
	var out []choice
	for _, n := range names {
		out = append(out, choice{n, n, slices.Contains(checked, n)})
	}
	for _, n := range checked {
		if !slices.Contains(names, n) {
			out = append(out, choice{n, n + " (not configured)", true})
		}
	}
	return out
}

// checkLibraries refuses a library that is neither configured nor one
// the user already has.
func (a *adminPages) checkLibraries(libs, had []string) error {
	names := a.libraryNames()
	for _, l := range libs {
		if !slices.Contains(names, l) && !slices.Contains(had, l) {
			return badParam(fmt.Sprintf("There is no library named %q.", l))
		}
	}
	return nil
}

// userForm is what the create form had, to show again after a refusal.
type userForm struct {
	Name, Role string
	Libraries  []string
}

type usersView struct {
	Flash, Error string
	Users        []userRow
	Roles        []choice
	Libraries    []choice
	Form         userForm
}

func (a *adminPages) renderUsers(w http.ResponseWriter, r *http.Request, code int, msg string, form userForm) {
	ctx := r.Context()
	users, err := a.auth.Users(ctx)
	if err != nil {
		writeError(w, r, a.s.opts.Logger, err)
		return
	}
	keys, err := a.auth.APIKeys(ctx, "")
	if err != nil {
		writeError(w, r, a.s.opts.Logger, err)
		return
	}
	perUser := map[string]int{}
	for _, k := range keys {
		perUser[k.UserID]++
	}
	self := viewerOf(r).Account.ID
	v := usersView{Flash: flashOf(r), Error: msg, Form: form, Roles: roleChoices(form.Role), Libraries: a.libraryChoices(form.Libraries)}
	for _, u := range users {
		row := a.userRow(u, self)
		row.Keys = perUser[u.ID]
		v.Users = append(v.Users, row)
	}
	if code != 0 {
		v.Flash = ""
	}
	a.render(w, r, "admin_users", "Users", []crumb{adminCrumb, {"Users", "/admin/users"}}, v, code)
}

func (a *adminPages) handleUsers() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if a.accounts(w, r) {
			a.renderUsers(w, r, 0, "", userForm{Role: string(auth.User)})
		}
	})
}

// handleCreateUser adds a user: name, password (twice), role, libraries.
func (a *adminPages) handleCreateUser() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !a.accounts(w, r) || !a.s.readForm(w, r) {
			return
		}
		f := r.PostForm
		form := userForm{Name: f.Get("name"), Role: f.Get("role"), Libraries: f["library"]}
		again := func(code int, msg string) { a.renderUsers(w, r, code, msg, form) }
		role := auth.Role(form.Role)
		switch {
		case f.Get("password") != f.Get("password2"):
			again(http.StatusBadRequest, "The two passwords differ.")
			return
		case !role.Valid():
			// Before AddUser, which hashes the password first.
			again(http.StatusBadRequest, userMessage(auth.ErrBadRole))
			return
		}
		if err := a.checkLibraries(form.Libraries, nil); err != nil {
			a.fail(w, r, err, again)
			return
		}
		libs := form.Libraries
		if role == auth.Admin {
			libs = nil // admins see every library
		}
		u, err := a.auth.AddUser(r.Context(), form.Name, f.Get("password"), role, libs)
		if err != nil {
			a.fail(w, r, err, again)
			return
		}
		a.logChange(r, "admin: user created", "user", u.Name, "role", u.Role)
		done(w, r, "/admin/users", "created", u.Name)
	})
}

type adminUserView struct {
	Flash, Error string
	User         userRow
	Roles        []choice
	Libraries    []choice
	Keys         []keyRow
	// NewKey is the API key just made, shown this once.
	NewKey, NewKeyName string
	KeysAction         string
}

// keyRow is one API key in a list.
type keyRow struct {
	Name, Created, Used, Delete string
}

func keyRows(keys []auth.APIKey, base string) []keyRow {
	out := make([]keyRow, len(keys))
	for i, k := range keys {
		used := "never"
		if !k.Used.IsZero() {
			used = k.Used.UTC().Format("2006-01-02 15:00 UTC")
		}
		out[i] = keyRow{Name: k.Name, Created: k.Created.UTC().Format("2006-01-02 15:04 UTC"), Used: used,
			Delete: base + "/" + url.PathEscape(k.ID) + "/delete"}
	}
	return out
}

// renderUser shows a user's page: access, password, sessions, keys.
func (a *adminPages) renderUser(w http.ResponseWriter, r *http.Request, code int, msg string, v adminUserView) {
	id := r.PathValue("id")
	u, ok := a.auth.Account(id)
	if !ok {
		writeError(w, r, a.s.opts.Logger, auth.ErrNoUser)
		return
	}
	keys, err := a.auth.APIKeys(r.Context(), id)
	if err != nil {
		writeError(w, r, a.s.opts.Logger, err)
		return
	}
	v.User = a.userRow(u, viewerOf(r).Account.ID)
	v.User.Keys = len(keys)
	v.KeysAction = v.User.Href + "/keys"
	v.Keys = keyRows(keys, v.KeysAction)
	if v.Roles == nil {
		v.Roles, v.Libraries = roleChoices(string(u.Role)), a.libraryChoices(u.Libraries)
	}
	v.Error = msg
	if code == 0 {
		v.Flash = flashOf(r)
	}
	a.render(w, r, "admin_user", u.Name, []crumb{adminCrumb, {"Users", "/admin/users"}, {u.Name, v.User.Href}}, v, code)
}

func (a *adminPages) handleUser() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if a.accounts(w, r) {
			a.renderUser(w, r, 0, "", adminUserView{})
		}
	})
}

// actor returns the viewer's account as it is now, under a.mu: an admin
// demoted since the guard let the request in may no longer act.
func (a *adminPages) actor(r *http.Request) (auth.Account, error) {
	u, ok := a.auth.Account(viewerOf(r).Account.ID)
	if !ok || u.Role != auth.Admin {
		return auth.Account{}, errForbidden
	}
	return u, nil
}

// keepsAdmin refuses taking target's admin role away (a demotion or a
// deletion) when target is the one asking or the last admin.
func (a *adminPages) keepsAdmin(ctx context.Context, me, target auth.Account, what string) error {
	if target.Role != auth.Admin {
		return nil
	}
	if target.ID == me.ID {
		return conflict(fmt.Sprintf("You cannot %s yourself: another admin must.", what))
	}
	users, err := a.auth.Users(ctx)
	if err != nil {
		return err
	}
	n := 0
	for _, u := range users {
		if u.Role == auth.Admin {
			n++
		}
	}
	if n <= 1 {
		return conflict(fmt.Sprintf("%s is the last admin: make another admin first.", target.Name))
	}
	return nil
}

// handleSetAccess changes a user's role and libraries.
func (a *adminPages) handleSetAccess() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !a.accounts(w, r) || !a.s.readForm(w, r) {
			return
		}
		f := r.PostForm
		role, libs := auth.Role(f.Get("role")), f["library"]
		again := func(code int, msg string) {
			a.renderUser(w, r, code, msg, adminUserView{Roles: roleChoices(string(role)), Libraries: a.libraryChoices(libs)})
		}
		if !role.Valid() {
			again(http.StatusBadRequest, userMessage(auth.ErrBadRole))
			return
		}
		ctx := r.Context()
		err := func() error {
			a.mu.Lock()
			defer a.mu.Unlock()
			me, err := a.actor(r)
			if err != nil {
				return err
			}
			target, ok := a.auth.Account(r.PathValue("id"))
			if !ok {
				return auth.ErrNoUser
			}
			if err := a.checkLibraries(libs, target.Libraries); err != nil {
				return err
			}
			if role != auth.Admin {
				if err := a.keepsAdmin(ctx, me, target, "take the admin role from"); err != nil {
					return err
				}
			} else {
				libs = nil
			}
			return a.auth.SetAccess(ctx, target.ID, role, libs)
		}()
		if err != nil {
			a.fail(w, r, err, again)
			return
		}
		u, _ := a.auth.Account(r.PathValue("id"))
		a.logChange(r, "admin: access changed", "user", u.Name, "role", role, "libraries", strings.Join(libs, ","))
		done(w, r, "/admin/users/"+url.PathEscape(u.ID), "saved", u.Name)
	})
}

// handleSetPassword sets another user's password, which ends their
// sessions. An admin's own goes through the account page, which asks for
// the current one (a session left open is not enough to change it).
func (a *adminPages) handleSetPassword() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !a.accounts(w, r) || !a.s.readForm(w, r) {
			return
		}
		f := r.PostForm
		again := func(code int, msg string) { a.renderUser(w, r, code, msg, adminUserView{}) }
		id := r.PathValue("id")
		u, ok := a.auth.Account(id)
		switch {
		case !ok:
			writeError(w, r, a.s.opts.Logger, auth.ErrNoUser)
			return
		case id == viewerOf(r).Account.ID:
			a.fail(w, r, conflict("Change your own password on your account page, which asks for the current one."), again)
			return
		case f.Get("password") != f.Get("password2"):
			again(http.StatusBadRequest, "The two passwords differ.")
			return
		}
		if err := a.auth.SetPassword(r.Context(), id, f.Get("password")); err != nil {
			a.fail(w, r, err, again)
			return
		}
		a.logChange(r, "admin: password set", "user", u.Name)
		done(w, r, "/admin/users/"+url.PathEscape(id), "password", u.Name)
	})
}

// handleRevoke ends every session of a user (the admin's own too: the
// next page asks them to sign in).
func (a *adminPages) handleRevoke() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !a.accounts(w, r) {
			return
		}
		id := r.PathValue("id")
		u, ok := a.auth.Account(id)
		if !ok {
			writeError(w, r, a.s.opts.Logger, auth.ErrNoUser)
			return
		}
		if err := a.auth.RevokeSessions(r.Context(), id); err != nil {
			writeError(w, r, a.s.opts.Logger, err)
			return
		}
		a.logChange(r, "admin: sessions revoked", "user", u.Name)
		done(w, r, "/admin/users/"+url.PathEscape(id), "revoked", u.Name)
	})
}

// handleDeleteUser deletes a user with their keys; not the admin asking,
// nor the last admin.
func (a *adminPages) handleDeleteUser() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !a.accounts(w, r) {
			return
		}
		ctx := r.Context()
		var name string
		err := func() error {
			a.mu.Lock()
			defer a.mu.Unlock()
			me, err := a.actor(r)
			if err != nil {
				return err
			}
			target, ok := a.auth.Account(r.PathValue("id"))
			if !ok {
				return auth.ErrNoUser
			}
			if target.ID == me.ID {
				return conflict("You cannot delete yourself: another admin must.")
			}
			if err := a.keepsAdmin(ctx, me, target, "delete"); err != nil {
				return err
			}
			name = target.Name
			return a.auth.DeleteUser(ctx, target.ID)
		}()
		if err != nil {
			a.fail(w, r, err, func(code int, msg string) { a.renderUser(w, r, code, msg, adminUserView{}) })
			return
		}
		a.logChange(r, "admin: user deleted", "user", name)
		done(w, r, "/admin/users", "deleted", name)
	})
}

// maxKeyName is the longest API key name the store takes.
const maxKeyName = 64

// keyName checks a new API key's name as the store would, so that its
// refusal is a 400 and not a failure.
func keyName(s string) (string, error) {
	s = strings.TrimSpace(s)
	if s == "" || len(s) > maxKeyName {
		return "", badParam(fmt.Sprintf("An API key's name is 1 to %d characters: say which program uses it.", maxKeyName))
	}
	return s, nil
}

// handleCreateKey makes an API key for a user and shows it this once.
func (a *adminPages) handleCreateKey() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !a.accounts(w, r) || !a.s.readForm(w, r) {
			return
		}
		again := func(code int, msg string) { a.renderUser(w, r, code, msg, adminUserView{}) }
		name, err := keyName(r.PostForm.Get("name"))
		if err != nil {
			a.fail(w, r, err, again)
			return
		}
		key, k, err := a.auth.AddAPIKey(r.Context(), r.PathValue("id"), name)
		if err != nil {
			a.fail(w, r, err, again)
			return
		}
		u, _ := a.auth.Account(k.UserID)
		a.logChange(r, "admin: API key created", "user", u.Name, "key", k.Name)
		a.renderUser(&noStore{ResponseWriter: w}, r, 0, "", adminUserView{NewKey: key, NewKeyName: k.Name})
	})
}

// handleDeleteKey revokes one of a user's API keys.
func (a *adminPages) handleDeleteKey() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !a.accounts(w, r) {
			return
		}
		id := r.PathValue("id")
		if err := a.auth.DeleteAPIKey(r.Context(), id, r.PathValue("key")); err != nil {
			writeError(w, r, a.s.opts.Logger, err)
			return
		}
		u, _ := a.auth.Account(id)
		a.logChange(r, "admin: API key deleted", "user", u.Name)
		done(w, r, "/admin/users/"+url.PathEscape(id), "key-deleted", "")
	})
}

// Libraries.

// libRow is one configured library, with what the index knows of it.
type libRow struct {
	Name, Path, Delete string
	Dotfiles, Paced    bool
	Indexed, Online    bool
	Error              string
	Items              int
}

// libForm is what the add form had.
type libForm struct {
	Name, Path string
	Dotfiles   bool
}

type librariesView struct {
	Flash, Error string
	Libraries    []libRow
	Form         libForm
}

func (a *adminPages) renderLibraries(w http.ResponseWriter, r *http.Request, code int, msg string, form libForm) {
	v := librariesView{Error: msg, Form: form}
	if code == 0 {
		v.Flash = flashOf(r)
	}
	known := map[string]bool{}
	for _, l := range a.adm.Config().Libraries {
		known[l.Name] = true
		v.Libraries = append(v.Libraries, libRow{Name: l.Name, Path: l.Where(), Dotfiles: l.Dotfiles, Paced: l.Pace != nil,
			Delete: "/admin/libraries/" + url.PathEscape(l.Name) + "/delete"})
	}
	if x := a.s.opts.Index; x != nil {
		libs, err := x.Libraries(r.Context())
		if err != nil && !errors.Is(err, context.Canceled) {
			// The page is still useful without the counts.
			a.s.opts.Logger.Warn("admin libraries: index", "err", err)
		}
		for _, il := range libs {
			if i := slices.IndexFunc(v.Libraries, func(l libRow) bool { return l.Name == il.Name }); i >= 0 {
				row := &v.Libraries[i]
				row.Indexed, row.Online, row.Error, row.Items = true, il.Online, il.Error, il.Items
			}
		}
	}
	a.render(w, r, "admin_libraries", "Libraries", []crumb{adminCrumb, {"Libraries", "/admin/libraries"}}, v, code)
}

func (a *adminPages) handleLibraries() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if a.settings(w, r) {
			a.renderLibraries(w, r, 0, "", libForm{})
		}
	})
}

// handleAddLibrary appends a library to the configuration. Whether it
// can be (a name in use, an empty path) is the configuration's
// validation's to say.
func (a *adminPages) handleAddLibrary() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !a.settings(w, r) || !a.s.readForm(w, r) {
			return
		}
		f := r.PostForm
		lib := config.Library{Name: strings.TrimSpace(f.Get("name")), Path: strings.TrimSpace(f.Get("path")), Dotfiles: f.Get("dotfiles") != ""}
		if where := lib.Path; strings.HasPrefix(where, "http://") || strings.HasPrefix(where, "https://") || strings.HasPrefix(where, "s3://") {
			// A library on another server (credentials, if any, in the
			// URL or the environment; a token or keys in the file).
			lib.Path, lib.URL = "", where
		}
		_, err := a.adm.Apply(r.Context(), func(c *config.Config) error {
			c.Libraries = append(c.Libraries, lib)
			return nil
		})
		if err != nil {
			a.fail(w, r, err, func(code int, msg string) {
				a.renderLibraries(w, r, code, msg, libForm{lib.Name, lib.Path + lib.URL, lib.Dotfiles})
			})
			return
		}
		a.logChange(r, "admin: library added", "library", lib.Name, "where", lib.Where()) // no password of a URL
		done(w, r, "/admin/libraries", "library-added", lib.Name)
	})
}

// handleRemoveLibrary removes a library from the configuration (its
// files stay on disk; users given it keep its name, which matches
// nothing until a library of that name comes back).
func (a *adminPages) handleRemoveLibrary() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !a.settings(w, r) {
			return
		}
		name := r.PathValue("name")
		_, err := a.adm.Apply(r.Context(), func(c *config.Config) error {
			i := slices.IndexFunc(c.Libraries, func(l config.Library) bool { return l.Name == name })
			if i < 0 {
				return fmt.Errorf("no library named %q: %w", name, fs.ErrNotExist)
			}
			c.Libraries = slices.Delete(c.Libraries, i, i+1)
			return nil
		})
		if err != nil {
			a.fail(w, r, err, func(code int, msg string) { a.renderLibraries(w, r, code, msg, libForm{}) })
			return
		}
		// Grants of the library go with it: a library added later under
		// the same name must not reach its old users unasked.
		if a.auth != nil {
			if err := a.dropGrants(r.Context(), name); err != nil {
				writeError(w, r, a.s.opts.Logger, err)
				return
			}
		}
		a.logChange(r, "admin: library removed", "library", name)
		done(w, r, "/admin/libraries", "library-removed", name)
	})
}

// dropGrants takes library lib out of every user's libraries.
func (a *adminPages) dropGrants(ctx context.Context, lib string) error {
	users, err := a.auth.Users(ctx)
	if err != nil {
		return err
	}
	for _, u := range users {
		if slices.Contains(u.Libraries, lib) {
			libs := slices.DeleteFunc(slices.Clone(u.Libraries), func(l string) bool { return l == lib })
			if err := a.auth.SetAccess(ctx, u.ID, u.Role, libs); err != nil {
				return err
			}
		}
	}
	return nil
}

func (a *adminPages) handleRescan() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !a.settings(w, r) {
			return
		}
		code := "scan-started"
		if !a.adm.Rescan() {
			code = "scan-running"
		}
		done(w, r, "/admin/libraries", code, "")
	})
}

// Pacing.

// pacingForm is the [pace] section as the form shows it: text as the
// configuration file spells it.
type pacingForm struct {
	Enabled                                               bool
	Factor, Burst, Window, Uplink, PerClient, UnknownRate string
	OnFull                                                string
	QueueOnFull                                           bool
}

func pacingFormOf(p config.Pace) pacingForm {
	return pacingForm{Enabled: p.Enabled, Factor: strconv.FormatFloat(p.Factor, 'g', -1, 64), Burst: p.Burst.String(),
		Window: p.Window.String(), Uplink: p.Uplink.String(), PerClient: p.PerClient.String(),
		UnknownRate: p.UnknownRate.String(), OnFull: p.OnFull, QueueOnFull: p.OnFull == "queue"}
}

// parsePacing reads the pacing form with the configuration's own
// parsers; the first mistake is the error, naming the key.
func parsePacing(f url.Values) (config.Pace, error) {
	var p config.Pace
	for _, k := range []string{"enabled", "factor", "burst", "window", "uplink", "per_client", "unknown_rate", "on_full"} {
		if len(f[k]) == 0 {
			return p, badParam(fmt.Sprintf("pace.%s is missing from the form.", k))
		}
	}
	// The checkbox follows a hidden "false": the last value is the box's.
	en := f["enabled"]
	p.Enabled = en[len(en)-1] == "true"
	var err error
	if p.Factor, err = strconv.ParseFloat(strings.TrimSpace(f.Get("factor")), 64); err != nil {
		return p, badParam(fmt.Sprintf("pace.factor %q: want a number such as 1.25.", f.Get("factor")))
	}
	for k, d := range map[string]*config.Duration{"burst": &p.Burst, "window": &p.Window} {
		if err := d.UnmarshalText([]byte(strings.TrimSpace(f.Get(k)))); err != nil {
			return p, badParam(fmt.Sprintf("pace.%s %q: want a duration such as 8s or 1m30s.", k, f.Get(k)))
		}
	}
	for _, k := range []string{"uplink", "per_client", "unknown_rate"} {
		b, err := config.ParseBitrate(f.Get(k))
		if err != nil {
			return p, badParam(fmt.Sprintf("pace.%s: %v.", k, err))
		}
		switch k {
		case "uplink":
			p.Uplink = b
		case "per_client":
			p.PerClient = b
		default:
			p.UnknownRate = b
		}
	}
	p.OnFull = f.Get("on_full")
	return p, nil
}

type pacingView struct {
	Flash, Error string
	Form         pacingForm
}

func (a *adminPages) renderPacing(w http.ResponseWriter, r *http.Request, code int, msg string, form pacingForm) {
	v := pacingView{Error: msg, Form: form}
	if code == 0 {
		v.Flash = flashOf(r)
	}
	a.render(w, r, "admin_pacing", "Pacing", []crumb{adminCrumb, {"Pacing", "/admin/pacing"}}, v, code)
}

func (a *adminPages) handlePacing() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if a.settings(w, r) {
			a.renderPacing(w, r, 0, "", pacingFormOf(a.adm.Config().Pace))
		}
	})
}

// handleSetPacing changes [pace]: parsed here, validated with the whole
// configuration by Apply, refused with the reason and nothing changed.
func (a *adminPages) handleSetPacing() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !a.settings(w, r) || !a.s.readForm(w, r) {
			return
		}
		f := r.PostForm
		// The form as sent, to correct.
		sent := pacingForm{Enabled: len(f["enabled"]) > 0 && f["enabled"][len(f["enabled"])-1] == "true",
			Factor: f.Get("factor"), Burst: f.Get("burst"), Window: f.Get("window"), Uplink: f.Get("uplink"),
			PerClient: f.Get("per_client"), UnknownRate: f.Get("unknown_rate"), OnFull: f.Get("on_full"),
			QueueOnFull: f.Get("on_full") == "queue"}
		again := func(code int, msg string) { a.renderPacing(w, r, code, msg, sent) }
		p, err := parsePacing(f)
		if err != nil {
			a.fail(w, r, err, again)
			return
		}
		// Only [pace] changes: the file's other settings are its own, and
		// the running config may differ from it (flags, environment).
		if _, err := a.adm.Apply(r.Context(), func(c *config.Config) error {
			c.Pace = p
			return nil
		}); err != nil {
			a.fail(w, r, err, again)
			return
		}
		a.logChange(r, "admin: pacing changed", "enabled", p.Enabled, "factor", p.Factor, "uplink", p.Uplink.String(),
			"per_client", p.PerClient.String())
		done(w, r, "/admin/pacing", "pacing-saved", "")
	})
}

// Signing key.

type securityView struct {
	Flash, Error                 string
	Overlap, SessionTTL, LinkTTL string // "" when not known (no Admin)
}

func (a *adminPages) handleSecurity() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !a.accounts(w, r) {
			return
		}
		v := securityView{Flash: flashOf(r)}
		if a.adm != nil {
			c := a.adm.Config().Auth
			v.Overlap, v.SessionTTL, v.LinkTTL = humanDuration(c.KeyOverlap), humanDuration(c.SessionTTL), humanDuration(c.LinkTTL)
		}
		a.render(w, r, "admin_security", "Signing key", []crumb{adminCrumb, {"Signing key", "/admin/security"}}, v, 0)
	})
}

// humanDuration writes a configured duration for people: "1h", "30 days".
func humanDuration(d config.Duration) string {
	t := time.Duration(d)
	if t >= 48*time.Hour && t%(24*time.Hour) == 0 {
		return strconv.Itoa(int(t/(24*time.Hour))) + " days"
	}
	s := t.String()
	if strings.HasSuffix(s, "m0s") {
		s = s[:len(s)-2]
	}
	if strings.HasSuffix(s, "h0m") {
		s = s[:len(s)-2]
	}
	return s
}

func (a *adminPages) handleRotate() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !a.accounts(w, r) {
			return
		}
		if err := a.auth.RotateKey(); err != nil {
			writeError(w, r, a.s.opts.Logger, fmt.Errorf("rotate signing key: %w", err))
			return
		}
		a.logChange(r, "admin: signing key rotated")
		done(w, r, "/admin/security", "rotated", "")
	})
}

// Streams.

// streamRow is one running stream as the page shows it.
type streamRow struct {
	ID, Who, Client, What, Rate, Pace, Sent, Since, For, State, Stop string
}

func streamRows(ss []pace.StreamInfo, now time.Time) []streamRow {
	out := make([]streamRow, len(ss))
	for i, s := range ss {
		who := s.User
		if who == "" {
			who = s.Client
		}
		state := "paced"
		switch {
		case s.Stopped:
			state = "stopping"
		case s.Bursting:
			state = "bursting"
		}
		p := formatBitrate(s.Pace * 8)
		if p == "" {
			p = "unlimited"
		}
		out[i] = streamRow{ID: s.ID, Who: who, Client: s.Client, What: s.Label, Rate: formatBitrate(s.Rate * 8), Pace: p,
			Sent: humanSize(s.Sent), Since: s.Started.UTC().Format("15:04:05 UTC"),
			For: formatDuration(max(now.Sub(s.Started), time.Second).Seconds()), State: state,
			Stop: "/admin/streams/" + url.PathEscape(s.ID) + "/stop"}
	}
	return out
}

type streamsView struct {
	Flash   string
	Error   string
	Streams []streamRow
}

func (a *adminPages) handleStreams() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !a.settings(w, r) {
			return
		}
		v := streamsView{Flash: flashOf(r), Streams: streamRows(a.adm.Streams(), time.Now())}
		a.render(w, r, "admin_streams", "Streams", []crumb{adminCrumb, {"Streams", "/admin/streams"}}, v, 0)
	})
}

func (a *adminPages) handleStopStream() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !a.settings(w, r) {
			return
		}
		id := r.PathValue("id")
		// A stream that ended between the list and the click is no error.
		code := "stream-gone"
		if a.adm.StopStream(id) {
			code = "stopped"
			a.logChange(r, "admin: stream stopped", "stream", id)
		}
		done(w, r, "/admin/streams", code, "")
	})
}

// apiStream is a running stream in GET /api/admin/streams; rates are in
// bits per second.
type apiStream struct {
	ID       string    `json:"id"`
	User     string    `json:"user,omitempty"`
	Client   string    `json:"client"`
	Label    string    `json:"label"`
	Rate     int64     `json:"rate"` // reserved
	Pace     int64     `json:"pace"` // allowed now; 0: no limit
	Sent     int64     `json:"sent"` // bytes
	Started  time.Time `json:"started"`
	Bursting bool      `json:"bursting,omitempty"`
	Stopped  bool      `json:"stopped,omitempty"`
}

func (a *adminPages) handleAPIStreams() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if a.adm == nil {
			writeJSONError(w, r, a.s.opts.Logger, errNoAdmin)
			return
		}
		ss := a.adm.Streams()
		out := make([]apiStream, len(ss))
		for i, s := range ss {
			out[i] = apiStream{ID: s.ID, User: s.User, Client: s.Client, Label: s.Label, Rate: s.Rate * 8, Pace: s.Pace * 8,
				Sent: s.Sent, Started: s.Started.UTC(), Bursting: s.Bursting, Stopped: s.Stopped}
		}
		writeJSON(w, r, a.s.opts.Logger, http.StatusOK, out)
	})
}
