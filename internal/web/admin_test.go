package web

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"mustserv/internal/auth"
	"mustserv/internal/config"
	"mustserv/internal/pace"
	"mustserv/internal/stream"
)

// fakeAdmin keeps a configuration in memory and validates changes as
// the real one does: a change that fails, or makes a config Validate
// refuses, is a *config.RefusedError and changes nothing.
type fakeAdmin struct {
	mu      sync.Mutex
	cfg     config.Config
	calls   int // Apply calls, refused ones too
	streams []pace.StreamInfo
	stopped []string // StopStream's arguments
	rescans int
	running bool // a scan runs: Rescan starts none
}

// streamStart is when the fake's streams began.
var streamStart = time.Date(2026, 3, 1, 20, 15, 0, 0, time.UTC)

func newFakeAdmin(libs ...string) *fakeAdmin {
	c := config.Default()
	for _, l := range libs {
		c.Libraries = append(c.Libraries, config.Library{Name: l, Path: "/srv/" + strings.ToLower(l)})
	}
	return &fakeAdmin{cfg: c, streams: []pace.StreamInfo{
		{ID: "s1", Client: "192.0.2.7", User: "mel", Label: "Music/Björk/Homogenic/01 Hunter.mp3",
			Rate: 50_000, Pace: 62_500, Sent: 3_000_000, Started: streamStart},
		{ID: "s2", Client: "192.0.2.8", Label: "Videos/clip.mp4", Rate: 1_000_000, Sent: 12_345, Started: streamStart, Bursting: true},
	}}
}

// clone copies the slices a change could modify in place.
func clone(c config.Config) config.Config {
	c.Libraries = slices.Clone(c.Libraries)
	c.Server.TrustedProxies = slices.Clone(c.Server.TrustedProxies)
	return c
}

func (a *fakeAdmin) Config() config.Config {
	a.mu.Lock()
	defer a.mu.Unlock()
	return clone(a.cfg)
}

func (a *fakeAdmin) Apply(ctx context.Context, change func(*config.Config) error) (config.Config, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.calls++
	c := clone(a.cfg)
	if err := change(&c); err != nil {
		return config.Config{}, &config.RefusedError{Err: err}
	}
	if err := c.Validate(); err != nil {
		return config.Config{}, &config.RefusedError{Err: err}
	}
	a.cfg = c
	return clone(c), nil
}

func (a *fakeAdmin) Streams() []pace.StreamInfo {
	a.mu.Lock()
	defer a.mu.Unlock()
	return slices.Clone(a.streams)
}

func (a *fakeAdmin) StopStream(id string) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.stopped = append(a.stopped, id)
	i := slices.IndexFunc(a.streams, func(s pace.StreamInfo) bool { return s.ID == id })
	if i < 0 {
		return false
	}
	a.streams = slices.Delete(a.streams, i, i+1)
	return true
}

func (a *fakeAdmin) Rescan() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.rescans++
	started := !a.running
	a.running = true
	return started
}

// state is what the fake has seen, for comparisons.
func (a *fakeAdmin) state() (config.Config, int, []string, int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return clone(a.cfg), a.calls, slices.Clone(a.stopped), a.rescans
}

