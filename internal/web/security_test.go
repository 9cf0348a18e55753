package web

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"encoding/base64"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"modernc.org/sqlite"

	"mustserv/internal/auth"
	"mustserv/internal/stream"
)

// The attack tests of issue 6 (../shared/research/security.md, section
// A.3 and A.4) against the web front end with accounts; the transport's
// (framing, header floods, slowloris) are cmd/mustserv's attack_test.go.

// marker is in every injection payload: it must never be in SQL text.
const marker = "qz7m"

// sqlLog records the text of every statement run through the
// "sqlite-marker" driver: modernc's, wrapped.
var sqlLog struct {
	sync.Mutex
	stmts []string
}

var registerMarker = sync.OnceFunc(func() { sql.Register("sqlite-marker", markerDriver{&sqlite.Driver{}}) })

type markerDriver struct{ d driver.Driver }

func (m markerDriver) Open(dsn string) (driver.Conn, error) {
	c, err := m.d.Open(dsn)
	if err != nil {
		return nil, err
	}
	return markerConn{c}, nil
}

// markerConn passes everything to modernc's connection and notes each
// statement's text. It implements only what database/sql needs, so that
// every statement goes through Prepare(Context) and is seen.
type markerConn struct{ c driver.Conn }

func note(q string) {
	sqlLog.Lock()
	sqlLog.stmts = append(sqlLog.stmts, q)
	sqlLog.Unlock()
}

func (m markerConn) Prepare(q string) (driver.Stmt, error) { note(q); return m.c.Prepare(q) }
func (m markerConn) PrepareContext(ctx context.Context, q string) (driver.Stmt, error) {
	note(q)
	return m.c.(driver.ConnPrepareContext).PrepareContext(ctx, q)
}
func (m markerConn) Close() error              { return m.c.Close() }
func (m markerConn) Begin() (driver.Tx, error) { return m.c.Begin() } //nolint:staticcheck // required by driver.Conn
func (m markerConn) BeginTx(ctx context.Context, o driver.TxOptions) (driver.Tx, error) {
	return m.c.(driver.ConnBeginTx).BeginTx(ctx, o)
}

