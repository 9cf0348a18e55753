package web

import (
	"bytes"
	"context"
	"encoding/xml"
	"errors"
	"flag"
	"fmt"
	"html"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"mustserv/internal/cluster"
	"mustserv/internal/config"
	"mustserv/internal/library"
	"mustserv/internal/stream"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/ with the current output")

// testHost is the Host every request of these tests carries, so that
// playlists (built from it) are the same on every run.
const testHost = "mustserv.test:8080"

// writeLibrary creates files under dir: a name ending in "/" is a folder,
// anything else a file whose content is "bytes of <name>".
func writeLibrary(t testing.TB, dir string, names ...string) {
	t.Helper()
	for _, n := range names {
		p := filepath.Join(dir, n)
		if strings.HasSuffix(n, "/") {
			if err := os.MkdirAll(p, 0o755); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte("bytes of "+n), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// webServer serves two libraries: "My Music", whose names need escaping in
// URLs, HTML and XML, and "Small", a short tree whose playlists are spelled
// out in full below.
func webServer(t *testing.T, opts Options) *httptest.Server {
	t.Helper()
	base := t.TempDir()
	music, small := filepath.Join(base, "music"), filepath.Join(base, "small")
	writeLibrary(t, music,
		"a #1?.mp3", "50% off.mp3", "Ünïcödé ✓.flac", "Tom & Jerry <live>.mp3", "quote\"d 'x'.ogg",
		"notes.txt", "cover.jpg", "film.mkv", ".hidden.mp3",
		"sub folder/x y.mp3", "sub folder/deeper/z.ogg", "empty/",
	)
	writeLibrary(t, small, "b.mp3", "a b.mp3", "sub/c.ogg", "x.txt", ".hidden.mp3")
	tree, err := library.Open([]config.Library{{Name: "My Music", Path: music}, {Name: "Small", Path: small}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tree.Close() })
	opts.Tree = tree
	opts.Stream = stream.New(time.Minute)
	srv := httptest.NewServer(New(opts))
	t.Cleanup(srv.Close)
	return srv
}

// get sends one request with Host testHost and returns the response with
// its body read; redirects are not followed.
func get(t testing.TB, srv *httptest.Server, method, target string, header http.Header) (*http.Response, string) {
	t.Helper()
	return send(t, srv, method, target, "", header)
}

// golden compares got with testdata/name, or rewrites the file with -update.
func golden(t *testing.T, name, got string) {
	t.Helper()
	p := filepath.Join("testdata", name)
	if *update {
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(p)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if diff := cmp.Diff(string(want), got); diff != "" {
		t.Errorf("%s mismatch (-want +got; go test -update rewrites it):\n%s", p, diff)
	}
}

func TestHealthz(t *testing.T) {
	t.Parallel()
	srv := webServer(t, Options{})
	for _, method := range []string{"GET", "HEAD"} {
		resp, body := get(t, srv, method, "/healthz", nil)
		want := "ok\n"
		if method == "HEAD" {
			want = ""
		}
		if resp.StatusCode != http.StatusOK || body != want {
			t.Errorf("%s /healthz = %d %q; want 200 %q", method, resp.StatusCode, body, want)
		}
		if got := resp.Header.Get("Cache-Control"); got != "no-store" {
			t.Errorf("%s /healthz Cache-Control = %q; want no-store", method, got)
		}
	}
}

// fakeNode is a Node whose readiness a test sets.
type fakeNode struct {
	mu       sync.Mutex
	err      error
	draining bool
	peers    []cluster.Peer
}

func (n *fakeNode) Name() string { return "node-a" }
func (n *fakeNode) Ready() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.draining {
		return cluster.ErrDraining
	}
	return n.err
}
func (n *fakeNode) Serving() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if errors.Is(n.err, cluster.ErrUplinkFull) {
		return nil
	}
	return n.err
}
func (n *fakeNode) Draining() bool { n.mu.Lock(); defer n.mu.Unlock(); return n.draining }
func (n *fakeNode) SetDraining(on bool) {
	n.mu.Lock()
	n.draining = on
	n.mu.Unlock()
}
func (n *fakeNode) Peers() []cluster.Peer { return n.peers }

func TestReadyz(t *testing.T) {
	t.Parallel()
	node := &fakeNode{}
	srv := webServer(t, Options{Node: node})
	always := webServer(t, Options{})
	tests := []struct {
		name     string
		srv      *httptest.Server
		err      error
		wantCode int
		wantBody string
	}{
		{name: "starting", srv: srv, err: cluster.ErrStarting, wantCode: http.StatusServiceUnavailable, wantBody: "not ready: starting\n"},
		{name: "ready", srv: srv, wantCode: http.StatusOK, wantBody: "ready\n"},
		{name: "uplink full", srv: srv, err: cluster.ErrUplinkFull, wantCode: http.StatusServiceUnavailable, wantBody: "not ready: uplink budget exhausted\n"},
		{name: "nil Node is always ready", srv: always, wantCode: http.StatusOK, wantBody: "ready\n"},
	}
	// Sequential: the cases set one node's state, in order.
	for _, tt := range tests {
		node.mu.Lock()
		node.err = tt.err
		node.mu.Unlock()
		resp, body := get(t, tt.srv, "GET", "/readyz", nil)
		if resp.StatusCode != tt.wantCode || body != tt.wantBody {
			t.Errorf("%s: /readyz = %d %q; want %d %q", tt.name, resp.StatusCode, body, tt.wantCode, tt.wantBody)
		}
		// Pages are served with the uplink full, not while starting.
		resp, body = get(t, tt.srv, "GET", "/readyz?for=pages", nil)
		if want := tt.err == nil || errors.Is(tt.err, cluster.ErrUplinkFull); (resp.StatusCode == http.StatusOK) != want {
			t.Errorf("%s: /readyz?for=pages = %d %q; want 200: %v", tt.name, resp.StatusCode, body, want)
		}
	}
}

func TestBrowse(t *testing.T) {
	t.Parallel()
	srv := webServer(t, Options{})
	tests := []struct {
		name, target, golden string
		contains             []string // escaped forms that must appear
	}{
		{name: "home", target: "/", golden: "browse_home.html",
			contains: []string{`href="/browse/My%20Music/"`, `href="/playlist/My%20Music.m3u8"`, `href="/browse/Small/"`}},
		{name: "browse root", target: "/browse/", golden: "browse_home.html"},
		{name: "library", target: "/browse/My%20Music/", golden: "browse_library.html",
			contains: []string{
				`href="/stream/My%20Music/a%20%231%3F.mp3"`,
				`href="/stream/My%20Music/50%25%20off.mp3"`,
				`href="/stream/My%20Music/%C3%9Cn%C3%AFc%C3%B6d%C3%A9%20%E2%9C%93.flac"`,
				`href="/stream/My%20Music/Tom%20&amp;%20Jerry%20%3Clive%3E.mp3"`,
				`Tom &amp; Jerry &lt;live&gt;.mp3`,
				`href="/browse/My%20Music/sub%20folder/"`,
				`href="/playlist/My%20Music.xspf"`,
			}},
		{name: "library without trailing slash", target: "/browse/My%20Music", golden: "browse_library.html"},
		{name: "subfolder", target: "/browse/My%20Music/sub%20folder/", golden: "browse_subfolder.html",
			contains: []string{`href="/browse/My%20Music/sub%20folder/deeper/"`, `href="/stream/My%20Music/sub%20folder/x%20y.mp3"`}},
		{name: "empty folder", target: "/browse/My%20Music/empty/", golden: "browse_empty.html"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			resp, body := get(t, srv, "GET", tt.target, nil)
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("GET %s = %d; want 200", tt.target, resp.StatusCode)
			}
			h := resp.Header
			wantHeaders := map[string]string{
				"Content-Type":           "text/html; charset=utf-8",
				"X-Content-Type-Options": "nosniff",
				"Referrer-Policy":        "same-origin",
				"Content-Length":         strconv.Itoa(len(body)),
			}
			for k, v := range wantHeaders {
				if got := h.Get(k); got != v {
					t.Errorf("%s: %q; want %q", k, got, v)
				}
			}
			csp := h.Get("Content-Security-Policy")
			for _, d := range []string{"default-src 'self'", "frame-ancestors 'none'", "object-src 'none'", "base-uri 'none'"} {
				if !strings.Contains(csp, d) {
					t.Errorf("Content-Security-Policy %q lacks %q", csp, d)
				}
			}
			if strings.Contains(csp, "unsafe-inline") {
				t.Errorf("Content-Security-Policy %q allows inline script", csp)
			}
			for _, s := range tt.contains {
				if !strings.Contains(body, s) {
					t.Errorf("body lacks %s", s)
				}
			}
			for _, s := range []string{"<live>", ".hidden", "Jerry <"} {
				if strings.Contains(body, s) {
					t.Errorf("body contains %q (unescaped or hidden)", s)
				}
			}
			golden(t, tt.golden, body)
		})
	}
}

var linkAttr = regexp.MustCompile(`(href|src|data-play|data-copy)="([^"]*)"`)

// TestBrowseLinksRoundTrip follows every link of a listing whose names need
// escaping: each must decode to the intended virtual path and be served.
func TestBrowseLinksRoundTrip(t *testing.T) {
	t.Parallel()
	srv := webServer(t, Options{})
	_, body := get(t, srv, "GET", "/browse/My%20Music/", nil)
	var paths []string
	for _, m := range linkAttr.FindAllStringSubmatch(body, -1) {
		raw := html.UnescapeString(m[2])
		if strings.HasPrefix(raw, "#") {
			continue // the skip link to <main>: no name in it
		}
		u, err := url.Parse(raw)
		if err != nil {
			t.Errorf("%s=%q does not parse: %v", m[1], raw, err)
			continue
		}
		if u.Scheme != "" || u.Host != "" || u.RawQuery != "" || u.Fragment != "" {
			t.Errorf("%s=%q: want a plain path (name characters leaked into URL syntax)", m[1], raw)
		}
		if !slices.Contains(paths, u.Path) {
			paths = append(paths, u.Path)
		}
		resp, _ := get(t, srv, "GET", raw, nil)
		if resp.StatusCode != http.StatusOK {
			t.Errorf("GET %s (%s) = %d; want 200", raw, u.Path, resp.StatusCode)
		}
	}
	want := []string{
		"/static/app.css", "/static/app.js", "/static/favicon.svg",
		"/", "/browse/", "/browse/My Music/",
		"/playlist/My Music.m3u8", "/playlist/My Music.pls", "/playlist/My Music.xspf",
		"/browse/My Music/empty/", "/playlist/My Music/empty.m3u8",
		"/browse/My Music/sub folder/", "/playlist/My Music/sub folder.m3u8",
		"/stream/My Music/50% off.mp3", "/playlist/My Music/50% off.mp3.m3u8",
		"/stream/My Music/a #1?.mp3", "/playlist/My Music/a #1?.mp3.m3u8",
		"/stream/My Music/cover.jpg",
		"/stream/My Music/film.mkv", "/playlist/My Music/film.mkv.m3u8", "/watch/My Music/film.mkv",
		"/stream/My Music/notes.txt",
		"/stream/My Music/quote\"d 'x'.ogg", "/playlist/My Music/quote\"d 'x'.ogg.m3u8",
		"/stream/My Music/Tom & Jerry <live>.mp3", "/playlist/My Music/Tom & Jerry <live>.mp3.m3u8",
		"/stream/My Music/Ünïcödé ✓.flac", "/playlist/My Music/Ünïcödé ✓.flac.m3u8",
	}
	slices.Sort(want)
	slices.Sort(paths)
	if diff := cmp.Diff(want, paths); diff != "" {
		t.Errorf("decoded link paths mismatch (-want +got):\n%s", diff)
	}
}

func TestBrowseFileRedirectsToStream(t *testing.T) {
	t.Parallel()
	srv := webServer(t, Options{})
	resp, _ := get(t, srv, "GET", "/browse/My%20Music/a%20%231%3F.mp3", nil)
	if want := "/stream/My%20Music/a%20%231%3F.mp3"; resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != want {
		t.Fatalf("browse of a file = %d Location %q; want 302 %q", resp.StatusCode, resp.Header.Get("Location"), want)
	}
	resp, body := get(t, srv, "GET", resp.Header.Get("Location"), nil)
	if resp.StatusCode != http.StatusOK || body != "bytes of a #1?.mp3" {
		t.Errorf("following the redirect = %d %q; want 200 with the file", resp.StatusCode, body)
	}
}

func TestBrowseErrors(t *testing.T) {
	t.Parallel()
	srv := webServer(t, Options{})
	tests := []struct {
		name, target string
		want         int
	}{
		{name: "missing library", target: "/browse/Nope/", want: http.StatusNotFound},
		{name: "missing folder", target: "/browse/Small/nope/", want: http.StatusNotFound},
		{name: "hidden", target: "/browse/Small/.hidden.mp3", want: http.StatusNotFound},
		{name: "encoded dotdot", target: "/browse/Small/%2e%2e/", want: http.StatusBadRequest},
		{name: "control character", target: "/browse/Small/%01/", want: http.StatusBadRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			resp, body := get(t, srv, "GET", tt.target, nil)
			if resp.StatusCode != tt.want {
				t.Errorf("GET %s = %d; want %d", tt.target, resp.StatusCode, tt.want)
			}
			if want := http.StatusText(tt.want) + "\n"; body != want {
				t.Errorf("GET %s body = %q; want %q", tt.target, body, want)
			}
		})
	}
}