// signIn returns a session of name made from an address of its own, so
// that the tests' requests leave the login limits of 127.0.0.1 alone.
func signIn(t *testing.T, f *authFixture, name string) string {
	t.Helper()
	tok, _, err := f.svc.Login(t.Context(), name, f.passwords[name], "192.0.2.200")
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// as sends a GET with a session cookie.
func (f *authFixture) as(t *testing.T, target, cookie string) (*http.Response, string) {
	t.Helper()
	return send(t, f.srv, http.MethodGet, target, "", http.Header{"Cookie": {sessionCookie + "=" + cookie}})
}

// form posts v as a same-origin form with a session cookie.
func (f *authFixture) form(t *testing.T, target string, v url.Values, cookie string) (*http.Response, string) {
	t.Helper()
	return f.post(t, target, v.Encode(), cookie)
}

// bearer sends a GET with an API key.
func (f *authFixture) bearer(t *testing.T, target, key string) (*http.Response, string) {
	t.Helper()
	return send(t, f.srv, http.MethodGet, target, "", http.Header{"Authorization": {"Bearer " + key}})
}

// userNamed returns the stored account of name.
func userNamed(t *testing.T, svc *auth.Service, name string) (auth.Account, bool) {
	t.Helper()
	users, err := svc.Users(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	i := slices.IndexFunc(users, func(u auth.Account) bool { return u.Name == name })
	if i < 0 {
		return auth.Account{}, false
	}
	return users[i], true
}

func wantStatus(t *testing.T, what string, resp *http.Response, body string, code int) {
	t.Helper()
	if resp.StatusCode != code {
		t.Fatalf("%s: %s, want %d\n%.600s", what, resp.Status, code, body)
	}
}

// wantDone checks a form's 303 back to page with done=code.
func wantDone(t *testing.T, what string, resp *http.Response, body, page, code string) {
	t.Helper()
	wantStatus(t, what, resp, body, http.StatusSeeOther)
	loc, err := url.Parse(resp.Header.Get("Location"))
	if err != nil || loc.Path != page || loc.Query().Get("done") != code {
		t.Fatalf("%s: Location %q, want %s?done=%s", what, resp.Header.Get("Location"), page, code)
	}
}

// sessionOf returns the session cookie a response sets, or "".
func sessionOf(resp *http.Response) string {
	for _, c := range resp.Cookies() {
		if c.Name == sessionCookie {
			return c.Value
		}
	}
	return ""
}

var keyValue = regexp.MustCompile(`data-testid="apikey-value">(mk_[A-Za-z0-9_-]+)<`)

// shownKey is the API key a page shows, checking it is shown once and
// kept out of caches.
func shownKey(t *testing.T, resp *http.Response, body string) string {
	t.Helper()
	m := keyValue.FindAllStringSubmatch(body, -1)
	if len(m) != 1 || strings.Count(body, m[0][1]) != 1 {
		t.Fatalf("want the new key once on the page, got %d matches\n%.800s", len(m), body)
	}
	if cc := resp.Header.Get("Cache-Control"); cc != "no-store" {
		t.Errorf("Cache-Control of the page showing a key: %q, want no-store", cc)
	}
	return m[0][1]
}

// TestAdminUsers creates, changes, signs out and deletes a user through
// the forms, checking the accounts after each, and the refusals of the
// create form.
func TestAdminUsers(t *testing.T) {
	t.Parallel()
	f := newAuthFixture(t)
	root := signIn(t, f, "root")

	resp, body := f.as(t, "/admin/users", root)
	wantStatus(t, "users page", resp, body, http.StatusOK)
	if n := strings.Count(body, `data-testid="user-row"`); n != 3 {
		t.Errorf("users page: %d user rows, want 3", n)
	}
	for _, s := range []string{`data-user="mel"`, `data-user="vid"`, `data-testid="user-create"`, `name="library" value="Music"`, `name="library" value="Videos"`} {
		if !strings.Contains(body, s) {
			t.Errorf("users page lacks %s", s)
		}
	}

	create := url.Values{"name": {"ann"}, "password": {"ann password 4"}, "password2": {"ann password 4"},
		"role": {"guest"}, "library": {"Music", "Videos"}}
	f.passwords["ann"] = "ann password 4"
	resp, body = f.form(t, "/admin/users", create, root)
	wantDone(t, "create", resp, body, "/admin/users", "created")
	ann, ok := userNamed(t, f.svc, "ann")
	if !ok || ann.Role != auth.Guest || !slices.Equal(ann.Libraries, []string{"Music", "Videos"}) {
		t.Fatalf("created user: %+v (found %v)", ann, ok)
	}
	_, body = f.as(t, resp.Header.Get("Location"), root)
	if !strings.Contains(body, `data-testid="flash"`) || !strings.Contains(body, `User &#34;ann&#34; created.`) {
		t.Errorf("after create: no flash\n%.600s", body)
	}

	// Refusals: nothing is created, and the form says why.
	refusals := []struct {
		name   string
		change func(url.Values)
		code   int
		reason string
	}{
		{"name in use", func(v url.Values) { v.Set("name", "ANN") }, http.StatusConflict, "A user of that name exists."},
		{"short password", func(v url.Values) { v.Set("password", "short"); v.Set("password2", "short") }, http.StatusBadRequest, "at least 8 characters"},
		{"passwords differ", func(v url.Values) { v.Set("password2", "other password") }, http.StatusBadRequest, "The two passwords differ."},
		{"bad role", func(v url.Values) { v.Set("role", "root") }, http.StatusBadRequest, "The role is admin, user or guest."},
		{"unknown library", func(v url.Values) { v["library"] = []string{"Music", "Secret"} }, http.StatusBadRequest, `no library named &#34;Secret&#34;`},
		{"bad name", func(v url.Values) { v.Set("name", " spaced ") }, http.StatusBadRequest, "without spaces at its ends"},
	}
	for _, tc := range refusals {
		v := url.Values{"name": {"bob"}, "password": {"bob password 5"}, "password2": {"bob password 5"}, "role": {"user"}}
		tc.change(v)
		resp, body := f.form(t, "/admin/users", v, root)
		if resp.StatusCode != tc.code || !strings.Contains(body, tc.reason) || !strings.Contains(body, `data-testid="flash-error"`) {
			t.Errorf("%s: %s, want %d with %q\n%.400s", tc.name, resp.Status, tc.code, tc.reason, body)
		}
		if users, _ := f.svc.Users(t.Context()); len(users) != 4 {
			t.Errorf("%s: %d users, want 4", tc.name, len(users))
		}
	}

	// Access.
	page := "/admin/users/" + ann.ID
	resp, body = f.as(t, page, root)
	wantStatus(t, "user page", resp, body, http.StatusOK)
	for _, s := range []string{`data-testid="user-access"`, `data-testid="user-password"`, `data-testid="user-delete"`, `data-testid="apikey-create"`} {
		if !strings.Contains(body, s) {
			t.Errorf("user page lacks %s", s)
		}
	}
	resp, body = f.form(t, page, url.Values{"role": {"user"}, "library": {"Videos"}}, root)
	wantDone(t, "access", resp, body, page, "saved")
	if a, _ := f.svc.Account(ann.ID); a.Role != auth.User || !slices.Equal(a.Libraries, []string{"Videos"}) {
		t.Errorf("after access change: %+v", a)
	}

	// Password: the old one and ann's sessions stop working.
	annSession := signIn(t, f, "ann")
	resp, body = f.form(t, page+"/password", url.Values{"password": {"ann password 6"}, "password2": {"ann password 6"}}, root)
	wantDone(t, "password", resp, body, page, "password")
	if _, _, err := f.svc.Login(t.Context(), "ann", "ann password 4", "192.0.2.201"); err == nil {
		t.Error("the old password still works")
	}
	if _, _, err := f.svc.Login(t.Context(), "ann", "ann password 6", "192.0.2.201"); err != nil {
		t.Errorf("the new password: %v", err)
	}
	if resp, _ := f.as(t, "/api/me", annSession); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("a session from before the new password: %s, want 401", resp.Status)
	}

	// Sign out everywhere.
	f.passwords["ann"] = "ann password 6"
	annSession = signIn(t, f, "ann")
	if resp, _ := f.as(t, "/api/me", annSession); resp.StatusCode != http.StatusOK {
		t.Fatalf("new session: %s", resp.Status)
	}
	resp, body = f.post(t, page+"/revoke", "", root)
	wantDone(t, "revoke", resp, body, page, "revoked")
	if resp, _ := f.as(t, "/api/me", annSession); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("a session after revoke: %s, want 401", resp.Status)
	}

	// Delete, with the user's API keys.
	key, _, err := f.svc.AddAPIKey(t.Context(), ann.ID, "phone")
	if err != nil {
		t.Fatal(err)
	}
	resp, body = f.post(t, page+"/delete", "", root)
	wantDone(t, "delete", resp, body, "/admin/users", "deleted")
	if _, ok := userNamed(t, f.svc, "ann"); ok {
		t.Error("ann still exists")
	}
	if resp, _ := f.bearer(t, "/api/me", key); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("a deleted user's key: %s, want 401", resp.Status)
	}
	for _, target := range []string{page, page + "/delete", page + "/revoke"} {
		method := http.MethodPost
		if target == page {
			method = http.MethodGet
		}
		resp, _ := send(t, f.srv, method, target, "", http.Header{"Cookie": {sessionCookie + "=" + root}})
		if resp.StatusCode != http.StatusNotFound {
			t.Errorf("%s %s of a deleted user: %s, want 404", method, target, resp.Status)
		}
	}
}