// securityFixture is the authorization matrix's fixture, with its index
// and accounts behind the marker driver, trusted proxy 127.0.0.1 (so that
// tests can be many clients) and the log captured.
func securityFixture(t *testing.T) *authFixture {
	t.Helper()
	registerMarker()
	ctx := t.Context()
	x, tree := testIndexDriver(t, "sqlite-marker")
	dir := t.TempDir()
	store, err := auth.OpenStoreDriver(ctx, "sqlite-marker", filepath.Join(dir, "state.db"))
	if err != nil {
		t.Fatal(err)
	}
	keys, err := auth.OpenKeyFile(filepath.Join(dir, "signing.keys"))
	if err != nil {
		t.Fatal(err)
	}
	svc, err := auth.NewService(ctx, store, keys, auth.ServiceOptions{SessionTTL: time.Hour, LinkTTL: time.Hour,
		KeyOverlap: time.Hour, Passwords: fastPasswords})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { svc.Close() })
	f := &authFixture{x: x, svc: svc, logs: newLogBuffer(), passwords: map[string]string{
		"root": "root password 1", "mel": "mel password 2", "vid": "vid password 3"}}
	for name, role := range map[string]auth.Role{"root": auth.Admin, "mel": auth.User, "vid": auth.User} {
		libs := map[string][]string{"mel": {"Music"}, "vid": {"Videos"}}[name]
		a, err := svc.AddUser(ctx, name, f.passwords[name], role, libs)
		if err != nil {
			t.Fatal(err)
		}
		switch name {
		case "root":
			f.admin = a
		case "mel":
			f.user = a
		default:
			f.videos = a
		}
	}
	f.web = New(Options{Tree: tree, Stream: stream.New(time.Minute), Index: x,
		Covers: &fakeCovers{x: x, mime: "image/jpeg"}, Scanner: instantScanner{},
		Auth: svc, Admin: newFakeAdmin("Music", "Videos"), SessionTTL: time.Hour, AccessLog: true,
		TrustedProxies: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")},
		Logger:         slog.New(slog.NewTextHandler(f.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	f.srv = httptest.NewServer(f.web)
	t.Cleanup(f.srv.Close)
	return f
}

// injections are Appendix A4's payloads, each with the marker.
var injections = []string{
	marker + "'", marker + `"`, marker + "')", marker + "'))", marker + `\'`, marker + "''", marker + "%27", marker + "%2527", marker + "`",
	marker + "'--", marker + "'/*", marker + "*/", marker + "';--", marker + "'#",
	marker + "' OR '1'='1", marker + "' OR '1'='2", "1 OR 1=1 " + marker, "1) OR (1=1 " + marker, marker + "' AND 1=2--",
	marker + "' UNION SELECT sqlite_version()--", "0 UNION SELECT name FROM sqlite_master--" + marker,
	"1 UNION SELECT hash FROM users--" + marker, "1 UNION SELECT '/etc/passwd'--" + marker,
	"1; DROP TABLE items--" + marker, "1;INSERT INTO items(name) VALUES('/etc/passwd')--" + marker,
	marker + "' AND 1=randomblob(500000000)--", marker + "' AND load_extension('x')--", marker + "' AND readfile('/etc/passwd')--",
	"%" + marker, "_" + marker, marker + "%%", `\%` + marker, "[a-z]*" + marker,
	`"` + marker, marker + " NEAR(", marker + "*", "title:" + marker, "^" + marker, "-" + marker, marker + " AND OR NOT",
	"(CASE WHEN (SELECT 1) THEN title ELSE artist END)" + marker, "title;DROP TABLE x--" + marker,
	marker + "\x00' OR 1=1--", marker + "\xff\xfe'", marker + "\u202e", strings.Repeat(marker, 2000),
}

// TestSQLInjectionMarker sends every payload in every parameter of every
// GET route (path values, the query parameters the routes read, a
// parameter name) and in the login form, as an admin and as a user of one
// library: no answer is a 5xx, and the marker never reaches SQL text —
// user input only ever reaches SQL as bound arguments.
func TestSQLInjectionMarker(t *testing.T) {
	f := securityFixture(t)
	cookies := map[string]string{}
	for _, name := range []string{"root", "mel"} {
		tok, _, err := f.svc.Login(t.Context(), name, f.passwords[name], "192.0.2."+name)
		if err != nil {
			t.Fatal(err)
		}
		cookies[name] = tok
	}
	sqlLog.Lock()
	sqlLog.stmts = nil
	sqlLog.Unlock()
	requests := 0
	for _, rt := range f.web.Routes() {
		method, p, _ := strings.Cut(rt.Pattern, " ")
		if method != http.MethodGet {
			continue
		}
		p = strings.TrimSuffix(p, "{$}")
		for _, inj := range injections {
			esc := url.PathEscape(inj)
			targets := []string{
				// Every {value} of the path is the payload.
				strings.NewReplacer("{path...}", "Music/"+esc, "{id}", esc, "{file}", "playlist.m3u8").Replace(p),
				// The query parameters the routes read, and a name.
				strings.NewReplacer("{path...}", "Music/", "{id}", "x", "{file}", "playlist.m3u8").Replace(p) +
					"?" + url.Values{"q": {inj}, "page": {inj}, "limit": {inj}, "offset": {inj}, "size": {inj}, inj: {"1"}}.Encode(),
			}
			if strings.Contains(p, "{file}") {
				targets = append(targets, strings.Replace(strings.Replace(p, "{id}", "x", 1), "{file}", esc, 1))
			}
			for _, tg := range targets {
				for _, c := range cookies {
					resp, body := send(t, f.srv, method, tg, "", http.Header{"Cookie": {sessionCookie + "=" + c}})
					requests++
					if resp.StatusCode >= 500 {
						t.Errorf("GET %s: %d %s", abbrevURL(tg), resp.StatusCode, body)
					}
					if strings.Contains(strings.ToLower(body), "sql") {
						t.Errorf("GET %s: the answer mentions SQL: %.200s", abbrevURL(tg), body)
					}
				}
			}
		}
	}
	// The login form: user names and passwords.
	for _, inj := range injections {
		resp, _ := send(t, f.srv, http.MethodPost, "/login", url.Values{"name": {inj}, "password": {inj}}.Encode(),
			http.Header{"Content-Type": {"application/x-www-form-urlencoded"}, "X-Forwarded-For": {"198.51.100." + strconv.Itoa(requests%250)}})
		requests++
		if resp.StatusCode != http.StatusUnauthorized && resp.StatusCode != http.StatusTooManyRequests {
			t.Errorf("login as %q: %d, want 401", abbrevURL(inj), resp.StatusCode)
		}
	}
	sqlLog.Lock()
	defer sqlLog.Unlock()
	if len(sqlLog.stmts) < requests/10 {
		t.Fatalf("only %d statements seen for %d requests: is the marker driver in use?", len(sqlLog.stmts), requests)
	}
	for _, q := range sqlLog.stmts {
		if strings.Contains(q, marker) {
			t.Errorf("user input in SQL text: %.300s", q)
		}
	}
	t.Logf("%d requests, %d statements, no marker in any", requests, len(sqlLog.stmts))
}

func abbrevURL(s string) string {
	if len(s) > 120 {
		return s[:120] + "…"
	}
	return s
}

// TestLoginWildcards: LIKE and GLOB characters in a user name are
// literal (Navidrome CVE-2024-47062: "%" signed in as the first user).
func TestLoginWildcards(t *testing.T) {
	f := securityFixture(t)
	for i, name := range []string{"%", "_", "%%", "r%", "r__t", "ro_t", "*", "[r]oot", "ROOT%"} {
		_, code := f.login(t, name, f.passwords["root"], "203.0.113."+strconv.Itoa(i))
		if code != http.StatusUnauthorized {
			t.Errorf("login as %q with root's password: %d, want 401", name, code)
		}
	}
	// Names are compared without case, by design.
	if _, code := f.login(t, "ROOT", f.passwords["root"], "203.0.113.99"); code != http.StatusSeeOther {
		t.Errorf("login as ROOT: %d, want 303", code)
	}
}

// login posts the form from client (X-Forwarded-For: the fixture trusts
// the loopback proxy) and returns the session cookie and the status.
func (f *authFixture) login(t *testing.T, name, pw, client string) (string, int) {
	t.Helper()
	resp, _ := send(t, f.srv, http.MethodPost, "/login", url.Values{"name": {name}, "password": {pw}}.Encode(),
		http.Header{"Content-Type": {"application/x-www-form-urlencoded"}, "X-Forwarded-For": {client}})
	for _, c := range resp.Cookies() {
		if c.Name == sessionCookie && c.Value != "" {
			return c.Value, resp.StatusCode
		}
	}
	return "", resp.StatusCode
}

// TestBruteForce: a client that fails too often gets 429 with
// Retry-After, even for the right password; another client is not
// affected; one account tried from many clients is limited too.
func TestBruteForce(t *testing.T) {
	f := securityFixture(t)
	var codes []int
	for i := range 12 {
		_, code := f.login(t, "nobody"+strconv.Itoa(i), "guess", "198.51.100.7")
		codes = append(codes, code)
	}
	if !slices.Equal(codes[:10], slices.Repeat([]int{401}, 10)) || codes[10] != 429 || codes[11] != 429 {
		t.Errorf("12 failed logins from one client: %v, want 10 × 401 then 429", codes)
	}
	if _, code := f.login(t, "root", f.passwords["root"], "198.51.100.7"); code != http.StatusTooManyRequests {
		t.Errorf("the right password from the limited client: %d, want 429", code)
	}
	resp, _ := send(t, f.srv, http.MethodPost, "/login", "name=x&password=y",
		http.Header{"Content-Type": {"application/x-www-form-urlencoded"}, "X-Forwarded-For": {"198.51.100.7"}})
	if ra := resp.Header.Get("Retry-After"); ra == "" || ra == "0" {
		t.Errorf("429 without a Retry-After: %q", ra)
	}
	if _, code := f.login(t, "root", f.passwords["root"], "198.51.100.8"); code != http.StatusSeeOther {
		t.Errorf("another client: %d, want 303", code)
	}
	// One account from ten clients: the account's own limit.
	codes = nil
	for i := range 7 {
		_, code := f.login(t, "vid", "wrong", "192.0.2."+strconv.Itoa(i+10))
		codes = append(codes, code)
	}
	if !slices.Equal(codes[:5], slices.Repeat([]int{401}, 5)) || codes[5] != 429 {
		t.Errorf("7 failed logins on one account from 7 clients: %v, want 5 × 401 then 429", codes)
	}
	// A client that is not a trusted proxy cannot pick its address.
	web := New(Options{Tree: nil, Auth: f.svc, SessionTTL: time.Hour})
	srv := httptest.NewServer(web)
	defer srv.Close()
	codes = nil
	for i := range 12 {
		resp, _ := send(t, srv, http.MethodPost, "/login", "name=nobody&password=x",
			http.Header{"Content-Type": {"application/x-www-form-urlencoded"}, "X-Forwarded-For": {"10.9.9." + strconv.Itoa(i)}})
		codes = append(codes, resp.StatusCode)
	}
	if codes[11] != http.StatusTooManyRequests {
		t.Errorf("X-Forwarded-For from an untrusted peer changed the client: %v", codes)
	}
}

// TestEnumeration: an unknown user and a wrong password get the same
// answer (status, headers, body) after similar work.
func TestEnumeration(t *testing.T) {
	// The server's own password costs: the timing is what is tested.
	f := securityFixture(t)
	store, err := auth.OpenStore(t.Context(), filepath.Join(t.TempDir(), "state.db"))
	if err != nil {
		t.Fatal(err)
	}
	keys, err := auth.OpenKeyFile(filepath.Join(t.TempDir(), "keys"))
	if err != nil {
		t.Fatal(err)
	}
	svc, err := auth.NewService(t.Context(), store, keys, auth.ServiceOptions{SessionTTL: time.Hour, LinkTTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	defer svc.Close()
	for _, n := range []string{"ann", "ben", "cat"} {
		if _, err := svc.AddUser(t.Context(), n, n+" password", auth.User, nil); err != nil {
			t.Fatal(err)
		}
	}
	srv := httptest.NewServer(New(Options{Auth: svc, SessionTTL: time.Hour, Logger: slog.New(slog.NewTextHandler(f.logs, nil)),
		TrustedProxies: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}}))
	defer srv.Close()
	attempt := func(name string, i int) (time.Duration, int, string, http.Header) {
		start := time.Now()
		resp, body := send(t, srv, http.MethodPost, "/login", url.Values{"name": {name}, "password": {"wrong password"}}.Encode(),
			http.Header{"Content-Type": {"application/x-www-form-urlencoded"}, "X-Forwarded-For": {"203.0.113." + strconv.Itoa(i)}})
		return time.Since(start), resp.StatusCode, strings.ReplaceAll(body, name, "NAME"), resp.Header
	}
	var known, unknown []time.Duration
	var bodies []string
	for i := range 12 {
		d, code, body, h := attempt([]string{"ann", "ben", "cat"}[i%3], i)
		known = append(known, d)
		d2, code2, body2, h2 := attempt("nobody"+strconv.Itoa(i), i+20)
		unknown = append(unknown, d2)
		if code != code2 || code != http.StatusUnauthorized || body != body2 || h.Get("Content-Type") != h2.Get("Content-Type") || len(h) != len(h2) {
			t.Fatalf("known user: %d %v %q; unknown: %d %v %q", code, h, body, code2, h2, body2)
		}
		bodies = append(bodies, body)
	}
	mk, mu := median(known), median(unknown)
	t.Logf("median login time: known user, wrong password %v; unknown user %v", mk, mu)
	if r := float64(mk) / float64(mu); r < 0.67 || r > 1.5 {
		t.Errorf("timing tells users apart: known %v, unknown %v (ratio %.2f)", mk, mu, r)
	}
}

func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[len(s)/2]
}

// TestSessions: a cookie the client chose is not a session (fixation),
// login always makes a new one, logout ends it for good, and the cookie
// has the attributes it must.
func TestSessions(t *testing.T) {
	f := securityFixture(t)
	me := func(cookie string) int {
		resp, _ := send(t, f.srv, http.MethodGet, "/api/me", "", http.Header{"Cookie": {sessionCookie + "=" + cookie}})
		return resp.StatusCode
	}
	// Fixation: an attacker's value, even a well-formed one of another
	// server's key, is no session, and login replaces it.
	other, err := auth.NewKeyring(auth.NewSecret())
	if err != nil {
		t.Fatal(err)
	}
	forged, _ := other.Sign(auth.Claims{Kind: auth.Session, Subject: f.admin.ID, Generation: 1, Expires: time.Now().Add(time.Hour)})
	for _, c := range []string{"attacker-chosen", forged} {
		if code := me(c); code != http.StatusUnauthorized {
			t.Errorf("cookie %.40q: %d, want 401", c, code)
		}
	}
	resp, _ := send(t, f.srv, http.MethodPost, "/login", url.Values{"name": {"mel"}, "password": {f.passwords["mel"]}}.Encode(),
		http.Header{"Content-Type": {"application/x-www-form-urlencoded"}, "Cookie": {sessionCookie + "=attacker-chosen"}})
	var c *http.Cookie
	for _, ck := range resp.Cookies() {
		if ck.Name == sessionCookie {
			c = ck
		}
	}
	if c == nil || c.Value == "attacker-chosen" || !c.HttpOnly || c.SameSite != http.SameSiteLaxMode || c.Path != "/" || c.Secure || c.MaxAge <= 0 {
		t.Fatalf("session cookie: %+v", c)
	}
	second, _ := f.login(t, "mel", f.passwords["mel"], "192.0.2.77")
	if second == c.Value {
		t.Error("two logins gave the same session")
	}
	if code := me(c.Value); code != http.StatusOK {
		t.Fatalf("session: %d", code)
	}
	// Logout ends this session only, and it stays ended.
	resp, _ = send(t, f.srv, http.MethodPost, "/logout", "", http.Header{"Cookie": {sessionCookie + "=" + c.Value}})
	if resp.StatusCode != http.StatusSeeOther || !slices.ContainsFunc(resp.Cookies(), func(k *http.Cookie) bool { return k.Name == sessionCookie && k.MaxAge < 0 }) {
		t.Errorf("logout: %d, cookies %v", resp.StatusCode, resp.Cookies())
	}
	if code := me(c.Value); code != http.StatusUnauthorized {
		t.Errorf("session reused after logout: %d, want 401", code)
	}
	if code := me(second); code != http.StatusOK {
		t.Errorf("the other session after one logout: %d, want 200", code)
	}
	// Behind a trusted proxy that says HTTPS, the cookie is Secure.
	resp, _ = send(t, f.srv, http.MethodPost, "/login", url.Values{"name": {"mel"}, "password": {f.passwords["mel"]}}.Encode(),
		http.Header{"Content-Type": {"application/x-www-form-urlencoded"}, "X-Forwarded-Proto": {"https"}, "X-Forwarded-For": {"192.0.2.78"}})
	if cs := resp.Cookies(); len(cs) == 0 || !cs[0].Secure {
		t.Errorf("cookie over HTTPS: %v, want Secure", cs)
	}
}

// TestCSRF: a state-changing request made by another site's page is
// refused, whatever cookie it carries; the same from the site works.
func TestCSRF(t *testing.T) {
	f := securityFixture(t)
	cookie, _ := f.login(t, "root", f.passwords["root"], "192.0.2.50")
	for _, target := range []string{"/logout", "/scan", "/api/scan", "/login"} {
		for _, h := range []http.Header{
			{"Sec-Fetch-Site": {"cross-site"}},
			{"Origin": {"http://evil.example"}},
			{"Sec-Fetch-Site": {"same-site"}, "Origin": {"http://sub.example"}},
		} {
			h.Set("Cookie", sessionCookie+"="+cookie)
			h.Set("Content-Type", "application/x-www-form-urlencoded")
			resp, _ := send(t, f.srv, http.MethodPost, target, "name=root&password="+url.QueryEscape(f.passwords["root"]), h)
			if resp.StatusCode != http.StatusForbidden {
				t.Errorf("POST %s with %v: %d, want 403", target, h, resp.StatusCode)
			}
		}
	}
	resp, _ := send(t, f.srv, http.MethodGet, "/api/me", "", http.Header{"Cookie": {sessionCookie + "=" + cookie}})
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("cross-site logouts ended the session: %d", resp.StatusCode)
	}
	h := http.Header{"Cookie": {sessionCookie + "=" + cookie}, "Sec-Fetch-Site": {"same-origin"}, "Origin": {f.srv.URL}}
	if resp, _ := send(t, f.srv, http.MethodPost, "/api/scan", "", h); resp.StatusCode != http.StatusAccepted {
		t.Errorf("same-origin POST /api/scan: %d, want 202", resp.StatusCode)
	}
}

// TestSignedLinks: a link works for exactly its URL and until it
// expires; each changed part is refused with the same answer.
func TestSignedLinks(t *testing.T) {
	f := securityFixture(t)
	const target = "/stream/Music/Bj%C3%B6rk/Homogenic/01%20Hunter.mp3"
	good := link(t, f.svc, f.user, target)
	u, _ := url.Parse(good)
	tok := u.Query().Get(linkParam)
	bound, err := f.svc.Link(f.user, linkScope("/stream/Music/Björk/Homogenic/01 Hunter.mp3", nil), auth.LinkOptions{Client: "192.0.2.1"})
	if err != nil {
		t.Fatal(err)
	}
	status := func(tg string, h http.Header) (int, string) {
		resp, body := send(t, f.srv, http.MethodGet, tg, "", h)
		return resp.StatusCode, body
	}
	if code, _ := status(good, nil); code != http.StatusOK {
		t.Fatalf("the link: %d", code)
	}
	var refusals []string
	for _, tg := range []string{
		strings.Replace(good, "Hunter", "hunter", 1),              // path case
		strings.Replace(good, "01%20Hunter", "02%20J%C3%B3ga", 1), // other item
		good + "&" + linkParam + "=" + tok,                        // the token twice
		good + "&x=1",                                             // an added parameter changes the scope
		target + "?" + linkParam + "=" + tok[:len(tok)-1],         // truncated MAC
		target + "?" + linkParam + "=" + strings.ToUpper(tok),     // case of the token
		target + "?" + linkParam + "=" + tok + "A",                // longer MAC
		target + "?" + linkParam + "=" + strings.Replace(tok, ".", "..", 1),
		target + "?" + linkParam + "=v1..." + strings.Repeat("A", 22),
		target + "?" + linkParam + "=" + url.QueryEscape(bound), // bound to another client
	} {
		code, body := status(tg, nil)
		if code != http.StatusForbidden {
			t.Errorf("%s: %d, want 403", abbrevURL(tg), code)
		}
		if strings.Contains(body, tok[10:30]) {
			t.Errorf("%s: the answer repeats the token", abbrevURL(tg))
		}
		refusals = append(refusals, body)
	}
	for _, b := range refusals[1:] {
		if b != refusals[0] {
			t.Errorf("refusals differ: %q and %q", refusals[0], b)
		}
	}
	// From the bound client (the trusted proxy says who), it works.
	if code, _ := status(target+"?"+linkParam+"="+url.QueryEscape(bound), http.Header{"X-Forwarded-For": {"192.0.2.1"}}); code != http.StatusOK {
		t.Errorf("bound link from its client: %d", code)
	}
	// A link without its token is no link (a token in a fragment never
	// reaches the server).
	if code, _ := status(target, nil); code != http.StatusUnauthorized {
		t.Errorf("without token: %d, want 401", code)
	}
	// A link is for a stream or playlist, never a page or the API.
	for _, p := range []string{"/api/me", "/api/libraries", "/"} {
		if code, _ := status(link(t, f.svc, f.user, p), nil); code == http.StatusOK {
			t.Errorf("a link for %s opened it", p)
		}
	}
	// A link of a user who lost the library stops working.
	if err := f.svc.SetAccess(t.Context(), f.user.ID, auth.User, []string{"Videos"}); err != nil {
		t.Fatal(err)
	}
	if code, _ := status(good, nil); code != http.StatusNotFound {
		t.Errorf("link of a user without the library: %d, want 404", code)
	}
}

// TestHeaderInjection: CR and LF from a client never start a header of
// the answer, and trusted-proxy headers from others are ignored.
func TestHeaderInjection(t *testing.T) {
	f := securityFixture(t)
	for _, next := range []string{"/%0d%0aSet-Cookie:%20x=1", "//evil.example/", "/\\evil.example", "https://evil.example/", "/ok%0aX: y"} {
		resp, _ := send(t, f.srv, http.MethodGet, "/login?next="+next, "", nil)
		if resp.Header.Get("X") != "" || len(resp.Header.Values("Set-Cookie")) > 0 {
			t.Errorf("next=%s: injected headers %v", next, resp.Header)
		}
		// One login per next (root's account allows 5 at once).
		body := url.Values{"name": {"root"}, "password": {f.passwords["root"]}, "next": {mustUnescape(next)}}.Encode()
		resp, _ = send(t, f.srv, http.MethodPost, "/login", body, http.Header{"Content-Type": {"application/x-www-form-urlencoded"},
			"X-Forwarded-For": {"192.0.2.61"}})
		if loc := resp.Header.Get("Location"); loc != "/" {
			t.Errorf("login with next=%q goes to %q, want /", next, loc)
		}
	}
}

func mustUnescape(s string) string {
	u, err := url.QueryUnescape(s)
	if err != nil {
		return s
	}
	return u
}

// TestSecretsNotLogged runs logins, links, API keys and failures through
// a server logging at debug level and checks that no password, session,
// link or key is in its log (acceptance 3; cmd/mustserv checks the same
// of a whole server's log).
func TestSecretsNotLogged(t *testing.T) {
	f := securityFixture(t)
	secrets := []string{f.passwords["root"], f.passwords["mel"], "wrong password 77"}
	cookie, _ := f.login(t, "mel", f.passwords["mel"], "192.0.2.90")
	f.login(t, "mel", "wrong password 77", "192.0.2.91")
	key, _, err := f.svc.AddAPIKey(t.Context(), f.user.ID, "script")
	if err != nil {
		t.Fatal(err)
	}
	lnk := link(t, f.svc, f.user, "/stream/Music/Bj%C3%B6rk/Homogenic/01%20Hunter.mp3")
	lu, _ := url.Parse(lnk)
	secrets = append(secrets, cookie, key, lu.Query().Get(linkParam))
	send(t, f.srv, http.MethodGet, lnk, "", nil)
	send(t, f.srv, http.MethodGet, tamper(lnk), "", nil)
	send(t, f.srv, http.MethodGet, "/api/me", "", http.Header{"Authorization": {"Bearer " + key}})
	send(t, f.srv, http.MethodGet, "/api/me", "", http.Header{"Authorization": {"Bearer " + key + "x"}})
	resp, body := send(t, f.srv, http.MethodGet, "/playlist/Music.m3u8", "", http.Header{"Cookie": {sessionCookie + "=" + cookie}})
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, linkParam+"=v1.") {
		t.Fatalf("playlist: %d %.200s", resp.StatusCode, body)
	}
	// The playlist's own links, used.
	for _, line := range strings.Split(body, "\n") {
		if strings.HasPrefix(line, "http") {
			pu, _ := url.Parse(line)
			secrets = append(secrets, pu.Query().Get(linkParam))
			send(t, f.srv, http.MethodGet, pu.RequestURI(), "", nil)
		}
	}
	send(t, f.srv, http.MethodPost, "/logout", "", http.Header{"Cookie": {sessionCookie + "=" + cookie}})
	send(t, f.srv, http.MethodGet, "/api/me", "", http.Header{"Cookie": {sessionCookie + "=" + cookie}})
	f.srv.Close() // every access line written
	logs := f.logs.String()
	if !strings.Contains(logs, "/stream/") || !strings.Contains(logs, "/login") {
		t.Fatalf("the log has no access lines: %.500s", logs)
	}
	for _, s := range secrets {
		if s != "" && strings.Contains(logs, s) {
			t.Errorf("a secret (%.12s…) is in the log", s)
		}
		// Part of a token is enough to worry: its MAC.
		if i := strings.LastIndexByte(s, '.'); i > 0 && strings.Contains(logs, s[i+1:]) {
			t.Errorf("a token's signature (%.12s…) is in the log", s[i+1:])
		}
	}
}

// TestLocalHosts: a server without accounts on loopback answers only
// requests for localhost or an address (DNS rebinding).
func TestLocalHosts(t *testing.T) {
	srv := httptest.NewServer(New(Options{LocalHosts: true}))
	defer srv.Close()
	for host, want := range map[string]int{
		"localhost:8000": 200, "127.0.0.1:8000": 200, "[::1]:8000": 200, "app.localhost": 200, "LOCALHOST.": 200,
		"evil.example": 421, "evil.example:8000": 421, "127.0.0.1.evil.example": 421, "localhost.evil.example": 421,
	} {
		req, _ := http.NewRequest(http.MethodGet, srv.URL+"/healthz", nil)
		req.Host = host
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("Host %s: %d, want %d", host, resp.StatusCode, want)
		}
	}
}

