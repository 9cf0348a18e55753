package main

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"mustserv/internal/auth"
	"mustserv/internal/testenv"
	"mustserv/internal/testenv/haproxy"
)

// TestPlacement: two nodes share the signing key and accounts; node A's
// uplink budget holds one stream. While it runs, A's /readyz says why it
// is not ready, and A answers a second stream with 307 to B (which it
// read, with a node token, as having room) carrying a signed link that
// B accepts without the cookie; the bytes are the file's. A request that
// was placed once is never placed again (503). B's /metrics refuses a
// token signed with another key.
func TestPlacement(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "Music")
	files := []pacedFile{{name: "tone.mp3", args: cbrMP3Args(30)}}
	makePacedFiles(t, dir, files)
	f := files[0]
	src := readFile(t, filepath.Join(dir, f.name))
	reserve := f.peak / 8 * 8
	shared := t.TempDir()
	authConf := "[auth]\nkey_file = " + tomlString(filepath.Join(shared, "signing.keys")) +
		"\nstate_file = " + tomlString(filepath.Join(shared, "state.db")) + "\n"
	pa, pb := testenv.FreePort(t), testenv.FreePort(t)
	ua, ub := fmt.Sprintf("http://127.0.0.1:%d", pa), fmt.Sprintf("http://127.0.0.1:%d", pb)
	nodeConf := func(name, self, peer string, uplink int64) string {
		return writeConfig(t, authConf+fmt.Sprintf("[server]\nlisten = %q\n[pace]\nuplink = %q\nunknown_rate = \"64kbit\"\n"+
			"[cluster]\nname = %q\nurl = %q\npeers = [%q]\nplacement = true\npoll = \"200ms\"\n",
			strings.TrimPrefix(self, "http://"), strconv.FormatInt(uplink, 10), name, self, peer))
	}
	confA := nodeConf("a", ua, ub, reserve+reserve/2/8*8) // one stream and a half
	confB := nodeConf("b", ub, ua, 4*reserve)
	if _, _, err := runCmd(t, "user", "add", "ann", "--role", "admin", "--config", confA, "--password-file", passwordFile(t, "ann's password")); err != nil {
		t.Fatal(err)
	}
	key, _, err := runCmd(t, "user", "key", "add", "ann", "metrics", "--config", confA)
	key = strings.TrimSpace(key)
	noteSecret(key)
	if err != nil {
		t.Fatal(err)
	}
	a := startRun(t, nil, "--auth", "--config", confA, dir)
	b := startRun(t, nil, "--auth", "--config", confB, dir)
	scrape := func(base string) map[string]float64 {
		t.Helper()
		resp, body := get(t, base+"/metrics", "Authorization", "Bearer "+key)
		m, err := parseExposition(string(body))
		if resp.StatusCode != http.StatusOK || err != nil {
			t.Fatalf("%s/metrics: %s %v", base, resp.Status, err)
		}
		return m
	}
	waitFor := func(what string, ok func() bool) {
		t.Helper()
		for range 400 {
			if ok() {
				return
			}
			time.Sleep(25 * time.Millisecond) // polling, bounded by the loop
		}
		t.Fatalf("never: %s", what)
	}
	// Each node reads the other with a node token (the nodes have no
	// API key of their own).
	waitFor("each node reads the other as ready", func() bool {
		return scrape(a.URL)["mustserv_peers_ready"] == 1 && scrape(b.URL)["mustserv_peers_ready"] == 1
	})

	cookie, _ := login(t, a.URL, "ann", "ann's password")
	c := &http.Client{Transport: &http.Transport{DisableKeepAlives: true},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	stream := func(target string, header ...string) *http.Response {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, target, nil)
		for i := 0; i+1 < len(header); i += 2 {
			req.Header.Set(header[i], header[i+1])
		}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { resp.Body.Close() })
		return resp
	}
	path := "/stream/Music/" + f.name
	first := stream(a.URL+path, "Cookie", "mustserv_session="+cookie)
	if first.StatusCode != http.StatusOK {
		t.Fatalf("first stream on a: %s", first.Status)
	}
	if _, err := io.ReadFull(first.Body, make([]byte, 16<<10)); err != nil {
		t.Fatal(err)
	}
	if resp, body := get(t, a.URL+"/readyz"); resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(string(body), "uplink budget exhausted") {
		t.Errorf("a's /readyz with its budget full: %s %q", resp.Status, body)
	}

	second := stream(a.URL+path, "Cookie", "mustserv_session="+cookie, "Range", "bytes=1000-")
	loc, err := url.Parse(second.Header.Get("Location"))
	if second.StatusCode != http.StatusTemporaryRedirect || err != nil || !strings.HasPrefix(loc.String(), ub+path+"?") {
		t.Fatalf("second stream on a: %s to %q, want 307 to b", second.Status, second.Header.Get("Location"))
	}
	noteSecret(loc.Query().Get("t"))
	if loc.Query().Get("hop") != "1" || loc.Query().Get("t") == "" {
		t.Errorf("the placed URL %q has no hop mark or signed link", loc)
	}
	// The player follows without the cookie (another host), Range kept.
	placed := stream(loc.String(), "Range", "bytes=1000-")
	got := make([]byte, 32<<10)
	if _, err := io.ReadFull(placed.Body, got); placed.StatusCode != http.StatusPartialContent || err != nil {
		t.Fatalf("the placed stream on b: %s %v", placed.Status, err)
	}
	if !bytes.Equal(got, src[1000:1000+len(got)]) {
		t.Error("the placed stream's bytes are not the file's")
	}
	if m := scrape(a.URL); m["mustserv_streams_placed_total"] != 1 {
		t.Errorf("a's mustserv_streams_placed_total = %v, want 1", m["mustserv_streams_placed_total"])
	}
	// A placed request is not placed again: a full node answers 503.
	again := stream(a.URL+loc.RequestURI(), "Range", "bytes=1000-")
	if again.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("a placed request on a full node: %s, want 503", again.Status)
	}
	// A node token signed with another key reads nothing.
	ring, err := auth.NewKeyring(auth.NewSecret())
	if err != nil {
		t.Fatal(err)
	}
	forged, err := ring.Sign(auth.Claims{Kind: auth.Node, Subject: "metrics", Expires: time.Now().Add(time.Minute)})
	if err != nil {
		t.Fatal(err)
	}
	if resp, _ := get(t, b.URL+"/metrics", "Authorization", "Bearer "+forged); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("b's /metrics with a node token of another key: %s, want 401", resp.Status)
	}
	// The signed link is for this file only.
	other := strings.Replace(loc.String(), f.name, "other.mp3", 1)
	if resp := stream(other); resp.StatusCode != http.StatusForbidden {
		t.Errorf("the placed link for another file: %s, want 403", resp.Status)
	}
}