// TestAdminLastAdmin: an admin cannot demote or delete themselves, nor
// set their own password without the current one; two admins demoting
// each other at once leave one.
func TestAdminLastAdmin(t *testing.T) {
	t.Parallel()
	f := newAuthFixture(t)
	root := signIn(t, f, "root")
	page := "/admin/users/" + f.admin.ID
	cases := []struct {
		name, target string
		form         url.Values
		reason       string
	}{
		{"demote", page, url.Values{"role": {"user"}, "library": {"Music"}}, "You cannot take the admin role from yourself"},
		{"delete", page + "/delete", nil, "You cannot delete yourself"},
		{"password", page + "/password", url.Values{"password": {"new root pass"}, "password2": {"new root pass"}}, "on your account page"},
	}
	for _, tc := range cases {
		resp, body := f.form(t, tc.target, tc.form, root)
		if resp.StatusCode != http.StatusConflict || !strings.Contains(body, tc.reason) {
			t.Errorf("%s: %s, want 409 with %q\n%.400s", tc.name, resp.Status, tc.reason, body)
		}
	}
	if a, ok := f.svc.Account(f.admin.ID); !ok || a.Role != auth.Admin {
		t.Fatalf("root after refusals: %+v %v", a, ok)
	}
	if _, _, err := f.svc.Login(t.Context(), "root", f.passwords["root"], "192.0.2.202"); err != nil {
		t.Errorf("root's password changed: %v", err)
	}
	if resp, _ := f.as(t, "/admin", root); resp.StatusCode != http.StatusOK {
		t.Errorf("root's session after refusals: %s", resp.Status)
	}
	// Own page: no delete form, no password form.
	_, body := f.as(t, page, root)
	if strings.Contains(body, `data-testid="user-delete"`) || strings.Contains(body, `data-testid="user-password"`) {
		t.Error("the admin's own page offers to delete them or set their password")
	}

	// Two admins demote each other at the same moment: one wins, in
	// every round. (Without the lock both may pass the check; the rounds
	// make that likelier to show, not certain.)
	f.passwords["eve"] = "eve password 7"
	eve, err := f.svc.AddUser(t.Context(), "eve", f.passwords["eve"], auth.Admin, nil)
	if err != nil {
		t.Fatal(err)
	}
	cookies := []string{root, signIn(t, f, "eve")}
	targets := []string{"/admin/users/" + eve.ID, page}
	for round := range 20 {
		for _, id := range []string{f.admin.ID, eve.ID} {
			if err := f.svc.SetAccess(t.Context(), id, auth.Admin, nil); err != nil {
				t.Fatal(err)
			}
		}
		codes := make([]int, 2)
		errs := make([]error, 2)
		var wg sync.WaitGroup
		for i := range 2 {
			wg.Go(func() {
				codes[i], errs[i] = postStatus(f.srv, targets[i], url.Values{"role": {"user"}}.Encode(), cookies[i])
			})
		}
		wg.Wait()
		if err := errors.Join(errs...); err != nil {
			t.Fatal(err)
		}
		slices.Sort(codes)
		if codes[0] != http.StatusSeeOther || (codes[1] != http.StatusForbidden && codes[1] != http.StatusConflict) {
			t.Errorf("round %d: mutual demotion: %v, want one 303 and one 403 or 409", round, codes)
		}
		users, _ := f.svc.Users(t.Context())
		admins := 0
		for _, u := range users {
			if u.Role == auth.Admin {
				admins++
			}
		}
		if admins != 1 {
			t.Fatalf("round %d: after mutual demotion: %d admins, want 1", round, admins)
		}
	}
}

// postStatus posts a form from any goroutine (no t.Fatal) and returns
// the status.
func postStatus(srv *httptest.Server, target, form, cookie string) (int, error) {
	req, err := http.NewRequest(http.MethodPost, srv.URL+target, strings.NewReader(form))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Cookie", sessionCookie+"="+cookie)
	resp, err := noRedirects(srv).Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, nil
}

