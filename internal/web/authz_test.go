package web

import (
	"crypto/rand"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"mustserv/internal/auth"
	"mustserv/internal/config"
	"mustserv/internal/index"
	"mustserv/internal/scan"
	"mustserv/internal/stream"
)

// authFixture is a server with accounts over the test libraries (Music
// and Videos), and a way to make every kind of credential.
type authFixture struct {
	srv  *httptest.Server
	web  *Server
	svc  *auth.Service
	past *auth.Service // the same accounts and keys, signing already expired tokens
	x    *index.Index
	logs *logBuffer
	// adm runs the settings the admin pages change (admin_test.go).
	adm *fakeAdmin
	// Accounts: an admin, a user of Music, a user of Videos only.
	admin, user, videos auth.Account
	passwords           map[string]string // by user name
}

// fastPasswords keep the tests quick; the costs are the server's business.
var fastPasswords = auth.PasswordOptions{MemoryKiB: 64, Time: 1}

func newAuthFixture(t *testing.T) *authFixture {
	t.Helper()
	ctx := t.Context()
	x, tree := testIndex(t)
	dir := t.TempDir()
	open := func(opts auth.ServiceOptions) *auth.Service {
		store, err := auth.OpenStore(ctx, filepath.Join(dir, "state.db"))
		if err != nil {
			t.Fatal(err)
		}
		keys, err := auth.OpenKeyFile(filepath.Join(dir, "signing.keys"))
		if err != nil {
			t.Fatal(err)
		}
		opts.Passwords = fastPasswords
		svc, err := auth.NewService(ctx, store, keys, opts)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { svc.Close() })
		return svc
	}
	f := &authFixture{x: x, logs: newLogBuffer(), adm: newFakeAdmin("Music", "Videos"), passwords: map[string]string{
		"root": "root password 1", "mel": "mel password 2", "vid": "vid password 3"}}
	f.svc = open(auth.ServiceOptions{SessionTTL: time.Hour, LinkTTL: time.Hour, KeyOverlap: time.Hour})
	f.past = open(auth.ServiceOptions{SessionTTL: -time.Minute, LinkTTL: -time.Minute})
	add := func(name string, role auth.Role, libs ...string) auth.Account {
		a, err := f.svc.AddUser(ctx, name, f.passwords[name], role, libs)
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
	f.admin, f.user, f.videos = add("root", auth.Admin), add("mel", auth.User, "Music"), add("vid", auth.User, "Videos")
	f.web = New(Options{Tree: tree, Stream: stream.New(time.Minute), Index: x,
		Covers: &fakeCovers{x: x, mime: "image/jpeg"}, Scanner: instantScanner{},
		Metrics: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("m 1\n")) }),
		Auth:    f.svc, Admin: f.adm, Node: &fakeNode{}, SessionTTL: time.Hour, Logger: slog.New(slog.NewTextHandler(f.logs, nil)), AccessLog: true})
	f.srv = httptest.NewServer(f.web)
	t.Cleanup(f.srv.Close)
	return f
}

// instantScanner's scans end at once: every start is accepted.
type instantScanner struct{}

func (instantScanner) Progress() scan.Progress { return scan.Progress{} }
func (instantScanner) Start() bool             { return true }

// session signs name in through the login form and returns the cookie.
func (f *authFixture) session(t *testing.T, name string) string {
	t.Helper()
	resp, _ := f.post(t, "/login", url.Values{"name": {name}, "password": {f.passwords[name]}}.Encode(), "")
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("login %s: %s", name, resp.Status)
	}
	for _, c := range resp.Cookies() {
		if c.Name == sessionCookie {
			return c.Value
		}
	}
	t.Fatalf("login %s: no session cookie", name)
	return ""
}

// post sends a form (with cookie, if not empty) as a same-origin browser
// form would.
func (f *authFixture) post(t *testing.T, target, form, cookie string) (*http.Response, string) {
	t.Helper()
	h := http.Header{"Content-Type": {"application/x-www-form-urlencoded"}}
	if cookie != "" {
		h.Set("Cookie", sessionCookie+"="+cookie)
	}
	return send(t, f.srv, http.MethodPost, target, form, h)
}

// send sends one request with Host testHost and body, and returns the
// response with its body read; redirects are not followed.
func send(t testing.TB, srv *httptest.Server, method, target, body string, header http.Header) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, srv.URL+target, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Host = testHost
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := noRedirects(srv).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(b)
}