func TestPlaylist(t *testing.T) {
	t.Parallel()
	srv := webServer(t, Options{})
	const base = "http://" + testHost + "/stream/Small/"
	tests := []struct {
		name, target    string
		wantType        string
		wantDisposition string
		want            string
	}{
		{
			name: "m3u8 of a library", target: "/playlist/Small.m3u8",
			wantType: "audio/x-mpegurl", wantDisposition: "attachment; filename=Small.m3u8",
			want: "#EXTM3U\n" +
				"#EXTINF:-1,c\n" + base + "sub/c.ogg\n" +
				"#EXTINF:-1,a b\n" + base + "a%20b.mp3\n" +
				"#EXTINF:-1,b\n" + base + "b.mp3\n",
		},
		{
			name: "pls of a library", target: "/playlist/Small.pls",
			wantType: "audio/x-scpls", wantDisposition: "attachment; filename=Small.pls",
			want: "[playlist]\n" +
				"File1=" + base + "sub/c.ogg\nTitle1=c\nLength1=-1\n" +
				"File2=" + base + "a%20b.mp3\nTitle2=a b\nLength2=-1\n" +
				"File3=" + base + "b.mp3\nTitle3=b\nLength3=-1\n" +
				"NumberOfEntries=3\nVersion=2\n",
		},
		{
			name: "xspf of a library", target: "/playlist/Small.xspf",
			wantType: "application/xspf+xml", wantDisposition: "attachment; filename=Small.xspf",
			want: `<?xml version="1.0" encoding="UTF-8"?>` + "\n" +
				`<playlist version="1" xmlns="http://xspf.org/ns/0/">` + "\n<trackList>\n" +
				"<track><location>" + base + "sub/c.ogg</location><title>c</title></track>\n" +
				"<track><location>" + base + "a%20b.mp3</location><title>a b</title></track>\n" +
				"<track><location>" + base + "b.mp3</location><title>b</title></track>\n" +
				"</trackList>\n</playlist>\n",
		},
		{
			name: "m3u8 of a folder", target: "/playlist/Small/sub.m3u8",
			wantType: "audio/x-mpegurl", wantDisposition: "attachment; filename=sub.m3u8",
			want: "#EXTM3U\n#EXTINF:-1,c\n" + base + "sub/c.ogg\n",
		},
		{
			name: "m3u8 of one file", target: "/playlist/Small/a%20b.mp3.m3u8",
			wantType: "audio/x-mpegurl", wantDisposition: `attachment; filename="a b.mp3.m3u8"`,
			want: "#EXTM3U\n#EXTINF:-1,a b\n" + base + "a%20b.mp3\n",
		},
		{
			name: "m3u8 of a non-media file is empty", target: "/playlist/Small/x.txt.m3u8",
			wantType: "audio/x-mpegurl", wantDisposition: "attachment; filename=x.txt.m3u8",
			want: "#EXTM3U\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			resp, body := get(t, srv, "GET", tt.target, nil)
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("GET %s = %d %q; want 200", tt.target, resp.StatusCode, body)
			}
			if diff := cmp.Diff(tt.want, body); diff != "" {
				t.Errorf("GET %s body mismatch (-want +got):\n%s", tt.target, diff)
			}
			got := map[string]string{}
			for _, k := range []string{"Content-Type", "Content-Disposition", "Cache-Control", "Content-Length"} {
				got[k] = resp.Header.Get(k)
			}
			want := map[string]string{
				"Content-Type": tt.wantType, "Content-Disposition": tt.wantDisposition,
				"Cache-Control": "no-store", "Content-Length": strconv.Itoa(len(tt.want)),
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("GET %s headers mismatch (-want +got):\n%s", tt.target, diff)
			}
		})
	}
}