// TestAdminAPIKeys: an admin makes a key for a user; it is shown once,
// works as a Bearer token as that user, and stops when deleted.
func TestAdminAPIKeys(t *testing.T) {
	t.Parallel()
	f := newAuthFixture(t)
	root := signIn(t, f, "root")
	page := "/admin/users/" + f.user.ID
	resp, body := f.form(t, page+"/keys", url.Values{"name": {"phone"}}, root)
	wantStatus(t, "create key", resp, body, http.StatusOK)
	key := shownKey(t, resp, body)

	resp, body = f.bearer(t, "/api/me", key)
	var me meView
	if err := json.Unmarshal([]byte(body), &me); err != nil || resp.StatusCode != http.StatusOK || me.Name != "mel" || me.Via != "key" {
		t.Fatalf("the new key as Bearer: %s %s", resp.Status, body)
	}
	_, body = f.as(t, page, root)
	if strings.Contains(body, key) || strings.Contains(body, "apikey-value") {
		t.Error("the key is shown again on the user's page")
	}
	if n := strings.Count(body, `data-testid="apikey-row"`); n != 1 || !strings.Contains(body, "phone") {
		t.Errorf("user page: %d key rows, want the one named phone", n)
	}
	keys, err := f.svc.APIKeys(t.Context(), f.user.ID)
	if err != nil || len(keys) != 1 || keys[0].Name != "phone" {
		t.Fatalf("stored keys: %+v %v", keys, err)
	}

	// A name the store would refuse is the form's mistake.
	for _, name := range []string{"", "  ", strings.Repeat("k", 65)} {
		resp, body := f.form(t, page+"/keys", url.Values{"name": {name}}, root)
		if resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, "1 to 64 characters") {
			t.Errorf("key named %q: %s, want 400", name, resp.Status)
		}
	}
	// Another user's key through this user's page is unknown.
	vidKey, vk, err := f.svc.AddAPIKey(t.Context(), f.videos.ID, "tv")
	if err != nil {
		t.Fatal(err)
	}
	resp, _ = f.post(t, page+"/keys/"+vk.ID+"/delete", "", root)
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("vid's key through mel's page: %s, want 404", resp.Status)
	}
	if resp, _ := f.bearer(t, "/api/me", vidKey); resp.StatusCode != http.StatusOK {
		t.Errorf("vid's key after a refused delete: %s", resp.Status)
	}

	resp, body = f.post(t, page+"/keys/"+keys[0].ID+"/delete", "", root)
	wantDone(t, "delete key", resp, body, page, "key-deleted")
	if resp, _ := f.bearer(t, "/api/me", key); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("a deleted key: %s, want 401", resp.Status)
	}
}

// TestAdminLibraries adds and removes libraries through Apply; a refused
// change answers 400 with the validation's reason and changes nothing.
func TestAdminLibraries(t *testing.T) {
	t.Parallel()
	f := newAuthFixture(t)
	root := signIn(t, f, "root")
	resp, body := f.as(t, "/admin/libraries", root)
	wantStatus(t, "libraries page", resp, body, http.StatusOK)
	for _, s := range []string{`data-library="Music"`, `data-library="Videos"`, "/srv/music", `data-testid="library-add"`,
		"offline: folder not mounted", `data-testid="admin-rescan"`} {
		if !strings.Contains(body, s) {
			t.Errorf("libraries page lacks %s", s)
		}
	}

	resp, body = f.form(t, "/admin/libraries", url.Values{"name": {"Films"}, "path": {"/srv/films"}, "dotfiles": {"true"}}, root)
	wantDone(t, "add", resp, body, "/admin/libraries", "library-added")
	cfg, _, _, _ := f.adm.state()
	if i := slices.IndexFunc(cfg.Libraries, func(l config.Library) bool { return l.Name == "Films" }); i < 0 ||
		cfg.Libraries[i] != (config.Library{Name: "Films", Path: "/srv/films", Dotfiles: true}) {
		t.Fatalf("after add: %+v", cfg.Libraries)
	}
	// A URL is a library on another server; its password shows nowhere.
	resp, body = f.form(t, "/admin/libraries", url.Values{"name": {"NAS"}, "path": {"http://me:hunter2@nas.local/media/"}}, root)
	wantDone(t, "add a URL", resp, body, "/admin/libraries", "library-added")
	cfg, _, _, _ = f.adm.state()
	if i := slices.IndexFunc(cfg.Libraries, func(l config.Library) bool { return l.Name == "NAS" }); i < 0 ||
		cfg.Libraries[i] != (config.Library{Name: "NAS", URL: "http://me:hunter2@nas.local/media/"}) {
		t.Fatalf("after adding a URL: %+v", cfg.Libraries)
	}
	resp, body = f.as(t, "/admin/libraries", root)
	if !strings.Contains(body, "http://nas.local/media/") || strings.Contains(body, "hunter2") {
		t.Errorf("libraries page: the URL without its password, want %q and no password\n%.600s", "http://nas.local/media/", body)
	}
	resp, body = f.post(t, "/admin/libraries/NAS/delete", "", root)
	wantDone(t, "remove NAS", resp, body, "/admin/libraries", "library-removed")

	for _, tc := range []struct {
		name   string
		form   url.Values
		reason string
	}{
		{"empty path", url.Values{"name": {"Empty"}, "path": {""}}, `library &#34;Empty&#34;: set path (a folder) or url`},
		{"duplicate name", url.Values{"name": {"Music"}, "path": {"/srv/other"}}, `name &#34;Music&#34; is used twice`},
		{"bad name", url.Values{"name": {".hidden"}, "path": {"/srv/x"}}, "starts with a dot"},
	} {
		before, calls, _, _ := f.adm.state()
		resp, body := f.form(t, "/admin/libraries", tc.form, root)
		if resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, tc.reason) {
			t.Errorf("%s: %s, want 400 with %q\n%.600s", tc.name, resp.Status, tc.reason, body)
		}
		after, calls2, _, _ := f.adm.state()
		if diff := cmp.Diff(before, after); diff != "" || calls2 != calls+1 {
			t.Errorf("%s: config changed (-before +after):\n%s(Apply calls %d → %d)", tc.name, diff, calls, calls2)
		}
		if !strings.Contains(body, `value="`+tc.form.Get("path")+`"`) {
			t.Errorf("%s: the form lost what was typed", tc.name)
		}
	}

	// A user of Films and Music loses Films with the library.
	if err := f.svc.SetAccess(t.Context(), f.user.ID, auth.User, []string{"Films", "Music"}); err != nil {
		t.Fatal(err)
	}
	resp, body = f.post(t, "/admin/libraries/Films/delete", "", root)
	wantDone(t, "remove", resp, body, "/admin/libraries", "library-removed")
	if u, ok := f.svc.Account(f.user.ID); !ok || !slices.Equal(u.Libraries, []string{"Music"}) {
		t.Errorf("the user's libraries after Films was removed: %v, want [Music]", u.Libraries)
	}
	resp, _ = f.post(t, "/admin/libraries/Nope/delete", "", root)
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("remove an unknown library: %s, want 404", resp.Status)
	}
	cfg, _, _, _ = f.adm.state()
	if names := libraryNamesOf(cfg); !slices.Equal(names, []string{"Music", "Videos"}) {
		t.Errorf("libraries at the end: %v", names)
	}

	resp, body = f.post(t, "/admin/rescan", "", root)
	wantDone(t, "rescan", resp, body, "/admin/libraries", "scan-started")
	resp, body = f.post(t, "/admin/rescan", "", root)
	wantDone(t, "rescan while scanning", resp, body, "/admin/libraries", "scan-running")
	if _, _, _, n := f.adm.state(); n != 2 {
		t.Errorf("Rescan called %d times, want 2", n)
	}
}

