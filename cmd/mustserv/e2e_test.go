package main

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"net/http"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"mustserv/internal/config"
)

// The fixtures as the server names them and as they are on disk.
var (
	mp3Path  = "Music/Sine Band/First Album/01 Sine Ä.mp3"
	mp3URL   = "/stream/Music/Sine%20Band/First%20Album/01%20Sine%20%C3%84.mp3"
	oggURL   = "/stream/Music/Sine%20Band/First%20Album/02%20Tone.ogg"
	flacURL  = "/stream/Music/Lossless/tone.flac"
	mp4Path  = "Videos/clip.mp4"
	mp4URL   = "/stream/Videos/clip.mp4"
	webmPath = "Videos/clip.webm"
)

func TestEndToEnd(t *testing.T) {
	t.Parallel()
	// Streams go through the pacer, with a burst longer than any fixture
	// so that whole-file downloads do not wait for the pace (which
	// TestPacing measures).
	fast := writeConfig(t, "[pace]\nburst = \"1h\"\n")
	s := startServer(t, "--config", fast, filepath.Join(mediaDir, "Music"), filepath.Join(mediaDir, "Videos"))

	if m := servingLine.FindStringSubmatch(s.Stdout.String()); m == nil || m[1] != "2" {
		t.Errorf("stdout = %q, want it to announce 2 libraries", s.Stdout)
	}

	t.Run("browse", func(t *testing.T) {
		t.Parallel()
		for _, tc := range []struct {
			name, path string
			want       []string
			wantNot    []string
		}{
			{
				name: "root lists libraries named after their folders",
				path: "/",
				want: []string{`href="/browse/Music/"`, `href="/browse/Videos/"`, `href="/playlist/Music.m3u8"`},
			},
			{
				name: "library",
				path: "/browse/Music/",
				want: []string{
					`href="/browse/Music/Sine%20Band/"`, `href="/browse/Music/Lossless/"`,
					`href="/playlist/Music.m3u8"`, `href="/playlist/Music.pls"`, `href="/playlist/Music.xspf"`,
					"notes.txt",
				},
			},
			{
				name: "subfolder with non-ASCII names",
				path: "/browse/Music/Sine%20Band/First%20Album/",
				want: []string{
					// Tracks show their titles once the index has them,
					// with the file name beside them.
					"01 Sine Ä.mp3", "02 Tone.ogg",
					`data-url="` + mp3URL + `"`, `data-url="` + oggURL + `"`,
					`href="/playlist/Music/Sine%20Band/First%20Album.m3u8"`,
					`href="/playlist/Music/Sine%20Band/First%20Album/01%20Sine%20%C3%84.mp3.m3u8"`,
				},
				wantNot: []string{"Lossless", "clip.mp4"},
			},
			{
				name: "videos",
				path: "/browse/Videos/",
				want: []string{`data-url="` + mp4URL + `"`, `data-url="/stream/Videos/clip.webm"`},
			},
		} {
			t.Run(tc.name, func(t *testing.T) {
				t.Parallel()
				resp, body := get(t, s.URL+tc.path)
				if resp.StatusCode != http.StatusOK {
					t.Fatalf("GET %s: %s", tc.path, resp.Status)
				}
				if ct := resp.Header.Get("Content-Type"); ct != "text/html; charset=utf-8" {
					t.Errorf("Content-Type = %q", ct)
				}
				for _, w := range tc.want {
					if !bytes.Contains(body, []byte(w)) {
						t.Errorf("page lacks %q", w)
					}
				}
				for _, w := range tc.wantNot {
					if bytes.Contains(body, []byte(w)) {
						t.Errorf("page has %q", w)
					}
				}
				if t.Failed() {
					t.Logf("page:\n%s", body)
				}
			})
		}
	})

	t.Run("stream", func(t *testing.T) {
		t.Parallel()
		for _, tc := range []struct {
			name, url, file, ctype string
		}{
			{"mp3", mp3URL, mp3Path, "audio/mpeg"},
			{"mp4", mp4URL, mp4Path, "video/mp4"},
			{"webm", "/stream/Videos/clip.webm", webmPath, "video/webm"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				t.Parallel()
				want := readFile(t, filepath.Join(mediaDir, tc.file))
				size := int64(len(want))

				resp, body := get(t, s.URL+tc.url)
				if resp.StatusCode != http.StatusOK {
					t.Fatalf("GET: %s", resp.Status)
				}
				if !bytes.Equal(body, want) {
					t.Errorf("GET: got %d bytes that differ from the %d on disk", len(body), size)
				}
				checkHeaders(t, "GET", resp.Header, map[string]string{
					"Content-Type":   tc.ctype,
					"Accept-Ranges":  "bytes",
					"Content-Length": fmt.Sprint(size),
				})
				etag := resp.Header.Get("Etag")
				if !strings.HasPrefix(etag, `"`) {
					t.Errorf("ETag = %q, want a strong tag", etag)
				}

				// What every player sends first, then a seek, then a closed range.
				for _, rc := range []struct {
					header     string
					start, end int64 // inclusive
				}{
					{"bytes=0-", 0, size - 1},
					{"bytes=1000-", 1000, size - 1},
					{"bytes=100-4195", 100, 4195},
					{"bytes=-500", size - 500, size - 1},
				} {
					resp, body := get(t, s.URL+tc.url, "Range", rc.header)
					if resp.StatusCode != http.StatusPartialContent {
						t.Errorf("Range %s: %s, want 206", rc.header, resp.Status)
						continue
					}
					if !bytes.Equal(body, want[rc.start:rc.end+1]) {
						t.Errorf("Range %s: %d bytes that differ from bytes %d-%d on disk", rc.header, len(body), rc.start, rc.end)
					}
					checkHeaders(t, "Range "+rc.header, resp.Header, map[string]string{
						"Content-Range":  fmt.Sprintf("bytes %d-%d/%d", rc.start, rc.end, size),
						"Content-Length": fmt.Sprint(rc.end - rc.start + 1),
						"Content-Type":   tc.ctype,
					})
				}

				// A seek with If-Range carrying the ETag stays partial.
				resp, body = get(t, s.URL+tc.url, "Range", "bytes=10-19", "If-Range", etag)
				if resp.StatusCode != http.StatusPartialContent || !bytes.Equal(body, want[10:20]) {
					t.Errorf("If-Range with current ETag: %s, %q", resp.Status, body)
				}
				resp, _ = get(t, s.URL+tc.url, "Range", fmt.Sprintf("bytes=%d-", size))
				if resp.StatusCode != http.StatusRequestedRangeNotSatisfiable {
					t.Errorf("Range past the end: %s, want 416", resp.Status)
				}

				resp, body = do(t, http.MethodHead, s.URL+tc.url)
				if resp.StatusCode != http.StatusOK || len(body) != 0 {
					t.Errorf("HEAD: %s with %d body bytes, want 200 and none", resp.Status, len(body))
				}
				checkHeaders(t, "HEAD", resp.Header, map[string]string{
					"Content-Type":   tc.ctype,
					"Content-Length": fmt.Sprint(size),
					"Accept-Ranges":  "bytes",
					"Etag":           etag,
				})
			})
		}
	})

	t.Run("not found", func(t *testing.T) {
		t.Parallel()
		for _, p := range []string{
			"/stream/Music/nope.mp3", "/stream/Nope/x.mp3", "/browse/Music/nope/",
			"/stream/Music/nope/", "/stream/Music/Sine%20Band/First%20Album/01%20Sine%20%C3%84.mp3/", // no such folder
			"/playlist/Nope.m3u8",
		} {
			if resp, _ := get(t, s.URL+p); resp.StatusCode != http.StatusNotFound {
				t.Errorf("GET %s: %s, want 404", p, resp.Status)
			}
		}
		// A folder is not streamed: it redirects to its listing (as
		// nginx does), for servers using this one as a library.
		resp, err := noRedirect.Get(s.URL + "/stream/Music/Lossless")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusMovedPermanently || resp.Header.Get("Location") != "/stream/Music/Lossless/" {
			t.Errorf("GET /stream/Music/Lossless: %s to %q, want 301 to /stream/Music/Lossless/", resp.Status, resp.Header.Get("Location"))
		}
		if resp, _ := get(t, s.URL+"/stream/Music/..%2F..%2Fgo.mod"); resp.StatusCode < 400 {
			t.Errorf("path escaping the library: %s", resp.Status)
		}
	})

	t.Run("playlists", func(t *testing.T) {
		t.Parallel()
		music := []string{flacURL, mp3URL, oggURL} // folders first, depth first
		album := []string{mp3URL, oggURL}
		for _, tc := range []struct {
			path  string
			want  []string
			parse func(t *testing.T, body []byte) []string
		}{
			{"/playlist/Music.m3u8", music, parseM3U},
			{"/playlist/Music.pls", music, parsePLS},
			{"/playlist/Music.xspf", music, parseXSPF},
			{"/playlist/Music/Sine%20Band.xspf", album, parseXSPF},
			{"/playlist/Music/Sine%20Band/First%20Album.m3u8", album, parseM3U},
			{"/playlist/Music/Sine%20Band/First%20Album/01%20Sine%20%C3%84.mp3.pls", []string{mp3URL}, parsePLS},
			{"/playlist/Videos.m3u8", []string{mp4URL, "/stream/Videos/clip.webm"}, parseM3U},
		} {
			t.Run(tc.path, func(t *testing.T) {
				t.Parallel()
				resp, body := get(t, s.URL+tc.path)
				if resp.StatusCode != http.StatusOK {
					t.Fatalf("%s", resp.Status)
				}
				var want []string
				for _, u := range tc.want {
					want = append(want, s.URL+u)
				}
				got := tc.parse(t, body)
				if diff := cmp.Diff(want, got); diff != "" {
					t.Fatalf("playlist URLs (-want +got):\n%s\nplaylist:\n%s", diff, body)
				}
				// Every entry is an absolute URL that serves the file.
				for _, u := range got {
					pu, err := url.Parse(u)
					if err != nil || !pu.IsAbs() {
						t.Errorf("%q is not an absolute URL", u)
						continue
					}
					vpath, _ := strings.CutPrefix(pu.Path, "/stream/")
					resp, body := get(t, u)
					if resp.StatusCode != http.StatusOK {
						t.Errorf("GET %s: %s", u, resp.Status)
						continue
					}
					if disk := readFile(t, filepath.Join(mediaDir, filepath.FromSlash(vpath))); !bytes.Equal(body, disk) {
						t.Errorf("GET %s: bytes differ from %s on disk", u, vpath)
					}
				}
			})
		}
		if resp, _ := get(t, s.URL+"/playlist/Music.txt"); resp.StatusCode != http.StatusBadRequest {
			t.Errorf("playlist of unknown format: %s, want 400", resp.Status)
		}
	})

	t.Run("health", func(t *testing.T) {
		t.Parallel()
		for path, want := range map[string]string{"/healthz": "ok\n", "/readyz": "ready\n"} {
			resp, body := get(t, s.URL+path)
			if resp.StatusCode != http.StatusOK || string(body) != want {
				t.Errorf("GET %s: %s %q, want 200 %q", path, resp.Status, body, want)
			}
		}
	})

	t.Run("access log", func(t *testing.T) {
		t.Parallel()
		get(t, s.URL+mp4URL, "Range", "bytes=7-")
		s.Stderr.waitRequests(t, "access log line for the range request", func(l accessLine) bool {
			return l.Method == "GET" && l.Path == "/stream/"+mp4Path && l.Status == http.StatusPartialContent && l.Range == "bytes=7-"
		})
	})
}