// xspf is the part of an XSPF document the tests read.
type xspf struct {
	XMLName xml.Name `xml:"http://xspf.org/ns/0/ playlist"`
	Version string   `xml:"version,attr"`
	Tracks  []struct {
		Location string `xml:"location"`
		Title    string `xml:"title"`
	} `xml:"trackList>track"`
}

// TestPlaylistGolden checks the three formats for a library whose names
// need escaping, and that the XSPF one is XML that decodes to the names.
func TestPlaylistGolden(t *testing.T) {
	t.Parallel()
	srv := webServer(t, Options{})
	for _, ext := range []string{"m3u8", "pls", "xspf"} {
		t.Run(ext, func(t *testing.T) {
			t.Parallel()
			resp, body := get(t, srv, "GET", "/playlist/My%20Music."+ext, nil)
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("status %d; want 200", resp.StatusCode)
			}
			golden(t, "playlist_my_music."+ext, body)
			for _, s := range []string{".hidden", "notes", "cover", "<live>.mp3\n"} {
				if strings.Contains(body, s) {
					t.Errorf("playlist mentions %q", s)
				}
			}
			if ext != "xspf" {
				return
			}
			var doc xspf
			if err := xml.Unmarshal([]byte(body), &doc); err != nil {
				t.Fatalf("XSPF does not parse: %v", err)
			}
			var titles, locations []string
			for _, tr := range doc.Tracks {
				titles = append(titles, tr.Title)
				u, err := url.Parse(tr.Location)
				if err != nil {
					t.Errorf("location %q: %v", tr.Location, err)
					continue
				}
				if u.Host != testHost || u.RawQuery != "" || u.Fragment != "" {
					t.Errorf("location %q: want a plain path on %s", tr.Location, testHost)
				}
				locations = append(locations, u.Path)
			}
			wantTitles := []string{"z", "x y", "50% off", "a #1?", "film", "quote\"d 'x'", "Tom & Jerry <live>", "Ünïcödé ✓"}
			if diff := cmp.Diff(wantTitles, titles); diff != "" {
				t.Errorf("XSPF titles mismatch (-want +got):\n%s", diff)
			}
			if doc.Version != "1" || len(locations) != len(wantTitles) || locations[6] != "/stream/My Music/Tom & Jerry <live>.mp3" {
				t.Errorf("XSPF version %q, locations %q", doc.Version, locations)
			}
		})
	}
}