func libraryNamesOf(c config.Config) []string {
	var out []string
	for _, l := range c.Libraries {
		out = append(out, l.Name)
	}
	return out
}

// pacingForm is a valid pacing form; change changes it.
func pacingValues(change func(url.Values)) url.Values {
	v := url.Values{"enabled": {"false", "true"}, "factor": {"1.5"}, "burst": {"10s"}, "window": {"2s"},
		"uplink": {"100Mbit"}, "per_client": {"20Mbit"}, "unknown_rate": {"8Mbit"}, "on_full": {"queue"}}
	if change != nil {
		change(v)
	}
	return v
}

// TestAdminPacing: the form is parsed with the configuration's parsers
// and validated by Apply; a mistake is a 400 with the reason and nothing
// changes.
func TestAdminPacing(t *testing.T) {
	t.Parallel()
	f := newAuthFixture(t)
	root := signIn(t, f, "root")
	want := config.Default().Pace

	bad := []struct {
		name   string
		change func(url.Values)
		reason string
		apply  bool // the mistake is Validate's: Apply was called
	}{
		{"uplink fast", func(v url.Values) { v.Set("uplink", "fast") }, `pace.uplink: bitrate &#34;fast&#34;: want a number of bits per second`, false},
		{"factor text", func(v url.Values) { v.Set("factor", "quick") }, "pace.factor", false},
		{"burst", func(v url.Values) { v.Set("burst", "8") }, "pace.burst", false},
		{"missing", func(v url.Values) { v.Del("window") }, "pace.window is missing", false},
		{"factor below 1", func(v url.Values) { v.Set("factor", "0.5") }, "pace.factor must be between 1 and 100, got 0.5", true},
		{"on_full", func(v url.Values) { v.Set("on_full", "drop") }, `pace.on_full &#34;drop&#34;`, true},
		{"unknown over uplink", func(v url.Values) { v.Set("unknown_rate", "200Mbit") }, "exceeds the uplink", true},
	}
	for _, tc := range bad {
		_, calls, _, _ := f.adm.state()
		resp, body := f.form(t, "/admin/pacing", pacingValues(tc.change), root)
		if resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, tc.reason) {
			t.Errorf("%s: %s, want 400 with %q\n%.600s", tc.name, resp.Status, tc.reason, body)
		}
		cfg, calls2, _, _ := f.adm.state()
		if diff := cmp.Diff(want, cfg.Pace); diff != "" {
			t.Errorf("%s: pacing changed (-want +got):\n%s", tc.name, diff)
		}
		if applied := calls2 > calls; applied != tc.apply {
			t.Errorf("%s: Apply called %v, want %v", tc.name, applied, tc.apply)
		}
	}

	resp, body := f.form(t, "/admin/pacing", pacingValues(nil), root)
	wantDone(t, "save", resp, body, "/admin/pacing", "pacing-saved")
	want = config.Pace{Enabled: true, Factor: 1.5, Burst: config.Duration(10 * time.Second), Window: config.Duration(2 * time.Second),
		Uplink: 100_000_000, PerClient: 20_000_000, UnknownRate: 8_000_000, OnFull: "queue"}
	cfg, _, _, _ := f.adm.state()
	if diff := cmp.Diff(want, cfg.Pace); diff != "" {
		t.Errorf("saved pacing (-want +got):\n%s", diff)
	}
	_, body = f.as(t, "/admin/pacing", root)
	for _, s := range []string{`name="uplink" value="100Mbit"`, `name="per_client" value="20Mbit"`, `value="queue" selected`, `data-testid="pacing-save"`} {
		if !strings.Contains(body, s) {
			t.Errorf("pacing page lacks %s", s)
		}
	}

	// The checkbox unticked sends only the hidden "false".
	resp, body = f.form(t, "/admin/pacing", pacingValues(func(v url.Values) { v["enabled"] = []string{"false"} }), root)
	wantDone(t, "disable", resp, body, "/admin/pacing", "pacing-saved")
	if cfg, _, _, _ := f.adm.state(); cfg.Pace.Enabled {
		t.Error("pacing still enabled")
	}
}

