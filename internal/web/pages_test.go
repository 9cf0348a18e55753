package web

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"mustserv/internal/index"
	"mustserv/internal/probe"
	"mustserv/internal/stream"
)

// TestPages renders every view from the test index and compares it with
// testdata/pages/ (IDs normalised as for the API).
func TestPages(t *testing.T) {
	t.Parallel()
	srv, x := indexServer(t)
	id := ids(t, x)
	tests := []struct {
		name, target string
		want         int
		contains     []string
	}{
		{name: "home", target: "/", want: 200, contains: []string{`data-testid="rescan"`, `data-testid="scan-progress"`, "6 items", "offline: folder not mounted"}},
		{name: "folder", target: "/browse/Music/Bj%C3%B6rk/Homogenic/", want: 200,
			contains: []string{"Hunter", "4:15", `data-testid="play-all"`, `data-testid="playlist-m3u8"`}},
		{name: "folder_various", target: "/browse/Music/Various/", want: 200,
			contains: []string{"Tom &amp; Jerry &lt;live&gt;", `data-url="/stream/Music/Various/bad%20%FF%20name.ogg"`}},
		{name: "albums", target: "/albums", want: 200, contains: []string{"Homogenic"}},
		{name: "album", target: "/albums/" + id["album Homogenic"], want: 200, contains: []string{"9:20", `/playlist.xspf"`}},
		{name: "artists", target: "/artists", want: 200, contains: []string{"Björk"}},
		{name: "artist", target: "/artists/" + id["artist Björk"], want: 200, contains: []string{"Emoji", "Homogenic"}},
		{name: "search_empty", target: "/search", want: 200, contains: []string{`data-testid="search"`}},
		{name: "search", target: "/search?q=bjork", want: 200, contains: []string{`data-testid="result"`, `data-testid="result-album"`, `data-testid="result-artist"`}},
		{name: "search_bad", target: "/search?q=-live", want: 400, contains: []string{"only excludes"}},
		{name: "item", target: "/items/" + id["Music/Björk/Homogenic/01 Hunter.mp3"], want: 200,
			contains: []string{"44100 Hz", "320 kbit/s average, 400 kbit/s peak (exact)", "Electronic"}},
		{name: "item_video", target: "/items/" + id["Videos/clip.mp4"], want: 200, contains: []string{"1280×720", `href="/watch/Videos/clip.mp4"`}},
		{name: "watch", target: "/watch/Videos/clip.mp4", want: 200, contains: []string{`data-testid="video"`, `src="/stream/Videos/clip.mp4"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			resp, body := get(t, srv, "GET", tt.target, nil)
			if resp.StatusCode != tt.want {
				t.Fatalf("GET %s = %d; want %d\n%s", tt.target, resp.StatusCode, tt.want, body)
			}
			if ct := resp.Header.Get("Content-Type"); ct != "text/html; charset=utf-8" {
				t.Errorf("Content-Type %q", ct)
			}
			for _, s := range tt.contains {
				if !strings.Contains(body, s) {
					t.Errorf("page lacks %s", s)
				}
			}
			golden(t, "pages/"+tt.name+".html", normalizeIDs(body))
		})
	}
}

// TestPagesWithoutIndex: the index's pages answer 503 and are not linked.
func TestPagesWithoutIndex(t *testing.T) {
	t.Parallel()
	srv := webServer(t, Options{})
	for _, target := range []string{"/albums", "/albums/x", "/artists", "/artists/x", "/search?q=a", "/items/x"} {
		if resp, _ := get(t, srv, "GET", target, nil); resp.StatusCode != http.StatusServiceUnavailable {
			t.Errorf("GET %s = %d; want 503", target, resp.StatusCode)
		}
	}
	_, body := get(t, srv, "GET", "/", nil)
	for _, s := range []string{`href="/albums"`, `href="/artists"`, `data-testid="search"`, `data-testid="rescan"`} {
		if strings.Contains(body, s) {
			t.Errorf("home without index has %s", s)
		}
	}
	// The video page works from the disk alone.
	if resp, _ := get(t, srv, "GET", "/watch/My%20Music/film.mkv", nil); resp.StatusCode != http.StatusOK {
		t.Errorf("watch without index = %d; want 200", resp.StatusCode)
	}
}

func TestPageErrors(t *testing.T) {
	t.Parallel()
	srv, _ := indexServer(t)
	for target, want := range map[string]int{
		"/albums/0123456789abcdef":     404,
		"/artists/0123456789abcdef":    404,
		"/items/0123456789abcdef":      404,
		"/albums?page=0":               400,
		"/artists?page=x":              400,
		"/browse/Music/?page=-1":       400,
		"/search?q=a&page=0":           400,
		"/watch/Music/Nope.mp4":        404,
		"/watch/Music/Various":         404, // a folder
		"/watch/Videos/folder.jpg":     404, // not media
		"/watch/Music/%2e%2e/x.mp4":    400,
		"/search?q=" + longQuery(501):  400,
		"/albums?page=1000":            200, // past the end: an empty page
		"/browse/Music/Various?page=9": 200,
	} {
		if resp, body := get(t, srv, "GET", target, nil); resp.StatusCode != want {
			t.Errorf("GET %s = %d; want %d\n%s", target, resp.StatusCode, want, body)
		}
	}
}

func longQuery(n int) string { return strings.Repeat("a", n) }

// Markup that a CSP without 'unsafe-inline' would block, or that runs
// script from an attribute.
var (
	scriptTag   = regexp.MustCompile(`(?is)<script\b([^>]*)>(.*?)</script>`)
	styleMarkup = regexp.MustCompile(`(?i)<style\b|\sstyle\s*=`)
	handlerAttr = regexp.MustCompile(`(?i)\son[a-z]+\s*=`)
	jsURL       = regexp.MustCompile(`(?i)(href|src|action)\s*=\s*"\s*javascript:`)
)

// TestPagesNoInlineScriptOrStyle: every page keeps to its CSP: scripts
// come from files, there is no style element or attribute, no event
// handler attribute, no javascript: URL, and the CSP allows none of them.
func TestPagesNoInlineScriptOrStyle(t *testing.T) {
	t.Parallel()
	srv, x := indexServer(t)
	bare := webServer(t, Options{})
	id := ids(t, x)
	targets := map[*httptest.Server][]string{
		srv: {"/", "/browse/", "/browse/Music/", "/browse/Music/Various/", "/browse/Videos/", "/albums", "/albums/" + id["album Homogenic"],
			"/artists", "/artists/" + id["artist Björk"], "/search", "/search?q=bjork", "/search?q=-x",
			"/items/" + id["Music/Björk/Homogenic/01 Hunter.mp3"], "/items/" + id["Videos/clip.mp4"], "/watch/Videos/clip.mp4"},
		bare: {"/", "/browse/My%20Music/", "/browse/My%20Music/sub%20folder/", "/watch/My%20Music/film.mkv"},
	}
	for s, list := range targets {
		for _, target := range list {
			resp, body := get(t, s, "GET", target, nil)
			csp := resp.Header.Get("Content-Security-Policy")
			if !strings.Contains(csp, "default-src 'self'") || strings.Contains(csp, "unsafe-inline") || strings.Contains(csp, "unsafe-eval") {
				t.Errorf("%s: Content-Security-Policy %q", target, csp)
			}
			scripts := scriptTag.FindAllStringSubmatch(body, -1)
			if len(scripts) != 1 {
				t.Errorf("%s: %d script elements; want the one module", target, len(scripts))
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
		}
	}
}

// TestPageHooks: the data-testid hooks the browser tests rely on are there
// (docs/api.md lists them).
func TestPageHooks(t *testing.T) {
	t.Parallel()
	srv, _ := indexServer(t)
	_, body := get(t, srv, "GET", "/browse/Music/Bj%C3%B6rk/Homogenic/", nil)
	for _, hook := range []string{"player", "play-pause", "next", "prev", "seek", "queue", "now-playing", "search",
		"audio", "time", "duration", "volume", "queue-toggle", "queue-clear", "main",
		"play", "queue-add", "copy-link", "play-all", "queue-all", "playlist-m3u8", "playlist-pls", "playlist-xspf", "track-playlist"} {
		if !strings.Contains(body, `data-testid="`+hook+`"`) {
			t.Errorf("folder page lacks data-testid=%q", hook)
		}
	}
}

// TestPagination: long lists come in pages of a fixed size with links to
// the others, however many albums there are.
func TestPagination(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	x, err := index.Open(ctx, filepath.Join(t.TempDir(), "index.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { x.Close() })
	const albums = 2*albumsPerPage + 10
	b := &index.Batch{}
	for i := range albums {
		p := fmt.Sprintf("a%03d/t.mp3", i)
		b.Puts = append(b.Puts, index.Record{Library: "M", Path: p, Kind: "audio", Size: 1, ModTime: fixedTime, Hash: []byte(p),
			Report: &probe.Report{Tags: probe.Tags{Title: "T", Album: fmt.Sprintf("Album %03d", i), Artists: []string{fmt.Sprintf("Artist %03d", i)}}}})
	}
	if err := x.Apply(ctx, b); err != nil {
		t.Fatal(err)
	}
	if err := x.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	_, tree := testIndex(t)
	srv := httptest.NewServer(New(Options{Tree: tree, Stream: stream.New(time.Minute), Index: x}))
	t.Cleanup(srv.Close)
	card := regexp.MustCompile(`class="album-card"`)
	tests := []struct {
		target          string
		cards           int
		first, prev, nx string
	}{
		{"/albums", albumsPerPage, "Album 000", "", "/albums?page=2"},
		{"/albums?page=2", albumsPerPage, "Album 060", "/albums?page=1", "/albums?page=3"},
		{"/albums?page=3", 10, "Album 120", "/albums?page=2", ""},
	}
	for _, tt := range tests {
		_, body := get(t, srv, "GET", tt.target, nil)
		if n := len(card.FindAllString(body, -1)); n != tt.cards {
			t.Errorf("%s: %d albums; want %d", tt.target, n, tt.cards)
		}
		if !strings.Contains(body, tt.first) {
			t.Errorf("%s lacks %s", tt.target, tt.first)
		}
		for rel, href := range map[string]string{"prev": tt.prev, "next": tt.nx} {
			has := strings.Contains(body, `rel="`+rel+`"`)
			if has != (href != "") || (href != "" && !strings.Contains(body, `href="`+href+`" rel="`+rel+`"`)) {
				t.Errorf("%s: %s link: want %q", tt.target, rel, href)
			}
		}
	}
	_, body := get(t, srv, "GET", "/artists", nil)
	if n := strings.Count(body, `href="/artists/`); n != artistsPerPage {
		t.Errorf("/artists: %d artists; want %d", n, artistsPerPage)
	}
}