// TestDirect: with cluster.direct on, a stream through HAProxy (from
// haproxy-config) is answered 307 to the node's own URL with a signed link
// for that file, which the player follows without its cookie: the bytes
// are the file's and come from the node, not through the balancer; pages
// and playlists still come through the balancer.
func TestDirect(t *testing.T) {
	t.Parallel()
	testenv.NeedTool(t, "haproxy")
	dir := filepath.Join(t.TempDir(), "Music")
	files := []pacedFile{{name: "tone.mp3", args: cbrMP3Args(20)}}
	makePacedFiles(t, dir, files)
	src := readFile(t, filepath.Join(dir, files[0].name))
	port := testenv.FreePort(t)
	self := fmt.Sprintf("http://127.0.0.1:%d", port)
	shared := t.TempDir()
	conf := writeConfig(t, fmt.Sprintf("[server]\nlisten = \"127.0.0.1:%d\"\ntrusted_proxies = [\"127.0.0.1\"]\n"+
		"[auth]\nkey_file = %q\nstate_file = %q\n[cluster]\nurl = %q\ndirect = true\n",
		port, filepath.Join(shared, "signing.keys"), filepath.Join(shared, "state.db"), self))
	if _, _, err := runCmd(t, "user", "add", "ann", "--config", conf, "--library", "Music",
		"--password-file", passwordFile(t, "ann's password")); err != nil {
		t.Fatal(err)
	}
	s := startRun(t, nil, "--auth", "--config", conf, dir)
	lbPort := testenv.FreePort(t)
	cfg, _, err := runCmd(t, "haproxy-config", "--node", self, "--listen", fmt.Sprintf("127.0.0.1:%d", lbPort), "--check-interval", "500ms")
	if err != nil {
		t.Fatal(err)
	}
	p := haproxy.Start(t, cfg)
	p.WaitStatus(t, "streams", "node1", "UP", 10*time.Second)
	p.WaitStatus(t, "pages", "node1", "UP", 10*time.Second)
	lb := fmt.Sprintf("http://127.0.0.1:%d", lbPort)

	cookie, code := login(t, lb, "ann", "ann's password")
	if cookie == "" {
		t.Fatalf("login through the balancer: %d", code)
	}
	resp, body := get(t, lb+"/playlist/Music.m3u8", "Cookie", "mustserv_session="+cookie)
	links := parseM3U(t, body)
	if resp.StatusCode != http.StatusOK || len(links) != 1 || !strings.HasPrefix(links[0], lb+"/") {
		t.Fatalf("playlist through the balancer: %s %q", resp.Status, links)
	}
	// The web UI's player may follow the redirect: the page allows the
	// node as a media source.
	if resp, _ := get(t, lb+"/", "Cookie", "mustserv_session="+cookie); !strings.Contains(resp.Header.Get("Content-Security-Policy"), "media-src 'self' "+self) {
		t.Errorf("a page through the balancer does not let its player stream from the node: %q", resp.Header.Get("Content-Security-Policy"))
	}
	req, _ := http.NewRequest(http.MethodGet, links[0], nil)
	req.Header.Set("Range", "bytes=100-")
	first, err := noRedirect.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	first.Body.Close()
	loc := first.Header.Get("Location")
	if first.StatusCode != http.StatusTemporaryRedirect || !strings.HasPrefix(loc, self+"/stream/Music/tone.mp3?") {
		t.Fatalf("a stream through the balancer: %s to %q, want 307 to the node", first.Status, loc)
	}
	if u, err := url.Parse(loc); err == nil {
		noteSecret(u.Query().Get("t"))
	}
	req, _ = http.NewRequest(http.MethodGet, loc, nil)
	req.Header.Set("Range", "bytes=100-")
	direct, err := noRedirect.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer direct.Body.Close()
	got := make([]byte, 64<<10)
	if _, err := io.ReadFull(direct.Body, got); direct.StatusCode != http.StatusPartialContent || err != nil {
		t.Fatalf("the node's own URL: %s %v", direct.Status, err)
	}
	if !bytes.Equal(got, src[100:100+len(got)]) {
		t.Error("the direct stream's bytes are not the file's")
	}
	direct.Body.Close()
	// The balancer carried the redirect (the player's address is the
	// balancer's X-Forwarded-For), the node the stream (from the player
	// itself: here both are 127.0.0.1).
	lines := s.Stderr.waitRequests(t, "the stream's two access lines", func(l accessLine) bool {
		return strings.HasPrefix(l.Path, "/stream/") && l.Status == http.StatusPartialContent
	})
	var redirects int
	for _, l := range s.requests() {
		if strings.HasPrefix(l.Path, "/stream/") && l.Status == http.StatusTemporaryRedirect {
			redirects++
		}
	}
	if len(lines) != 1 || redirects != 1 {
		t.Errorf("the node logged %d streams and %d redirects, want one of each", len(lines), redirects)
	}
	if s, err := p.Servers(); err != nil || s["streams/node1"].Total != 1 {
		t.Errorf("the balancer's streams backend: %+v %v, want one session (the redirect)", s["streams/node1"], err)
	}
}
