package web

import (
	"bufio"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// viaMux returns the {path...} value the mux gives the stream route for a
// request with this target, and whether the mux routed it there at all
// (rather than redirecting or answering 404/405 itself).
func viaMux(t *testing.T, method, target string) (*http.Request, string, bool) {
	t.Helper()
	r, err := http.ReadRequest(bufio.NewReader(strings.NewReader(method + " " + target + " HTTP/1.1\r\nHost: x\r\n\r\n")))
	if err != nil {
		return nil, "", false
	}
	var got string
	routed := false
	mux := http.NewServeMux()
	mux.HandleFunc("GET /stream/{path...}", func(w http.ResponseWriter, r *http.Request) {
		got, routed = r.PathValue("path"), true
	})
	mux.HandleFunc("GET /{$}", func(http.ResponseWriter, *http.Request) {})
	mux.HandleFunc("GET /browse/{path...}", func(http.ResponseWriter, *http.Request) {})
	mux.HandleFunc("GET /static/", func(http.ResponseWriter, *http.Request) {})
	mux.ServeHTTP(httptest.NewRecorder(), r)
	return r, got, routed
}

// checkShortcut fails if the shortcut takes a request the mux would not
// route to the stream handler with the same path value.
func checkShortcut(t *testing.T, method, target string) (taken bool) {
	t.Helper()
	r, want, routed := viaMux(t, method, target)
	if r == nil {
		return false
	}
	got, ok := streamPath(r)
	if !ok {
		return false
	}
	if !routed || got != want {
		t.Errorf("%s %q: shortcut path %q; mux routed=%v with %q", method, target, got, routed, want)
	}
	return true
}

func TestShortcutMatchesMux(t *testing.T) {
	t.Parallel()
	taken := map[string]bool{
		"/stream/Music/a.mp3":           true,
		"/stream/Music/Album/x%20y.mp3": true,
		"/stream/Music/%C3%A4.mp3":      true,
		"/stream/M%75sic/a.mp3":         false, // needless escape: RawPath
		"/stream/Music/dir/":            true,
		"/stream/":                      true,
		"/stream/Music/a.mp3?x=1":       true,
		"/stream/Music/a%2Fb.mp3":       false, // encoded slash: RawPath
		"/stream/Music//a.mp3":          false, // the mux redirects
		"/stream/Music/./a.mp3":         false,
		"/stream/Music/../a.mp3":        false,
		"/stream/Music/..":              false,
		"/stream/Music/.":               false,
		"/stream/Music/%2e%2e/a.mp3":    false,
		"/stream":                       false,
		"/streamx/a.mp3":                false,
		"/browse/Music/":                false,
		"http://x/stream/Music/a.mp3":   true,
		"/stream/Music/.hidden.mp3":     true, // the library refuses it
		"/stream/Music/..a.mp3":         true,
		"/stream/Music/a.mp3/":          true,
		"/stream/Music/%00.mp3":         true,
		"/stream/Music/a%5C..%5Cb.mp3":  true,
	}
	for target, want := range taken {
		if got := checkShortcut(t, "GET", target); got != want {
			t.Errorf("GET %q: shortcut taken = %v, want %v", target, got, want)
		}
	}
	for _, m := range []string{"HEAD", "POST", "PUT", "DELETE", "OPTIONS"} {
		if got := checkShortcut(t, m, "/stream/Music/a.mp3"); got != (m == "HEAD") {
			t.Errorf("%s: shortcut taken = %v", m, got)
		}
	}
}

// FuzzShortcut: for any request target, the shortcut either leaves the
// request to the mux or gives the stream handler the mux's own path value.
func FuzzShortcut(f *testing.F) {
	for _, s := range []string{"Music/a.mp3", "a//b", "a/./b", "%2e%2e/x", "a%2fb", "a/..", "x/", "", "%zz", "a?b#c", "../../etc/passwd"} {
		f.Add("GET", s)
	}
	f.Fuzz(func(t *testing.T, method, rest string) {
		if method != "GET" && method != "HEAD" {
			method = "GET"
		}
		checkShortcut(t, method, "/stream/"+rest)
	})
}