// link signs target (a path and query, as sent) for user a with svc.
func link(t *testing.T, svc *auth.Service, a auth.Account, target string) string {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	tok, err := svc.Link(a, linkScope(u.Path, q), auth.LinkOptions{})
	if err != nil {
		t.Fatal(err)
	}
	q.Set(linkParam, tok)
	u.RawQuery = q.Encode()
	return u.String()
}

// identities are the columns of the matrix.
var identities = []string{"anonymous", "expired session", "other library", "user", "api key", "admin",
	"link", "expired link", "tampered link", "other item's link"}

// Expected statuses. "link" columns send the request with a link signed
// for the user (Music) for exactly this URL, or one changed as named.
// 303 is the login page's redirect (pages) or the action's (forms).
var matrix = map[string][10]int{
	//                                anon expd othr user key  admn link xlnk tamp othr
	"GET /healthz":                 {200, 200, 200, 200, 200, 200, 200, 200, 200, 200},
	"GET /readyz":                  {200, 200, 200, 200, 200, 200, 200, 200, 200, 200},
	"GET /static/":                 {200, 200, 200, 200, 200, 200, 200, 200, 200, 200},
	"GET /login":                   {200, 200, 303, 303, 200, 303, 200, 200, 200, 200},
	"POST /login":                  {401, 401, 401, 401, 401, 401, 401, 401, 401, 401},
	"POST /logout":                 {303, 303, 303, 303, 303, 303, 303, 303, 303, 303},
	"GET /setup":                   {404, 404, 404, 404, 404, 404, 404, 404, 404, 404},
	"POST /setup":                  {404, 404, 404, 404, 404, 404, 404, 404, 404, 404},
	"GET /api/me":                  {401, 401, 200, 200, 200, 200, 401, 401, 401, 401},
	"GET /{$}":                     {303, 303, 200, 200, 200, 200, 303, 303, 303, 303},
	"GET /browse/{path...}":        {303, 303, 404, 200, 200, 200, 303, 303, 303, 303},
	"GET /watch/{path...}":         {303, 303, 404, 200, 200, 200, 303, 303, 303, 303},
	"GET /albums":                  {303, 303, 200, 200, 200, 200, 303, 303, 303, 303},
	"GET /albums/{id}":             {303, 303, 404, 200, 200, 200, 303, 303, 303, 303},
	"GET /artists":                 {303, 303, 200, 200, 200, 200, 303, 303, 303, 303},
	"GET /artists/{id}":            {303, 303, 404, 200, 200, 200, 303, 303, 303, 303},
	"GET /search":                  {303, 303, 200, 200, 200, 200, 303, 303, 303, 303},
	"GET /items/{id}":              {303, 303, 404, 200, 200, 200, 303, 303, 303, 303},
	"POST /scan":                   {401, 401, 403, 403, 403, 303, 401, 401, 401, 401},
	"GET /stream/{path...}":        {401, 401, 404, 200, 200, 200, 200, 403, 403, 403},
	"GET /playlist/{path...}":      {401, 401, 404, 200, 200, 200, 200, 403, 403, 403},
	"GET /api/libraries":           {401, 401, 200, 200, 200, 200, 401, 401, 401, 401},
	"GET /api/browse/{path...}":    {401, 401, 404, 200, 200, 200, 401, 401, 401, 401},
	"GET /api/items/{id}":          {401, 401, 404, 200, 200, 200, 401, 401, 401, 401},
	"GET /api/search":              {401, 401, 200, 200, 200, 200, 401, 401, 401, 401},
	"GET /api/search/{file}":       {401, 401, 200, 200, 200, 200, 200, 403, 403, 403},
	"GET /api/albums":              {401, 401, 200, 200, 200, 200, 401, 401, 401, 401},
	"GET /api/albums/{id}":         {401, 401, 404, 200, 200, 200, 401, 401, 401, 401},
	"GET /api/albums/{id}/{file}":  {401, 401, 404, 200, 200, 200, 200, 403, 403, 403},
	"GET /api/artists":             {401, 401, 200, 200, 200, 200, 401, 401, 401, 401},
	"GET /api/artists/{id}":        {401, 401, 404, 200, 200, 200, 401, 401, 401, 401},
	"GET /api/artists/{id}/{file}": {401, 401, 404, 200, 200, 200, 200, 403, 403, 403},
	"GET /api/covers/{id}":         {401, 401, 404, 200, 200, 200, 401, 401, 401, 401},
	"GET /api/scan":                {401, 401, 403, 403, 403, 200, 401, 401, 401, 401},
	"POST /api/scan":               {401, 401, 403, 403, 403, 202, 401, 401, 401, 401},
	"GET /metrics":                 {401, 401, 403, 403, 403, 200, 401, 401, 401, 401},

	// Administration (admin.go): forms answer 303 (done) or, for a new
	// API key shown once, 200.
	"GET /admin":                               {303, 303, 403, 403, 403, 200, 303, 303, 303, 303},
	"GET /admin/users":                         {303, 303, 403, 403, 403, 200, 303, 303, 303, 303},
	"POST /admin/users":                        {401, 401, 403, 403, 403, 303, 401, 401, 401, 401},
	"GET /admin/users/{id}":                    {303, 303, 403, 403, 403, 200, 303, 303, 303, 303},
	"POST /admin/users/{id}":                   {401, 401, 403, 403, 403, 303, 401, 401, 401, 401},
	"POST /admin/users/{id}/password":          {401, 401, 403, 403, 403, 303, 401, 401, 401, 401},
	"POST /admin/users/{id}/revoke":            {401, 401, 403, 403, 403, 303, 401, 401, 401, 401},
	"POST /admin/users/{id}/delete":            {401, 401, 403, 403, 403, 303, 401, 401, 401, 401},
	"POST /admin/users/{id}/keys":              {401, 401, 403, 403, 403, 200, 401, 401, 401, 401},
	"POST /admin/users/{id}/keys/{key}/delete": {401, 401, 403, 403, 403, 303, 401, 401, 401, 401},
	"GET /admin/libraries":                     {303, 303, 403, 403, 403, 200, 303, 303, 303, 303},
	"POST /admin/libraries":                    {401, 401, 403, 403, 403, 303, 401, 401, 401, 401},
	"POST /admin/libraries/{name}/delete":      {401, 401, 403, 403, 403, 303, 401, 401, 401, 401},
	"POST /admin/rescan":                       {401, 401, 403, 403, 403, 303, 401, 401, 401, 401},
	"POST /admin/drain":                        {401, 401, 403, 403, 403, 303, 401, 401, 401, 401},
	"GET /admin/pacing":                        {303, 303, 403, 403, 403, 200, 303, 303, 303, 303},
	"POST /admin/pacing":                       {401, 401, 403, 403, 403, 303, 401, 401, 401, 401},
	"GET /admin/security":                      {303, 303, 403, 403, 403, 200, 303, 303, 303, 303},
	"POST /admin/security/rotate":              {401, 401, 403, 403, 403, 303, 401, 401, 401, 401},
	"GET /admin/streams":                       {303, 303, 403, 403, 403, 200, 303, 303, 303, 303},
	"POST /admin/streams/{id}/stop":            {401, 401, 403, 403, 403, 303, 401, 401, 401, 401},
	"GET /api/admin/streams":                   {401, 401, 403, 403, 403, 200, 401, 401, 401, 401},
	// The own account (account.go): every signed-in user, but changes
	// need a session (an API key gets 403). The password form's new
	// passwords differ (400): a real change would end the sessions the
	// later rows use. The key to delete is the user's (mel's): another
	// user's is as unknown (404).
	"GET /account":                    {303, 303, 200, 200, 200, 200, 303, 303, 303, 303},
	"POST /account/password":          {401, 401, 400, 400, 403, 400, 401, 401, 401, 401},
	"POST /account/keys":              {401, 401, 200, 200, 403, 200, 401, 401, 401, 401},
	"POST /account/keys/{key}/delete": {401, 401, 404, 303, 403, 404, 401, 401, 401, 401},
}