func TestPlaylistForwardedHeaders(t *testing.T) {
	t.Parallel()
	loopback := []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")}
	elsewhere := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}
	tests := []struct {
		name    string
		trusted []netip.Prefix
		proto   string
		host    string
		want    string // scheme://host of the stream URLs
	}{
		{name: "no headers", trusted: loopback, want: "http://" + testHost},
		{name: "no trusted proxies: ignored", proto: "https", host: "music.example.org", want: "http://" + testHost},
		{name: "peer not trusted: ignored", trusted: elsewhere, proto: "https", host: "music.example.org", want: "http://" + testHost},
		{name: "trusted peer", trusted: loopback, proto: "https", host: "music.example.org", want: "https://music.example.org"},
		{name: "trusted peer with port", trusted: loopback, proto: "https", host: "music.example.org:8443", want: "https://music.example.org:8443"},
		{name: "trusted peer IPv6 host", trusted: loopback, proto: "http", host: "[2001:db8::1]:8080", want: "http://[2001:db8::1]:8080"},
		{name: "proto only", trusted: loopback, proto: "https", want: "https://" + testHost},
		{name: "host only", trusted: loopback, host: "music.example.org", want: "http://music.example.org"},
		{name: "lists: first entry", trusted: loopback, proto: "https, http", host: "a.example, b.example", want: "https://a.example"},
		{name: "unknown scheme ignored", trusted: loopback, proto: "javascript", host: "music.example.org", want: "http://music.example.org"},
		{name: "host with markup ignored", trusted: loopback, proto: "https", host: `evil.example/"><script>`, want: "https://" + testHost},
		{name: "host with userinfo ignored", trusted: loopback, host: "user@evil.example", want: "http://" + testHost},
		{name: "host with path ignored", trusted: loopback, host: "evil.example/x?y#z", want: "http://" + testHost},
		{name: "host with space ignored", trusted: loopback, host: "evil.example #EXTINF:-1", want: "http://" + testHost},
		{name: "overlong host ignored", trusted: loopback, host: strings.Repeat("a", 300) + ".example", want: "http://" + testHost},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv := webServer(t, Options{TrustedProxies: tt.trusted})
			h := http.Header{}
			if tt.proto != "" {
				h.Set("X-Forwarded-Proto", tt.proto)
			}
			if tt.host != "" {
				h.Set("X-Forwarded-Host", tt.host)
			}
			resp, body := get(t, srv, "GET", "/playlist/Small/b.mp3.m3u8", h)
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("status %d %q; want 200", resp.StatusCode, body)
			}
			want := "#EXTM3U\n#EXTINF:-1,b\n" + tt.want + "/stream/Small/b.mp3\n"
			if body != want {
				t.Errorf("playlist = %q; want %q", body, want)
			}
		})
	}
}