// TestAdminRotate: a rotation signs with a new key; a link signed before
// keeps working for the overlap, and so does the admin's session.
func TestAdminRotate(t *testing.T) {
	t.Parallel()
	f := newAuthFixture(t)
	root := signIn(t, f, "root")
	keyID := func(target string) string {
		u, _ := url.Parse(target)
		return strings.Split(u.Query().Get(linkParam), ".")[1]
	}
	hunter := "/stream/Music/Bj%C3%B6rk/Homogenic/01%20Hunter.mp3"
	before := link(t, f.svc, f.user, hunter)

	resp, body := f.as(t, "/admin/security", root)
	wantStatus(t, "security page", resp, body, http.StatusOK)
	for _, s := range []string{"<strong>1h</strong>", `data-testid="rotate-key"`, "sign in again"} {
		if !strings.Contains(body, s) {
			t.Errorf("security page lacks %s", s)
		}
	}
	resp, body = f.post(t, "/admin/security/rotate", "", root)
	wantDone(t, "rotate", resp, body, "/admin/security", "rotated")
	after := link(t, f.svc, f.user, hunter)
	if keyID(before) == keyID(after) {
		t.Fatalf("the link signed after rotating uses the old key %s", keyID(before))
	}
	for _, target := range []string{before, after} {
		if resp, _ := get(t, f.srv, http.MethodGet, target, nil); resp.StatusCode != http.StatusOK {
			t.Errorf("link %s after rotation: %s, want 200", keyID(target), resp.Status)
		}
	}
	if resp, _ := f.as(t, "/admin", root); resp.StatusCode != http.StatusOK {
		t.Errorf("the admin's session after rotation: %s", resp.Status)
	}
	if !strings.Contains(f.logs.String(), "signing key rotated") {
		t.Error("the rotation is not logged")
	}
}

// TestAdminStreams lists the Admin's streams and stops one by its ID.
func TestAdminStreams(t *testing.T) {
	t.Parallel()
	f := newAuthFixture(t)
	root := signIn(t, f, "root")
	resp, body := f.as(t, "/admin/streams", root)
	wantStatus(t, "streams page", resp, body, http.StatusOK)
	if n := strings.Count(body, `data-testid="stream-row"`); n != 2 {
		t.Errorf("%d stream rows, want 2", n)
	}
	if n := strings.Count(body, `data-testid="stream-stop"`); n != 2 {
		t.Errorf("%d stop buttons, want 2", n)
	}
	for _, s := range []string{"mel", "Music/Björk/Homogenic/01 Hunter.mp3", "400 kbit/s", "500 kbit/s", "3.0 MB", "20:15:00 UTC",
		"192.0.2.8", "Videos/clip.mp4", "8000 kbit/s", "bursting", `action="/admin/streams/s2/stop"`, "data-streams"} {
		if !strings.Contains(body, s) {
			t.Errorf("streams page lacks %q", s)
		}
	}

	resp, body = f.as(t, "/api/admin/streams", root)
	var list []apiStream
	if err := json.Unmarshal([]byte(body), &list); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /api/admin/streams: %s %v\n%s", resp.Status, err, body)
	}
	want := []apiStream{
		{ID: "s1", User: "mel", Client: "192.0.2.7", Label: "Music/Björk/Homogenic/01 Hunter.mp3", Rate: 400_000, Pace: 500_000, Sent: 3_000_000, Started: streamStart},
		{ID: "s2", Client: "192.0.2.8", Label: "Videos/clip.mp4", Rate: 8_000_000, Sent: 12_345, Started: streamStart, Bursting: true},
	}
	if diff := cmp.Diff(want, list); diff != "" {
		t.Errorf("streams API (-want +got):\n%s", diff)
	}

	resp, body = f.post(t, "/admin/streams/s2/stop", "", root)
	wantDone(t, "stop", resp, body, "/admin/streams", "stopped")
	resp, body = f.post(t, "/admin/streams/s2/stop", "", root)
	wantDone(t, "stop again", resp, body, "/admin/streams", "stream-gone")
	if _, _, stopped, _ := f.adm.state(); !slices.Equal(stopped, []string{"s2", "s2"}) {
		t.Errorf("StopStream called with %v, want [s2 s2]", stopped)
	}
	_, body = f.as(t, "/admin/streams?done=stopped", root)
	if n := strings.Count(body, `data-testid="stream-row"`); n != 1 || !strings.Contains(body, "Stream stopped.") {
		t.Errorf("after stop: %d rows, flash %v", n, strings.Contains(body, "Stream stopped."))
	}
}

// snapshot is everything an admin POST could change.
type snapshot struct {
	Users   []auth.Account
	Keys    []auth.APIKey
	Config  config.Config
	Calls   int
	Stopped []string
	Rescans int
	KeyID   string
}

