package web

import (
	"bufio"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"mustserv/internal/config"
	"mustserv/internal/library"
	"mustserv/internal/stream"
)

// containment is the layout TestContainment attacks:
//
//	base/root/rootcanary.txt        canary token (outside the library, inside its parent)
//	base/root/Music/                the library "Music"
//	    song.mp3, Album/track one.mp3, link.mp3 -> song.mp3   legitimate
//	    .secret, .hidden.mp3        secret token (dotfiles are hidden)
//	    escape.mp3 -> ../../outside/canary.mp3
//	    abs.mp3 -> base/outside/canary.mp3 (absolute)
//	    out -> ../../outside        a folder outside
//	    up -> ..                    the library's parent
//	    loop -> ., etc -> /etc, zero.mp3 -> /dev/zero, pipe.mp3 (a FIFO)
//	base/outside/canary.txt, canary.mp3   canary token
type containment struct {
	base           string // absolute temporary folder holding everything
	canary, secret string // random tokens that must never reach a client
	song, track    []byte // contents of the legitimate files
	srv            *httptest.Server
}

func randomToken(t testing.TB) string {
	t.Helper()
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

func newContainment(t *testing.T) *containment {
	t.Helper()
	base, err := filepath.EvalSymlinks(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	c := &containment{base: base, canary: randomToken(t), secret: randomToken(t)}
	c.song = []byte("legitimate song bytes " + randomToken(t))
	c.track = []byte("legitimate track bytes " + randomToken(t))
	music := filepath.Join(base, "root", "Music")
	outside := filepath.Join(base, "outside")
	files := map[string][]byte{
		filepath.Join(outside, "canary.txt"):           []byte("canary " + c.canary),
		filepath.Join(outside, "canary.mp3"):           []byte("canary " + c.canary),
		filepath.Join(base, "root", "rootcanary.txt"):  []byte("canary " + c.canary),
		filepath.Join(base, "root", "rootcanary.mp3"):  []byte("canary " + c.canary),
		filepath.Join(music, ".secret"):                []byte("secret " + c.secret),
		filepath.Join(music, ".hidden.mp3"):            []byte("secret " + c.secret),
		filepath.Join(music, "song.mp3"):               c.song,
		filepath.Join(music, "Album", "track one.mp3"): c.track,
	}
	for p, b := range files {
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	links := map[string]string{
		"link.mp3":   "song.mp3",
		"escape.mp3": "../../outside/canary.mp3",
		"abs.mp3":    filepath.Join(outside, "canary.mp3"),
		"out":        "../../outside",
		"up":         "..",
		"loop":       ".",
		"etc":        "/etc",
		"zero.mp3":   "/dev/zero",
	}
	for name, target := range links {
		if err := os.Symlink(target, filepath.Join(music, name)); err != nil {
			t.Fatal(err)
		}
	}
	// A FIFO: opening it naively blocks until a writer comes.
	if err := syscall.Mkfifo(filepath.Join(music, "pipe.mp3"), 0o644); err != nil {
		t.Fatal(err)
	}
	tree, err := library.Open([]config.Library{{Name: "Music", Path: music}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tree.Close() })
	// With the small-file cache, as the server runs: every file here is
	// small, so legitimate streams are cached while hostile paths run.
	c.srv = httptest.NewServer(New(Options{Tree: tree, Stream: stream.New(time.Minute), Cache: stream.NewCache(stream.CacheLimits{})}))
	t.Cleanup(c.srv.Close)
	return c
}

// rawDo sends one request with the request line written by hand, so that
// no client library cleans, re-encodes or rejects the target first.
func rawDo(t testing.TB, addr, method, target string) (*http.Response, []byte) {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	// A bound, not a synchronisation: a hung server fails the test.
	conn.SetDeadline(time.Now().Add(30 * time.Second))
	if _, err := fmt.Fprintf(conn, "%s %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n", method, target, addr); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), &http.Request{Method: method})
	if err != nil {
		t.Fatalf("%s %.80q: reading response: %v", method, target, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %.80q: reading body: %v", method, target, err)
	}
	return resp, body
}

// clientDo sends the request through http.Client without following
// redirects; ok is false when net/url cannot express the target.
func clientDo(t testing.TB, c *http.Client, base, method, target string) (resp *http.Response, body []byte, ok bool) {
	t.Helper()
	u, err := url.Parse(base + target)
	if err != nil {
		return nil, nil, false
	}
	req, err := http.NewRequest(method, u.String(), nil)
	if err != nil {
		return nil, nil, false
	}
	resp, err = c.Do(req)
	if err != nil {
		t.Fatalf("%s %.80q: %v", method, target, err)
	}
	defer resp.Body.Close()
	body, err = io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %.80q: reading body: %v", method, target, err)
	}
	return resp, body, true
}

func noRedirects(srv *httptest.Server) *http.Client {
	c := *srv.Client()
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &c
}

// assertNoLeak fails if a response carries a token, names the temporary
// folder (unless the request itself did: an echo is not a leak) or
// redirects off the server.
func (c *containment) assertNoLeak(t testing.TB, desc, target string, resp *http.Response, body []byte) {
	t.Helper()
	loc := resp.Header.Get("Location")
	for _, s := range []string{string(body), loc} {
		if strings.Contains(s, c.canary) {
			t.Errorf("%s: response carries the canary from outside the library (status %d)", desc, resp.StatusCode)
		}
		if strings.Contains(s, c.secret) {
			t.Errorf("%s: response carries the dotfile secret (status %d)", desc, resp.StatusCode)
		}
		if strings.Contains(s, "root:x:0:0") {
			t.Errorf("%s: response carries /etc/passwd (status %d)", desc, resp.StatusCode)
		}
		rel := strings.TrimPrefix(c.base, "/")
		if !strings.Contains(target, rel) && strings.Contains(s, rel) {
			t.Errorf("%s: response names the folder on disk %s (status %d)", desc, c.base, resp.StatusCode)
		}
	}
	if loc != "" {
		// Relative redirects ("../", as http.FileServer sends) stay on the
		// server; a scheme, a host, or what browsers read as one ("//x",
		// "/\\x") would not.
		u, err := url.Parse(loc)
		if err != nil || u.Scheme != "" || u.Host != "" || strings.HasPrefix(loc, "//") || strings.HasPrefix(loc, `/\`) || strings.HasPrefix(loc, `\`) {
			t.Errorf("%s: redirect off the server to %q", desc, loc)
		}
	}
}

var hostileStatus = map[int]bool{
	http.StatusMovedPermanently: true, http.StatusFound: true, http.StatusTemporaryRedirect: true,
	http.StatusPermanentRedirect: true, http.StatusBadRequest: true, http.StatusForbidden: true,
	http.StatusNotFound: true, http.StatusMethodNotAllowed: true,
}

// TestContainment sends hostile paths to every route, both hand-written on
// the wire and through http.Client, and checks that nothing from outside
// the library, and no hidden file, is ever served, listed, or named; and,
// through positive controls on the same routes and transports, that the
// server does serve the library (so the test cannot pass by refusing
// everything).
func TestContainment(t *testing.T) {
	t.Parallel()
	c := newContainment(t)
	addr := c.srv.Listener.Addr().String()
	client := noRedirects(c.srv)

	t.Run("positive controls", func(t *testing.T) {
		t.Parallel()
		css, err := static.ReadFile("ui/static/app.css")
		if err != nil {
			t.Fatal(err)
		}
		// Names that only a leak would put in a listing or playlist.
		forbidden := []string{"canary", "escape.mp3", "abs.mp3", "Music/out", "Music/up", ".secret", ".hidden"}
		tests := []struct {
			name     string
			target   string
			wantBody []byte   // exact body, if set
			contains []string // else substrings of the body
		}{
			{name: "stream", target: "/stream/Music/song.mp3", wantBody: c.song},
			{name: "stream escaped space", target: "/stream/Music/Album/track%20one.mp3", wantBody: c.track},
			{name: "stream symlink inside", target: "/stream/Music/link.mp3", wantBody: c.song},
			{name: "home", target: "/", contains: []string{`href="/browse/Music/"`}},
			{name: "browse library", target: "/browse/Music/", contains: []string{`href="/stream/Music/song.mp3"`, `href="/browse/Music/Album/"`, `href="/stream/Music/link.mp3"`}},
			{name: "browse folder", target: "/browse/Music/Album/", contains: []string{`href="/stream/Music/Album/track%20one.mp3"`}},
			{name: "playlist m3u8", target: "/playlist/Music.m3u8", contains: []string{"/stream/Music/song.mp3\n", "/stream/Music/Album/track%20one.mp3\n", "/stream/Music/link.mp3\n"}},
			{name: "playlist pls", target: "/playlist/Music.pls", contains: []string{"/stream/Music/song.mp3\n", "/stream/Music/Album/track%20one.mp3\n", "NumberOfEntries=3\n"}},
			{name: "playlist xspf", target: "/playlist/Music.xspf", contains: []string{"/stream/Music/song.mp3</location>", "/stream/Music/Album/track%20one.mp3</location>", "/stream/Music/link.mp3</location>"}},
			{name: "playlist one file", target: "/playlist/Music/song.mp3.m3u8", contains: []string{"/stream/Music/song.mp3\n"}},
			{name: "static", target: "/static/app.css", wantBody: css},
		}
		for _, tt := range tests {
			check := func(transport string, resp *http.Response, body []byte) {
				desc := transport + " GET " + tt.target
				if resp.StatusCode != http.StatusOK {
					t.Errorf("%s: status %d; want 200", desc, resp.StatusCode)
				}
				if tt.wantBody != nil && string(body) != string(tt.wantBody) {
					t.Errorf("%s: body %q; want %q", desc, body, tt.wantBody)
				}
				for _, s := range tt.contains {
					if !strings.Contains(string(body), s) {
						t.Errorf("%s: body lacks %q:\n%s", desc, s, body)
					}
				}
				for _, s := range forbidden {
					if strings.Contains(string(body), s) {
						t.Errorf("%s: body mentions %q:\n%s", desc, s, body)
					}
				}
				c.assertNoLeak(t, desc, tt.target, resp, body)
			}
			resp, body := rawDo(t, addr, "GET", tt.target)
			check("raw", resp, body)
			resp, body, ok := clientDo(t, client, c.srv.URL, "GET", tt.target)
			if !ok {
				t.Fatalf("control %q is not a valid URL", tt.target)
			}
			check("client", resp, body)
		}
	})

	routes := []struct {
		name           string
		prefix, suffix string
		rawOnly        bool // a request target http.Client does not send
	}{
		{name: "stream", prefix: "/stream/"},
		{name: "browse", prefix: "/browse/"},
		{name: "playlist m3u8", prefix: "/playlist/", suffix: ".m3u8"},
		{name: "playlist pls", prefix: "/playlist/", suffix: ".pls"},
		{name: "playlist xspf", prefix: "/playlist/", suffix: ".xspf"},
		{name: "static", prefix: "/static/"},
		{name: "bare", prefix: "/"},
		{name: "no leading slash", prefix: "", rawOnly: true},
		{name: "absolute-form stream", prefix: "http://" + addr + "/stream/", rawOnly: true},
		{name: "absolute-form browse", prefix: "http://" + addr + "/browse/", rawOnly: true},
	}
	hostile := hostilePaths(c.base)
	var rawSent, clientSent atomic.Int64
	t.Cleanup(func() {
		t.Logf("%d hostile paths × %d route forms: %d raw requests (GET and HEAD), %d through http.Client",
			len(hostile), len(routes), rawSent.Load(), clientSent.Load())
	})

	for _, h := range hostile {
		t.Run(h.name, func(t *testing.T) {
			t.Parallel()
			for _, rt := range routes {
				target := rt.prefix + h.path + rt.suffix
				for _, method := range []string{"GET", "HEAD"} {
					resp, body := rawDo(t, addr, method, target)
					rawSent.Add(1)
					desc := fmt.Sprintf("raw %s %s %.100q", method, rt.name, target)
					if !hostileStatus[resp.StatusCode] {
						t.Errorf("%s: status %d; want a redirect, 400, 403, 404 or 405", desc, resp.StatusCode)
					}
					c.assertNoLeak(t, desc, target, resp, body)
				}
				if rt.rawOnly {
					continue
				}
				resp, body, ok := clientDo(t, client, c.srv.URL, "GET", target)
				if !ok {
					continue
				}
				clientSent.Add(1)
				desc := fmt.Sprintf("client GET %s %.100q", rt.name, target)
				if !hostileStatus[resp.StatusCode] {
					t.Errorf("%s: status %d; want a redirect, 400, 403, 404 or 405", desc, resp.StatusCode)
				}
				c.assertNoLeak(t, desc, target, resp, body)
			}
		})
	}
}

type hostilePath struct{ name, path string }

// hostilePaths are the traversal, encoding and symlink tricks of
// research/security.md Appendix A3 and rows P1–P4, as they follow a route
// prefix. base is the absolute folder holding the layout.
func hostilePaths(base string) []hostilePath {
	return []hostilePath{
		// Plain dot-dot.
		{"dotdot", ".."},
		{"dotdot slash", "../"},
		{"dotdot etc passwd", "../../../../etc/passwd"},
		{"dotdot to canary", "../../outside/canary.txt"},
		{"library then dotdot", "Music/../../outside/canary.txt"},
		{"library then many dotdot", "Music/../../../../../../etc/passwd"},
		{"library dotdot to parent canary", "Music/../rootcanary.txt"},
		{"dotdot inside then out", "Music/Album/../../../outside/canary.txt"},
		{"through a file then dotdot", "Music/song.mp3/../../../outside/canary.txt"},
		{"dot then dotdot", "Music/./../.."},
		{"dot dotdot canary", "Music/./../../outside/canary.txt"},
		{"leading dot", "./Music/song.mp3/../../../outside/canary.txt"},
		{"dotdot semicolon", "Music/..;/..;/outside/canary.txt"},
		{"dotdot semicolon slash", "Music/..;/"},
		{"bare dotdot semicolon", "..;/outside/canary.txt"},
		{"three dots", "Music/..."},
		{"four dots", "Music/..../outside/canary.txt"},
		{"filter-strip bypass", "....//....//etc/passwd"},
		{"dotdot space", "Music/..%20/..%20/outside/canary.txt"},
		{"dotdot tab", "Music/%09../%09../outside"},

		// Percent-encoded dots and slashes.
		{"encoded dotdot", "%2e%2e"},
		{"encoded dotdot slash", "%2e%2e/"},
		{"encoded dotdot to template", "%2e%2e/browse.html"},
		{"encoded dotdot path", "%2e%2e/%2e%2e/outside/canary.txt"},
		{"upper encoded dotdot slash", "%2E%2E%2F%2E%2E%2Foutside%2Fcanary.txt"},
		{"library encoded slash dotdot", "Music%2f..%2f..%2foutside%2fcanary.txt"},
		{"dotdot encoded slash", "..%2f..%2foutside%2fcanary.txt"},
		{"library then encoded dotdot slash", "Music/%2e%2e%2f%2e%2e%2foutside%2fcanary.txt"},
		{"half encoded dot", "Music/.%2e/.%2e/outside/canary.txt"},
		{"other half encoded dot", "Music/%2e./%2e./outside/canary.txt"},
		{"encoded dotfile", "Music/%2esecret"},
		{"encoded question mark", "Music/%3f/../../outside/canary.txt"},
		{"encoded query after a file", "Music/song.mp3%3f../../../outside/canary.txt"},
		{"encoded fragment after a file", "Music/song.mp3%23../../../outside/canary.txt"},
		{"path parameter", "Music/;jsessionid=..%2f..%2foutside"},

		// Backslashes.
		{"dotdot encoded backslash", "Music/..%5c..%5coutside%5ccanary.txt"},
		{"encoded backslash only", "Music%5c..%5c..%5coutside%5ccanary.txt"},
		{"encoded backslash", "%5c"},
		{"raw backslash", `Music\..\..\outside\canary.txt`},
		{"raw backslash dotdot", `..\..\outside\canary.txt`},
		{"raw backslash library", `Music/..\..\rootcanary.txt`},

		// Double and broken encodings.
		{"double encoded", "%252e%252e%252f%252e%252e%252foutside%252fcanary.txt"},
		{"double encoded after library", "Music/%252e%252e/%252e%252e/outside/canary.txt"},
		{"double encoded slash", "..%252f..%252foutside%252fcanary.txt"},
		{"double encoded backslash", "%252e%252e%255c%252e%252e%255coutside"},
		{"fully double encoded", "%25%32%65%25%32%65%25%32%66outside"},
		{"nested percent", "Music/%%32%65%%32%65/outside/canary.txt"},
		{"IIS unicode escape", "Music/%u002e%u002e/outside/canary.txt"},
		{"truncated escape", "Music/%2"},
		{"invalid UTF-8", "Music/%ff%fe/../../outside"},
		{"invalid UTF-8 name", "Music/%ff.mp3"},

		// Overlong UTF-8 for '.', '/' and '\'.
		{"overlong dots", "%c0%ae%c0%ae/%c0%ae%c0%ae/outside/canary.txt"},
		{"overlong dots and slashes", "Music/%c0%ae%c0%ae%c0%af%c0%ae%c0%ae%c0%afoutside%c0%afcanary.txt"},
		{"three-byte overlong dots", "%e0%80%ae%e0%80%ae/outside/canary.txt"},
		{"overlong slash", "Music/..%c0%af..%c0%afoutside%c0%afcanary.txt"},
		{"overlong backslash", "Music/..%c1%9c..%c1%9coutside%c1%9ccanary.txt"},

		// NUL and control characters.
		{"NUL", "%00"},
		{"NUL as name", "Music/%00.mp3"},
		{"NUL truncation", "Music/song.mp3%00.txt"},
		{"dotdot then NUL", "../../etc/passwd%00.mp3"},
		{"newline", "Music/%0a"},
		{"NUL then dotdot", "%00/../outside/canary.txt"},
		{"NUL inside dotdot path", "Music/../..%00/outside/canary.txt"},
		{"CRLF injection", "Music/%0d%0aX-Leak:%20yes"},
		{"DEL", "Music/%7f"},
		{"right-to-left override", "Music/%e2%80%aetxt.3pm"},

		// Absolute and doubled slashes.
		{"absolute", "/etc/passwd"},
		{"double slash absolute", "//etc/passwd"},
		{"triple slash absolute", "///etc/passwd"},
		{"slash backslash absolute", `/\/etc/passwd`},
		{"proc fd", "/proc/self/fd/3"},
		{"dev zero", "/dev/zero"},
		{"library double slash", "Music//etc"},
		{"library double slash dotdot", "Music//..//..//outside/canary.txt"},
		{"absolute temp path", base + "/outside/canary.txt"},
		{"absolute temp path no slash", strings.TrimPrefix(base, "/") + "/outside/canary.txt"},
		{"proc root", "/proc/self/root/etc/passwd"},
		{"proc environ", "Music/../../../../proc/self/environ"},
		{"file URL", "file:///etc/passwd"},

		// Unicode look-alikes of dots and slashes.
		{"one dot leader", "Music/%e2%80%a4%e2%80%a4/%e2%80%a4%e2%80%a4/outside/canary.txt"},
		{"two dot leader", "Music/%e2%80%a5/%e2%80%a5/outside"},
		{"two dot leader raw", "Music/\u2025/\u2025/outside/canary.txt"},
		{"fullwidth full stop", "Music/%ef%bc%8e%ef%bc%8e/%ef%bc%8e%ef%bc%8e/outside/canary.txt"},
		{"small full stop", "Music/%ef%b9%92%ef%b9%92/outside"},
		{"fullwidth solidus", "Music/..%ef%bc%8f..%ef%bc%8foutside"},
		{"division slash", "Music/..%e2%88%95..%e2%88%95outside"},
		{"fullwidth backslash", "Music/..%ef%bc%bc..%ef%bc%bcoutside"},

		// Very long paths (several KB).
		{"long dotdot chain", "Music/" + strings.Repeat("../", 2000) + "outside/canary.txt"},
		{"long encoded dotdot chain", strings.Repeat("%2e%2e%2f", 600) + "outside/canary.txt"},
		{"long segment", "Music/" + strings.Repeat("a", 5000) + ".mp3"},
		{"many segments", "Music/" + strings.Repeat("x/", 3000) + "canary.txt"},
		{"long up-link chain", "Music/" + strings.Repeat("up/Music/", 500) + "up/rootcanary.txt"},

		// Home folders and Windows forms.
		{"tilde root", "~root"},
		{"tilde ssh key", "~/.ssh/id_rsa"},
		{"library tilde", "Music/~root/.bashrc"},
		{"windows drive", `C:\Windows\win.ini`},
		{"windows drive encoded", "C:%5cWindows%5cwin.ini"},
		{"windows drive slash", "C:/Windows/win.ini"},
		{"UNC", `\\server\share\canary.txt`},
		{"Windows long path", `\\?\C:\Windows\win.ini`},
		{"Windows device", "COM1"},
		{"Windows device in library", "Music/CON.mp3"},

		// Hidden files and symlinks that leave the library.
		{"dotfile", "Music/.secret"},
		{"hidden media", "Music/.hidden.mp3"},
		{"dotfile slash", "Music/.secret/"},
		{"dotfile after dot", "Music/./.secret"},
		{"dotfile then fragment", "Music/.secret#/../../../outside/canary.txt"},
		{"dotfile then query", "Music/.secret?/../../outside/canary.txt"},
		{"escaping file symlink", "Music/escape.mp3"},
		{"absolute file symlink", "Music/abs.mp3"},
		{"escaping folder symlink file", "Music/out/canary.txt"},
		{"escaping folder symlink media", "Music/out/canary.mp3"},
		{"escaping folder symlink", "Music/out"},
		{"escaping folder symlink slash", "Music/out/"},
		{"escaping folder then dotdot", "Music/out/../../outside/canary.txt"},
		{"up-link", "Music/up/rootcanary.txt"},
		{"up-link media", "Music/up/rootcanary.mp3"},
		{"up-link folder", "Music/up/"},
		{"up-link then library", "Music/up/Music/.secret"},
		{"symlink to /etc", "Music/etc/passwd"},
		{"symlink to /dev/zero", "Music/zero.mp3"},
		{"FIFO", "Music/pipe.mp3"},
		{"symlink loop then dotfile", "Music/loop/loop/loop/.secret"},
		{"symlink loop then dotdot", "Music/loop/loop/../../../outside/canary.txt"},

		// Other spellings of a legitimate file (Appendix A3 family 8).
		{"trailing slash on a file", "Music/song.mp3/"},
		{"trailing dot on a file", "Music/song.mp3/."},
		{"trailing dotdot on a file", "Music/song.mp3/.."},
		{"trailing backslash", `Music/song.mp3\`},
		{"trailing space", "Music/song.mp3%20"},
		{"NTFS stream", "Music/song.mp3::$DATA"},
		{"case folded", "Music/SONG.MP3"},
	}
}

// TestCachedFileSwapped: a small file served (and so cached), then
// replaced by a symlink to a file outside the library, or removed: once
// the cache's TTL has passed the next request opens the path again, which
// refuses the symlink, so the outside file's bytes never reach a client.
// (A TTL of 1 ns makes every request revalidate.)
func TestCachedFileSwapped(t *testing.T) {
	t.Parallel()
	base := t.TempDir()
	music := filepath.Join(base, "Music")
	canary := "canary " + randomToken(t)
	song := []byte("song " + randomToken(t))
	if err := os.MkdirAll(music, 0o755); err != nil {
		t.Fatal(err)
	}
	outside := filepath.Join(base, "canary.mp3")
	for p, b := range map[string][]byte{outside: []byte(canary), filepath.Join(music, "a.mp3"): song, filepath.Join(music, "b.mp3"): song} {
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	tree, err := library.Open([]config.Library{{Name: "Music", Path: music}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tree.Close() })
	cache := stream.NewCache(stream.CacheLimits{TTL: time.Nanosecond})
	srv := httptest.NewServer(New(Options{Tree: tree, Stream: stream.New(time.Minute), Cache: cache}))
	t.Cleanup(srv.Close)
	addr := srv.Listener.Addr().String()

	for _, name := range []string{"a.mp3", "b.mp3"} {
		resp, body := rawDo(t, addr, "GET", "/stream/Music/"+name)
		if resp.StatusCode != http.StatusOK || string(body) != string(song) {
			t.Fatalf("%s: status %d body %q; want 200 and the song", name, resp.StatusCode, body)
		}
	}
	if n, _ := cache.Len(); n != 2 {
		t.Fatalf("%d files cached, want 2", n)
	}
	if err := os.Remove(filepath.Join(music, "a.mp3")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, filepath.Join(music, "a.mp3")); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(music, "b.mp3")); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"a.mp3", "b.mp3"} {
		for _, method := range []string{"GET", "HEAD"} {
			resp, body := rawDo(t, addr, method, "/stream/Music/"+name)
			if resp.StatusCode != http.StatusNotFound || strings.Contains(string(body), "canary") || strings.Contains(string(body), "song") {
				t.Errorf("%s %s after the swap: status %d body %q; want 404 and neither file", method, name, resp.StatusCode, body)
			}
		}
	}
	if n, _ := cache.Len(); n != 0 {
		t.Errorf("%d entries left for files that are gone", n)
	}
}