func TestPlaylistErrors(t *testing.T) {
	t.Parallel()
	srv := webServer(t, Options{})
	tests := []struct {
		name, target string
		want         int
	}{
		{name: "no extension", target: "/playlist/Small", want: http.StatusBadRequest},
		{name: "m3u", target: "/playlist/Small.m3u", want: http.StatusBadRequest},
		{name: "upper case", target: "/playlist/Small.M3U8", want: http.StatusBadRequest},
		{name: "media extension", target: "/playlist/Small/b.mp3", want: http.StatusBadRequest},
		{name: "json", target: "/playlist/Small.json", want: http.StatusBadRequest},
		{name: "extension only", target: "/playlist/.m3u8", want: http.StatusBadRequest},
		{name: "missing library", target: "/playlist/Nope.m3u8", want: http.StatusNotFound},
		{name: "missing folder", target: "/playlist/Small/nope.pls", want: http.StatusNotFound},
		{name: "hidden", target: "/playlist/Small/.hidden.mp3.xspf", want: http.StatusNotFound},
		{name: "encoded dotdot", target: "/playlist/Small/%2e%2e.m3u8", want: http.StatusBadRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			resp, body := get(t, srv, "GET", tt.target, nil)
			if resp.StatusCode != tt.want {
				t.Errorf("GET %s = %d %q; want %d", tt.target, resp.StatusCode, body, tt.want)
			}
		})
	}
}