// matrixForms are the bodies of the POST rows: a form each route takes.
var matrixForms = map[string]url.Values{
	"POST /admin/users": {"name": {"matrix-new"}, "password": {"matrix password"}, "password2": {"matrix password"},
		"role": {"user"}, "library": {"Music"}},
	"POST /admin/users/{id}":          {"role": {"user"}, "library": {"Videos"}},
	"POST /admin/users/{id}/password": {"password": {"new matrix password"}, "password2": {"new matrix password"}},
	"POST /admin/users/{id}/keys":     {"name": {"matrix"}},
	"POST /admin/libraries":           {"name": {"Matrix"}, "path": {"/srv/matrix"}},
	"POST /admin/pacing": {"enabled": {"false", "true"}, "factor": {"1.5"}, "burst": {"8s"}, "window": {"4s"},
		"uplink": {"100Mbit"}, "per_client": {"0"}, "unknown_rate": {"8Mbit"}, "on_full": {"reject"}},
	"POST /account/password": {"current": {"not the password"}, "password": {"new password 1"}, "password2": {"new password 2"}},
	"POST /account/keys":     {"name": {"matrix"}},
	"POST /admin/drain":      {"drain": {"off"}},
}

// adminTarget is a concrete request of an admin or account route with a
// path value: a user, key, library or stream made for it alone, so that
// the admin's change (a deletion) leaves the other rows' accounts alone.
func adminTarget(t *testing.T, f *authFixture, pattern string) (string, bool) {
	t.Helper()
	spare := func() auth.Account {
		a, err := f.svc.AddUser(t.Context(), "spare-"+rand.Text()[:8], "spare password", auth.User, []string{"Music"})
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
	key := func(user string) string {
		_, k, err := f.svc.AddAPIKey(t.Context(), user, "spare")
		if err != nil {
			t.Fatal(err)
		}
		return k.ID
	}
	switch pattern {
	case "GET /admin/users/{id}", "POST /admin/users/{id}":
		return "/admin/users/" + spare().ID, true
	case "POST /admin/users/{id}/password", "POST /admin/users/{id}/revoke", "POST /admin/users/{id}/delete",
		"POST /admin/users/{id}/keys":
		return "/admin/users/" + spare().ID + "/" + pattern[strings.LastIndex(pattern, "/")+1:], true
	case "POST /admin/users/{id}/keys/{key}/delete":
		u := spare()
		return "/admin/users/" + u.ID + "/keys/" + key(u.ID) + "/delete", true
	case "POST /admin/libraries/{name}/delete":
		f.adm.mu.Lock()
		f.adm.cfg.Libraries = append(f.adm.cfg.Libraries, config.Library{Name: "Spare", Path: "/srv/spare"})
		f.adm.mu.Unlock()
		return "/admin/libraries/Spare/delete", true
	case "POST /admin/streams/{id}/stop":
		return "/admin/streams/s1/stop", true
	case "POST /account/keys/{key}/delete":
		return "/account/keys/" + key(f.user.ID) + "/delete", true
	}
	return "", false
}

// matrixTarget is a concrete request of each route: its things are in
// Music (which "other library" may not see); other is another item's
// request of the same route, whose link is the wrong one.
func matrixTarget(t *testing.T, f *authFixture, pattern string) (method, target, other string) {
	t.Helper()
	m := ids(t, f.x)
	method, p, _ := strings.Cut(pattern, " ")
	hunter, joga := "/Music/Bj%C3%B6rk/Homogenic/01%20Hunter.mp3", "/Music/Bj%C3%B6rk/Homogenic/02%20J%C3%B3ga.mp3"
	album, artist := m["album Homogenic"], m["artist Björk"]
	ids := map[string]string{"Hunter": m["Music/Björk/Homogenic/01 Hunter.mp3"], "Jóga": m["Music/Björk/Homogenic/02 Jóga.mp3"]}
	targets := map[string][2]string{
		"GET /static/":                 {"/static/app.css", "/static/app.js"},
		"GET /browse/{path...}":        {"/browse/Music/", "/browse/Music/Various/"},
		"GET /watch/{path...}":         {"/watch" + hunter, "/watch" + joga},
		"GET /albums/{id}":             {"/albums/" + album, "/albums/x"},
		"GET /artists/{id}":            {"/artists/" + artist, "/artists/x"},
		"GET /search":                  {"/search?q=hunter", "/search?q=joga"},
		"GET /items/{id}":              {"/items/" + ids["Hunter"], "/items/" + ids["Jóga"]},
		"GET /stream/{path...}":        {"/stream" + hunter, "/stream" + joga},
		"GET /playlist/{path...}":      {"/playlist/Music.m3u8", "/playlist/Music/Various.m3u8"},
		"GET /api/browse/{path...}":    {"/api/browse/Music", "/api/browse/Music/Various"},
		"GET /api/items/{id}":          {"/api/items/" + ids["Hunter"], "/api/items/" + ids["Jóga"]},
		"GET /api/search":              {"/api/search?q=hunter", "/api/search?q=joga"},
		"GET /api/search/{file}":       {"/api/search/playlist.m3u8?q=hunter", "/api/search/playlist.m3u8?q=joga"},
		"GET /api/albums/{id}":         {"/api/albums/" + album, "/api/albums/x"},
		"GET /api/albums/{id}/{file}":  {"/api/albums/" + album + "/playlist.m3u8", "/api/albums/" + album + "/playlist.pls"},
		"GET /api/artists/{id}":        {"/api/artists/" + artist, "/api/artists/x"},
		"GET /api/artists/{id}/{file}": {"/api/artists/" + artist + "/playlist.m3u8", "/api/artists/" + artist + "/playlist.xspf"},
		"GET /api/covers/{id}":         {"/api/covers/" + ids["Hunter"], "/api/covers/" + album},
	}
	if tg, ok := targets[pattern]; ok {
		return method, tg[0], tg[1]
	}
	if tg, ok := adminTarget(t, f, pattern); ok {
		return method, tg, tg + "?other"
	}
	p = strings.TrimSuffix(p, "{$}")
	if strings.Contains(p, "{") {
		t.Fatalf("route %s has no request in matrixTarget", pattern)
	}
	return method, p, p + "?other"
}

// TestAuthorizationMatrix sends a request of every route the server
// registers as every kind of client and checks the status against the
// table above. A route missing from the table fails: whoever adds a route
// decides who may use it here.
func TestAuthorizationMatrix(t *testing.T) {
	f := newAuthFixture(t)
	ctx := t.Context()
	key, _, err := f.svc.AddAPIKey(ctx, f.user.ID, "matrix")
	if err != nil {
		t.Fatal(err)
	}
	// Sessions are made from other addresses than the test's requests,
	// so that the per-client login limit is left for POST /login's row.
	login := func(name string) string {
		tok, _, err := f.svc.Login(ctx, name, f.passwords[name], "192.0.2.9")
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	names := map[string]string{"other library": "vid", "user": "mel", "admin": "root"}
	sessions := map[string]string{}
	for who, name := range names {
		sessions[who] = login(name)
	}
	expired, _, err := f.past.Login(ctx, "mel", f.passwords["mel"], "192.0.2.1")
	if err != nil {
		t.Fatal(err)
	}
	sessions["expired session"] = expired

	routes := f.web.Routes()
	var seen []string
	for _, rt := range routes {
		seen = append(seen, rt.Pattern)
		want, ok := matrix[rt.Pattern]
		if !ok {
			t.Errorf("route %q (%s) is not in the authorization matrix: add its row", rt.Pattern, rt.Access)
			continue
		}
		method, target, other := matrixTarget(t, f, rt.Pattern)
		for i, who := range identities {
			h := http.Header{}
			tg := target
			switch who {
			case "anonymous":
			case "api key":
				h.Set("Authorization", "Bearer "+key)
			case "link":
				tg = link(t, f.svc, f.user, target)
			case "expired link":
				tg = link(t, f.past, f.user, target)
			case "tampered link":
				tg = tamper(link(t, f.svc, f.user, target))
			case "other item's link":
				// Another item's signature on this item's URL.
				u, _ := url.Parse(link(t, f.svc, f.user, other))
				tu, _ := url.Parse(target)
				q := tu.Query()
				q.Set(linkParam, u.Query().Get(linkParam))
				tu.RawQuery = q.Encode()
				tg = tu.String()
			default:
				c := sessions[who]
				if rt.Pattern == "POST /logout" && names[who] != "" {
					c = login(names[who]) // logging out ends it
				}
				h.Set("Cookie", sessionCookie+"="+c)
			}
			body := ""
			if rt.Pattern == "POST /login" {
				// A failed login per column, each on its own account, so
				// that the login limits are not what is tested here.
				h.Set("Content-Type", "application/x-www-form-urlencoded")
				body = url.Values{"name": {"nobody-" + who}, "password": {"x"}}.Encode()
			} else if form, ok := matrixForms[rt.Pattern]; ok {
				h.Set("Content-Type", "application/x-www-form-urlencoded")
				body = form.Encode()
			}
			resp, _ := send(t, f.srv, method, tg, body, h)
			if resp.StatusCode != want[i] {
				t.Errorf("%s %s as %s: %d, want %d", method, tg, who, resp.StatusCode, want[i])
			}
		}
	}
	for p := range matrix {
		if !slices.Contains(seen, p) {
			t.Errorf("the matrix has a row for %q, which the server does not register", p)
		}
	}
}

// tamper changes one character of a link's signature.
func tamper(target string) string {
	u, _ := url.Parse(target)
	q := u.Query()
	tok := []byte(q.Get(linkParam))
	i := len(tok) - 3
	if tok[i] == 'A' {
		tok[i] = 'B'
	} else {
		tok[i] = 'A'
	}
	q.Set(linkParam, string(tok))
	u.RawQuery = q.Encode()
	return u.String()
}