func checkHeaders(t *testing.T, what string, h http.Header, want map[string]string) {
	t.Helper()
	for k, v := range want {
		if got := h.Get(k); got != v {
			t.Errorf("%s: %s = %q, want %q", what, k, got, v)
		}
	}
}

func parseM3U(t *testing.T, body []byte) []string {
	if !bytes.HasPrefix(body, []byte("#EXTM3U\n")) {
		t.Errorf("M3U8 does not start with #EXTM3U")
	}
	var urls []string
	for _, l := range strings.Split(string(body), "\n") {
		if l != "" && !strings.HasPrefix(l, "#") {
			urls = append(urls, l)
		}
	}
	return urls
}

var plsFile = regexp.MustCompile(`(?m)^File(\d+)=(.*)$`)

func parsePLS(t *testing.T, body []byte) []string {
	if !bytes.HasPrefix(body, []byte("[playlist]\n")) {
		t.Errorf("PLS does not start with [playlist]")
	}
	var urls []string
	for i, m := range plsFile.FindAllStringSubmatch(string(body), -1) {
		if m[1] != fmt.Sprint(i+1) {
			t.Errorf("PLS entry %d is numbered %s", i+1, m[1])
		}
		urls = append(urls, m[2])
	}
	if want := fmt.Sprintf("NumberOfEntries=%d\n", len(urls)); !bytes.Contains(body, []byte(want)) {
		t.Errorf("PLS lacks %q", want)
	}
	return urls
}

