package web

import (
	"context"
	"crypto/tls"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strings"
	"testing"
	"time"

	"mustserv/internal/auth"
)

// TestNodeTokenOpensMetricsOnly: another node's token (same signing key)
// reads /metrics, and nothing else; a forged or expired one reads nothing.
func TestNodeTokenOpensMetricsOnly(t *testing.T) {
	t.Parallel()
	f := newAuthFixture(t)
	tok, err := f.svc.NodeToken(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	old, err := f.svc.NodeToken(time.Now().Add(-time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	bearer := func(tok string) http.Header { return http.Header{"Authorization": {"Bearer " + tok}} }
	for _, tc := range []struct {
		method, target, tok string
		want                int
	}{
		{"GET", "/metrics", tok, http.StatusOK},
		{"GET", "/metrics", old, http.StatusUnauthorized},
		{"GET", "/metrics", tok[:len(tok)-2] + "AA", http.StatusUnauthorized},
		{"GET", "/admin", tok, http.StatusSeeOther}, // to the login page
		{"GET", "/api/libraries", tok, http.StatusUnauthorized},
		{"GET", "/stream/Music/a.mp3", tok, http.StatusUnauthorized},
		{"POST", "/admin/drain", tok, http.StatusUnauthorized},
	} {
		resp, body := send(t, f.srv, tc.method, tc.target, "drain=on", bearer(tc.tok))
		if resp.StatusCode != tc.want {
			t.Errorf("%s %s with a node token: %s %q, want %d", tc.method, tc.target, resp.Status, body, tc.want)
		}
	}
}

// TestDrainForm: an admin's drain form turns the node's draining on and
// off, and the overview shows the node's state.
func TestDrainForm(t *testing.T) {
	t.Parallel()
	f := newAuthFixture(t)
	node := f.web.opts.Node.(*fakeNode)
	cookie := f.session(t, "root")
	resp, _ := f.post(t, "/admin/drain", "drain=on", cookie)
	if resp.StatusCode != http.StatusSeeOther || !node.Draining() {
		t.Fatalf("drain=on: %s, draining %v", resp.Status, node.Draining())
	}
	_, page := send(t, f.srv, "GET", "/admin?done=drain-on", "", http.Header{"Cookie": {sessionCookie + "=" + cookie}})
	if !strings.Contains(page, "node-a</strong>: not ready: draining") || !strings.Contains(page, "Take new streams again") {
		t.Errorf("the overview does not show the draining node:\n%s", page)
	}
	if resp, _ := f.post(t, "/admin/drain", "drain=maybe", cookie); resp.StatusCode != http.StatusBadRequest || !node.Draining() {
		t.Errorf("drain=maybe: %s, draining %v; want 400 and no change", resp.Status, node.Draining())
	}
	if resp, _ := f.post(t, "/admin/drain", "drain=off", cookie); resp.StatusCode != http.StatusSeeOther || node.Draining() {
		t.Errorf("drain=off: %s, draining %v", resp.Status, node.Draining())
	}
}

// TestDrainFormOtherNode: a drain form that reached another node than the
// page named (a balancer in between) drains nothing.
func TestDrainFormOtherNode(t *testing.T) {
	t.Parallel()
	f := newAuthFixture(t)
	node := f.web.opts.Node.(*fakeNode)
	cookie := f.session(t, "root")
	resp, body := f.post(t, "/admin/drain", "drain=on&node=node-b", cookie)
	if resp.StatusCode != http.StatusConflict || node.Draining() || !strings.Contains(body, `"node-a"`) {
		t.Errorf("drain of node-b sent to node-a: %s %q, draining %v; want 409 naming both and no drain", resp.Status, body, node.Draining())
	}
}

// TestElsewhere: the URL a stream is placed at carries a link for exactly
// that URL, never wider, longer or faster than the request's own link or
// session; a placed request is not placed again; HTTPS is not placed on a
// plain HTTP peer.
func TestElsewhere(t *testing.T) {
	t.Parallel()
	f := newAuthFixture(t)
	peer := "http://10.0.0.2:8000"
	f.web.opts.Place = func(_ int64, accept func(string) bool) (string, bool) {
		if accept != nil && !accept(peer) {
			return "", false
		}
		return peer, true
	}
	now := time.Now()
	linkExp := now.Add(time.Hour).Truncate(time.Second)
	sessExp := now.Add(2 * time.Hour).Truncate(time.Second)
	placed := func(v *viewer, target string, https bool) (*url.URL, auth.Claims, error) {
		t.Helper()
		r := httptest.NewRequest(http.MethodGet, target, nil)
		r.RemoteAddr = "192.0.2.7:5000"
		if https {
			r.TLS = &tls.ConnectionState{}
		}
		r = r.WithContext(context.WithValue(r.Context(), viewerKey{}, v))
		el := f.web.elsewhere(r)
		if el == nil {
			return nil, auth.Claims{}, errors.New("no placement for this request")
		}
		loc := el(128_000)
		if loc == "" {
			return nil, auth.Claims{}, errors.New("not placed")
		}
		u, err := url.Parse(loc)
		if err != nil || !strings.HasPrefix(loc, peer+"/stream/Music/a%20b.mp3?") || u.Query().Get("hop") != "1" {
			t.Fatalf("placed at %q", loc)
		}
		q := u.Query()
		_, c, err := f.svc.CheckLink(q.Get("t"), linkScope(u.Path, q), "192.0.2.7", now)
		return u, c, err
	}
	// A link's limits carry over.
	lv := &viewer{Account: f.user, via: "link", link: auth.Claims{Client: "192.0.2.7", Rate: 500_000, Expires: linkExp}}
	u, c, err := placed(lv, "/stream/Music/a%20b.mp3?t=old&download=1", false)
	if err != nil || c.Client != "192.0.2.7" || c.Rate != 500_000 || !c.Expires.Equal(linkExp) || u.Query().Get("download") != "1" {
		t.Errorf("placed from a link: claims %+v, %v, query %q", c, err, u.RawQuery)
	}
	// A session's: bound to the client, ending with the session.
	sv := &viewer{Account: f.user, via: "session", session: auth.Claims{Expires: sessExp}}
	if _, c, err := placed(sv, "/stream/Music/a%20b.mp3", false); err != nil || c.Client != "192.0.2.7" || c.Expires.After(sessExp) {
		t.Errorf("placed from a session: claims %+v, %v", c, err)
	}
	// The signed link is for that URL only.
	u, _, _ = placed(sv, "/stream/Music/a%20b.mp3", false)
	q := u.Query()
	if _, _, err := f.svc.CheckLink(q.Get("t"), linkScope("/stream/Music/other.mp3", q), "192.0.2.7", now); err == nil {
		t.Error("the placed link opens another file")
	}
	if _, _, err := placed(sv, "/stream/Music/a%20b.mp3?hop=1", false); err == nil {
		t.Error("a placed request was placed again")
	}
	if _, _, err := placed(sv, "/stream/Music/a%20b.mp3", true); err == nil {
		t.Error("an HTTPS request was placed on a plain HTTP peer")
	}
}

// TestDirect: a stream request that came through a trusted proxy is sent
// to the node's own URL with a link for exactly it; one made to the node
// directly, a HEAD, or one from HTTPS to a plain HTTP node is served here.
func TestDirect(t *testing.T) {
	t.Parallel()
	f := newAuthFixture(t)
	self := "http://10.0.0.1:8000"
	f.web.opts.Direct = self
	f.web.proxies = proxies{netip.MustParsePrefix("127.0.0.1/32")}
	sv := &viewer{Account: f.user, via: "session", session: auth.Claims{Expires: time.Now().Add(time.Hour)}}
	req := func(method, from, xff string, https bool) *http.Request {
		r := httptest.NewRequest(method, "/stream/Music/a%20b.mp3?download=1", nil)
		r.RemoteAddr = from + ":5000"
		if xff != "" {
			r.Header.Set("X-Forwarded-For", xff)
		}
		if https {
			r.Header.Set("X-Forwarded-Proto", "https")
		}
		return r.WithContext(context.WithValue(r.Context(), viewerKey{}, sv))
	}
	loc := f.web.direct(req(http.MethodGet, "127.0.0.1", "192.0.2.7", false))
	u, err := url.Parse(loc)
	if err != nil || !strings.HasPrefix(loc, self+"/stream/Music/a%20b.mp3?") || u.Query().Get("download") != "1" || u.Query().Has("hop") {
		t.Fatalf("through the balancer: sent to %q", loc)
	}
	q := u.Query()
	if _, c, err := f.svc.CheckLink(q.Get("t"), linkScope(u.Path, q), "192.0.2.7", time.Now()); err != nil || c.Client != "192.0.2.7" {
		t.Errorf("the link of a direct stream: %+v %v; want it bound to the player's address", c, err)
	}
	withViewer := func(r *http.Request, v *viewer) *http.Request {
		return r.WithContext(context.WithValue(r.Context(), viewerKey{}, v))
	}
	atSelf := req(http.MethodGet, "127.0.0.1", "192.0.2.7", false)
	atSelf.Host = "10.0.0.1:8000" // a proxy of the node's own in front of its URL
	for name, r := range map[string]*http.Request{
		"direct to the node":    req(http.MethodGet, "192.0.2.7", "", false),
		"untrusted proxy":       req(http.MethodGet, "192.0.2.8", "192.0.2.7", false),
		"HEAD":                  req(http.MethodHead, "127.0.0.1", "192.0.2.7", false),
		"HTTPS to a plain node": req(http.MethodGet, "127.0.0.1", "192.0.2.7", true),
		"at its own address":    atSelf,
		"an API key":            withViewer(req(http.MethodGet, "127.0.0.1", "192.0.2.7", false), &viewer{Account: f.user, via: "key"}),
		"a link about to expire": withViewer(req(http.MethodGet, "127.0.0.1", "192.0.2.7", false),
			&viewer{Account: f.user, via: "link", link: auth.Claims{Expires: time.Now().Add(2 * time.Second)}}),
	} {
		if loc := f.web.direct(r); loc != "" {
			t.Errorf("%s: sent to %q, want served here", name, loc)
		}
	}
	node := f.web.opts.Node.(*fakeNode)
	node.SetDraining(true)
	if loc := f.web.direct(req(http.MethodGet, "127.0.0.1", "192.0.2.7", false)); loc != "" {
		t.Errorf("a draining node sent a stream to its own address %q", loc)
	}
}

// TestMediaOrigins: the pages' player may stream from the nodes streams
// are redirected to, and from nowhere else.
func TestMediaOrigins(t *testing.T) {
	t.Parallel()
	srv := webServer(t, Options{MediaOrigins: []string{"http://10.0.0.2:8000", "https://n3.example"}})
	resp, _ := get(t, srv, "GET", "/", nil)
	csp := resp.Header.Get("Content-Security-Policy")
	if !strings.Contains(csp, "media-src 'self' http://10.0.0.2:8000 https://n3.example;") {
		t.Errorf("Content-Security-Policy %q does not let the player stream from the nodes", csp)
	}
	plain := webServer(t, Options{})
	resp, _ = get(t, plain, "GET", "/", nil)
	if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "media-src 'self';") {
		t.Errorf("without nodes, Content-Security-Policy %q", csp)
	}
}