func TestStreamHEAD(t *testing.T) {
	t.Parallel()
	srv := webServer(t, Options{})
	const content = "bytes of a b.mp3"
	get1, body := get(t, srv, "GET", "/stream/Small/a%20b.mp3", nil)
	if get1.StatusCode != http.StatusOK || body != content {
		t.Fatalf("GET = %d %q; want 200 %q", get1.StatusCode, body, content)
	}
	head, body := get(t, srv, "HEAD", "/stream/Small/a%20b.mp3", nil)
	if head.StatusCode != http.StatusOK || body != "" {
		t.Fatalf("HEAD = %d %q; want 200 with no body", head.StatusCode, body)
	}
	for _, k := range []string{"Content-Length", "Content-Type", "Etag", "Last-Modified", "Accept-Ranges", "X-Content-Type-Options"} {
		if head.Header.Get(k) == "" || head.Header.Get(k) != get1.Header.Get(k) {
			t.Errorf("HEAD %s = %q, GET %s = %q; want the same, non-empty", k, head.Header.Get(k), k, get1.Header.Get(k))
		}
	}
	if got := head.Header.Get("Content-Length"); got != strconv.Itoa(len(content)) {
		t.Errorf("HEAD Content-Length = %q; want %d", got, len(content))
	}
	if got := head.Header.Get("Content-Type"); got != "audio/mpeg" {
		t.Errorf("HEAD Content-Type = %q; want audio/mpeg", got)
	}
}