func parseXSPF(t *testing.T, body []byte) []string {
	var pl struct {
		XMLName xml.Name `xml:"http://xspf.org/ns/0/ playlist"`
		Tracks  []struct {
			Location string `xml:"location"`
		} `xml:"trackList>track"`
	}
	if err := xml.Unmarshal(body, &pl); err != nil {
		t.Fatalf("XSPF: %v", err)
	}
	var urls []string
	for _, tr := range pl.Tracks {
		urls = append(urls, tr.Location)
	}
	return urls
}

func TestSubcommands(t *testing.T) {
	t.Parallel()
	runCmd := func(args ...string) (stdout, stderr string, err error) {
		var o, e bytes.Buffer
		err = run(t.Context(), args, func(string) string { return "" }, &o, &e)
		return o.String(), e.String(), err
	}

	t.Run("version", func(t *testing.T) {
		t.Parallel()
		out, _, err := runCmd("version")
		if err != nil || !strings.HasPrefix(out, "mustserv "+version) {
			t.Errorf("version: %q, %v", out, err)
		}
	})

	t.Run("config example is the defaults and passes check", func(t *testing.T) {
		t.Parallel()
		out, _, err := runCmd("config", "example")
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(string(config.Example()), out); diff != "" {
			t.Errorf("config example (-want +got):\n%s", diff)
		}
		parsed, err := config.Parse("example", []byte(out))
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(config.Default(), parsed); diff != "" {
			t.Errorf("example differs from the defaults (-want +got):\n%s", diff)
		}
		file := writeConfig(t, out)
		out, _, err = runCmd("config", "check", file)
		if err != nil {
			t.Fatalf("config check of the example: %v", err)
		}
		if want := file + ": ok (0 libraries)\n"; out != want {
			t.Errorf("config check printed %q, want %q", out, want)
		}
	})

	t.Run("config check names file and line of an unknown key", func(t *testing.T) {
		t.Parallel()
		file := writeConfig(t, "[server]\nlisten = \"127.0.0.1:0\"\nlisen = \"oops\"\n")
		_, _, err := runCmd("config", "check", file)
		if err == nil {
			t.Fatal("config check accepted an unknown key")
		}
		if !strings.Contains(err.Error(), file+":3:") || !strings.Contains(err.Error(), "lisen") {
			t.Errorf("error %q does not name %s:3 and the key", err, file)
		}
		if exitCode(err) != 1 {
			t.Errorf("exit code %d, want 1", exitCode(err))
		}
	})

	t.Run("config check of a missing file", func(t *testing.T) {
		t.Parallel()
		if _, _, err := runCmd("config", "check", filepath.Join(t.TempDir(), "none.toml")); err == nil {
			t.Error("config check of a missing file succeeded")
		}
	})

	t.Run("help", func(t *testing.T) {
		t.Parallel()
		out, _, err := runCmd("help")
		if err != nil || !strings.Contains(out, "usage: mustserv") {
			t.Errorf("help: %q, %v", out, err)
		}
	})

	for _, tc := range []struct {
		name string
		args []string
	}{
		{"no command", nil},
		{"unknown command", []string{"frobnicate"}},
		{"config without subcommand", []string{"config"}},
		{"config check without file", []string{"config", "check"}},
		{"unknown flag", []string{"serve", "--no-such-flag"}},
		{"flag without value", []string{"serve", "--listen"}},
	} {
		t.Run("usage error/"+tc.name, func(t *testing.T) {
			t.Parallel()
			_, stderr, err := runCmd(tc.args...)
			if err == nil {
				t.Fatal("no error")
			}
			if got := exitCode(err); got != 2 {
				t.Errorf("exit code %d for %v, want 2", got, err)
			}
			if !strings.Contains(stderr, "usage") && !strings.Contains(stderr, "Usage") {
				t.Errorf("stderr has no usage: %q", stderr)
			}
		})
	}

	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"bad listen address", []string{"serve", "--listen", "nonsense", "--data", "x"}, "server.listen"},
		{"bad log level", []string{"serve", "--listen", "127.0.0.1:0", "--log-level", "loud"}, "log.level"},
		{"missing library folder", []string{"serve", "--listen", "127.0.0.1:0", "--data", "x", "/nonexistent/Music"}, "Music"},
	} {
		t.Run("config error/"+tc.name, func(t *testing.T) {
			t.Parallel()
			args := tc.args
			for i, a := range args {
				if a == "x" { // a data folder of this test's own
					args = append([]string(nil), args...)
					args[i] = t.TempDir()
				}
			}
			_, _, err := runCmd(args...)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want one mentioning %q", err, tc.want)
			}
			if err != nil && exitCode(err) != 1 {
				t.Errorf("exit code %d, want 1", exitCode(err))
			}
		})
	}
}