func (f *authFixture) snapshot(t *testing.T) snapshot {
	t.Helper()
	users, err := f.svc.Users(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	keys, err := f.svc.APIKeys(t.Context(), "")
	if err != nil {
		t.Fatal(err)
	}
	for i := range keys {
		keys[i].Used = time.Time{} // a key's use is noted: not a change
	}
	s := snapshot{Users: users, Keys: keys}
	s.Config, s.Calls, s.Stopped, s.Rescans = f.adm.state()
	u, _ := url.Parse(link(t, f.svc, f.user, "/stream/x"))
	s.KeyID = strings.Split(u.Query().Get(linkParam), ".")[1]
	return s
}

// TestAdminRefusedChanges: a user, a user's API key and a cross-site
// page in the admin's browser each get 403 from every admin POST and
// the account's, and nothing changes.
func TestAdminRefusedChanges(t *testing.T) {
	t.Parallel()
	f := newAuthFixture(t)
	root, mel := signIn(t, f, "root"), signIn(t, f, "mel")
	melKey, _, err := f.svc.AddAPIKey(t.Context(), f.user.ID, "script")
	if err != nil {
		t.Fatal(err)
	}
	type req struct{ pattern, target, body string }
	var reqs []req
	for _, rt := range f.web.Routes() {
		if !strings.HasPrefix(rt.Pattern, "POST /admin") && !strings.HasPrefix(rt.Pattern, "POST /account") {
			continue
		}
		_, target, _ := matrixTarget(t, f, rt.Pattern)
		reqs = append(reqs, req{rt.Pattern, target, matrixForms[rt.Pattern].Encode()})
	}
	if len(reqs) < 16 {
		t.Fatalf("only %d admin and account POST routes", len(reqs))
	}
	before := f.snapshot(t)
	clients := []struct {
		name    string
		header  http.Header
		account bool // also refused the account's routes
	}{
		{"user", http.Header{"Cookie": {sessionCookie + "=" + mel}}, false},
		{"user's API key", http.Header{"Authorization": {"Bearer " + melKey}}, true},
		{"cross-site", http.Header{"Cookie": {sessionCookie + "=" + root}, "Sec-Fetch-Site": {"cross-site"}}, true},
		{"other origin", http.Header{"Cookie": {sessionCookie + "=" + root}, "Origin": {"https://evil.example"}}, true},
	}
	for _, c := range clients {
		for _, rq := range reqs {
			if strings.HasPrefix(rq.pattern, "POST /account") && !c.account {
				continue
			}
			h := c.header.Clone()
			h.Set("Content-Type", "application/x-www-form-urlencoded")
			resp, body := send(t, f.srv, http.MethodPost, rq.target, rq.body, h)
			if resp.StatusCode != http.StatusForbidden {
				t.Errorf("%s: POST %s: %s, want 403\n%.200s", c.name, rq.target, resp.Status, body)
			}
		}
	}
	if diff := cmp.Diff(before, f.snapshot(t)); diff != "" {
		t.Errorf("refused requests changed something (-before +after):\n%s", diff)
	}
}

// TestAccount: a user changes their own password (given the current one)
// and stays signed in with a new session while the old ones end, and
// manages their own API keys only.
func TestAccount(t *testing.T) {
	t.Parallel()
	f := newAuthFixture(t)
	mel := signIn(t, f, "mel")
	other := signIn(t, f, "mel") // another browser of mel's
	resp, body := f.as(t, "/account", mel)
	wantStatus(t, "account page", resp, body, http.StatusOK)
	for _, s := range []string{"<dd>mel</dd>", "<dd>Music</dd>", `data-testid="password-change"`, `data-testid="apikey-create"`,
		`data-testid="nav-account"`} {
		if !strings.Contains(body, s) {
			t.Errorf("account page lacks %s", s)
		}
	}
	if strings.Contains(body, `data-testid="nav-admin"`) || strings.Contains(body, "/static/admin.js") {
		t.Error("a user's page links to the admin pages or loads their script")
	}

	for _, tc := range []struct {
		name   string
		form   url.Values
		code   int
		reason string
	}{
		{"wrong current", url.Values{"current": {"guess"}, "password": {"mel password 9"}, "password2": {"mel password 9"}}, 400, "The current password is wrong."},
		{"differ", url.Values{"current": {f.passwords["mel"]}, "password": {"mel password 9"}, "password2": {"mel password 8"}}, 400, "differ"},
		{"short", url.Values{"current": {f.passwords["mel"]}, "password": {"short"}, "password2": {"short"}}, 400, "at least 8 characters"},
	} {
		resp, body := f.form(t, "/account/password", tc.form, mel)
		if resp.StatusCode != tc.code || !strings.Contains(body, tc.reason) {
			t.Errorf("%s: %s, want %d with %q", tc.name, resp.Status, tc.code, tc.reason)
		}
		if resp, _ := f.as(t, "/api/me", mel); resp.StatusCode != http.StatusOK {
			t.Fatalf("%s: the session ended: %s", tc.name, resp.Status)
		}
	}

	resp, body = f.form(t, "/account/password", url.Values{"current": {f.passwords["mel"]}, "password": {"mel password 9"},
		"password2": {"mel password 9"}}, mel)
	wantDone(t, "change password", resp, body, "/account", "own-password")
	fresh := sessionOf(resp)
	if fresh == "" || fresh == mel {
		t.Fatalf("no new session cookie after the password change")
	}
	for _, c := range []struct {
		name, cookie string
		code         int
	}{{"old session", mel, 401}, {"other browser", other, 401}, {"new session", fresh, 200}} {
		if resp, _ := f.as(t, "/api/me", c.cookie); resp.StatusCode != c.code {
			t.Errorf("%s after the password change: %s, want %d", c.name, resp.Status, c.code)
		}
	}
	// (The fresh session is the new password's login: another login of
	// mel's here would pass the account's login limit.)
	mel = fresh

	// Own API keys.
	resp, body = f.form(t, "/account/keys", url.Values{"name": {"phone"}}, mel)
	wantStatus(t, "create own key", resp, body, http.StatusOK)
	key := shownKey(t, resp, body)
	if resp, body := f.bearer(t, "/api/me", key); resp.StatusCode != http.StatusOK || !strings.Contains(body, `"mel"`) {
		t.Fatalf("own key as Bearer: %s %s", resp.Status, body)
	}
	_, body = f.as(t, "/account", mel)
	if strings.Contains(body, key) || strings.Count(body, `data-testid="apikey-row"`) != 1 {
		t.Error("the account page shows the key again, or not its row")
	}
	// With the key, the page shows but changes are refused.
	if resp, body := f.bearer(t, "/account", key); resp.StatusCode != http.StatusOK || !strings.Contains(body, "You are using an API key") {
		t.Errorf("account page by API key: %s", resp.Status)
	}
	resp, _ = send(t, f.srv, http.MethodPost, "/account/keys", "name=more", http.Header{"Authorization": {"Bearer " + key},
		"Content-Type": {"application/x-www-form-urlencoded"}})
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("a key making a key: %s, want 403", resp.Status)
	}

	// Another user's key is not mel's to delete.
	vidKey, vk, err := f.svc.AddAPIKey(t.Context(), f.videos.ID, "tv")
	if err != nil {
		t.Fatal(err)
	}
	if resp, _ := f.post(t, "/account/keys/"+vk.ID+"/delete", "", mel); resp.StatusCode != http.StatusNotFound {
		t.Errorf("deleting vid's key as mel: %s, want 404", resp.Status)
	}
	if resp, _ := f.bearer(t, "/api/me", vidKey); resp.StatusCode != http.StatusOK {
		t.Errorf("vid's key after mel's attempt: %s", resp.Status)
	}
	keys, err := f.svc.APIKeys(t.Context(), f.user.ID)
	if err != nil || len(keys) != 1 {
		t.Fatalf("mel's keys: %+v %v", keys, err)
	}
	resp, body = f.post(t, "/account/keys/"+keys[0].ID+"/delete", "", mel)
	wantDone(t, "delete own key", resp, body, "/account", "key-deleted")
	if resp, _ := f.bearer(t, "/api/me", key); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("a deleted own key: %s, want 401", resp.Status)
	}
}