func TestUnknownRoutesAndMethods(t *testing.T) {
	t.Parallel()
	srv := webServer(t, Options{})
	tests := []struct {
		name, method, target string
		want                 int
		wantAllow            string
	}{
		{name: "unknown path", method: "GET", target: "/nope", want: http.StatusNotFound},
		{name: "api", method: "GET", target: "/api/v1/items", want: http.StatusNotFound},
		{name: "favicon", method: "GET", target: "/favicon.ico", want: http.StatusNotFound},
		{name: "template source", method: "GET", target: "/ui/browse.html", want: http.StatusNotFound},
		{name: "missing static", method: "GET", target: "/static/nope.js", want: http.StatusNotFound},
		{name: "POST stream", method: "POST", target: "/stream/Small/b.mp3", want: http.StatusMethodNotAllowed, wantAllow: "GET, HEAD"},
		{name: "PUT stream", method: "PUT", target: "/stream/Small/b.mp3", want: http.StatusMethodNotAllowed, wantAllow: "GET, HEAD"},
		{name: "DELETE browse", method: "DELETE", target: "/browse/Small/", want: http.StatusMethodNotAllowed, wantAllow: "GET, HEAD"},
		{name: "POST healthz", method: "POST", target: "/healthz", want: http.StatusMethodNotAllowed, wantAllow: "GET, HEAD"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			resp, _ := get(t, srv, tt.method, tt.target, nil)
			if resp.StatusCode != tt.want {
				t.Errorf("%s %s = %d; want %d", tt.method, tt.target, resp.StatusCode, tt.want)
			}
			if got := resp.Header.Get("Allow"); got != tt.wantAllow {
				t.Errorf("%s %s Allow = %q; want %q", tt.method, tt.target, got, tt.wantAllow)
			}
		})
	}
}

// logBuffer collects log output written by server goroutines, for the test
// to read once the response is in.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func newLogBuffer() *logBuffer { return &logBuffer{} }

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func TestRecoverPanics(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		handler   http.HandlerFunc
		wantCode  int
		wantBody  string
		wantLog   []string
		wantPanic any // re-raised value, if any
	}{
		{
			name:     "no panic",
			handler:  func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) },
			wantCode: http.StatusNoContent,
		},
		{
			name:     "panic with a string",
			handler:  func(http.ResponseWriter, *http.Request) { panic("boom /secret/path") },
			wantCode: http.StatusInternalServerError, wantBody: "Internal Server Error\n",
			wantLog: []string{"handler panic", "boom /secret/path", "path=/x"},
		},
		{
			name:     "panic with an error",
			handler:  func(http.ResponseWriter, *http.Request) { panic(fmt.Errorf("wrapped: %w", fs.ErrClosed)) },
			wantCode: http.StatusInternalServerError, wantBody: "Internal Server Error\n",
			wantLog: []string{"handler panic", "file already closed"},
		},
		{
			name:      "ErrAbortHandler is re-raised",
			handler:   func(http.ResponseWriter, *http.Request) { panic(http.ErrAbortHandler) },
			wantPanic: http.ErrAbortHandler,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			logs := newLogBuffer()
			h := recoverPanics(tt.handler, slog.New(slog.NewTextHandler(logs, nil)))
			rec := httptest.NewRecorder()
			var got any
			func() {
				defer func() { got = recover() }()
				h.ServeHTTP(rec, httptest.NewRequest("GET", "/x", nil))
			}()
			if got != tt.wantPanic {
				t.Fatalf("panic reaching the server = %v; want %v", got, tt.wantPanic)
			}
			if tt.wantPanic != nil {
				return
			}
			if rec.Code != tt.wantCode || rec.Body.String() != tt.wantBody {
				t.Errorf("response = %d %q; want %d %q", rec.Code, rec.Body.String(), tt.wantCode, tt.wantBody)
			}
			for _, s := range tt.wantLog {
				if !strings.Contains(logs.String(), s) {
					t.Errorf("log %q lacks %q", logs.String(), s)
				}
			}
			if len(tt.wantLog) == 0 && logs.String() != "" {
				t.Errorf("logged %q; want nothing", logs.String())
			}
		})
	}
}