// TestConfigPrecedence checks the order defaults < file < MUSTSERV_* < flags
// by where the server actually listens (127.0.0.2 and .3 are loopback on
// Linux too), and that a positional folder is named after its base name.
func TestConfigPrecedence(t *testing.T) {
	t.Parallel()
	videos := filepath.Join(mediaDir, "Videos")
	fileListen := writeConfig(t, "[server]\nlisten = \"127.0.0.3:0\"\n")
	for _, tc := range []struct {
		name     string
		env      map[string]string
		args     []string
		wantHost string
	}{
		{"file", nil, []string{"--config", fileListen, videos}, "127.0.0.3"},
		{"env over default", map[string]string{"MUSTSERV_LISTEN": "127.0.0.2:0"}, []string{videos}, "127.0.0.2"},
		{"env over file", map[string]string{"MUSTSERV_LISTEN": "127.0.0.2:0"}, []string{"--config", fileListen, videos}, "127.0.0.2"},
		{"flag over env", map[string]string{"MUSTSERV_LISTEN": "127.0.0.2:0"}, []string{"--listen", "127.0.0.1:0", videos}, "127.0.0.1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := startRun(t, tc.env, tc.args...)
			u, err := url.Parse(s.URL)
			if err != nil {
				t.Fatal(err)
			}
			if u.Hostname() != tc.wantHost || u.Port() == "0" {
				t.Errorf("listening at %s, want %s on a free port", s.URL, tc.wantHost)
			}
			resp, body := get(t, s.URL+"/")
			if resp.StatusCode != http.StatusOK || !bytes.Contains(body, []byte(`href="/browse/Videos/"`)) {
				t.Errorf("root page does not list the library Videos: %s\n%s", resp.Status, body)
			}
		})
	}

	t.Run("libraries from the file and the command line", func(t *testing.T) {
		t.Parallel()
		abs, err := filepath.Abs(filepath.Join(mediaDir, "Music"))
		if err != nil {
			t.Fatal(err)
		}
		cfg := writeConfig(t, fmt.Sprintf("[log]\nlevel = \"warn\"\naccess = false\n\n[[library]]\nname = \"Tunes\"\npath = %s\n", tomlString(abs)))
		var s *server
		// Registered first, so it runs after the server stopped and every
		// handler has returned: no log line can still be on its way.
		t.Cleanup(func() {
			if s == nil {
				return
			}
			if strings.Contains(s.Stderr.String(), "msg=request") || strings.Contains(s.Stderr.String(), "level=INFO") {
				t.Errorf("log has request or info lines with access = false, level = warn:\n%s", s.Stderr)
			}
		})
		s = startRun(t, nil, "--config", cfg, "--listen", "127.0.0.1:0", videos)
		if m := servingLine.FindStringSubmatch(s.Stdout.String()); m == nil || m[1] != "2" {
			t.Errorf("stdout %q, want 2 libraries", s.Stdout)
		}
		resp, body := get(t, s.URL+"/stream/Tunes/Lossless/tone.flac")
		if resp.StatusCode != http.StatusOK || !bytes.Equal(body, readFile(t, filepath.Join(abs, "Lossless", "tone.flac"))) {
			t.Errorf("file from the configured library: %s", resp.Status)
		}
		// HEAD: a whole GET of the clip would take its paced 24 s.
		if resp, _ := do(t, http.MethodHead, s.URL+mp4URL); resp.StatusCode != http.StatusOK {
			t.Errorf("file from the positional library: %s", resp.Status)
		}
	})

	t.Run("MUSTSERV_LOG_LEVEL", func(t *testing.T) {
		t.Parallel()
		var s *server
		t.Cleanup(func() { // after the server stopped, see above
			if s != nil && strings.Contains(s.Stderr.String(), "level=INFO") {
				t.Errorf("info lines at MUSTSERV_LOG_LEVEL=warn:\n%s", s.Stderr)
			}
		})
		s = startRun(t, map[string]string{"MUSTSERV_LOG_LEVEL": "warn"}, "--listen", "127.0.0.1:0", videos)
		if resp, _ := do(t, http.MethodHead, s.URL+mp4URL); resp.StatusCode != http.StatusOK {
			t.Errorf("HEAD: %s", resp.Status)
		}
	})
}