// TestCredentialsEdges: another Authorization scheme (a proxy's Basic) is
// not ours and locks nobody out; a bad key never makes a public route
// refuse; what a user sees is not for shared caches; an admin's API key
// cannot make keys or users; links from a link keep its limits.
func TestCredentialsEdges(t *testing.T) {
	f := securityFixture(t)
	cookie, _ := f.login(t, "mel", f.passwords["mel"], "192.0.2.120")
	for _, h := range []http.Header{{"Authorization": {"Basic dXNlcjpwYXNz"}}, {"Authorization": {"Bearer mk_nonsense"}}} {
		if resp, _ := send(t, f.srv, http.MethodGet, "/healthz", "", h); resp.StatusCode != http.StatusOK {
			t.Errorf("/healthz with %v: %d", h, resp.StatusCode)
		}
		h.Set("Cookie", sessionCookie+"="+cookie)
		if resp, _ := send(t, f.srv, http.MethodGet, "/api/me", "", h); resp.StatusCode != http.StatusOK && h.Get("Authorization")[:5] == "Basic" {
			t.Errorf("/api/me with a session and %v: %d", h.Get("Authorization"), resp.StatusCode)
		}
	}
	resp, _ := send(t, f.srv, http.MethodGet, "/stream/Music/Bj%C3%B6rk/Homogenic/01%20Hunter.mp3", "", http.Header{"Cookie": {sessionCookie + "=" + cookie}})
	if cc := resp.Header.Get("Cache-Control"); resp.StatusCode != http.StatusOK || !strings.Contains(cc, "private") {
		t.Errorf("a user's stream: %d, Cache-Control %q, want private", resp.StatusCode, cc)
	}
	// An admin's API key may read and change settings, not accounts.
	key, _, err := f.svc.AddAPIKey(t.Context(), f.admin.ID, "script")
	if err != nil {
		t.Fatal(err)
	}
	bearer := http.Header{"Authorization": {"Bearer " + key}, "Content-Type": {"application/x-www-form-urlencoded"}}
	for _, target := range []string{"/admin/users", "/admin/users/" + f.admin.ID + "/keys", "/admin/security/rotate"} {
		resp, _ := send(t, f.srv, http.MethodPost, target, "name=x&password=long+enough+1&password2=long+enough+1&role=admin", bearer)
		if resp.StatusCode != http.StatusForbidden {
			t.Errorf("POST %s with an admin's API key: %d, want 403", target, resp.StatusCode)
		}
	}
	if users, _ := f.svc.Users(t.Context()); len(users) != 3 {
		t.Errorf("%d users after the refused requests, want 3", len(users))
	}
	// A playlist fetched by a link bound to a client signs tracks bound
	// to it, expiring no later.
	scope := "/playlist/Music/Various.m3u8"
	tok, err := f.svc.Link(f.user, scope, auth.LinkOptions{Client: "192.0.2.5", Expires: time.Now().Add(10 * time.Minute)})
	if err != nil {
		t.Fatal(err)
	}
	resp, body := send(t, f.srv, http.MethodGet, scope+"?t="+tok, "", http.Header{"X-Forwarded-For": {"192.0.2.5"}})
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("bound playlist link: %d", resp.StatusCode)
	}
	for _, line := range strings.Split(body, "\n") {
		if !strings.HasPrefix(line, "http") {
			continue
		}
		u, _ := url.Parse(line)
		for client, want := range map[string]int{"192.0.2.5": 200, "192.0.2.6": 403} {
			r, _ := send(t, f.srv, http.MethodHead, u.RequestURI(), "", http.Header{"X-Forwarded-For": {client}})
			if r.StatusCode != want {
				t.Errorf("track of a bound playlist from %s: %d, want %d", client, r.StatusCode, want)
			}
		}
		parts := strings.Split(u.Query().Get("t"), ".")
		if len(parts) == 4 {
			if claims, err := base64Claims(parts[2]); err == nil && claims.Exp > time.Now().Add(11*time.Minute).Unix() {
				t.Errorf("a track link outlives the playlist's link: exp %d", claims.Exp)
			}
		}
	}
	// bind=1 binds the tracks to whoever downloads the playlist.
	resp, body = send(t, f.srv, http.MethodGet, "/playlist/Music/Various.m3u8?bind=1", "",
		http.Header{"Cookie": {sessionCookie + "=" + cookie}, "X-Forwarded-For": {"192.0.2.7"}})
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, "t=v1.") {
		t.Fatalf("bind=1 playlist: %d", resp.StatusCode)
	}
	first := ""
	for _, line := range strings.Split(body, "\n") {
		if strings.HasPrefix(line, "http") {
			first = line
			break
		}
	}
	u, _ := url.Parse(first)
	if r, _ := send(t, f.srv, http.MethodHead, u.RequestURI(), "", http.Header{"X-Forwarded-For": {"192.0.2.8"}}); r.StatusCode != http.StatusForbidden {
		t.Errorf("a bind=1 track from another client: %d, want 403", r.StatusCode)
	}
}