// TestRecoverPanicsServer checks that the server built by New recovers: a
// panic turns into a 500 on a real connection, and the server keeps serving.
func TestRecoverPanicsServer(t *testing.T) {
	t.Parallel()
	logs := newLogBuffer()
	h := recoverPanics(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/panic" {
			panic("boom")
		}
		io.WriteString(w, "fine")
	}), slog.New(slog.NewTextHandler(logs, nil)))
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	resp, body := get(t, srv, "GET", "/panic", nil)
	if resp.StatusCode != http.StatusInternalServerError || body != "Internal Server Error\n" {
		t.Errorf("GET /panic = %d %q; want 500", resp.StatusCode, body)
	}
	resp, body = get(t, srv, "GET", "/ok", nil)
	if resp.StatusCode != http.StatusOK || body != "fine" {
		t.Errorf("GET /ok after a panic = %d %q; want 200 fine", resp.StatusCode, body)
	}
	if !strings.Contains(logs.String(), "handler panic") {
		t.Errorf("log %q lacks the panic", logs.String())
	}
}

func TestWriteError(t *testing.T) {
	t.Parallel()
	secret := "/srv/media/private/name.mp3"
	tests := []struct {
		name    string
		err     error
		want    int
		wantLog bool
	}{
		{name: "bad path", err: fmt.Errorf("%w: segment %q", library.ErrBadPath, ".."), want: http.StatusBadRequest},
		{name: "bad request", err: fmt.Errorf("%w: %s", errBadRequest, secret), want: http.StatusBadRequest},
		{name: "not found", err: &fs.PathError{Op: "open", Path: secret, Err: fs.ErrNotExist}, want: http.StatusNotFound},
		{name: "permission", err: &fs.PathError{Op: "open", Path: secret, Err: fs.ErrPermission}, want: http.StatusForbidden},
		{name: "client went away", err: fmt.Errorf("walk %s: %w", secret, context.Canceled), want: http.StatusServiceUnavailable},
		{name: "deadline", err: fmt.Errorf("walk %s: %w", secret, context.DeadlineExceeded), want: http.StatusServiceUnavailable, wantLog: true},
		{name: "other", err: fmt.Errorf("read %s: %w", secret, errors.New("input/output error")), want: http.StatusInternalServerError, wantLog: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			logs := newLogBuffer()
			rec := httptest.NewRecorder()
			writeError(rec, httptest.NewRequest("GET", "/stream/x", nil), slog.New(slog.NewTextHandler(logs, nil)), tt.err)
			if rec.Code != tt.want {
				t.Errorf("status %d; want %d", rec.Code, tt.want)
			}
			if want := http.StatusText(tt.want) + "\n"; rec.Body.String() != want {
				t.Errorf("body %q; want %q (never the error's text)", rec.Body.String(), want)
			}
			if logged := strings.Contains(logs.String(), secret); logged != tt.wantLog {
				t.Errorf("error logged = %v; want %v (log: %q)", logged, tt.wantLog, logs.String())
			}
		})
	}
}