// TestAdminAccountsOff: without accounts the user pages and the account
// page are 404, and the settings pages still work.
func TestAdminAccountsOff(t *testing.T) {
	t.Parallel()
	srv := webServer(t, Options{Admin: newFakeAdmin("My Music", "Small")})
	for target, code := range map[string]int{"/account": 404, "/admin/users": 404, "/admin/security": 404,
		"/admin": 200, "/admin/libraries": 200, "/admin/pacing": 200, "/admin/streams": 200} {
		resp, body := get(t, srv, http.MethodGet, target, nil)
		if resp.StatusCode != code {
			t.Errorf("GET %s: %s, want %d", target, resp.Status, code)
		}
		if code == 404 && !strings.Contains(body, "accounts are off") {
			t.Errorf("GET %s: %q does not say accounts are off", target, body)
		}
	}
	resp, _ := send(t, srv, http.MethodPost, "/account/keys", "name=x", http.Header{"Content-Type": {"application/x-www-form-urlencoded"}})
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("POST /account/keys: %s, want 404", resp.Status)
	}
}

// TestAdminWithoutAdmin: a server without an Admin answers 503 on the
// settings pages; the user pages offer the libraries it serves.
func TestAdminWithoutAdmin(t *testing.T) {
	t.Parallel()
	f := newAuthFixture(t)
	srv := httptest.NewServer(New(Options{Tree: f.web.opts.Tree, Stream: stream.New(time.Minute), Auth: f.svc, SessionTTL: time.Hour}))
	t.Cleanup(srv.Close)
	root := http.Header{"Cookie": {sessionCookie + "=" + signIn(t, f, "root")}}
	for target, code := range map[string]int{"/admin/libraries": 503, "/admin/pacing": 503, "/admin/streams": 503,
		"/api/admin/streams": 503, "/admin": 200, "/admin/users": 200, "/admin/security": 200} {
		if resp, _ := send(t, srv, http.MethodGet, target, "", root); resp.StatusCode != code {
			t.Errorf("GET %s: %s, want %d", target, resp.Status, code)
		}
	}
	_, body := send(t, srv, http.MethodGet, "/admin/users", "", root)
	if !strings.Contains(body, `name="library" value="Videos"`) {
		t.Error("the users page without an Admin does not offer the served libraries")
	}
}

// TestAdminPages: every admin page keeps to the CSP (scripts from files
// only, no inline style or handler) and has the hooks the browser tests
// use.
func TestAdminPages(t *testing.T) {
	t.Parallel()
	f := newAuthFixture(t)
	root := signIn(t, f, "root")
	hooks := map[string][]string{
		"/admin":                          {"nav-admin", "nav-account", "count-users", "count-libraries", "count-streams"},
		"/admin/users":                    {"user-row", "user-create"},
		"/admin/users/" + f.user.ID:       {"user-access", "user-password", "user-revoke", "user-delete", "apikey-create"},
		"/admin/libraries":                {"library-row", "library-add", "library-remove", "admin-rescan"},
		"/admin/pacing":                   {"pacing-save"},
		"/admin/security":                 {"rotate-key"},
		"/admin/streams":                  {"stream-row", "stream-stop"},
		"/admin/streams?done=stopped":     {"flash"},
		"/account":                        {"password-change", "apikey-create", "apikey-row"},
		"/admin/users?done=created&name=": {"flash"},
	}
	if _, _, err := f.svc.AddAPIKey(t.Context(), f.admin.ID, "script"); err != nil {
		t.Fatal(err)
	}
	for target, want := range hooks {
		resp, body := f.as(t, target, root)
		if resp.StatusCode != http.StatusOK {
			t.Errorf("GET %s: %s", target, resp.Status)
			continue
		}
		csp := resp.Header.Get("Content-Security-Policy")
		if !strings.Contains(csp, "default-src 'self'") || strings.Contains(csp, "unsafe-inline") {
			t.Errorf("%s: Content-Security-Policy %q", target, csp)
		}
		scripts := scriptTag.FindAllStringSubmatch(body, -1)
		if len(scripts) != 2 || !strings.Contains(body, `<script type="module" src="/static/admin.js">`) {
			t.Errorf("%s: %d scripts, want app.js and admin.js", target, len(scripts))
		}
		for _, m := range scripts {
			if !strings.Contains(m[1], `src="/static/`) || strings.TrimSpace(m[2]) != "" {
				t.Errorf("%s: inline script %q", target, m[0])
			}
		}
		for _, re := range []*regexp.Regexp{styleMarkup, handlerAttr, jsURL} {
			if m := re.FindString(body); m != "" {
				t.Errorf("%s: %q breaks the CSP", target, m)
			}
		}
		for _, h := range want {
			if !strings.Contains(body, fmt.Sprintf(`data-testid="%s"`, h)) {
				t.Errorf("%s lacks data-testid=%q", target, h)
			}
		}
	}
	// A flash is one of the server's sentences: ?done= cannot make the
	// page say anything else.
	_, body := f.as(t, "/admin/users?done=Your+server+is+hacked", root)
	if strings.Contains(body, "hacked") || strings.Contains(body, `data-testid="flash"`) {
		t.Error("an unknown done= code is shown")
	}
	resp, body := get(t, f.srv, http.MethodGet, "/static/admin.js", nil)
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, "data-streams") {
		t.Errorf("GET /static/admin.js: %s", resp.Status)
	}
}