// base64Claims reads a token's claims part (tests only: no MAC check).
func base64Claims(part string) (struct{ Exp int64 }, error) {
	var c struct{ Exp int64 }
	b, err := base64.RawURLEncoding.DecodeString(part)
	if err != nil {
		return c, err
	}
	return c, json.Unmarshal(b, &c)
}

// TestIPv6LoginLimit: one IPv6 host has a whole /64; its addresses share
// the per-client login limit.
func TestIPv6LoginLimit(t *testing.T) {
	f := securityFixture(t)
	var codes []int
	for i := range 12 {
		_, code := f.login(t, "nobody"+strconv.Itoa(i), "x", "2001:db8:1:2::"+strconv.FormatInt(int64(i+1), 16))
		codes = append(codes, code)
	}
	if codes[10] != http.StatusTooManyRequests {
		t.Errorf("12 logins from 12 addresses of one /64: %v, want 429 after 10", codes)
	}
}

// TestGuestsMakeNoKeys: a guest uses the browser only.
func TestGuestsMakeNoKeys(t *testing.T) {
	f := securityFixture(t)
	if _, err := f.svc.AddUser(t.Context(), "gus", "gus password 4", auth.Guest, []string{"Music"}); err != nil {
		t.Fatal(err)
	}
	f.passwords["gus"] = "gus password 4"
	cookie, _ := f.login(t, "gus", f.passwords["gus"], "192.0.2.130")
	resp, _ := send(t, f.srv, http.MethodPost, "/account/keys", "name=app",
		http.Header{"Cookie": {sessionCookie + "=" + cookie}, "Content-Type": {"application/x-www-form-urlencoded"}})
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("a guest's POST /account/keys: %d, want 403", resp.StatusCode)
	}
	if keys, _ := f.svc.APIKeys(t.Context(), ""); len(keys) != 0 {
		t.Errorf("%d keys after the refusal", len(keys))
	}
}
